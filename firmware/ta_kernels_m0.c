/* Cortex-M0/M0+ (Armv6-M) kernels: the ta_kernels.h interface for cores with no DSP instructions, a
 * 32x32 MULS (one cycle on the RP2040's M0+) and 2-cycle loads. Bit-exact with ta_kernels.c: the same
 * int32 sums in another order. The generator compiles this file instead of ta_kernels.c for boards
 * with `kernels = "m0"`.
 *
 * The prepared input is int16 in natural order, as the portable one. The main loop (ta_m0_dot2, in
 * assembly below) takes two weight rows at once, so that each pair of inputs is loaded and widened
 * once for both: per four columns it loads one word of four weights from each row (LDR with the
 * stride in a register, LDM with write-back), two words of inputs, and sign-extends each weight from
 * its byte lane in one or two instructions (SXTB, LSLS+ASRS, ASRS #24). The two sums live in high
 * registers (ADD takes them, MULS and the loads need the low ones), so all eight low registers carry
 * the data. Eight columns of two rows cost 83 cycles: about 5.2 per multiply-accumulate (5.6 measured
 * with the C around it), against 7.2 for ta_kernels.c compiled by GCC for the M0+ (docs/benchmarks.md,
 * "RP2040").
 * The loop needs w, stride and x word-aligned and a multiple of 4 columns (the model's own dims, in
 * the 8-byte-aligned arena); anything else, the odd last row and a column tail take the C loops.
 * The matmat (prefill) is one matvec per input: the weight extraction is the cost on this core, and
 * sharing it between two inputs would need more registers than the M0+ has.
 */
#include "ta_kernels.h"

#if defined(__ARM_ARCH) && !defined(__ARM_ARCH_6M__)
#error "ta_kernels_m0.c is for Armv6-M (-mcpu=cortex-m0 or cortex-m0plus); use ta_kernels.c or ta_kernels_cm4.c"
#endif

void ta_kernel_prepare(ta_kx *dst, const int8_t *x, int n)
{
    for (int i = 0; i < n; i++) {
        dst[i] = x[i];
    }
}

void ta_kernel_prepare_q15(ta_kx *dst, const int32_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        dst[i] = (ta_kx)p[i];
    }
}

#if defined(__ARM_ARCH_6M__)
/* acc[0] = sum w0[i] * x[i], acc[1] = sum w0[stride + i] * x[i], for i < x_end - x (a nonzero multiple
 * of 4). w0, stride and x word-aligned. AAPCS: r0 acc, r1 w0, r2 stride, r3 x, x_end on the stack.
 * In the loop: r1 row 0 (row 1 at r1 + r2), r3 the inputs, r0 a pair of them, r4 one widened input,
 * r5 and r6 the rows' four weights, r7 a product; r8 and r9 the sums, r10 the end. */
void ta_m0_dot2(int32_t *acc, const int8_t *w0, size_t stride, const ta_kx *x, const ta_kx *x_end);

/* One weight (extracted into r7 by `ext`) of row 0 (r5) and of row 1 (r6) times the input in `xr`. */
#define TA_M0_MAC2(ext0, ext1, xr) \
    ext0 "muls r7, " xr ", r7\n\t" \
    "add r8, r7\n\t"               \
    ext1 "muls r7, " xr ", r7\n\t" \
    "add r9, r7\n\t"
/* Four columns of both rows: weights w0..w3 of each row from one word (byte k = w_k), inputs x0..x3 from
 * two words ([x1|x0], [x3|x2]); w3 is taken last, in place, as the rows' words are no longer needed. */
#define TA_M0_QUAD                                                                              \
    "ldr r6, [r1, r2]\n\t"                                                                      \
    "ldm r1!, {r5}\n\t"                                                                         \
    "ldm r3!, {r0}\n\t"                                                                         \
    "sxth r4, r0\n\t"                                                                           \
    TA_M0_MAC2("sxtb r7, r5\n\t", "sxtb r7, r6\n\t", "r4")                                      \
    "asrs r0, r0, #16\n\t"                                                                      \
    TA_M0_MAC2("lsls r7, r5, #16\n\tasrs r7, r7, #24\n\t", "lsls r7, r6, #16\n\tasrs r7, r7, #24\n\t", "r0") \
    "ldm r3!, {r0}\n\t"                                                                         \
    "sxth r4, r0\n\t"                                                                           \
    TA_M0_MAC2("lsls r7, r5, #8\n\tasrs r7, r7, #24\n\t", "lsls r7, r6, #8\n\tasrs r7, r7, #24\n\t", "r4") \
    "asrs r0, r0, #16\n\t"                                                                      \
    "asrs r5, r5, #24\n\t"                                                                      \
    "muls r5, r0, r5\n\t"                                                                       \
    "add r8, r5\n\t"                                                                            \
    "asrs r6, r6, #24\n\t"                                                                      \
    "muls r6, r0, r6\n\t"                                                                       \
    "add r9, r6\n\t"

__asm__(".text\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".balign 4\n\t"
        ".global ta_m0_dot2\n\t"
        ".type ta_m0_dot2, %function\n\t"
        ".thumb_func\n"
        "ta_m0_dot2:\n\t"
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "push {r4, r5, r6}\n\t"
        "ldr r4, [sp, #32]\n\t"      /* x_end: above the 8 registers pushed */
        "mov r10, r4\n\t"
        "mov r12, r0\n\t"
        "movs r0, #0\n\t"
        "mov r8, r0\n\t"
        "mov r9, r0\n\t"
        "subs r4, r4, r3\n\t"        /* bytes of input: 8 per quad */
        "lsls r4, r4, #28\n\t"       /* an odd number of quads sets bit 31 */
        "bpl 2f\n\t"
        TA_M0_QUAD
        "cmp r3, r10\n\t"
        "beq 3f\n"
        "2:\n\t"
        TA_M0_QUAD
        TA_M0_QUAD
        "cmp r3, r10\n\t"
        "bne 2b\n"
        "3:\n\t"
        "mov r0, r12\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "str r4, [r0]\n\t"
        "str r5, [r0, #4]\n\t"
        "pop {r4, r5, r6}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t"
        ".size ta_m0_dot2, . - ta_m0_dot2\n");
#define TA_M0_ASM 1
#else
#define TA_M0_ASM 0 /* built for another core (the host test harness): the C loops alone */
#endif

static int32_t dot_row(const int8_t *w, const ta_kx *x, int from, int cols)
{
    int32_t s = 0;
    for (int i = from; i < cols; i++) {
        s += w[i] * x[i];
    }
    return s;
}

void ta_matvec_i8(int32_t *acc, const int8_t *w, size_t stride, const ta_kx *x, int rows, int cols)
{
    int cols4 = cols & ~3;
    if (!TA_M0_ASM || ((((uintptr_t)w | (uintptr_t)x | stride) & 3) != 0)) {
        cols4 = 0;
    }
    int r = 0;
    if (cols4 != 0) {
        for (; r + 2 <= rows; r += 2) {
            const int8_t *w0 = w + (size_t)r * stride;
#if TA_M0_ASM
            ta_m0_dot2(acc + r, w0, stride, x, x + cols4);
#endif
            if (cols4 != cols) {
                acc[r] += dot_row(w0, x, cols4, cols);
                acc[r + 1] += dot_row(w0 + stride, x, cols4, cols);
            }
        }
    }
    for (; r < rows; r++) {
        acc[r] = dot_row(w + (size_t)r * stride, x, 0, cols);
    }
}

void ta_kernel_prepare_block(ta_kx *dst, const int8_t *x, size_t x_stride, int n, int nb)
{
    for (int b = 0; b < nb; b++) {
        ta_kernel_prepare(dst + (size_t)b * (size_t)n, x + (size_t)b * x_stride, n);
    }
}

void ta_matmat_i8(int32_t *acc, size_t acc_stride, const int8_t *w, size_t stride, const ta_kx *xb, int rows,
                  int cols, int nb)
{
    for (int b = 0; b < nb; b++) {
        ta_matvec_i8(acc + (size_t)b * acc_stride, w, stride, xb + (size_t)b * (size_t)cols, rows, cols);
    }
}

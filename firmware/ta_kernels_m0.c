/* Cortex-M0/M0+ (Armv6-M) kernels: the ta_kernels.h interface for cores with no DSP instructions, a
 * 32x32 MULS (one cycle on the RP2040's M0+) and 2-cycle loads. Bit-exact with ta_kernels.c: the same
 * int32 sums in another order. The generator compiles this file instead of ta_kernels.c for boards
 * with `kernels = "m0"`.
 *
 * Each weight byte costs its share of a word load, its sign-extension from its byte lane, MULS and
 * ADD; each input its load and widening, shared by the rows of a pass. Two layouts cut the
 * extension and the sharing:
 * - The prepared input is int16 with each complete group of four in the order x0, x3, x1, x2: the
 *   words [x3|x0], [x1|x2] give the inputs of byte lanes 0 and 3 of a weight word (SXTB, ASRS #24),
 *   then REV16 moves lanes 1 and 2 there, so every weight is one instruction to extend (lanes 1 and
 *   2 took two, LSLS and ASRS, before). A column tail past the last group of four is in order.
 * - A model weight matrix (ta_matvec_w; the KV cache is row-major) whose columns are a multiple of 4
 *   is stored in groups of three rows (the last group may have one or two): group g holds rows 3g..
 *   3g+2, and for each four columns one word of each of its rows in turn (codegen/generate.py
 *   `weight_layout`). One LDM fetches the three rows' words, one pointer walks the weights in
 *   flash order, and every input is loaded and widened once for three rows.
 * The main loops are assembly (ta_m0_dot3 for a group of three, ta_m0_dot2 for two rows of a
 * row-major matrix): 51 cycles for four columns of three rows (4.25 per multiply-accumulate), 38 for
 * four of two rows (4.75); they need the weights and inputs word-aligned (the generated arrays and
 * the arena are); anything else takes the C loops, as do groups of one or two rows and column tails.
 * The matmat (prefill) is one matvec per input: the weight extension is the cost on this core, and
 * sharing it between inputs would need more registers than the M0+ has.
 */
#include "ta_kernels.h"

#if defined(__ARM_ARCH) && !defined(__ARM_ARCH_6M__)
#error "ta_kernels_m0.c is for Armv6-M (-mcpu=cortex-m0 or cortex-m0plus); use ta_kernels.c or ta_kernels_cm4.c"
#endif

const int ta_kernel_cols = 4; /* the assembly loops take four columns at a time */

/* Position of input i in the prepared form of n inputs: x0, x3, x1, x2 in each complete group of four
 * (the order ta_kernel_prepare writes). */
static inline int x_pos(int i, int n)
{
    static const unsigned char at[4] = {0, 2, 3, 1};
    return i < (n & ~3) ? (i & ~3) + at[i & 3] : i;
}

void ta_kernel_prepare(ta_kx *dst, const int8_t *x, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        dst[i] = x[i];
        dst[i + 1] = x[i + 3];
        dst[i + 2] = x[i + 1];
        dst[i + 3] = x[i + 2];
    }
    for (; i < n; i++) {
        dst[i] = x[i];
    }
}

void ta_kernel_prepare_q15(ta_kx *dst, const int32_t *p, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        dst[i] = (ta_kx)p[i];
        dst[i + 1] = (ta_kx)p[i + 3];
        dst[i + 2] = (ta_kx)p[i + 1];
        dst[i + 3] = (ta_kx)p[i + 2];
    }
    for (; i < n; i++) {
        dst[i] = (ta_kx)p[i];
    }
}

#if defined(__ARM_ARCH_6M__)
/* acc[0] = sum w0[i] * x[i], acc[1] = sum w0[stride + i] * x[i], for i < x_end - x (a nonzero multiple
 * of 4), x in the prepared order. w0, stride and x word-aligned. AAPCS: r0 acc, r1 w0, r2 stride, r3 x,
 * x_end on the stack. In the loop: r1 row 0 (row 1 at r1 + r2), r3 the inputs, r0 a pair of them,
 * r4 one widened input, r5 and r6 the rows' four weights, r7 a product; r8 and r9 the sums, r10 the
 * end. */
void ta_m0_dot2(int32_t *acc, const int8_t *w0, size_t stride, const ta_kx *x, const ta_kx *x_end);

/* acc[0..3) = the sums of the three rows of a weight group (ta_matvec_w's layout) over x[0 .. x_end - x)
 * (a nonzero multiple of 4), x in the prepared order; w and x word-aligned. AAPCS: r0 acc, r1 w, r2 x,
 * r3 x_end. In the loop: r1 the weights, r3 the inputs, r2, r5 and r6 the rows' four weights, r0 a
 * pair of inputs, r4 one widened input, r7 a product; r8 to r10 the sums, r11 the end, r12 acc. */
void ta_m0_dot3(int32_t *acc, const int8_t *w, const ta_kx *x, const ta_kx *x_end);

/* One input (widened in `xr`) times the weight `ext` puts in r7, added to the sum in `sum`. */
#define TA_M0_MAC(ext, xr, sum) ext "muls r7, " xr ", r7\n\t" "add " sum ", r7\n\t"
/* The same for the last use of a weight word: extended in place by ASRS #24. */
#define TA_M0_MAC_LAST(wr, xr, sum) \
    "asrs " wr ", " wr ", #24\n\t" "muls " wr ", " xr ", " wr "\n\t" "add " sum ", " wr "\n\t"

/* Four columns of two rows (words r5, r6): inputs [x3|x0] then [x1|x2]. Lanes 0 and 3 first, then
 * REV16 ([b1 b0 b3 b2]) and lanes 0 and 3 again. */
#define TA_M0_QUAD2                                                                             \
    "ldr r6, [r1, r2]\n\t"                                                                      \
    "ldm r1!, {r5}\n\t"                                                                         \
    "ldm r3!, {r0}\n\t"                                                                         \
    "sxth r4, r0\n\t"                                                                           \
    TA_M0_MAC("sxtb r7, r5\n\t", "r4", "r8") TA_M0_MAC("sxtb r7, r6\n\t", "r4", "r9")          \
    "asrs r0, r0, #16\n\t"                                                                      \
    TA_M0_MAC("asrs r7, r5, #24\n\t", "r0", "r8") TA_M0_MAC("asrs r7, r6, #24\n\t", "r0", "r9") \
    "ldm r3!, {r0}\n\t"                                                                         \
    "sxth r4, r0\n\t"                                                                           \
    "rev16 r5, r5\n\t"                                                                          \
    "rev16 r6, r6\n\t"                                                                          \
    TA_M0_MAC("sxtb r7, r5\n\t", "r4", "r8") TA_M0_MAC("sxtb r7, r6\n\t", "r4", "r9")          \
    "asrs r0, r0, #16\n\t"                                                                      \
    TA_M0_MAC_LAST("r5", "r0", "r8") TA_M0_MAC_LAST("r6", "r0", "r9")

/* Four columns of a group of three rows: one LDM of their words (r2, r5, r6), then as TA_M0_QUAD2. */
#define TA_M0_QUAD3                                                                             \
    "ldm r1!, {r2, r5, r6}\n\t"                                                                 \
    "ldm r3!, {r0}\n\t"                                                                         \
    "sxth r4, r0\n\t"                                                                           \
    TA_M0_MAC("sxtb r7, r2\n\t", "r4", "r8") TA_M0_MAC("sxtb r7, r5\n\t", "r4", "r9")          \
    TA_M0_MAC("sxtb r7, r6\n\t", "r4", "r10")                                                   \
    "asrs r4, r0, #16\n\t"                                                                      \
    TA_M0_MAC("asrs r7, r2, #24\n\t", "r4", "r8") TA_M0_MAC("asrs r7, r5, #24\n\t", "r4", "r9") \
    TA_M0_MAC("asrs r7, r6, #24\n\t", "r4", "r10")                                              \
    "ldm r3!, {r0}\n\t"                                                                         \
    "sxth r4, r0\n\t"                                                                           \
    "rev16 r2, r2\n\t"                                                                          \
    "rev16 r5, r5\n\t"                                                                          \
    "rev16 r6, r6\n\t"                                                                          \
    TA_M0_MAC("sxtb r7, r2\n\t", "r4", "r8") TA_M0_MAC("sxtb r7, r5\n\t", "r4", "r9")          \
    TA_M0_MAC("sxtb r7, r6\n\t", "r4", "r10")                                                   \
    "asrs r4, r0, #16\n\t"                                                                      \
    TA_M0_MAC_LAST("r2", "r4", "r8") TA_M0_MAC_LAST("r5", "r4", "r9") TA_M0_MAC_LAST("r6", "r4", "r10")

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
        TA_M0_QUAD2
        "cmp r3, r10\n\t"
        "beq 3f\n"
        "2:\n\t"
        TA_M0_QUAD2
        TA_M0_QUAD2
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
        ".size ta_m0_dot2, . - ta_m0_dot2\n\t"
        ".balign 4\n\t"
        ".global ta_m0_dot3\n\t"
        ".type ta_m0_dot3, %function\n\t"
        ".thumb_func\n"
        "ta_m0_dot3:\n\t"
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "push {r4, r5, r6, r7}\n\t"
        "mov r12, r0\n\t"
        "mov r11, r3\n\t"
        "subs r4, r3, r2\n\t"        /* bytes of input: 8 per quad */
        "mov r3, r2\n\t"
        "movs r0, #0\n\t"
        "mov r8, r0\n\t"
        "mov r9, r0\n\t"
        "mov r10, r0\n\t"
        "lsls r4, r4, #28\n\t"       /* an odd number of quads sets bit 31 */
        "bpl 2f\n\t"
        TA_M0_QUAD3
        "cmp r3, r11\n\t"
        "beq 3f\n"
        "2:\n\t"
        TA_M0_QUAD3
        TA_M0_QUAD3
        "cmp r3, r11\n\t"
        "bne 2b\n"
        "3:\n\t"
        "mov r0, r12\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "str r4, [r0]\n\t"
        "str r5, [r0, #4]\n\t"
        "str r6, [r0, #8]\n\t"
        "pop {r4, r5, r6, r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t"
        ".size ta_m0_dot3, . - ta_m0_dot3\n");
#define TA_M0_ASM 1
#else
#define TA_M0_ASM 0 /* built for another core (the host test harness): the C loops alone */
#endif

static int aligned(const void *p)
{
    return ((uintptr_t)p & 3) == 0;
}

/* sum w[i] * input i over from <= i < cols (w row-major, x prepared from n inputs) */
static int32_t dot_row(const int8_t *w, const ta_kx *x, int from, int cols, int n)
{
    int32_t s = 0;
    for (int i = from; i < cols; i++) {
        s += w[i] * x[x_pos(i, n)];
    }
    return s;
}

void ta_matvec_i8(int32_t *acc, const int8_t *w, size_t stride, const ta_kx *x, int rows, int cols)
{
    int cols4 = cols & ~3;
    if (!TA_M0_ASM || !aligned(w) || !aligned(x) || (stride & 3) != 0) {
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
                acc[r] += dot_row(w0, x, cols4, cols, cols);
                acc[r + 1] += dot_row(w0 + stride, x, cols4, cols, cols);
            }
        }
    }
    for (; r < rows; r++) {
        acc[r] = dot_row(w + (size_t)r * stride, x, 0, cols, cols);
    }
}

/* Row j of a weight group of h rows (ta_matvec_w's layout, cols a multiple of 4) times x. */
static int32_t dot_group_row(const int8_t *g, int h, int j, const ta_kx *x, int cols)
{
    int32_t s = 0;
    for (int q = 0; q < cols / 4; q++) {
        const int8_t *b = g + ((size_t)q * (size_t)h + (size_t)j) * 4;
        for (int k = 0; k < 4; k++) {
            s += b[k] * x[x_pos(4 * q + k, cols)];
        }
    }
    return s;
}

void ta_matvec_w(int32_t *acc, const int8_t *w, const ta_kx *x, int rows, int cols)
{
    if (cols % 4 != 0) { /* stored row-major */
        ta_matvec_i8(acc, w, (size_t)cols, x, rows, cols);
        return;
    }
    const int fast = TA_M0_ASM && aligned(w) && aligned(x);
    for (int r = 0; r < rows; r += 3) {
        const int8_t *g = w + (size_t)r * (size_t)cols;
        const int h = rows - r < 3 ? rows - r : 3;
        if (fast && h == 3) {
#if TA_M0_ASM
            ta_m0_dot3(acc + r, g, x, x + cols);
#endif
            continue;
        }
        for (int j = 0; j < h; j++) {
            acc[r + j] = dot_group_row(g, h, j, x, cols);
        }
    }
    (void)fast;
}

void ta_weight_row(int8_t *dst, const int8_t *w, int rows, int cols, int r)
{
    if (cols % 4 != 0) {
        for (int c = 0; c < cols; c++) {
            dst[c] = w[(size_t)r * (size_t)cols + (size_t)c];
        }
        return;
    }
    const int g = r - r % 3;
    const int h = rows - g < 3 ? rows - g : 3;
    const int8_t *b = w + (size_t)g * (size_t)cols + (size_t)(r - g) * 4;
    for (int c = 0; c < cols; c += 4, b += (size_t)h * 4) {
        for (int k = 0; k < 4; k++) {
            dst[c + k] = b[k];
        }
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

void ta_matmat_w(int32_t *acc, size_t acc_stride, const int8_t *w, const ta_kx *xb, int rows, int cols, int nb)
{
    for (int b = 0; b < nb; b++) {
        ta_matvec_w(acc + (size_t)b * acc_stride, w, xb + (size_t)b * (size_t)cols, rows, cols);
    }
}

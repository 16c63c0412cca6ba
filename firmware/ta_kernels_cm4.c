/* Cortex-M4 (ARMv7E-M DSP) kernels: the ta_kernels.h interface with SMLAD, two 16-bit multiply-adds
 * per instruction. Bit-exact with ta_kernels.c: the same integer sums in another order.
 *
 * The prepared input holds each group of four values as (x0, x2, x1, x3), so that one 32-bit load
 * gives [x0|x2] and the next [x1|x3]: the pairs SXTB16 makes of four weight bytes (w0, w2) and,
 * rotated by 8, (w1, w3). A tail of cols % 4 values stays in natural order. The generator compiles
 * this file instead of ta_kernels.c for boards with `kernels = "cm4"`.
 *
 * Instructions per MAC (docs/benchmarks.md): each 4 weights of a row need LDR, SXTB16, SXTB16 ROR 8
 * and 2 SMLAD. When w, stride and x are word-aligned (in practice every matvec of a model whose dims
 * are multiples of 4: GCC word-aligns the weight arrays, the arena is 8-byte aligned), the main loop is
 * inline assembly: two rows by 16 columns per pass, the 16 prepared inputs fetched with two LDM of four
 * words and shared by both rows, each row's 8 weight bytes with one LDRD (neither may be unaligned).
 * That is 40 instructions for 32 MACs, where C got 16 for 8 (GCC neither pairs the loads nor has the
 * registers to keep more in flight). Anything unaligned (odd dims) takes the C loop, two rows by four
 * columns, with unaligned LDR. Both give the same int32 sums.
 *
 * The matmat (prefill) takes up to four inputs past each weight row: per four weights, one LDR (it may
 * be unaligned), SXTB16 twice, then two SMLAD per input, the inputs' groups interleaved so that one
 * LDM fetches two of them. For four inputs that is 13 instructions per 16 MACs. The block form holds
 * the inputs in quads (the last one may have 1 to 3): quad q at dst + 4q * n, its group g of input j
 * at (g * k + j) * 4 for a quad of k, each group in the matvec's (x0, x2, x1, x3) order, so that a
 * quad of one is the matvec's form. It is used where n % 4 == 0 and dst is word-aligned (the model's
 * own dims, in the 8-byte-aligned arena); otherwise the block is the inputs one after another in the
 * matvec's form, and the matmat is one matvec each.
 */
#include "ta_kernels.h"

#include <arm_acle.h>
#include <string.h>

#if !defined(__ARM_FEATURE_SIMD32)
#error "ta_kernels_cm4.c needs the ARMv7E-M DSP instructions (-mcpu=cortex-m4 or later); use ta_kernels.c"
#endif

/* Four bytes as one word; GCC merges this into a single (unaligned-capable) LDR on the M4. */
const int ta_kernel_cols = 16; /* the matvec's loop: sixteen columns of two rows (ta_matvec_i8) */

static inline uint32_t load_w4(const int8_t *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Two prepared int16 values as one word (low half first). */
static inline uint32_t load_x2(const ta_kx *p)
{
    return (uint32_t)(uint16_t)p[0] | (uint32_t)(uint16_t)p[1] << 16;
}

/* SXTB16 of the word rotated by 8: [w1|w3]. GCC's __sxtb16 has no rotate operand (and does not fold a
 * separate rotate into it), so this one instruction is written out. */
static inline int16x2_t sxtb16_ror8(uint32_t v)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* dst[0..4) = the group (a low, a high, b low, b high); memcpy is one STR each (unaligned-capable). */
static inline void store_group(ta_kx *dst, uint32_t a, uint32_t b)
{
    memcpy(dst, &a, sizeof a);
    memcpy(dst + 2, &b, sizeof b);
}

void ta_kernel_prepare(ta_kx *dst, const int8_t *x, int n)
{
    const int n4 = n & ~3;
    int i = 0;
    for (; i < n4; i += 4) { /* bytes x0..x3 -> (x0, x2) and (x1, x3), sign-extended */
        const uint32_t v = load_w4(x + i);
        store_group(dst + i, (uint32_t)__sxtb16((int8x4_t)v), (uint32_t)sxtb16_ror8(v));
    }
    for (; i < n; i++) {
        dst[i] = x[i];
    }
}

void ta_kernel_prepare_q15(ta_kx *dst, const int32_t *p, int n)
{
    const int n4 = n & ~3;
    int i = 0;
    for (; i < n4; i += 4) { /* the low 16 bits of each, as (ta_kx)p[i] keeps them */
        store_group(dst + i, (uint32_t)(uint16_t)p[i] | (uint32_t)p[i + 2] << 16,
                    (uint32_t)(uint16_t)p[i + 1] | (uint32_t)p[i + 3] << 16);
    }
    for (; i < n; i++) {
        dst[i] = (ta_kx)p[i];
    }
}

/* One row's 4-column step: acc += w0*x0 + w2*x2 + w1*x1 + w3*x3. */
#define TA_CM4_STEP(acc, wword, xa, xb)                                              \
    do {                                                                             \
        acc = __smlad(__sxtb16((int8x4_t)(wword)), (int16x2_t)(xa), acc);            \
        acc = __smlad(sxtb16_ror8(wword), (int16x2_t)(xb), acc);                     \
    } while (0)

/* Assembly for the aligned path. TA_CM4_LDX fetches 8 prepared inputs (two groups) into r4, r5, r6, r8;
 * TA_CM4_ROW8 multiplies them by the next 8 weights of one row (LDRD into r9, r10; r11 holds the
 * widened pair), so that per 8 MACs a row costs 9 instructions. */
#define TA_CM4_LDX "ldm %[px]!, {r4, r5, r6, r8}\n\t"
#define TA_CM4_ROW8(s, p)                  \
    "ldrd r9, r10, [%[" p "]], #8\n\t"     \
    "sxtb16 r11, r9\n\t"                   \
    "smlad %[" s "], r11, r4, %[" s "]\n\t" \
    "sxtb16 r9, r9, ror #8\n\t"            \
    "smlad %[" s "], r9, r5, %[" s "]\n\t"  \
    "sxtb16 r11, r10\n\t"                  \
    "smlad %[" s "], r11, r6, %[" s "]\n\t" \
    "sxtb16 r10, r10, ror #8\n\t"          \
    "smlad %[" s "], r10, r8, %[" s "]\n\t"
#define TA_CM4_CLOBBERS "r4", "r5", "r6", "r8", "r9", "r10", "r11", "cc", "memory"

/* Rows p0 and p1 times the inputs px..end (a nonzero multiple of 16 columns), into s0 and s1: 16
 * columns of both rows per pass, 40 instructions for 32 MACs. Advances p0, p1 and px. */
#define TA_CM4_PAIR_LOOP16(s0_, s1_, p0_, p1_, px_, end_)                                       \
    __asm__("1:\n\t"                                                                            \
            TA_CM4_LDX TA_CM4_ROW8("s0", "p0") TA_CM4_ROW8("s1", "p1")                          \
            TA_CM4_LDX TA_CM4_ROW8("s0", "p0") TA_CM4_ROW8("s1", "p1")                          \
            "cmp %[px], %[end]\n\t"                                                             \
            "bne 1b"                                                                            \
            : [s0] "+r"(s0_), [s1] "+r"(s1_), [p0] "+r"(p0_), [p1] "+r"(p1_), [px] "+r"(px_)    \
            : [end] "r"(end_)                                                                   \
            : TA_CM4_CLOBBERS)

/* Unaligned w, stride or x: the C loop, two rows by four columns. */
static void matvec_any(int32_t *restrict acc, const int8_t *restrict w, size_t stride,
                       const ta_kx *restrict x, int rows, int cols)
{
    const int cols4 = cols & ~3;
    int r = 0;
    for (; r + 2 <= rows; r += 2) { /* two rows share each load of x: the M4 has few registers */
        const int8_t *w0 = w + (size_t)r * stride;
        const int8_t *w1 = w0 + stride;
        int32_t s0 = 0, s1 = 0;
        for (int i = 0; i < cols4; i += 4) {
            uint32_t xa = load_x2(x + i), xb = load_x2(x + i + 2);
            uint32_t a = load_w4(w0 + i), b = load_w4(w1 + i);
            TA_CM4_STEP(s0, a, xa, xb);
            TA_CM4_STEP(s1, b, xa, xb);
        }
        for (int i = cols4; i < cols; i++) {
            s0 += w0[i] * x[i];
            s1 += w1[i] * x[i];
        }
        acc[r] = s0;
        acc[r + 1] = s1;
    }
    if (r < rows) {
        const int8_t *w0 = w + (size_t)r * stride;
        int32_t s0 = 0;
        for (int i = 0; i < cols4; i += 4) {
            TA_CM4_STEP(s0, load_w4(w0 + i), load_x2(x + i), load_x2(x + i + 2));
        }
        for (int i = cols4; i < cols; i++) {
            s0 += w0[i] * x[i];
        }
        acc[r] = s0;
    }
}

void ta_matvec_i8(int32_t *restrict acc, const int8_t *restrict w, size_t stride, const ta_kx *restrict x,
                  int rows, int cols)
{
    if ((((uintptr_t)w | (uintptr_t)x | stride) & 3) != 0) {
        matvec_any(acc, w, stride, x, rows, cols);
        return;
    }
    const int cols16 = cols & ~15, cols4 = cols & ~3;
    const ta_kx *const x16 = x + cols16;
    int r = 0;
    if (cols16 == cols && cols != 0) { /* no column tail (the model's own dims): the loop alone */
        const size_t stride2 = 2 * stride;
        const int8_t *wr = w;
        for (int32_t *a = acc, *const a_end = acc + (rows & ~1); a != a_end; a += 2, wr += stride2) {
            const int8_t *p0 = wr, *p1 = wr + stride;
            const ta_kx *px = x;
            int32_t s0 = 0, s1 = 0;
            TA_CM4_PAIR_LOOP16(s0, s1, p0, p1, px, x16);
            a[0] = s0;
            a[1] = s1;
        }
        r = rows & ~1;
    }
    for (; r + 2 <= rows; r += 2) {
        const int8_t *p0 = w + (size_t)r * stride, *p1 = p0 + stride;
        const ta_kx *px = x;
        int32_t s0 = 0, s1 = 0;
        if (cols16 != 0) {
            TA_CM4_PAIR_LOOP16(s0, s1, p0, p1, px, x16);
        }
        if (cols & 8) {
            __asm__(TA_CM4_LDX TA_CM4_ROW8("s0", "p0") TA_CM4_ROW8("s1", "p1")
                    : [s0] "+r"(s0), [s1] "+r"(s1), [p0] "+r"(p0), [p1] "+r"(p1), [px] "+r"(px)
                    :
                    : TA_CM4_CLOBBERS);
        }
        if (cols & 4) {
            const uint32_t xa = load_x2(px), xb = load_x2(px + 2);
            TA_CM4_STEP(s0, load_w4(p0), xa, xb);
            TA_CM4_STEP(s1, load_w4(p1), xa, xb);
            p0 += 4;
            p1 += 4;
        }
        for (int i = cols4; i < cols; i++) {
            s0 += p0[i - cols4] * x[i];
            s1 += p1[i - cols4] * x[i];
        }
        acc[r] = s0;
        acc[r + 1] = s1;
    }
    if (r < rows) { /* the last of an odd number of rows */
        const int8_t *p0 = w + (size_t)r * stride;
        int32_t s0 = 0;
        for (int i = 0; i < cols4; i += 4) {
            TA_CM4_STEP(s0, load_w4(p0 + i), load_x2(x + i), load_x2(x + i + 2));
        }
        for (int i = cols4; i < cols; i++) {
            s0 += p0[i] * x[i];
        }
        acc[r] = s0;
    }
}

/* The block form with quads (above) where n % 4 == 0 and xb is word-aligned; the two sides agree. */
static int quad_form(const ta_kx *xb, int n)
{
    return (n & 3) == 0 && ((uintptr_t)xb & 3) == 0;
}

void ta_kernel_prepare_block(ta_kx *dst, const int8_t *x, size_t x_stride, int n, int nb)
{
    if (!quad_form(dst, n)) {
        for (int b = 0; b < nb; b++) {
            ta_kernel_prepare(dst + (size_t)b * (size_t)n, x + (size_t)b * x_stride, n);
        }
        return;
    }
    for (int q = 0; q < nb; q += 4) {
        const int k = nb - q < 4 ? nb - q : 4;
        ta_kx *base = dst + (size_t)q * (size_t)n;
        for (int j = 0; j < k; j++) {
            const int8_t *xj = x + (size_t)(q + j) * x_stride;
            for (int g = 0; g < n; g += 4) {
                const uint32_t v = load_w4(xj + g);
                store_group(base + (size_t)g * (size_t)k + (size_t)j * 4, (uint32_t)__sxtb16((int8x4_t)v),
                            (uint32_t)sxtb16_ror8(v));
            }
        }
    }
}

/* One group of four weights (LDR from p, may be unaligned) times the groups of k inputs at px: r10 holds
 * [w0|w2], r9 [w1|w3]; each LDM brings two inputs' groups, an LDRD a third's. */
#define TA_CM4_W4                         \
    "ldr r9, [%[p]], #4\n\t"              \
    "sxtb16 r10, r9\n\t"                  \
    "sxtb16 r9, r9, ror #8\n\t"
#define TA_CM4_X2(sa, sb)                              \
    "ldm %[px]!, {r4, r5, r6, r8}\n\t"                \
    "smlad %[" sa "], r10, r4, %[" sa "]\n\t"         \
    "smlad %[" sa "], r9, r5, %[" sa "]\n\t"          \
    "smlad %[" sb "], r10, r6, %[" sb "]\n\t"         \
    "smlad %[" sb "], r9, r8, %[" sb "]\n\t"
#define TA_CM4_X1(sa)                                  \
    "ldrd r4, r5, [%[px]], #8\n\t"                    \
    "smlad %[" sa "], r10, r4, %[" sa "]\n\t"         \
    "smlad %[" sa "], r9, r5, %[" sa "]\n\t"
#define TA_CM4_G4 TA_CM4_W4 TA_CM4_X2("s0", "s1") TA_CM4_X2("s2", "s3")
#define TA_CM4_G3 TA_CM4_W4 TA_CM4_X2("s0", "s1") TA_CM4_X1("s2")
#define TA_CM4_G2 TA_CM4_W4 TA_CM4_X2("s0", "s1")
#define TA_CM4_MM_CLOBBERS "r4", "r5", "r6", "r8", "r9", "r10", "cc", "memory"
/* `group` over px .. end (groups of k inputs), `unroll` groups per pass; nothing if px == end. */
#define TA_CM4_MM_LOOP(group, unroll_body)                                                     \
    __asm__("cmp %[px], %[end]\n\t"                                                         \
            "beq 2f\n\t"                                                                    \
            "1:\n\t" unroll_body                                                            \
            "cmp %[px], %[end]\n\t"                                                         \
            "bne 1b\n\t"                                                                    \
            "2:"                                                                             \
            : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [p] "+r"(p), [px] "+r"(px) \
            : [end] "r"(end)                                                                 \
            : TA_CM4_MM_CLOBBERS)

/* One weight row of `cols` (a multiple of 4) times the k (2..4) inputs of a quad at base. */
static void row_quad(int32_t *a, size_t acc_stride, const int8_t *p, const ta_kx *base, int cols, int k)
{
    const ta_kx *px = base;
    const ta_kx *const end16 = base + (size_t)(cols & ~15) * (size_t)k;
    const ta_kx *const end4 = base + (size_t)cols * (size_t)k;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    const ta_kx *end = end16;
    if (k == 4) {
        TA_CM4_MM_LOOP(TA_CM4_G4, TA_CM4_G4 TA_CM4_G4 TA_CM4_G4 TA_CM4_G4);
        end = end4;
        TA_CM4_MM_LOOP(TA_CM4_G4, TA_CM4_G4);
        a[3 * acc_stride] = s3;
        a[2 * acc_stride] = s2;
    } else if (k == 3) {
        TA_CM4_MM_LOOP(TA_CM4_G3, TA_CM4_G3 TA_CM4_G3 TA_CM4_G3 TA_CM4_G3);
        end = end4;
        TA_CM4_MM_LOOP(TA_CM4_G3, TA_CM4_G3);
        a[2 * acc_stride] = s2;
    } else {
        TA_CM4_MM_LOOP(TA_CM4_G2, TA_CM4_G2 TA_CM4_G2 TA_CM4_G2 TA_CM4_G2);
        end = end4;
        TA_CM4_MM_LOOP(TA_CM4_G2, TA_CM4_G2);
    }
    a[acc_stride] = s1;
    a[0] = s0;
}

/* Every row times a quad of k (2..4) inputs where cols is a nonzero multiple of 8 (the model's own
 * dims, a head's 24): row_quad's main loop alone, `body` (the groups of 16 or of 8 columns) a pass,
 * with the row loop around it kept lean (no tail loop to enter, the weight pointer running on from
 * row to row). */
#define TA_CM4_ROWS_QUAD(body)                                                                        \
    for (int32_t *const a_end = a + rows; a != a_end; a++, p += gap) {                                \
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                       \
        const ta_kx *px = base;                                                                       \
        __asm__("1:\n\t" body                                                                          \
                "cmp %[px], %[end]\n\t"                                                               \
                "bne 1b"                                                                              \
                : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [p] "+r"(p), [px] "+r"(px) \
                : [end] "r"(end)                                                                      \
                : TA_CM4_MM_CLOBBERS);                                                                \
        a[0] = s0;                                                                                    \
        a[acc_stride] = s1;                                                                           \
        if (k > 2) {                                                                                  \
            a[2 * acc_stride] = s2;                                                                   \
        }                                                                                             \
        if (k > 3) {                                                                                  \
            a[3 * acc_stride] = s3;                                                                   \
        }                                                                                             \
    }

static void rows_quad(int32_t *a, size_t acc_stride, const int8_t *w, size_t stride, const ta_kx *base, int rows,
                      int cols, int k)
{
    const ta_kx *const end = base + (size_t)cols * (size_t)k;
    const size_t gap = stride - (size_t)cols;
    const int8_t *p = w;
    if ((cols & 15) == 0) {
        if (k == 4) {
            TA_CM4_ROWS_QUAD(TA_CM4_G4 TA_CM4_G4 TA_CM4_G4 TA_CM4_G4)
        } else if (k == 3) {
            TA_CM4_ROWS_QUAD(TA_CM4_G3 TA_CM4_G3 TA_CM4_G3 TA_CM4_G3)
        } else {
            TA_CM4_ROWS_QUAD(TA_CM4_G2 TA_CM4_G2 TA_CM4_G2 TA_CM4_G2)
        }
    } else if (k == 4) {
        TA_CM4_ROWS_QUAD(TA_CM4_G4 TA_CM4_G4)
    } else if (k == 3) {
        TA_CM4_ROWS_QUAD(TA_CM4_G3 TA_CM4_G3)
    } else {
        TA_CM4_ROWS_QUAD(TA_CM4_G2 TA_CM4_G2)
    }
}

void ta_matmat_i8(int32_t *acc, size_t acc_stride, const int8_t *w, size_t stride, const ta_kx *xb, int rows,
                  int cols, int nb)
{
    if (!quad_form(xb, cols)) {
        for (int b = 0; b < nb; b++) {
            ta_matvec_i8(acc + (size_t)b * acc_stride, w, stride, xb + (size_t)b * (size_t)cols, rows, cols);
        }
        return;
    }
    for (int q = 0; q < nb; q += 4) {
        const int k = nb - q < 4 ? nb - q : 4;
        const ta_kx *base = xb + (size_t)q * (size_t)cols;
        int32_t *a = acc + (size_t)q * acc_stride;
        if (k == 1) { /* a quad of one is the matvec's form */
            ta_matvec_i8(a, w, stride, base, rows, cols);
            continue;
        }
        if ((cols & 7) == 0 && cols != 0) {
            rows_quad(a, acc_stride, w, stride, base, rows, cols, k);
            continue;
        }
        for (int r = 0; r < rows; r++) {
            row_quad(a + r, acc_stride, w + (size_t)r * stride, base, cols, k);
        }
    }
}

#include "ta_kernels_rowmajor.h" /* ta_matvec_w, ta_matmat_w, ta_weight_row: row-major weights */

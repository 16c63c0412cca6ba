/* Cortex-M4 (ARMv7E-M DSP) kernels: the ta_kernels.h interface with SMLAD, two 16-bit multiply-adds
 * per instruction. Bit-exact with ta_kernels.c: the same integer sums in another order.
 *
 * The prepared input holds each group of four values as (x0, x2, x1, x3), so that one 32-bit load
 * gives [x0|x2] and the next [x1|x3]: the pairs SXTB16 makes of four weight bytes (w0, w2) and,
 * rotated by 8, (w1, w3). A tail of cols % 4 values stays in natural order. The generator compiles
 * this file instead of ta_kernels.c for boards with `kernels = "cm4"`.
 */
#include "ta_kernels.h"

#include <arm_acle.h>

#if !defined(__ARM_FEATURE_SIMD32)
#error "ta_kernels_cm4.c needs the ARMv7E-M DSP instructions (-mcpu=cortex-m4 or later); use ta_kernels.c"
#endif

/* Four bytes as one word; GCC merges this into a single (unaligned-capable) LDR on the M4. */
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

static void prepare_groups(ta_kx *dst, int n, const int8_t *x8, const int32_t *x32)
{
    const int n4 = n & ~3;
    for (int i = 0; i < n; i++) {
        int j = i < n4 ? (i & ~3) | ((i & 1) << 1) | ((i >> 1) & 1) : i; /* 0,1,2,3 -> 0,2,1,3 */
        dst[j] = x8 ? (ta_kx)x8[i] : (ta_kx)x32[i];
    }
}

void ta_kernel_prepare(ta_kx *dst, const int8_t *x, int n)
{
    prepare_groups(dst, n, x, 0);
}

void ta_kernel_prepare_q15(ta_kx *dst, const int32_t *p, int n)
{
    prepare_groups(dst, n, 0, p);
}

/* One row's 4-column step: acc += w0*x0 + w2*x2 + w1*x1 + w3*x3. */
#define TA_CM4_STEP(acc, wword, xa, xb)                                              \
    do {                                                                             \
        acc = __smlad(__sxtb16((int8x4_t)(wword)), (int16x2_t)(xa), acc);            \
        acc = __smlad(sxtb16_ror8(wword), (int16x2_t)(xb), acc);                     \
    } while (0)

void ta_matvec_i8(int32_t *restrict acc, const int8_t *restrict w, size_t stride, const ta_kx *restrict x,
                  int rows, int cols)
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

/* The integer helpers of docs/integer-contract.md, one for one with host/tinyagent/integer/intmath.py.
 *
 * Every function here is integer-only and header-only (static inline), so each kernel and the engine
 * inline them. Each states its input contract; outside it the result is unspecified (but never
 * undefined behaviour in C: no signed overflow, no shift of a negative value).
 */
#ifndef TA_INTMATH_H
#define TA_INTMATH_H

#include <stdint.h>

#if defined(__ARM_FEATURE_SAT)
#include <arm_acle.h> /* __ssat: one SSAT instruction (Armv6 and Armv7-M; not Armv6-M) */
#endif

#define TA_EXP_ENTRIES 256 /* softmax exp table: 0 .. 255 steps below the row maximum */

/* C leaves >> of a negative value to the implementation; the contract needs floor (arithmetic)
 * shifts, which every compiler we target does. This fails to compile where that is not so. */
typedef char ta_check_arithmetic_shift[((int64_t)-5 >> 1) == -3 ? 1 : -1];

/* floor(v / 2^sh) for 0 <= sh <= 63 (an arithmetic shift; see the check above). */
static inline int64_t ta_asr64(int64_t v, int sh)
{
    return v >> sh;
}

static inline int8_t ta_sat8(int64_t v)
{
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

static inline int16_t ta_sat16(int64_t v)
{
    return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}

/* sat8 and sat16 of an int32: the same results, one SSAT where the core has it. */
static inline int32_t ta_sat8_32(int32_t v)
{
#if defined(__ARM_FEATURE_SAT)
    return __ssat(v, 8);
#else
    return v < -128 ? -128 : v > 127 ? 127 : v;
#endif
}

static inline int32_t ta_sat16_32(int32_t v)
{
#if defined(__ARM_FEATURE_SAT)
    return __ssat(v, 16);
#else
    return v < -32768 ? -32768 : v > 32767 ? 32767 : v;
#endif
}

static inline int32_t ta_sat32(int64_t v)
{
    return (int32_t)(v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);
}

/* round-half-up(x * m / 2^sh) = (x*m + 2^(sh-1)) >> sh in int64.
 * Contract: x fits int32, 0 <= m < 2^31, 1 <= sh <= 62 (so |x*m| + 2^(sh-1) < 2^63). */
static inline int64_t ta_mul_shift(int64_t x, int32_t m, int sh)
{
    return ta_asr64(x * (int64_t)m + ((int64_t)1 << (sh - 1)), sh);
}

typedef char ta_check_arithmetic_shift32[((int32_t)-5 >> 1) == -3 ? 1 : -1];

/* The high word of the 64-bit product x * m: floor(x * m / 2^32). Where the core has no 32x32->64
 * multiply (Armv6-M: MULS gives the low word only, and the C compiler calls a 64x64 library multiply
 * for it), from four 16x16 products, exactly (Hacker's Delight, mulhs); TA_MULHS_SPLIT forces that
 * form anywhere, so the host tests check it too. */
static inline int32_t ta_mulhs(int32_t x, int32_t m)
{
#if defined(__ARM_ARCH_6M__) || defined(TA_MULHS_SPLIT)
    uint32_t x0 = (uint32_t)x & 0xFFFFu, m0 = (uint32_t)m & 0xFFFFu;
    int32_t x1 = x >> 16, m1 = m >> 16;
    uint32_t w0 = x0 * m0;
    int32_t t = x1 * (int32_t)m0 + (int32_t)(w0 >> 16);
    int32_t w1 = (int32_t)x0 * m1 + (t & 0xFFFF);
    return x1 * m1 + (t >> 16) + (w1 >> 16);
#else
    return (int32_t)(((int64_t)x * m) >> 32);
#endif
}

/* mul_shift(x, m, sh) for an int32 x and 33 <= sh <= 62, in 32-bit arithmetic after the high word of
 * the product. The rounding term 2^(sh-1) is a multiple of 2^32, so floor((x*m + 2^(sh-1)) / 2^sh) =
 * floor((floor(x*m / 2^32) + 2^(sh-33)) / 2^(sh-32)) exactly (floor divisions nest), and every step
 * fits int32: |x*m| < 2^62. */
static inline int32_t ta_mul_shift_hi(int32_t x, int32_t m, int sh)
{
    return (ta_mulhs(x, m) + ((int32_t)1 << (sh - 33))) >> (sh - 32);
}

/* clamp(mul_shift(x, m, sh), lo, hi) for an int32 x and 1 <= sh <= 32 (lo <= 0 <= hi), with no 64-bit
 * shift: the product (and its rounding term) as a high word h and low word l, then
 * r = h * 2^(32-sh) + (l >> sh). r fits int32 exactly when -2^(sh-1) <= h < 2^(sh-1); above, r is
 * at least 2^31 (so hi), below, less than -2^31 (so lo). Where the core has no 32x32->64 multiply
 * (Armv6-M, or TA_MULHS_SPLIT), h is ta_mulhs and l the low product, l + 2^(sh-1) carrying into h. */
static inline int32_t ta_mul_shift_sat(int32_t x, int32_t m, int sh, int32_t lo, int32_t hi)
{
#if !(defined(__ARM_ARCH_6M__) || defined(TA_MULHS_SPLIT))
    /* A core with a 32x32->64 multiply-accumulate (SMLAL on the M4): the product plus the rounding
     * term as one 64-bit value p, |p| < 2^62, then floor(p / 2^sh) from its two words. That value
     * fits int32 exactly when the high word's bits from sh-1 up are all its sign. */
    const int64_t p = (int64_t)x * m + ((int64_t)1 << (sh - 1));
    const int32_t ph = (int32_t)(p >> 32);
    int32_t v = ph;
    if (sh < 32) {
        if ((ph >> (sh - 1)) != (ph >> 31)) {
            return ph < 0 ? lo : hi;
        }
        v = (int32_t)(((uint32_t)ph << (32 - sh)) | ((uint32_t)(uint64_t)p >> sh));
    }
    return v < lo ? lo : v > hi ? hi : v;
#else
    int32_t h = ta_mulhs(x, m);
    uint32_t l = (uint32_t)x * (uint32_t)m;
    uint32_t lr = l + ((uint32_t)1 << (sh - 1));
    h += lr < l; /* the carry; |h| < 2^30, so no overflow */
    int32_t r;
    if (sh == 32) {
        r = h;
    } else {
        int32_t bound = (int32_t)1 << (sh - 1);
        if (h >= bound) {
            return hi;
        }
        if (h < -bound) {
            return lo;
        }
        r = (int32_t)((uint32_t)h << (32 - sh)) + (int32_t)(lr >> sh);
    }
    return r < lo ? lo : r > hi ? hi : r;
#endif
}

/* clamp(mul_shift(x, m, sh), lo, hi) for an int32 x and any 1 <= sh <= 62, in 32-bit arithmetic. */
static inline int32_t ta_mul_shift_clamp(int32_t x, int32_t m, int sh, int32_t lo, int32_t hi)
{
    if (sh >= 33) {
        int32_t r = ta_mul_shift_hi(x, m, sh);
        return r < lo ? lo : r > hi ? hi : r;
    }
    return ta_mul_shift_sat(x, m, sh, lo, hi);
}

/* sat8(mul_shift(acc, m, sh)): an int32 accumulator to an int8 activation. Contract: mul_shift's. */
static inline int8_t ta_requant_i8(int32_t acc, int32_t m, int sh)
{
    if (sh >= 33) { /* nearly every shift of a trained model */
        return (int8_t)ta_sat8_32(ta_mul_shift_hi(acc, m, sh));
    }
    return (int8_t)ta_mul_shift_sat(acc, m, sh, -128, 127);
}

/* sat16(mul_shift(x, m, sh)): ta_mul_shift_clamp to the int16 range (the embeddings' terms). */
static inline int16_t ta_requant_i16(int32_t x, int32_t m, int sh)
{
    if (sh >= 33) {
        return (int16_t)ta_sat16_32(ta_mul_shift_hi(x, m, sh));
    }
    return (int16_t)ta_mul_shift_sat(x, m, sh, -32768, 32767);
}

/* sat16(x + sat16(mul_shift(acc, m, sh))): add a layer's output to the int16 residual stream. */
static inline int16_t ta_residual_add(int16_t x, int32_t acc, int32_t m, int sh)
{
    return (int16_t)ta_sat16_32((int32_t)x + ta_requant_i16(acc, m, sh));
}

/* floor(sqrt(n)) for any uint64 n, by the bitwise (digit-by-digit) method: no division, no float. */
static inline uint32_t ta_isqrt64(uint64_t n)
{
    uint64_t rem = n, root = 0, bit = (uint64_t)1 << 62;
    while (bit > n) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (rem >= root + bit) {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)root;
}

/* y = x * K / sqrt(sum x^2) as int8, K = sqrt(d) / s_out in Q16 (the norm's gain is folded into the
 * next weights). Contract: 1 <= d <= 2^16, 0 <= k < 2^31. An all-zero x gives an all-zero y. */
static inline void ta_rmsnorm(int8_t *y, const int16_t *x, int d, int32_t k)
{
    uint64_t ss = 0;
    for (int i = 0; i < d; i++) {
        ss += (uint64_t)((int32_t)x[i] * (int32_t)x[i]);
    }
    uint32_t r = ta_isqrt64(ss);
    if (r == 0) {
        for (int i = 0; i < d; i++) {
            y[i] = 0;
        }
        return;
    }
    int64_t m = (int64_t)(((uint64_t)(uint32_t)k << 15) / r); /* < 2^46 */
    for (int i = 0; i < d; i++) {
        y[i] = (int8_t)ta_sat8_32((int32_t)ta_asr64((int64_t)x[i] * m + ((int64_t)1 << 30), 31)); /* |.| < 2^30 */
    }
}

/* Q15 probabilities p[0..n) (int32, 0 .. 32768) of int32 scores s[0..n).
 * z_j = min(mul_shift(max - s_j, m, sh), 255); e_j = exp_table[z_j]; p_j = (e_j * (2^30 / sum e) + 2^14) >> 15.
 * Contract: 1 <= n <= 2^16, |s_j| < 2^30, mul_shift's m and sh; exp_table[0] == 32768 (so sum e >= 2^15).
 * p may alias s. Returns 1 if some p_j is 32768 (then it is the only nonzero one), else 0. */
static inline int ta_softmax_q15(int32_t *p, const int32_t *s, int n, int32_t m, int sh,
                                 const uint16_t *exp_table)
{
    int32_t mx = s[0];
    for (int j = 1; j < n; j++) {
        if (s[j] > mx) {
            mx = s[j];
        }
    }
    uint32_t sum = 0;
    if (sh >= 33) { /* every trained model: ta_mul_shift_hi's steps, the rounding term made once; z >= 0 */
        const int32_t rnd = (int32_t)1 << (sh - 33);
        const int down = sh - 32;
        for (int j = 0; j < n; j++) {
            const int32_t z = (ta_mulhs(mx - s[j], m) + rnd) >> down;
            const uint32_t e = exp_table[z < TA_EXP_ENTRIES - 1 ? z : TA_EXP_ENTRIES - 1];
            p[j] = (int32_t)e;
            sum += e;
        }
    } else {
        for (int j = 0; j < n; j++) {
            /* 0 <= mx - s_j < 2^31: min(mul_shift(.), last entry) in 32-bit arithmetic */
            const int32_t z = ta_mul_shift_clamp(mx - s[j], m, sh, 0, TA_EXP_ENTRIES - 1);
            const uint32_t e = exp_table[z];
            p[j] = (int32_t)e;
            sum += e;
        }
    }
    uint32_t inv = ((uint32_t)1 << 30) / sum;
    uint32_t whole = 0; /* bit 15 of any p_j: set only by 32768, the largest p_j can be */
    for (int j = 0; j < n; j++) {
        const uint32_t q = ((uint32_t)p[j] * inv + ((uint32_t)1 << 14)) >> 15;
        p[j] = (int32_t)q;
        whole |= q;
    }
    return (int)((whole >> 15) & 1u);
}

/* The lowest index among the maxima of v[0..n), n >= 1. */
static inline int ta_argmax_i32(const int32_t *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

/* FNV-1a 32 over the little-endian bytes of v[0..n): the logit checksum of the console's !run. */
static inline uint32_t ta_fnv1a_i32(const int32_t *v, int n)
{
    uint32_t h = 0x811C9DC5u;
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)v[i];
        for (int b = 0; b < 32; b += 8) {
            h = (h ^ ((u >> b) & 0xFFu)) * 0x01000193u;
        }
    }
    return h;
}

#endif /* TA_INTMATH_H */

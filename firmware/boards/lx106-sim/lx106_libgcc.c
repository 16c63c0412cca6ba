/* Integer division and 64-bit multiply for the lx106 board.
 *
 * The LX106 has no divide instructions and no high-half multiply, and Debian's libgcc for
 * xtensa-lx106-elf lacks the helpers GCC calls instead (its __moddi3 and friends even call the
 * missing ones), so the board links these. They follow the libgcc contracts: quotients round toward
 * zero, a remainder takes the sign of the dividend, and INT_MIN / -1 wraps to INT_MIN. Division by
 * zero is undefined in C; here it gives an all-ones quotient and the dividend as the remainder (as
 * RISC-V's divide instructions do) instead of trapping.
 *
 * Nothing in this file may use `/`, `%` or a 64-bit `*`: GCC would turn them back into calls to
 * these very functions.
 */
#include <stdint.h>

uint32_t __udivsi3(uint32_t n, uint32_t d);
uint32_t __umodsi3(uint32_t n, uint32_t d);
int32_t __divsi3(int32_t n, int32_t d);
int32_t __modsi3(int32_t n, int32_t d);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem);
int64_t __divdi3(int64_t n, int64_t d);
int64_t __moddi3(int64_t n, int64_t d);
uint64_t __umulsidi3(uint32_t a, uint32_t b);
uint64_t __muldi3(uint64_t a, uint64_t b);

/* ---- 32-bit ---- */

/* Shift-subtract long division: line d up under n's top bit, then one quotient bit per step. */
static uint32_t udivmod32(uint32_t n, uint32_t d, uint32_t *rem)
{
    if (d == 0u) {
        *rem = n;
        return 0xFFFFFFFFu;
    }
    if (n < d) {
        *rem = n;
        return 0u;
    }
    int shift = __builtin_clz(d) - __builtin_clz(n); /* NSAU on the lx106 */
    uint32_t q = 0u;
    d <<= shift;
    for (; shift >= 0; shift--) {
        q <<= 1;
        if (n >= d) {
            n -= d;
            q |= 1u;
        }
        d >>= 1;
    }
    *rem = n;
    return q;
}

static uint32_t abs32(int32_t v) { return v < 0 ? 0u - (uint32_t)v : (uint32_t)v; }

uint32_t __udivsi3(uint32_t n, uint32_t d)
{
    uint32_t r;
    return udivmod32(n, d, &r);
}

uint32_t __umodsi3(uint32_t n, uint32_t d)
{
    uint32_t r;
    (void)udivmod32(n, d, &r);
    return r;
}

int32_t __divsi3(int32_t n, int32_t d)
{
    uint32_t r;
    uint32_t q = udivmod32(abs32(n), abs32(d), &r);
    return (int32_t)((n < 0) != (d < 0) ? 0u - q : q);
}

int32_t __modsi3(int32_t n, int32_t d)
{
    uint32_t r;
    (void)udivmod32(abs32(n), abs32(d), &r);
    return (int32_t)(n < 0 ? 0u - r : r);
}

/* ---- 64-bit ---- */

static int clz64(uint64_t v)
{
    uint32_t hi = (uint32_t)(v >> 32);
    return hi != 0u ? __builtin_clz(hi) : 32 + __builtin_clz((uint32_t)v);
}

static uint64_t udivmod64(uint64_t n, uint64_t d, uint64_t *rem)
{
    if (d == 0u) {
        *rem = n;
        return UINT64_MAX;
    }
    if ((n >> 32) == 0u && (d >> 32) == 0u) {
        uint32_t r32;
        uint32_t q32 = udivmod32((uint32_t)n, (uint32_t)d, &r32);
        *rem = r32;
        return q32;
    }
    if (n < d) {
        *rem = n;
        return 0u;
    }
    int shift = clz64(d) - clz64(n);
    uint64_t q = 0u;
    d <<= shift;
    for (; shift >= 0; shift--) {
        q <<= 1;
        if (n >= d) {
            n -= d;
            q |= 1u;
        }
        d >>= 1;
    }
    *rem = n;
    return q;
}

static uint64_t abs64(int64_t v) { return v < 0 ? 0u - (uint64_t)v : (uint64_t)v; }

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem)
{
    uint64_t r;
    uint64_t q = udivmod64(n, d, &r);
    if (rem != 0) {
        *rem = r;
    }
    return q;
}

uint64_t __udivdi3(uint64_t n, uint64_t d)
{
    uint64_t r;
    return udivmod64(n, d, &r);
}

uint64_t __umoddi3(uint64_t n, uint64_t d)
{
    uint64_t r;
    (void)udivmod64(n, d, &r);
    return r;
}

int64_t __divdi3(int64_t n, int64_t d)
{
    uint64_t r;
    uint64_t q = udivmod64(abs64(n), abs64(d), &r);
    return (int64_t)((n < 0) != (d < 0) ? 0u - q : q);
}

int64_t __moddi3(int64_t n, int64_t d)
{
    uint64_t r;
    (void)udivmod64(abs64(n), abs64(d), &r);
    return (int64_t)(n < 0 ? 0u - r : r);
}

/* 32 x 32 -> 64 from four 16 x 16 -> 32 products (each fits MULL's 32-bit result). */
uint64_t __umulsidi3(uint32_t a, uint32_t b)
{
    uint32_t al = a & 0xFFFFu, ah = a >> 16;
    uint32_t bl = b & 0xFFFFu, bh = b >> 16;
    uint32_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    uint32_t mid = (ll >> 16) + (lh & 0xFFFFu) + (hl & 0xFFFFu); /* < 3 * 2^16 */
    uint32_t lo = (ll & 0xFFFFu) | (mid << 16);
    uint32_t hi = hh + (lh >> 16) + (hl >> 16) + (mid >> 16);
    return ((uint64_t)hi << 32) | lo;
}

/* Low 64 bits of a 64 x 64 product: the cross terms only reach the high word. */
uint64_t __muldi3(uint64_t a, uint64_t b)
{
    uint32_t alo = (uint32_t)a, ahi = (uint32_t)(a >> 32);
    uint32_t blo = (uint32_t)b, bhi = (uint32_t)(b >> 32);
    uint64_t p = __umulsidi3(alo, blo);
    uint32_t cross = alo * bhi + ahi * blo;
    return p + ((uint64_t)cross << 32);
}

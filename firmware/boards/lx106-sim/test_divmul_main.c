/* Test program for lx106_libgcc.c (built by tests/test_boards.py; board-independent, ta_hal.h only).
 *
 * After the first line arrives it prints one line per operand pair, all in hex, then "done":
 *   "w <a> <b> <a/b> <a%b> <sa/sb> <sa%sb>"            32-bit, s = the same bits as int32_t
 *   "d <a> <b> <a/b> <a%b> <sa/sb> <sa%sb> <a*b>"      64-bit, s = int64_t, product mod 2^64
 *   "m <x> <y> <(uint64)x*y> <(int64)sx*sy>"           32 x 32 -> 64 widening products
 * The host recomputes every result. Pairs are edge values crossed with each other, then
 * pseudo-random values of every magnitude. Pairs that C leaves undefined (b == 0, MIN / -1) are
 * skipped. Output uses shifts only, so printing does not depend on the helpers under test.
 */
#include "ta_hal.h"

#define RANDOM_PAIRS 400

static uint32_t rng = 0x2545F491u;

static uint32_t next32(void) /* xorshift32 */
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Random bits, then a random right shift so that every magnitude turns up. */
static uint32_t any32(void)
{
    uint32_t bits = next32();
    return bits >> (next32() & 31u);
}

static uint64_t any64(void)
{
    uint64_t hi = next32();
    uint64_t v = (hi << 32) | next32();
    return v >> (next32() & 63u);
}

static void put_hex(uint64_t v)
{
    char buf[17];
    int i = 16;
    buf[16] = ' ';
    do {
        buf[--i] = "0123456789abcdef"[v & 15u];
        v >>= 4;
    } while (v != 0u);
    ta_hal_write(buf + i, (size_t)(17 - i));
}

static void check32(uint32_t a, uint32_t b)
{
    if (b == 0u) {
        return;
    }
    int32_t sa = (int32_t)a, sb = (int32_t)b;
    int signed_ok = !(sa == INT32_MIN && sb == -1);
    ta_hal_write("w ", 2);
    put_hex(a);
    put_hex(b);
    put_hex(a / b);
    put_hex(a % b);
    put_hex(signed_ok ? (uint32_t)(sa / sb) : 0u);
    put_hex(signed_ok ? (uint32_t)(sa % sb) : 0u);
    ta_hal_write("\n", 1);
}

static void check64(uint64_t a, uint64_t b)
{
    if (b == 0u) {
        return;
    }
    int64_t sa = (int64_t)a, sb = (int64_t)b;
    int signed_ok = !(sa == INT64_MIN && sb == -1);
    ta_hal_write("d ", 2);
    put_hex(a);
    put_hex(b);
    put_hex(a / b);
    put_hex(a % b);
    put_hex(signed_ok ? (uint64_t)(sa / sb) : 0u);
    put_hex(signed_ok ? (uint64_t)(sa % sb) : 0u);
    put_hex(a * b);
    ta_hal_write("\n", 1);
}

static void check_widening(uint32_t x, uint32_t y)
{
    ta_hal_write("m ", 2);
    put_hex(x);
    put_hex(y);
    put_hex((uint64_t)x * y);
    put_hex((uint64_t)((int64_t)(int32_t)x * (int32_t)y));
    ta_hal_write("\n", 1);
}

static const uint32_t edge32[] = {
    0u, 1u, 2u, 3u, 7u, 10u, 0xFFFFu, 0x10000u, 0x12345678u, 0x7FFFFFFFu,
    0x80000000u, 0x80000001u, 0xFFFFFFFEu, 0xFFFFFFFFu,
};
static const uint64_t edge64[] = {
    0u, 1u, 3u, 10u, 0xFFFFFFFFu, 0x100000000u, 0x123456789ABCDEFu, 0x7FFFFFFFFFFFFFFFu,
    0x8000000000000000u, 0x8000000000000001u, 0xFFFFFFFF00000000u, 0xFFFFFFFFFFFFFFFFu,
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    ta_hal_init();
    while (ta_hal_getc() != '\n') {
    }
    for (size_t i = 0; i < COUNT(edge32); i++) {
        for (size_t j = 0; j < COUNT(edge32); j++) {
            check32(edge32[i], edge32[j]);
            check_widening(edge32[i], edge32[j]);
        }
    }
    for (size_t i = 0; i < COUNT(edge64); i++) {
        for (size_t j = 0; j < COUNT(edge64); j++) {
            check64(edge64[i], edge64[j]);
        }
    }
    for (int k = 0; k < RANDOM_PAIRS; k++) {
        /* one draw per statement: argument evaluation order differs between compilers */
        uint32_t a = any32(), b = any32();
        check32(a, b);
        uint64_t c = any64(), d = any64();
        check64(c, d);
        uint32_t x = next32(), y = next32();
        check_widening(x, y);
    }
    ta_hal_write("done\n", 5);
    ta_hal_exit(0);
    return 0;
}

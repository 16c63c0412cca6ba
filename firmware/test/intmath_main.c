/* Test program for ta_intmath.h and the kernels (tests/test_intmath_c.py): one operation per input
 * line, its result on one output line, so the host can hold each helper to its numpy twin.
 *
 *   mul_shift X M SH | requant X M SH | residual X ACC M SH     -> one integer
 *   sat8 V | sat16 V | sat32 V | asr V SH | isqrt N             -> one integer
 *   exp E0 .. E255                                              -> "ok" (sets the softmax table)
 *   rmsnorm K D X0 .. XD-1 | softmax M SH N S0 .. SN-1          -> D or N integers
 *   argmax N V0 .. | fnv N V0 ..                                -> index | 8 hex digits
 *   matvec ROWS COLS STRIDE W0 .. W(ROWS*STRIDE-1) X0 .. XCOLS-1 -> ROWS integers (x int8)
 *   matvec_q15 (the same, x Q15 probabilities 0 .. 32767)       -> ROWS integers
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ta_intmath.h"
#include "ta_kernels.h"

#define MAX_N 65536

static int64_t a64[MAX_N];
static int8_t w8[MAX_N], x8[MAX_N / 16];
static int16_t x16[MAX_N / 16];
static int32_t s32[MAX_N / 16], p32[MAX_N / 16];
static int8_t y8[MAX_N / 16];
static ta_kx kx[MAX_N / 16];
static uint16_t exp_table[TA_EXP_ENTRIES];

static int64_t next_i64(void)
{
    long long v;
    if (scanf("%lld", &v) != 1) {
        fprintf(stderr, "intmath_main: expected an integer\n");
        exit(2);
    }
    return (int64_t)v;
}

static void read_n(int64_t *dst, long n)
{
    for (long i = 0; i < n; i++) {
        dst[i] = next_i64();
    }
}

int main(void)
{
    char op[32];
    while (scanf("%31s", op) == 1) {
        if (strcmp(op, "mul_shift") == 0) {
            int64_t x = next_i64(), m = next_i64(), sh = next_i64();
            printf("%" PRId64 "\n", ta_mul_shift(x, (int32_t)m, (int)sh));
        } else if (strcmp(op, "mulhs") == 0) {
            int64_t x = next_i64(), m = next_i64();
            printf("%" PRId32 "\n", ta_mulhs((int32_t)x, (int32_t)m));
        } else if (strcmp(op, "clamp") == 0) {
            int64_t x = next_i64(), m = next_i64(), sh = next_i64(), lo = next_i64(), hi = next_i64();
            printf("%" PRId32 "\n", ta_mul_shift_clamp((int32_t)x, (int32_t)m, (int)sh, (int32_t)lo, (int32_t)hi));
        } else if (strcmp(op, "requant") == 0) {
            int64_t x = next_i64(), m = next_i64(), sh = next_i64();
            printf("%d\n", ta_requant_i8((int32_t)x, (int32_t)m, (int)sh));
        } else if (strcmp(op, "residual") == 0) {
            int64_t x = next_i64(), acc = next_i64(), m = next_i64(), sh = next_i64();
            printf("%d\n", ta_residual_add((int16_t)x, (int32_t)acc, (int32_t)m, (int)sh));
        } else if (strcmp(op, "sat8") == 0) {
            printf("%d\n", ta_sat8(next_i64()));
        } else if (strcmp(op, "sat16") == 0) {
            printf("%d\n", ta_sat16(next_i64()));
        } else if (strcmp(op, "sat32") == 0) {
            printf("%" PRId32 "\n", ta_sat32(next_i64()));
        } else if (strcmp(op, "asr") == 0) {
            int64_t v = next_i64(), sh = next_i64();
            printf("%" PRId64 "\n", ta_asr64(v, (int)sh));
        } else if (strcmp(op, "isqrt") == 0) {
            unsigned long long n;
            if (scanf("%llu", &n) != 1) {
                return 2;
            }
            printf("%" PRIu32 "\n", ta_isqrt64((uint64_t)n));
        } else if (strcmp(op, "exp") == 0) {
            read_n(a64, TA_EXP_ENTRIES);
            for (int i = 0; i < TA_EXP_ENTRIES; i++) {
                exp_table[i] = (uint16_t)a64[i];
            }
            printf("ok\n");
        } else if (strcmp(op, "rmsnorm") == 0) {
            int64_t k = next_i64();
            long d = (long)next_i64();
            read_n(a64, d);
            for (long i = 0; i < d; i++) {
                x16[i] = (int16_t)a64[i];
            }
            ta_rmsnorm(y8, x16, (int)d, (int32_t)k);
            for (long i = 0; i < d; i++) {
                printf(i ? " %d" : "%d", y8[i]);
            }
            printf("\n");
        } else if (strcmp(op, "softmax") == 0 || strcmp(op, "softmax_whole") == 0) {
            int64_t m = next_i64(), sh = next_i64();
            long n = (long)next_i64();
            read_n(a64, n);
            for (long i = 0; i < n; i++) {
                s32[i] = (int32_t)a64[i];
            }
            const int whole = ta_softmax_q15(p32, s32, (int)n, (int32_t)m, (int)sh, exp_table);
            if (op[7] == '_') { /* softmax_whole: its return value, then the probabilities */
                printf("%d ", whole);
            }
            for (long i = 0; i < n; i++) {
                printf(i ? " %" PRId32 : "%" PRId32, p32[i]);
            }
            printf("\n");
        } else if (strcmp(op, "argmax") == 0 || strcmp(op, "fnv") == 0) {
            long n = (long)next_i64();
            read_n(a64, n);
            for (long i = 0; i < n; i++) {
                s32[i] = (int32_t)a64[i];
            }
            if (op[0] == 'a') {
                printf("%d\n", ta_argmax_i32(s32, (int)n));
            } else {
                printf("%08" PRIx32 "\n", ta_fnv1a_i32(s32, (int)n));
            }
        } else if (strcmp(op, "matvec") == 0 || strcmp(op, "matvec_q15") == 0) {
            long rows = (long)next_i64(), cols = (long)next_i64(), stride = (long)next_i64();
            read_n(a64, rows * stride);
            for (long i = 0; i < rows * stride; i++) {
                w8[i] = (int8_t)a64[i];
            }
            read_n(a64, cols);
            for (long i = 0; i < cols; i++) {
                x8[i] = (int8_t)a64[i];
                p32[i] = (int32_t)a64[i];
            }
            if (strcmp(op, "matvec") == 0) {
                ta_kernel_prepare(kx, x8, (int)cols);
            } else {
                ta_kernel_prepare_q15(kx, p32, (int)cols);
            }
            ta_matvec_i8(s32, w8, (size_t)stride, kx, (int)rows, (int)cols);
            for (long i = 0; i < rows; i++) {
                printf(i ? " %" PRId32 : "%" PRId32, s32[i]);
            }
            printf("\n");
        } else if (strcmp(op, "linear") == 0) { /* weights in the kernel file's layout: sums, then every row */
            long rows = (long)next_i64(), cols = (long)next_i64();
            read_n(a64, rows * cols);
            for (long i = 0; i < rows * cols; i++) {
                w8[i] = (int8_t)a64[i];
            }
            read_n(a64, cols);
            for (long i = 0; i < cols; i++) {
                x8[i] = (int8_t)a64[i];
            }
            ta_kernel_prepare(kx, x8, (int)cols);
            ta_matvec_w(s32, w8, kx, (int)rows, (int)cols);
            for (long i = 0; i < rows; i++) {
                printf(i ? " %" PRId32 : "%" PRId32, s32[i]);
            }
            for (long r = 0; r < rows; r++) {
                ta_weight_row(y8, w8, (int)rows, (int)cols, (int)r);
                for (long c = 0; c < cols; c++) {
                    printf(" %d", y8[c]);
                }
            }
            printf("\n");
        } else {
            fprintf(stderr, "intmath_main: unknown op %s\n", op);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}

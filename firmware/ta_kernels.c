/* Portable C kernels (see ta_kernels.h), written so that compilers vectorise them:
 * - the input is pre-widened to int16, so x86 gets pmaddwd from plain C even at -O2;
 * - four weight rows share each load of x;
 * - the column loop runs over a multiple of 16 (a trip count the vectoriser needs no epilogue for,
 *   which GCC's -O2 cost model requires), then a scalar tail.
 * On the host with gcc -O2 this is about 0.85 instructions per multiply-accumulate (docs/engine.md).
 * The block form (prefill) is the inputs one after another, each in the matvec's form; the matmat
 * takes two of them past each group of four weight rows.
 */
#include "ta_kernels.h"

#define TA_BLOCK_COLS 16 /* vectorised column block: 16 int8 weights = one 128-bit load */

const int ta_kernel_cols = TA_BLOCK_COLS;

void ta_kernel_prepare(ta_kx *restrict dst, const int8_t *restrict x, int n)
{
    const int main_n = n & ~(TA_BLOCK_COLS - 1);
    for (int i = 0; i < main_n; i++) {
        dst[i] = x[i];
    }
    for (int i = main_n; i < n; i++) {
        dst[i] = x[i];
    }
}

void ta_kernel_prepare_q15(ta_kx *restrict dst, const int32_t *restrict p, int n)
{
    const int main_n = n & ~(TA_BLOCK_COLS - 1);
    for (int i = 0; i < main_n; i++) {
        dst[i] = (ta_kx)p[i];
    }
    for (int i = main_n; i < n; i++) {
        dst[i] = (ta_kx)p[i];
    }
}

static int32_t dot_row(const int8_t *restrict w, const ta_kx *restrict x, int cols)
{
    int32_t s = 0;
    for (int i = 0; i < cols; i++) {
        s += (int16_t)w[i] * x[i];
    }
    return s;
}

void ta_matvec_i8(int32_t *restrict acc, const int8_t *restrict w, size_t stride, const ta_kx *restrict x,
                  int rows, int cols)
{
    const int main_cols = cols & ~(TA_BLOCK_COLS - 1);
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const int8_t *restrict w0 = w + (size_t)r * stride;
        const int8_t *restrict w1 = w0 + stride;
        const int8_t *restrict w2 = w1 + stride;
        const int8_t *restrict w3 = w2 + stride;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int i = 0; i < main_cols; i++) {
            s0 += (int16_t)w0[i] * x[i];
            s1 += (int16_t)w1[i] * x[i];
            s2 += (int16_t)w2[i] * x[i];
            s3 += (int16_t)w3[i] * x[i];
        }
        for (int i = main_cols; i < cols; i++) {
            s0 += (int16_t)w0[i] * x[i];
            s1 += (int16_t)w1[i] * x[i];
            s2 += (int16_t)w2[i] * x[i];
            s3 += (int16_t)w3[i] * x[i];
        }
        acc[r] = s0;
        acc[r + 1] = s1;
        acc[r + 2] = s2;
        acc[r + 3] = s3;
    }
    for (; r < rows; r++) {
        acc[r] = dot_row(w + (size_t)r * stride, x, cols);
    }
}

void ta_kernel_prepare_block(ta_kx *restrict dst, const int8_t *restrict x, size_t x_stride, int n, int nb)
{
    for (int b = 0; b < nb; b++) {
        ta_kernel_prepare(dst + (size_t)b * (size_t)n, x + (size_t)b * x_stride, n);
    }
}

void ta_matmat_i8(int32_t *restrict acc, size_t acc_stride, const int8_t *restrict w, size_t stride,
                  const ta_kx *restrict xb, int rows, int cols, int nb)
{
    const int main_cols = cols & ~(TA_BLOCK_COLS - 1);
    int b = 0;
    for (; b + 2 <= nb; b += 2) { /* two inputs past four rows: each widened weight serves twice */
        const ta_kx *restrict x = xb + (size_t)b * (size_t)cols;
        const ta_kx *restrict y = x + cols;
        int32_t *restrict ax = acc + (size_t)b * acc_stride;
        int32_t *restrict ay = ax + acc_stride;
        int r = 0;
        for (; r + 4 <= rows; r += 4) {
            const int8_t *restrict w0 = w + (size_t)r * stride;
            const int8_t *restrict w1 = w0 + stride;
            const int8_t *restrict w2 = w1 + stride;
            const int8_t *restrict w3 = w2 + stride;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
            for (int i = 0; i < main_cols; i++) {
                s0 += (int16_t)w0[i] * x[i];
                s1 += (int16_t)w1[i] * x[i];
                s2 += (int16_t)w2[i] * x[i];
                s3 += (int16_t)w3[i] * x[i];
                t0 += (int16_t)w0[i] * y[i];
                t1 += (int16_t)w1[i] * y[i];
                t2 += (int16_t)w2[i] * y[i];
                t3 += (int16_t)w3[i] * y[i];
            }
            for (int i = main_cols; i < cols; i++) {
                s0 += (int16_t)w0[i] * x[i];
                s1 += (int16_t)w1[i] * x[i];
                s2 += (int16_t)w2[i] * x[i];
                s3 += (int16_t)w3[i] * x[i];
                t0 += (int16_t)w0[i] * y[i];
                t1 += (int16_t)w1[i] * y[i];
                t2 += (int16_t)w2[i] * y[i];
                t3 += (int16_t)w3[i] * y[i];
            }
            ax[r] = s0;
            ax[r + 1] = s1;
            ax[r + 2] = s2;
            ax[r + 3] = s3;
            ay[r] = t0;
            ay[r + 1] = t1;
            ay[r + 2] = t2;
            ay[r + 3] = t3;
        }
        for (; r < rows; r++) {
            ax[r] = dot_row(w + (size_t)r * stride, x, cols);
            ay[r] = dot_row(w + (size_t)r * stride, y, cols);
        }
    }
    if (b < nb) { /* an odd input: the matvec */
        ta_matvec_i8(acc + (size_t)b * acc_stride, w, stride, xb + (size_t)b * (size_t)cols, rows, cols);
    }
}

#include "ta_kernels_rowmajor.h" /* ta_matvec_w, ta_matmat_w, ta_weight_row: row-major weights */

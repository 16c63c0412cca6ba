/* The engine's inner loops, behind one small interface so a per-architecture file can replace
 * ta_kernels.c (ta_kernels_cm4.c for Cortex-M4 SMLAD). Every implementation is bit-exact: these are
 * plain integer sums, no rounding and no saturation.
 *
 * A matvec input is first converted once into the kernel's own form (ta_kx), then reused by every
 * matvec that reads it (q, k and v share one). The portable form is int16 in natural order: with one
 * operand already 16-bit, compilers emit 16-bit multiply-add instructions (x86 pmaddwd).
 */
#ifndef TA_KERNELS_H
#define TA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef int16_t ta_kx; /* one element of a prepared input; its order is the implementation's */

/* The column multiple a matvec's main loop takes without a tail: an input padded with zeros to it
 * (where the rows have the room) costs the least. 16 for ta_kernels.c and ta_kernels_cm4.c, 4 for
 * ta_kernels_m0.c (its loop takes four columns; fewer zeros to multiply). */
extern const int ta_kernel_cols;

/* dst[0..n) = x[0..n) in the kernel's input form. n may be any size >= 1. */
void ta_kernel_prepare(ta_kx *dst, const int8_t *x, int n);

/* The same for attention probabilities: Q15 values with 0 <= p[i] < 32768 (the engine handles the
 * one case where a probability is exactly 32768 without a matvec). */
void ta_kernel_prepare_q15(ta_kx *dst, const int32_t *p, int n);

/* acc[r] = sum_{i < cols} w[r * stride + i] * x[i] for r < rows, int32. w is row-major int8 (weights
 * in flash, or a KV-cache slice); x was prepared from cols values. Contract: the sum fits int32 (int8
 * inputs with cols <= 2^16, or probabilities summing to about 2^15). acc must not overlap w or x. */
void ta_matvec_i8(int32_t *acc, const int8_t *w, size_t stride, const ta_kx *x, int rows, int cols);

/* A block of nb inputs (the tokens of a prefill block): x[b * x_stride + i] for b < nb, i < n, into
 * dst[0 .. nb * n) in the kernel's block form, for ta_matmat_i8. nb = 1 is ta_kernel_prepare's form.
 * The form may depend on n, nb and dst's alignment, so prepare into the buffer the matmat reads. */
void ta_kernel_prepare_block(ta_kx *dst, const int8_t *x, size_t x_stride, int n, int nb);

/* acc[b * acc_stride + r] = sum_{i < cols} w[r * stride + i] * x_b[i] for r < rows, b < nb: the sums
 * ta_matvec_i8 gives for each input alone (bit-exact, int32), with each weight row read once for
 * several inputs. xb was prepared by ta_kernel_prepare_block(xb, ..., cols, nb). Contract:
 * ta_matvec_i8's; acc_stride >= rows; acc must not overlap w or xb. */
void ta_matmat_i8(int32_t *acc, size_t acc_stride, const int8_t *w, size_t stride, const ta_kx *xb,
                  int rows, int cols, int nb);

/* A model weight matrix (rows, cols) in the kernel's weight layout: acc[r] = sum_{i < cols} W[r][i] *
 * x[i], and the block form. The layout is the generator's `weight_layout` for the kernel file:
 * row-major for ta_kernels.c and ta_kernels_cm4.c (these are ta_matvec_i8 and ta_matmat_i8 with stride
 * cols), groups of three rows for ta_kernels_m0.c. ta_matvec_i8 is for row-major slices (the KV cache). */
void ta_matvec_w(int32_t *acc, const int8_t *w, const ta_kx *x, int rows, int cols);
void ta_matmat_w(int32_t *acc, size_t acc_stride, const int8_t *w, const ta_kx *xb, int rows, int cols, int nb);

/* dst[0..cols) = row r of such a matrix (the embedding reads the head's rows). */
void ta_weight_row(int8_t *dst, const int8_t *w, int rows, int cols, int r);

#endif /* TA_KERNELS_H */

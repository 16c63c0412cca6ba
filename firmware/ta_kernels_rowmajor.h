/* The weight-matrix functions of ta_kernels.h for a kernel file whose model weights are row-major
 * (ta_kernels.c, ta_kernels_cm4.c; generate.ROW_GROUP 1): its own strided kernels with stride cols.
 * Included once, at the end of such a file, after its ta_matvec_i8 and ta_matmat_i8. */
#ifndef TA_KERNELS_ROWMAJOR_H
#define TA_KERNELS_ROWMAJOR_H

/* Model weights are row-major here (ta_kernels.h): the strided kernels with stride cols. */
void ta_matvec_w(int32_t *acc, const int8_t *w, const ta_kx *x, int rows, int cols)
{
    ta_matvec_i8(acc, w, (size_t)cols, x, rows, cols);
}

void ta_matmat_w(int32_t *acc, size_t acc_stride, const int8_t *w, const ta_kx *xb, int rows, int cols, int nb)
{
    ta_matmat_i8(acc, acc_stride, w, (size_t)cols, xb, rows, cols, nb);
}

void ta_weight_row(int8_t *dst, const int8_t *w, int rows, int cols, int r)
{
    (void)rows;
    for (int c = 0; c < cols; c++) {
        dst[c] = w[(size_t)r * (size_t)cols + (size_t)c];
    }
}

#endif /* TA_KERNELS_ROWMAJOR_H */

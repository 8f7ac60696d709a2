/*
 * The elementwise part of the all-pairs exterior angle (hyplib/lorentz.py, pairwise_exterior_angle),
 * for a range of rows of one (B1, B2) matrix of inner products on one thread. The matrix multiply
 * x y^T stays with PyTorch's GEMM; these two passes replace the dozen elementwise passes that
 * autograd takes through the same formula, the normalisation of x and y to unit vectors, and the
 * product with the logit scale.
 *
 * With p = x_i . y_j and ix = 1/|x_i|, iy = 1/|y_j| (indexed by row and column, always):
 *   cos = p ix iy                        (the cosine of the angle at the root)
 *   S = sqrt(max(1 - cos^2, floor_sq))   (the GEMM's cosines carry a few eps, so 1 - cos^2 is
 *                                         noise below ~eps: floored there, as the PyTorch path)
 *   C = a cos + b r,   out = scale atan2(S, C),  atan2(S, C) in (0, pi),
 * where a and b are indexed by the row i and r by the column j, or (`by_column`) a and b by the
 * column and r by the row: the angle at y_j of the same pair uses the same cosines.
 */
#include <math.h>

#include "fastmath.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE void forward_row(int n, const float *restrict prod, float ix_row, const float *restrict iy,
                               float a_row, float b_row, float r_row, const float *restrict a,
                               const float *restrict b, const float *restrict r, const int by_column,
                               float floor_sq, float scale, float *restrict out)
{
    for (int j = 0; j < n; j++) {
        const float c = prod[j] * ix_row * iy[j];
        const float q = 1.0f - c * c;
        const float s = sqrtf(q > floor_sq ? q : floor_sq);
        const float cos_part = by_column ? a[j] * c + b[j] * r_row : a_row * c + b_row * r[j];
        out[j] = scale * atan2_positive_y(s, cos_part);
    }
}

/* out[i, j] for row_lo <= i < row_hi of (rows, b2) row-major matrices. */
void pairwise_angle_forward(int row_lo, int row_hi, int b2, const float *prod, const float *ix, const float *iy,
                            const float *a, const float *b, const float *r, int by_column, float floor_sq,
                            float scale, float *out)
{
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * b2;
        if (by_column)
            forward_row(b2, prod + at, ix[i], iy, 0.0f, 0.0f, r[i], a, b, r, 1, floor_sq, scale, out + at);
        else
            forward_row(b2, prod + at, ix[i], iy, a[i], b[i], 0.0f, a, b, r, 0, floor_sq, scale, out + at);
    }
}

/*
 * One row of the backward. With h = g scale (the gradient of the angle itself), D = S^2 + C^2,
 * P = -h S / D (h times d phi / d C) and d S / d cos = -cos / S where 1 - cos^2 >= floor_sq (else 0):
 *   g_cos = h (C / D) dS/dcos + P a,   g_prod = g_cos ix iy;
 *   rows[2] += sum_j g_cos cos,  cols[2, j] += g_cos cos   (the norms' gradients, times -|x|, -|y|);
 *   rows[3] += sum_j g out                                  (the scale's, times scale; if out is given);
 *   a, b by row:    rows[0] += sum_j P cos,  rows[1] += sum_j P r_j,  cols[0, j] += P b_i;
 *   a, b by column: rows[0] += sum_j P b_j,  cols[0, j] += P cos,     cols[1, j] += P r_i.
 */
ALWAYS_INLINE void backward_row(int n, const float *restrict prod, const float *restrict g,
                                const float *restrict out, float ix_row, const float *restrict iy, float a_row,
                                float b_row, float r_row, const float *restrict a, const float *restrict b,
                                const float *restrict r, const int by_column, float floor_sq, float scale,
                                float *restrict g_prod, float *restrict rows, float *restrict cols0,
                                float *restrict cols1, float *restrict cols2)
{
    float row0 = 0.0f, row1 = 0.0f, row2 = 0.0f, row3 = 0.0f;
    for (int j = 0; j < n; j++) {
        const float iy_ix = iy[j] * ix_row;
        const float c = prod[j] * iy_ix;
        const float q = 1.0f - c * c;
        const int open = q >= floor_sq;
        const float q_floored = open ? q : floor_sq;
        const float inv_s = 1.0f / sqrtf(q_floored);
        const float s = q_floored * inv_s;
        const float aj = by_column ? a[j] : a_row;
        const float cos_part = by_column ? aj * c + b[j] * r_row : a_row * c + b_row * r[j];
        const float inv_d = 1.0f / (q_floored + cos_part * cos_part);          /* >= floor_sq > 0 */
        const float h = g[j] * scale;
        const float p = -h * s * inv_d;
        const float d_s = open ? -c * inv_s : 0.0f;
        const float g_cos = h * cos_part * inv_d * d_s + p * aj;
        g_prod[j] = g_cos * iy_ix;
        row2 += g_cos * c;
        cols2[j] += g_cos * c;
        if (by_column) {
            row0 += p * b[j];
            cols0[j] += p * c;
            cols1[j] += p * r_row;
        } else {
            row0 += p * c;
            row1 += p * r[j];
            cols0[j] += p * b_row;
        }
    }
    if (out)
        for (int j = 0; j < n; j++) row3 += g[j] * out[j];
    rows[0] += row0;
    rows[1] += row1;
    rows[2] += row2;
    rows[3] += row3;
}

/*
 * The backward for row_lo <= i < row_hi: g_prod (rows, b2); rows (rows, 4) for this range's rows;
 * cols (3, b2): this call's partial sums over its rows. rows and cols must be zeroed by the
 * caller. out (the forward's output) may be NULL where the scale's gradient is not needed.
 */
void pairwise_angle_backward(int row_lo, int row_hi, int b2, const float *prod, const float *ix, const float *iy,
                             const float *a, const float *b, const float *r, int by_column, float floor_sq,
                             float scale, const float *g, const float *out, float *g_prod, float *rows,
                             float *cols)
{
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * b2;
        const float *out_row = out ? out + at : 0;
        if (by_column)
            backward_row(b2, prod + at, g + at, out_row, ix[i], iy, 0.0f, 0.0f, r[i], a, b, r, 1, floor_sq, scale,
                         g_prod + at, rows + 4L * i, cols, cols + b2, cols + 2L * b2);
        else
            backward_row(b2, prod + at, g + at, out_row, ix[i], iy, a[i], b[i], 0.0f, a, b, r, 0, floor_sq, scale,
                         g_prod + at, rows + 4L * i, cols, cols + b2, cols + 2L * b2);
    }
}

/*
 * The elementwise part of the all-pairs exterior angle (hyplib/lorentz.py, pairwise_exterior_angle),
 * for a range of rows of one (B1, B2) matrix of cosines on one thread. The matrix multiply of unit
 * vectors that makes the cosines stays with PyTorch's GEMM; these two passes replace the dozen
 * elementwise passes that autograd takes through the same formula.
 *
 * With cos the cosine of the angle at the root of pair (i, j):
 *   S = sqrt(max(1 - cos^2, floor_sq))   (the GEMM's cosines carry a few eps, so 1 - cos^2 is
 *                                         noise below ~eps: floored there, as the PyTorch path)
 *   C = a cos + b r,   phi = atan2(S, C)  in (0, pi),
 * where a and b are indexed by the row i and r by the column j, or (`by_column`) a and b by the
 * column and r by the row: the angle at y_j of the same pair uses the same cosines.
 */
#include <math.h>

#include "fastmath.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE void forward_row(int n, const float *restrict cos, float a_row, float b_row, float r_row,
                               const float *restrict a, const float *restrict b, const float *restrict r,
                               const int by_column, float floor_sq, float *restrict phi)
{
    for (int j = 0; j < n; j++) {
        const float c = cos[j];
        const float q = 1.0f - c * c;
        const float s = sqrtf(q > floor_sq ? q : floor_sq);
        const float cos_part = by_column ? a[j] * c + b[j] * r_row : a_row * c + b_row * r[j];
        phi[j] = atan2_positive_y(s, cos_part);
    }
}

/* phi[i, j] for row_lo <= i < row_hi of (rows, b2) row-major matrices. */
void pairwise_angle_forward(int row_lo, int row_hi, int b2, const float *cos, const float *a, const float *b,
                            const float *r, int by_column, float floor_sq, float *phi)
{
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * b2;
        if (by_column) forward_row(b2, cos + at, 0.0f, 0.0f, r[i], a, b, r, 1, floor_sq, phi + at);
        else forward_row(b2, cos + at, a[i], b[i], 0.0f, a, b, r, 0, floor_sq, phi + at);
    }
}

/*
 * One row of the backward. With D = S^2 + C^2, P = -g S / D (g times d phi / d C) and
 * d S / d cos = -cos / S where 1 - cos^2 >= floor_sq (else 0):
 *   g_cos = g (C / D) dS/dcos + P a;
 *   row (a, b by row):    rows[0] += sum_j P cos,  rows[1] += sum_j P r_j,  cols[0, j] += P b_i;
 *   row (a, b by column): rows[0] += sum_j P b_j,  cols[0, j] += P cos,     cols[1, j] += P r_i.
 */
ALWAYS_INLINE void backward_row(int n, const float *restrict cos, const float *restrict g, float a_row,
                                float b_row, float r_row, const float *restrict a, const float *restrict b,
                                const float *restrict r, const int by_column, float floor_sq,
                                float *restrict g_cos, float *restrict rows, float *restrict cols0,
                                float *restrict cols1)
{
    float row0 = 0.0f, row1 = 0.0f;
    for (int j = 0; j < n; j++) {
        const float c = cos[j];
        const float q = 1.0f - c * c;
        const int open = q >= floor_sq;
        const float q_floored = open ? q : floor_sq;
        const float inv_s = 1.0f / sqrtf(q_floored);
        const float s = q_floored * inv_s;
        const float aj = by_column ? a[j] : a_row;
        const float cos_part = by_column ? aj * c + b[j] * r_row : a_row * c + b_row * r[j];
        const float inv_d = 1.0f / (q_floored + cos_part * cos_part);          /* >= floor_sq > 0 */
        const float p = -g[j] * s * inv_d;
        const float d_s = open ? -c * inv_s : 0.0f;
        g_cos[j] = g[j] * cos_part * inv_d * d_s + p * aj;
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
    rows[0] += row0;
    rows[1] += row1;
}

/*
 * The backward for row_lo <= i < row_hi: g_cos (rows, b2); rows (rows, 2) for this range's rows;
 * cols (2, b2): this call's partial sums over its rows. rows and cols must be zeroed by the caller.
 */
void pairwise_angle_backward(int row_lo, int row_hi, int b2, const float *cos, const float *a, const float *b,
                             const float *r, int by_column, float floor_sq, const float *g, float *g_cos,
                             float *rows, float *cols)
{
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * b2;
        if (by_column)
            backward_row(b2, cos + at, g + at, 0.0f, 0.0f, r[i], a, b, r, 1, floor_sq, g_cos + at, rows + 2L * i,
                         cols, cols + b2);
        else
            backward_row(b2, cos + at, g + at, a[i], b[i], 0.0f, a, b, r, 0, floor_sq, g_cos + at, rows + 2L * i,
                         cols, cols + b2);
    }
}

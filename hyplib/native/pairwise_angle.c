/*
 * The elementwise part of the all-pairs exterior angles (hyplib/lorentz.py, pairwise_exterior_angle
 * and pairwise_exterior_angles), for a range of rows of one (B1, B2) matrix of inner products on
 * one thread. The matrix multiply x y^T stays with PyTorch's GEMM; these two passes replace the
 * dozen elementwise passes that autograd takes through the same formula, the normalisation of x
 * and y to unit vectors, and the product with the logit scale. Either end of each pair, or both
 * from one read of the products.
 *
 * With p = x_i . y_j and ix = 1/|x_i|, iy = 1/|y_j|:
 *   cos = p ix iy                        (the cosine of the angle at the root)
 *   S = sqrt(max(1 - cos^2, floor_sq))   (the GEMM's cosines carry a few eps, so 1 - cos^2 is
 *                                         noise below ~eps: floored there, as the PyTorch path)
 *   at x_i: out_x = s_x atan2(S, ax_i cos + bx_i ry_j)
 *   at y_j: out_y = s_y atan2(S, ay_j cos + by_j rx_i)
 * with per-point a = sqrt(c) t, b = -sqrt(c) |.| of the point the angle is at and r = t / |.| of the
 * other (t its time coordinate); the "x" vectors are indexed by rows, the "y" vectors by columns.
 */
#include <math.h>

#include "fastmath.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The per-row and per-column vectors of one matrix (those of an end not computed may be NULL). */
typedef struct {
    const float *ix, *iy, *ax, *bx, *rx, *ay, *by, *ry;
    float s_x, s_y, floor_sq;
} Points;

ALWAYS_INLINE void forward_row(int n, const float *restrict prod, const Points *P, int i, const int at_x,
                               const int at_y, float *restrict out_x, float *restrict out_y)
{
    const float *restrict iy = P->iy, *restrict ry = P->ry, *restrict ay = P->ay, *restrict by = P->by;
    const float ix = P->ix[i], floor_sq = P->floor_sq, s_x = P->s_x, s_y = P->s_y;
    const float ax = at_x ? P->ax[i] : 0.0f, bx = at_x ? P->bx[i] : 0.0f, rx = at_y ? P->rx[i] : 0.0f;
    for (int j = 0; j < n; j++) {
        const float c = prod[j] * ix * iy[j];
        const float q = 1.0f - c * c;
        const float s = sqrtf(q > floor_sq ? q : floor_sq);
        if (at_x) out_x[j] = s_x * atan2_positive_y(s, ax * c + bx * ry[j]);
        if (at_y) out_y[j] = s_y * atan2_positive_y(s, ay[j] * c + by[j] * rx);
    }
}

/* out_x and out_y rows row_lo <= i < row_hi of (rows, b2) row-major matrices; a NULL one is not computed. */
void pairwise_angle_forward(int row_lo, int row_hi, int b2, const float *prod, const float *ix, const float *iy,
                            const float *ax, const float *bx, const float *rx, const float *ay, const float *by,
                            const float *ry, float s_x, float s_y, float floor_sq, float *out_x, float *out_y)
{
    const Points P = {ix, iy, ax, bx, rx, ay, by, ry, s_x, s_y, floor_sq};
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * b2;
        if (out_x && out_y) forward_row(b2, prod + at, &P, i, 1, 1, out_x + at, out_y + at);
        else if (out_x) forward_row(b2, prod + at, &P, i, 1, 0, out_x + at, 0);
        else forward_row(b2, prod + at, &P, i, 0, 1, 0, out_y + at);
    }
}

/*
 * One end's part of one entry's backward, given the incoming gradient h of the angle itself
 * (g times the scale), D = S^2 + C^2 and d S / d cos: returns P = -h S / D (h times d phi / d C)
 * and adds h (C / D) dS/dcos + P a to g_cos.
 */
ALWAYS_INLINE float end_backward(float h, float s, float q_floored, float d_s, float cos_part, float a,
                                 float *g_cos)
{
    const float inv_d = 1.0f / (q_floored + cos_part * cos_part);              /* >= floor_sq > 0 */
    const float p = -h * s * inv_d;
    *g_cos += h * cos_part * inv_d * d_s + p * a;
    return p;
}

/*
 * One row of the backward, g_prod = g_cos ix iy with g_cos the sum of both ends' parts, and
 *   rows[0..5] = sum_j of: Px cos (ax), Px ry_j (bx), Py by_j (rx), g_cos cos (the norm, times
 *                -|x|), gx out_x (s_x, times s_x), gy out_y (s_y, times s_y);
 *   cols[0..3][j] += Px bx_i (ry), Py cos (ay), Py rx_i (by), g_cos cos (the norm, times -|y|).
 */
ALWAYS_INLINE void backward_row(int n, const float *restrict prod, const Points *P, int i, const int at_x,
                                const int at_y, const float *restrict gx, const float *restrict gy,
                                const float *restrict out_x, const float *restrict out_y,
                                float *restrict g_prod, float *restrict rows, float *restrict cols0,
                                float *restrict cols1, float *restrict cols2, float *restrict cols3)
{
    const float *restrict iy = P->iy, *restrict ry = P->ry, *restrict ay = P->ay, *restrict by = P->by;
    const float ix = P->ix[i], floor_sq = P->floor_sq, s_x = P->s_x, s_y = P->s_y;
    const float ax = at_x ? P->ax[i] : 0.0f, bx = at_x ? P->bx[i] : 0.0f, rx = at_y ? P->rx[i] : 0.0f;
    float row0 = 0.0f, row1 = 0.0f, row2 = 0.0f, row3 = 0.0f;
    for (int j = 0; j < n; j++) {
        const float iy_ix = iy[j] * ix;
        const float c = prod[j] * iy_ix;
        const float q = 1.0f - c * c;
        const int open = q >= floor_sq;
        const float q_floored = open ? q : floor_sq;
        const float inv_s = 1.0f / sqrtf(q_floored);
        const float s = q_floored * inv_s;
        const float d_s = open ? -c * inv_s : 0.0f;
        float g_cos = 0.0f;
        if (at_x) {
            const float p = end_backward(gx[j] * s_x, s, q_floored, d_s, ax * c + bx * ry[j], ax, &g_cos);
            row0 += p * c;
            row1 += p * ry[j];
            cols0[j] += p * bx;
        }
        if (at_y) {
            const float p = end_backward(gy[j] * s_y, s, q_floored, d_s, ay[j] * c + by[j] * rx, ay[j], &g_cos);
            row2 += p * by[j];
            cols1[j] += p * c;
            cols2[j] += p * rx;
        }
        g_prod[j] = g_cos * iy_ix;
        row3 += g_cos * c;
        cols3[j] += g_cos * c;
    }
    float row4 = 0.0f, row5 = 0.0f;
    if (at_x && out_x)
        for (int j = 0; j < n; j++) row4 += gx[j] * out_x[j];
    if (at_y && out_y)
        for (int j = 0; j < n; j++) row5 += gy[j] * out_y[j];
    rows[0] += row0;
    rows[1] += row1;
    rows[2] += row2;
    rows[3] += row3;
    rows[4] += row4;
    rows[5] += row5;
}

/*
 * The backward for row_lo <= i < row_hi: g_prod (rows, b2); rows (rows, 6) for this range's rows;
 * cols (4, b2): this call's partial sums over its rows; both zeroed by the caller. An end whose
 * gradient (gx or gy) is NULL is not computed; out_x, out_y (the forward's outputs) may be NULL
 * where the scale's gradient is not needed.
 */
void pairwise_angle_backward(int row_lo, int row_hi, int b2, const float *prod, const float *ix, const float *iy,
                             const float *ax, const float *bx, const float *rx, const float *ay, const float *by,
                             const float *ry, float s_x, float s_y, float floor_sq, const float *gx,
                             const float *gy, const float *out_x, const float *out_y, float *g_prod, float *rows,
                             float *cols)
{
    const Points P = {ix, iy, ax, bx, rx, ay, by, ry, s_x, s_y, floor_sq};
    float *c0 = cols, *c1 = cols + b2, *c2 = cols + 2L * b2, *c3 = cols + 3L * b2;
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * b2;
        const float *ox = out_x ? out_x + at : 0, *oy = out_y ? out_y + at : 0;
        if (gx && gy)
            backward_row(b2, prod + at, &P, i, 1, 1, gx + at, gy + at, ox, oy, g_prod + at, rows + 6L * i,
                         c0, c1, c2, c3);
        else if (gx)
            backward_row(b2, prod + at, &P, i, 1, 0, gx + at, 0, ox, 0, g_prod + at, rows + 6L * i, c0, c1, c2, c3);
        else
            backward_row(b2, prod + at, &P, i, 0, 1, 0, gy + at, 0, oy, g_prod + at, rows + 6L * i, c0, c1, c2, c3);
    }
}

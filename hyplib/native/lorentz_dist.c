/*
 * The elementwise part of the Lorentz all-pairs distance (hyplib/lorentz.py, _PairwiseDist), on
 * a range of rows of one (B1, B2) row-major matrix on one thread, or (backward) a flat range of
 * its entries. The matrix multiply that makes -c x.y stays with PyTorch's GEMM; the forward adds
 * c x_t y_t to it, and the two passes replace the half-dozen elementwise passes (and the
 * outer-product addend) each direction takes in PyTorch.
 *
 * Conventions: float32, curvature -c; the floor is 1 + eps (rounding puts coincident points
 * below 1, where acosh is undefined and its gradient infinite); acosh(z) = log(z + sqrt(z^2 - 1)).
 */
#include <math.h>

#include "fastmath.h"

/*
 * For rows row_lo <= i < row_hi: z[i, j] += x_term[i] y_term[j] (in place: the backward reads
 * the whole z), out[i, j] = acosh(max(z[i, j], floor_)) / sqrt(c).
 */
void lorentz_dist_forward(int row_lo, int row_hi, int b2, float *restrict z, const float *restrict x_term,
                          const float *restrict y_term, float floor_, float inv_sqrt_c, float *restrict out)
{
    for (int i = row_lo; i < row_hi; i++) {
        float *restrict zi = z + (long)i * b2;
        float *restrict oi = out + (long)i * b2;
        const float xi = x_term[i];
        for (int j = 0; j < b2; j++) {
            const float a = zi[j] + xi * y_term[j];
            zi[j] = a;
            const float v = a > floor_ ? a : floor_;
            oi[j] = log_at_least_one(v + sqrtf(v * v - 1.0f)) * inv_sqrt_c;
        }
    }
}

/*
 * For rows row_lo <= i < row_hi of (rows, b2) row-major matrices: G[i, j] = g[i, j] / sqrt(z^2 - 1),
 * 0 where z <= floor_ (the floor passes no gradient); rows_t[i] = sum_j G[i, j] y_t[j]; cols_t[j] +=
 * sum_i G[i, j] x_t[i] (this call's partial sums, zeroed by the caller); and sums[0] += sum g d with
 * d = acosh(max(z, floor_)) / sqrt(c) computed again (not read back: the forward's output may carry
 * the logit scale), sums[1] += sum G z. The row and column sums with the time coordinates are the
 * gradient's G y_t and G^T x_t, which the GEMMs with y and x then need not carry as a column.
 */
void lorentz_dist_backward(int row_lo, int row_hi, int b2, const float *restrict z, const float *restrict g,
                           const float *restrict x_t, const float *restrict y_t, float floor_, float inv_sqrt_c,
                           float *restrict G, float *restrict rows_t, float *restrict cols_t, double *sums)
{
    double total_d = 0.0, total_z = 0.0;
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * b2;
        const float *restrict zi = z + at, *restrict gi = g + at;
        float *restrict Gi = G + at;
        const float xi = x_t[i];
        float row_d = 0.0f, row_z = 0.0f, row_t = 0.0f;       /* one row in float, rows added in double */
        for (int j = 0; j < b2; j++) {
            const float zj = zi[j];
            const float v = zj > floor_ ? zj : floor_;
            const float t = v * v - 1.0f;
            const float inv_s = 1.0f / sqrtf(t);
            const float h = zj > floor_ ? gi[j] * inv_s : 0.0f;
            Gi[j] = h;
            row_d += gi[j] * log_at_least_one(v + t * inv_s);
            row_z += h * zj;
            row_t += h * y_t[j];
            cols_t[j] += h * xi;
        }
        rows_t[i] = row_t;
        total_d += row_d;
        total_z += row_z;
    }
    sums[0] += total_d * inv_sqrt_c;
    sums[1] += total_z;
}

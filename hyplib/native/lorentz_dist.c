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

/* Entries summed in float before they are added to the double totals: short enough that float
 * rounding stays near eps, long enough for the compiler's vector sums. */
enum { BLOCK = 4096 };

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
 * G[i] = g[i] / sqrt(z[i]^2 - 1), 0 where z[i] <= floor_ (the floor passes no gradient), for
 * i < n; and sums[0] += sum g d with d = acosh(max(z, floor_)) / sqrt(c) computed again (not
 * read back: the forward's output may carry the logit scale), sums[1] += sum G z.
 */
void lorentz_dist_backward(long n, const float *restrict z, const float *restrict g, float floor_, float inv_sqrt_c,
                           float *restrict G, double *sums)
{
    double total_d = 0.0, total_z = 0.0;
    for (long lo = 0; lo < n; lo += BLOCK) {
        const long hi = lo + BLOCK < n ? lo + BLOCK : n;
        float block_d = 0.0f, block_z = 0.0f;
        for (long i = lo; i < hi; i++) {
            const float zi = z[i];
            const float v = zi > floor_ ? zi : floor_;
            const float t = v * v - 1.0f;
            const float inv_s = 1.0f / sqrtf(t);
            const float h = zi > floor_ ? g[i] * inv_s : 0.0f;
            G[i] = h;
            block_d += g[i] * log_at_least_one(v + t * inv_s);
            block_z += h * zi;
        }
        total_d += block_d;
        total_z += block_z;
    }
    sums[0] += total_d * inv_sqrt_c;
    sums[1] += total_z;
}

/*
 * The coordinate passes of the paired exterior angle (hyplib/lorentz.py, _ExteriorAngle) for a
 * range of rows of (rows, n) row-major x and y on one thread: the angle itself is a function of
 * four per-row sums, which PyTorch takes from here, and its gradient is a per-row combination of
 * x, y and y's part orthogonal to x (and x's orthogonal to y), which this writes.
 *
 * Forward, per row: |x|^2, |y|^2, x.y in one loop over the coordinates, then (the row is in the
 * cache) |r|^2 with r = y - k x, k = x.y / max(|x|^2, floor): y's part orthogonal to x, summed
 * from its coordinates so that (anti)parallel pairs give |r|^2 ~ 0 exactly rather than the
 * cancelling |y|^2 - (x.y)^2 / |x|^2.
 * Backward, per row, with per-row coefficients: gx = ax x + along (y - kx x),
 * gy = ay y + along (x - ky y), the PyTorch path's expressions.
 */

/* sums[4 i + 0..3] = |x_i|^2, |y_i|^2, x_i . y_i, |y_i - k x_i|^2 for row_lo <= i < row_hi. */
void paired_angle_forward(int row_lo, int row_hi, int n, const float *restrict x, const float *restrict y,
                          float floor_sq, float *restrict sums)
{
    for (int i = row_lo; i < row_hi; i++) {
        const float *restrict xi = x + (long)i * n, *restrict yi = y + (long)i * n;
        float sx = 0.0f, sy = 0.0f, d = 0.0f;
        for (int j = 0; j < n; j++) {
            sx += xi[j] * xi[j];
            sy += yi[j] * yi[j];
            d += xi[j] * yi[j];
        }
        const float k = d / (sx > floor_sq ? sx : floor_sq);
        float sr = 0.0f;
        for (int j = 0; j < n; j++) {
            const float r = yi[j] - k * xi[j];
            sr += r * r;
        }
        sums[4L * i] = sx;
        sums[4L * i + 1] = sy;
        sums[4L * i + 2] = d;
        sums[4L * i + 3] = sr;
    }
}

/*
 * For row_lo <= i < row_hi, with coef[5 i + 0..4] = ax, ay, along, kx, ky:
 * gx_i = ax x_i + along (y_i - kx x_i) and gy_i = ay y_i + along (x_i - ky y_i). gx or gy may be
 * NULL (not written).
 */
void paired_angle_backward(int row_lo, int row_hi, int n, const float *restrict x, const float *restrict y,
                           const float *restrict coef, float *restrict gx, float *restrict gy)
{
    for (int i = row_lo; i < row_hi; i++) {
        const long at = (long)i * n;
        const float *restrict xi = x + at, *restrict yi = y + at;
        const float ax = coef[5L * i], ay = coef[5L * i + 1], along = coef[5L * i + 2];
        const float kx = coef[5L * i + 3], ky = coef[5L * i + 4];
        if (gx) {
            float *restrict out = gx + at;
            for (int j = 0; j < n; j++) out[j] = ax * xi[j] + along * (yi[j] - kx * xi[j]);
        }
        if (gy) {
            float *restrict out = gy + at;
            for (int j = 0; j < n; j++) out[j] = ay * yi[j] + along * (xi[j] - ky * yi[j]);
        }
    }
}

/*
 * PHyCLIP's l1 product distance, forward and backward, for one range of rows on one thread.
 *
 * Conventions (hyplib/native/product_dist.py holds the Python side and the derivation):
 *   factor-major float32 inputs, k factors of dimension d (at most MAX_D), curvature -c[f];
 *   x (k, b1, d) and xt (k, b1) = sqrt(1/c + |x|^2) are the rows' space and time parts;
 *   yT (k, d, b2) is y transposed per factor, so each coordinate is contiguous over columns,
 *   and yt (k, b2) the columns' time parts;
 *   a = c (xt yt - x.y), floored at `floor_` (1 + eps), and acosh(a) = log(a + sqrt(a^2 - 1)).
 *
 * Work goes in tiles of ROWS x COLS entries. Per tile and factor the columns' coordinates are
 * copied into a small contiguous buffer, and every row of the tile passes over it: the
 * buffers stay in L1, and no (k, b1, b2) array is read. Elementwise loops are left to the
 * compiler's vectoriser (the factor dimension is a compile-time constant for d = 4, 8, 16, so
 * the coordinate loop unrolls inside the column loop); the contractions use GCC/Clang vector
 * types so their d + 1 sums are independent.
 */
#include <string.h>
#include <math.h>

#include "fastmath.h"

/* The contractions' vector width: a whole AVX-512 register where there is one (on an AVX-512
 * Xeon the backward took 12-17% less time than with 256 bits), else 256 bits. */
#if defined(__AVX512F__)
enum { LANES = 16 };
#else
enum { LANES = 8 };
#endif
enum { ROWS = 16, COLS = 256, MAX_D = 64 };

/* Row stride of the tile buffers: COLS plus one cache line. Rows 4 KiB apart (as in a
 * (k, d, 1024) tensor) all fall in one L1 set and evict each other; these do not. */
enum { STRIDE = COLS + 16 };

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef float vecf __attribute__((vector_size(LANES * sizeof(float))));

static inline int min_int(int a, int b) { return a < b ? a : b; }
static inline vecf loadv(const float *p) { vecf v; memcpy(&v, p, sizeof v); return v; }
static inline void storev(float *p, vecf v) { memcpy(p, &v, sizeof v); }
static inline vecf splatv(float s) { return (vecf){} + s; }
static inline float totalv(vecf v)
{
    float sum = 0.0f;
    for (int l = 0; l < LANES; l++) sum += v[l];
    return sum;
}

/* tile[dd STRIDE + j] = yT_f[dd b2 + j] for dd < d and tile[d STRIDE + j] = yt_f[j], j < n. */
static void pack_columns(int n, int d, int b2, const float *yt_f, const float *yT_f, float *tile)
{
    for (int dd = 0; dd < d; dd++) memcpy(tile + dd * STRIDE, yT_f + (long)dd * b2, sizeof(float) * n);
    memcpy(tile + d * STRIDE, yt_f, sizeof(float) * n);
}

/*
 * One tile row of the forward: o[j] += wf acosh(a_j), a_j = s0 u[d, j] + sum_dd cx[dd] u[dd, j]
 * (u: the packed tile).
 */
ALWAYS_INLINE void forward_row(int n, const int d, float s0, const float *restrict cx, float wf, float floor_,
                               const float *restrict u, float *restrict o)
{
    for (int j = 0; j < n; j++) {
        float a = s0 * u[d * STRIDE + j];
        for (int dd = 0; dd < d; dd++) a += cx[dd] * u[dd * STRIDE + j];
        const float v = a > floor_ ? a : floor_;        /* floor at 1 + eps: rounding puts coincident points below 1 */
        const float acosh = log_at_least_one(v + sqrtf(v * v - 1.0f));
        o[j] += wf * acosh;
    }
}

static void forward_row_any(int n, int d, float s0, const float *cx, float wf, float floor_, const float *u,
                            float *o)
{
    if (d == 8) forward_row(n, 8, s0, cx, wf, floor_, u, o);
    else if (d == 4) forward_row(n, 4, s0, cx, wf, floor_, u, o);
    else if (d == 16) forward_row(n, 16, s0, cx, wf, floor_, u, o);
    else forward_row(n, d, s0, cx, wf, floor_, u, o);
}

/*
 * out[i, j] = sum_f weight[f] acosh(a_fij) for rows row_lo <= i < row_hi (weight = 1/(k sqrt c)).
 */
void product_dist_l1_forward(int k, int b1, int b2, int d, const float *x, const float *xt,
                             const float *yT, const float *yt, const float *c, const float *weight,
                             float floor_, int row_lo, int row_hi, float *out)
{
    static _Thread_local float tile[(MAX_D + 1) * STRIDE], acc[ROWS * STRIDE];
    float cx[MAX_D];
    for (int i0 = row_lo; i0 < row_hi; i0 += ROWS) {
        const int i1 = min_int(i0 + ROWS, row_hi);
        for (int j0 = 0; j0 < b2; j0 += COLS) {
            const int n = min_int(COLS, b2 - j0);
            memset(acc, 0, sizeof acc);
            for (int f = 0; f < k; f++) {
                const float cf = c[f];
                pack_columns(n, d, b2, yt + (long)f * b2 + j0, yT + (long)f * d * b2 + j0, tile);
                for (int i = i0; i < i1; i++) {
                    const long fi = (long)f * b1 + i;
                    for (int dd = 0; dd < d; dd++) cx[dd] = -cf * x[fi * d + dd];
                    forward_row_any(n, d, cf * xt[fi], cx, weight[f], floor_, tile, acc + (i - i0) * STRIDE);
                }
            }
            for (int i = i0; i < i1; i++)
                memcpy(out + (long)i * b2 + j0, acc + (i - i0) * STRIDE, sizeof(float) * n);
        }
    }
}

/*
 * One tile row of the backward: h[j] = H_j = (g_j / k) / sqrt(a_j^2 - 1) (0 on the floor),
 * *sum_ha += sum_j H_j a_j, and, when `with_log`, *sum_wd += sum_j (g_j / k) acosh(a_j).
 * acosh is computed again rather than kept from the forward: on an AVX-512 Xeon writing and
 * reading back (k, B1, B2) values cost 20% more than this logarithm.
 */
ALWAYS_INLINE void gradient_row(int n, const int d, const int with_log, float s0, const float *restrict cx,
                                float inv_k, float floor_, const float *restrict u, const float *restrict g,
                                float *restrict h, float *sum_wd, float *sum_ha)
{
    float wd = 0.0f, ha = 0.0f;
    for (int j = 0; j < n; j++) {
        float a = s0 * u[d * STRIDE + j];
        for (int dd = 0; dd < d; dd++) a += cx[dd] * u[dd * STRIDE + j];
        const int inside = a > floor_;
        const float v = inside ? a : floor_;                   /* floor at 1 + eps, as in the forward */
        const float s = sqrtf(v * v - 1.0f);
        const float w = g[j] * inv_k;
        const float hv = inside ? w / s : 0.0f;                /* floored entries pass no gradient through a */
        if (with_log) wd += w * log_at_least_one(v + s);
        ha += hv * v;
        h[j] = hv;
    }
    *sum_wd += wd;
    *sum_ha += ha;
}

static void gradient_row_any(int n, int d, int with_log, float s0, const float *cx, float inv_k, float floor_,
                             const float *u, const float *g, float *h, float *sum_wd, float *sum_ha)
{
#define GRADIENT_ROW(D, LOG) gradient_row(n, D, LOG, s0, cx, inv_k, floor_, u, g, h, sum_wd, sum_ha)
#define GRADIENT_ROW_D(LOG)                                                                          \
    do {                                                                                             \
        if (d == 8) GRADIENT_ROW(8, LOG);                                                            \
        else if (d == 4) GRADIENT_ROW(4, LOG);                                                       \
        else if (d == 16) GRADIENT_ROW(16, LOG);                                                     \
        else GRADIENT_ROW(d, LOG);                                                                   \
    } while (0)
    if (with_log) GRADIENT_ROW_D(1);
    else GRADIENT_ROW_D(0);
#undef GRADIENT_ROW_D
#undef GRADIENT_ROW
}

/*
 * The tile's contractions with H (m rows of h, stride STRIDE; n columns):
 *   rows[r (d+1) + dd] += sum_j h[r, j] u[dd, j]   with u = [yT | yt] packed (d + 1 rows);
 *   cols[dd b2 + j]    += sum_r h[r, j] v[r, dd]   with v = [x | xt] (x rows of stride d, xt[r]).
 * Each loop keeps d + 1 independent vector sums, so the multiply-adds do not wait on one another.
 */
ALWAYS_INLINE void contract_tile(int n, int m, const int d, int b2, const float *restrict h,
                                 const float *restrict u, const float *restrict x, const float *restrict xt,
                                 float *restrict rows, float *restrict cols)
{
    const int nv = n - n % LANES;                                /* columns in whole vectors */
    for (int r = 0; r < m; r++) {
        const float *hr = h + r * STRIDE;
        vecf acc[d + 1];
        for (int dd = 0; dd <= d; dd++) acc[dd] = splatv(0.0f);
        for (int j = 0; j < nv; j += LANES) {
            const vecf hv = loadv(hr + j);
            for (int dd = 0; dd <= d; dd++) acc[dd] += hv * loadv(u + dd * STRIDE + j);
        }
        for (int dd = 0; dd <= d; dd++) {
            float sum = totalv(acc[dd]);
            for (int j = nv; j < n; j++) sum += hr[j] * u[dd * STRIDE + j];
            rows[r * (d + 1) + dd] += sum;
        }
    }
    for (int j = 0; j < nv; j += LANES) {
        vecf acc[d + 1];
        for (int dd = 0; dd <= d; dd++) acc[dd] = loadv(cols + (long)dd * b2 + j);
        for (int r = 0; r < m; r++) {
            const vecf hv = loadv(h + r * STRIDE + j);
            for (int dd = 0; dd < d; dd++) acc[dd] += hv * splatv(x[r * d + dd]);
            acc[d] += hv * splatv(xt[r]);
        }
        for (int dd = 0; dd <= d; dd++) storev(cols + (long)dd * b2 + j, acc[dd]);
    }
    for (int j = nv; j < n; j++) {
        for (int r = 0; r < m; r++) {
            const float hv = h[r * STRIDE + j];
            for (int dd = 0; dd < d; dd++) cols[(long)dd * b2 + j] += hv * x[r * d + dd];
            cols[(long)d * b2 + j] += hv * xt[r];
        }
    }
}

static void contract_tile_any(int n, int m, int d, int b2, const float *h, const float *u, const float *x,
                              const float *xt, float *rows, float *cols)
{
    if (d == 8) contract_tile(n, m, 8, b2, h, u, x, xt, rows, cols);
    else if (d == 4) contract_tile(n, m, 4, b2, h, u, x, xt, rows, cols);
    else if (d == 16) contract_tile(n, m, 16, b2, h, u, x, xt, rows, cols);
    else contract_tile(n, m, d, b2, h, u, x, xt, rows, cols);
}

/*
 * With W = g / k and H = W / sqrt(a^2 - 1) (0 where a sat on its floor), accumulate for rows
 * row_lo <= i < row_hi:
 *   rows (k, b1, d+1):  [sum_j H_fij y_fj | sum_j H_fij yt_fj]   (rows written here only)
 *   cols (k, d+1, b2):  [sum_i H_fij x_fi | sum_i H_fij xt_fi]   (this call's partial sums)
 *   sums (k, 2):        [sum W acosh(a_f) | sum H_f a_f]          (this call's partial sums;
 *                        the first is 0 unless `with_log`)
 * rows, cols and sums must be zeroed by the caller.
 */
void product_dist_l1_backward(int k, int b1, int b2, int d, const float *x, const float *xt,
                              const float *yT, const float *yt, const float *c, const float *g,
                              float inv_k, float floor_, int with_log, int row_lo,
                              int row_hi, float *rows, float *cols, double *sums)
{
    static _Thread_local float tile[(MAX_D + 1) * STRIDE], g_tile[ROWS * STRIDE], h[ROWS * STRIDE];
    float cx[MAX_D];
    for (int i0 = row_lo; i0 < row_hi; i0 += ROWS) {
        const int i1 = min_int(i0 + ROWS, row_hi), m = i1 - i0;
        for (int j0 = 0; j0 < b2; j0 += COLS) {
            const int n = min_int(COLS, b2 - j0);
            for (int i = i0; i < i1; i++)
                memcpy(g_tile + (i - i0) * STRIDE, g + (long)i * b2 + j0, sizeof(float) * n);
            for (int f = 0; f < k; f++) {
                const float cf = c[f];
                pack_columns(n, d, b2, yt + (long)f * b2 + j0, yT + (long)f * d * b2 + j0, tile);
                float sum_wd = 0.0f, sum_ha = 0.0f;
                for (int i = i0; i < i1; i++) {
                    const long fi = (long)f * b1 + i;
                    for (int dd = 0; dd < d; dd++) cx[dd] = -cf * x[fi * d + dd];
                    gradient_row_any(n, d, with_log, cf * xt[fi], cx, inv_k, floor_, tile, g_tile + (i - i0) * STRIDE,
                                     h + (i - i0) * STRIDE, &sum_wd, &sum_ha);
                }
                sums[2 * f] += sum_wd;
                sums[2 * f + 1] += sum_ha;
                contract_tile_any(n, m, d, b2, h, tile, x + ((long)f * b1 + i0) * d, xt + (long)f * b1 + i0,
                                  rows + ((long)f * b1 + i0) * (d + 1), cols + (long)f * (d + 1) * b2 + j0);
            }
        }
    }
}

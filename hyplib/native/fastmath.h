/*
 * Elementwise functions the kernels share, written so that the loops calling them vectorise
 * (no libm call: libm's logf does not vectorise without libmvec, which the build does not link).
 */
#ifndef HYPLIB_FASTMATH_H
#define HYPLIB_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* coef[0] x^(n-1) + ... + coef[n-1] by Horner's rule (unrolled where n is a constant). */
static inline float horner(float x, const float *coef, int n)
{
    float p = coef[0];
    for (int i = 1; i < n; i++) p = p * x + coef[i];
    return p;
}

/*
 * Natural log of a finite float v >= 1 (the acosh argument a + sqrt(a^2 - 1) is), within one
 * ulp (at most 0.8 ulp over [1, 1e30], measured against double-precision log). The classic
 * reduction: v = m 2^e with m in [sqrt(1/2), sqrt(2)), a degree-8 polynomial in m - 1, and
 * ln 2 split in two parts so that e ln 2 adds without rounding. Branch-free, so the loops that
 * call it vectorise (libm's logf does not without libmvec).
 */
static inline float log_at_least_one(float v)
{
#ifdef HYPLIB_LOG_IS_IDENTITY
    return v;   /* an ablation build only: benchmarks/objectives.py times the kernels' work besides the log */
#else
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    float e = (float)((int32_t)(bits >> 23) - 126);
    bits = (bits & 0x007fffffu) | 0x3f000000u;                /* mantissa in [1/2, 1) */
    float m;
    memcpy(&m, &bits, sizeof m);
    const int low = m < 0.70710678f;
    e = low ? e - 1.0f : e;
    m = low ? m + m - 1.0f : m - 1.0f;                          /* now m - 1, in [sqrt(1/2) - 1, sqrt(2) - 1) */
    const float z = m * m;
    static const float coef[] = {7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f,
                                 1.4249322787e-1f, -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f,
                                 3.3333331174e-1f};
    const float p = horner(m, coef, 9);
    const float y = p * m * z - 2.12194440e-4f * e - 0.5f * z;  /* 2.12194440e-4 = 0.693359375 - ln 2 */
    return m + y + 0.693359375f * e;
#endif
}

/*
 * atan2(y, x) for y > 0 and finite x, in (0, pi), within 2 ulp (1.96 measured against double
 * atan2 on a log grid of y/x over 1e-30..1e30, both signs of x). Reduction to the ratio t in
 * [0, 1] of the smaller to the larger of |x| and y (one division), then atan(t) = t + t^3 P(t^2)
 * with a degree-7 P fitted for relative error (Lawson iterations) on [0, 1], 1.1 ulp there.
 * Branch-free, so calling loops vectorise.
 */
static inline float atan2_positive_y(float y, float x)
{
    const float ax = fabsf(x);
    const int steep = y > ax;                                   /* angle above pi/4 from the x axis */
    const float t = (steep ? ax : y) / (steep ? y : ax);        /* in [0, 1] */
    const float z = t * t;
    static const float coef[] = {2.9206923209130764e-3f, -1.6367929056286812e-2f, 4.3211862444877625e-2f,
                                 -7.552214711904526e-2f, 1.0666004568338394e-1f, -1.4211055636405945e-1f,
                                 1.9993773102760315e-1f, -3.3333152532577515e-1f};
    float r = t + t * z * horner(z, coef, 8);
    r = steep ? 1.5707963267948966f - r : r;
    return x < 0.0f ? 3.1415926535897932f - r : r;
}

#endif

/*
 * isa/avx512_exp.h -- the vector exp of the AVX-512 path, float32 and
 * float64, included by isa/avx512.h.
 *
 * The reduction and polynomials are those of isa/avx2_exp.h (same
 * constants, same accuracy: see there).  What AVX-512 changes is 2^n:
 * vscalefps/pd computes p * 2^n with one rounding for any n, overflowing to
 * inf and rounding into the subnormal range as the exact product would.
 * So one path serves every t: t is clamped (NaN passes the clamps, which
 * return their second operand on NaN) to a range where the magic-bias
 * rounding of n is exact, and no branch or range check is left.
 */
#include "exp_coefficients.h"
static FS_TARGET inline __attribute__((always_inline)) __m512 fs_exp_core_f32_avx512(__m512 t)
{
    const __m512 magic = _mm512_set1_ps(0x1.8p23f);
    const __m512 n =
        _mm512_sub_ps(_mm512_fmadd_ps(t, _mm512_set1_ps(FS_EXP_F32_LOG2E), magic), magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(FS_EXP_F32_LN2_HI), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(FS_EXP_F32_LN2_LO), r);
    __m512 q = _mm512_set1_ps(FS_EXP_F32_Q4);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(FS_EXP_F32_Q3));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(FS_EXP_F32_Q2));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(FS_EXP_F32_Q1));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(FS_EXP_F32_Q0));
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(q, r, one), r, one);
    return _mm512_scalef_ps(p, n);
}

static FS_TARGET inline __attribute__((always_inline)) __m512d fs_exp_core_f64_avx512(__m512d t)
{
    const __m512d magic = _mm512_set1_pd(0x1.8p52);
    const __m512d ln2_lo = _mm512_set1_pd(FS_EXP_F64_LN2_LO);
    const __m512d n =
        _mm512_sub_pd(_mm512_fmadd_pd(t, _mm512_set1_pd(FS_EXP_F64_LOG2E), magic), magic);
    const __m512d r1 = _mm512_fnmadd_pd(n, _mm512_set1_pd(FS_EXP_F64_LN2_HI), t); /* exact */
    const __m512d r = _mm512_fnmadd_pd(n, ln2_lo, r1);
    const __m512d r_lo = _mm512_fnmadd_pd(n, ln2_lo, _mm512_sub_pd(r1, r)); /* r1 - n lo - r */
    const __m512d r2 = _mm512_mul_pd(r, r);
    const __m512d r4 = _mm512_mul_pd(r2, r2);
    const __m512d p23 =
        _mm512_fmadd_pd(_mm512_set1_pd(FS_EXP_F64_P3), r, _mm512_set1_pd(FS_EXP_F64_P2));
    const __m512d p45 =
        _mm512_fmadd_pd(_mm512_set1_pd(FS_EXP_F64_P5), r, _mm512_set1_pd(FS_EXP_F64_P4));
    const __m512d p67 =
        _mm512_fmadd_pd(_mm512_set1_pd(FS_EXP_F64_P7), r, _mm512_set1_pd(FS_EXP_F64_P6));
    const __m512d p89 =
        _mm512_fmadd_pd(_mm512_set1_pd(FS_EXP_F64_P9), r, _mm512_set1_pd(FS_EXP_F64_P8));
    const __m512d p1011 =
        _mm512_fmadd_pd(_mm512_set1_pd(FS_EXP_F64_P11), r, _mm512_set1_pd(FS_EXP_F64_P10));
    const __m512d q25 = _mm512_fmadd_pd(p45, r2, p23);
    const __m512d q611 = _mm512_fmadd_pd(p1011, r4, _mm512_fmadd_pd(p89, r2, p67));
    const __m512d q = _mm512_fmadd_pd(q611, r4, q25);
    const __m512d one = _mm512_set1_pd(1.0);
    const __m512d hi = _mm512_add_pd(one, r);
    const __m512d lo = _mm512_add_pd(_mm512_add_pd(_mm512_sub_pd(one, hi), r), r_lo);
    return _mm512_scalef_pd(_mm512_add_pd(hi, _mm512_fmadd_pd(q, r2, lo)), n);
}

/*
 * The clamps: below -104 (float64: -746) the result is 0 and above 89
 * (710) inf, as exp's.  VEXPN's t <= 0 (or NaN) needs only the first.
 */
static FS_TARGET inline __m512 fs_exp_f32_avx512(__m512 t)
{
    t = _mm512_max_ps(_mm512_set1_ps(-104.0f), t);
    return fs_exp_core_f32_avx512(_mm512_min_ps(_mm512_set1_ps(89.0f), t));
}

static FS_TARGET inline __m512 fs_expn_f32_avx512(__m512 t)
{
    return fs_exp_core_f32_avx512(_mm512_max_ps(_mm512_set1_ps(-104.0f), t));
}

static FS_TARGET inline __m512d fs_exp_f64_avx512(__m512d t)
{
    t = _mm512_max_pd(_mm512_set1_pd(-746.0), t);
    return fs_exp_core_f64_avx512(_mm512_min_pd(_mm512_set1_pd(710.0), t));
}

static FS_TARGET inline __m512d fs_expn_f64_avx512(__m512d t)
{
    return fs_exp_core_f64_avx512(_mm512_max_pd(_mm512_set1_pd(-746.0), t));
}

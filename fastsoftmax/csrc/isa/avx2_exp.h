/*
 * isa/avx2_exp.h -- the vector exp of the AVX2 + FMA path, float32 and
 * float64, included by isa/avx2.h.
 */
#include "exp_coefficients.h"
/*
 * exp(t) = 2^n exp(r), t = n ln2 + r.  n = round(t log2(e)) comes from a
 * magic-bias FMA: v = t log2(e) + (1.5 * 2^23 + 127) keeps n + 127 in the
 * low bits of v (2^52 and 1023 for float64), so v also yields 2^n by one
 * shift.  r = (t - n LN2_HI) - n LN2_LO is a two-constant Cody-Waite
 * reduction (n LN2_HI is exact), |r| <= ln2/2.
 *
 * float32: exp(r) = 1 + r (1 + r q(r)), q of degree 4 fitted for relative
 * error 3.6e-9 (0.06 ulp) on [-ln2/2, ln2/2]; measured worst case over
 * t <= 0: 0.90 ulp (budget 2).
 * float64: q of degree 9 (4.3e-18, 0.04 ulp) by Estrin's scheme, a chain
 * of 4 FMAs instead of Horner's 9: the exp's latency, not its operation
 * count, limits how many vectors a core keeps in flight (a 256-bit FMA
 * issues every 0.4 ns here, yet the Horner exp ran at 3x that per FMA;
 * Estrin on float32's degree-4 q measured no gain).  To stay within
 * 1 ulp, the rounding errors of r (recovered by an FMA) and of 1 + r
 * (Fast2Sum) are added back before the last rounding; measured worst
 * case 0.78 ulp.
 *
 * fs_exp_*_avx2 returns p = exp(r) and v; the callers apply 2^n.
 */
static FS_TARGET inline __m256 fs_exp_poly_f32_avx2(__m256 t, __m256 *v_out)
{
    const __m256 magic = _mm256_set1_ps(0x1.8p23f + 127.0f);
    const __m256 v = _mm256_fmadd_ps(t, _mm256_set1_ps(FS_EXP_F32_LOG2E), magic);
    const __m256 n = _mm256_sub_ps(v, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(FS_EXP_F32_LN2_HI), t);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(FS_EXP_F32_LN2_LO), r);
    __m256 q = _mm256_set1_ps(FS_EXP_F32_Q4);
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(FS_EXP_F32_Q3));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(FS_EXP_F32_Q2));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(FS_EXP_F32_Q1));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(FS_EXP_F32_Q0));
    const __m256 one = _mm256_set1_ps(1.0f);
    *v_out = v;
    return _mm256_fmadd_ps(_mm256_fmadd_ps(q, r, one), r, one);
}

static FS_TARGET inline __m256d fs_exp_poly_f64_avx2(__m256d t, __m256d *v_out)
{
    const __m256d magic = _mm256_set1_pd(0x1.8p52 + 1023.0);
    const __m256d ln2_lo = _mm256_set1_pd(FS_EXP_F64_LN2_LO);
    const __m256d v = _mm256_fmadd_pd(t, _mm256_set1_pd(FS_EXP_F64_LOG2E), magic);
    const __m256d n = _mm256_sub_pd(v, magic);
    const __m256d r1 = _mm256_fnmadd_pd(n, _mm256_set1_pd(FS_EXP_F64_LN2_HI), t); /* exact */
    const __m256d r = _mm256_fnmadd_pd(n, ln2_lo, r1);
    const __m256d r_lo = _mm256_fnmadd_pd(n, ln2_lo, _mm256_sub_pd(r1, r)); /* r1 - n lo - r */
    const __m256d r2 = _mm256_mul_pd(r, r);
    const __m256d r4 = _mm256_mul_pd(r2, r2);
    const __m256d p23 =
        _mm256_fmadd_pd(_mm256_set1_pd(FS_EXP_F64_P3), r, _mm256_set1_pd(FS_EXP_F64_P2));
    const __m256d p45 =
        _mm256_fmadd_pd(_mm256_set1_pd(FS_EXP_F64_P5), r, _mm256_set1_pd(FS_EXP_F64_P4));
    const __m256d p67 =
        _mm256_fmadd_pd(_mm256_set1_pd(FS_EXP_F64_P7), r, _mm256_set1_pd(FS_EXP_F64_P6));
    const __m256d p89 =
        _mm256_fmadd_pd(_mm256_set1_pd(FS_EXP_F64_P9), r, _mm256_set1_pd(FS_EXP_F64_P8));
    const __m256d p1011 =
        _mm256_fmadd_pd(_mm256_set1_pd(FS_EXP_F64_P11), r, _mm256_set1_pd(FS_EXP_F64_P10));
    const __m256d q25 = _mm256_fmadd_pd(p45, r2, p23);
    const __m256d q611 = _mm256_fmadd_pd(p1011, r4, _mm256_fmadd_pd(p89, r2, p67));
    const __m256d q = _mm256_fmadd_pd(q611, r4, q25);
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d hi = _mm256_add_pd(one, r);
    const __m256d lo = _mm256_add_pd(_mm256_add_pd(_mm256_sub_pd(one, hi), r), r_lo);
    *v_out = v;
    return _mm256_add_pd(hi, _mm256_fmadd_pd(q, r2, lo));
}

/*
 * Any t: t is clamped to [-110, 89] ([-750, 710]; NaN passes the clamps,
 * which return their second operand on NaN) and 2^n is applied as two
 * factors 2^n1 2^n2, n1 = floor(n/2), each a normal number: results down to
 * the subnormal range (t > -103.97, t > -745.1) are rounded once, not
 * flushed, and large t overflow to inf.
 */
static FS_TARGET __attribute__((noinline)) __m256 fs_exp_f32_avx2_wide(__m256 t)
{
    t = _mm256_max_ps(_mm256_set1_ps(-110.0f), t);
    t = _mm256_min_ps(_mm256_set1_ps(89.0f), t);
    __m256 v;
    const __m256 p = fs_exp_poly_f32_avx2(t, &v);
    const __m256i ni =
        _mm256_sub_epi32(_mm256_castps_si256(v), _mm256_castps_si256(_mm256_set1_ps(0x1.8p23f)));
    const __m256i n1 = _mm256_srai_epi32(ni, 1); /* these carry the +127 bias */
    const __m256i n2 = _mm256_sub_epi32(ni, n1); /* n1 + n2 = n + 127 */
    const __m256 s1 =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(64)), 23));
    const __m256 s2 =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(63)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static FS_TARGET __attribute__((noinline)) __m256d fs_exp_f64_avx2_wide(__m256d t)
{
    t = _mm256_max_pd(_mm256_set1_pd(-750.0), t);
    t = _mm256_min_pd(_mm256_set1_pd(710.0), t);
    __m256d v;
    const __m256d p = fs_exp_poly_f64_avx2(t, &v);
    const __m256i nb =
        _mm256_sub_epi64(_mm256_castpd_si256(v), _mm256_castpd_si256(_mm256_set1_pd(0x1.8p52)));
    /* AVX2 has no 64-bit arithmetic shift: halve nb + 2048 >= 0 instead */
    const __m256i n1 =
        _mm256_sub_epi64(_mm256_srli_epi64(_mm256_add_epi64(nb, _mm256_set1_epi64x(2048)), 1),
                         _mm256_set1_epi64x(1024));
    const __m256i n2 = _mm256_sub_epi64(nb, n1); /* n1 + n2 = n + 1023 */
    const __m256d s1 =
        _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n1, _mm256_set1_epi64x(512)), 52));
    const __m256d s2 =
        _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n2, _mm256_set1_epi64x(511)), 52));
    return _mm256_mul_pd(_mm256_mul_pd(p, s1), s2);
}

/* In the normal range 2^n is v shifted into the exponent field. */
static FS_TARGET inline __m256 fs_exp_core_f32_avx2(__m256 t)
{
    __m256 v;
    const __m256 p = fs_exp_poly_f32_avx2(t, &v);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(v), 23)));
}

static FS_TARGET inline __m256d fs_exp_core_f64_avx2(__m256d t)
{
    __m256d v;
    const __m256d p = fs_exp_poly_f64_avx2(t, &v);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(v), 52)));
}

/*
 * exp(t) for any t: the fast path when every lane's result is a normal
 * number (-87.3 <= t <= 88, -708.3 <= t <= 709), else the full-range one.
 */
static FS_TARGET inline __m256 fs_exp_f32_avx2(__m256 t)
{
    const __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(t, _mm256_set1_ps(-87.3f), _CMP_GE_OQ),
                                          _mm256_cmp_ps(t, _mm256_set1_ps(88.0f), _CMP_LE_OQ));
    if (__builtin_expect(_mm256_movemask_ps(in_range) != 0xFF, 0))
        return fs_exp_f32_avx2_wide(t);
    return fs_exp_core_f32_avx2(t);
}

static FS_TARGET inline __m256d fs_exp_f64_avx2(__m256d t)
{
    const __m256d in_range = _mm256_and_pd(_mm256_cmp_pd(t, _mm256_set1_pd(-708.3), _CMP_GE_OQ),
                                           _mm256_cmp_pd(t, _mm256_set1_pd(709.0), _CMP_LE_OQ));
    if (__builtin_expect(_mm256_movemask_pd(in_range) != 0xF, 0))
        return fs_exp_f64_avx2_wide(t);
    return fs_exp_core_f64_avx2(t);
}

/*
 * exp(t) for t <= 0 or NaN, the softmax kernels' case (t = x - max): one
 * compare fewer per vector.
 */
static FS_TARGET inline __m256 fs_expn_f32_avx2(__m256 t)
{
    if (__builtin_expect(
            _mm256_movemask_ps(_mm256_cmp_ps(t, _mm256_set1_ps(-87.3f), _CMP_GE_OQ)) != 0xFF, 0))
        return fs_exp_f32_avx2_wide(t);
    return fs_exp_core_f32_avx2(t);
}

static FS_TARGET inline __m256d fs_expn_f64_avx2(__m256d t)
{
    if (__builtin_expect(
            _mm256_movemask_pd(_mm256_cmp_pd(t, _mm256_set1_pd(-708.3), _CMP_GE_OQ)) != 0xF, 0))
        return fs_exp_f64_avx2_wide(t);
    return fs_exp_core_f64_avx2(t);
}

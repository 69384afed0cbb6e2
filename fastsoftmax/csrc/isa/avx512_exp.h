/*
 * isa/avx512_exp.h -- the vector exp of the AVX-512 path, float32 and
 * float64, included by isa/avx512.h.
 *
 * float32's reduction and polynomial are those of isa/avx2_exp.h (same
 * constants, same accuracy: see there); float64's take a table (below).
 * What AVX-512 changes is 2^n:
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

/*
 * float64 takes a table instead of the polynomial of isa/avx2_exp.h: with
 * k = round(16 t / ln2), t = (k / 16) ln2 + r, |r| <= ln2 / 32, and
 *     exp(t) = 2^floor(k / 16) * 2^(j / 16) * exp(r),   j = k mod 16.
 * 2^(j / 16) is two 16-entry lookups (hi and lo, each one vpermt2pd on two
 * registers: the index is the low 4 bits of the magic-biased k), exp(r) - 1
 * is Taylor's series to r^7 (the next term is below 1.3e-18 at |r| = ln2 /
 * 32), and vscalefpd floors its exponent itself, so k / 16 goes in as it
 * is (and is what the magic-bias rounding gives: see below).  16
 * operations a vector against 24 for the degree-11 polynomial on
 * [-ln2 / 2, ln2 / 2]; the error is that of the last addition plus about
 * 0.1 ulp (tests/test_accuracy.py: within 1 ulp of exp in long double).
 */
static const double fs_exp2_16_hi[16] __attribute__((aligned(64))) = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0,
};
static const double fs_exp2_16_lo[16] __attribute__((aligned(64))) = {
    0x0.0p+0,
    0x1.8a62e4adc610bp-54,
    -0x1.19041b9d78a76p-55,
    0x1.9b07eb6c70573p-54,
    0x1.6f46ad23182e4p-55,
    0x1.ada0911f09ebcp-55,
    0x1.d4397afec42e2p-56,
    0x1.6324c054647adp-54,
    -0x1.bdd3413b26456p-54,
    -0x1.41577ee04992fp-55,
    0x1.6e9f156864b27p-54,
    0x1.c7c46b071f2bep-56,
    0x1.7a1cd345dcc81p-54,
    0x1.11065895048ddp-55,
    0x1.2ed02d75b3707p-55,
    -0x1.e9c23179c2893p-54,
};

static FS_TARGET inline __attribute__((always_inline)) __m512d fs_exp_core_f64_avx512(__m512d t)
{
    /*
     * k / 16 directly: 1.5 2^48 + t / ln2 rounds to a multiple of 1/16, the
     * same rounding as that of 16 t / ln2 to an integer, scaled (so no
     * multiply by 1/16 before vscalefpd).  k / 16 (16 LN2_16_HI) is exact.
     */
    const __m512d magic = _mm512_set1_pd(0x1.8p48);
    const __m512d kb = _mm512_fmadd_pd(t, _mm512_set1_pd(FS_EXP_F64_LOG2E), magic);
    const __m512d k16 = _mm512_sub_pd(kb, magic);
    __m512d r = _mm512_fnmadd_pd(k16, _mm512_set1_pd(16 * FS_EXP_F64_LN2_16_HI), t); /* exact */
    r = _mm512_fnmadd_pd(k16, _mm512_set1_pd(16 * FS_EXP_F64_LN2_16_LO), r);
    const __m512i j =
        _mm512_castpd_si512(kb); /* kb = 1.5 2^48 + k / 16: k mod 16 in the low bits */
    const __m512d thi =
        _mm512_permutex2var_pd(_mm512_load_pd(fs_exp2_16_hi), j, _mm512_load_pd(fs_exp2_16_hi + 8));
    const __m512d tlo =
        _mm512_permutex2var_pd(_mm512_load_pd(fs_exp2_16_lo), j, _mm512_load_pd(fs_exp2_16_lo + 8));
    const __m512d r2 = _mm512_mul_pd(r, r);
    const __m512d c23 = _mm512_fmadd_pd(_mm512_set1_pd(1.0 / 6), r, _mm512_set1_pd(0.5));
    const __m512d c45 = _mm512_fmadd_pd(_mm512_set1_pd(1.0 / 120), r, _mm512_set1_pd(1.0 / 24));
    const __m512d c67 = _mm512_fmadd_pd(_mm512_set1_pd(1.0 / 5040), r, _mm512_set1_pd(1.0 / 720));
    const __m512d q = _mm512_fmadd_pd(_mm512_fmadd_pd(c67, r2, c45), r2, c23);
    const __m512d p = _mm512_fmadd_pd(q, r2, r); /* exp(r) - 1 */
    const __m512d y = _mm512_add_pd(thi, _mm512_fmadd_pd(thi, p, tlo));
    return _mm512_scalef_pd(y, k16);
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

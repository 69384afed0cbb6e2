/*
 * _simd.c -- the SIMD layer of fastsoftmax: the kernel bodies of
 * _simd_body.h instantiated as portable scalar C and as AVX2+FMA, the
 * vector exp functions, and the one dispatch table that chooses a variant
 * at run time (__builtin_cpu_supports).  No -march flag is needed: the
 * AVX2 functions carry their own target attribute, so the same binary runs
 * on any x86-64 CPU, and non-x86 builds compile the scalar variant only.
 */
#include "_simd.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FS_X86 1
#include <immintrin.h>
#else
#define FS_X86 0
#endif

/*
 * Elements per block of the blocked sums: with two accumulators a lane
 * adds 8 (float32 AVX2) or 16 (float64 AVX2) terms before the block's
 * lanes are added in double.
 */
#define FS_BLOCK 128
/* Elements per block of the one-pass (online) row statistics: 4-8 KiB, in L1. */
#define FS_OBLOCK 1024
/* Rows per block of the column kernels' online statistics. */
#define FS_CBLOCK 16

/* What the per-class factor u of the cross-entropy kernels is (see _simd_body.h). */
#define FS_XENT_PLAIN 0        /* no smoothing term: u unused */
#define FS_XENT_UNIFORM 1      /* u = 1: label smoothing without class weights */
#define FS_XENT_WEIGHT 2       /* u = weight: label smoothing with class weights */
#define FS_XENT_SOFT 3         /* u = (1 - eps) q + eps / n: probability targets */
#define FS_XENT_SOFT_WEIGHT 4  /* u = weight ((1 - eps) q + eps / n) */
/*
 * Class-index rows of at most this many classes go through the chunked
 * small-row kernel, FS_XENT_CHUNK elements (4-8 KiB, in L1) at a time.
 */
#define FS_XENT_SMALL 64
#define FS_XENT_CHUNK 1024

/* Neumaier's compensated addition: s + c carries the sum to about 1 ulp. */
static inline void fs_neumaier(double *s, double *c, double v)
{
    const double t = *s + v;
    if (fabs(*s) >= fabs(v))
        *c += (*s - t) + v;
    else
        *c += (v - t) + *s;
    *s = t;
}

/* =========================================================== scalar C == */

#define FS_TARGET
#define W 1
#define VLOADN(p, k) (*(p))
#define VSTOREN(p, v, k) (*(p) = (v))
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSTREAM(p, v) (*(p) = (v))
#define VHEAD(p) 0
#define VFENCE() ((void)0)
#define VSET(c) (c)
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VMIN(a, b) ((a) < (b) ? (a) : (b))
#define VHMAX(v) (v)
#define VHMIN(v) (v)
#define VNAN_ACC(acc, a, b) (((a) != (a) || (b) != (b)) ? (T)1 : (acc))
#define VNAN_ANY(acc) ((acc) != 0)
#define VNAN_APPLY(v, acc) ((acc) != 0 ? (T)NAN : (v))
#define A double
#define AZERO 0.0
#define AADD(a, v) ((a) + (double)(v))
#define ACOMB(a, b) ((a) + (b))
#define AHSUM(a) (a)
#define SACC(s, v) (*(s) += (double)(v))
#define VEXPN_FAST_MIN (-INFINITY)

/* libm's exp: correctly rounded or nearly so, and portable. */
#define T float
#define V float
#define VNAN0 0.0f
#define VEXP(v) expf(v)
#define VEXPN(v) expf(v)
#define VEXPN_FAST(v) expf(v)
#define FS_NAME(f) f##_f32_scalar
#include "_simd_body.h"
#undef T
#undef V
#undef VNAN0
#undef VEXP
#undef VEXPN
#undef VEXPN_FAST
#undef FS_NAME

#define T double
#define V double
#define VNAN0 0.0
#define VEXP(v) exp(v)
#define VEXPN(v) exp(v)
#define VEXPN_FAST(v) exp(v)
#define FS_NAME(f) f##_f64_scalar
#include "_simd_body.h"
#undef T
#undef V
#undef VNAN0
#undef VEXP
#undef VEXPN
#undef VEXPN_FAST
#undef FS_NAME

#undef FS_TARGET
#undef W
#undef VLOADN
#undef VSTOREN
#undef VLOAD
#undef VSTORE
#undef VSTREAM
#undef VHEAD
#undef VFENCE
#undef VSET
#undef VADD
#undef VSUB
#undef VMUL
#undef VMAX
#undef VMIN
#undef VHMAX
#undef VHMIN
#undef VNAN_ACC
#undef VNAN_ANY
#undef VNAN_APPLY
#undef A
#undef AZERO
#undef AADD
#undef ACOMB
#undef AHSUM
#undef SACC
#undef VEXPN_FAST_MIN

/* ========================================================= AVX2 + FMA == */
#if FS_X86

#define FS_TARGET __attribute__((target("avx2,fma")))

/* Lane masks for the first k lanes: &fs_mask32[8 - k], &fs_mask64[4 - k]. */
static const int32_t fs_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t fs_mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

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
    const __m256 v = _mm256_fmadd_ps(t, _mm256_set1_ps(0x1.715476p+0f), magic);
    const __m256 n = _mm256_sub_ps(v, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e400p-1f), t);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), r);
    __m256 q = _mm256_set1_ps(1.37514078958e-3f);
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(8.36891634138e-3f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(4.16695331092e-2f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.666651846e-1f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(4.99999885951e-1f));
    const __m256 one = _mm256_set1_ps(1.0f);
    *v_out = v;
    return _mm256_fmadd_ps(_mm256_fmadd_ps(q, r, one), r, one);
}

static FS_TARGET inline __m256d fs_exp_poly_f64_avx2(__m256d t, __m256d *v_out)
{
    const __m256d magic = _mm256_set1_pd(0x1.8p52 + 1023.0);
    const __m256d ln2_lo = _mm256_set1_pd(0x1.a39ef35793c76p-33);
    const __m256d v = _mm256_fmadd_pd(t, _mm256_set1_pd(0x1.71547652b82fep+0), magic);
    const __m256d n = _mm256_sub_pd(v, magic);
    const __m256d r1 = _mm256_fnmadd_pd(n, _mm256_set1_pd(0x1.62e42fee00000p-1), t);  /* exact */
    const __m256d r = _mm256_fnmadd_pd(n, ln2_lo, r1);
    const __m256d r_lo = _mm256_fnmadd_pd(n, ln2_lo, _mm256_sub_pd(r1, r));  /* r1 - n lo - r */
    const __m256d r2 = _mm256_mul_pd(r, r);
    const __m256d r4 = _mm256_mul_pd(r2, r2);
    const __m256d p23 = _mm256_fmadd_pd(_mm256_set1_pd(1.6666666666666482434e-1), r, _mm256_set1_pd(5.0000000000000127272e-1));
    const __m256d p45 = _mm256_fmadd_pd(_mm256_set1_pd(8.3333333334514329145e-3), r, _mm256_set1_pd(4.1666666666516322379e-2));
    const __m256d p67 = _mm256_fmadd_pd(_mm256_set1_pd(1.984126959711890376e-4), r, _mm256_set1_pd(1.3888888946678827123e-3));
    const __m256d p89 = _mm256_fmadd_pd(_mm256_set1_pd(2.7557507285412289794e-6), r, _mm256_set1_pd(2.4801490346235071109e-5));
    const __m256d p1011 = _mm256_fmadd_pd(_mm256_set1_pd(2.5024645209649299235e-8), r, _mm256_set1_pd(2.7631125446226205028e-7));
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
    const __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(v),
                                        _mm256_castps_si256(_mm256_set1_ps(0x1.8p23f)));
    const __m256i n1 = _mm256_srai_epi32(ni, 1);     /* these carry the +127 bias */
    const __m256i n2 = _mm256_sub_epi32(ni, n1);     /* n1 + n2 = n + 127 */
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(64)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(63)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static FS_TARGET __attribute__((noinline)) __m256d fs_exp_f64_avx2_wide(__m256d t)
{
    t = _mm256_max_pd(_mm256_set1_pd(-750.0), t);
    t = _mm256_min_pd(_mm256_set1_pd(710.0), t);
    __m256d v;
    const __m256d p = fs_exp_poly_f64_avx2(t, &v);
    const __m256i nb = _mm256_sub_epi64(_mm256_castpd_si256(v),
                                        _mm256_castpd_si256(_mm256_set1_pd(0x1.8p52)));
    /* AVX2 has no 64-bit arithmetic shift: halve nb + 2048 >= 0 instead */
    const __m256i n1 = _mm256_sub_epi64(
        _mm256_srli_epi64(_mm256_add_epi64(nb, _mm256_set1_epi64x(2048)), 1), _mm256_set1_epi64x(1024));
    const __m256i n2 = _mm256_sub_epi64(nb, n1);     /* n1 + n2 = n + 1023 */
    const __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n1, _mm256_set1_epi64x(512)), 52));
    const __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n2, _mm256_set1_epi64x(511)), 52));
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
    if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(t, _mm256_set1_ps(-87.3f), _CMP_GE_OQ)) != 0xFF, 0))
        return fs_exp_f32_avx2_wide(t);
    return fs_exp_core_f32_avx2(t);
}

static FS_TARGET inline __m256d fs_expn_f64_avx2(__m256d t)
{
    if (__builtin_expect(_mm256_movemask_pd(_mm256_cmp_pd(t, _mm256_set1_pd(-708.3), _CMP_GE_OQ)) != 0xF, 0))
        return fs_exp_f64_avx2_wide(t);
    return fs_exp_core_f64_avx2(t);
}

static FS_TARGET inline double fs_hsum_pd_avx2(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static FS_TARGET inline float fs_hmax_ps_avx2(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static FS_TARGET inline double fs_hmax_pd_avx2(__m256d v)
{
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
}

static FS_TARGET inline float fs_hmin_ps_avx2(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static FS_TARGET inline double fs_hmin_pd_avx2(__m256d v)
{
    __m128d m = _mm_min_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_min_sd(m, _mm_unpackhi_pd(m, m)));
}

/* the 8 float lanes of a block accumulator, added in double */
static FS_TARGET inline double fs_hsum_ps_avx2(__m256 v)
{
    return fs_hsum_pd_avx2(_mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                         _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

static FS_TARGET inline void fs_sacc_f32_avx2(double *s, __m256 v)
{
    _mm256_storeu_pd(s, _mm256_add_pd(_mm256_loadu_pd(s), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(s + 4, _mm256_add_pd(_mm256_loadu_pd(s + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

static FS_TARGET inline __m256 fs_loadn_f32_avx2(const float *p, ptrdiff_t k)
{
    const __m256i mask = _mm256_loadu_si256((const __m256i *)(fs_mask32 + 8 - k));
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, mask),
                            _mm256_castsi256_ps(mask));
}

static FS_TARGET inline __m256d fs_loadn_f64_avx2(const double *p, ptrdiff_t k)
{
    const __m256i mask = _mm256_loadu_si256((const __m256i *)(fs_mask64 + 4 - k));
    return _mm256_blendv_pd(_mm256_set1_pd(-INFINITY), _mm256_maskload_pd(p, mask),
                            _mm256_castsi256_pd(mask));
}

#define VHEAD(p) ((ptrdiff_t)((32 - ((uintptr_t)(p) & 31)) & 31) / (ptrdiff_t)sizeof(*(p)))
#define VFENCE() _mm_sfence()

#define T float
#define V __m256
#define W 8
#define A __m256
#define AZERO _mm256_setzero_ps()
#define AADD(a, v) _mm256_add_ps((a), (v))
#define ACOMB(a, b) _mm256_add_ps((a), (b))
#define AHSUM(a) fs_hsum_ps_avx2(a)
#define SACC(s, v) fs_sacc_f32_avx2((s), (v))
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSTREAM(p, v) _mm256_stream_ps((p), (v))
#define VLOADN(p, k) fs_loadn_f32_avx2((p), (k))
#define VSTOREN(p, v, k) _mm256_maskstore_ps((p), _mm256_loadu_si256((const __m256i *)(fs_mask32 + 8 - (k))), (v))
#define VSET(c) _mm256_set1_ps(c)
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VMAX _mm256_max_ps
#define VMIN _mm256_min_ps
#define VHMAX fs_hmax_ps_avx2
#define VHMIN fs_hmin_ps_avx2
#define VEXP fs_exp_f32_avx2
#define VEXPN fs_expn_f32_avx2
#define VEXPN_FAST fs_exp_core_f32_avx2
#define VEXPN_FAST_MIN (-87.3f)
#define VNAN0 _mm256_setzero_ps()
#define VNAN_ACC(acc, a, b) _mm256_or_ps((acc), _mm256_cmp_ps((a), (b), _CMP_UNORD_Q))
#define VNAN_ANY(acc) _mm256_movemask_ps(acc)
#define VNAN_APPLY(v, acc) _mm256_or_ps((v), (acc))
#define FS_NAME(f) f##_f32_avx2
#include "_simd_body.h"
#undef T
#undef V
#undef W
#undef A
#undef AZERO
#undef AADD
#undef ACOMB
#undef AHSUM
#undef SACC
#undef VLOAD
#undef VSTORE
#undef VSTREAM
#undef VLOADN
#undef VSTOREN
#undef VSET
#undef VADD
#undef VSUB
#undef VMUL
#undef VMAX
#undef VMIN
#undef VHMAX
#undef VHMIN
#undef VEXP
#undef VEXPN
#undef VEXPN_FAST
#undef VEXPN_FAST_MIN
#undef VNAN0
#undef VNAN_ACC
#undef VNAN_ANY
#undef VNAN_APPLY
#undef FS_NAME

#define T double
#define V __m256d
#define W 4
#define A __m256d
#define AZERO _mm256_setzero_pd()
#define AADD(a, v) _mm256_add_pd((a), (v))
#define ACOMB(a, b) _mm256_add_pd((a), (b))
#define AHSUM(a) fs_hsum_pd_avx2(a)
#define SACC(s, v) _mm256_storeu_pd((s), _mm256_add_pd(_mm256_loadu_pd(s), (v)))
#define VLOAD(p) _mm256_loadu_pd(p)
#define VSTORE(p, v) _mm256_storeu_pd((p), (v))
#define VSTREAM(p, v) _mm256_stream_pd((p), (v))
#define VLOADN(p, k) fs_loadn_f64_avx2((p), (k))
#define VSTOREN(p, v, k) _mm256_maskstore_pd((p), _mm256_loadu_si256((const __m256i *)(fs_mask64 + 4 - (k))), (v))
#define VSET(c) _mm256_set1_pd(c)
#define VADD _mm256_add_pd
#define VSUB _mm256_sub_pd
#define VMUL _mm256_mul_pd
#define VMAX _mm256_max_pd
#define VMIN _mm256_min_pd
#define VHMAX fs_hmax_pd_avx2
#define VHMIN fs_hmin_pd_avx2
#define VEXP fs_exp_f64_avx2
#define VEXPN fs_expn_f64_avx2
#define VEXPN_FAST fs_exp_core_f64_avx2
#define VEXPN_FAST_MIN (-708.3)
#define VNAN0 _mm256_setzero_pd()
#define VNAN_ACC(acc, a, b) _mm256_or_pd((acc), _mm256_cmp_pd((a), (b), _CMP_UNORD_Q))
#define VNAN_ANY(acc) _mm256_movemask_pd(acc)
#define VNAN_APPLY(v, acc) _mm256_or_pd((v), (acc))
#define FS_NAME(f) f##_f64_avx2
#include "_simd_body.h"

#endif /* FS_X86 */

/* ====================================================== dispatch table == */

#define FS_KERNELS(X)                                                        \
    X(softmax_rows_f32) X(softmax_rows_f64)                                  \
    X(softmax_cols_f32) X(softmax_cols_f64)                                  \
    X(logsumexp_rows_f32) X(logsumexp_rows_f64)                              \
    X(logsumexp_cols_f32) X(logsumexp_cols_f64)                              \
    X(backward_rows_f32) X(backward_rows_f64)                                \
    X(backward_cols_f32) X(backward_cols_f64)                                \
    X(xent_rows_f32) X(xent_rows_f64)                                        \
    X(xent_soft_rows_f32) X(xent_soft_rows_f64)                              \
    X(exp_array_f32) X(exp_array_f64)

typedef struct {
    void (*softmax_rows_f32)(const float *, float *, float *, ptrdiff_t, ptrdiff_t, int);
    void (*softmax_rows_f64)(const double *, double *, double *, ptrdiff_t, ptrdiff_t, int);
    void (*softmax_cols_f32)(const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*softmax_cols_f64)(const double *, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*logsumexp_rows_f32)(const float *, float *, ptrdiff_t, ptrdiff_t);
    void (*logsumexp_rows_f64)(const double *, double *, ptrdiff_t, ptrdiff_t);
    void (*logsumexp_cols_f32)(const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*logsumexp_cols_f64)(const double *, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*backward_rows_f32)(const float *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
    void (*backward_rows_f64)(const double *, const double *, double *, ptrdiff_t, ptrdiff_t, int);
    void (*backward_cols_f32)(const float *, const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*backward_cols_f64)(const double *, const double *, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*xent_rows_f32)(const float *, const int64_t *, const float *, double, double,
                          const double *, double, double *, float *, float *, ptrdiff_t, ptrdiff_t, int);
    void (*xent_rows_f64)(const double *, const int64_t *, const double *, double, double,
                          const double *, double, double *, double *, double *, ptrdiff_t, ptrdiff_t, int);
    void (*xent_soft_rows_f32)(const float *, const float *, const float *, double,
                               const double *, double, double *, float *, float *, ptrdiff_t, ptrdiff_t, int);
    void (*xent_soft_rows_f64)(const double *, const double *, const double *, double,
                               const double *, double, double *, double *, double *, ptrdiff_t, ptrdiff_t, int);
    void (*exp_array_f32)(const float *, float *, ptrdiff_t);
    void (*exp_array_f64)(const double *, double *, ptrdiff_t);
} fs_table;

#define FS_ENTRY_SCALAR(k) k##_scalar,
#define FS_ENTRY_AVX2(k) k##_avx2,

static const fs_table fs_tables[] = {
    {FS_KERNELS(FS_ENTRY_SCALAR)},
#if FS_X86
    {FS_KERNELS(FS_ENTRY_AVX2)},
#endif
};

static const fs_table *fs_kernel = &fs_tables[0];
static int fs_isa = FS_ISA_SCALAR;

/* The one place that asks the CPU what it can do. */
int fs_cpu_isa(void)
{
#if FS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FS_ISA_AVX2;
#endif
    return FS_ISA_SCALAR;
}

int fs_select_isa(int requested)
{
    int isa = fs_cpu_isa();
    if (requested < isa)
        isa = requested;
    if (isa < FS_ISA_SCALAR)
        isa = FS_ISA_SCALAR;
    /* no AVX-512 variant is built: it falls back to AVX2 (see the docs) */
    if (isa > FS_ISA_AVX2)
        isa = FS_ISA_AVX2;
    fs_kernel = &fs_tables[isa];
    fs_isa = isa;
    return isa;
}

int fs_current_isa(void) { return fs_isa; }

const char *fs_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

/* ============================================================ entries == */

void fs_softmax_rows_f32(const float *x, float *y, float *work, ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->softmax_rows_f32(x, y, work, n_rows, n, flags); }
void fs_softmax_rows_f64(const double *x, double *y, double *work, ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->softmax_rows_f64(x, y, work, n_rows, n, flags); }
void fs_softmax_cols_f32(const float *x, float *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags)
{ fs_kernel->softmax_cols_f32(x, y, n, stride, width, flags); }
void fs_softmax_cols_f64(const double *x, double *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags)
{ fs_kernel->softmax_cols_f64(x, y, n, stride, width, flags); }
void fs_logsumexp_rows_f32(const float *x, float *out, ptrdiff_t n_rows, ptrdiff_t n)
{ fs_kernel->logsumexp_rows_f32(x, out, n_rows, n); }
void fs_logsumexp_rows_f64(const double *x, double *out, ptrdiff_t n_rows, ptrdiff_t n)
{ fs_kernel->logsumexp_rows_f64(x, out, n_rows, n); }
void fs_logsumexp_cols_f32(const float *x, float *out, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width)
{ fs_kernel->logsumexp_cols_f32(x, out, n, stride, width); }
void fs_logsumexp_cols_f64(const double *x, double *out, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width)
{ fs_kernel->logsumexp_cols_f64(x, out, n, stride, width); }
void fs_softmax_backward_rows_f32(const float *dy, const float *y, float *dx, ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->backward_rows_f32(dy, y, dx, n_rows, n, flags); }
void fs_softmax_backward_rows_f64(const double *dy, const double *y, double *dx, ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->backward_rows_f64(dy, y, dx, n_rows, n, flags); }
void fs_softmax_backward_cols_f32(const float *dy, const float *y, float *dx, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags)
{ fs_kernel->backward_cols_f32(dy, y, dx, n, stride, width, flags); }
void fs_softmax_backward_cols_f64(const double *dy, const double *y, double *dx, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags)
{ fs_kernel->backward_cols_f64(dy, y, dx, n, stride, width, flags); }
void fs_xent_rows_f32(const float *x, const int64_t *target, const float *weight, double w_sum,
                      double eps, const double *row_scale, double scale, double *loss, float *g, float *work,
                      ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->xent_rows_f32(x, target, weight, w_sum, eps, row_scale, scale, loss, g, work, n_rows, n, flags); }
void fs_xent_rows_f64(const double *x, const int64_t *target, const double *weight, double w_sum,
                      double eps, const double *row_scale, double scale, double *loss, double *g, double *work,
                      ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->xent_rows_f64(x, target, weight, w_sum, eps, row_scale, scale, loss, g, work, n_rows, n, flags); }
void fs_xent_soft_rows_f32(const float *x, const float *q, const float *weight, double eps,
                           const double *row_scale, double scale, double *loss, float *g, float *work,
                           ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->xent_soft_rows_f32(x, q, weight, eps, row_scale, scale, loss, g, work, n_rows, n, flags); }
void fs_xent_soft_rows_f64(const double *x, const double *q, const double *weight, double eps,
                           const double *row_scale, double scale, double *loss, double *g, double *work,
                           ptrdiff_t n_rows, ptrdiff_t n, int flags)
{ fs_kernel->xent_soft_rows_f64(x, q, weight, eps, row_scale, scale, loss, g, work, n_rows, n, flags); }
void fs_exp_f32(const float *x, float *y, ptrdiff_t n) { fs_kernel->exp_array_f32(x, y, n); }
void fs_exp_f64(const double *x, double *y, ptrdiff_t n) { fs_kernel->exp_array_f64(x, y, n); }

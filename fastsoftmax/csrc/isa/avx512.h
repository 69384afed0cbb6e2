/*
 * isa/avx512.h -- the vector vocabulary of the AVX-512 path (F, DQ, BW, VL
 * with FMA: 16 float or 8 double lanes), documented in isa/scalar.h.
 * Partial vectors use the mask registers: a masked load fills the other
 * lanes with -inf, a masked store leaves memory there untouched.
 */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FS_ISA_BUILT  1
#define FS_ISA_SUFFIX avx512
#define FS_TARGET     __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

#include <immintrin.h>

#include "avx512_exp.h"

/* elements from p to the next 64-byte boundary, where VSTREAM may start */
#define VHEAD(p) ((ptrdiff_t)((64 - ((uintptr_t)(p) & 63)) & 63) / (ptrdiff_t)sizeof(*(p)))
#define VFENCE() _mm_sfence()
#define VREGS    32

/* one mask bit per non-zero byte of v (a NumPy bool mask) */
static FS_TARGET inline __mmask16 fs_bytes_mask16(__m128i v)
{
    return _mm_test_epi8_mask(v, v);
}

#if FS_DTYPE == 32

/* the 16 float lanes of a block accumulator, added in double */
static FS_TARGET inline double fs_hsum_ps_avx512(__m512 v)
{
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                              _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
}

/* Lane sums (L, see body/common.h): a block's 16 float lanes added into 16 doubles. */
typedef struct {
    __m512d lo, hi;
} fs_lsum_f32_avx512;

static FS_TARGET inline void fs_ladd_f32_avx512(fs_lsum_f32_avx512 *l, __m512 v)
{
    l->lo = _mm512_add_pd(l->lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    l->hi = _mm512_add_pd(l->hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

static FS_TARGET inline void fs_lspill_f32_avx512(const fs_lsum_f32_avx512 *l, double *s, double *c)
{
    _mm512_storeu_pd(s, l->lo);
    _mm512_storeu_pd(s + 8, l->hi);
    _mm512_storeu_pd(c, _mm512_setzero_pd());
    _mm512_storeu_pd(c + 8, _mm512_setzero_pd());
}

static FS_TARGET inline void fs_sacc_f32_avx512(double *s, __m512 v)
{
    _mm512_storeu_pd(s,
                     _mm512_add_pd(_mm512_loadu_pd(s), _mm512_cvtps_pd(_mm512_castps512_ps256(v))));
    _mm512_storeu_pd(s + 8, _mm512_add_pd(_mm512_loadu_pd(s + 8),
                                          _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
}

/* lanes flagged in a mask, as an all-ones vector (NaN when or-ed in) */
static FS_TARGET inline __m512 fs_nan_acc_f32_avx512(__m512 acc, __m512 a, __m512 b)
{
    const __mmask16 u = _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
    return _mm512_mask_mov_ps(acc, u, _mm512_castsi512_ps(_mm512_set1_epi32(-1)));
}

#define T                   float
#define V                   __m512
#define W                   16
#define FS_KMASK(k)         ((__mmask16)((1u << (k)) - 1u))
#define A                   __m512
#define AZERO               _mm512_setzero_ps()
#define AADD(a, v)          _mm512_add_ps((a), (v))
#define ACOMB(a, b)         _mm512_add_ps((a), (b))
#define AHSUM(a)            fs_hsum_ps_avx512(a)
#define SACC(s, v)          fs_sacc_f32_avx512((s), (v))
#define L                   fs_lsum_f32_avx512
#define LN                  16
#define LZERO               {_mm512_setzero_pd(), _mm512_setzero_pd()}
#define LADD(l, v)          fs_ladd_f32_avx512(&(l), (v))
#define LSPILL(l, s, c)     fs_lspill_f32_avx512(&(l), (s), (c))
#define VLOAD(p)            _mm512_loadu_ps(p)
#define VSTORE(p, v)        _mm512_storeu_ps((p), (v))
#define VSTREAM(p, v)       _mm512_stream_ps((p), (v))
#define VLOADN(p, k)        _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), FS_KMASK(k), (p))
#define VSTOREN(p, v, k)    _mm512_mask_storeu_ps((p), FS_KMASK(k), (v))
#define VSET(c)             _mm512_set1_ps(c)
#define VADD(a, b)          _mm512_add_ps((a), (b))
#define VSUB(a, b)          _mm512_sub_ps((a), (b))
#define VMUL(a, b)          _mm512_mul_ps((a), (b))
#define VFMA(a, b, c)       _mm512_fmadd_ps((a), (b), (c))
#define VMAX(a, b)          _mm512_max_ps((a), (b))
#define VMIN(a, b)          _mm512_min_ps((a), (b))
#define VHMAX(v)            _mm512_reduce_max_ps(v)
#define VHMIN(v)            _mm512_reduce_min_ps(v)
#define VEXP(t)             fs_exp_f32_avx512(t)
#define VEXPN(t)            fs_expn_f32_avx512(t)
#define VNAN_ACC(acc, a, b) fs_nan_acc_f32_avx512((acc), (a), (b))
#define VNAN_APPLY(v, acc)  _mm512_or_ps((v), (acc))
#define VKEEP_LT(v, a, b)   _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ), (v))
/* vptestmb: a mask bit per non-zero byte; the tail's bytes by a masked (non-faulting) load */
#define VB              __mmask16
#define VBLOAD(b)       fs_bytes_mask16(_mm_loadu_si128((const __m128i *)(b)))
#define VBLOADN(b, k)   fs_bytes_mask16(_mm_maskz_loadu_epi8(FS_KMASK(k), (b)))
#define VBSEL(mk, v, c) _mm512_mask_blend_ps((mk), (c), (v))
#define VANY_GT(a, b)   _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)

#else /* FS_DTYPE == 64 */

/*
 * Lane sums (L, see body/common.h): a block's 8 double lanes added into 8
 * Neumaier sums, each with its compensation, as fs_neumaier adds one.
 */
typedef struct {
    __m512d s, c;
} fs_lsum_f64_avx512;

static FS_TARGET inline void fs_ladd_f64_avx512(fs_lsum_f64_avx512 *l, __m512d v)
{
    const __m512d t = _mm512_add_pd(l->s, v);
    const __mmask8 big = _mm512_cmp_pd_mask(_mm512_abs_pd(l->s), _mm512_abs_pd(v), _CMP_GE_OQ);
    const __m512d hi = _mm512_mask_blend_pd(big, v, l->s); /* the larger: big ? s : v */
    const __m512d lo = _mm512_mask_blend_pd(big, l->s, v);
    l->c = _mm512_add_pd(l->c, _mm512_add_pd(_mm512_sub_pd(hi, t), lo));
    l->s = t;
}

static FS_TARGET inline void fs_lspill_f64_avx512(const fs_lsum_f64_avx512 *l, double *s, double *c)
{
    _mm512_storeu_pd(s, l->s);
    _mm512_storeu_pd(c, l->c);
}

static FS_TARGET inline __m512d fs_nan_acc_f64_avx512(__m512d acc, __m512d a, __m512d b)
{
    const __mmask8 u = _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q);
    return _mm512_mask_mov_pd(acc, u, _mm512_castsi512_pd(_mm512_set1_epi64(-1)));
}

#define T                   double
#define V                   __m512d
#define W                   8
#define FS_KMASK(k)         ((__mmask8)((1u << (k)) - 1u))
#define A                   __m512d
#define AZERO               _mm512_setzero_pd()
#define AADD(a, v)          _mm512_add_pd((a), (v))
#define ACOMB(a, b)         _mm512_add_pd((a), (b))
#define AHSUM(a)            _mm512_reduce_add_pd(a)
#define SACC(s, v)          _mm512_storeu_pd((s), _mm512_add_pd(_mm512_loadu_pd(s), (v)))
#define L                   fs_lsum_f64_avx512
#define LN                  8
#define LZERO               {_mm512_setzero_pd(), _mm512_setzero_pd()}
#define LADD(l, v)          fs_ladd_f64_avx512(&(l), (v))
#define LSPILL(l, s, c)     fs_lspill_f64_avx512(&(l), (s), (c))
#define VLOAD(p)            _mm512_loadu_pd(p)
#define VSTORE(p, v)        _mm512_storeu_pd((p), (v))
#define VSTREAM(p, v)       _mm512_stream_pd((p), (v))
#define VLOADN(p, k)        _mm512_mask_loadu_pd(_mm512_set1_pd(-INFINITY), FS_KMASK(k), (p))
#define VSTOREN(p, v, k)    _mm512_mask_storeu_pd((p), FS_KMASK(k), (v))
#define VSET(c)             _mm512_set1_pd(c)
#define VADD(a, b)          _mm512_add_pd((a), (b))
#define VSUB(a, b)          _mm512_sub_pd((a), (b))
#define VMUL(a, b)          _mm512_mul_pd((a), (b))
#define VFMA(a, b, c)       _mm512_fmadd_pd((a), (b), (c))
#define VMAX(a, b)          _mm512_max_pd((a), (b))
#define VMIN(a, b)          _mm512_min_pd((a), (b))
#define VHMAX(v)            _mm512_reduce_max_pd(v)
#define VHMIN(v)            _mm512_reduce_min_pd(v)
#define VEXP(t)             fs_exp_f64_avx512(t)
#define VEXPN(t)            fs_expn_f64_avx512(t)
#define VNAN_ACC(acc, a, b) fs_nan_acc_f64_avx512((acc), (a), (b))
#define VNAN_APPLY(v, acc)  _mm512_or_pd((v), (acc))
#define VKEEP_LT(v, a, b)   _mm512_maskz_mov_pd(_mm512_cmp_pd_mask((a), (b), _CMP_LT_OQ), (v))
#define VB                  __mmask8
#define VBLOAD(b)           ((__mmask8)fs_bytes_mask16(_mm_loadl_epi64((const __m128i *)(b))))
#define VBLOADN(b, k)       ((__mmask8)fs_bytes_mask16(_mm_maskz_loadu_epi8(FS_KMASK(k), (b))))
#define VBSEL(mk, v, c)     _mm512_mask_blend_pd((mk), (c), (v))
#define VANY_GT(a, b)       _mm512_cmp_pd_mask((a), (b), _CMP_GT_OQ)

#endif /* FS_DTYPE */

/*
 * The columns of 16 rows of n floats (VCOLUMNS), and back (VROWS): each
 * group of up to 16 columns is 16 masked row loads (stores) and a 16 x 16
 * transpose in registers (unpack in 32-bit then 64-bit pairs, then two
 * rounds of 128-bit lane shuffles: 64 shuffles).  A gather per column,
 * its alternative, waits for one load per lane: it took a third of the
 * few-class cross-entropy's time (AMD EPYC Zen 5).
 */
#if FS_DTYPE == 32
static FS_TARGET inline void fs_transpose16_avx512(__m512 *r)
{
    __m512 a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* b[4 g + c]: in 128-bit lane q, element 4 q + c of vectors 4 g .. 4 g + 3 */
    for (int g = 0; g < 16; g += 4) {
        const __m512d a0 = _mm512_castps_pd(a[g]), a1 = _mm512_castps_pd(a[g + 1]);
        const __m512d a2 = _mm512_castps_pd(a[g + 2]), a3 = _mm512_castps_pd(a[g + 3]);
        b[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        b[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        b[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        b[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    for (int c = 0; c < 4; c++) {
        const __m512 d = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88);
        const __m512 e = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xdd);
        const __m512 f = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88);
        const __m512 h = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(d, f, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(d, f, 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(e, h, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(e, h, 0xdd);
    }
}

static FS_TARGET inline void fs_columns_f32_avx512(const float *x, ptrdiff_t n, float *t)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 16) {
        const ptrdiff_t cnt = n - j0 < 16 ? n - j0 : 16;
        const __mmask16 k = (__mmask16)((1u << cnt) - 1u);
        __m512 r[16];
        for (int l = 0; l < 16; l++)
            r[l] = _mm512_maskz_loadu_ps(k, x + l * n + j0);
        fs_transpose16_avx512(r);
        for (int c = 0; c < 16; c++)
            _mm512_storeu_ps(t + (j0 + c) * 16, r[c]);
    }
}

static FS_TARGET inline void fs_rows_f32_avx512(const float *t, ptrdiff_t n, float *y)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 16) {
        const ptrdiff_t cnt = n - j0 < 16 ? n - j0 : 16;
        const __mmask16 k = (__mmask16)((1u << cnt) - 1u);
        __m512 r[16];
        for (int c = 0; c < 16; c++)
            r[c] = _mm512_loadu_ps(t + (j0 + c) * 16);
        fs_transpose16_avx512(r);
        for (int l = 0; l < 16; l++)
            _mm512_mask_storeu_ps(y + l * n + j0, k, r[l]);
    }
}
#else
/* the same for 8 rows of n doubles: 8 x 8 transposes (24 shuffles) */
static FS_TARGET inline void fs_transpose8_avx512(__m512d *r)
{
    __m512d a[8];
    /* a[i + c]: in 128-bit lane q, element 2 q + c of vectors i, i + 1 */
    for (int i = 0; i < 8; i += 2) {
        a[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int c = 0; c < 2; c++) {
        const __m512d d = _mm512_shuffle_f64x2(a[c], a[2 + c], 0x88);
        const __m512d e = _mm512_shuffle_f64x2(a[c], a[2 + c], 0xdd);
        const __m512d f = _mm512_shuffle_f64x2(a[4 + c], a[6 + c], 0x88);
        const __m512d h = _mm512_shuffle_f64x2(a[4 + c], a[6 + c], 0xdd);
        r[c] = _mm512_shuffle_f64x2(d, f, 0x88);
        r[4 + c] = _mm512_shuffle_f64x2(d, f, 0xdd);
        r[2 + c] = _mm512_shuffle_f64x2(e, h, 0x88);
        r[6 + c] = _mm512_shuffle_f64x2(e, h, 0xdd);
    }
}

static FS_TARGET inline void fs_columns_f64_avx512(const double *x, ptrdiff_t n, double *t)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 8) {
        const ptrdiff_t cnt = n - j0 < 8 ? n - j0 : 8;
        const __mmask8 k = (__mmask8)((1u << cnt) - 1u);
        __m512d r[8];
        for (int l = 0; l < 8; l++)
            r[l] = _mm512_maskz_loadu_pd(k, x + l * n + j0);
        fs_transpose8_avx512(r);
        for (int c = 0; c < 8; c++)
            _mm512_storeu_pd(t + (j0 + c) * 8, r[c]);
    }
}

static FS_TARGET inline void fs_rows_f64_avx512(const double *t, ptrdiff_t n, double *y)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 8) {
        const ptrdiff_t cnt = n - j0 < 8 ? n - j0 : 8;
        const __mmask8 k = (__mmask8)((1u << cnt) - 1u);
        __m512d r[8];
        for (int c = 0; c < 8; c++)
            r[c] = _mm512_loadu_pd(t + (j0 + c) * 8);
        fs_transpose8_avx512(r);
        for (int l = 0; l < 8; l++)
            _mm512_mask_storeu_pd(y + l * n + j0, k, r[l]);
    }
}
#endif

/* lane-wise division, and moving elements across lanes (the few-class kernels) */
#if FS_DTYPE == 32
#define VDIV(a, b)        _mm512_div_ps((a), (b))
#define VCOLUMNS(x, n, t) fs_columns_f32_avx512((x), (n), (t))
#define VROWS(t, n, y)    fs_rows_f32_avx512((t), (n), (y))
#define VPERM(v, idx)     _mm512_permutexvar_ps(_mm512_loadu_si512(idx), (v))
#define VSELECT_EQ(v, w, a, b)                                                                     \
    _mm512_mask_mov_ps((v), _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ), (w))
#else
#define VDIV(a, b)        _mm512_div_pd((a), (b))
#define VCOLUMNS(x, n, t) fs_columns_f64_avx512((x), (n), (t))
#define VROWS(t, n, y)    fs_rows_f64_avx512((t), (n), (y))
#define VPERM(v, idx)                                                                              \
    _mm512_permutexvar_pd(_mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(idx))), (v))
#define VSELECT_EQ(v, w, a, b)                                                                     \
    _mm512_mask_mov_pd((v), _mm512_cmp_pd_mask((a), (b), _CMP_EQ_OQ), (w))
#endif

/*
 * W int64 class indices as T lanes, -1 where one is outside [0, n): an
 * unsigned compare puts the negative ones outside too; the conversion
 * (vcvtqq2ps/pd) is exact for the indices that are kept.
 */
#if FS_DTYPE == 32
static FS_TARGET inline __m512 fs_index_f32_avx512(const int64_t *p, int64_t n)
{
    const __m512i lo = _mm512_loadu_si512(p), hi = _mm512_loadu_si512(p + 8);
    const __m512i vn = _mm512_set1_epi64(n);
    const __mmask16 in = (__mmask16)(_mm512_cmp_epu64_mask(lo, vn, _MM_CMPINT_LT) |
                                     (_mm512_cmp_epu64_mask(hi, vn, _MM_CMPINT_LT) << 8));
    const __m512 t = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtepi64_ps(lo)),
                                        _mm512_cvtepi64_ps(hi), 1);
    return _mm512_mask_blend_ps(in, _mm512_set1_ps(-1.0f), t);
}

/* 8 of the 16 float lanes as double: k = 0 the low half, k = 1 the high */
static FS_TARGET inline __m512d fs_part_pd_avx512(__m512 v, int k)
{
    return _mm512_cvtps_pd(k == 0 ? _mm512_castps512_ps256(v) : _mm512_extractf32x8_ps(v, 1));
}

static FS_TARGET inline __m512 fs_ps_of_pd_avx512(const __m512d *d)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(d[0])), _mm512_cvtpd_ps(d[1]),
                              1);
}

#define VINDEX(p, n)  fs_index_f32_avx512((p), (n))
#define DV_PART(v, k) fs_part_pd_avx512((v), (k))
#define V_OF_DV(d)    fs_ps_of_pd_avx512(d)
#else
static FS_TARGET inline __m512d fs_index_f64_avx512(const int64_t *p, int64_t n)
{
    const __m512i t = _mm512_loadu_si512(p);
    const __mmask8 in = _mm512_cmp_epu64_mask(t, _mm512_set1_epi64(n), _MM_CMPINT_LT);
    return _mm512_mask_blend_pd(in, _mm512_set1_pd(-1.0), _mm512_cvtepi64_pd(t));
}

#define VINDEX(p, n)  fs_index_f64_avx512((p), (n))
#define DV_PART(v, k) ((void)(k), (v))
#define V_OF_DV(d)    ((d)[0])
#endif

/* lanes in double (the few-class cross-entropy's per-row terms) */
#define DV                 __m512d
#define DW                 8
#define DVLOAD(p)          _mm512_loadu_pd(p)
#define DVSTORE(p, d)      _mm512_storeu_pd((p), (d))
#define DVSET(c)           _mm512_set1_pd(c)
#define DVADD(a, b)        _mm512_add_pd((a), (b))
#define DVSUB(a, b)        _mm512_sub_pd((a), (b))
#define DVMUL(a, b)        _mm512_mul_pd((a), (b))
#define DVDIV(a, b)        _mm512_div_pd((a), (b))
#define DVKEEP_LT(v, a, b) _mm512_maskz_mov_pd(_mm512_cmp_pd_mask((a), (b), _CMP_LT_OQ), (v))

/*
 * VEXPN's one clamp (at the bottom) is there for t = -inf, whose reduction
 * would give NaN.  Any t above -1e6 needs none: the magic-bias rounding of
 * n (k) stays exact, n LN2_HI is exact down to the result's underflow, and
 * below it vscalef takes an n far past the range to 0 from a reduced
 * argument that is still small.  So the fast exp is the bare core.
 */
#if FS_DTYPE == 32
#define VEXPN_FAST(t) fs_exp_core_f32_avx512(t)
#else
#define VEXPN_FAST(t) fs_exp_core_f64_avx512(t)
#endif
#define VEXPN_FAST_MIN (-1.0e6)

#else /* not x86 with GCC or clang */
#define FS_ISA_BUILT 0
#endif

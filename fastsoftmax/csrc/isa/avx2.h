/*
 * isa/avx2.h -- the vector vocabulary of the AVX2 + FMA path (8 float or 4
 * double lanes).  Included once per translation unit by kernels.h, after
 * FS_DTYPE (32 or 64) is set; the vocabulary is documented in
 * isa/scalar.h.  Compiled only on x86 with GCC or clang: elsewhere the
 * AVX2 units instantiate nothing (FS_ISA_BUILT 0).
 */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FS_ISA_BUILT  1
#define FS_ISA_SUFFIX avx2
#define FS_TARGET     __attribute__((target("avx2,fma")))

#include <immintrin.h>

/* Lane masks for the first k lanes: &fs_mask32[8 - k], &fs_mask64[4 - k]. */
static const int32_t fs_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t fs_mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

#include "avx2_exp.h"

/* the first k < 8 bytes at b, the others 0 (no read past b + k) */
static FS_TARGET inline __m128i fs_bytes_n_avx2(const uint8_t *b, ptrdiff_t k)
{
    uint64_t v = 0;
    memcpy(&v, b, (size_t)k);
    return _mm_cvtsi64_si128((long long)v);
}

/* elements from p to the next 32-byte boundary, where VSTREAM may start */
#define VHEAD(p) ((ptrdiff_t)((32 - ((uintptr_t)(p) & 31)) & 31) / (ptrdiff_t)sizeof(*(p)))
#define VFENCE() _mm_sfence()
#define VREGS    16

#if FS_DTYPE == 32

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

static FS_TARGET inline float fs_hmin_ps_avx2(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

/* the 8 float lanes of a block accumulator, added in double */
static FS_TARGET inline double fs_hsum_ps_avx2(__m256 v)
{
    return fs_hsum_pd_avx2(_mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                         _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

/* Lane sums (L, see body/common.h): a block's 8 float lanes added into 8 doubles. */
typedef struct {
    __m256d lo, hi;
} fs_lsum_f32_avx2;

static FS_TARGET inline void fs_ladd_f32_avx2(fs_lsum_f32_avx2 *l, __m256 v)
{
    l->lo = _mm256_add_pd(l->lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    l->hi = _mm256_add_pd(l->hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static FS_TARGET inline void fs_lspill_f32_avx2(const fs_lsum_f32_avx2 *l, double *s, double *c)
{
    _mm256_storeu_pd(s, l->lo);
    _mm256_storeu_pd(s + 4, l->hi);
    _mm256_storeu_pd(c, _mm256_setzero_pd());
    _mm256_storeu_pd(c + 4, _mm256_setzero_pd());
}

static FS_TARGET inline void fs_sacc_f32_avx2(double *s, __m256 v)
{
    _mm256_storeu_pd(s,
                     _mm256_add_pd(_mm256_loadu_pd(s), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(
        s + 4, _mm256_add_pd(_mm256_loadu_pd(s + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

static FS_TARGET inline __m256 fs_loadn_f32_avx2(const float *p, ptrdiff_t k)
{
    const __m256i mask = _mm256_loadu_si256((const __m256i *)(fs_mask32 + 8 - k));
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, mask),
                            _mm256_castsi256_ps(mask));
}

/* 8 mask bytes (zero-extended to 32 bits) as lanes: all ones where non-zero */
static FS_TARGET inline __m256 fs_lanes_f32_avx2(__m128i bytes)
{
    const __m256i wide = _mm256_cvtepu8_epi32(bytes);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(wide, _mm256_setzero_si256()));
}

#define T               float
#define V               __m256
#define W               8
#define A               __m256
#define AZERO           _mm256_setzero_ps()
#define AADD(a, v)      _mm256_add_ps((a), (v))
#define ACOMB(a, b)     _mm256_add_ps((a), (b))
#define AHSUM(a)        fs_hsum_ps_avx2(a)
#define SACC(s, v)      fs_sacc_f32_avx2((s), (v))
#define L               fs_lsum_f32_avx2
#define LN              8
#define LZERO           {_mm256_setzero_pd(), _mm256_setzero_pd()}
#define LADD(l, v)      fs_ladd_f32_avx2(&(l), (v))
#define LSPILL(l, s, c) fs_lspill_f32_avx2(&(l), (s), (c))
#define VLOAD(p)        _mm256_loadu_ps(p)
#define VSTORE(p, v)    _mm256_storeu_ps((p), (v))
#define VSTREAM(p, v)   _mm256_stream_ps((p), (v))
#define VLOADN(p, k)    fs_loadn_f32_avx2((p), (k))
#define VSTOREN(p, v, k)                                                                           \
    _mm256_maskstore_ps((p), _mm256_loadu_si256((const __m256i *)(fs_mask32 + 8 - (k))), (v))
#define VSET(c)             _mm256_set1_ps(c)
#define VADD(a, b)          _mm256_add_ps((a), (b))
#define VSUB(a, b)          _mm256_sub_ps((a), (b))
#define VMUL(a, b)          _mm256_mul_ps((a), (b))
#define VFMA(a, b, c)       _mm256_fmadd_ps((a), (b), (c))
#define VMAX(a, b)          _mm256_max_ps((a), (b))
#define VMIN(a, b)          _mm256_min_ps((a), (b))
#define VHMAX(v)            fs_hmax_ps_avx2(v)
#define VHMIN(v)            fs_hmin_ps_avx2(v)
#define VEXP(t)             fs_exp_f32_avx2(t)
#define VEXPN(t)            fs_expn_f32_avx2(t)
#define VEXPN_FAST(t)       fs_exp_core_f32_avx2(t)
#define VEXPN_FAST_MIN      (-87.3f)
#define VNAN_ACC(acc, a, b) _mm256_or_ps((acc), _mm256_cmp_ps((a), (b), _CMP_UNORD_Q))
#define VNAN_APPLY(v, acc)  _mm256_or_ps((v), (acc))
#define VKEEP_LT(v, a, b)   _mm256_and_ps((v), _mm256_cmp_ps((a), (b), _CMP_LT_OQ))
/* vpmovzxbd widens 8 mask bytes to lanes; lanes whose byte is non-zero are on */
#define VB              __m256
#define VBLOAD(b)       fs_lanes_f32_avx2(_mm_loadl_epi64((const __m128i *)(b)))
#define VBLOADN(b, k)   fs_lanes_f32_avx2(fs_bytes_n_avx2((b), (k)))
#define VBSEL(mk, v, c) _mm256_blendv_ps((c), (v), (mk))
#define VANY_GT(a, b)   _mm256_movemask_ps(_mm256_cmp_ps((a), (b), _CMP_GT_OQ))

#else /* FS_DTYPE == 64 */

/*
 * Lane sums (L, see body/common.h): a block's 4 double lanes added into 4
 * Neumaier sums, each with its compensation, as fs_neumaier adds one.
 */
typedef struct {
    __m256d s, c;
} fs_lsum_f64_avx2;

static FS_TARGET inline void fs_ladd_f64_avx2(fs_lsum_f64_avx2 *l, __m256d v)
{
    const __m256d sign = _mm256_set1_pd(-0.0);
    const __m256d t = _mm256_add_pd(l->s, v);
    const __m256d big =
        _mm256_cmp_pd(_mm256_andnot_pd(sign, l->s), _mm256_andnot_pd(sign, v), _CMP_GE_OQ);
    const __m256d hi = _mm256_blendv_pd(v, l->s, big); /* the larger: big ? s : v */
    const __m256d lo = _mm256_blendv_pd(l->s, v, big);
    l->c = _mm256_add_pd(l->c, _mm256_add_pd(_mm256_sub_pd(hi, t), lo));
    l->s = t;
}

static FS_TARGET inline void fs_lspill_f64_avx2(const fs_lsum_f64_avx2 *l, double *s, double *c)
{
    _mm256_storeu_pd(s, l->s);
    _mm256_storeu_pd(c, l->c);
}

static FS_TARGET inline double fs_hsum_pd_avx2(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static FS_TARGET inline double fs_hmax_pd_avx2(__m256d v)
{
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
}

static FS_TARGET inline double fs_hmin_pd_avx2(__m256d v)
{
    __m128d m = _mm_min_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_min_sd(m, _mm_unpackhi_pd(m, m)));
}

static FS_TARGET inline __m256d fs_loadn_f64_avx2(const double *p, ptrdiff_t k)
{
    const __m256i mask = _mm256_loadu_si256((const __m256i *)(fs_mask64 + 4 - k));
    return _mm256_blendv_pd(_mm256_set1_pd(-INFINITY), _mm256_maskload_pd(p, mask),
                            _mm256_castsi256_pd(mask));
}

/* 4 mask bytes as an int (no alignment assumed) */
static inline int fs_load_u32(const uint8_t *b)
{
    int v;
    memcpy(&v, b, sizeof v);
    return v;
}

/* 4 mask bytes (zero-extended to 64 bits) as lanes: all ones where non-zero */
static FS_TARGET inline __m256d fs_lanes_f64_avx2(__m128i bytes)
{
    const __m256i wide = _mm256_cvtepu8_epi64(bytes);
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(wide, _mm256_setzero_si256()));
}

/* lanes v[idx[0..4)]: lane i of the result is the float pair 2 idx[i], 2 idx[i] + 1 */
static FS_TARGET inline __m256d fs_perm_f64_avx2(__m256d v, const int32_t *idx)
{
    const __m256i i2 =
        _mm256_slli_epi64(_mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)idx)), 1);
    const __m256i pairs =
        _mm256_or_si256(i2, _mm256_slli_epi64(_mm256_add_epi64(i2, _mm256_set1_epi64x(1)), 32));
    return _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(v), pairs));
}

#define T               double
#define V               __m256d
#define W               4
#define A               __m256d
#define AZERO           _mm256_setzero_pd()
#define AADD(a, v)      _mm256_add_pd((a), (v))
#define ACOMB(a, b)     _mm256_add_pd((a), (b))
#define AHSUM(a)        fs_hsum_pd_avx2(a)
#define SACC(s, v)      _mm256_storeu_pd((s), _mm256_add_pd(_mm256_loadu_pd(s), (v)))
#define L               fs_lsum_f64_avx2
#define LN              4
#define LZERO           {_mm256_setzero_pd(), _mm256_setzero_pd()}
#define LADD(l, v)      fs_ladd_f64_avx2(&(l), (v))
#define LSPILL(l, s, c) fs_lspill_f64_avx2(&(l), (s), (c))
#define VLOAD(p)        _mm256_loadu_pd(p)
#define VSTORE(p, v)    _mm256_storeu_pd((p), (v))
#define VSTREAM(p, v)   _mm256_stream_pd((p), (v))
#define VLOADN(p, k)    fs_loadn_f64_avx2((p), (k))
#define VSTOREN(p, v, k)                                                                           \
    _mm256_maskstore_pd((p), _mm256_loadu_si256((const __m256i *)(fs_mask64 + 4 - (k))), (v))
#define VSET(c)             _mm256_set1_pd(c)
#define VADD(a, b)          _mm256_add_pd((a), (b))
#define VSUB(a, b)          _mm256_sub_pd((a), (b))
#define VMUL(a, b)          _mm256_mul_pd((a), (b))
#define VFMA(a, b, c)       _mm256_fmadd_pd((a), (b), (c))
#define VMAX(a, b)          _mm256_max_pd((a), (b))
#define VMIN(a, b)          _mm256_min_pd((a), (b))
#define VHMAX(v)            fs_hmax_pd_avx2(v)
#define VHMIN(v)            fs_hmin_pd_avx2(v)
#define VEXP(t)             fs_exp_f64_avx2(t)
#define VEXPN(t)            fs_expn_f64_avx2(t)
#define VEXPN_FAST(t)       fs_exp_core_f64_avx2(t)
#define VEXPN_FAST_MIN      (-708.3)
#define VNAN_ACC(acc, a, b) _mm256_or_pd((acc), _mm256_cmp_pd((a), (b), _CMP_UNORD_Q))
#define VNAN_APPLY(v, acc)  _mm256_or_pd((v), (acc))
#define VKEEP_LT(v, a, b)   _mm256_and_pd((v), _mm256_cmp_pd((a), (b), _CMP_LT_OQ))
#define VB                  __m256d
#define VBLOAD(b)           fs_lanes_f64_avx2(_mm_cvtsi32_si128(fs_load_u32((b))))
#define VBLOADN(b, k)       fs_lanes_f64_avx2(fs_bytes_n_avx2((b), (k)))
#define VBSEL(mk, v, c)     _mm256_blendv_pd((c), (v), (mk))
#define VANY_GT(a, b)       _mm256_movemask_pd(_mm256_cmp_pd((a), (b), _CMP_GT_OQ))

#endif /* FS_DTYPE */

/*
 * The columns of W rows of n elements (VCOLUMNS), and back (VROWS): each
 * group of up to W columns is W masked row loads (stores; vmaskmov does
 * not touch the lanes left out) and a W x W transpose in registers, in
 * place of a gather per column.
 */
#if FS_DTYPE == 32
static FS_TARGET inline void fs_transpose8_avx2(__m256 *r)
{
    __m256 a[8], b[8];
    for (int i = 0; i < 8; i += 2) {
        a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    /* b[4 g + c]: in 128-bit lane q, element 4 q + c of vectors 4 g .. 4 g + 3 */
    for (int g = 0; g < 8; g += 4) {
        b[g] = _mm256_shuffle_ps(a[g], a[g + 2], 0x44);
        b[g + 1] = _mm256_shuffle_ps(a[g], a[g + 2], 0xee);
        b[g + 2] = _mm256_shuffle_ps(a[g + 1], a[g + 3], 0x44);
        b[g + 3] = _mm256_shuffle_ps(a[g + 1], a[g + 3], 0xee);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x31);
    }
}

static FS_TARGET inline __m256i fs_lanes_below_avx2(ptrdiff_t cnt)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cnt),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static FS_TARGET inline void fs_columns_f32_avx2(const float *x, ptrdiff_t n, float *t)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 8) {
        const __m256i k = fs_lanes_below_avx2(n - j0);
        __m256 r[8];
        for (int l = 0; l < 8; l++)
            r[l] = _mm256_maskload_ps(x + l * n + j0, k);
        fs_transpose8_avx2(r);
        for (int c = 0; c < 8; c++)
            _mm256_storeu_ps(t + (j0 + c) * 8, r[c]);
    }
}

static FS_TARGET inline void fs_rows_f32_avx2(const float *t, ptrdiff_t n, float *y)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 8) {
        const __m256i k = fs_lanes_below_avx2(n - j0);
        __m256 r[8];
        for (int c = 0; c < 8; c++)
            r[c] = _mm256_loadu_ps(t + (j0 + c) * 8);
        fs_transpose8_avx2(r);
        for (int l = 0; l < 8; l++)
            _mm256_maskstore_ps(y + l * n + j0, k, r[l]);
    }
}
#else
static FS_TARGET inline void fs_transpose4_avx2(__m256d *r)
{
    const __m256d a0 = _mm256_unpacklo_pd(r[0], r[1]), a1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d a2 = _mm256_unpacklo_pd(r[2], r[3]), a3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(a0, a2, 0x20);
    r[1] = _mm256_permute2f128_pd(a1, a3, 0x20);
    r[2] = _mm256_permute2f128_pd(a0, a2, 0x31);
    r[3] = _mm256_permute2f128_pd(a1, a3, 0x31);
}

static FS_TARGET inline __m256i fs_lanes_below_avx2(ptrdiff_t cnt)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)cnt), _mm256_setr_epi64x(0, 1, 2, 3));
}

static FS_TARGET inline void fs_columns_f64_avx2(const double *x, ptrdiff_t n, double *t)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 4) {
        const __m256i k = fs_lanes_below_avx2(n - j0);
        __m256d r[4];
        for (int l = 0; l < 4; l++)
            r[l] = _mm256_maskload_pd(x + l * n + j0, k);
        fs_transpose4_avx2(r);
        for (int c = 0; c < 4; c++)
            _mm256_storeu_pd(t + (j0 + c) * 4, r[c]);
    }
}

static FS_TARGET inline void fs_rows_f64_avx2(const double *t, ptrdiff_t n, double *y)
{
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 4) {
        const __m256i k = fs_lanes_below_avx2(n - j0);
        __m256d r[4];
        for (int c = 0; c < 4; c++)
            r[c] = _mm256_loadu_pd(t + (j0 + c) * 4);
        fs_transpose4_avx2(r);
        for (int l = 0; l < 4; l++)
            _mm256_maskstore_pd(y + l * n + j0, k, r[l]);
    }
}
#endif

/* lane-wise division, and moving elements across lanes (the few-class kernels) */
#if FS_DTYPE == 32
#define VDIV(a, b)             _mm256_div_ps((a), (b))
#define VCOLUMNS(x, n, t)      fs_columns_f32_avx2((x), (n), (t))
#define VROWS(t, n, y)         fs_rows_f32_avx2((t), (n), (y))
#define VPERM(v, idx)          _mm256_permutevar8x32_ps((v), _mm256_loadu_si256((const __m256i *)(idx)))
#define VSELECT_EQ(v, w, a, b) _mm256_blendv_ps((v), (w), _mm256_cmp_ps((a), (b), _CMP_EQ_OQ))
#else
#define VDIV(a, b)             _mm256_div_pd((a), (b))
#define VCOLUMNS(x, n, t)      fs_columns_f64_avx2((x), (n), (t))
#define VROWS(t, n, y)         fs_rows_f64_avx2((t), (n), (y))
#define VPERM(v, idx)          fs_perm_f64_avx2((v), (idx))
#define VSELECT_EQ(v, w, a, b) _mm256_blendv_pd((v), (w), _mm256_cmp_pd((a), (b), _CMP_EQ_OQ))
#endif

/*
 * W int64 class indices as T lanes, -1 where one is outside [0, n): the
 * outside ones are set to -1 as int64 (two signed compares), then the low
 * 32 bits of each, exact now, are packed (vpermd) and converted.
 */
static FS_TARGET inline __m128i fs_index_i32_avx2(const int64_t *p, int64_t n)
{
    const __m256i t = _mm256_loadu_si256((const __m256i *)p), minus = _mm256_set1_epi64x(-1);
    const __m256i in = _mm256_and_si256(_mm256_cmpgt_epi64(t, minus),
                                        _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), t));
    const __m256i low = _mm256_permutevar8x32_epi32(_mm256_blendv_epi8(minus, t, in),
                                                    _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    return _mm256_castsi256_si128(low);
}

#if FS_DTYPE == 32
static FS_TARGET inline __m256 fs_index_f32_avx2(const int64_t *p, int64_t n)
{
    return _mm256_cvtepi32_ps(_mm256_inserti128_si256(
        _mm256_castsi128_si256(fs_index_i32_avx2(p, n)), fs_index_i32_avx2(p + 4, n), 1));
}

/* 4 of the 8 float lanes as double: k = 0 the low half, k = 1 the high */
static FS_TARGET inline __m256d fs_part_pd_avx2(__m256 v, int k)
{
    return _mm256_cvtps_pd(k == 0 ? _mm256_castps256_ps128(v) : _mm256_extractf128_ps(v, 1));
}

static FS_TARGET inline __m256 fs_ps_of_pd_avx2(const __m256d *d)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(d[0])),
                                _mm256_cvtpd_ps(d[1]), 1);
}

#define VINDEX(p, n)  fs_index_f32_avx2((p), (n))
#define DV_PART(v, k) fs_part_pd_avx2((v), (k))
#define V_OF_DV(d)    fs_ps_of_pd_avx2(d)
#else
#define VINDEX(p, n)  _mm256_cvtepi32_pd(fs_index_i32_avx2((p), (n)))
#define DV_PART(v, k) ((void)(k), (v))
#define V_OF_DV(d)    ((d)[0])
#endif

/* lanes in double (the few-class cross-entropy's per-row terms) */
#define DV                 __m256d
#define DW                 4
#define DVLOAD(p)          _mm256_loadu_pd(p)
#define DVSTORE(p, d)      _mm256_storeu_pd((p), (d))
#define DVSET(c)           _mm256_set1_pd(c)
#define DVADD(a, b)        _mm256_add_pd((a), (b))
#define DVSUB(a, b)        _mm256_sub_pd((a), (b))
#define DVMUL(a, b)        _mm256_mul_pd((a), (b))
#define DVDIV(a, b)        _mm256_div_pd((a), (b))
#define DVKEEP_LT(v, a, b) _mm256_and_pd((v), _mm256_cmp_pd((a), (b), _CMP_LT_OQ))

#else /* not x86 with GCC or clang */
#define FS_ISA_BUILT 0
#endif

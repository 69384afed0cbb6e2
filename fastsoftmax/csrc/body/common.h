/*
 * body/common.h -- what every kernel body shares: block sizes, the
 * compensated addition, the row-apply loop, and the elementwise exp kernel.
 *
 * Numerics shared by every variant:
 * - the row maximum is taken first (the max-shift trick), so every exp
 *   argument is <= 0 and no exp overflows;
 * - sums are accumulated in two vector accumulators over blocks of
 *   FS_BLOCK elements (each lane adds at most FS_BLOCK / (2 W) terms), the
 *   lanes are added in double, and the block sums are added with Neumaier's
 *   compensated summation: pairwise quality or better at any row length,
 *   for float32 and float64 alike;
 * - a NaN anywhere in a row makes its maximum NaN, so the special rows
 *   (NaN, +inf, all -inf) are decided once, from the maximum.
 */

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

/*
 * The compensated sum s + c.  Once s is inf or NaN (a term was), it is the
 * answer: the compensation then holds inf - inf = NaN.
 */
static inline double fs_neumaier_total(double s, double c)
{
    return s - s == 0.0 ? s + c : s;
}

/*
 * Lane sums: L holds a double sum per lane (float32: the block's lanes
 * widened; float64: each with its Neumaier compensation), LADD(l, a) adds
 * a block's accumulator a into it, lane by lane, with no horizontal step
 * (one per block of FS_BLOCK elements cost as much as the block's exps);
 * lanes_total adds the lanes up at the end, compensated.
 */
static FS_TARGET inline double lanes_total(L l)
{
    double s[LN], c[LN], total = 0.0, comp = 0.0, lane_comp = 0.0;
    LSPILL(l, s, c);
    for (int i = 0; i < LN; i++) {
        fs_neumaier(&total, &comp, s[i]);
        lane_comp += c[i];
    }
    return fs_neumaier_total(total, comp + lane_comp);
}

/*
 * flags without FS_FLAG_STREAM when streaming rows of n elements would
 * store partial 64-byte lines: a row that is not a whole number of lines
 * and shorter than 4 KiB (rows of 10 floats ran 1.8x slower streamed
 * line-partially than stored through the cache).  Longer rows stream;
 * only their two end lines are partial.
 */
static inline int fs_stream_pays(ptrdiff_t n, int flags)
{
    const size_t bytes = (size_t)n * sizeof(T);
    if (bytes % 64 != 0 && bytes < 4096)
        return flags & ~FS_FLAG_STREAM;
    return flags;
}

/*
 * Ask for the `bytes` bytes at p (whole lines) to come into L1.  A row that
 * fits in cache is read from memory by its first pass only; its later
 * passes work from cache while memory idles, so they ask for the next row
 * meanwhile, a few lines per vector step (one core alone cannot keep
 * enough misses in flight to reach the memory's bandwidth otherwise).
 */
#if defined(__GNUC__) || defined(__clang__)
#define FS_PREFETCH(p, bytes)                                                                      \
    do {                                                                                           \
        for (size_t o_ = 0; o_ < (size_t)(bytes); o_ += 64)                                        \
            __builtin_prefetch((const char *)(p) + o_, 0, 3);                                      \
    } while (0)
#else
#define FS_PREFETCH(p, bytes) ((void)(p))
#endif

/* Whether exp(x - m) may skip its range check for every x >= lo. */
#define FS_EXP_FAST(lo, m) ((lo) - (m) >= (T)VEXPN_FAST_MIN)

/* One vector's bytes of each of PA + i and PB + i asked for (NULL: none). */
#define FS_AHEAD_STEP(PA, PB, i)                                                                   \
    do {                                                                                           \
        if (PA)                                                                                    \
            FS_PREFETCH((PA) + (i), W * sizeof(T));                                                \
        if (PB)                                                                                    \
            FS_PREFETCH((PB) + (i), W * sizeof(T));                                                \
    } while (0)

/*
 * y[i] = EXPR for i in [0, n), EXPR a vector expression of `a` and `b`: the
 * macro binds them to the vectors loaded from SA + i and SB + i.
 * Non-temporal stores when `stream` (the whole output is larger than the
 * cache and is not read back soon).  The _AHEAD form also asks for PA and
 * PB (the next rows, or NULL) as it goes: see FS_PREFETCH.
 */
#define FS_ROW_APPLY_AHEAD(y, n, stream, SA, SB, EXPR, PA, PB)                                     \
    do {                                                                                           \
        ptrdiff_t i_ = 0;                                                                          \
        if (stream) {                                                                              \
            /* one masked store up to the first aligned element */                                 \
            i_ = VHEAD(y) < (n) ? VHEAD(y) : (n);                                                  \
            if (i_ > 0) {                                                                          \
                V a = VLOADN((SA), i_), b = VLOADN((SB), i_);                                      \
                (void)a;                                                                           \
                (void)b;                                                                           \
                VSTOREN((y), (EXPR), i_);                                                          \
            }                                                                                      \
            for (; i_ + W <= (n); i_ += W) {                                                       \
                V a = VLOAD((SA) + i_), b = VLOAD((SB) + i_);                                      \
                (void)a;                                                                           \
                (void)b;                                                                           \
                FS_AHEAD_STEP(PA, PB, i_);                                                         \
                VSTREAM((y) + i_, (EXPR));                                                         \
            }                                                                                      \
        } else {                                                                                   \
            for (; i_ + W <= (n); i_ += W) {                                                       \
                V a = VLOAD((SA) + i_), b = VLOAD((SB) + i_);                                      \
                (void)a;                                                                           \
                (void)b;                                                                           \
                FS_AHEAD_STEP(PA, PB, i_);                                                         \
                VSTORE((y) + i_, (EXPR));                                                          \
            }                                                                                      \
        }                                                                                          \
        if (i_ < (n)) {                                                                            \
            V a = VLOADN((SA) + i_, (n) - i_), b = VLOADN((SB) + i_, (n) - i_);                    \
            (void)a;                                                                               \
            (void)b;                                                                               \
            VSTOREN((y) + i_, (EXPR), (n) - i_);                                                   \
        }                                                                                          \
    } while (0)

/* No row to ask for: a named null, so that the dead branch does no arithmetic on a null constant.
 */
static const T *const fs_no_ahead = NULL;
#define FS_ROW_APPLY(y, n, stream, SA, SB, EXPR)                                                   \
    FS_ROW_APPLY_AHEAD(y, n, stream, SA, SB, EXPR, fs_no_ahead, fs_no_ahead)

static FS_TARGET void fill(T *y, ptrdiff_t n, T value)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = value;
}

/* y = exp(x) elementwise, with the exp of this path (the accuracy tests' hook). */
static FS_TARGET void exp_array(const T *x, T *y, ptrdiff_t n)
{
    FS_ROW_APPLY(y, n, 0, x, x, VEXP(a));
}

/*
 * y[r * y_stride + i] += x[r * x_stride + i] for r < n_rows, i < n.  A stride
 * of 0 repeats one row: a bias added to rows of logits (x_stride 0), or rows
 * of a gradient added up into one row of column sums (y_stride 0), row after
 * row as NumPy's sum over the first axis adds them.
 */
static FS_TARGET void add_rows(const T *x, ptrdiff_t x_stride, T *y, ptrdiff_t y_stride,
                               ptrdiff_t n_rows, ptrdiff_t n)
{
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        T *yr = y + r * y_stride;
        const T *xr = x + r * x_stride;
        FS_ROW_APPLY(yr, n, 0, xr, yr, VADD(a, b));
    }
}

/*
 * body/softmax.h -- softmax, log_softmax and logsumexp kernels: contiguous
 * rows (inner == 1) and column tiles (inner > 1) of the (outer, n, inner)
 * layout.
 */

/* ---------------------------------------------------------------- rows -- */

/*
 * Rows of at most FS_REG_VECS vectors are held in registers: one read of x,
 * one write of y, and no pass over a cached copy (half of the ISA's vector
 * registers: 16 zmm on AVX-512, 8 ymm on AVX2).  The loops run to the
 * constant FS_REG_VECS, fully unrolled, so v[] stays in registers.
 */
#define FS_REG_VECS (VREGS / 2)
#if defined(__GNUC__) || defined(__clang__)
#define FS_UNROLL _Pragma("GCC unroll 16")
#else
#define FS_UNROLL
#endif

static FS_TARGET inline __attribute__((always_inline)) void softmax_row_regs(const T *x, T *y,
                                                                             ptrdiff_t n, int flags)
{
    V v[FS_REG_VECS];
    const ptrdiff_t nv = (n + W - 1) / W, k = n - (nv - 1) * W; /* vectors, lanes of the last */
    V hi = VSET((T)-INFINITY), lo = VSET((T)INFINITY);
    FS_UNROLL
    for (ptrdiff_t j = 0; j < FS_REG_VECS; j++) {
        if (j < nv) {
            v[j] = j + 1 < nv || k == W ? VLOAD(x + j * W) : VLOADN(x + j * W, k);
            hi = VMAX(hi, v[j]);
            lo = VMIN(lo, v[j]);
        } else {
            v[j] = VSET((T)0); /* never used; keeps the compiler's flow analysis quiet */
        }
    }
    const T m = VHMAX(hi);
    if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
        fill(y, n, (T)NAN); /* NaN, +inf, or all -inf: decided by the maximum */
        return;
    }
    const V vm = VSET(m);
    const int fast = FS_EXP_FAST(VHMIN(lo), m);
    A acc = AZERO;
    FS_UNROLL
    for (ptrdiff_t j = 0; j < FS_REG_VECS; j++) {
        if (j < nv) {
            const V e = fast ? VEXPN_FAST(VSUB(v[j], vm)) : VEXPN(VSUB(v[j], vm));
            acc = AADD(acc, e);
            if (!(flags & FS_FLAG_LOG))
                v[j] = e;
        }
    }
    const double s = AHSUM(acc);
    /* log_softmax: (x - m) - log(s), the shift exact for the largest entries */
    const V f = VSET((T)((flags & FS_FLAG_LOG) ? log_sumexp(x, n, m, s) : 1.0 / s));
    /* whole aligned lines go out streamed; anything else is stored */
    const int stream = (flags & FS_FLAG_STREAM) && k == W && VHEAD(y) == 0;
    FS_UNROLL
    for (ptrdiff_t j = 0; j < FS_REG_VECS; j++) {
        if (j < nv) {
            const V out = flags & FS_FLAG_LOG ? VSUB(VSUB(v[j], vm), f) : VMUL(v[j], f);
            if (j + 1 < nv || k == W) {
                if (stream)
                    VSTREAM(y + j * W, out);
                else
                    VSTORE(y + j * W, out);
            } else {
                VSTOREN(y + j * W, out, k);
            }
        }
    }
}

/*
 * The output pass of a row (or of a thread's part of one) from its
 * statistics: y = exp(x - m) * f, or with FS_FLAG_LOG y = (x - m) - f (the
 * shift exact for the largest entries); f is 1 / sum or log(sum), lo the
 * row's minimum.  A row whose maximum m is not finite (NaN, +inf, all
 * -inf) comes out NaN.
 */
static FS_TARGET void softmax_apply(const T *x, T *y, ptrdiff_t n, T m, double f, T lo, int flags)
{
    const int stream = flags & FS_FLAG_STREAM;
    if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
        fill(y, n, (T)NAN);
        return;
    }
    const V vm = VSET(m), vf = VSET((T)f);
    if (flags & FS_FLAG_LOG)
        FS_ROW_APPLY(y, n, stream, x, x, VSUB(VSUB(a, vm), vf));
    else if (FS_EXP_FAST(lo, m)) /* no call left in the loop (see sumexp) */
        FS_ROW_APPLY(y, n, stream, x, x, VMUL(VEXPN_FAST(VSUB(a, vm)), vf));
    else
        FS_ROW_APPLY(y, n, stream, x, x, VMUL(VEXPN(VSUB(a, vm)), vf));
}

/* One row; `ahead` (NULL, or the next row) as in sumexp. */
static FS_TARGET void softmax_row(const T *x, T *y, T *work, ptrdiff_t n, int flags, const T *ahead)
{
    const int stream = flags & FS_FLAG_STREAM;
    T m;
    double s;
    if (!(flags & FS_FLAG_LOG) && (size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        /* the row stays in cache: store the exps once and rescale them */
        T lo;
        m = row_max(x, n, &lo);
        if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
            fill(y, n, (T)NAN);
            return;
        }
        T *e = work ? work : y;
        s = sumexp_store(x, e, n, m, FS_EXP_FAST(lo, m), ahead);
        const V inv = VSET((T)(1.0 / s));
        FS_ROW_APPLY(y, n, stream, e, e, VMUL(a, inv));
        return;
    }
    T lo;
    row_stats(x, n, &m, &s, &lo, ahead);
    const int finite = m > (T)-INFINITY && m < (T)INFINITY; /* else softmax_apply fills NaN */
    softmax_apply(x, y, n, m,
                  !finite                 ? 0.0
                  : (flags & FS_FLAG_LOG) ? log_sumexp(x, n, m, s)
                                          : 1.0 / s,
                  lo, flags);
}

static FS_TARGET void softmax_rows(const T *x, T *y, T *work, ptrdiff_t n_rows, ptrdiff_t n,
                                   int flags)
{
    if (n <= FS_REG_VECS * W) {
        for (ptrdiff_t r = 0; r < n_rows; r++)
            softmax_row_regs(x + r * n, y + r * n, n, flags);
    } else {
        for (ptrdiff_t r = 0; r < n_rows; r++)
            softmax_row(x + r * n, y + r * n, work, n, fs_stream_pays(n, flags),
                        r + 1 < n_rows ? x + (r + 1) * n : NULL);
    }
    if (flags & FS_FLAG_STREAM)
        VFENCE();
}

static FS_TARGET void logsumexp_rows(const T *x, T *out, ptrdiff_t n_rows, ptrdiff_t n)
{
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        T m;
        double s;
        T lo;
        row_stats(x + r * n, n, &m, &s, &lo, r + 1 < n_rows ? x + (r + 1) * n : NULL);
        /* NaN -> NaN, +inf -> +inf, all -inf (or n == 0) -> -inf */
        out[r] = (m > (T)-INFINITY && m < (T)INFINITY)
                     ? (T)((double)m + log_sumexp(x + r * n, n, m, s))
                     : m;
    }
}

/*
 * logsumexp with weights b (scipy.special.logsumexp's b=), the statistics
 * of each row that the Python layer finishes with SciPy's rules: out[3r] =
 * m, the largest x whose weight is not 0 (-inf if none), out[3r + 1] = k,
 * the sum of the weights of the entries equal to m, out[3r + 2] = s, the
 * sum of b exp(x - m) over the others.  Entries of weight 0 take no part.
 * A NaN or an infinity in x or b leaves m, k or s not finite (a NaN that
 * the maximum's lanes missed makes s NaN), and the caller then takes the
 * row by SciPy's rules in full.  Block sums in T, lane sums in double.
 */
static FS_TARGET void logsumexp_weighted_rows(const T *x, const T *b, double *out, ptrdiff_t n_rows,
                                              ptrdiff_t n)
{
    const V zero = VSET((T)0), ninf = VSET((T)-INFINITY);
    const ptrdiff_t nv = n / W * W; /* whole vectors; the rest one by one */
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const T *xr = x + r * n, *br = b + r * n;
        V mv = ninf;
        for (ptrdiff_t i = 0; i < nv; i += W)
            mv = VMAX(mv, VSELECT_EQ(VLOAD(xr + i), ninf, VLOAD(br + i), zero));
        T m = VHMAX(mv);
        for (ptrdiff_t i = nv; i < n; i++)
            m = br[i] != (T)0 && xr[i] > m ? xr[i] : m;
        const V vm = VSET(m);
        L lk = LZERO, ls = LZERO;
        for (ptrdiff_t blk = 0; blk < nv; blk += FS_BLOCK) {
            const ptrdiff_t end = blk + FS_BLOCK < nv ? blk + FS_BLOCK : nv;
            A ak = AZERO, as = AZERO;
            for (ptrdiff_t i = blk; i < end; i += W) {
                const V bv = VLOAD(br + i), xm = VSELECT_EQ(VLOAD(xr + i), ninf, bv, zero);
                ak = AADD(ak, VSELECT_EQ(zero, bv, xm, vm));
                as = AADD(as, VSELECT_EQ(VMUL(bv, VEXPN(VSUB(xm, vm))), zero, xm, vm));
            }
            LADD(lk, ak);
            LADD(ls, as);
        }
        double k = lanes_total(lk), sum = lanes_total(ls);
        for (ptrdiff_t i = nv; i < n; i++) {
            if (br[i] == (T)0)
                continue;
            if (xr[i] == m)
                k += (double)br[i];
            else
                sum += (double)(br[i] * (T)exp((double)xr[i] - (double)m));
        }
        out[3 * r] = m;
        out[3 * r + 1] = k;
        out[3 * r + 2] = sum;
    }
}

/*
 * Long rows shared between threads (_loops.pyx), in the parts of
 * long_row_stats: row_parts_stats and row_parts_below write parts
 * [p0, p1)'s statistics at stats + 3 * p and stats + 2 * p; row_parts_fold
 * folds n_parts of them in order, as long_row_stats and log_sumexp do for a
 * row on one thread; softmax_row_part writes a stretch of the row.
 */
static FS_TARGET void row_parts_stats(const T *x, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1,
                                      double *stats)
{
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t i = p * FS_PART;
        part_stats(x + i, n - i < FS_PART ? n - i : FS_PART, stats + 3 * p);
    }
}

static FS_TARGET void row_parts_below(const T *x, ptrdiff_t n, double m, ptrdiff_t p0, ptrdiff_t p1,
                                      double *stats)
{
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t i = p * FS_PART;
        below_max(x + i, n - i < FS_PART ? n - i : FS_PART, (T)m, stats + 2 * p, stats + 2 * p + 1);
    }
}

static FS_TARGET void row_parts_fold(const double *stats, ptrdiff_t n_parts, int below, double *out)
{
    if (below) {
        double acc[3];
        below_start(acc);
        for (ptrdiff_t p = 0; p < n_parts; p++)
            below_add(acc, stats + 2 * p);
        out[0] = fs_neumaier_total(acc[0], acc[1]);
        out[1] = acc[2];
    } else {
        parts_acc a;
        parts_start(&a);
        for (ptrdiff_t p = 0; p < n_parts; p++)
            parts_add(&a, stats + 3 * p);
        parts_finish(&a, out);
    }
}

static FS_TARGET void softmax_row_part(const T *x, T *y, ptrdiff_t n, double m, double f, double lo,
                                       int flags)
{
    softmax_apply(x, y, n, (T)m, f, (T)lo, flags);
    if (flags & FS_FLAG_STREAM)
        VFENCE();
}

/* ---------------------------------------------------------------- cols -- */

/*
 * A tile of `width` columns, column j being x[j], x[j + stride], ...,
 * x[j + (n-1)*stride].  Vectors run along the columns; each pass walks the
 * tile row by row so that memory is read in contiguous runs of `width`.
 * Scratch arrays live on the stack: width <= FS_MAX_TILE.
 */
#define FS_TILE_PAD (FS_MAX_TILE + 16)

#define FS_FOR_TILE_ROW(width, BODY_FULL, BODY_PART)                                               \
    do {                                                                                           \
        ptrdiff_t j = 0;                                                                           \
        for (; j + W <= (width); j += W) {                                                         \
            BODY_FULL                                                                              \
        }                                                                                          \
        if (j < (width)) {                                                                         \
            const ptrdiff_t k = (width) - j;                                                       \
            (void)k;                                                                               \
            BODY_PART                                                                              \
        }                                                                                          \
    } while (0)

/*
 * Rows of a tile lie `stride` apart, each its own short run: the hardware
 * prefetcher would start again at every row, so the row FS_COL_AHEAD ahead
 * is asked for while this one is worked on.
 */
#define FS_COL_AHEAD 4
#if defined(__GNUC__) || defined(__clang__)
static inline void cols_prefetch(const T *x, ptrdiff_t i, ptrdiff_t n, ptrdiff_t stride,
                                 ptrdiff_t width)
{
    if (i + FS_COL_AHEAD < n) {
        const T *p = x + (i + FS_COL_AHEAD) * stride;
        for (ptrdiff_t j = 0; j < width; j += 64 / (ptrdiff_t)sizeof(T))
            __builtin_prefetch(p + j, 0, 3);
    }
}
#else
#define cols_prefetch(x, i, n, stride, width) ((void)0)
#endif

/*
 * The column statistics in one pass over memory, one exp per element: each
 * column j keeps a shift ms[j] and the sum s[j] of exp(x - ms[j]) so far.
 * The shift moves up only when an element exceeds it by more than
 * FS_COL_SLACK (rare after the first row): the sum is then rescaled in
 * double.  So the shift is not the exact maximum, and no rescaling factor
 * enters the sum for every new maximum (the rows' online pass has one per
 * block).  Per lane, FS_COL_BLOCK rows are summed in T, then added into the
 * double s[] (compensated, c[], for float64).
 *
 * Starting from the first row, clamped to -T_MAX, a column of -inf entries
 * adds exp(-inf) = 0 and never needs a special case: s[j] is 0 exactly when
 * the column is all -inf, and NaN when it has a NaN or a +inf (the +inf
 * becomes the shift, then adds exp(inf - inf)).  With `track` (log_softmax,
 * logsumexp, which need them) the exact maxima go to m[] and NaN flags to
 * nanflag[].
 */
#define FS_COL_SLACK 16 /* exp(16) * FS_COL_BLOCK <= 1.4e8: block sums far from overflow */
#if FS_DTYPE == 32
#define FS_T_MAX FLT_MAX
/* float lanes add 4 terms, then go into double (16 gave log_softmax 2.4x the error) */
#define FS_COL_BLOCK 4
#else
#define FS_T_MAX     DBL_MAX
#define FS_COL_BLOCK FS_CBLOCK
#endif

/* Lanes [j, j + k) of row xi that exceed their shift by `slack`: fold and rescale. */
static FS_TARGET __attribute__((noinline)) void
cols_shift_up(const T *xi, ptrdiff_t j, ptrdiff_t k, T slack, T *ms, T *bs, double *s, double *c)
{
    for (ptrdiff_t l = j; l < j + k; l++) {
        const T v = xi[l];
        if (v > ms[l] + slack) {
            fs_neumaier(&s[l], &c[l], (double)bs[l]);
            bs[l] = 0;
            const double f = exp((double)ms[l] - (double)v); /* 0 for v = +inf */
            s[l] *= f;
            c[l] *= f;
            ms[l] = v;
        }
    }
}

/* bs[] += exp(v - ms[]) for the lanes of v (k of them at j), shifting up first where needed. */
#define FS_COL_STEP(v, k, track)                                                                   \
    do {                                                                                           \
        V vms = VLOAD(ms + j);                                                                     \
        if (VANY_GT(v, VADD(vms, slack))) {                                                        \
            cols_shift_up(xi, j, k, slack_, ms, bs, s, c);                                         \
            vms = VLOAD(ms + j);                                                                   \
        }                                                                                          \
        VSTORE(bs + j, VADD(VLOAD(bs + j), VEXP(VSUB(v, vms))));                                   \
        if (track) {                                                                               \
            VSTORE(m + j, VMAX(VLOAD(m + j), v));                                                  \
            VSTORE(nanflag + j, VNAN_ACC(VLOAD(nanflag + j), v, v));                               \
        }                                                                                          \
    } while (0)

static FS_TARGET inline __attribute__((always_inline)) void
cols_online_impl(const T *x, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, T *ms, double *s, T *m,
                 T *nanflag, int track)
{
    T bs[FS_TILE_PAD];
    double c[FS_TILE_PAD];
    /*
     * log_softmax and logsumexp shift by the exact maximum: its own term is
     * then exp(0) = 1 exactly, and log(s) keeps its accuracy (with the
     * slack, log_softmax's float32 error was 2.4x the rows').  A tile that
     * fits in cache gets its maxima first, in a pass of its own, and never
     * shifts again; a larger one shifts at every new maximum (rare after
     * the first rows).
     */
    const int cached = track && (size_t)(n * width) * sizeof(T) <= FS_ROW_CACHE_BYTES;
    const T slack_ = cached ? (T)INFINITY : track ? (T)0 : (T)FS_COL_SLACK;
    const V slack = VSET(slack_), floor_ = VSET(-FS_T_MAX);
    FS_FOR_TILE_ROW(
        width, { VSTORE(ms + j, VMAX(VLOAD(x + j), floor_)); },
        { VSTORE(ms + j, VMAX(VLOADN(x + j, k), floor_)); });
    for (ptrdiff_t i = 1; cached && i < n; i++) {
        const T *xi = x + i * stride;
        FS_FOR_TILE_ROW(
            width, { VSTORE(ms + j, VMAX(VLOAD(ms + j), VLOAD(xi + j))); },
            { VSTORE(ms + j, VMAX(VLOAD(ms + j), VLOADN(xi + j, k))); });
    }
    for (ptrdiff_t j = 0; j < width + W; j++) {
        if (j >= width)
            ms[j] = 0;
        bs[j] = 0;
        s[j] = c[j] = 0.0;
        if (track) {
            m[j] = (T)-INFINITY;
            nanflag[j] = 0;
        }
    }
    for (ptrdiff_t rb = 0; rb < n; rb += FS_COL_BLOCK) {
        const ptrdiff_t re = rb + FS_COL_BLOCK < n ? rb + FS_COL_BLOCK : n;
        for (ptrdiff_t i = rb; i < re; i++) {
            const T *xi = x + i * stride;
            cols_prefetch(x, i, n, stride, width);
            FS_FOR_TILE_ROW(
                width,
                {
                    const V v = VLOAD(xi + j);
                    FS_COL_STEP(v, W, track);
                },
                {
                    const V v = VLOADN(xi + j, k);
                    FS_COL_STEP(v, k, track);
                });
        }
#if FS_DTYPE == 32
        /* n / FS_COL_BLOCK float block sums added in double: no compensation needed */
        for (ptrdiff_t j = 0; j < width; j += W)
            SACC(s + j, VLOAD(bs + j));
#else
        for (ptrdiff_t j = 0; j < width; j++)
            fs_neumaier(&s[j], &c[j], bs[j]);
#endif
        for (ptrdiff_t j = 0; j < width; j++)
            bs[j] = 0;
    }
    for (ptrdiff_t j = 0; j < width; j++)
        s[j] = fs_neumaier_total(s[j], c[j]);
    if (track) {
        for (ptrdiff_t j = 0; j < width; j += W)
            VSTORE(m + j, VNAN_APPLY(VLOAD(m + j), VLOAD(nanflag + j)));
    }
}
#undef FS_COL_STEP

/* Shifts and sums only (softmax). */
static FS_TARGET void cols_online(const T *x, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, T *ms,
                                  double *s)
{
    cols_online_impl(x, n, stride, width, ms, s, NULL, NULL, 0);
}

/*
 * The exact statistics: m[j] the column maximum (NaN where the column has
 * a NaN) and s[j] = sum(exp(x - m[j])) where m[j] is finite.
 */
static FS_TARGET void cols_stats(const T *x, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, T *m,
                                 double *s)
{
    T ms[FS_TILE_PAD], nanflag[FS_TILE_PAD];
    cols_online_impl(x, n, stride, width, ms, s, m, nanflag, 1);
    for (ptrdiff_t j = 0; j < width; j++) {
        if (m[j] > (T)-INFINITY && m[j] < (T)INFINITY && ms[j] != m[j])
            s[j] *= exp((double)ms[j] - (double)m[j]);
    }
}

/*
 * ls[j] = log(s[j]) for the tile's columns with a finite maximum m[j]; for
 * a column whose maximum dominates (s[j] < 2) the other terms are summed
 * again apart from the maximum's 1s, as log_sumexp does for a row.
 */
static FS_TARGET void cols_log_sumexp(const T *x, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width,
                                      const T *m, const double *s, double *ls)
{
    int again = 0;
    for (ptrdiff_t j = 0; j < width; j++) {
        ls[j] = log(s[j]);
        again |= m[j] > (T)-INFINITY && m[j] < (T)INFINITY && s[j] < 2.0;
    }
    if (!again)
        return;
    T ms[FS_TILE_PAD];
    double below[FS_TILE_PAD], less[FS_TILE_PAD];
    const V one = VSET((T)1);
    for (ptrdiff_t j = 0; j < width + W; j++) {
        ms[j] = j < width && m[j] > (T)-INFINITY && m[j] < (T)INFINITY ? m[j] : 0;
        below[j] = less[j] = 0.0;
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        const T *xi = x + i * stride;
        FS_FOR_TILE_ROW(
            width,
            {
                const V v = VLOAD(xi + j);
                const V vm = VLOAD(ms + j);
                SACC(below + j, VKEEP_LT(VEXPN(VSUB(v, vm)), v, vm));
                SACC(less + j, VKEEP_LT(one, v, vm));
            },
            {
                const V v = VLOADN(xi + j, k);
                const V vm = VLOAD(ms + j);
                SACC(below + j, VKEEP_LT(VEXPN(VSUB(v, vm)), v, vm));
                SACC(less + j, VKEEP_LT(one, v, vm));
            });
    }
    for (ptrdiff_t j = 0; j < width; j++) {
        if (m[j] > (T)-INFINITY && m[j] < (T)INFINITY && s[j] < 2.0)
            ls[j] = log1p(below[j] + ((double)n - less[j] - 1.0));
    }
}

/*
 * The output pass of a tile: y = exp(x - m) * f, or with `log_` (x - m) - f.
 * With `stream` the rows go out with non-temporal stores, which do not read
 * the output's lines before writing them (for outputs larger than the
 * cache): every row of the tile starts `head` elements before a 64-byte
 * boundary (rows are whole lines apart), so one masked store, then whole
 * aligned vectors.  `log_` and `stream` are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
cols_apply(const T *x, T *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, const T *m, const T *f,
           int log_, int stream)
{
#define FS_COL_OUT(v)                                                                              \
    (log_ ? VSUB(VSUB((v), VLOAD(m + j)), VLOAD(f + j))                                            \
          : VMUL(VEXP(VSUB((v), VLOAD(m + j))), VLOAD(f + j)))
    const ptrdiff_t head = stream ? (VHEAD(y) < width ? VHEAD(y) : width) : 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const T *xi = x + i * stride;
        T *yi = y + i * stride;
        cols_prefetch(x, i, n, stride, width);
        ptrdiff_t j = 0;
        if (stream) {
            if (head > 0)
                VSTOREN(yi, FS_COL_OUT(VLOADN(xi, head)), head);
            for (j = head; j + W <= width; j += W)
                VSTREAM(yi + j, FS_COL_OUT(VLOAD(xi + j)));
        } else {
            for (; j + W <= width; j += W)
                VSTORE(yi + j, FS_COL_OUT(VLOAD(xi + j)));
        }
        if (j < width)
            VSTOREN(yi + j, FS_COL_OUT(VLOADN(xi + j, width - j)), width - j);
    }
#undef FS_COL_OUT
    if (stream)
        VFENCE();
}

static FS_TARGET void softmax_cols(const T *x, T *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width,
                                   int flags)
{
    T m[FS_TILE_PAD], f[FS_TILE_PAD];
    double s[FS_TILE_PAD];
    const int stream = (flags & FS_FLAG_STREAM) && ((size_t)stride * sizeof(T)) % 64 == 0;
    if (!(flags & FS_FLAG_LOG)) {
        /*
         * y = exp(x - ms) / s: a column whose s is 0 (all -inf) or NaN (a NaN
         * or +inf) comes out all NaN by itself, 0 * inf or NaN.
         */
        cols_online(x, n, stride, width, m, s);
        for (ptrdiff_t j = 0; j < width + W; j++)
            f[j] = j < width ? (T)(1.0 / s[j]) : (T)0;
        if (stream)
            cols_apply(x, y, n, stride, width, m, f, 0, 1);
        else
            cols_apply(x, y, n, stride, width, m, f, 0, 0);
        return;
    }
    /* log_softmax: (x - m) - log(s), the shift exact for the largest entries */
    double ls[FS_TILE_PAD];
    cols_stats(x, n, stride, width, m, s);
    cols_log_sumexp(x, n, stride, width, m, s, ls);
    for (ptrdiff_t j = 0; j < width + W; j++) {
        if (j < width && m[j] > (T)-INFINITY && m[j] < (T)INFINITY) {
            f[j] = (T)ls[j];
        } else {
            m[j] = (T)NAN; /* the column's outputs are all NaN */
            f[j] = (T)NAN;
        }
    }
    if (stream)
        cols_apply(x, y, n, stride, width, m, f, 1, 1);
    else
        cols_apply(x, y, n, stride, width, m, f, 1, 0);
}

static FS_TARGET void logsumexp_cols(const T *x, T *out, ptrdiff_t n, ptrdiff_t stride,
                                     ptrdiff_t width)
{
    T m[FS_TILE_PAD];
    double s[FS_TILE_PAD], ls[FS_TILE_PAD];
    cols_stats(x, n, stride, width, m, s);
    cols_log_sumexp(x, n, stride, width, m, s, ls);
    /* NaN -> NaN, +inf -> +inf, all -inf -> -inf */
    for (ptrdiff_t j = 0; j < width; j++)
        out[j] = (m[j] > (T)-INFINITY && m[j] < (T)INFINITY) ? (T)((double)m[j] + ls[j]) : m[j];
}

/*
 * _simd_body.h -- the kernel bodies, written once and instantiated by
 * _simd.c for every (instruction set, dtype) pair.  Not a public header.
 *
 * The including file defines, before each #include:
 *   T            element type (float / double)
 *   V, W         vector type and its number of lanes (V == T, W == 1 for scalar C)
 *   A            accumulator of V in double precision (the row sums)
 *   FS_NAME(f)   f with the variant suffix appended (f##_f32_avx2, ...)
 *   FS_TARGET    function attribute enabling the instruction set
 * and the vector operations:
 *   VLOAD(p) VSTORE(p, v) VSTREAM(p, v)    full-vector load/store/non-temporal store
 *   VLOADN(p, k)  VSTOREN(p, v, k)          first k < W lanes; other lanes load as -inf
 *   VSET(c) VADD VSUB VMUL VMAX
 *   VEXP(t)  VEXPN(t)                       exp of any t / of t <= 0 (or NaN) only
 *   VEXPN_FAST(t)  VEXPN_FAST_MIN           VEXPN without its range check, right for
 *                                           VEXPN_FAST_MIN <= t <= 0
 *   VMIN  VHMAX(v)  VHMIN(v)                smallest / largest lane (NaN handled separately)
 *   VNAN0  VNAN_ACC(acc, a, b)  VNAN_ANY(acc)  VNAN_APPLY(v, acc)
 *                                           track NaN lanes: acc |= isnan(a) | isnan(b);
 *                                           VNAN_APPLY turns the flagged lanes of v into NaN
 *   AZERO  AADD(a, v)  ACOMB(a, b)  AHSUM(a)
 *                                           block accumulators (float32 lanes on AVX2,
 *                                           double in scalar C); AHSUM adds the lanes in
 *                                           double and returns a double
 *   SACC(s, v)                              s[0..W) += v, s a double array
 *   VHEAD(p)                                elements from p to the first address aligned
 *                                           for VSTREAM (0 to W - 1)
 *   VFENCE()                                order non-temporal stores
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

/* ---------------------------------------------------------------- rows -- */

/*
 * Largest and smallest elements of x[0..n) (-inf and +inf if n == 0).  A
 * NaN may or may not survive VMAX; row_max below settles it.
 */
static FS_TARGET T FS_NAME(row_max_raw)(const T *x, ptrdiff_t n, T *lo)
{
    V m0 = VSET(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    V l0 = VSET(INFINITY), l1 = l0;
    ptrdiff_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        const V a = VLOAD(x + i), b = VLOAD(x + i + W);
        const V c = VLOAD(x + i + 2 * W), d = VLOAD(x + i + 3 * W);
        m0 = VMAX(m0, a); m1 = VMAX(m1, b); m2 = VMAX(m2, c); m3 = VMAX(m3, d);
        l0 = VMIN(l0, VMIN(a, b));
        l1 = VMIN(l1, VMIN(c, d));
    }
    for (; i + W <= n; i += W) {
        const V a = VLOAD(x + i);
        m0 = VMAX(m0, a);
        l0 = VMIN(l0, a);
    }
    T tail_lo = (T)INFINITY;
    if (i < n) {
        m0 = VMAX(m0, VLOADN(x + i, n - i));    /* other lanes -inf */
        for (; i < n; i++)
            tail_lo = x[i] < tail_lo ? x[i] : tail_lo;
    }
    const T vlo = VHMIN(VMIN(l0, l1));
    *lo = tail_lo < vlo ? tail_lo : vlo;
    return VHMAX(VMAX(VMAX(m0, m1), VMAX(m2, m3)));
}

/*
 * The row maximum, NaN if the row has a NaN; *lo gets the row minimum.  A
 * NaN missed by the fast pass cannot hide behind a finite maximum:
 * exp(NaN - m) makes the row's sum, and so every output, NaN.  It can only
 * hide behind +-inf, so a non-finite maximum (rare) triggers a scan.
 */
static FS_TARGET T FS_NAME(row_max)(const T *x, ptrdiff_t n, T *lo)
{
    const T m = FS_NAME(row_max_raw)(x, n, lo);
    if (__builtin_expect(!(m > (T)-INFINITY && m < (T)INFINITY), 0)) {
        for (ptrdiff_t i = 0; i < n; i++)
            if (x[i] != x[i])
                return (T)NAN;
    }
    return m;
}

/* Whether exp(x - m) may skip its range check for every x >= lo. */
#define FS_EXP_FAST(lo, m) ((lo) - (m) >= (T)VEXPN_FAST_MIN)

/*
 * One block of sumexp: e[i] = exp(x[i] - m) (stored when `store`) and the
 * lane sums, added into a0/a1.
 */
#define FS_SUMEXP_BLOCK(EXP)                                                 \
    do {                                                                     \
        for (; i + 4 * W <= end; i += 4 * W) {                               \
            const V e0 = EXP(VSUB(VLOAD(x + i), vm));                        \
            const V e1 = EXP(VSUB(VLOAD(x + i + W), vm));                    \
            const V e2 = EXP(VSUB(VLOAD(x + i + 2 * W), vm));                \
            const V e3 = EXP(VSUB(VLOAD(x + i + 3 * W), vm));                \
            if (store) {                                                     \
                VSTORE(e + i, e0); VSTORE(e + i + W, e1);                    \
                VSTORE(e + i + 2 * W, e2); VSTORE(e + i + 3 * W, e3);        \
            }                                                                \
            a0 = AADD(AADD(a0, e0), e1);                                     \
            a1 = AADD(AADD(a1, e2), e3);                                     \
        }                                                                    \
        for (; i + W <= end; i += W) {                                       \
            const V e0 = EXP(VSUB(VLOAD(x + i), vm));                        \
            if (store) VSTORE(e + i, e0);                                    \
            a0 = AADD(a0, e0);                                               \
        }                                                                    \
        if (i < end) {      /* the -inf fill lanes need the checked exp */ \
            const V e0 = VEXPN(VSUB(VLOADN(x + i, end - i), vm));            \
            if (store) VSTOREN(e + i, e0, end - i);                          \
            a0 = AADD(a0, e0);                                               \
        }                                                                    \
    } while (0)

/*
 * sum(exp(x - m)) over x[0..n), m finite; the exps are stored to e[0..n)
 * when `store`.  `fast` (the caller knows min(x) - m >= VEXPN_FAST_MIN)
 * uses the exp without its range check: with no possible call to the
 * full-range exp left in the loop, its constants stay in registers.
 * `store` and `fast` are compile-time constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) double
FS_NAME(sumexp_impl)(const T *x, T *e, ptrdiff_t n, T m, int store, int fast)
{
    const V vm = VSET(m);
    double s = 0.0, c = 0.0;
    for (ptrdiff_t b = 0; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO, a1 = AZERO;
        ptrdiff_t i = b;
        if (fast)
            FS_SUMEXP_BLOCK(VEXPN_FAST);
        else
            FS_SUMEXP_BLOCK(VEXPN);
        fs_neumaier(&s, &c, AHSUM(ACOMB(a0, a1)));
    }
    return s + c;
}
#undef FS_SUMEXP_BLOCK

static FS_TARGET double FS_NAME(sumexp)(const T *x, ptrdiff_t n, T m, int fast)
{
    return fast ? FS_NAME(sumexp_impl)(x, NULL, n, m, 0, 1) : FS_NAME(sumexp_impl)(x, NULL, n, m, 0, 0);
}

static FS_TARGET double FS_NAME(sumexp_store)(const T *x, T *e, ptrdiff_t n, T m, int fast)
{
    return fast ? FS_NAME(sumexp_impl)(x, e, n, m, 1, 1) : FS_NAME(sumexp_impl)(x, e, n, m, 1, 0);
}

/*
 * The maximum m and s = sum(exp(x - m)) of a row in one pass over memory,
 * for rows too long to stay in cache between two passes: each block of
 * FS_OBLOCK elements is read from memory once for its maximum and again
 * from L1 for its sum; the running sum is rescaled when the maximum grows.
 * m is NaN if the row has a NaN, +inf if it has +inf, -inf if all -inf.
 */
static FS_TARGET void FS_NAME(row_online)(const T *x, ptrdiff_t n, T *m_out, double *s_out,
                                          T *lo_out)
{
    T m = (T)-INFINITY, row_lo = (T)INFINITY;
    double s = 0.0, c = 0.0;
    for (ptrdiff_t b = 0; b < n; b += FS_OBLOCK) {
        const ptrdiff_t len = b + FS_OBLOCK < n ? FS_OBLOCK : n - b;
        T lo;
        const T bm = FS_NAME(row_max)(x + b, len, &lo);
        if (bm != bm || bm == (T)INFINITY) {
            /* rare: a NaN decides the row; after +inf a NaN may still follow */
            *m_out = bm != bm ? bm : FS_NAME(row_max)(x, n, &lo);
            *s_out = NAN;
            *lo_out = lo;
            return;
        }
        row_lo = lo < row_lo ? lo : row_lo;
        if (bm == (T)-INFINITY)
            continue;           /* the block adds exactly 0 */
        if (bm > m) {
            const double f = exp((double)m - (double)bm);
            s *= f;
            c *= f;
            m = bm;
        }
        fs_neumaier(&s, &c, FS_NAME(sumexp)(x + b, len, m, FS_EXP_FAST(lo, m)));
    }
    *m_out = m;
    *s_out = s + c;
    *lo_out = row_lo;
}

/* The max and the sum of exps of a row, by two passes or one as its size asks. */
static FS_TARGET void FS_NAME(row_stats)(const T *x, ptrdiff_t n, T *m, double *s, T *lo)
{
    if ((size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        *m = FS_NAME(row_max)(x, n, lo);
        *s = (*m > (T)-INFINITY && *m < (T)INFINITY) ? FS_NAME(sumexp)(x, n, *m, FS_EXP_FAST(*lo, *m)) : NAN;
    } else {
        FS_NAME(row_online)(x, n, m, s, lo);
    }
}

/*
 * y[i] = EXPR for i in [0, n), EXPR a vector expression of `a` and `b`, the
 * vectors loaded from SA + i and SB + i.  Non-temporal stores when `stream`
 * (the whole output is larger than the cache and is not read back soon).
 */
#define FS_ROW_APPLY(y, n, stream, SA, SB, EXPR)                             \
    do {                                                                     \
        ptrdiff_t i_ = 0;                                                    \
        if (stream) {                                                        \
            /* one masked store up to the first aligned element */           \
            i_ = VHEAD(y) < (n) ? VHEAD(y) : (n);                            \
            if (i_ > 0) {                                                    \
                V a = VLOADN((SA), i_), b = VLOADN((SB), i_);                \
                (void)a; (void)b;                                            \
                VSTOREN((y), (EXPR), i_);                                    \
            }                                                                \
            for (; i_ + W <= (n); i_ += W) {                                 \
                V a = VLOAD((SA) + i_), b = VLOAD((SB) + i_);                \
                (void)a; (void)b;                                            \
                VSTREAM((y) + i_, (EXPR));                                   \
            }                                                                \
        } else {                                                             \
            for (; i_ + W <= (n); i_ += W) {                                 \
                V a = VLOAD((SA) + i_), b = VLOAD((SB) + i_);                \
                (void)a; (void)b;                                            \
                VSTORE((y) + i_, (EXPR));                                    \
            }                                                                \
        }                                                                    \
        if (i_ < (n)) {                                                      \
            V a = VLOADN((SA) + i_, (n) - i_), b = VLOADN((SB) + i_, (n) - i_); \
            (void)a; (void)b;                                                \
            VSTOREN((y) + i_, (EXPR), (n) - i_);                             \
        }                                                                    \
    } while (0)

static FS_TARGET void FS_NAME(fill)(T *y, ptrdiff_t n, T value)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = value;
}

static FS_TARGET void FS_NAME(softmax_row)(const T *x, T *y, T *work, ptrdiff_t n, int flags)
{
    const int stream = flags & FS_FLAG_STREAM;
    T m;
    double s;
    if (!(flags & FS_FLAG_LOG) && (size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        /* the row stays in cache: store the exps once and rescale them */
        T lo;
        m = FS_NAME(row_max)(x, n, &lo);
        if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
            FS_NAME(fill)(y, n, (T)NAN);
            return;
        }
        T *e = work ? work : y;
        s = FS_NAME(sumexp_store)(x, e, n, m, FS_EXP_FAST(lo, m));
        const V inv = VSET((T)(1.0 / s));
        FS_ROW_APPLY(y, n, stream, e, e, VMUL(a, inv));
        return;
    }
    T lo;
    FS_NAME(row_stats)(x, n, &m, &s, &lo);
    if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
        FS_NAME(fill)(y, n, (T)NAN);
        return;
    }
    const V vm = VSET(m);
    if (flags & FS_FLAG_LOG) {
        /* (x - m) - log(s): the shift is exact for the largest entries */
        const V ls = VSET((T)log(s));
        FS_ROW_APPLY(y, n, stream, x, x, VSUB(VSUB(a, vm), ls));
    } else {
        const V inv = VSET((T)(1.0 / s));
        if (FS_EXP_FAST(lo, m))     /* no call left in the loop (see sumexp) */
            FS_ROW_APPLY(y, n, stream, x, x, VMUL(VEXPN_FAST(VSUB(a, vm)), inv));
        else
            FS_ROW_APPLY(y, n, stream, x, x, VMUL(VEXPN(VSUB(a, vm)), inv));
    }
}

static FS_TARGET void FS_NAME(softmax_rows)(const T *x, T *y, T *work, ptrdiff_t n_rows,
                                            ptrdiff_t n, int flags)
{
    for (ptrdiff_t r = 0; r < n_rows; r++)
        FS_NAME(softmax_row)(x + r * n, y + r * n, work, n, flags);
    if (flags & FS_FLAG_STREAM)
        VFENCE();
}

static FS_TARGET void FS_NAME(logsumexp_rows)(const T *x, T *out, ptrdiff_t n_rows, ptrdiff_t n)
{
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        T m;
        double s;
        T lo;
        FS_NAME(row_stats)(x + r * n, n, &m, &s, &lo);
        /* NaN -> NaN, +inf -> +inf, all -inf (or n == 0) -> -inf */
        out[r] = (m > (T)-INFINITY && m < (T)INFINITY) ? (T)((double)m + log(s)) : m;
    }
}

/* ---------------------------------------------------------------- cols -- */

/*
 * A tile of `width` columns, column j being x[j], x[j + stride], ...,
 * x[j + (n-1)*stride].  Vectors run along the columns; each pass walks the
 * tile row by row so that memory is read in contiguous runs of `width`.
 * Scratch arrays live on the stack: width <= FS_MAX_TILE.
 */
#define FS_TILE_PAD (FS_MAX_TILE + 16)

#define FS_FOR_TILE_ROW(width, BODY_FULL, BODY_PART)                         \
    do {                                                                     \
        ptrdiff_t j = 0;                                                     \
        for (; j + W <= (width); j += W) { BODY_FULL }                       \
        if (j < (width)) { const ptrdiff_t k = (width) - j; (void)k; BODY_PART } \
    } while (0)

/*
 * Column maxima m[] and sums s[] = sum(exp(x - m)) in one pass over memory:
 * blocks of FS_CBLOCK rows are read once for their maxima and again, from
 * L1, for their sums; the running sums are rescaled where the maximum grew.
 * m[j] is NaN where the column has a NaN.
 */
static FS_TARGET void FS_NAME(cols_online)(const T *x, ptrdiff_t n, ptrdiff_t stride,
                                           ptrdiff_t width, T *m, double *s)
{
    T bm[FS_TILE_PAD], nanflag[FS_TILE_PAD];
    double bs[FS_TILE_PAD], c[FS_TILE_PAD];
    for (ptrdiff_t j = 0; j < width + W; j++) {
        m[j] = (T)-INFINITY;
        s[j] = 0.0;
        c[j] = 0.0;
        nanflag[j] = 0;
    }
    for (ptrdiff_t rb = 0; rb < n; rb += FS_CBLOCK) {
        const ptrdiff_t re = rb + FS_CBLOCK < n ? rb + FS_CBLOCK : n;
        for (ptrdiff_t j = 0; j < width + W; j++) {
            bm[j] = (T)-INFINITY;
            bs[j] = 0.0;
        }
        for (ptrdiff_t i = rb; i < re; i++) {
            const T *xi = x + i * stride;
            FS_FOR_TILE_ROW(width, {
                V v = VLOAD(xi + j);
                VSTORE(bm + j, VMAX(VLOAD(bm + j), v));
                VSTORE(nanflag + j, VNAN_ACC(VLOAD(nanflag + j), v, v));
            }, {
                V v = VLOADN(xi + j, k);
                VSTORE(bm + j, VMAX(VLOAD(bm + j), v));
                VSTORE(nanflag + j, VNAN_ACC(VLOAD(nanflag + j), v, v));
            });
        }
        for (ptrdiff_t j = 0; j < width; j++) {
            if (bm[j] > m[j]) {
                const double f = exp((double)m[j] - (double)bm[j]);
                s[j] *= f;
                c[j] *= f;
                m[j] = bm[j];
            }
        }
        for (ptrdiff_t i = rb; i < re; i++) {
            const T *xi = x + i * stride;
            FS_FOR_TILE_ROW(width, {
                SACC(bs + j, VEXPN(VSUB(VLOAD(xi + j), VLOAD(m + j))));
            }, {
                SACC(bs + j, VEXPN(VSUB(VLOADN(xi + j, k), VLOAD(m + j))));
            });
        }
        for (ptrdiff_t j = 0; j < width; j++)
            fs_neumaier(&s[j], &c[j], bs[j]);
    }
    for (ptrdiff_t j = 0; j < width; j += W)
        VSTORE(m + j, VNAN_APPLY(VLOAD(m + j), VLOAD(nanflag + j)));
    for (ptrdiff_t j = 0; j < width; j++)
        s[j] += c[j];
}

static FS_TARGET void FS_NAME(softmax_cols)(const T *x, T *y, ptrdiff_t n, ptrdiff_t stride,
                                            ptrdiff_t width, int flags)
{
    T m[FS_TILE_PAD], f[FS_TILE_PAD];
    double s[FS_TILE_PAD];
    FS_NAME(cols_online)(x, n, stride, width, m, s);
    const int log_ = flags & FS_FLAG_LOG;
    for (ptrdiff_t j = 0; j < width + W; j++) {
        if (!(m[j] > (T)-INFINITY && m[j] < (T)INFINITY)) {
            m[j] = (T)NAN;      /* the column's outputs are all NaN */
            f[j] = (T)NAN;
        } else {
            f[j] = log_ ? (T)log(s[j]) : (T)(1.0 / s[j]);
        }
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        const T *xi = x + i * stride;
        T *yi = y + i * stride;
        if (log_) {
            FS_FOR_TILE_ROW(width, {
                VSTORE(yi + j, VSUB(VSUB(VLOAD(xi + j), VLOAD(m + j)), VLOAD(f + j)));
            }, {
                VSTOREN(yi + j, VSUB(VSUB(VLOADN(xi + j, k), VLOAD(m + j)), VLOAD(f + j)), k);
            });
        } else {
            FS_FOR_TILE_ROW(width, {
                VSTORE(yi + j, VMUL(VEXPN(VSUB(VLOAD(xi + j), VLOAD(m + j))), VLOAD(f + j)));
            }, {
                VSTOREN(yi + j, VMUL(VEXPN(VSUB(VLOADN(xi + j, k), VLOAD(m + j))), VLOAD(f + j)), k);
            });
        }
    }
}

static FS_TARGET void FS_NAME(logsumexp_cols)(const T *x, T *out, ptrdiff_t n, ptrdiff_t stride,
                                              ptrdiff_t width)
{
    T m[FS_TILE_PAD];
    double s[FS_TILE_PAD];
    FS_NAME(cols_online)(x, n, stride, width, m, s);
    for (ptrdiff_t j = 0; j < width; j++)
        out[j] = (m[j] > (T)-INFINITY && m[j] < (T)INFINITY) ? (T)((double)m[j] + log(s[j])) : m[j];
}

/* ------------------------------------------------------------ backward -- */

/*
 * softmax:     dx = y * (dy - <dy, y>)
 * log_softmax: dx = dy - exp(y) * sum(dy)
 * The reduction is blocked and compensated like the forward sums.
 */
static FS_TARGET void FS_NAME(backward_row)(const T *dy, const T *y, T *dx, ptrdiff_t n, int flags)
{
    const int log_ = flags & FS_FLAG_LOG;
    double s = 0.0, c = 0.0;
    /* log_softmax: the range of y decides whether exp(y) may skip its check;
       taken only when dy and y stay in cache for the second pass, so that
       long rows do not read y from memory twice */
    const int track = log_ && (size_t)n * 2 * sizeof(T) <= FS_ROW_CACHE_BYTES;
    V ylo = VSET(INFINITY), yhi = VSET(-INFINITY);
    T tail_lo = (T)INFINITY, tail_hi = (T)-INFINITY;
    for (ptrdiff_t b = 0; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO, a1 = AZERO;
        ptrdiff_t i = b;
        if (log_ && !track) {
            for (; i + 2 * W <= end; i += 2 * W) {
                a0 = AADD(a0, VLOAD(dy + i));
                a1 = AADD(a1, VLOAD(dy + i + W));
            }
            for (; i + W <= end; i += W)
                a0 = AADD(a0, VLOAD(dy + i));
        } else if (log_) {
            for (; i + 2 * W <= end; i += 2 * W) {
                const V y0 = VLOAD(y + i), y1 = VLOAD(y + i + W);
                a0 = AADD(a0, VLOAD(dy + i));
                a1 = AADD(a1, VLOAD(dy + i + W));
                ylo = VMIN(ylo, VMIN(y0, y1));
                yhi = VMAX(yhi, VMAX(y0, y1));
            }
            for (; i + W <= end; i += W) {
                const V y0 = VLOAD(y + i);
                a0 = AADD(a0, VLOAD(dy + i));
                ylo = VMIN(ylo, y0);
                yhi = VMAX(yhi, y0);
            }
            for (ptrdiff_t j = i; j < end; j++) {
                tail_lo = y[j] < tail_lo ? y[j] : tail_lo;
                tail_hi = y[j] > tail_hi ? y[j] : tail_hi;
            }
        } else {
            for (; i + 2 * W <= end; i += 2 * W) {
                a0 = AADD(a0, VMUL(VLOAD(dy + i), VLOAD(y + i)));
                a1 = AADD(a1, VMUL(VLOAD(dy + i + W), VLOAD(y + i + W)));
            }
            for (; i + W <= end; i += W)
                a0 = AADD(a0, VMUL(VLOAD(dy + i), VLOAD(y + i)));
        }
        double t = AHSUM(a0) + AHSUM(a1);
        for (; i < end; i++)
            t += log_ ? (double)dy[i] : (double)dy[i] * (double)y[i];
        fs_neumaier(&s, &c, t);
    }
    const V vs = VSET((T)(s + c == s + c ? s + c : s));
    const int stream = flags & FS_FLAG_STREAM;
    if (log_) {
        const T lo = VHMIN(ylo) < tail_lo ? VHMIN(ylo) : tail_lo;
        const T hi = VHMAX(yhi) > tail_hi ? VHMAX(yhi) : tail_hi;
        /* NaN in y fails both tests and takes the checked exp */
        if (track && lo >= (T)VEXPN_FAST_MIN && hi <= 0)
            FS_ROW_APPLY(dx, n, stream, dy, y, VSUB(a, VMUL(VEXPN_FAST(b), vs)));
        else
            FS_ROW_APPLY(dx, n, stream, dy, y, VSUB(a, VMUL(VEXP(b), vs)));
    } else {
        FS_ROW_APPLY(dx, n, stream, dy, y, VMUL(b, VSUB(a, vs)));
    }
}

static FS_TARGET void FS_NAME(backward_rows)(const T *dy, const T *y, T *dx, ptrdiff_t n_rows,
                                             ptrdiff_t n, int flags)
{
    for (ptrdiff_t r = 0; r < n_rows; r++)
        FS_NAME(backward_row)(dy + r * n, y + r * n, dx + r * n, n, flags);
    if (flags & FS_FLAG_STREAM)
        VFENCE();
}

static FS_TARGET void FS_NAME(backward_cols)(const T *dy, const T *y, T *dx, ptrdiff_t n,
                                             ptrdiff_t stride, ptrdiff_t width, int flags)
{
    const int log_ = flags & FS_FLAG_LOG;
    T sv[FS_TILE_PAD];
    double s[FS_TILE_PAD], c[FS_TILE_PAD], bs[FS_TILE_PAD];
    for (ptrdiff_t j = 0; j < width + W; j++)
        s[j] = c[j] = 0.0;
    for (ptrdiff_t rb = 0; rb < n; rb += FS_CBLOCK) {
        const ptrdiff_t re = rb + FS_CBLOCK < n ? rb + FS_CBLOCK : n;
        for (ptrdiff_t j = 0; j < width + W; j++)
            bs[j] = 0.0;
        for (ptrdiff_t i = rb; i < re; i++) {
            const T *dyi = dy + i * stride, *yi = y + i * stride;
            if (log_) {
                FS_FOR_TILE_ROW(width, {
                    SACC(bs + j, VLOAD(dyi + j));
                }, {
                    SACC(bs + j, VLOADN(dyi + j, k));
                });
            } else {
                FS_FOR_TILE_ROW(width, {
                    SACC(bs + j, VMUL(VLOAD(dyi + j), VLOAD(yi + j)));
                }, {
                    SACC(bs + j, VMUL(VLOADN(dyi + j, k), VLOADN(yi + j, k)));
                });
            }
        }
        for (ptrdiff_t j = 0; j < width; j++)
            fs_neumaier(&s[j], &c[j], bs[j]);
    }
    for (ptrdiff_t j = 0; j < width + W; j++)
        sv[j] = (T)(s[j] + c[j] == s[j] + c[j] ? s[j] + c[j] : s[j]);
    for (ptrdiff_t i = 0; i < n; i++) {
        const T *dyi = dy + i * stride, *yi = y + i * stride;
        T *dxi = dx + i * stride;
        if (log_) {
            FS_FOR_TILE_ROW(width, {
                VSTORE(dxi + j, VSUB(VLOAD(dyi + j), VMUL(VEXP(VLOAD(yi + j)), VLOAD(sv + j))));
            }, {
                VSTOREN(dxi + j, VSUB(VLOADN(dyi + j, k), VMUL(VEXP(VLOADN(yi + j, k)), VLOAD(sv + j))), k);
            });
        } else {
            FS_FOR_TILE_ROW(width, {
                VSTORE(dxi + j, VMUL(VLOAD(yi + j), VSUB(VLOAD(dyi + j), VLOAD(sv + j))));
            }, {
                VSTOREN(dxi + j, VMUL(VLOADN(yi + j, k), VSUB(VLOADN(dyi + j, k), VLOAD(sv + j))), k);
            });
        }
    }
}

/* ------------------------------------------------------------------ exp -- */

static FS_TARGET void FS_NAME(exp_array)(const T *x, T *y, ptrdiff_t n)
{
    FS_ROW_APPLY(y, n, 0, x, x, VEXP(a));
}

/* -------------------------------------------------------- cross-entropy -- */

/*
 * Per row, with p = softmax(x), m = max(x), s = sum(exp(x - m)) and a
 * per-class factor u (see FS_XENT_*), the loss and its gradient are
 *   L = b (m - x_t) + a log(s) + e sum_c u_c (m - x_c)
 *   dL/dx_j = a p_j - b [j == t] - e u_j
 * -log p_c = (m - x_c) + log(s) is a sum of non-negative terms, so no
 * cancellation.  The gradient pass re-reads the row (from cache when it
 * fits) and adds up the u_c (m - x_c) term in the same sweep.
 */

/* u for one vector of classes i..i+W (lanes past the row end are not used). */
#define FS_XENT_U(mode, w, q, i, LOAD, c1, c2)                                \
    ((mode) == FS_XENT_UNIFORM ? VSET((T)1)                                  \
     : (mode) == FS_XENT_WEIGHT ? LOAD((w) + (i))                            \
     : (mode) == FS_XENT_SOFT ? VADD(VMUL(LOAD((q) + (i)), c1), c2)          \
     : VMUL(LOAD((w) + (i)), VADD(VMUL(LOAD((q) + (i)), c1), c2)))

#define FS_LOADN_K(p) VLOADN((p), k)

/*
 * g[j] = cp exp(x_j - m) - cw u_j for the row; returns sum u_j (m - x_j)
 * (0 in FS_XENT_PLAIN).  The exps are read from e when it is not NULL (the
 * sum pass stored them, so each logit costs one exp) and recomputed from x
 * otherwise.  Blocked double sums as in sumexp.  `mode`, `stream` and
 * whether e is NULL are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) double
FS_NAME(xent_grad_impl)(const T *x, const T *e, const T *w, const T *q, T *g, ptrdiff_t n, T m,
                        T cp, T cw, T c1_, T c2_, int mode, int stream)
{
    const V vm = VSET(m), vcp = VSET(cp), vcw = VSET(cw), c1 = VSET(c1_), c2 = VSET(c2_);
    double s = 0.0, c = 0.0;
    T lane[W];
    ptrdiff_t i = 0;
    /* k lanes from i: the row's tail, or the head up to streaming alignment */
#define FS_XENT_PART(k)                                                      \
    do {                                                                     \
        const V xv = VLOADN(x + i, k);                                       \
        const V p = e ? VLOADN(e + i, k) : VEXP(VSUB(xv, vm));               \
        if (mode == FS_XENT_PLAIN) {                                         \
            VSTOREN(g + i, VMUL(p, vcp), k);                                 \
        } else {                                                             \
            const V u = FS_XENT_U(mode, w, q, i, FS_LOADN_K, c1, c2);        \
            VSTOREN(g + i, VSUB(VMUL(p, vcp), VMUL(u, vcw)), k);             \
            VSTORE(lane, VMUL(u, VSUB(vm, xv)));                             \
            for (ptrdiff_t l_ = 0; l_ < (k); l_++)                           \
                tail += (double)lane[l_];                                    \
        }                                                                    \
    } while (0)
    if (stream) {
        double tail = 0.0;
        const ptrdiff_t k = VHEAD(g) < n ? VHEAD(g) : n;
        if (k > 0) {
            FS_XENT_PART(k);
            i = k;
        }
        s = tail;
    }
    for (ptrdiff_t b = i; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO;
        double tail = 0.0;
        for (i = b; i + W <= end; i += W) {
            const V p = e ? VLOAD(e + i) : VEXP(VSUB(VLOAD(x + i), vm));
            if (mode == FS_XENT_PLAIN) {
                if (stream) VSTREAM(g + i, VMUL(p, vcp)); else VSTORE(g + i, VMUL(p, vcp));
            } else {
                const V u = FS_XENT_U(mode, w, q, i, VLOAD, c1, c2);
                const V gv = VSUB(VMUL(p, vcp), VMUL(u, vcw));
                if (stream) VSTREAM(g + i, gv); else VSTORE(g + i, gv);
                a0 = AADD(a0, VMUL(u, VSUB(vm, VLOAD(x + i))));
            }
        }
        if (i < end) {
            const ptrdiff_t k = end - i;
            FS_XENT_PART(k);
        }
        if (mode != FS_XENT_PLAIN)
            fs_neumaier(&s, &c, AHSUM(a0) + tail);
    }
#undef FS_XENT_PART
    return s + c;
}

/* sum_c u_c over the row: the total target mass of a soft-target row. */
static FS_TARGET inline __attribute__((always_inline)) double
FS_NAME(xent_mass_impl)(const T *w, const T *q, ptrdiff_t n, T c1_, T c2_, int mode)
{
    const V c1 = VSET(c1_), c2 = VSET(c2_);
    double s = 0.0, c = 0.0;
    T lane[W];
    for (ptrdiff_t b = 0; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO;
        double tail = 0.0;
        ptrdiff_t i = b;
        for (; i + W <= end; i += W)
            a0 = AADD(a0, FS_XENT_U(mode, w, q, i, VLOAD, c1, c2));
        if (i < end) {
            const ptrdiff_t k = end - i;
            VSTORE(lane, FS_XENT_U(mode, w, q, i, FS_LOADN_K, c1, c2));
            for (ptrdiff_t l = 0; l < k; l++)
                tail += (double)lane[l];
        }
        fs_neumaier(&s, &c, AHSUM(a0) + tail);
    }
    return s + c;
}

static FS_TARGET double FS_NAME(xent_grad)(const T *x, const T *e, const T *w, const T *q, T *g,
                                           ptrdiff_t n, T m, T cp, T cw, T c1, T c2, int mode,
                                           int stream)
{
#define FS_XENT_CALL(E, M, S) FS_NAME(xent_grad_impl)(x, E, w, q, g, n, m, cp, cw, c1, c2, M, S)
#define FS_XENT_CASE(M)                                                                 \
    case M:                                                                             \
        if (e)                                                                          \
            return stream ? FS_XENT_CALL(e, M, 1) : FS_XENT_CALL(e, M, 0);              \
        return stream ? FS_XENT_CALL(NULL, M, 1) : FS_XENT_CALL(NULL, M, 0);
    switch (mode) {
        FS_XENT_CASE(FS_XENT_PLAIN)
        FS_XENT_CASE(FS_XENT_UNIFORM)
        FS_XENT_CASE(FS_XENT_WEIGHT)
        FS_XENT_CASE(FS_XENT_SOFT)
        default:
        FS_XENT_CASE(FS_XENT_SOFT_WEIGHT)
    }
#undef FS_XENT_CASE
#undef FS_XENT_CALL
}

/*
 * The row's max m and sum of exps s; for a row that fits in cache the exps
 * are also stored to *e (work, or the gradient row itself when not
 * streaming), for the gradient pass to read instead of recomputing them.
 * *e is NULL for longer rows and rows with no finite max.
 */
static FS_TARGET void FS_NAME(xent_stats)(const T *x, T *g, T *work, ptrdiff_t n, int stream,
                                          T *m, double *s, const T **e)
{
    *e = NULL;
    T *store = stream ? work : g;
    if (store && (size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        T lo;
        *m = FS_NAME(row_max)(x, n, &lo);
        if (*m > (T)-INFINITY && *m < (T)INFINITY) {
            *s = FS_NAME(sumexp_store)(x, store, n, *m, FS_EXP_FAST(lo, *m));
            *e = store;
        }
        return;
    }
    T lo;
    FS_NAME(row_stats)(x, n, m, s, &lo);
}

/*
 * Class-index targets, rows of at most FS_XENT_SMALL classes.  Per-row
 * vector loops would spend their time on masked tails, so rows are taken
 * FS_XENT_CHUNK elements at a time: the shifted logits x - max of the whole
 * chunk go through the vector exp as one flat array in L1, the short
 * per-row sums and gradient factors are scalar, and the chunk's gradient
 * leaves in full (streaming) vectors.  Same arguments and results as
 * xent_rows.
 */
static FS_TARGET void FS_NAME(xent_small_rows)(const T *x, const int64_t *target, const T *weight,
                                               double w_sum, double eps, const double *row_scale,
                                               double scale, double *loss, T *g, ptrdiff_t n_rows,
                                               ptrdiff_t n, int flags)
{
    T e[FS_XENT_CHUNK + W], mrow[FS_XENT_CHUNK];
    const int stream = flags & FS_FLAG_STREAM;
    const ptrdiff_t rows = FS_XENT_CHUNK / n;
    const double ef = eps / (double)n;
    const int smooth = eps != 0.0;
    for (ptrdiff_t i = 0; i < FS_XENT_CHUNK + W; i++)
        e[i] = 0;
    for (ptrdiff_t r0 = 0; r0 < n_rows; r0 += rows) {
        const ptrdiff_t nr = r0 + rows < n_rows ? rows : n_rows - r0, len = nr * n;
        const T *xc = x + r0 * n;
        /* the row maxima, and e = x - max: every exp argument <= 0 */
        for (ptrdiff_t r = 0; r < nr; r++) {
            const T *xr = xc + r * n;
            T *er = e + r * n;
            const int64_t t = target[r0 + r];
            T m = (T)-INFINITY;
            if (t >= 0 && t < n) {      /* ignored rows are not read */
                int nan = 0;
                for (ptrdiff_t i = 0; i < n; i++) {
                    nan |= xr[i] != xr[i];
                    m = xr[i] > m ? xr[i] : m;
                }
                if (nan)
                    m = (T)NAN;
            }
            mrow[r] = m;
            if (m > (T)-INFINITY && m < (T)INFINITY) {
                for (ptrdiff_t i = 0; i < n; i++)
                    er[i] = xr[i] - m;
            } else {
                for (ptrdiff_t i = 0; i < n; i++)
                    er[i] = 0;
            }
        }
        for (ptrdiff_t i = 0; i < len; i += W)
            VSTORE(e + i, VEXP(VLOAD(e + i)));
        /* per row: the sum, the loss, and the gradient in place of the exps */
        for (ptrdiff_t r = 0; r < nr; r++) {
            const T *xr = xc + r * n;
            T *er = e + r * n;
            const int64_t t = target[r0 + r];
            const T m = mrow[r];
            if (t < 0 || t >= n) {
                loss[r0 + r] = 0.0;
                FS_NAME(fill)(er, n, (T)0);
                continue;
            }
            if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
                loss[r0 + r] = NAN;
                FS_NAME(fill)(er, n, (T)NAN);
                continue;
            }
            double s = 0.0;
            for (ptrdiff_t i = 0; i < n; i++)
                s += (double)er[i];
            const double sc = row_scale ? scale * row_scale[r0 + r] : scale;
            const double wt = weight ? (double)weight[t] : 1.0;
            const double b = (1.0 - eps) * wt, a = b + ef * w_sum;
            const T cp = (T)(sc * a / s), cw = (T)(sc * ef);
            const double pt = (double)er[t] / s;
            double acc = 0.0;
            if (!smooth) {
                for (ptrdiff_t i = 0; i < n; i++)
                    er[i] *= cp;
            } else {
                for (ptrdiff_t i = 0; i < n; i++) {
                    const T u = weight ? weight[i] : (T)1;
                    er[i] = er[i] * cp - cw * u;
                    acc += (double)(u * (m - xr[i]));
                }
            }
            er[t] = (T)(sc * (a * pt - b - (smooth ? ef * wt : 0.0)));
            loss[r0 + r] = b * ((double)m - (double)xr[t]) + a * log(s) + (smooth ? ef * acc : 0.0);
        }
        FS_ROW_APPLY(g + r0 * n, len, stream, e, e, a);
    }
    if (stream)
        VFENCE();
}

/*
 * Class-index targets.  target[r] outside [0, n) marks an ignored row: loss
 * 0, gradient 0, the row is not read.  `weight` (per class) may be NULL,
 * w_sum = sum(weight) (n without weights), eps the label smoothing.  The
 * gradient row is scaled by scale * (row_scale ? row_scale[r] : 1); loss[r]
 * is the row's own (class-weighted) loss.
 */
static FS_TARGET void FS_NAME(xent_rows)(const T *x, const int64_t *target, const T *weight,
                                         double w_sum, double eps, const double *row_scale,
                                         double scale, double *loss, T *g, T *work,
                                         ptrdiff_t n_rows, ptrdiff_t n, int flags)
{
    if (n <= FS_XENT_SMALL) {
        FS_NAME(xent_small_rows)(x, target, weight, w_sum, eps, row_scale, scale, loss, g,
                                 n_rows, n, flags);
        return;
    }
    const int stream = flags & FS_FLAG_STREAM;
    const double e = eps / (double)n;
    const int mode = eps == 0.0 ? FS_XENT_PLAIN : weight ? FS_XENT_WEIGHT : FS_XENT_UNIFORM;
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const T *xr = x + r * n;
        T *gr = g + r * n;
        const int64_t t = target[r];
        if (t < 0 || t >= n) {
            loss[r] = 0.0;
            FS_NAME(fill)(gr, n, (T)0);
            continue;
        }
        T m;
        double s;
        const T *ex;
        FS_NAME(xent_stats)(xr, gr, work, n, stream, &m, &s, &ex);
        if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
            loss[r] = NAN;
            FS_NAME(fill)(gr, n, (T)NAN);
            continue;
        }
        const double sc = row_scale ? scale * row_scale[r] : scale;
        const double wt = weight ? (double)weight[t] : 1.0;
        const double b = (1.0 - eps) * wt, a = b + e * w_sum;
        const double acc = FS_NAME(xent_grad)(xr, ex, weight, NULL, gr, n, m, (T)(sc * a / s),
                                              (T)(sc * e), 0, 0, mode, stream);
        /* the target's entry again in double: a p_t - b cancels when p_t ~ 1 */
        const double pt = exp((double)xr[t] - (double)m) / s;
        gr[t] = (T)(sc * (a * pt - b - (mode == FS_XENT_PLAIN ? 0.0 : e * wt)));
        loss[r] = b * ((double)m - (double)xr[t]) + a * log(s) + (mode == FS_XENT_PLAIN ? 0.0 : e * acc);
    }
    if (stream)
        VFENCE();
}

/*
 * Probability targets q (rows like x): u_c = weight_c ((1 - eps) q_c + eps / n),
 * a = sum_c u_c, b = 0, e = 1.  Scaling and loss[r] as xent_rows.
 */
static FS_TARGET void FS_NAME(xent_soft_rows)(const T *x, const T *q, const T *weight, double eps,
                                              const double *row_scale, double scale, double *loss,
                                              T *g, T *work, ptrdiff_t n_rows, ptrdiff_t n,
                                              int flags)
{
    const int stream = flags & FS_FLAG_STREAM;
    const T c1 = (T)(1.0 - eps), c2 = (T)(eps / (double)n);
    const int mode = weight ? FS_XENT_SOFT_WEIGHT : FS_XENT_SOFT;
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const T *xr = x + r * n, *qr = q + r * n;
        T *gr = g + r * n;
        T m;
        double s;
        const T *ex;
        FS_NAME(xent_stats)(xr, gr, work, n, stream, &m, &s, &ex);
        if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
            loss[r] = NAN;
            FS_NAME(fill)(gr, n, (T)NAN);
            continue;
        }
        const double sc = row_scale ? scale * row_scale[r] : scale;
        const double a = weight ? FS_NAME(xent_mass_impl)(weight, qr, n, c1, c2, FS_XENT_SOFT_WEIGHT)
                                : FS_NAME(xent_mass_impl)(weight, qr, n, c1, c2, FS_XENT_SOFT);
        const double acc = FS_NAME(xent_grad)(xr, ex, weight, qr, gr, n, m, (T)(sc * a / s),
                                              (T)sc, c1, c2, mode, stream);
        loss[r] = a * log(s) + acc;
    }
    if (stream)
        VFENCE();
}

#undef FS_XENT_U
#undef FS_LOADN_K

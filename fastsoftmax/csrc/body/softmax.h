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
    V f;
    if (flags & FS_FLAG_LOG)
        f = VSET((T)((double)m + log_sumexp(x, n, m, s))); /* y = x - (m + log s) */
    else
        f = VSET((T)(1.0 / s));
    /* whole aligned lines go out streamed; anything else is stored */
    const int stream = (flags & FS_FLAG_STREAM) && k == W && VHEAD(y) == 0;
    FS_UNROLL
    for (ptrdiff_t j = 0; j < FS_REG_VECS; j++) {
        if (j < nv) {
            const V out = flags & FS_FLAG_LOG ? VSUB(v[j], f) : VMUL(v[j], f);
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

static FS_TARGET void softmax_row(const T *x, T *y, T *work, ptrdiff_t n, int flags)
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
        s = sumexp_store(x, e, n, m, FS_EXP_FAST(lo, m));
        const V inv = VSET((T)(1.0 / s));
        FS_ROW_APPLY(y, n, stream, e, e, VMUL(a, inv));
        return;
    }
    T lo;
    row_stats(x, n, &m, &s, &lo);
    if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
        fill(y, n, (T)NAN);
        return;
    }
    const V vm = VSET(m);
    if (flags & FS_FLAG_LOG) {
        /* (x - m) - log(s): the shift is exact for the largest entries */
        const V ls = VSET((T)log_sumexp(x, n, m, s));
        FS_ROW_APPLY(y, n, stream, x, x, VSUB(VSUB(a, vm), ls));
    } else {
        const V inv = VSET((T)(1.0 / s));
        if (FS_EXP_FAST(lo, m)) /* no call left in the loop (see sumexp) */
            FS_ROW_APPLY(y, n, stream, x, x, VMUL(VEXPN_FAST(VSUB(a, vm)), inv));
        else
            FS_ROW_APPLY(y, n, stream, x, x, VMUL(VEXPN(VSUB(a, vm)), inv));
    }
}

static FS_TARGET void softmax_rows(const T *x, T *y, T *work, ptrdiff_t n_rows, ptrdiff_t n,
                                   int flags)
{
    if (n <= FS_REG_VECS * W) {
        for (ptrdiff_t r = 0; r < n_rows; r++)
            softmax_row_regs(x + r * n, y + r * n, n, flags);
    } else {
        for (ptrdiff_t r = 0; r < n_rows; r++)
            softmax_row(x + r * n, y + r * n, work, n, fs_stream_pays(n, flags));
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
        row_stats(x + r * n, n, &m, &s, &lo);
        /* NaN -> NaN, +inf -> +inf, all -inf (or n == 0) -> -inf */
        out[r] = (m > (T)-INFINITY && m < (T)INFINITY)
                     ? (T)((double)m + log_sumexp(x + r * n, n, m, s))
                     : m;
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
 * Column maxima m[] and sums s[] = sum(exp(x - m)) in one pass over memory:
 * blocks of FS_CBLOCK rows are read once for their maxima and again, from
 * L1, for their sums; the running sums are rescaled where the maximum grew.
 * m[j] is NaN where the column has a NaN.  The sums subtract ms[j], m[j]
 * where it is finite and 0 where it is still -inf: a leading block of -inf
 * entries (or masked ones) then adds exp(-inf) = 0, not exp(-inf + inf) =
 * NaN.
 */
static FS_TARGET void cols_online(const T *x, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, T *m,
                                  double *s)
{
    T bm[FS_TILE_PAD], nanflag[FS_TILE_PAD], ms[FS_TILE_PAD];
    double bs[FS_TILE_PAD], c[FS_TILE_PAD];
    for (ptrdiff_t j = 0; j < width + W; j++) {
        m[j] = (T)-INFINITY;
        ms[j] = 0;
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
            FS_FOR_TILE_ROW(
                width,
                {
                    V v = VLOAD(xi + j);
                    VSTORE(bm + j, VMAX(VLOAD(bm + j), v));
                    VSTORE(nanflag + j, VNAN_ACC(VLOAD(nanflag + j), v, v));
                },
                {
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
                ms[j] = m[j] < (T)INFINITY ? m[j] : 0;
            }
        }
        for (ptrdiff_t i = rb; i < re; i++) {
            const T *xi = x + i * stride;
            FS_FOR_TILE_ROW(
                width, { SACC(bs + j, VEXPN(VSUB(VLOAD(xi + j), VLOAD(ms + j)))); },
                { SACC(bs + j, VEXPN(VSUB(VLOADN(xi + j, k), VLOAD(ms + j)))); });
        }
        for (ptrdiff_t j = 0; j < width; j++)
            fs_neumaier(&s[j], &c[j], bs[j]);
    }
    for (ptrdiff_t j = 0; j < width; j += W)
        VSTORE(m + j, VNAN_APPLY(VLOAD(m + j), VLOAD(nanflag + j)));
    for (ptrdiff_t j = 0; j < width; j++)
        s[j] = fs_neumaier_total(s[j], c[j]);
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

static FS_TARGET void softmax_cols(const T *x, T *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width,
                                   int flags)
{
    T m[FS_TILE_PAD], f[FS_TILE_PAD];
    double s[FS_TILE_PAD], ls[FS_TILE_PAD];
    cols_online(x, n, stride, width, m, s);
    const int log_ = flags & FS_FLAG_LOG;
    for (ptrdiff_t j = 0; j < width + W; j++)
        ls[j] = 0.0;
    if (log_)
        cols_log_sumexp(x, n, stride, width, m, s, ls);
    for (ptrdiff_t j = 0; j < width + W; j++) {
        if (!(m[j] > (T)-INFINITY && m[j] < (T)INFINITY)) {
            m[j] = (T)NAN; /* the column's outputs are all NaN */
            f[j] = (T)NAN;
        } else {
            f[j] = log_ ? (T)ls[j] : (T)(1.0 / s[j]);
        }
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        const T *xi = x + i * stride;
        T *yi = y + i * stride;
        if (log_) {
            FS_FOR_TILE_ROW(
                width, { VSTORE(yi + j, VSUB(VSUB(VLOAD(xi + j), VLOAD(m + j)), VLOAD(f + j))); },
                { VSTOREN(yi + j, VSUB(VSUB(VLOADN(xi + j, k), VLOAD(m + j)), VLOAD(f + j)), k); });
        } else {
            FS_FOR_TILE_ROW(
                width,
                { VSTORE(yi + j, VMUL(VEXPN(VSUB(VLOAD(xi + j), VLOAD(m + j))), VLOAD(f + j))); },
                {
                    VSTOREN(yi + j,
                            VMUL(VEXPN(VSUB(VLOADN(xi + j, k), VLOAD(m + j))), VLOAD(f + j)), k);
                });
        }
    }
}

static FS_TARGET void logsumexp_cols(const T *x, T *out, ptrdiff_t n, ptrdiff_t stride,
                                     ptrdiff_t width)
{
    T m[FS_TILE_PAD];
    double s[FS_TILE_PAD], ls[FS_TILE_PAD];
    cols_online(x, n, stride, width, m, s);
    cols_log_sumexp(x, n, stride, width, m, s, ls);
    for (ptrdiff_t j = 0; j < width; j++)
        out[j] = (m[j] > (T)-INFINITY && m[j] < (T)INFINITY) ? (T)((double)m[j] + ls[j]) : m[j];
}

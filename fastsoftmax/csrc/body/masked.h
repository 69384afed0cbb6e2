/*
 * body/masked.h -- softmax, log_softmax and logsumexp of rows under a
 * where= mask that the kernels read beside x: one byte per element (a
 * NumPy bool), row r's bytes at mask + r * mask_stride (mask_stride 0: one
 * mask row for every row, a mask broadcast over the leading axes).
 *
 * A masked-out entry takes no part: its lanes are selected away as they
 * are loaded (VBSEL), so a NaN or an inf there never reaches a maximum, a
 * sum or an output, and its output is 0 (softmax) or -inf (log_softmax).
 * The passes over memory are those of the unmasked rows (body/softmax.h):
 * no masked copy of x before, no masked pass after.
 *
 * Rows with no usable maximum (an unmasked NaN or +inf, only -inf left, or
 * nothing left) are decided once, from the maximum, as the unmasked rows
 * are: NaN in the unmasked entries, 0 (-inf) in the masked-out ones, so a
 * row with every entry masked out is all 0 (all -inf), never NaN.
 */

/* The vector at x + i: masked-out lanes, and lanes from k on, hold fill. */
#define FS_MLOAD(x, b, i, fill)     VBSEL(VBLOAD((b) + (i)), VLOAD((x) + (i)), (fill))
#define FS_MLOADN(x, b, i, k, fill) VBSEL(VBLOADN((b) + (i), (k)), VLOADN((x) + (i), (k)), (fill))

/*
 * The largest and (in *lo) the smallest unmasked entries of x[0..n):
 * -inf and +inf when nothing is left.  NaN if an unmasked entry is NaN:
 * VMAX may drop a NaN, and it can only hide behind a non-finite maximum
 * (behind a finite one, exp(NaN - m) makes the sum NaN), so only then is
 * the row scanned.
 */
static FS_TARGET T masked_row_max(const T *x, const uint8_t *b, ptrdiff_t n, T *lo)
{
    const V ninf = VSET((T)-INFINITY), pinf = VSET((T)INFINITY);
    V m0 = ninf, m1 = ninf, l0 = pinf, l1 = pinf;
    ptrdiff_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        const VB k0 = VBLOAD(b + i), k1 = VBLOAD(b + i + W);
        const V a0 = VLOAD(x + i), a1 = VLOAD(x + i + W);
        m0 = VMAX(m0, VBSEL(k0, a0, ninf));
        m1 = VMAX(m1, VBSEL(k1, a1, ninf));
        l0 = VMIN(l0, VBSEL(k0, a0, pinf));
        l1 = VMIN(l1, VBSEL(k1, a1, pinf));
    }
    for (; i < n; i += W) {
        const ptrdiff_t k = n - i < W ? n - i : W;
        const VB mk = k == W ? VBLOAD(b + i) : VBLOADN(b + i, k);
        const V a = k == W ? VLOAD(x + i) : VLOADN(x + i, k);
        m0 = VMAX(m0, VBSEL(mk, a, ninf));
        l0 = VMIN(l0, VBSEL(mk, a, pinf));
    }
    const T m = VHMAX(VMAX(m0, m1));
    *lo = VHMIN(VMIN(l0, l1));
    if (__builtin_expect(!(m > (T)-INFINITY && m < (T)INFINITY), 0)) {
        for (ptrdiff_t j = 0; j < n; j++)
            if (b[j] && x[j] != x[j])
                return (T)NAN;
    }
    return m;
}

/*
 * sum(exp(x - m)) over the unmasked entries of x[0..n), m finite; the exps
 * (0 where masked out) are stored to e[0..n) when `store`.  Masked-out
 * lanes are loaded as m, so every exp argument stays in [lo - m, 0] and
 * the exp without range check (`fast`) is still right; their exps are then
 * selected away.  Blocked and compensated as sumexp_impl.
 */
static FS_TARGET inline __attribute__((always_inline)) double
masked_sumexp_impl(const T *x, const uint8_t *b, T *e, ptrdiff_t n, T m, int store, int fast)
{
    const V vm = VSET(m), zero = VSET((T)0);
    L lanes = LZERO;
    for (ptrdiff_t blk = 0; blk < n; blk += FS_BLOCK) {
        const ptrdiff_t end = blk + FS_BLOCK < n ? blk + FS_BLOCK : n;
        A a0 = AZERO, a1 = AZERO;
        ptrdiff_t i = blk;
        for (; i + 2 * W <= end; i += 2 * W) {
            const VB k0 = VBLOAD(b + i), k1 = VBLOAD(b + i + W);
            const V e0 = VBSEL(k0, exp_shifted(VBSEL(k0, VLOAD(x + i), vm), vm, fast), zero);
            const V e1 = VBSEL(k1, exp_shifted(VBSEL(k1, VLOAD(x + i + W), vm), vm, fast), zero);
            if (store) {
                VSTORE(e + i, e0);
                VSTORE(e + i + W, e1);
            }
            a0 = AADD(a0, e0);
            a1 = AADD(a1, e1);
        }
        if (i + W <= end) {
            const VB k0 = VBLOAD(b + i);
            const V e0 = VBSEL(k0, exp_shifted(VBSEL(k0, VLOAD(x + i), vm), vm, fast), zero);
            if (store)
                VSTORE(e + i, e0);
            a0 = AADD(a0, e0);
            i += W;
        }
        if (i < end) {
            const VB k0 = VBLOADN(b + i, end - i);
            const V v = VBSEL(k0, VLOADN(x + i, end - i), vm);
            const V e0 = VBSEL(k0, exp_shifted(v, vm, fast), zero);
            if (store)
                VSTOREN(e + i, e0, end - i);
            a0 = AADD(a0, e0);
        }
        LADD(lanes, ACOMB(a0, a1));
    }
    return lanes_total(lanes);
}

static FS_TARGET double masked_sumexp(const T *x, const uint8_t *b, ptrdiff_t n, T m, int fast)
{
    return fast ? masked_sumexp_impl(x, b, NULL, n, m, 0, 1)
                : masked_sumexp_impl(x, b, NULL, n, m, 0, 0);
}

static FS_TARGET double masked_sumexp_store(const T *x, const uint8_t *b, T *e, ptrdiff_t n, T m,
                                            int fast)
{
    return fast ? masked_sumexp_impl(x, b, e, n, m, 1, 1) : masked_sumexp_impl(x, b, e, n, m, 1, 0);
}

/*
 * The maximum, sum of exps and minimum of a row's unmasked entries: two
 * passes over a row that stays in cache, else blocks of FS_OBLOCK read
 * once from memory (their maximum, then their sum from L1, the running sum
 * rescaled when the maximum grows), as row_online.
 */
static FS_TARGET void masked_row_stats(const T *x, const uint8_t *b, ptrdiff_t n, T *m_out,
                                       double *s_out, T *lo_out)
{
    if ((size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        const T m = masked_row_max(x, b, n, lo_out);
        *m_out = m;
        *s_out = (m > (T)-INFINITY && m < (T)INFINITY)
                     ? masked_sumexp(x, b, n, m, FS_EXP_FAST(*lo_out, m))
                     : NAN;
        return;
    }
    T m = (T)-INFINITY, row_lo = (T)INFINITY;
    double s = 0.0, c = 0.0;
    for (ptrdiff_t blk = 0; blk < n; blk += FS_OBLOCK) {
        const ptrdiff_t len = blk + FS_OBLOCK < n ? FS_OBLOCK : n - blk;
        T lo;
        const T bm = masked_row_max(x + blk, b + blk, len, &lo);
        if (bm != bm || bm == (T)INFINITY) {
            /* rare: a NaN decides the row; after +inf a NaN may still follow */
            *m_out = bm != bm ? bm : masked_row_max(x, b, n, &lo);
            *s_out = NAN;
            *lo_out = lo;
            return;
        }
        row_lo = lo < row_lo ? lo : row_lo;
        if (bm == (T)-INFINITY)
            continue; /* the block adds exactly 0 */
        if (bm > m) {
            const double f = exp((double)m - (double)bm);
            s *= f;
            c *= f;
            m = bm;
        }
        fs_neumaier(&s, &c, masked_sumexp(x + blk, b + blk, len, m, FS_EXP_FAST(lo, m)));
    }
    *m_out = m;
    *s_out = fs_neumaier_total(s, c);
    *lo_out = row_lo;
}

/*
 * log(s), s the sum of exps of the unmasked entries, as log_sumexp: when
 * the maximum's own term dominates (s < 2) the terms below m are summed
 * again apart from the maximum's 1s.  Masked-out lanes load as -inf: below
 * m, adding 0.
 */
static FS_TARGET double masked_log_sumexp(const T *x, const uint8_t *b, ptrdiff_t n, T m, double s)
{
    if (!(s < 2.0))
        return log(s);
    const V vm = VSET(m), one = VSET((T)1), ninf = VSET((T)-INFINITY);
    double below = 0.0, comp = 0.0, lanes = 0.0, less = 0.0;
    for (ptrdiff_t blk = 0; blk < n; blk += FS_BLOCK) {
        const ptrdiff_t end = blk + FS_BLOCK < n ? blk + FS_BLOCK : n;
        A sum = AZERO, cnt = AZERO;
        for (ptrdiff_t i = blk; i < end; i += W) {
            const V v = i + W <= end ? FS_MLOAD(x, b, i, ninf) : FS_MLOADN(x, b, i, end - i, ninf);
            sum = AADD(sum, VKEEP_LT(VEXPN(VSUB(v, vm)), v, vm));
            cnt = AADD(cnt, VKEEP_LT(one, v, vm));
            lanes += W;
        }
        fs_neumaier(&below, &comp, AHSUM(sum));
        less += AHSUM(cnt);
    }
    return log1p(fs_neumaier_total(below, comp) + (lanes - less - 1.0));
}

/*
 * y[i] = EXPR for i in [0, n), EXPR a vector expression of `a` (the raw
 * vector at x + i) and `mk` (its mask lanes); non-temporal stores when
 * `stream`, as FS_ROW_APPLY.
 */
#define FS_MASKED_APPLY(y, n, stream, x, b, EXPR)                                                  \
    do {                                                                                           \
        ptrdiff_t i_ = 0;                                                                          \
        if (stream) {                                                                              \
            i_ = VHEAD(y) < (n) ? VHEAD(y) : (n);                                                  \
            if (i_ > 0) {                                                                          \
                const VB mk = VBLOADN((b), i_);                                                    \
                const V a = VLOADN((x), i_);                                                       \
                VSTOREN((y), (EXPR), i_);                                                          \
            }                                                                                      \
            for (; i_ + W <= (n); i_ += W) {                                                       \
                const VB mk = VBLOAD((b) + i_);                                                    \
                const V a = VLOAD((x) + i_);                                                       \
                VSTREAM((y) + i_, (EXPR));                                                         \
            }                                                                                      \
        } else {                                                                                   \
            for (; i_ + W <= (n); i_ += W) {                                                       \
                const VB mk = VBLOAD((b) + i_);                                                    \
                const V a = VLOAD((x) + i_);                                                       \
                VSTORE((y) + i_, (EXPR));                                                          \
            }                                                                                      \
        }                                                                                          \
        if (i_ < (n)) {                                                                            \
            const VB mk = VBLOADN((b) + i_, (n) - i_);                                             \
            const V a = VLOADN((x) + i_, (n) - i_);                                                \
            VSTOREN((y) + i_, (EXPR), (n) - i_);                                                   \
        }                                                                                          \
    } while (0)

/*
 * A row without a usable maximum, or whose sum is NaN (a NaN that VMAX
 * dropped): NaN where unmasked, fill where masked out.
 */
static FS_TARGET void masked_special_row(const uint8_t *b, T *y, ptrdiff_t n, T fill)
{
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = b[i] ? (T)NAN : fill;
}

static FS_TARGET void softmax_masked_row(const T *x, const uint8_t *b, T *y, T *work, ptrdiff_t n,
                                         int flags)
{
    const int stream = flags & FS_FLAG_STREAM, log_ = flags & FS_FLAG_LOG;
    const V zero = VSET((T)0), ninf = VSET((T)-INFINITY);
    T m, lo;
    double s;
    if (!log_ && (size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        /* the row stays in cache: store the exps once and rescale them */
        m = masked_row_max(x, b, n, &lo);
        if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
            masked_special_row(b, y, n, (T)0);
            return;
        }
        T *e = work ? work : y;
        s = masked_sumexp_store(x, b, e, n, m, FS_EXP_FAST(lo, m));
        if (s != s) { /* a NaN that VMAX dropped */
            masked_special_row(b, y, n, (T)0);
            return;
        }
        const V inv = VSET((T)(1.0 / s));
        FS_ROW_APPLY(y, n, stream, e, e, VMUL(a, inv));
        return;
    }
    masked_row_stats(x, b, n, &m, &s, &lo);
    if (!(m > (T)-INFINITY && m < (T)INFINITY) || s != s) {
        masked_special_row(b, y, n, log_ ? (T)-INFINITY : (T)0);
        return;
    }
    const V vm = VSET(m);
    if (log_) {
        /* (x - m) - log(s): the shift is exact for the largest entries */
        const V ls = VSET((T)masked_log_sumexp(x, b, n, m, s));
        FS_MASKED_APPLY(y, n, stream, x, b, VBSEL(mk, VSUB(VSUB(a, vm), ls), ninf));
    } else {
        const V inv = VSET((T)(1.0 / s));
        if (FS_EXP_FAST(lo, m))
            FS_MASKED_APPLY(y, n, stream, x, b,
                            VBSEL(mk, VMUL(VEXPN_FAST(VSUB(VBSEL(mk, a, vm), vm)), inv), zero));
        else
            FS_MASKED_APPLY(y, n, stream, x, b,
                            VBSEL(mk, VMUL(VEXPN(VSUB(VBSEL(mk, a, vm), vm)), inv), zero));
    }
}

static FS_TARGET void softmax_masked_rows(const T *x, const uint8_t *mask, ptrdiff_t mask_stride,
                                          T *y, T *work, ptrdiff_t n_rows, ptrdiff_t n, int flags)
{
    flags = fs_stream_pays(n, flags);
    for (ptrdiff_t r = 0; r < n_rows; r++)
        softmax_masked_row(x + r * n, mask + r * mask_stride, y + r * n, work, n, flags);
    if (flags & FS_FLAG_STREAM)
        VFENCE();
}

static FS_TARGET void logsumexp_masked_rows(const T *x, const uint8_t *mask, ptrdiff_t mask_stride,
                                            T *out, ptrdiff_t n_rows, ptrdiff_t n)
{
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const T *xr = x + r * n;
        const uint8_t *br = mask + r * mask_stride;
        T m, lo;
        double s;
        masked_row_stats(xr, br, n, &m, &s, &lo);
        /* NaN -> NaN, +inf -> +inf, only -inf or nothing left -> -inf */
        out[r] = (m > (T)-INFINITY && m < (T)INFINITY)
                     ? (T)((double)m + masked_log_sumexp(xr, br, n, m, s))
                     : m;
    }
}

/*
 * body/row_stats.h -- the statistics of one contiguous row: its maximum
 * (and minimum, which decides whether the exp may skip its range check)
 * and its sum of exp(x - max), by two passes over a cached row or one
 * online pass over a long one.
 */

/*
 * Largest and smallest elements of x[0..n) (-inf and +inf if n == 0).  A
 * NaN may or may not survive VMAX; row_max below settles it.
 */
static FS_TARGET T row_max_raw(const T *x, ptrdiff_t n, T *lo)
{
    V m0 = VSET(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    V l0 = VSET(INFINITY), l1 = l0;
    ptrdiff_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        const V a = VLOAD(x + i), b = VLOAD(x + i + W);
        const V c = VLOAD(x + i + 2 * W), d = VLOAD(x + i + 3 * W);
        m0 = VMAX(m0, a);
        m1 = VMAX(m1, b);
        m2 = VMAX(m2, c);
        m3 = VMAX(m3, d);
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
        m0 = VMAX(m0, VLOADN(x + i, n - i)); /* other lanes -inf */
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
static FS_TARGET T row_max(const T *x, ptrdiff_t n, T *lo)
{
    const T m = row_max_raw(x, n, lo);
    if (__builtin_expect(!(m > (T)-INFINITY && m < (T)INFINITY), 0)) {
        for (ptrdiff_t i = 0; i < n; i++)
            if (x[i] != x[i])
                return (T)NAN;
    }
    return m;
}

/*
 * sum(exp(x - m)) over x[0..n), m finite; the exps are stored to e[0..n)
 * when `store`.  `ahead` (may be NULL): n elements to ask for meanwhile
 * (FS_PREFETCH), the next row.  `fast` (the caller knows min(x) - m >= VEXPN_FAST_MIN)
 * uses the exp without its range check: with no possible call to the
 * full-range exp left in the loop, its constants stay in registers.
 * `store` and `fast` are compile-time constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) V exp_shifted(V x, V vm, int fast)
{
    return fast ? VEXPN_FAST(VSUB(x, vm)) : VEXPN(VSUB(x, vm));
}

static FS_TARGET inline __attribute__((always_inline)) double
sumexp_impl(const T *x, T *e, ptrdiff_t n, T m, int store, int fast, const T *ahead)
{
    const V vm = VSET(m);
    L lanes = LZERO;
    for (ptrdiff_t b = 0; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO, a1 = AZERO;
        ptrdiff_t i = b;
        for (; i + 4 * W <= end; i += 4 * W) {
            const V e0 = exp_shifted(VLOAD(x + i), vm, fast);
            const V e1 = exp_shifted(VLOAD(x + i + W), vm, fast);
            const V e2 = exp_shifted(VLOAD(x + i + 2 * W), vm, fast);
            const V e3 = exp_shifted(VLOAD(x + i + 3 * W), vm, fast);
            if (ahead)
                FS_PREFETCH(ahead + i, 4 * W * sizeof(T));
            if (store) {
                VSTORE(e + i, e0);
                VSTORE(e + i + W, e1);
                VSTORE(e + i + 2 * W, e2);
                VSTORE(e + i + 3 * W, e3);
            }
            a0 = AADD(AADD(a0, e0), e1);
            a1 = AADD(AADD(a1, e2), e3);
        }
        for (; i + W <= end; i += W) {
            const V e0 = exp_shifted(VLOAD(x + i), vm, fast);
            if (store)
                VSTORE(e + i, e0);
            a0 = AADD(a0, e0);
        }
        if (i < end) { /* the -inf fill lanes need the checked exp */
            const V e0 = exp_shifted(VLOADN(x + i, end - i), vm, 0);
            if (store)
                VSTOREN(e + i, e0, end - i);
            a0 = AADD(a0, e0);
        }
        LADD(lanes, ACOMB(a0, a1));
    }
    return lanes_total(lanes);
}

static FS_TARGET double sumexp(const T *x, ptrdiff_t n, T m, int fast, const T *ahead)
{
    return fast ? sumexp_impl(x, NULL, n, m, 0, 1, ahead) : sumexp_impl(x, NULL, n, m, 0, 0, ahead);
}

static FS_TARGET double sumexp_store(const T *x, T *e, ptrdiff_t n, T m, int fast, const T *ahead)
{
    return fast ? sumexp_impl(x, e, n, m, 1, 1, ahead) : sumexp_impl(x, e, n, m, 1, 0, ahead);
}

/*
 * The maximum m and s = sum(exp(x - m)) of a row in one pass over memory,
 * for rows too long to stay in cache between two passes: each block of
 * FS_OBLOCK elements is read from memory once for its maximum and again
 * from L1 for its sum; the running sum is rescaled when the maximum grows.
 * m is NaN if the row has a NaN, +inf if it has +inf, -inf if all -inf.
 */
static FS_TARGET void row_online(const T *x, ptrdiff_t n, T *m_out, double *s_out, T *lo_out)
{
    T m = (T)-INFINITY, row_lo = (T)INFINITY;
    double s = 0.0, c = 0.0;
    for (ptrdiff_t b = 0; b < n; b += FS_OBLOCK) {
        const ptrdiff_t len = b + FS_OBLOCK < n ? FS_OBLOCK : n - b;
        T lo;
        const T bm = row_max(x + b, len, &lo);
        if (bm != bm || bm == (T)INFINITY) {
            /* rare: a NaN decides the row; after +inf a NaN may still follow */
            *m_out = bm != bm ? bm : row_max(x, n, &lo);
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
        fs_neumaier(&s, &c, sumexp(x + b, len, m, FS_EXP_FAST(lo, m), NULL));
    }
    *m_out = m;
    *s_out = fs_neumaier_total(s, c);
    *lo_out = row_lo;
}

/*
 * A row longer than FS_ROW_CACHE_BYTES is taken in parts of FS_PART
 * elements (64 KiB), numbered from its start: each part's statistics come
 * from one online pass, and are folded in the parts' order.  Threads may
 * share such a row (_loops.pyx: each computes some parts' statistics into
 * an array, row_parts_fold folds them); the arithmetic is the same, so the
 * results are bit-identical whatever the thread count.
 */
#define FS_PART ((ptrdiff_t)(FS_PART_BYTES / sizeof(T)))

/* Running fold of parts' (maximum, sum of exp(x - maximum), minimum). */
typedef struct {
    double m, s, c, lo;
    int nan, inf;
} parts_acc;

static inline void parts_start(parts_acc *a)
{
    a->m = -INFINITY;
    a->s = a->c = 0.0;
    a->lo = INFINITY;
    a->nan = a->inf = 0;
}

/*
 * A part's maximum is NaN if it has a NaN, or finite with a NaN sum (a NaN
 * that the fast maximum missed); +inf (sum NaN) if it has +inf and no NaN;
 * -inf (sum 0) if it is all -inf, which adds nothing.
 */
static inline void parts_add(parts_acc *a, const double *st)
{
    const double pm = st[0], ps = st[1];
    a->lo = st[2] < a->lo ? st[2] : a->lo;
    if (pm != pm || (pm > -INFINITY && pm < INFINITY && ps != ps)) {
        a->nan = 1;
    } else if (pm == INFINITY) {
        a->inf = 1;
    } else if (pm > -INFINITY) {
        if (pm > a->m) {
            const double f = exp(a->m - pm);
            a->s *= f;
            a->c *= f;
            a->m = pm;
        }
        fs_neumaier(&a->s, &a->c, pm == a->m ? ps : ps * exp(pm - a->m));
    }
}

/* out[0..3) = the row's maximum (NaN, +inf, -inf as row_online), sum, minimum. */
static inline void parts_finish(const parts_acc *a, double *out)
{
    out[0] = a->nan ? NAN : a->inf ? INFINITY : a->m;
    out[1] = a->nan || a->inf ? NAN : fs_neumaier_total(a->s, a->c);
    out[2] = a->lo;
}

static FS_TARGET void part_stats(const T *x, ptrdiff_t n, double *st)
{
    T m, lo;
    double s;
    row_online(x, n, &m, &s, &lo);
    st[0] = m;
    st[1] = s;
    st[2] = lo;
}

static FS_TARGET void long_row_stats(const T *x, ptrdiff_t n, T *m, double *s, T *lo)
{
    parts_acc a;
    parts_start(&a);
    for (ptrdiff_t p = 0; p < n; p += FS_PART) {
        double st[3];
        part_stats(x + p, n - p < FS_PART ? n - p : FS_PART, st);
        parts_add(&a, st);
    }
    double out[3];
    parts_finish(&a, out);
    *m = (T)out[0];
    *s = out[1];
    *lo = (T)out[2];
}

/*
 * The max and the sum of exps of a row, by two passes or one as its size
 * asks; the second of two passes asks for `ahead` (NULL, or the next row).
 */
static FS_TARGET void row_stats(const T *x, ptrdiff_t n, T *m, double *s, T *lo, const T *ahead)
{
    if ((size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        *m = row_max(x, n, lo);
        *s = (*m > (T)-INFINITY && *m < (T)INFINITY) ? sumexp(x, n, *m, FS_EXP_FAST(*lo, *m), ahead)
                                                     : NAN;
    } else {
        long_row_stats(x, n, m, s, lo);
    }
}

/*
 * The entries of x[0..n) below m, m >= every entry and finite: *below gets
 * the sum of their exp(x - m), *equal the count of the others (those equal
 * to m).  Both add up over the parts of a row split between threads.
 */
static FS_TARGET void below_max(const T *x, ptrdiff_t n, T m, double *below, double *equal)
{
    const V vm = VSET(m), one = VSET((T)1);
    double sum_below = 0.0, comp = 0.0, lanes = 0.0, less = 0.0;
    for (ptrdiff_t b = 0; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A sum = AZERO, cnt = AZERO;
        ptrdiff_t i = b;
        for (; i < end; i += W) {
            /* the last vector's fill lanes load -inf: below m, adding 0 */
            const V v = i + W <= end ? VLOAD(x + i) : VLOADN(x + i, end - i);
            sum = AADD(sum, VKEEP_LT(VEXPN(VSUB(v, vm)), v, vm));
            cnt = AADD(cnt, VKEEP_LT(one, v, vm));
            lanes += W;
        }
        fs_neumaier(&sum_below, &comp, AHSUM(sum));
        less += AHSUM(cnt);
    }
    *below = fs_neumaier_total(sum_below, comp);
    *equal = lanes - less;
}

/*
 * log(s) for s = sum(exp(x - m)) over a row, m its finite maximum, from the
 * row's below_max() totals when s < 2 (else unused).  When the maximum's own
 * term dominates, log(s) = log1p(s - 1) would lose the other terms to the
 * rounding of s near 1 (logsumexp([0, -40]) = 4.25e-18, not 0), so they are
 * added up again apart from the maximum's exact 1s: log1p(below + equal - 1).
 */
static inline double log_sum_from(double s, double below, double equal)
{
    return s < 2.0 ? log1p(below + (equal - 1.0)) : log(s);
}

/*
 * A long row's below_max() totals: its parts' (below, equal) pairs, below
 * added in the parts' order (as row_parts_fold adds those of a shared row).
 */
static inline void below_start(double *acc)
{
    acc[0] = acc[1] = acc[2] = 0.0;
}

static inline void below_add(double *acc, const double *st)
{
    fs_neumaier(&acc[0], &acc[1], st[0]);
    acc[2] += st[1];
}

/* log(s) of a whole row: a second pass (from cache for rows that fit in it) when s < 2. */
static FS_TARGET double log_sumexp(const T *x, ptrdiff_t n, T m, double s)
{
    if (!(s < 2.0))
        return log(s);
    double below, equal;
    if ((size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        below_max(x, n, m, &below, &equal);
    } else {
        double acc[3];
        below_start(acc);
        for (ptrdiff_t p = 0; p < n; p += FS_PART) {
            double st[2];
            below_max(x + p, n - p < FS_PART ? n - p : FS_PART, m, &st[0], &st[1]);
            below_add(acc, st);
        }
        below = fs_neumaier_total(acc[0], acc[1]);
        equal = acc[2];
    }
    return log_sum_from(s, below, equal);
}

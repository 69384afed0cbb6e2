/*
 * body/cross_entropy.h -- the fused cross-entropy kernels: each row's loss
 * and its gradient with respect to the logits in one sweep over the row.
 *
 * Per row, with p = softmax(x), m = max(x), s = sum(exp(x - m)) and a
 * per-class factor u (see FS_CE_*), the loss and its gradient are
 *   L = b (m - x_t) + a log(s) + e sum_c u_c (m - x_c)
 *   dL/dx_j = a p_j - b [j == t] - e u_j
 * -log p_c = (m - x_c) + log(s) is a sum of non-negative terms, so no
 * cancellation.  The gradient pass re-reads the row (from cache when it
 * fits) and adds up the u_c (m - x_c) term in the same sweep.
 */

/* What the per-class factor u of the kernels below is. */
#define FS_CE_PLAIN       0 /* no smoothing term: u unused */
#define FS_CE_UNIFORM     1 /* u = 1: label smoothing without class weights */
#define FS_CE_WEIGHT      2 /* u = weight: label smoothing with class weights */
#define FS_CE_SOFT        3 /* u = (1 - eps) q + eps / n: probability targets */
#define FS_CE_SOFT_WEIGHT 4 /* u = weight ((1 - eps) q + eps / n) */
/*
 * Class-index rows of at most this many classes go through the chunked
 * small-row kernel, FS_CE_CHUNK elements (4-8 KiB, in L1) at a time.
 */
#define FS_CE_SMALL 64
#define FS_CE_CHUNK 1024

/* The first k lanes from p (k == W: a full vector; other lanes -inf). */
static FS_TARGET inline __attribute__((always_inline)) V load_k(const T *p, ptrdiff_t k)
{
    return k < W ? VLOADN(p, k) : VLOAD(p);
}

/* u for the classes i..i+k (k <= W; lanes past k are not used). */
static FS_TARGET inline __attribute__((always_inline)) V cross_entropy_u(int mode, const T *w,
                                                                         const T *q, ptrdiff_t i,
                                                                         ptrdiff_t k, V c1, V c2)
{
    switch (mode) {
    case FS_CE_UNIFORM:
        return VSET((T)1);
    case FS_CE_WEIGHT:
        return load_k(w + i, k);
    case FS_CE_SOFT:
        return VADD(VMUL(load_k(q + i, k), c1), c2);
    default: /* FS_CE_SOFT_WEIGHT */
        return VMUL(load_k(w + i, k), VADD(VMUL(load_k(q + i, k), c1), c2));
    }
}

/*
 * The k < W lanes from i (the row's tail, or its head up to streaming
 * alignment): g[i..i+k) as in cross_entropy_grad_impl; returns their share of
 * sum u_j (m - x_j), added in double.
 */
static FS_TARGET inline __attribute__((always_inline)) double
cross_entropy_grad_part(const T *x, const T *e, const T *w, const T *q, T *g, ptrdiff_t i,
                        ptrdiff_t k, V vm, V vcp, V vcw, V c1, V c2, int mode)
{
    const V xv = VLOADN(x + i, k);
    const V p = e ? VLOADN(e + i, k) : VEXP(VSUB(xv, vm));
    if (mode == FS_CE_PLAIN) {
        VSTOREN(g + i, VMUL(p, vcp), k);
        return 0.0;
    }
    const V u = cross_entropy_u(mode, w, q, i, k, c1, c2);
    T lane[W];
    double part = 0.0;
    VSTOREN(g + i, VSUB(VMUL(p, vcp), VMUL(u, vcw)), k);
    VSTORE(lane, VMUL(u, VSUB(vm, xv)));
    for (ptrdiff_t l = 0; l < k; l++)
        part += (double)lane[l];
    return part;
}

/*
 * g[j] = cp exp(x_j - m) - cw u_j for the row; returns sum u_j (m - x_j)
 * (0 in FS_CE_PLAIN).  The exps are read from e when it is not NULL (the
 * sum pass stored them, so each logit costs one exp) and recomputed from x
 * otherwise.  Blocked double sums as in sumexp.  `mode`, `stream` and
 * whether e is NULL are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) double
cross_entropy_grad_impl(const T *x, const T *e, const T *w, const T *q, T *g, ptrdiff_t n, T m,
                        T cp, T cw, T c1_, T c2_, int mode, int stream)
{
    const V vm = VSET(m), vcp = VSET(cp), vcw = VSET(cw), c1 = VSET(c1_), c2 = VSET(c2_);
    double s = 0.0, c = 0.0;
    ptrdiff_t i = 0;
    if (stream) {
        const ptrdiff_t k = VHEAD(g) < n ? VHEAD(g) : n;
        if (k > 0) {
            s = cross_entropy_grad_part(x, e, w, q, g, 0, k, vm, vcp, vcw, c1, c2, mode);
            i = k;
        }
    }
    for (ptrdiff_t b = i; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO;
        double tail = 0.0;
        for (i = b; i + W <= end; i += W) {
            /* x is read before g is written: g may be x itself (in place) */
            const V xv = VLOAD(x + i);
            const V p = e ? VLOAD(e + i) : VEXP(VSUB(xv, vm));
            if (mode == FS_CE_PLAIN) {
                if (stream)
                    VSTREAM(g + i, VMUL(p, vcp));
                else
                    VSTORE(g + i, VMUL(p, vcp));
            } else {
                const V u = cross_entropy_u(mode, w, q, i, W, c1, c2);
                const V gv = VSUB(VMUL(p, vcp), VMUL(u, vcw));
                if (stream)
                    VSTREAM(g + i, gv);
                else
                    VSTORE(g + i, gv);
                a0 = AADD(a0, VMUL(u, VSUB(vm, xv)));
            }
        }
        if (i < end)
            tail = cross_entropy_grad_part(x, e, w, q, g, i, end - i, vm, vcp, vcw, c1, c2, mode);
        if (mode != FS_CE_PLAIN)
            fs_neumaier(&s, &c, AHSUM(a0) + tail);
    }
    return fs_neumaier_total(s, c);
}

/*
 * sum_c u_c (m - x_c) over the row, or with x NULL sum_c u_c (the total
 * target mass of a probability row).  Blocked double sums as in sumexp;
 * `mode` and whether x is NULL are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) double
cross_entropy_usum_impl(const T *x, const T *w, const T *q, ptrdiff_t n, T m, T c1_, T c2_,
                        int mode)
{
    const V c1 = VSET(c1_), c2 = VSET(c2_), vm = VSET(m);
    double s = 0.0, c = 0.0;
    T lane[W];
    for (ptrdiff_t b = 0; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO;
        double tail = 0.0;
        ptrdiff_t i = b;
        for (; i + W <= end; i += W) {
            const V u = cross_entropy_u(mode, w, q, i, W, c1, c2);
            a0 = AADD(a0, x ? VMUL(u, VSUB(vm, VLOAD(x + i))) : u);
        }
        if (i < end) {
            const ptrdiff_t k = end - i;
            const V u = cross_entropy_u(mode, w, q, i, k, c1, c2);
            VSTORE(lane, x ? VMUL(u, VSUB(vm, VLOADN(x + i, k))) : u);
            for (ptrdiff_t l = 0; l < k; l++)
                tail += (double)lane[l];
        }
        fs_neumaier(&s, &c, AHSUM(a0) + tail);
    }
    return fs_neumaier_total(s, c);
}

/* The row's target mass sum_c u_c (x NULL) or its smoothing sum sum_c u_c (m - x_c). */
static FS_TARGET double cross_entropy_usum(const T *x, const T *w, const T *q, ptrdiff_t n, T m,
                                           T c1, T c2, int mode)
{
#define FS_CE_USUM(M)                                                                              \
    case M:                                                                                        \
        return x ? cross_entropy_usum_impl(x, w, q, n, m, c1, c2, M)                               \
                 : cross_entropy_usum_impl(NULL, w, q, n, m, c1, c2, M);
    switch (mode) {
        FS_CE_USUM(FS_CE_UNIFORM)
        FS_CE_USUM(FS_CE_WEIGHT)
        FS_CE_USUM(FS_CE_SOFT)
    default:
        FS_CE_USUM(FS_CE_SOFT_WEIGHT)
    }
#undef FS_CE_USUM
}

/*
 * Row r's loss: to loss[r] when the caller wants each row's, and times the
 * row's weight into the compensated total (tot, comp) for the reductions.
 */
static inline void cross_entropy_put_loss(double *loss, const double *row_scale, ptrdiff_t r,
                                          double value, double *tot, double *comp)
{
    if (loss)
        loss[r] = value;
    fs_neumaier(tot, comp, row_scale ? row_scale[r] * value : value);
}

static FS_TARGET double cross_entropy_grad(const T *x, const T *e, const T *w, const T *q, T *g,
                                           ptrdiff_t n, T m, T cp, T cw, T c1, T c2, int mode,
                                           int stream)
{
#define FS_CE_CALL(E, M, S) cross_entropy_grad_impl(x, E, w, q, g, n, m, cp, cw, c1, c2, M, S)
#define FS_CE_CASE(M)                                                                              \
    case M:                                                                                        \
        if (e)                                                                                     \
            return stream ? FS_CE_CALL(e, M, 1) : FS_CE_CALL(e, M, 0);                             \
        return stream ? FS_CE_CALL(NULL, M, 1) : FS_CE_CALL(NULL, M, 0);
    switch (mode) {
        FS_CE_CASE(FS_CE_PLAIN)
        FS_CE_CASE(FS_CE_UNIFORM)
        FS_CE_CASE(FS_CE_WEIGHT)
        FS_CE_CASE(FS_CE_SOFT)
    default:
        FS_CE_CASE(FS_CE_SOFT_WEIGHT)
    }
#undef FS_CE_CASE
#undef FS_CE_CALL
}

/*
 * The row's max m and sum of exps s; for a row that fits in cache the exps
 * are also stored to *e (work, or the gradient row itself when not
 * streaming and not in place), for the gradient pass to read instead of
 * recomputing them.  *e is NULL for longer rows and rows with no finite max.
 * In place (g == x) the logits are still needed by the gradient pass, so
 * the exps go to work.  `ahead` (NULL, or the next row) as in sumexp.
 */
static FS_TARGET void cross_entropy_stats(const T *x, T *g, T *work, ptrdiff_t n, int stream, T *m,
                                          double *s, const T **e, const T *ahead)
{
    *e = NULL;
    T *store = stream || g == x ? work : g;
    if (store && (size_t)n * sizeof(T) <= FS_ROW_CACHE_BYTES) {
        T lo;
        *m = row_max(x, n, &lo);
        if (*m > (T)-INFINITY && *m < (T)INFINITY) {
            *s = sumexp_store(x, store, n, *m, FS_EXP_FAST(lo, *m), ahead);
            *e = store;
        }
        return;
    }
    T lo;
    row_stats(x, n, m, s, &lo, ahead);
}

/*
 * Class-index targets, rows of at most FS_CE_SMALL classes.  Per-row
 * vector loops would spend their time on masked tails, so rows are taken
 * FS_CE_CHUNK elements at a time: the shifted logits x - max of the whole
 * chunk go through the vector exp as one flat array in L1, the short
 * per-row sums and gradient factors are scalar, and the chunk's gradient
 * leaves in full (streaming) vectors.  Same arguments and results as
 * cross_entropy_rows; returns the weighted loss total.
 */
static FS_TARGET double cross_entropy_small_rows(const T *logits, const int64_t *target,
                                                 const T *weight, double weight_sum,
                                                 double label_smoothing, const double *row_scale,
                                                 double scale, double *loss, T *grad,
                                                 ptrdiff_t n_rows, ptrdiff_t n, int flags)
{
    T e[FS_CE_CHUNK + W], mrow[FS_CE_CHUNK];
    const int stream = flags & FS_FLAG_STREAM;
    const ptrdiff_t rows = FS_CE_CHUNK / n;
    const double ef = label_smoothing / (double)n;
    const int smooth = label_smoothing != 0.0;
    double tot = 0.0, comp = 0.0;
    for (ptrdiff_t i = 0; i < FS_CE_CHUNK + W; i++)
        e[i] = 0;
    for (ptrdiff_t r0 = 0; r0 < n_rows; r0 += rows) {
        const ptrdiff_t nr = r0 + rows < n_rows ? rows : n_rows - r0, len = nr * n;
        const T *xc = logits + r0 * n;
        /* the row maxima, and e = logits - max: every exp argument <= 0 */
        for (ptrdiff_t r = 0; r < nr; r++) {
            const T *xr = xc + r * n;
            T *er = e + r * n;
            const int64_t t = target[r0 + r];
            T m = (T)-INFINITY;
            if (t >= 0 && t < n) { /* ignored rows are not read */
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
            if (t < 0 || t >= n || !(m > (T)-INFINITY && m < (T)INFINITY)) {
                const double value = t < 0 || t >= n ? 0.0 : NAN;
                cross_entropy_put_loss(loss, row_scale, r0 + r, value, &tot, &comp);
                fill(er, n, (T)value);
                continue;
            }
            double s = 0.0, acc = 0.0;
            for (ptrdiff_t i = 0; i < n; i++)
                s += (double)er[i];
            if (smooth) {
                for (ptrdiff_t i = 0; i < n; i++)
                    acc += (double)((weight ? weight[i] : (T)1) * (m - xr[i]));
            }
            const double wt = weight ? (double)weight[t] : 1.0;
            const double b = (1.0 - label_smoothing) * wt, a = b + ef * weight_sum;
            const double value =
                b * ((double)m - (double)xr[t]) + a * log(s) + (smooth ? ef * acc : 0.0);
            cross_entropy_put_loss(loss, row_scale, r0 + r, value, &tot, &comp);
            if (!grad)
                continue;
            const double sc = row_scale ? scale * row_scale[r0 + r] : scale;
            const T cp = (T)(sc * a / s), cw = (T)(sc * ef);
            const double pt = (double)er[t] / s;
            if (!smooth) {
                for (ptrdiff_t i = 0; i < n; i++)
                    er[i] *= cp;
            } else {
                for (ptrdiff_t i = 0; i < n; i++)
                    er[i] = er[i] * cp - cw * (weight ? weight[i] : (T)1);
            }
            er[t] = (T)(sc * (a * pt - b - (smooth ? ef * wt : 0.0)));
        }
        if (grad)
            FS_ROW_APPLY(grad + r0 * n, len, stream, e, e, a);
    }
    if (grad && stream)
        VFENCE();
    return fs_neumaier_total(tot, comp);
}

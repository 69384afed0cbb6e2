/*
 * body/few_classes.h -- softmax, log_softmax and class-index cross-entropy
 * of rows of few classes (n <= FS_FEW_CLASSES), vectorised across rows:
 * lane l of the statistics' vectors holds row l of a block of W rows.
 *
 * A row of 10 floats is less than one AVX-512 vector, so a kernel that
 * walks one row at a time spends its time on masked tails and horizontal
 * reductions.  Here a block of W rows -- W n contiguous elements, exactly n
 * vectors -- is turned into its n columns (lane l of column j is x[l n + j])
 * by VCOLUMNS, a transpose in registers; the maximum, the exps, the sum
 * and the reciprocal are then lane-wise, with no horizontal step.  The
 * output is computed column by column too, each lane with its own row's
 * constants, from the exps kept in the columns' scratch, and goes back to
 * rows by the inverse transpose (VROWS): one exp per element.  (An
 * output pass in row order, each row's constants permuted to its
 * elements' lanes and each exp taken again, was slower: cross-entropy of
 * 10 classes in L2, 0.70 against 0.60 ns an element in float32, 1.67
 * against 1.49 in float64, AMD EPYC Zen 5.)  log_softmax has no exp to
 * save in its output: it keeps the row-order pass, where three permutes a
 * vector cost less than the transpose back (0.46 against 0.55 ns an
 * element, 10 float32).
 * Rows left over when n_rows is not a multiple of W go through a
 * zero-padded copy, so nothing outside the arrays is read or written.
 *
 * Special rows (a NaN, a +inf, all -inf) give NaN, each in its own lane
 * only: in softmax a NaN in a row makes its sum NaN, and a maximum of
 * +inf or -inf makes some x - m NaN (inf - inf), so the sum and every
 * output of the row are NaN; log_softmax flags the lanes whose maximum is
 * not finite or that saw a NaN, and turns them to NaN at the end.
 *
 * The scalar path (W == 1) keeps its row kernel.
 */

/* Scratch of one block: n columns of W lanes. */
#define FS_FEW_SCRATCH (FS_FEW_CLASSES * W)

/*
 * The lanes of a block of rows of n classes: sel[k W + l] = (k W + l) / n
 * is the row of element k W + l of the block, the lane whose statistics it
 * takes (log_softmax's output in row order).
 */
static inline void few_rows_of(int32_t *sel, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n * W; i++)
        sel[i] = (int32_t)(i / n);
}

/*
 * An empty asm on each vector of the copy below: without it GCC makes the
 * loop a call of memcpy per block (5% of the few-class cross-entropy's
 * samples in L2, float64, AMD EPYC Zen 5).
 */
#if (defined(__GNUC__) || defined(__clang__)) && W > 1
#define FS_FEW_OPAQUE(v) __asm__("" : "+v"(v))
#else
#define FS_FEW_OPAQUE(v) ((void)0)
#endif

/*
 * The block's output, its columns at t, back to rows at y: VROWS into the
 * rows' scratch ys, then n whole vectors to y, streamed or stored.  (VROWS
 * straight into y, masked stores of a row each, made softmax of 10 float64
 * beyond L2 half as fast again: 16 ns a row against 11, AMD EPYC Zen 5.)
 */
static FS_TARGET inline __attribute__((always_inline)) void few_out(const T *t, ptrdiff_t n, T *y,
                                                                    T *ys, int stream)
{
    VROWS(t, n, ys);
    for (ptrdiff_t k = 0; k < n; k++) {
        V v = VLOAD(ys + k * W);
        if (stream) {
            VSTREAM(y + k * W, v);
        } else {
            FS_FEW_OPAQUE(v);
            VSTORE(y + k * W, v);
        }
    }
}

/*
 * One block of W rows of n classes: x and y point at W n contiguous
 * elements (y may be x: each vector of x is read before the same one of y
 * is written); t and ys are the block's scratch, sel from few_rows_of.
 * `log` and `stream` are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
few_block(const T *x, T *y, ptrdiff_t n, const int32_t *sel, T *t, T *ys, int log, int stream)
{
    VCOLUMNS(x, n, t);
    V m = VSET((T)-INFINITY), nan = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V c = VLOAD(t + j * W);
        m = VMAX(m, c);
        if (log)
            nan = VNAN_ACC(nan, c, c);
    }
    if (log) {
        /* below: the exps of the entries under the maximum; less: how many */
        const V one = VSET((T)1), unfinite = VSUB(m, m); /* NaN where m is not finite */
        V below = VSET((T)0), less = VSET((T)0);
        for (ptrdiff_t j = 0; j < n; j++) {
            const V c = VLOAD(t + j * W);
            below = VADD(below, VKEEP_LT(VEXP(VSUB(c, m)), c, m));
            less = VADD(less, VKEEP_LT(one, c, m));
        }
        /* log(s), s = below + (n - less): log1p of all but one of the maximum's
         * exact 1s keeps the small terms when the maximum dominates */
        const V ls = vlog1p(VADD(below, VSUB(VSET((T)(n - 1)), less)));
        nan = VNAN_ACC(nan, unfinite, unfinite);
        /*
         * in row order, each row's m, log(s) and NaN flag permuted to its
         * elements' lanes: three permutes a vector cost less than the
         * transpose back (no exp to save here).  (x - m) - log(s), the
         * shift exact for the largest entries.
         */
        for (ptrdiff_t k = 0; k < n; k++) {
            const int32_t *rk = sel + k * W;
            const V out = VSUB(VSUB(VLOAD(x + k * W), VPERM(m, rk)), VPERM(ls, rk));
            const V v = VNAN_APPLY(out, VPERM(nan, rk));
            if (stream)
                VSTREAM(y + k * W, v);
            else
                VSTORE(y + k * W, v);
        }
        return;
    }
    /* the exps kept in t; two accumulators: half the dependency chain, and a better sum */
    V s0 = VSET((T)0), s1 = VSET((T)0);
    ptrdiff_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const V e0 = VEXP(VSUB(VLOAD(t + j * W), m)), e1 = VEXP(VSUB(VLOAD(t + (j + 1) * W), m));
        VSTORE(t + j * W, e0);
        VSTORE(t + (j + 1) * W, e1);
        s0 = VADD(s0, e0);
        s1 = VADD(s1, e1);
    }
    if (j < n) {
        const V e0 = VEXP(VSUB(VLOAD(t + j * W), m));
        VSTORE(t + j * W, e0);
        s0 = VADD(s0, e0);
    }
    const V inv = VDIV(VSET((T)1), VADD(s0, s1));
    for (j = 0; j < n; j++)
        VSTORE(t + j * W, VMUL(VLOAD(t + j * W), inv));
    few_out(t, n, y, ys, stream);
}

/*
 * The hardware prefetchers do not follow the masked row loads of VCOLUMNS
 * (and did not follow gathers before them): beyond L2 a block waits for
 * its lines (softmax of 10 float64 beyond L2, one thread: 33 ns a row, 11
 * in L2; AMD EPYC Zen 5).  The block FS_FEW_AHEAD blocks on is asked for
 * while this one is worked on.
 */
#define FS_FEW_AHEAD 4
#if defined(__GNUC__) || defined(__clang__)
static inline void few_prefetch(const T *x, ptrdiff_t len)
{
    for (ptrdiff_t i = 0; i < len; i += 64 / (ptrdiff_t)sizeof(T))
        __builtin_prefetch(x + i, 0, 3);
}
#else
#define few_prefetch(x, len) ((void)0)
#endif

/* The blocks of [0, n_rows - n_rows % W); `log` and `stream` constant after inlining. */
static FS_TARGET inline __attribute__((always_inline)) void
few_blocks(const T *x, T *y, ptrdiff_t n_blocks, ptrdiff_t n, const int32_t *sel, T *t, T *ys,
           int log, int stream)
{
    for (ptrdiff_t b = 0; b < n_blocks; b++) {
        if (b + FS_FEW_AHEAD < n_blocks)
            few_prefetch(x + (b + FS_FEW_AHEAD) * W * n, W * n);
        few_block(x + b * W * n, y + b * W * n, n, sel, t, ys, log, stream);
    }
}

/*
 * rows < W rows as one zero-padded block: the head before the first block
 * that starts where VSTREAM may store, or the tail after the last full
 * block.
 */
static FS_TARGET inline void few_part(const T *x, T *y, ptrdiff_t rows, ptrdiff_t n,
                                      const int32_t *sel, T *t, T *ys, int log)
{
    T xb[FS_FEW_SCRATCH];
    const ptrdiff_t len = rows * n;
    memset(xb, 0, sizeof(xb));
    memcpy(xb, x, (size_t)len * sizeof(T));
    if (log)
        few_block(xb, xb, n, sel, t, ys, 1, 0);
    else
        few_block(xb, xb, n, sel, t, ys, 0, 0);
    memcpy(y, xb, (size_t)len * sizeof(T));
}

/*
 * y = softmax(x) (log_softmax with FS_FLAG_LOG) of n_rows contiguous rows
 * of n <= FS_FEW_CLASSES elements.
 */
static FS_TARGET void softmax_few_rows(const T *x, T *y, ptrdiff_t n_rows, ptrdiff_t n, int flags)
{
#if W == 1
    softmax_rows(x, y, NULL, n_rows, n, flags);
#else
    /* VROWS reads the columns of a whole group, some past n: all defined */
    T t[FS_FEW_SCRATCH] = {0}, ys[FS_FEW_SCRATCH];
    int32_t sel[FS_FEW_SCRATCH];
    few_rows_of(sel, n);
    const int log = flags & FS_FLAG_LOG;
    /*
     * Streamed, the blocks must start where VSTREAM may store: the first
     * h < W rows, if some h puts the first block there (6 rows of 10
     * float32, 3 of 10 float64, from a NumPy array's usual 16 bytes past a
     * line), go first as a part of a block; a block is a whole number of
     * vectors, so the others follow.
     */
    ptrdiff_t head = 0;
    int stream = 0;
    if (flags & FS_FLAG_STREAM) {
        for (ptrdiff_t h = 0; h < W && h < n_rows && !stream; h++) {
            stream = VHEAD(y + h * n) == 0;
            head = h;
        }
        head = stream ? head : 0;
    }
    if (head > 0)
        few_part(x, y, head, n, sel, t, ys, log);
    const ptrdiff_t n_blocks = (n_rows - head) / W, done = head + n_blocks * W;
    const T *x0 = x + head * n;
    T *y0 = y + head * n;
    if (log && stream)
        few_blocks(x0, y0, n_blocks, n, sel, t, ys, 1, 1);
    else if (log)
        few_blocks(x0, y0, n_blocks, n, sel, t, ys, 1, 0);
    else if (stream)
        few_blocks(x0, y0, n_blocks, n, sel, t, ys, 0, 1);
    else
        few_blocks(x0, y0, n_blocks, n, sel, t, ys, 0, 0);
    if (stream)
        VFENCE();
    if (done < n_rows)
        few_part(x + done * n, y + done * n, n_rows - done, n, sel, t, ys, log);
#endif
}

/* ------------------------------------------------------- cross-entropy -- */

/* the vectors of double lanes that hold one V's lanes */
#define FS_FEW_PARTS (W / DW)

/*
 * What every block of one cross_entropy_few_rows call shares: the options,
 * the class factor of each class (wcol: its weight, or 1), and the
 * scratch: the columns of two blocks (t: one scanned while the other is
 * finished) and a block of gradient rows (gs), streamed from there.
 */
typedef struct {
    /* b = keep w_t, a = b + ef_sum; ef = label_smoothing / n (see cross_entropy.h) */
    double keep, ef, ef_sum, scale;
    ptrdiff_t n;
    int weighted;
    T wcol[FS_FEW_CLASSES];
    T t[2][FS_FEW_SCRATCH], gs[FS_FEW_SCRATCH];
} few_ce_call;

/*
 * A block's rows, lane by lane: the target (-1: ignored, matches no
 * class), the maximum, the target's logit and class factor, the exps of
 * the target and of the other classes (et, o), and sum u_j (m - x_j).
 */
typedef struct {
    V tv, m, xt, wt, et, o, acc;
} few_ce_stats;

/*
 * s + c += v lane by lane, c gathering the rounding error of every sum
 * (Knuth's TwoSum: exact whatever the magnitudes, so no compare as in
 * fs_neumaier); the lanes are added up once per call.
 */
static FS_TARGET inline __attribute__((always_inline)) void few_two_sum(DV *s, DV *c, DV v)
{
    const DV t = DVADD(*s, v), vp = DVSUB(t, *s), sp = DVSUB(t, vp);
    *c = DVADD(*c, DVADD(DVSUB(*s, sp), DVSUB(v, vp)));
    *s = t;
}

/*
 * The statistics of one block of W rows of cross_entropy_rows: logits x at
 * W n contiguous elements, turned to columns in t, and their W targets.
 * The target's logit, class factor and exp are picked by a compare of the
 * target with each class jv; the columns' exps are left in t for the
 * gradient.  `smooth` is a constant after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) few_ce_stats
few_ce_scan(const few_ce_call *c, const T *x, const int64_t *target, T *t, int smooth)
{
    const ptrdiff_t n = c->n;
    const int weighted = c->weighted;
    const V zero = VSET((T)0), one = VSET((T)1);
    few_ce_stats st;
    st.tv = VINDEX(target, n);
    V m = VSET((T)-INFINITY), xt = zero, wt = one, jv = zero;
    VCOLUMNS(x, n, t);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V v = VLOAD(t + j * W);
        m = VMAX(m, v);
        xt = VSELECT_EQ(xt, v, st.tv, jv);
        if (weighted)
            wt = VSELECT_EQ(wt, VSET(c->wcol[j]), st.tv, jv);
        jv = VADD(jv, one);
    }
    V et = zero, o = zero, acc = zero;
    jv = zero;
    for (ptrdiff_t j = 0; j < n; j++) {
        const V v = VLOAD(t + j * W);
        const V e = VEXP(VSUB(v, m));
        VSTORE(t + j * W, e);
        et = VSELECT_EQ(et, e, st.tv, jv);
        o = VADD(o, VSELECT_EQ(e, zero, st.tv, jv));
        if (smooth)
            acc = VADD(acc, VMUL(VSET(c->wcol[j]), VSUB(m, v)));
        jv = VADD(jv, one);
    }
    st.m = m;
    st.xt = xt;
    st.wt = wt;
    st.et = et;
    st.o = o;
    st.acc = acc;
    return st;
}

/*
 * The rest of a block after few_ce_scan: its loss, added to the lanes of
 * (tot, comp) times row_scale and stored to loss (each row's, or NULL),
 * and its gradient to g (NULL: the loss alone) from the exps the scan left
 * in t.  `smooth`, `stream` and whether g is NULL are constants after
 * inlining.
 *
 * Per row (see cross_entropy.h for a, b, e and u), every lane at once,
 * the loss and the gradient's constants in double, W / DW rows to a
 * vector.  With o the exps of the classes other than the target t,
 * s = e_t + o and a p_t - b = (a - b) - a o / s, which does not cancel
 * when p_t is close to 1.  The gradient is cp exp(x_j - m) - cw u_j, gt at
 * the target, 0 on ignored rows whatever their logits: column by column,
 * each lane its own row's constants, then back to rows (VROWS).
 */
static FS_TARGET inline __attribute__((always_inline)) void
few_ce_finish(few_ce_call *c, const few_ce_stats *st, T *t, T *g, const double *row_scale,
              double *loss, DV *tot, DV *comp, int smooth, int stream)
{
    const ptrdiff_t n = c->n;
    /*
     * log(s) = log1p((e_t - 1) + o): exact log1p(o) when the target is a
     * maximum and the loss small, where s rounded near 1 would lose it.  A
     * NaN, a +inf or all -inf make the sum NaN (some x - m is NaN), and
     * with it log(s), the loss and the gradient, as in the row kernels.
     */
    const V lg = vlog1p(VADD(VSUB(st->et, VSET((T)1)), st->o));
    const DV keep = DVSET(c->keep), efs = DVSET(c->ef_sum), vef = DVSET(c->ef);
    const DV minus = DVSET(-1.0), scale = DVSET(c->scale);
    DV cp[FS_FEW_PARTS], cw[FS_FEW_PARTS], gt[FS_FEW_PARTS];
    for (int k = 0; k < FS_FEW_PARTS; k++) {
        const DV wk = DV_PART(st->wt, k), b = DVMUL(keep, wk), a = DVADD(b, efs);
        DV value =
            DVADD(DVMUL(b, DVSUB(DV_PART(st->m, k), DV_PART(st->xt, k))), DVMUL(a, DV_PART(lg, k)));
        if (smooth)
            value = DVADD(value, DVMUL(vef, DV_PART(st->acc, k)));
        value = DVKEEP_LT(value, minus, DV_PART(st->tv, k)); /* ignored: 0 */
        if (loss)
            DVSTORE(loss + k * DW, value);
        DV sc = scale;
        if (row_scale) {
            const DV rs = DVLOAD(row_scale + k * DW);
            few_two_sum(tot + k, comp + k, DVMUL(rs, value));
            sc = DVMUL(scale, rs);
        } else {
            few_two_sum(tot + k, comp + k, value);
        }
        if (!g)
            continue;
        const DV o = DV_PART(st->o, k), sum = DVADD(DV_PART(st->et, k), o);
        DV q = DVSUB(DVSUB(a, b), DVDIV(DVMUL(a, o), sum));
        if (smooth)
            q = DVSUB(q, DVMUL(vef, wk));
        cp[k] = DVDIV(DVMUL(sc, a), sum);
        cw[k] = DVMUL(sc, vef);
        gt[k] = DVMUL(sc, q);
    }
    if (!g)
        return;
    const V vcp = V_OF_DV(cp), vgt = V_OF_DV(gt), vcw = smooth ? V_OF_DV(cw) : VSET((T)0);
    const V one = VSET((T)1), ignored = VSET((T)-1);
    V jv = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        V gj = VMUL(VLOAD(t + j * W), vcp);
        if (smooth)
            gj = VSUB(gj, VMUL(VSET(c->wcol[j]), vcw));
        gj = VSELECT_EQ(gj, vgt, jv, st->tv);
        VSTORE(t + j * W, VKEEP_LT(gj, ignored, st->tv));
        jv = VADD(jv, one);
    }
    /* g may be the logits themselves: the scan has read this block already */
    few_out(t, n, g, c->gs, stream);
}

/*
 * The full blocks, software-pipelined: block b + 1 is scanned before block
 * b is finished, so that the long chain of a block's finish (its log, its
 * divisions, then the gradient) overlaps the next block's loads and exps
 * instead of waiting for them; the two blocks' columns alternate between
 * c->t[0] and c->t[1].  The block FS_FEW_AHEAD on is prefetched, as in
 * the softmax.  `smooth`, `stream` and whether grad is NULL constant after
 * inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
few_ce_blocks(few_ce_call *c, const T *logits, const int64_t *target, const double *row_scale,
              double *loss, T *grad, ptrdiff_t n_blocks, DV *tot, DV *comp, int smooth, int stream)
{
    const ptrdiff_t n = c->n;
    if (n_blocks == 0)
        return;
    few_ce_stats st = few_ce_scan(c, logits, target, c->t[0], smooth);
    for (ptrdiff_t b = 0; b < n_blocks; b++) {
        few_ce_stats next = st;
        if (b + 1 + FS_FEW_AHEAD < n_blocks)
            few_prefetch(logits + (b + 1 + FS_FEW_AHEAD) * W * n, W * n);
        if (b + 1 < n_blocks)
            next = few_ce_scan(c, logits + (b + 1) * W * n, target + (b + 1) * W, c->t[(b + 1) & 1],
                               smooth);
        few_ce_finish(c, &st, c->t[b & 1], grad ? grad + b * W * n : NULL,
                      row_scale ? row_scale + b * W : NULL, loss ? loss + b * W : NULL, tot, comp,
                      smooth, stream);
        st = next;
    }
}

/*
 * rows < W rows of the call as one zero-padded block (the padding is
 * ignored): the head before the first block that starts where VSTREAM may
 * store, or the tail after the last full block.  The pointers are at the
 * part's first row.
 */
static FS_TARGET inline void few_ce_part(few_ce_call *c, const T *logits, const int64_t *target,
                                         const double *row_scale, double *loss, T *grad,
                                         ptrdiff_t rows, DV *tot, DV *comp, int smooth)
{
    const ptrdiff_t n = c->n;
    T xb[FS_FEW_SCRATCH];
    int64_t tb[W];
    double rb[W], lb[W];
    memset(xb, 0, sizeof(xb));
    memcpy(xb, logits, (size_t)(rows * n) * sizeof(T));
    for (ptrdiff_t l = 0; l < W; l++) {
        tb[l] = l < rows ? target[l] : -1;
        rb[l] = l < rows && row_scale ? row_scale[l] : 0.0;
    }
    const few_ce_stats st = few_ce_scan(c, xb, tb, c->t[0], smooth);
    few_ce_finish(c, &st, c->t[0], grad ? xb : NULL, row_scale ? rb : NULL, loss ? lb : NULL, tot,
                  comp, smooth, 0);
    if (grad)
        memcpy(grad, xb, (size_t)(rows * n) * sizeof(T));
    if (loss)
        memcpy(loss, lb, (size_t)rows * sizeof(double));
}

/*
 * cross_entropy_rows (class-index targets) for n <= FS_FEW_CLASSES, one row
 * per vector lane: the same arguments and results, without the scratch row.
 */
static FS_TARGET void cross_entropy_few_rows(const T *logits, const int64_t *target,
                                             const T *weight, double weight_sum,
                                             double label_smoothing, const double *row_scale,
                                             double scale, double *loss, double *loss_sum, T *grad,
                                             ptrdiff_t n_rows, ptrdiff_t n, int flags)
{
#if W == 1
    cross_entropy_rows(logits, target, weight, weight_sum, label_smoothing, row_scale, scale, loss,
                       loss_sum, grad, NULL, n_rows, n, flags);
#else
    few_ce_call c;
    c.keep = 1.0 - label_smoothing;
    c.ef = label_smoothing / (double)n;
    c.ef_sum = c.ef * weight_sum;
    c.scale = scale;
    c.weighted = weight != NULL;
    c.n = n;
    for (ptrdiff_t j = 0; j < n; j++)
        c.wcol[j] = weight ? weight[j] : (T)1;
    /* VROWS reads the columns of a whole group, some past n: all defined */
    memset(c.t, 0, sizeof(c.t));
    DV tot[FS_FEW_PARTS], comp[FS_FEW_PARTS];
    for (int k = 0; k < FS_FEW_PARTS; k++)
        tot[k] = comp[k] = DVSET(0.0);
    const int smooth = label_smoothing != 0.0;
    /*
     * Streamed, the gradient's blocks must start where VSTREAM may store:
     * the first h < W rows, if some h puts the first block there (6 rows of
     * 10 float32 from a NumPy array's usual 16 bytes past a line), go first
     * as a part of a block.  A block is a whole number of vectors, so the
     * others follow.  Non-temporal stores do not read the gradient's lines
     * before writing them: a third less memory traffic.
     */
    ptrdiff_t head = 0;
    int stream = 0;
    if (grad && (flags & FS_FLAG_STREAM)) {
        for (ptrdiff_t h = 0; h < W && h < n_rows && !stream; h++) {
            stream = VHEAD(grad + h * n) == 0;
            head = h;
        }
        head = stream ? head : 0;
    }
    if (head > 0)
        few_ce_part(&c, logits, target, row_scale, loss, grad, head, tot, comp, smooth);
    const ptrdiff_t n_blocks = (n_rows - head) / W, done = head + n_blocks * W;
    const T *x0 = logits + head * n;
    const int64_t *t0 = target + head;
    const double *rs0 = row_scale ? row_scale + head : NULL;
    double *l0 = loss ? loss + head : NULL;
    T *g0 = grad ? grad + head * n : NULL;
#define FS_FEW_CE(G, S, ST) few_ce_blocks(&c, x0, t0, rs0, l0, G, n_blocks, tot, comp, S, ST)
    if (!grad)
        smooth ? FS_FEW_CE(NULL, 1, 0) : FS_FEW_CE(NULL, 0, 0);
    else if (stream)
        smooth ? FS_FEW_CE(g0, 1, 1) : FS_FEW_CE(g0, 0, 1);
    else
        smooth ? FS_FEW_CE(g0, 1, 0) : FS_FEW_CE(g0, 0, 0);
#undef FS_FEW_CE
    if (stream)
        VFENCE();
    if (done < n_rows)
        few_ce_part(&c, logits + done * n, target + done, row_scale ? row_scale + done : NULL,
                    loss ? loss + done : NULL, grad ? grad + done * n : NULL, n_rows - done, tot,
                    comp, smooth);
    if (loss_sum) {
        /* the lanes' compensated sums, added up as the row kernels add rows */
        double s = 0.0, err = 0.0, lane[DW], lane_err[DW];
        for (int k = 0; k < FS_FEW_PARTS; k++) {
            DVSTORE(lane, tot[k]);
            DVSTORE(lane_err, comp[k]);
            for (ptrdiff_t l = 0; l < DW; l++) {
                fs_neumaier(&s, &err, lane[l]);
                err += lane_err[l];
            }
        }
        *loss_sum = fs_neumaier_total(s, err);
    }
#endif
}

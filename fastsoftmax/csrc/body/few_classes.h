/*
 * body/few_classes.h -- softmax, log_softmax and class-index cross-entropy
 * of rows of few classes (n <= FS_FEW_CLASSES), vectorised across rows:
 * lane l of the statistics' vectors holds row l of a block of W rows.
 *
 * A row of 10 floats is less than one AVX-512 vector, so a kernel that
 * walks one row at a time spends its time on masked tails and horizontal
 * reductions.  Here a block of W rows -- W n contiguous elements, exactly n
 * vectors -- is read column by column with gathers (lane l of column j is
 * x[l n + j]); the maximum, the exps, the sum and the reciprocal are then
 * lane-wise, with no horizontal step.  The output pass reads the block
 * again in row order and moves each row's constants (m, 1/s or log s) to
 * its elements' lanes with one permute each (VPERM): an exp more per
 * element, but cheaper than gathering the results back (measured), and
 * the output leaves as n full vectors (whole cache lines on AVX-512).
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
 * The indices of a block of rows of n classes.  col[l] = l n gathers column
 * j of the block from x + j.  sel[k W + l] = (k W + l) / n is the row of
 * element k W + l of the block, the lane whose statistics it takes.
 */
static inline void few_indices(int32_t *col, int32_t *sel, ptrdiff_t n)
{
    for (ptrdiff_t l = 0; l < W; l++)
        col[l] = (int32_t)(l * n);
    for (ptrdiff_t i = 0; i < n * W; i++)
        sel[i] = (int32_t)(i / n);
}

/* The block's n vectors to an L1 copy, read there by the gathers and the output pass. */
static FS_TARGET inline __attribute__((always_inline)) void few_load(const T *x, T *xs, ptrdiff_t n)
{
    for (ptrdiff_t k = 0; k < n; k++)
        VSTORE(xs + k * W, VLOAD(x + k * W));
}

static FS_TARGET inline __attribute__((always_inline)) void few_store(T *y, ptrdiff_t k, V v,
                                                                      int stream)
{
    if (stream)
        VSTREAM(y + k * W, v);
    else
        VSTORE(y + k * W, v);
}

/*
 * One block of W rows of n classes: x and y point at W n contiguous
 * elements; xs and t are the block's scratch.  `log` and `stream` are
 * constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void few_block(const T *x, T *y, ptrdiff_t n,
                                                                      const int32_t *col,
                                                                      const int32_t *sel, T *xs,
                                                                      T *t, int log, int stream)
{
    few_load(x, xs, n);
    V m = VSET((T)-INFINITY), nan = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V c = VGATHER(xs + j, col);
        VSTORE(t + j * W, c);
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
        /* in row order: (x - m) - log(s), the shift exact for the largest entries */
        for (ptrdiff_t k = 0; k < n; k++) {
            const int32_t *rk = sel + k * W;
            const V out = VSUB(VSUB(VLOAD(xs + k * W), VPERM(m, rk)), VPERM(ls, rk));
            few_store(y, k, VNAN_APPLY(out, VPERM(nan, rk)), stream);
        }
        return;
    }
    /* two accumulators: half the dependency chain, and a better sum */
    V s0 = VSET((T)0), s1 = VSET((T)0);
    ptrdiff_t j = 0;
    for (; j + 2 <= n; j += 2) {
        s0 = VADD(s0, VEXP(VSUB(VLOAD(t + j * W), m)));
        s1 = VADD(s1, VEXP(VSUB(VLOAD(t + (j + 1) * W), m)));
    }
    if (j < n)
        s0 = VADD(s0, VEXP(VSUB(VLOAD(t + j * W), m)));
    const V inv = VDIV(VSET((T)1), VADD(s0, s1));
    /*
     * In row order, each element with its row's m and 1 / s moved to its
     * lane: one exp more per element, but no transpose back.
     */
    for (ptrdiff_t k = 0; k < n; k++) {
        const int32_t *rk = sel + k * W;
        const V e = VEXP(VSUB(VLOAD(xs + k * W), VPERM(m, rk)));
        few_store(y, k, VMUL(e, VPERM(inv, rk)), stream);
    }
}

/* The blocks of [0, n_rows - n_rows % W); `log` and `stream` constant after inlining. */
static FS_TARGET inline __attribute__((always_inline)) void
few_blocks(const T *x, T *y, ptrdiff_t n_blocks, ptrdiff_t n, const int32_t *col,
           const int32_t *sel, T *xs, T *t, int log, int stream)
{
    for (ptrdiff_t b = 0; b < n_blocks; b++)
        few_block(x + b * W * n, y + b * W * n, n, col, sel, xs, t, log, stream);
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
    int32_t col[W], sel[FS_FEW_SCRATCH];
    T xs[FS_FEW_SCRATCH], t[FS_FEW_SCRATCH];
    few_indices(col, sel, n);
    const ptrdiff_t n_blocks = n_rows / W, done = n_blocks * W * n;
    const int log = flags & FS_FLAG_LOG;
    /* every block starts a whole number of vectors after y */
    const int stream = (flags & FS_FLAG_STREAM) && VHEAD(y) == 0;
    if (log && stream)
        few_blocks(x, y, n_blocks, n, col, sel, xs, t, 1, 1);
    else if (log)
        few_blocks(x, y, n_blocks, n, col, sel, xs, t, 1, 0);
    else if (stream)
        few_blocks(x, y, n_blocks, n, col, sel, xs, t, 0, 1);
    else
        few_blocks(x, y, n_blocks, n, col, sel, xs, t, 0, 0);
    if (stream)
        VFENCE();
    if (n_rows % W != 0) {
        /* the last rows, zero-padded to a block */
        T xb[FS_FEW_SCRATCH], yb[FS_FEW_SCRATCH];
        const ptrdiff_t len = (n_rows % W) * n;
        memset(xb, 0, sizeof(xb));
        memcpy(xb, x + done, (size_t)len * sizeof(T));
        if (log)
            few_block(xb, yb, n, col, sel, xs, t, 1, 0);
        else
            few_block(xb, yb, n, col, sel, xs, t, 0, 0);
        memcpy(y + done, yb, (size_t)len * sizeof(T));
    }
#endif
}

/* ------------------------------------------------------- cross-entropy -- */

/*
 * What every block of one cross_entropy_few_rows call shares: the options,
 * the gathers' indices, the class (cls) and class factor (u: the weight,
 * or 1) of each element position of a block, and the block's scratch.
 */
typedef struct {
    const T *weight;
    const double *row_scale;
    double weight_sum, label_smoothing, scale;
    double *loss, tot, comp;
    ptrdiff_t n;
    int32_t col[W], sel[FS_FEW_SCRATCH];
    T cls[FS_FEW_SCRATCH], u[FS_FEW_SCRATCH], xs[FS_FEW_SCRATCH], t[FS_FEW_SCRATCH];
} few_ce_call;

/*
 * One block of W rows (rows <= W of them real) of cross_entropy_rows:
 * logits x and grad g (NULL: the loss alone) at W n contiguous elements,
 * target[0..rows), rows r0.. of the call for loss and row_scale.  Adds the
 * rows' weighted losses to c->tot.  `smooth`, `stream` and whether g is
 * NULL are constants after inlining.
 *
 * Per row (see cross_entropy.h for a, b, e and u), lane by lane in double:
 * with o the exps of the classes other than the target t, s = e_t + o and
 * a p_t - b = (a - b) - a o / s, which does not cancel when p_t is close
 * to 1.  The gradient is cp exp(x_j - m) - cw u_j, gt at the target, 0 on
 * ignored rows (live 0) whatever their logits.
 */
static FS_TARGET inline __attribute__((always_inline)) void
few_ce_block(few_ce_call *c, const T *x, T *g, const int64_t *target, ptrdiff_t rows, ptrdiff_t r0,
             int smooth, int stream)
{
    const ptrdiff_t n = c->n;
    T *xs = c->xs, *t = c->t;
    T tl[W];
    for (ptrdiff_t l = 0; l < W; l++) {
        const int64_t k = l < rows ? target[l] : -1;
        tl[l] = k >= 0 && k < n ? (T)k : (T)-1; /* -1: ignored, matches no class */
    }
    const V tv = VLOAD(tl);
    few_load(x, xs, n);
    V m = VSET((T)-INFINITY), nan = VSET((T)0), xt = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V v = VGATHER(xs + j, c->col);
        VSTORE(t + j * W, v);
        m = VMAX(m, v);
        nan = VNAN_ACC(nan, v, v);
        xt = VSELECT_EQ(xt, v, tv, VSET((T)j)); /* the target's logit, by a compare */
    }
    const V unfinite = VSUB(m, m); /* NaN where m is not finite */
    nan = VNAN_ACC(nan, unfinite, unfinite);
    /* et = the target's exp, o = the other classes', acc = sum u_j (m - x_j) */
    V et = VSET((T)0), o = VSET((T)0), acc = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V v = VLOAD(t + j * W);
        const V e = VEXP(VSUB(v, m));
        et = VSELECT_EQ(et, e, tv, VSET((T)j));
        o = VADD(o, VSELECT_EQ(e, VSET((T)0), tv, VSET((T)j)));
        if (smooth)
            acc = VADD(acc, VMUL(VSET(c->weight ? c->weight[j] : (T)1), VSUB(m, v)));
    }
    /* log(s) = log1p((e_t - 1) + o): exact log1p(o) when the target is a
     * maximum and the loss small, where s rounded near 1 would lose it */
    const V lg = vlog1p(VADD(VSUB(et, VSET((T)1)), o));
    T etl[W], ol[W], al[W], ml[W], xl[W], nl[W], lgl[W], cpl[W], cwl[W], gtl[W], live[W];
    VSTORE(lgl, lg);
    VSTORE(etl, et);
    VSTORE(ol, o);
    VSTORE(al, acc);
    VSTORE(ml, m);
    VSTORE(xl, xt);
    VSTORE(nl, nan);
    const double ef = c->label_smoothing / (double)n;
    for (ptrdiff_t l = 0; l < W; l++) {
        cpl[l] = cwl[l] = gtl[l] = live[l] = 0;
        if (l >= rows)
            continue;
        const ptrdiff_t r = r0 + l;
        if (tl[l] < 0) {
            cross_entropy_put_loss(c->loss, c->row_scale, r, 0.0, &c->tot, &c->comp);
            continue;
        }
        live[l] = 1;
        if (nl[l] != 0) { /* a NaN, +inf or all -inf: NaN, as the row kernels */
            cross_entropy_put_loss(c->loss, c->row_scale, r, NAN, &c->tot, &c->comp);
            cpl[l] = gtl[l] = (T)NAN;
            continue;
        }
        const double wt = c->weight ? (double)c->weight[(ptrdiff_t)tl[l]] : 1.0;
        const double b = (1.0 - c->label_smoothing) * wt, a = b + ef * c->weight_sum;
        const double sum = (double)etl[l] + (double)ol[l];
        const double value = b * ((double)ml[l] - (double)xl[l]) + a * (double)lgl[l] +
                             (smooth ? ef * (double)al[l] : 0.0);
        cross_entropy_put_loss(c->loss, c->row_scale, r, value, &c->tot, &c->comp);
        const double sc = c->row_scale ? c->scale * c->row_scale[r] : c->scale;
        cpl[l] = (T)(sc * a / sum);
        cwl[l] = (T)(sc * ef);
        gtl[l] = (T)(sc * ((a - b) - a * (double)ol[l] / sum - (smooth ? ef * wt : 0.0)));
    }
    if (!g)
        return;
    const V cp = VLOAD(cpl), cw = VLOAD(cwl), gt = VLOAD(gtl), lv = VLOAD(live);
    const V zero = VSET((T)0);
    /* in row order, each element with its row's constants moved to its lane */
    for (ptrdiff_t k = 0; k < n; k++) {
        const int32_t *rk = c->sel + k * W;
        const V e = VEXP(VSUB(VLOAD(xs + k * W), VPERM(m, rk)));
        V gk = VMUL(e, VPERM(cp, rk));
        if (smooth)
            gk = VSUB(gk, VMUL(VLOAD(c->u + k * W), VPERM(cw, rk)));
        gk = VSELECT_EQ(gk, VPERM(gt, rk), VLOAD(c->cls + k * W), VPERM(tv, rk));
        few_store(g, k, VKEEP_LT(gk, zero, VPERM(lv, rk)), stream);
    }
}

/* The full blocks; `smooth`, `stream` and whether grad is NULL constant after inlining. */
static FS_TARGET inline __attribute__((always_inline)) void
few_ce_blocks(few_ce_call *c, const T *logits, const int64_t *target, T *grad, ptrdiff_t n_blocks,
              int smooth, int stream)
{
    const ptrdiff_t n = c->n;
    for (ptrdiff_t b = 0; b < n_blocks; b++)
        few_ce_block(c, logits + b * W * n, grad ? grad + b * W * n : NULL, target + b * W, W,
                     b * W, smooth, stream);
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
    c.weight = weight;
    c.row_scale = row_scale;
    c.weight_sum = weight_sum;
    c.label_smoothing = label_smoothing;
    c.scale = scale;
    c.loss = loss;
    c.tot = c.comp = 0.0;
    c.n = n;
    few_indices(c.col, c.sel, n);
    for (ptrdiff_t i = 0; i < n * W; i++) {
        c.cls[i] = (T)(i % n);
        c.u[i] = weight ? weight[i % n] : (T)1;
    }
    const ptrdiff_t n_blocks = n_rows / W, done = n_blocks * W;
    const int smooth = label_smoothing != 0.0;
    const int stream = grad && (flags & FS_FLAG_STREAM) && VHEAD(grad) == 0;
    if (!grad)
        smooth ? few_ce_blocks(&c, logits, target, NULL, n_blocks, 1, 0)
               : few_ce_blocks(&c, logits, target, NULL, n_blocks, 0, 0);
    else if (stream)
        smooth ? few_ce_blocks(&c, logits, target, grad, n_blocks, 1, 1)
               : few_ce_blocks(&c, logits, target, grad, n_blocks, 0, 1);
    else
        smooth ? few_ce_blocks(&c, logits, target, grad, n_blocks, 1, 0)
               : few_ce_blocks(&c, logits, target, grad, n_blocks, 0, 0);
    if (stream)
        VFENCE();
    if (done < n_rows) {
        /* the last rows, zero-padded to a block */
        T xb[FS_FEW_SCRATCH], gb[FS_FEW_SCRATCH];
        const ptrdiff_t rows = n_rows - done;
        memset(xb, 0, sizeof(xb));
        memcpy(xb, logits + done * n, (size_t)(rows * n) * sizeof(T));
        few_ce_block(&c, xb, grad ? gb : NULL, target + done, rows, done, smooth, 0);
        if (grad)
            memcpy(grad + done * n, gb, (size_t)(rows * n) * sizeof(T));
    }
    if (loss_sum)
        *loss_sum = fs_neumaier_total(c.tot, c.comp);
#endif
}

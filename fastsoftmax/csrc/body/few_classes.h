/*
 * body/few_classes.h -- softmax and log_softmax of rows of few classes
 * (n <= FS_FEW_CLASSES), vectorised across rows: lane l of every vector
 * holds row l of a block of W rows.
 *
 * A row of 10 floats is less than one AVX-512 vector, so a kernel that
 * walks one row at a time spends its time on masked tails and horizontal
 * reductions.  Here a block of W rows -- W n contiguous elements, exactly n
 * vectors -- is read column by column with gathers (lane l of column j is
 * x[l n + j]); the maximum, the exps, the sum and the reciprocal are then
 * lane-wise, with no horizontal step.  The results, kept column by column
 * in an L1 scratch, are gathered back into row order and leave as n full
 * vectors (whole cache lines on AVX-512).  Rows left over when n_rows is
 * not a multiple of W go through a zero-padded copy, so nothing outside
 * the arrays is read or written.
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
 * log(s) of each lane, s = below + (n - less): `below` the sum of the exps
 * of the `less` entries under the row's maximum, the others exactly 1.
 * log1p of all but one of the 1s keeps the small terms when the maximum
 * dominates (log_sumexp in row_stats.h, lane by lane): one log per row.
 */
static FS_TARGET inline V few_log_sum(V below, V less, ptrdiff_t n)
{
    T b[W], k[W];
    VSTORE(b, below);
    VSTORE(k, less);
    for (ptrdiff_t l = 0; l < W; l++)
        b[l] = (T)log1p((double)b[l] + ((double)n - (double)k[l] - 1.0));
    return VLOAD(b);
}

/*
 * The gathers' indices for rows of n classes: col[l] = l n reads column j of
 * a block from x + j; row[k W + l] = j W + r, for the block's element
 * k W + l = r n + j, reads it back in row order from the column scratch.
 */
static inline void few_indices(int32_t *col, int32_t *row, ptrdiff_t n)
{
    for (ptrdiff_t l = 0; l < W; l++)
        col[l] = (int32_t)(l * n);
    for (ptrdiff_t r = 0; r < W; r++)
        for (ptrdiff_t j = 0; j < n; j++)
            row[r * n + j] = (int32_t)(j * W + r);
}

/* t[j W + l] = softmax of lane l's row, m its maximum; in place. */
static FS_TARGET inline __attribute__((always_inline)) void few_softmax_lanes(T *t, ptrdiff_t n,
                                                                              V m)
{
    /* two accumulators: half the dependency chain, and a better sum */
    V s0 = VSET((T)0), s1 = VSET((T)0);
    ptrdiff_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const V e0 = VEXP(VSUB(VLOAD(t + j * W), m));
        const V e1 = VEXP(VSUB(VLOAD(t + (j + 1) * W), m));
        s0 = VADD(s0, e0);
        s1 = VADD(s1, e1);
        VSTORE(t + j * W, e0);
        VSTORE(t + (j + 1) * W, e1);
    }
    if (j < n) {
        const V e0 = VEXP(VSUB(VLOAD(t + j * W), m));
        s0 = VADD(s0, e0);
        VSTORE(t + j * W, e0);
    }
    const V inv = VDIV(VSET((T)1), VADD(s0, s1));
    for (j = 0; j < n; j++)
        VSTORE(t + j * W, VMUL(VLOAD(t + j * W), inv));
}

/*
 * One block of W rows of n classes: x and y point at W n contiguous
 * elements.  col[l] = l n (the column gather), row[k W + l] = j W + r for
 * element k W + l = r n + j of the block (the gather back into row
 * order); t is the block's scratch.  `log` and `stream` are constants
 * after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void few_block(const T *x, T *y, ptrdiff_t n,
                                                                      const int32_t *col,
                                                                      const int32_t *row, T *t,
                                                                      int log, int stream)
{
    V m = VSET((T)-INFINITY), nan = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V c = VGATHER(x + j, col);
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
        /* (x - m) - log(s): the shift is exact for the largest entries */
        const V ls = few_log_sum(below, less, n);
        nan = VNAN_ACC(nan, unfinite, unfinite);
        for (ptrdiff_t j = 0; j < n; j++)
            VSTORE(t + j * W, VNAN_APPLY(VSUB(VSUB(VLOAD(t + j * W), m), ls), nan));
    } else {
        few_softmax_lanes(t, n, m);
    }
    for (ptrdiff_t k = 0; k < n; k++) {
        const V out = VGATHER(t, row + k * W);
        if (stream)
            VSTREAM(y + k * W, out);
        else
            VSTORE(y + k * W, out);
    }
}

/* The blocks of [0, n_rows - n_rows % W); `log` and `stream` constant after inlining. */
static FS_TARGET inline __attribute__((always_inline)) void
few_blocks(const T *x, T *y, ptrdiff_t n_blocks, ptrdiff_t n, const int32_t *col,
           const int32_t *row, T *t, int log, int stream)
{
    for (ptrdiff_t b = 0; b < n_blocks; b++)
        few_block(x + b * W * n, y + b * W * n, n, col, row, t, log, stream);
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
    int32_t col[W], row[FS_FEW_SCRATCH];
    T t[FS_FEW_SCRATCH];
    few_indices(col, row, n);
    const ptrdiff_t n_blocks = n_rows / W, done = n_blocks * W * n;
    const int log = flags & FS_FLAG_LOG;
    /* every block starts a whole number of vectors after y */
    const int stream = (flags & FS_FLAG_STREAM) && VHEAD(y) == 0;
    if (log && stream)
        few_blocks(x, y, n_blocks, n, col, row, t, 1, 1);
    else if (log)
        few_blocks(x, y, n_blocks, n, col, row, t, 1, 0);
    else if (stream)
        few_blocks(x, y, n_blocks, n, col, row, t, 0, 1);
    else
        few_blocks(x, y, n_blocks, n, col, row, t, 0, 0);
    if (stream)
        VFENCE();
    if (n_rows % W != 0) {
        /* the last rows, zero-padded to a block */
        T xb[FS_FEW_SCRATCH], yb[FS_FEW_SCRATCH];
        const ptrdiff_t len = (n_rows % W) * n;
        memset(xb, 0, sizeof(xb));
        memcpy(xb, x + done, (size_t)len * sizeof(T));
        if (log)
            few_block(xb, yb, n, col, row, t, 1, 0);
        else
            few_block(xb, yb, n, col, row, t, 0, 0);
        memcpy(y + done, yb, (size_t)len * sizeof(T));
    }
#endif
}

/* ------------------------------------------------------- cross-entropy -- */

/*
 * The per-row constants of one block's gradient, lane by lane, in double
 * (see cross_entropy.h for a, b, e and u).  With o = s - p_t s the exps of
 * the other classes, a p_t - b = (a - b) - a o / s: no cancellation when
 * p_t is close to 1.  cp multiplies exp(x_j - m), cw the class factor u_j,
 * gt is the target's entry, live is 0 on ignored rows (gradient 0).
 */
typedef struct {
    T cp[W], cw[W], gt[W], live[W];
} few_ce_lanes;

/*
 * One block of W rows (rows <= W of them real) of cross_entropy_rows:
 * logits x and grad g (NULL: the loss alone) at W n contiguous elements,
 * target[0..rows), rows r0.. of the call for loss and row_scale; t the
 * block's scratch.  Adds the rows' weighted losses to (tot, comp).
 * `smooth` and whether g is NULL are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
few_ce_block(const T *x, T *g, const int64_t *target, ptrdiff_t rows, ptrdiff_t r0, const T *weight,
             double weight_sum, double label_smoothing, const double *row_scale, double scale,
             double *loss, ptrdiff_t n, const int32_t *col, const int32_t *row, T *t, int smooth,
             int stream, double *tot, double *comp)
{
    T tl[W];
    for (ptrdiff_t l = 0; l < W; l++) {
        const int64_t k = l < rows ? target[l] : -1;
        tl[l] = k >= 0 && k < n ? (T)k : (T)-1; /* -1: ignored, matches no class */
    }
    const V tv = VLOAD(tl);
    V m = VSET((T)-INFINITY), nan = VSET((T)0), xt = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V c = VGATHER(x + j, col);
        VSTORE(t + j * W, c);
        m = VMAX(m, c);
        nan = VNAN_ACC(nan, c, c);
        xt = VSELECT_EQ(xt, c, tv, VSET((T)j)); /* the target's logit, by a compare */
    }
    const V unfinite = VSUB(m, m); /* NaN where m is not finite */
    nan = VNAN_ACC(nan, unfinite, unfinite);
    /* et = the target's exp, o = the other classes', acc = sum u_j (m - x_j) */
    V et = VSET((T)0), o = VSET((T)0), acc = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        const V c = VLOAD(t + j * W);
        const V e = VEXP(VSUB(c, m));
        et = VSELECT_EQ(et, e, tv, VSET((T)j));
        o = VADD(o, VSELECT_EQ(e, VSET((T)0), tv, VSET((T)j)));
        if (smooth)
            acc = VADD(acc, VMUL(VSET(weight ? weight[j] : (T)1), VSUB(m, c)));
        if (g)
            VSTORE(t + j * W, e);
    }
    T etl[W], ol[W], al[W], ml[W], xl[W], nl[W];
    VSTORE(etl, et);
    VSTORE(ol, o);
    VSTORE(al, acc);
    VSTORE(ml, m);
    VSTORE(xl, xt);
    VSTORE(nl, nan);
    few_ce_lanes k;
    const double ef = label_smoothing / (double)n;
    for (ptrdiff_t l = 0; l < W; l++) {
        k.cp[l] = k.cw[l] = k.gt[l] = k.live[l] = 0;
        if (l >= rows)
            continue;
        const ptrdiff_t r = r0 + l;
        if (tl[l] < 0) {
            cross_entropy_put_loss(loss, row_scale, r, 0.0, tot, comp);
            continue;
        }
        k.live[l] = 1;
        if (nl[l] != 0) { /* a NaN, +inf or all -inf: NaN, as the row kernels */
            cross_entropy_put_loss(loss, row_scale, r, NAN, tot, comp);
            k.cp[l] = k.gt[l] = (T)NAN;
            continue;
        }
        const double wt = weight ? (double)weight[(ptrdiff_t)tl[l]] : 1.0;
        const double b = (1.0 - label_smoothing) * wt, a = b + ef * weight_sum;
        /* s = e_t + o in double; log1p(o) when the target is a maximum (e_t = 1):
         * the loss is then small, and s rounded near 1 would lose it */
        const double sum = (double)etl[l] + (double)ol[l];
        const double lg = etl[l] == (T)1 ? log1p((double)ol[l]) : log(sum);
        const double value =
            b * ((double)ml[l] - (double)xl[l]) + a * lg + (smooth ? ef * (double)al[l] : 0.0);
        cross_entropy_put_loss(loss, row_scale, r, value, tot, comp);
        const double sc = row_scale ? scale * row_scale[r] : scale;
        k.cp[l] = (T)(sc * a / sum);
        k.cw[l] = (T)(sc * ef);
        k.gt[l] = (T)(sc * ((a - b) - a * (double)ol[l] / sum - (smooth ? ef * wt : 0.0)));
    }
    if (!g)
        return;
    const V cp = VLOAD(k.cp), cw = VLOAD(k.cw), gt = VLOAD(k.gt), live = VLOAD(k.live);
    const V zero = VSET((T)0);
    for (ptrdiff_t j = 0; j < n; j++) {
        V gj = VMUL(VLOAD(t + j * W), cp);
        if (smooth)
            gj = VSUB(gj, VMUL(VSET(weight ? weight[j] : (T)1), cw));
        /* the target's entry; ignored rows exactly 0, whatever their logits */
        VSTORE(t + j * W, VKEEP_LT(VSELECT_EQ(gj, gt, tv, VSET((T)j)), zero, live));
    }
    for (ptrdiff_t kk = 0; kk < n; kk++) {
        const V out = VGATHER(t, row + kk * W);
        if (stream)
            VSTREAM(g + kk * W, out);
        else
            VSTORE(g + kk * W, out);
    }
}

/* The full blocks; `smooth`, `stream` and whether grad is NULL constant after inlining. */
static FS_TARGET inline __attribute__((always_inline)) void
few_ce_blocks(const T *logits, const int64_t *target, const T *weight, double weight_sum,
              double label_smoothing, const double *row_scale, double scale, double *loss, T *grad,
              ptrdiff_t n_blocks, ptrdiff_t n, const int32_t *col, const int32_t *row, T *t,
              int smooth, int stream, double *tot, double *comp)
{
    for (ptrdiff_t b = 0; b < n_blocks; b++)
        few_ce_block(logits + b * W * n, grad ? grad + b * W * n : NULL, target + b * W, W, b * W,
                     weight, weight_sum, label_smoothing, row_scale, scale, loss, n, col, row, t,
                     smooth, stream, tot, comp);
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
    int32_t col[W], row[FS_FEW_SCRATCH];
    T t[FS_FEW_SCRATCH];
    few_indices(col, row, n);
    const ptrdiff_t n_blocks = n_rows / W, done = n_blocks * W;
    const int smooth = label_smoothing != 0.0;
    const int stream = grad && (flags & FS_FLAG_STREAM) && VHEAD(grad) == 0;
    double tot = 0.0, comp = 0.0;
#define FS_FEW_CE(G, SMOOTH, STREAM)                                                               \
    few_ce_blocks(logits, target, weight, weight_sum, label_smoothing, row_scale, scale, loss, G,  \
                  n_blocks, n, col, row, t, SMOOTH, STREAM, &tot, &comp)
    if (!grad)
        smooth ? FS_FEW_CE(NULL, 1, 0) : FS_FEW_CE(NULL, 0, 0);
    else if (stream)
        smooth ? FS_FEW_CE(grad, 1, 1) : FS_FEW_CE(grad, 0, 1);
    else
        smooth ? FS_FEW_CE(grad, 1, 0) : FS_FEW_CE(grad, 0, 0);
#undef FS_FEW_CE
    if (stream)
        VFENCE();
    if (done < n_rows) {
        /* the last rows, zero-padded to a block */
        T xb[FS_FEW_SCRATCH], gb[FS_FEW_SCRATCH];
        const ptrdiff_t rows = n_rows - done;
        memset(xb, 0, sizeof(xb));
        memcpy(xb, logits + done * n, (size_t)(rows * n) * sizeof(T));
        few_ce_block(xb, grad ? gb : NULL, target + done, rows, done, weight, weight_sum,
                     label_smoothing, row_scale, scale, loss, n, col, row, t, smooth, 0, &tot,
                     &comp);
        if (grad)
            memcpy(grad + done * n, gb, (size_t)(rows * n) * sizeof(T));
    }
    if (loss_sum)
        *loss_sum = fs_neumaier_total(tot, comp);
#endif
}

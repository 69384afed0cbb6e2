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
    for (ptrdiff_t l = 0; l < W; l++)
        col[l] = (int32_t)(l * n);
    for (ptrdiff_t r = 0; r < W; r++)
        for (ptrdiff_t j = 0; j < n; j++)
            row[r * n + j] = (int32_t)(j * W + r);
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

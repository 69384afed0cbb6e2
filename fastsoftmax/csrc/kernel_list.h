/*
 * kernel_list.h -- THE list of kernels: one line per kernel, its arguments
 * written once, FS_T standing for the element type (float or double).
 *
 * Expanded by fastsoftmax.h (the table types fs_kernels_f32/_f64 that the
 * dispatch pointers fs_f32/fs_f64 point at), by kernels.h (each ISA x dtype
 * unit's table of its own static kernels) and by gen_pxd.py (the Cython
 * declarations in ../_csrc.pxd).  Adding a kernel: one line here, its body
 * in body/, a loop in _loops.pyx (see docs/developer.rst).
 *
 * Every kernel works on one block of the (outer, n, inner) layout that the
 * Python layer reduces any axis to:
 *   *_rows: `n_rows` contiguous rows of length `n` (the inner == 1 case);
 *   *_cols: one tile of `width` adjacent columns of a block whose reduction
 *           axis has length `n` and stride `stride` (the inner > 1 case),
 *           vectorised along the columns; width <= FS_MAX_TILE.
 * `flags` holds FS_FLAG_* bits.  `work` is NULL or a per-thread scratch row
 * of n elements (used for rows of at most FS_ROW_CACHE_BYTES when
 * streaming, so that the output is written only once).
 *
 *   softmax_*:          y = softmax(x), or log_softmax with FS_FLAG_LOG
 *   logsumexp_*:        out[r] = logsumexp(x[r, :])
 *   softmax_backward_*: dx = y * (dy - sum(dy * y)), or with FS_FLAG_LOG
 *                       dx = dy - exp(y) * sum(dy)
 *   cross_entropy_rows: class-index targets; target[r] outside [0, n) is an
 *                       ignored row (loss 0, gradient 0, never read).
 *                       weight (per class) may be NULL; weight_sum is
 *                       sum(weight), or n without weights.  loss[r] gets row
 *                       r's own loss (class weight and label smoothing
 *                       applied as PyTorch), grad its gradient times
 *                       scale * (row_scale ? row_scale[r] : 1); *loss_sum
 *                       the sum of the losses times row_scale.  loss,
 *                       loss_sum and grad may each be NULL (no grad: the
 *                       loss alone, the logits only read).
 *   cross_entropy_probs_rows: class-probability targets, laid out like logits.
 *   softmax_masked_rows, logsumexp_masked_rows: softmax_rows and
 *                       logsumexp_rows under a where= mask of one byte per
 *                       element (non-zero: take part), row r's at
 *                       mask + r * mask_stride (0: one mask row for all).
 *   cross_entropy_cols: the same for a tile of `width` samples whose n classes
 *                       lie `stride` apart (class axis not last): target
 *                       (class indices) or target_probs (laid out like the
 *                       logits, target NULL); row_scale, loss and target
 *                       per sample; grad laid out like the logits
 *                       (FS_FLAG_STREAM: its whole aligned lines streamed);
 *                       work NULL or FS_ROW_CACHE_BYTES of scratch for a
 *                       copy of the tile (else read in place, the exps
 *                       computed twice).
 *   exp_array:          y = exp(x) elementwise (the accuracy tests' hook)
 *   softmax_few_rows:   softmax_rows for n <= FS_FEW_CLASSES, one row per
 *                       vector lane (the scalar path: softmax_rows itself)
 *   cross_entropy_few_rows: cross_entropy_rows for n <= FS_FEW_CLASSES, the
 *                       same way
 *   add_rows:           y[r * y_stride + i] += x[r * x_stride + i] over n_rows
 *                       rows of n; a stride of 0 repeats one row (a bias onto
 *                       rows of logits, gradient rows into column sums)
 *   row_parts_stats:    a row longer than FS_ROW_CACHE_BYTES shared between
 *                       threads, in parts of FS_PART_BYTES from its start:
 *                       stats[3p..3p+3) = part p's maximum, sum of
 *                       exp(x - maximum) and minimum, for p in [p0, p1)
 *   row_parts_below:    stats[2p..2p+2) = part p's sum of exp(x - m) over
 *                       its entries below the row's finite maximum m, and
 *                       its count of entries equal to m (log_softmax and
 *                       logsumexp when the row's sum of exps is below 2)
 *   row_parts_fold:     out = the row's (maximum, sum, minimum) from n_parts
 *                       parts' stats, or (below) its (below, equal) totals,
 *                       folded as a row on one thread folds them
 *   logsumexp_weighted_rows: each row's (m, k, s) for logsumexp with weights
 *                       b laid out like x: m the largest x of weight not 0, k
 *                       the sum of the weights at m, s the sum of
 *                       b exp(x - m) over the other entries (weight 0: left out)
 *   softmax_row_part:   a stretch of the row's output from its maximum m,
 *                       minimum lo and f = 1 / sum (softmax) or log(sum)
 *                       (FS_FLAG_LOG); NaN throughout when m is not finite
 */
#define FS_KERNELS(X)                                                                              \
    X(softmax_rows,                                                                                \
      (const FS_T *x, FS_T *y, FS_T *work, ptrdiff_t n_rows, ptrdiff_t n, int flags))              \
    X(softmax_cols,                                                                                \
      (const FS_T *x, FS_T *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags))         \
    X(logsumexp_rows, (const FS_T *x, FS_T *out, ptrdiff_t n_rows, ptrdiff_t n))                   \
    X(logsumexp_cols, (const FS_T *x, FS_T *out, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width))  \
    X(softmax_backward_rows,                                                                       \
      (const FS_T *dy, const FS_T *y, FS_T *dx, ptrdiff_t n_rows, ptrdiff_t n, int flags))         \
    X(softmax_backward_cols, (const FS_T *dy, const FS_T *y, FS_T *dx, ptrdiff_t n,                \
                              ptrdiff_t stride, ptrdiff_t width, int flags))                       \
    X(cross_entropy_rows,                                                                          \
      (const FS_T *logits, const int64_t *target, const FS_T *weight, double weight_sum,           \
       double label_smoothing, const double *row_scale, double scale, double *loss,                \
       double *loss_sum, FS_T *grad, FS_T *work, ptrdiff_t n_rows, ptrdiff_t n, int flags))        \
    X(cross_entropy_probs_rows,                                                                    \
      (const FS_T *logits, const FS_T *target_probs, const FS_T *weight, double label_smoothing,   \
       const double *row_scale, double scale, double *loss, double *loss_sum, FS_T *grad,          \
       FS_T *work, ptrdiff_t n_rows, ptrdiff_t n, int flags))                                      \
    X(softmax_masked_rows, (const FS_T *x, const uint8_t *mask, ptrdiff_t mask_stride, FS_T *y,    \
                            FS_T *work, ptrdiff_t n_rows, ptrdiff_t n, int flags))                 \
    X(logsumexp_masked_rows, (const FS_T *x, const uint8_t *mask, ptrdiff_t mask_stride,           \
                              FS_T *out, ptrdiff_t n_rows, ptrdiff_t n))                           \
    X(cross_entropy_cols,                                                                          \
      (const FS_T *logits, const int64_t *target, const FS_T *target_probs, const FS_T *weight,    \
       double weight_sum, double label_smoothing, const double *row_scale, double scale,           \
       double *loss, double *loss_sum, FS_T *grad, FS_T *work, ptrdiff_t n, ptrdiff_t stride,      \
       ptrdiff_t width, int flags))                                                                \
    X(exp_array, (const FS_T *x, FS_T *y, ptrdiff_t n))                                            \
    X(softmax_few_rows, (const FS_T *x, FS_T *y, ptrdiff_t n_rows, ptrdiff_t n, int flags))        \
    X(cross_entropy_few_rows,                                                                      \
      (const FS_T *logits, const int64_t *target, const FS_T *weight, double weight_sum,           \
       double label_smoothing, const double *row_scale, double scale, double *loss,                \
       double *loss_sum, FS_T *grad, ptrdiff_t n_rows, ptrdiff_t n, int flags))                    \
    X(add_rows, (const FS_T *x, ptrdiff_t x_stride, FS_T *y, ptrdiff_t y_stride, ptrdiff_t n_rows, \
                 ptrdiff_t n))                                                                     \
    X(row_parts_stats, (const FS_T *x, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, double *stats))    \
    X(row_parts_below,                                                                             \
      (const FS_T *x, ptrdiff_t n, double m, ptrdiff_t p0, ptrdiff_t p1, double *stats))           \
    X(row_parts_fold, (const double *stats, ptrdiff_t n_parts, int below, double *out))            \
    X(softmax_row_part,                                                                            \
      (const FS_T *x, FS_T *y, ptrdiff_t n, double m, double f, double lo, int flags))             \
    X(logsumexp_weighted_rows,                                                                     \
      (const FS_T *x, const FS_T *b, double *out, ptrdiff_t n_rows, ptrdiff_t n))

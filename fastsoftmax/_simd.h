/*
 * _simd.h -- the C kernels of fastsoftmax.
 *
 * Every kernel works on one block of the (outer, n, inner) layout that the
 * Python layer reduces any axis to:
 *   *_rows: `n_rows` contiguous rows of length `n` (the inner == 1 case);
 *   *_cols: one tile of `width` adjacent columns of a block whose reduction
 *           axis has length `n` and stride `stride` (the inner > 1 case),
 *           vectorised along the columns.
 * The kernels do no validation: the Python layer has checked shapes, dtypes
 * and sizes before they are called.  None of them touches the Python API,
 * so all of them run without the GIL.
 *
 * Each kernel exists as a scalar C variant and an AVX2+FMA variant; one
 * dispatch table, filled by fs_select_isa(), decides which one runs.
 */
#ifndef FASTSOFTMAX_SIMD_H
#define FASTSOFTMAX_SIMD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Instruction-set levels, in increasing order. */
enum { FS_ISA_SCALAR = 0, FS_ISA_AVX2 = 1, FS_ISA_AVX512 = 2 };

/* Widest tile (in columns) a *_cols kernel accepts. */
#define FS_MAX_TILE 512
/*
 * Rows up to this many bytes are processed in passes that re-read the row
 * from cache (L2 holds it); longer rows take the one-pass online max/sum.
 */
#define FS_ROW_CACHE_BYTES 262144

/* Bits of the `flags` argument. */
#define FS_FLAG_LOG 1       /* log_softmax instead of softmax */
#define FS_FLAG_STREAM 2    /* write the output with non-temporal stores */

/* The best level this CPU (and this build) can run. */
int fs_cpu_isa(void);
/* Select the level to use: min(requested, fs_cpu_isa()).  Returns it. */
int fs_select_isa(int requested);
/* The level in use. */
int fs_current_isa(void);
/* The compiler that built the kernels. */
const char *fs_compiler(void);

/*
 * y = softmax(x) (log_softmax with FS_FLAG_LOG) of each row.  `work` is
 * NULL or a scratch row of n elements (used for rows of at most
 * FS_ROW_CACHE_BYTES when streaming, so that y is written only once).
 */
void fs_softmax_rows_f32(const float *x, float *y, float *work, ptrdiff_t n_rows, ptrdiff_t n, int flags);
void fs_softmax_rows_f64(const double *x, double *y, double *work, ptrdiff_t n_rows, ptrdiff_t n, int flags);
void fs_softmax_cols_f32(const float *x, float *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags);
void fs_softmax_cols_f64(const double *x, double *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags);

/* out[r] = logsumexp(x[r, :]). */
void fs_logsumexp_rows_f32(const float *x, float *out, ptrdiff_t n_rows, ptrdiff_t n);
void fs_logsumexp_rows_f64(const double *x, double *out, ptrdiff_t n_rows, ptrdiff_t n);
void fs_logsumexp_cols_f32(const float *x, float *out, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width);
void fs_logsumexp_cols_f64(const double *x, double *out, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width);

/*
 * Vector-Jacobian products, given the forward output y and the upstream
 * gradient dy:
 *   softmax:      dx = y * (dy - sum(dy * y))
 *   log_softmax:  dx = dy - exp(y) * sum(dy)       (with FS_FLAG_LOG)
 */
void fs_softmax_backward_rows_f32(const float *dy, const float *y, float *dx, ptrdiff_t n_rows, ptrdiff_t n, int flags);
void fs_softmax_backward_rows_f64(const double *dy, const double *y, double *dx, ptrdiff_t n_rows, ptrdiff_t n, int flags);
void fs_softmax_backward_cols_f32(const float *dy, const float *y, float *dx, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags);
void fs_softmax_backward_cols_f64(const double *dy, const double *y, double *dx, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags);

/*
 * Fused cross-entropy over n_rows contiguous rows of n logits: loss[r] is
 * row r's loss (class weights and label smoothing eps applied, as PyTorch),
 * g its gradient with respect to the logits times
 * scale * (row_scale ? row_scale[r] : 1), written in the same sweep over
 * the row that computes the loss.  `work` is NULL or a scratch row of n
 * elements: with it, rows of at most FS_ROW_CACHE_BYTES keep their exps
 * there while the gradient is streamed out (each logit costs one exp).
 *   xent_rows: class indices; target[r] outside [0, n) is an ignored row
 *              (loss 0, gradient 0, never read).  weight may be NULL;
 *              w_sum is sum(weight), or n without weights.
 *   xent_soft_rows: class probabilities q, laid out like x.
 */
void fs_xent_rows_f32(const float *x, const int64_t *target, const float *weight, double w_sum,
                      double eps, const double *row_scale, double scale, double *loss, float *g, float *work,
                      ptrdiff_t n_rows, ptrdiff_t n, int flags);
void fs_xent_rows_f64(const double *x, const int64_t *target, const double *weight, double w_sum,
                      double eps, const double *row_scale, double scale, double *loss, double *g, double *work,
                      ptrdiff_t n_rows, ptrdiff_t n, int flags);
void fs_xent_soft_rows_f32(const float *x, const float *q, const float *weight, double eps,
                           const double *row_scale, double scale, double *loss, float *g, float *work,
                           ptrdiff_t n_rows, ptrdiff_t n, int flags);
void fs_xent_soft_rows_f64(const double *x, const double *q, const double *weight, double eps,
                           const double *row_scale, double scale, double *loss, double *g, double *work,
                           ptrdiff_t n_rows, ptrdiff_t n, int flags);

/* y = exp(x) elementwise with the exp of the selected path (for accuracy tests). */
void fs_exp_f32(const float *x, float *y, ptrdiff_t n);
void fs_exp_f64(const double *x, double *y, ptrdiff_t n);

#ifdef __cplusplus
}
#endif

#endif /* FASTSOFTMAX_SIMD_H */

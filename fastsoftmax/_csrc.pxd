# Generated from fastsoftmax/csrc/kernel_list.h by fastsoftmax/csrc/gen_pxd.py:
# do not edit (setup.py regenerates it; tests/test_csrc.py checks it is current).
"""Cython declarations of the C API in csrc/fastsoftmax.h."""

from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uint8_t


cdef extern from "fastsoftmax.h" nogil:
    int FS_ISA_SCALAR, FS_ISA_AVX2, FS_ISA_AVX512
    int FS_MAX_TILE, FS_ROW_CACHE_BYTES, FS_PART_BYTES, FS_FLAG_LOG, FS_FLAG_STREAM
    int FS_FEW_CLASSES
    int fs_cpu_isa()
    int fs_select_isa(int requested)
    int fs_current_isa()
    const char *fs_compiler()
    int fs_pages_resident(const void *p, size_t nbytes)

    ctypedef struct fs_kernels_f32:
        void (*softmax_rows)(const float *x, float *y, float *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*softmax_cols)(const float *x, float *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags) noexcept nogil
        void (*logsumexp_rows)(const float *x, float *out, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil
        void (*logsumexp_cols)(const float *x, float *out, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width) noexcept nogil
        void (*softmax_backward_rows)(const float *dy, const float *y, float *dx, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*softmax_backward_cols)(const float *dy, const float *y, float *dx, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags) noexcept nogil
        void (*cross_entropy_rows)(const float *logits, const int64_t *target, const float *weight, double weight_sum, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, float *grad, float *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*cross_entropy_probs_rows)(const float *logits, const float *target_probs, const float *weight, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, float *grad, float *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*softmax_masked_rows)(const float *x, const uint8_t *mask, ptrdiff_t mask_stride, float *y, float *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*logsumexp_masked_rows)(const float *x, const uint8_t *mask, ptrdiff_t mask_stride, float *out, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil
        void (*cross_entropy_cols)(const float *logits, const int64_t *target, const float *target_probs, const float *weight, double weight_sum, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, float *grad, float *work, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags) noexcept nogil
        void (*exp_array)(const float *x, float *y, ptrdiff_t n) noexcept nogil
        void (*softmax_few_rows)(const float *x, float *y, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*cross_entropy_few_rows)(const float *logits, const int64_t *target, const float *weight, double weight_sum, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, float *grad, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*add_rows)(const float *x, ptrdiff_t x_stride, float *y, ptrdiff_t y_stride, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil
        void (*row_parts_stats)(const float *x, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, double *stats) noexcept nogil
        void (*row_parts_below)(const float *x, ptrdiff_t n, double m, ptrdiff_t p0, ptrdiff_t p1, double *stats) noexcept nogil
        void (*row_parts_fold)(const double *stats, ptrdiff_t n_parts, int below, double *out) noexcept nogil
        void (*softmax_row_part)(const float *x, float *y, ptrdiff_t n, double m, double f, double lo, int flags) noexcept nogil
        void (*logsumexp_weighted_rows)(const float *x, const float *b, double *out, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil

    ctypedef struct fs_kernels_f64:
        void (*softmax_rows)(const double *x, double *y, double *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*softmax_cols)(const double *x, double *y, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags) noexcept nogil
        void (*logsumexp_rows)(const double *x, double *out, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil
        void (*logsumexp_cols)(const double *x, double *out, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width) noexcept nogil
        void (*softmax_backward_rows)(const double *dy, const double *y, double *dx, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*softmax_backward_cols)(const double *dy, const double *y, double *dx, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags) noexcept nogil
        void (*cross_entropy_rows)(const double *logits, const int64_t *target, const double *weight, double weight_sum, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, double *grad, double *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*cross_entropy_probs_rows)(const double *logits, const double *target_probs, const double *weight, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, double *grad, double *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*softmax_masked_rows)(const double *x, const uint8_t *mask, ptrdiff_t mask_stride, double *y, double *work, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*logsumexp_masked_rows)(const double *x, const uint8_t *mask, ptrdiff_t mask_stride, double *out, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil
        void (*cross_entropy_cols)(const double *logits, const int64_t *target, const double *target_probs, const double *weight, double weight_sum, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, double *grad, double *work, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width, int flags) noexcept nogil
        void (*exp_array)(const double *x, double *y, ptrdiff_t n) noexcept nogil
        void (*softmax_few_rows)(const double *x, double *y, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*cross_entropy_few_rows)(const double *logits, const int64_t *target, const double *weight, double weight_sum, double label_smoothing, const double *row_scale, double scale, double *loss, double *loss_sum, double *grad, ptrdiff_t n_rows, ptrdiff_t n, int flags) noexcept nogil
        void (*add_rows)(const double *x, ptrdiff_t x_stride, double *y, ptrdiff_t y_stride, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil
        void (*row_parts_stats)(const double *x, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, double *stats) noexcept nogil
        void (*row_parts_below)(const double *x, ptrdiff_t n, double m, ptrdiff_t p0, ptrdiff_t p1, double *stats) noexcept nogil
        void (*row_parts_fold)(const double *stats, ptrdiff_t n_parts, int below, double *out) noexcept nogil
        void (*softmax_row_part)(const double *x, double *y, ptrdiff_t n, double m, double f, double lo, int flags) noexcept nogil
        void (*logsumexp_weighted_rows)(const double *x, const double *b, double *out, ptrdiff_t n_rows, ptrdiff_t n) noexcept nogil

    const fs_kernels_f32 *fs_f32
    const fs_kernels_f64 *fs_f64

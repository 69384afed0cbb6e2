"""The loop layer: typed memoryview loops that split the work across threads.

Three layers, one job each (see the developer docs):

* the Python modules validate arguments, pick the dtype and thread count,
  and reduce any axis to the ``(outer, n, inner)`` layout of a flat buffer;
* this module runs without the GIL and hands contiguous row ranges
  (``inner == 1``) or column tiles (``inner > 1``) to OpenMP threads;
* the C layer (``csrc/``, declared in ``_csrc.pxd``) computes a row range
  or a tile with SIMD, through the dispatch tables ``fs_f32`` / ``fs_f64``.

There is no validation here: callers pass flat C-contiguous buffers whose
sizes match ``outer * n * inner``.  The Cython directives (no bounds
checks, no wraparound, C division) are set once, in ``setup.py``.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from ._csrc cimport (
    FS_FLAG_LOG, FS_FLAG_STREAM, FS_ISA_AVX2, FS_ISA_AVX512, FS_ISA_SCALAR, FS_MAX_TILE,
    FS_ROW_CACHE_BYTES, fs_compiler, fs_cpu_isa, fs_current_isa, fs_f32, fs_f64, fs_select_isa,
)


cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FS_OPENMP 1
    #else
    #define FS_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    #ifndef FS_BUILD_FLAGS
    #define FS_BUILD_FLAGS ""
    #endif
    """
    int FS_OPENMP
    const char *FS_BUILD_FLAGS
    int omp_get_max_threads() nogil


ISA_SCALAR = FS_ISA_SCALAR
ISA_AVX2 = FS_ISA_AVX2
ISA_AVX512 = FS_ISA_AVX512
MAX_TILE = FS_MAX_TILE
ROW_CACHE_BYTES = FS_ROW_CACHE_BYTES
OPENMP = bool(FS_OPENMP)
BUILD_FLAGS = FS_BUILD_FLAGS.decode()


def cpu_isa():
    """The best instruction-set level this CPU and build can run."""
    return fs_cpu_isa()


def select_isa(int requested):
    """Use min(requested, cpu_isa()) from now on; return the level chosen."""
    return fs_select_isa(requested)


def current_isa():
    return fs_current_isa()


def compiler():
    return fs_compiler().decode()


def omp_max_threads():
    """OpenMP's current thread limit (OMP_NUM_THREADS, threadpoolctl)."""
    return omp_get_max_threads()


cdef inline int _flags(bint log, bint stream) noexcept nogil:
    return (FS_FLAG_LOG if log else 0) | (FS_FLAG_STREAM if stream else 0)


cdef inline Py_ssize_t _first_row(Py_ssize_t n_rows, Py_ssize_t t, Py_ssize_t nt) noexcept nogil:
    """First row of thread t's contiguous share (thread nt ends the range)."""
    return n_rows * t // nt


cdef inline void *_row_scratch(Py_ssize_t nbytes, bint stream) noexcept nogil:
    """A per-thread scratch row, so that a streamed row is written only once
    (NULL when not streaming, or when the row is too long to be kept)."""
    return malloc(nbytes) if stream and nbytes <= FS_ROW_CACHE_BYTES else NULL


def softmax(const floating[::1] x, floating[::1] y, Py_ssize_t outer, Py_ssize_t n,
            Py_ssize_t inner, bint log, int num_threads, bint stream, Py_ssize_t tile):
    """y = softmax(x) (or log_softmax) over the middle axis of (outer, n, inner)."""
    cdef int flags = _flags(log, stream)
    cdef Py_ssize_t t, r0, r1, nt, n_tiles, task, o, j0, base
    cdef floating *work
    if inner == 1:
        nt = min(num_threads, outer)
        with nogil, parallel(num_threads=nt):
            work = <floating *>_row_scratch(n * <Py_ssize_t>sizeof(floating), stream)
            for t in prange(nt, schedule='static'):
                r0 = _first_row(outer, t, nt)
                r1 = _first_row(outer, t + 1, nt)
                if floating is float:
                    fs_f32.softmax_rows(&x[r0 * n], &y[r0 * n], work, r1 - r0, n, flags)
                else:
                    fs_f64.softmax_rows(&x[r0 * n], &y[r0 * n], work, r1 - r0, n, flags)
            free(work)
    else:
        n_tiles = (inner + tile - 1) // tile
        with nogil:
            for task in prange(outer * n_tiles, schedule='static', num_threads=num_threads):
                o = task // n_tiles
                j0 = (task % n_tiles) * tile
                base = o * n * inner + j0
                if floating is float:
                    fs_f32.softmax_cols(&x[base], &y[base], n, inner, min(tile, inner - j0), flags)
                else:
                    fs_f64.softmax_cols(&x[base], &y[base], n, inner, min(tile, inner - j0), flags)


def logsumexp(const floating[::1] x, floating[::1] out, Py_ssize_t outer, Py_ssize_t n,
              Py_ssize_t inner, int num_threads, Py_ssize_t tile):
    """out = logsumexp(x) over the middle axis; out has outer * inner elements."""
    cdef Py_ssize_t t, r0, r1, nt, n_tiles, task, o, j0
    if inner == 1:
        nt = min(num_threads, outer)
        with nogil:
            for t in prange(nt, schedule='static', num_threads=nt):
                r0 = _first_row(outer, t, nt)
                r1 = _first_row(outer, t + 1, nt)
                if floating is float:
                    fs_f32.logsumexp_rows(&x[r0 * n], &out[r0], r1 - r0, n)
                else:
                    fs_f64.logsumexp_rows(&x[r0 * n], &out[r0], r1 - r0, n)
    else:
        n_tiles = (inner + tile - 1) // tile
        with nogil:
            for task in prange(outer * n_tiles, schedule='static', num_threads=num_threads):
                o = task // n_tiles
                j0 = (task % n_tiles) * tile
                if floating is float:
                    fs_f32.logsumexp_cols(&x[o * n * inner + j0], &out[o * inner + j0], n, inner,
                                          min(tile, inner - j0))
                else:
                    fs_f64.logsumexp_cols(&x[o * n * inner + j0], &out[o * inner + j0], n, inner,
                                          min(tile, inner - j0))


def softmax_backward(const floating[::1] dy, const floating[::1] y, floating[::1] dx,
                     Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner, bint log,
                     int num_threads, bint stream, Py_ssize_t tile):
    """dx = the vector-Jacobian product of softmax (or log_softmax) at output y."""
    cdef int flags = _flags(log, stream)
    cdef Py_ssize_t t, r0, r1, nt, n_tiles, task, o, j0, base
    if inner == 1:
        nt = min(num_threads, outer)
        with nogil:
            for t in prange(nt, schedule='static', num_threads=nt):
                r0 = _first_row(outer, t, nt)
                r1 = _first_row(outer, t + 1, nt)
                if floating is float:
                    fs_f32.softmax_backward_rows(&dy[r0 * n], &y[r0 * n], &dx[r0 * n], r1 - r0, n, flags)
                else:
                    fs_f64.softmax_backward_rows(&dy[r0 * n], &y[r0 * n], &dx[r0 * n], r1 - r0, n, flags)
    else:
        n_tiles = (inner + tile - 1) // tile
        with nogil:
            for task in prange(outer * n_tiles, schedule='static', num_threads=num_threads):
                o = task // n_tiles
                j0 = (task % n_tiles) * tile
                base = o * n * inner + j0
                if floating is float:
                    fs_f32.softmax_backward_cols(&dy[base], &y[base], &dx[base], n, inner,
                                                 min(tile, inner - j0), flags)
                else:
                    fs_f64.softmax_backward_cols(&dy[base], &y[base], &dx[base], n, inner,
                                                 min(tile, inner - j0), flags)


def cross_entropy(const floating[::1] logits, const int64_t[::1] target,
                  const floating[::1] target_probs, const floating[::1] weight,
                  double weight_sum, double label_smoothing,
                  const double[::1] row_scale, double scale, double[::1] loss,
                  floating[::1] grad, Py_ssize_t n_rows, Py_ssize_t n, int num_threads, bint stream):
    """Fused cross-entropy of n_rows contiguous rows of n logits.

    Either ``target`` (class indices, one per row; outside [0, n) means
    ignored) or ``target_probs`` (probabilities shaped like ``logits``) is
    given, the other is None.  ``weight_sum`` is ``sum(weight)`` (n without
    weights).  ``weight`` and ``row_scale`` may be None.  Writes the
    rows' own losses to ``loss`` and the gradient, scaled by
    ``scale * row_scale[r]``, to ``grad``.
    """
    cdef int flags = _flags(False, stream)
    cdef Py_ssize_t t, r0, r1, nt
    cdef const int64_t *tp = NULL if target is None else &target[0]
    cdef const floating *qp = NULL if target_probs is None else &target_probs[0]
    cdef const floating *wp = NULL if weight is None else &weight[0]
    cdef const double *sp = NULL if row_scale is None else &row_scale[0]
    cdef floating *work
    nt = min(num_threads, n_rows)
    with nogil, parallel(num_threads=nt):
        # the scratch row keeps the exps while the gradient is streamed
        work = <floating *>_row_scratch(n * <Py_ssize_t>sizeof(floating), stream)
        for t in prange(nt, schedule='static'):
            r0 = _first_row(n_rows, t, nt)
            r1 = _first_row(n_rows, t + 1, nt)
            if qp == NULL:
                if floating is float:
                    fs_f32.cross_entropy_rows(&logits[r0 * n], tp + r0, wp, weight_sum, label_smoothing,
                                     NULL if sp == NULL else sp + r0, scale, &loss[r0],
                                     &grad[r0 * n], work, r1 - r0, n, flags)
                else:
                    fs_f64.cross_entropy_rows(&logits[r0 * n], tp + r0, wp, weight_sum, label_smoothing,
                                     NULL if sp == NULL else sp + r0, scale, &loss[r0],
                                     &grad[r0 * n], work, r1 - r0, n, flags)
            else:
                if floating is float:
                    fs_f32.cross_entropy_probs_rows(&logits[r0 * n], qp + r0 * n, wp, label_smoothing,
                                          NULL if sp == NULL else sp + r0, scale, &loss[r0],
                                          &grad[r0 * n], work, r1 - r0, n, flags)
                else:
                    fs_f64.cross_entropy_probs_rows(&logits[r0 * n], qp + r0 * n, wp, label_smoothing,
                                          NULL if sp == NULL else sp + r0, scale, &loss[r0],
                                          &grad[r0 * n], work, r1 - r0, n, flags)
        free(work)


def exp(const floating[::1] x, floating[::1] y):
    """y = exp(x) with the exp of the selected SIMD path (for accuracy tests)."""
    with nogil:
        if floating is float:
            fs_f32.exp_array(&x[0], &y[0], x.shape[0])
        else:
            fs_f64.exp_array(&x[0], &y[0], x.shape[0])

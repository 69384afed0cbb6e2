"""The loop layer: typed memoryview loops that split the work across threads.

Three layers, one job each (see the developer docs):

* the Python modules validate arguments, pick the dtype and thread count,
  and reduce any axis to the ``(outer, n, inner)`` layout of a flat buffer;
* this module runs without the GIL and hands contiguous row ranges
  (``inner == 1``) or column tiles (``inner > 1``) to OpenMP threads;
  a one-thread call runs on the calling thread and opens no OpenMP region
  (so it also works in a child process forked after a parallel call);
* the C layer (``csrc/``, declared in ``_csrc.pxd``) computes a row range
  or a tile with SIMD, through the dispatch tables ``fs_f32`` / ``fs_f64``.

There is no validation here: callers pass flat C-contiguous buffers whose
sizes match ``outer * n * inner``.  The one exception is the entries of
small calls at the end (``softmax_small``, ...), which take a public
function's own arguments: they do not validate either, they only tell the
common call (which they run) from any other (None: the Python layer then
checks it).  The Cython directives (no bounds checks, no wraparound, C
division) are set once, in ``setup.py``.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t, uint64_t
from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_SIMPLE, PyBUF_STRIDES, PyBUF_WRITABLE,
    PyBuffer_Release, PyObject_GetBuffer,
)
from cpython.exc cimport PyErr_CheckSignals
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.math cimport INFINITY, NAN, exp as c_exp, log as c_log, log1p
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from ._csrc cimport (
    FS_FLAG_LOG, FS_FLAG_STREAM, FS_ISA_AVX2, FS_ISA_AVX512, FS_ISA_SCALAR, FS_MAX_TILE,
    FS_ROW_CACHE_BYTES, FS_PART_BYTES, FS_FEW_CLASSES, fs_compiler, fs_cpu_isa, fs_current_isa, fs_f32, fs_f64, fs_pages_resident,
    fs_select_isa,
)

import numpy as np


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
PART_BYTES = FS_PART_BYTES
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
    return fs_compiler().decode().strip()  # clang's version string ends in a space


def pages_resident(size_t address, size_t nbytes):
    """1 if the page at the middle of the ``nbytes`` at ``address`` is in
    memory, 0 if it is not (a buffer fresh from the OS), -1 if unknown."""
    return fs_pages_resident(<const void *>address, nbytes)


def omp_max_threads():
    """OpenMP's current thread limit (OMP_NUM_THREADS, threadpoolctl)."""
    return omp_get_max_threads()


def copy_bytes(const unsigned char[::1] src, unsigned char[::1] dst, int num_threads):
    """``dst[:] = src[:]`` in blocks of 1 MiB shared over ``num_threads``
    threads.  Bytes, so neither side needs any alignment: this is how an
    unaligned input reaches the kernels (a buffer unpickled from another
    process may start at any byte) at the cost of a parallel copy rather
    than NumPy's one-thread one."""
    cdef Py_ssize_t n = src.shape[0], block = 1 << 20, b, start
    if dst.shape[0] != n:
        raise ValueError(f"copy_bytes: {n} bytes into {dst.shape[0]}")
    if n == 0:
        return
    cdef Py_ssize_t blocks = (n + block - 1) // block
    if num_threads < 2 or blocks < 2:
        with nogil:
            memcpy(&dst[0], &src[0], n)
        return
    for b in prange(blocks, nogil=True, num_threads=num_threads, schedule="static"):
        start = b * block
        memcpy(&dst[start], &src[start], min(block, n - start))



cdef struct Call:
    # One call's arguments, shared read-only by its threads.  a, b and out
    # point at flat C-contiguous buffers of float (f64 false) or double.
    bint f64
    int flags
    const void *a               # x, dy or logits
    const void *b               # y (backward) or target_probs (cross-entropy)
    void *out                   # y, out, dx or grad (cross-entropy: NULL for the loss alone)
    Py_ssize_t outer, n, inner, tile
    # cross-entropy only
    const int64_t *target
    const void *weight
    const double *row_scale
    double weight_sum, label_smoothing, scale
    double *loss                # each row's loss, or NULL
    double *loss_part           # each thread's weighted loss total
    # linear heads only (_head_part): the bias added to each row of logits
    # before the loss, and each thread's column sums of the gradient (thread
    # t's n at grad_bias + t * n); either may be NULL
    const void *bias
    void *grad_bias
    # masked rows only: row r's mask bytes start at mask + sum(i_d * mask_strides[d]),
    # (i_0, i_1, i_2) the digits of r in the radices mask_dims
    const uint8_t *mask
    Py_ssize_t mask_dims[3]
    Py_ssize_t mask_strides[3]

# part(c, i0, i1, t): items [i0, i1) of the call, on the call's thread t
ctypedef void (*part_fn)(const Call *c, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t t) noexcept nogil

# Work between two checks for a pending signal (Ctrl-C): 64 MiB of input,
# some 10 ms, so an interrupt is honoured within a fraction of a second and
# the check (a GIL round trip) costs nothing measurable.
cdef enum:
    CHUNK_BYTES = 64 << 20

# Rows of at most this many classes take the *_few_rows kernels (a row per
# vector lane; FS_FEW_CLASSES = 32 at most), by function and dtype.  Measured
# on AVX-512 (AMD EPYC Zen 5), one thread, in L2, ns per element, few-rows
# kernel / row kernel, at n = 4, 10, 16, 32:
#   float32 softmax        0.48 / 2.45, 0.36 / 1.01, 0.31 / 0.64, 0.31 / 0.42
#   float32 log_softmax    0.63 / 10.3, 0.41 / 2.20, 0.36 / 1.16, 0.32 / 0.66
#   float32 cross-entropy  1.05 / 3.70, 0.60 / 2.01, 0.47 / 1.53, 0.42 / 1.34
#                          (loss and gradient; the loss alone 0.42 / 1.60 at 10)
#   float64 softmax        1.00 / 2.62, 0.86 / 1.49, 0.78 / 0.92, 0.77 / 0.74
#   float64 log_softmax    1.55 / 9.60, 1.12 / 2.38, 0.97 / 1.35, 0.87 / 0.94
#   float64 cross-entropy  2.41 / 3.62, 1.49 / 2.28, 1.20 / 2.51, 1.00 / 1.61
# (float64 softmax: 0.77 / 1.10 at 24; at 32 rows are four whole vectors and
# the row kernel is level in L2 and streams better: 1.05 against 2.0 of the
# floor on (2097152, 32)).
# A linear head's rows go through bias, loss and column sums in groups of
# at most this many bytes of logits (at least a row): with the scratch row
# and the column sums they stay in a 1 MiB L2 between the three steps.
cdef enum:
    HEAD_GROUP_BYTES = 64 << 10

cdef enum:
    # softmax: fewer rows than a block of lanes go to the row kernel, which
    # may round a last bit differently; the few-rows kernel would pad them
    # into a block (one row of 10 float32: 1.33 us a call against 1.10 us
    # on the row kernel, AMD EPYC Zen 5).  Cross-entropy keeps one kernel
    # whatever the rows (its small calls are far from that cost).
    FEW_MIN_ROWS = 16
    FEW_SOFTMAX_F32 = 32
    FEW_LOG_SOFTMAX_F32 = 32
    FEW_CROSS_ENTROPY_F32 = 32
    FEW_SOFTMAX_F64 = 24
    FEW_LOG_SOFTMAX_F64 = 32
    FEW_CROSS_ENTROPY_F64 = 32


cdef inline Py_ssize_t _share(Py_ssize_t total, Py_ssize_t t, Py_ssize_t nt) noexcept nogil:
    """Start of thread t's contiguous share of ``total`` items (t == nt: the end)."""
    return total * t // nt


cdef inline Py_ssize_t _items(const Call *c) noexcept nogil:
    """The work items: rows (inner == 1) or column tiles (inner > 1)."""
    if c.inner == 1:
        return c.outer
    return c.outer * ((c.inner + c.tile - 1) // c.tile)


cdef int _run(part_fn part, const Call *c, int num_threads) except -1 nogil:
    """part() over every item, chunk by chunk, each chunk split in contiguous
    shares over nt = min(num_threads, items) threads.

    One thread runs on the caller's thread with no OpenMP region at all.
    Between chunks a pending signal is checked for with the GIL: Ctrl-C
    raises KeyboardInterrupt promptly, the output left unfinished.
    """
    cdef Py_ssize_t items = _items(c), t, i0, i1
    cdef Py_ssize_t nt = max(1, min(<Py_ssize_t>num_threads, items))
    cdef Py_ssize_t item_bytes = c.n * (8 if c.f64 else 4) * (c.tile if c.inner > 1 else 1)
    cdef Py_ssize_t chunk = max(nt, CHUNK_BYTES // max(1, item_bytes))
    i0 = 0
    while i0 < items:
        i1 = min(items, i0 + chunk)
        if nt == 1:
            part(c, i0, i1, 0)
        else:
            for t in prange(nt, schedule='static', num_threads=nt):
                part(c, i0 + _share(i1 - i0, t, nt), i0 + _share(i1 - i0, t + 1, nt), t)
        i0 = i1
        if i0 < items:
            with gil:
                PyErr_CheckSignals()
    return 0


# Rows longer than FS_ROW_CACHE_BYTES are taken in parts of FS_PART_BYTES
# (csrc/body/row_stats.h), whose statistics the threads may share out.  So
# when such rows are few, fewer than _split_few_rows a thread (a row a
# thread would leave threads idle or unevenly loaded, and one row would run
# on one thread), each row in turn is shared between the threads
# (_run_split).  The results are the same either way, bit for bit.
# One float32 row of 2**24 on two threads of an AMD EPYC Zen 5 went from
# 2.6 to 1.4 x the two-thread copy, its logsumexp from 1.27 to 0.66.
# Sharing many long rows as well (each thread's share at least 1 or 4 MiB,
# so that a row would stay in the 32 MiB L3 between its two passes) moved
# (8, 2**21) float32 and float64 and (16, 2**20) float32 by less than the
# noise (1.07-1.23 x the copy), so rows that are many go a row a thread.
cdef Py_ssize_t _split_few_rows = 4


cdef inline bint _splits(const Call *c, int num_threads) noexcept nogil:
    """Whether the rows of ``c`` go through _run_split on ``num_threads``."""
    return (c.inner == 1 and num_threads > 1 and c.n * (8 if c.f64 else 4) > FS_ROW_CACHE_BYTES
            and c.outer < _split_few_rows * num_threads)


def set_split_rows(Py_ssize_t few_rows):
    """Set _split_few_rows (0: no row is shared) and return the previous
    value: for measurements, and for tests of both paths."""
    global _split_few_rows
    before = _split_few_rows
    _split_few_rows = max(0, few_rows)
    return before


def rows_split(Py_ssize_t n_rows, Py_ssize_t n, bint f64, int num_threads):
    """Whether ``n_rows`` contiguous rows of ``n`` are shared between
    ``num_threads`` threads (softmax, log_softmax, logsumexp)."""
    cdef Call c = _call(f64, False, False, NULL, NULL, NULL, n_rows, n, 1, 1)
    return _splits(&c, num_threads)


cdef int _run_split(const Call *c, int num_threads, bint lse) except -1 nogil:
    """softmax or log_softmax (``lse`` false) or logsumexp (``lse`` true) of
    long contiguous rows, each shared between ``num_threads`` threads, a
    contiguous run of the row's parts each: the parts' statistics
    (row_parts_stats), folded in order (row_parts_fold); when log(sum) is
    wanted and the sum is below 2, the parts' entries below the maximum
    (row_parts_below), as log_sumexp takes them on one thread; then each
    thread's stretch of the output (softmax_row_part), or the row's
    logsumexp.  A pending signal is checked for between rows, every
    CHUNK_BYTES."""
    cdef Py_ssize_t nt = num_threads, r, t, done = 0, p0, p1, i0, i1
    cdef Py_ssize_t itemsize = 8 if c.f64 else 4
    cdef Py_ssize_t part = FS_PART_BYTES // itemsize, n_parts = (c.n + part - 1) // part
    cdef double *st = <double *>malloc(3 * n_parts * sizeof(double))
    cdef double row[3]
    cdef double f
    cdef const char *x
    if st == NULL:
        with gil:
            raise MemoryError()
    try:
        for r in range(c.outer):
            x = <const char *>c.a + r * c.n * itemsize
            for t in prange(nt, schedule='static', num_threads=nt):
                if c.f64:
                    fs_f64.row_parts_stats(<const double *>x, c.n, _share(n_parts, t, nt),
                                           _share(n_parts, t + 1, nt), st)
                else:
                    fs_f32.row_parts_stats(<const float *>x, c.n, _share(n_parts, t, nt),
                                           _share(n_parts, t + 1, nt), st)
            if c.f64:
                fs_f64.row_parts_fold(st, n_parts, 0, row)
            else:
                fs_f32.row_parts_fold(st, n_parts, 0, row)
            # row = (maximum, sum, minimum); f as log_sumexp or 1 / sum
            f = 0.0
            if -INFINITY < row[0] < INFINITY:
                if not (lse or c.flags & FS_FLAG_LOG):
                    f = 1.0 / row[1]
                elif row[1] < 2.0:
                    for t in prange(nt, schedule='static', num_threads=nt):
                        if c.f64:
                            fs_f64.row_parts_below(<const double *>x, c.n, row[0],
                                                   _share(n_parts, t, nt),
                                                   _share(n_parts, t + 1, nt), st)
                        else:
                            fs_f32.row_parts_below(<const float *>x, c.n, row[0],
                                                   _share(n_parts, t, nt),
                                                   _share(n_parts, t + 1, nt), st)
                    if c.f64:
                        fs_f64.row_parts_fold(st, n_parts, 1, st)
                    else:
                        fs_f32.row_parts_fold(st, n_parts, 1, st)
                    f = log1p(st[0] + (st[1] - 1.0))
                else:
                    f = c_log(row[1])
            if lse:
                if c.f64:
                    (<double *>c.out)[r] = row[0] + f
                else:
                    (<float *>c.out)[r] = <float>(row[0] + f)
            else:
                for t in prange(nt, schedule='static', num_threads=nt):
                    i0 = min(c.n, _share(n_parts, t, nt) * part)
                    i1 = min(c.n, _share(n_parts, t + 1, nt) * part)
                    if c.f64:
                        fs_f64.softmax_row_part(<const double *>x + i0,
                                                <double *>c.out + r * c.n + i0, i1 - i0,
                                                row[0], f, row[2], c.flags)
                    else:
                        fs_f32.softmax_row_part(<const float *>x + i0,
                                                <float *>c.out + r * c.n + i0, i1 - i0,
                                                row[0], f, row[2], c.flags)
            done += c.n * itemsize
            if done >= CHUNK_BYTES and r + 1 < c.outer:
                done = 0
                with gil:
                    PyErr_CheckSignals()
    finally:
        free(st)
    return 0


cdef int _run_rows(part_fn part, const Call *c, int num_threads, bint lse) except -1 nogil:
    """_run(part, ...) for softmax (``lse`` false) and logsumexp (true), or
    _run_split when the rows are long enough to split between the threads."""
    if _splits(c, num_threads):
        return _run_split(c, num_threads, lse)
    return _run(part, c, num_threads)


cdef inline Py_ssize_t _few_classes(bint f64, int function) noexcept nogil:
    """The most classes that the few-rows kernel of ``function`` (0 softmax,
    1 log_softmax, 2 cross-entropy) takes in this dtype."""
    if function == 0:
        return FEW_SOFTMAX_F64 if f64 else FEW_SOFTMAX_F32
    if function == 1:
        return FEW_LOG_SOFTMAX_F64 if f64 else FEW_LOG_SOFTMAX_F32
    return FEW_CROSS_ENTROPY_F64 if f64 else FEW_CROSS_ENTROPY_F32


cdef inline void *_row_scratch(const Call *c, bint in_place=False) noexcept nogil:
    """A scratch row for this thread, so that a streamed row is written only
    once, or (``in_place``) so that a row's exps are kept while its output
    overwrites its input (NULL otherwise, or when the row is too long to
    keep)."""
    cdef Py_ssize_t nbytes = c.n * (8 if c.f64 else 4)
    if (c.flags & FS_FLAG_STREAM or in_place) and nbytes <= FS_ROW_CACHE_BYTES:
        return malloc(nbytes)
    return NULL


cdef void _softmax_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t t) noexcept nogil:
    cdef Py_ssize_t r0 = i0 * c.n, r1 = i1 * c.n, task, n_tiles, j0, base
    cdef void *work
    if i0 >= i1:
        return
    # rows of few classes: one row per vector lane (see FEW_SOFTMAX_F32)
    if (c.inner == 1 and c.n <= _few_classes(c.f64, 1 if c.flags & FS_FLAG_LOG else 0)
            and r1 - r0 >= FEW_MIN_ROWS * c.n):
        if c.f64:
            fs_f64.softmax_few_rows(<const double *>c.a + r0, <double *>c.out + r0,
                                    (r1 - r0) // c.n, c.n, c.flags)
        else:
            fs_f32.softmax_few_rows(<const float *>c.a + r0, <float *>c.out + r0,
                                    (r1 - r0) // c.n, c.n, c.flags)
        return
    if c.inner == 1:
        work = _row_scratch(c)
        if c.f64:
            fs_f64.softmax_rows(<const double *>c.a + r0, <double *>c.out + r0, <double *>work,
                                (r1 - r0) // c.n, c.n, c.flags)
        else:
            fs_f32.softmax_rows(<const float *>c.a + r0, <float *>c.out + r0, <float *>work,
                                (r1 - r0) // c.n, c.n, c.flags)
        free(work)
        return
    n_tiles = (c.inner + c.tile - 1) // c.tile
    for task in range(i0, i1):
        j0 = (task % n_tiles) * c.tile
        base = (task // n_tiles) * c.n * c.inner + j0
        if c.f64:
            fs_f64.softmax_cols(<const double *>c.a + base, <double *>c.out + base, c.n, c.inner,
                                min(c.tile, c.inner - j0), c.flags)
        else:
            fs_f32.softmax_cols(<const float *>c.a + base, <float *>c.out + base, c.n, c.inner,
                                min(c.tile, c.inner - j0), c.flags)


cdef void _logsumexp_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t t) noexcept nogil:
    cdef Py_ssize_t r0 = i0, r1 = i1, task, n_tiles, j0, o
    if i0 >= i1:
        return
    if c.inner == 1:
        if c.f64:
            fs_f64.logsumexp_rows(<const double *>c.a + r0 * c.n, <double *>c.out + r0, r1 - r0, c.n)
        else:
            fs_f32.logsumexp_rows(<const float *>c.a + r0 * c.n, <float *>c.out + r0, r1 - r0, c.n)
        return
    n_tiles = (c.inner + c.tile - 1) // c.tile
    for task in range(i0, i1):
        o = task // n_tiles
        j0 = (task % n_tiles) * c.tile
        if c.f64:
            fs_f64.logsumexp_cols(<const double *>c.a + o * c.n * c.inner + j0,
                                  <double *>c.out + o * c.inner + j0, c.n, c.inner,
                                  min(c.tile, c.inner - j0))
        else:
            fs_f32.logsumexp_cols(<const float *>c.a + o * c.n * c.inner + j0,
                                  <float *>c.out + o * c.inner + j0, c.n, c.inner,
                                  min(c.tile, c.inner - j0))


cdef void _backward_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t t) noexcept nogil:
    cdef Py_ssize_t r0 = i0 * c.n, r1 = i1 * c.n, task, n_tiles, j0, base
    if i0 >= i1:
        return
    if c.inner == 1:
        if c.f64:
            fs_f64.softmax_backward_rows(<const double *>c.a + r0, <const double *>c.b + r0,
                                         <double *>c.out + r0, (r1 - r0) // c.n, c.n, c.flags)
        else:
            fs_f32.softmax_backward_rows(<const float *>c.a + r0, <const float *>c.b + r0,
                                         <float *>c.out + r0, (r1 - r0) // c.n, c.n, c.flags)
        return
    n_tiles = (c.inner + c.tile - 1) // c.tile
    for task in range(i0, i1):
        j0 = (task % n_tiles) * c.tile
        base = (task // n_tiles) * c.n * c.inner + j0
        if c.f64:
            fs_f64.softmax_backward_cols(<const double *>c.a + base, <const double *>c.b + base,
                                         <double *>c.out + base, c.n, c.inner,
                                         min(c.tile, c.inner - j0), c.flags)
        else:
            fs_f32.softmax_backward_cols(<const float *>c.a + base, <const float *>c.b + base,
                                         <float *>c.out + base, c.n, c.inner,
                                         min(c.tile, c.inner - j0), c.flags)


cdef void _cross_entropy_cols_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1,
                                   Py_ssize_t t) noexcept nogil:
    # column tiles (class axis not last): sample s = o * inner + j of tile
    # (o, j0) has its classes at logits[o * n * inner + class * inner + j]
    cdef Py_ssize_t task, n_tiles = (c.inner + c.tile - 1) // c.tile, j0, o, base, s0, width
    cdef double total = 0.0, part
    cdef const double *row_scale
    cdef const int64_t *target
    cdef const void *probs
    cdef void *grad
    cdef double *loss
    # a contiguous copy of a tile, then its exps (NULL: read in place, exps computed twice)
    cdef void *work = malloc(FS_ROW_CACHE_BYTES)
    for task in range(i0, i1):
        o = task // n_tiles
        j0 = (task % n_tiles) * c.tile
        width = min(c.tile, c.inner - j0)
        base = o * c.n * c.inner + j0
        s0 = o * c.inner + j0
        # if-statements for the optional pointers (see _cross_entropy_part)
        row_scale = NULL
        target = NULL
        probs = NULL
        grad = NULL
        loss = NULL
        if c.row_scale != NULL:
            row_scale = c.row_scale + s0
        if c.target != NULL:
            target = c.target + s0
        if c.loss != NULL:
            loss = c.loss + s0
        part = 0.0
        if c.f64:
            if c.b != NULL:
                probs = <const double *>c.b + base
            if c.out != NULL:
                grad = <double *>c.out + base
            fs_f64.cross_entropy_cols(
                <const double *>c.a + base, target, <const double *>probs,
                <const double *>c.weight, c.weight_sum, c.label_smoothing, row_scale, c.scale,
                loss, &part, <double *>grad, <double *>work, c.n, c.inner, width, c.flags)
        else:
            if c.b != NULL:
                probs = <const float *>c.b + base
            if c.out != NULL:
                grad = <float *>c.out + base
            fs_f32.cross_entropy_cols(
                <const float *>c.a + base, target, <const float *>probs,
                <const float *>c.weight, c.weight_sum, c.label_smoothing, row_scale, c.scale,
                loss, &part, <float *>grad, <float *>work, c.n, c.inner, width, c.flags)
        total += part
    free(work)
    c.loss_part[t] += total


cdef inline bint _few_rows(const Call *c) noexcept nogil:
    """Whether the call's rows go to the few-classes kernel (class indices
    over few classes: one row per vector lane, see FEW_SOFTMAX_F32)."""
    return c.b == NULL and c.n <= _few_classes(c.f64, 2)


cdef void _cross_entropy_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1,
                              Py_ssize_t t) noexcept nogil:
    cdef void *work = NULL
    # the scratch row keeps the exps while the gradient is streamed, or
    # while it overwrites the logits (out= the logits themselves)
    if c.out != NULL and not _few_rows(c):
        work = _row_scratch(c, c.out == c.a)
    _cross_entropy_block(c, i0, i1, t, work)
    free(work)


cdef void _head_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t t) noexcept nogil:
    """Rows [i0, i1) of a linear head's logits, in place, a group of rows
    at a time while the group is in cache: the bias added, the loss and the
    gradient written over the logits, the gradient rows added to thread t's
    column sums.  Separate passes over the chunk would each read it from
    memory again."""
    cdef Py_ssize_t itemsize = 8 if c.f64 else 4
    cdef Py_ssize_t group = max(1, HEAD_GROUP_BYTES // max(1, c.n * itemsize))
    cdef Py_ssize_t g0 = i0, g1
    cdef void *work = NULL
    if c.out != NULL and not _few_rows(c):
        work = _row_scratch(c, True)
    while g0 < i1:
        g1 = min(i1, g0 + group)
        if c.bias != NULL:
            if c.f64:
                fs_f64.add_rows(<const double *>c.bias, 0, <double *>c.a + g0 * c.n, c.n,
                                g1 - g0, c.n)
            else:
                fs_f32.add_rows(<const float *>c.bias, 0, <float *>c.a + g0 * c.n, c.n,
                                g1 - g0, c.n)
        _cross_entropy_block(c, g0, g1, t, work)
        if c.grad_bias != NULL and c.out != NULL:
            if c.f64:
                fs_f64.add_rows(<const double *>c.out + g0 * c.n, c.n,
                                <double *>c.grad_bias + t * c.n, 0, g1 - g0, c.n)
            else:
                fs_f32.add_rows(<const float *>c.out + g0 * c.n, c.n,
                                <float *>c.grad_bias + t * c.n, 0, g1 - g0, c.n)
        g0 = g1
    free(work)


cdef void _cross_entropy_block(const Call *c, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t t,
                               void *work) noexcept nogil:
    """Rows [i0, i1) of a row call, with the thread's scratch row ``work``
    (see _row_scratch); adds their weighted loss to thread t's total."""
    cdef Py_ssize_t r0 = i0, r1 = i1
    cdef Py_ssize_t e0 = r0 * c.n
    cdef double total = 0.0
    cdef double *loss = NULL if c.loss == NULL else c.loss + r0
    # if-statements, not `NULL if ... else ...`: Cython gives that expression a
    # temporary without the const, and the C compiler warns
    cdef const double *row_scale = NULL
    if c.row_scale != NULL:
        row_scale = c.row_scale + r0
    # class indices over few classes: one row per vector lane (see FEW_SOFTMAX_F32)
    if _few_rows(c):
        if c.f64:
            fs_f64.cross_entropy_few_rows(
                <const double *>c.a + e0, c.target + r0, <const double *>c.weight, c.weight_sum,
                c.label_smoothing, row_scale, c.scale, loss, &total,
                NULL if c.out == NULL else <double *>c.out + e0, r1 - r0, c.n, c.flags)
        else:
            fs_f32.cross_entropy_few_rows(
                <const float *>c.a + e0, c.target + r0, <const float *>c.weight, c.weight_sum,
                c.label_smoothing, row_scale, c.scale, loss, &total,
                NULL if c.out == NULL else <float *>c.out + e0, r1 - r0, c.n, c.flags)
        c.loss_part[t] += total
        return
    if c.f64:
        if c.b == NULL:
            fs_f64.cross_entropy_rows(
                <const double *>c.a + e0, c.target + r0, <const double *>c.weight, c.weight_sum,
                c.label_smoothing, row_scale, c.scale, loss, &total,
                NULL if c.out == NULL else <double *>c.out + e0, <double *>work, r1 - r0, c.n,
                c.flags)
        else:
            fs_f64.cross_entropy_probs_rows(
                <const double *>c.a + e0, <const double *>c.b + e0, <const double *>c.weight,
                c.label_smoothing, row_scale, c.scale, loss, &total,
                NULL if c.out == NULL else <double *>c.out + e0, <double *>work, r1 - r0, c.n,
                c.flags)
    else:
        if c.b == NULL:
            fs_f32.cross_entropy_rows(
                <const float *>c.a + e0, c.target + r0, <const float *>c.weight, c.weight_sum,
                c.label_smoothing, row_scale, c.scale, loss, &total,
                NULL if c.out == NULL else <float *>c.out + e0, <float *>work, r1 - r0, c.n,
                c.flags)
        else:
            fs_f32.cross_entropy_probs_rows(
                <const float *>c.a + e0, <const float *>c.b + e0, <const float *>c.weight,
                c.label_smoothing, row_scale, c.scale, loss, &total,
                NULL if c.out == NULL else <float *>c.out + e0, <float *>work, r1 - r0, c.n,
                c.flags)
    c.loss_part[t] += total    # thread t's parts of the call, chunk after chunk


cdef enum:
    # a Call flag beside FS_FLAG_*, seen only by _masked_part: logsumexp rows
    _FLAG_LOGSUMEXP = 1 << 16


cdef void _masked_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t t) noexcept nogil:
    """Rows [i0, i1) of softmax (c.out has n per row) or logsumexp (one per
    row) under the mask, in runs along the mask's last leading axis, where
    the mask rows are mask_strides[2] apart (0: the same row again)."""
    cdef Py_ssize_t r = i0, run, q, moff, n = c.n
    cdef bint lse = c.flags & _FLAG_LOGSUMEXP
    cdef void *work = NULL if lse else _row_scratch(c)
    while r < i1:
        q = r // c.mask_dims[2]
        moff = ((q // c.mask_dims[1]) * c.mask_strides[0] + (q % c.mask_dims[1]) * c.mask_strides[1]
                + (r % c.mask_dims[2]) * c.mask_strides[2])
        run = min(i1 - r, c.mask_dims[2] - r % c.mask_dims[2])
        if lse and c.f64:
            fs_f64.logsumexp_masked_rows(<const double *>c.a + r * n, c.mask + moff,
                                         c.mask_strides[2], <double *>c.out + r, run, n)
        elif lse:
            fs_f32.logsumexp_masked_rows(<const float *>c.a + r * n, c.mask + moff,
                                         c.mask_strides[2], <float *>c.out + r, run, n)
        elif c.f64:
            fs_f64.softmax_masked_rows(<const double *>c.a + r * n, c.mask + moff,
                                       c.mask_strides[2], <double *>c.out + r * n,
                                       <double *>work, run, n, c.flags)
        else:
            fs_f32.softmax_masked_rows(<const float *>c.a + r * n, c.mask + moff,
                                       c.mask_strides[2], <float *>c.out + r * n,
                                       <float *>work, run, n, c.flags)
        r += run
    free(work)


cdef inline Call _call(bint f64, bint log, bint stream, const void *a, const void *b, void *out,
                       Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner,
                       Py_ssize_t tile) noexcept nogil:
    cdef Call c
    memset(&c, 0, sizeof(Call))
    c.f64 = f64
    c.flags = (FS_FLAG_LOG if log else 0) | (FS_FLAG_STREAM if stream else 0)
    c.a = a
    c.b = b
    c.out = out
    c.outer = outer
    c.n = n
    c.inner = inner
    c.tile = tile if inner > 1 else 1
    return c


def softmax(const floating[::1] x, floating[::1] y, Py_ssize_t outer, Py_ssize_t n,
            Py_ssize_t inner, bint log, int num_threads, bint stream, Py_ssize_t tile):
    """y = softmax(x) (or log_softmax) over the middle axis of (outer, n, inner)."""
    cdef Call c = _call(floating is double, log, stream, &x[0], NULL, &y[0], outer, n, inner, tile)
    with nogil:
        _run_rows(_softmax_part, &c, num_threads, False)


def logsumexp(const floating[::1] x, floating[::1] out, Py_ssize_t outer, Py_ssize_t n,
              Py_ssize_t inner, int num_threads, Py_ssize_t tile):
    """out = logsumexp(x) over the middle axis; out has outer * inner elements."""
    cdef Call c = _call(floating is double, False, False, &x[0], NULL, &out[0], outer, n, inner,
                        tile)
    with nogil:
        _run_rows(_logsumexp_part, &c, num_threads, True)


cdef void _logsumexp_weighted_part(const Call *c, Py_ssize_t i0, Py_ssize_t i1,
                                   Py_ssize_t t) noexcept nogil:
    if i0 >= i1:
        return
    if c.f64:
        fs_f64.logsumexp_weighted_rows(<const double *>c.a + i0 * c.n,
                                       <const double *>c.b + i0 * c.n,
                                       <double *>c.out + 3 * i0, i1 - i0, c.n)
    else:
        fs_f32.logsumexp_weighted_rows(<const float *>c.a + i0 * c.n,
                                       <const float *>c.b + i0 * c.n,
                                       <double *>c.out + 3 * i0, i1 - i0, c.n)


def logsumexp_weighted_rows(const floating[::1] x, const floating[::1] b, double[::1] out,
                            Py_ssize_t n_rows, Py_ssize_t n, int num_threads):
    """out[3 r:3 r + 3] = (m, k, s) of row r of ``n_rows`` contiguous rows of
    ``n`` for logsumexp with weights ``b`` laid out like ``x``: the largest
    x of weight not 0, the sum of the weights at it, the sum of
    b exp(x - m) over the others (csrc/kernel_list.h)."""
    cdef Call c = _call(floating is double, False, False, &x[0], &b[0], &out[0], n_rows, n, 1, 1)
    with nogil:
        _run(_logsumexp_weighted_part, &c, num_threads)


def softmax_backward(const floating[::1] dy, const floating[::1] y, floating[::1] dx,
                     Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner, bint log,
                     int num_threads, bint stream, Py_ssize_t tile):
    """dx = the vector-Jacobian product of softmax (or log_softmax) at output y."""
    cdef Call c = _call(floating is double, log, stream, &dy[0], &y[0], &dx[0], outer, n, inner,
                        tile)
    with nogil:
        _run(_backward_part, &c, num_threads)


cdef int _ce_options(Call *c, const int64_t[::1] target, const floating[::1] weight,
                     const double[::1] row_scale, double weight_sum, double label_smoothing,
                     double scale, double[::1] loss) except -1:
    """The cross-entropy's options into ``c`` (None: NULL; if-statements,
    not conditional expressions, whose temporaries would drop the const)."""
    c.target = NULL
    c.weight = NULL
    c.row_scale = NULL
    if target is not None:
        c.target = &target[0]
    if weight is not None:
        c.weight = &weight[0]
    if row_scale is not None:
        c.row_scale = &row_scale[0]
    c.weight_sum = weight_sum
    c.label_smoothing = label_smoothing
    c.scale = scale
    c.loss = NULL if loss is None else &loss[0]
    return 0


cdef double _ce_run(Call *c, part_fn part, Py_ssize_t n_parts, int num_threads) except? -1:
    """Runs a cross-entropy call whose items go to at most ``n_parts``
    threads, each adding its losses to its own partial sum; returns their
    total."""
    cdef double total = 0.0
    cdef Py_ssize_t i
    cdef double *parts = <double *>calloc(n_parts, sizeof(double))
    if parts == NULL:
        raise MemoryError()
    c.loss_part = parts
    try:
        with nogil:
            _run(part, c, num_threads)
        for i in range(n_parts):
            total += parts[i]
    finally:
        free(parts)
    return total


def cross_entropy(const floating[::1] logits, const int64_t[::1] target,
                  const floating[::1] target_probs, const floating[::1] weight,
                  double weight_sum, double label_smoothing,
                  const double[::1] row_scale, double scale, double[::1] loss,
                  floating[::1] grad, Py_ssize_t n_rows, Py_ssize_t n, int num_threads,
                  bint stream, Py_ssize_t inner=1, Py_ssize_t tile=1):
    """Fused cross-entropy of n_rows contiguous rows of n logits, or with
    ``inner > 1`` of the (n_rows, n, inner) layout, class axis in the middle
    (samples in column tiles of ``tile``; targets, sample weights and losses
    in (n_rows, inner) order, probabilities and gradient like the logits).

    Either ``target`` (class indices, one per row; outside [0, n) means
    ignored) or ``target_probs`` (probabilities shaped like ``logits``) is
    given, the other is None.  ``weight_sum`` is ``sum(weight)`` (n without
    weights).  ``weight``, ``row_scale``, ``loss`` and ``grad`` may be None.
    Writes the rows' own losses to ``loss`` and the gradient, scaled by
    ``scale * row_scale[r]``, to ``grad`` (without ``grad`` the loss alone
    is computed, and the logits are only read).  Returns the sum of the
    rows' losses times ``row_scale``.
    """
    cdef const floating *probs = NULL
    if target_probs is not None:
        probs = &target_probs[0]
    cdef Call c = _call(floating is double, False, stream, &logits[0], probs,
                        NULL if grad is None else &grad[0], n_rows, n, inner, tile)
    _ce_options(&c, target, weight, row_scale, weight_sum, label_smoothing, scale, loss)
    return _ce_run(&c, _cross_entropy_cols_part if inner > 1 else _cross_entropy_part,
                   max(1, min(<Py_ssize_t>num_threads, _items(&c))), num_threads)


def cross_entropy_head(floating[::1] logits, const int64_t[::1] target,
                       const floating[::1] target_probs, const floating[::1] weight,
                       double weight_sum, double label_smoothing,
                       const double[::1] row_scale, double scale, double[::1] loss,
                       const floating[::1] bias, floating[::1] grad_bias, bint return_grad,
                       Py_ssize_t n_rows, Py_ssize_t n, int num_threads):
    """The fused cross-entropy of a linear head's chunk of ``n_rows`` rows
    of ``n`` logits, in place: ``bias`` (n, or None) is added to each row
    first, and with ``return_grad`` the gradient overwrites the logits and
    its rows are added to ``grad_bias`` (None, or ``num_threads`` rows of
    n: thread t adds its rows to row t, so that the caller sums them once
    after all its chunks).  The other arguments and the result are those
    of :func:`cross_entropy`.
    """
    cdef const floating *probs = NULL
    if target_probs is not None:
        probs = &target_probs[0]
    cdef Call c = _call(floating is double, False, False, &logits[0], probs,
                        &logits[0] if return_grad else NULL, n_rows, n, 1, 1)
    cdef Py_ssize_t n_parts = max(1, min(<Py_ssize_t>num_threads, n_rows))
    if grad_bias is not None and grad_bias.shape[0] < n_parts * n:
        raise ValueError("grad_bias needs a row of n per thread")
    _ce_options(&c, target, weight, row_scale, weight_sum, label_smoothing, scale, loss)
    if bias is not None:
        c.bias = &bias[0]
    if grad_bias is not None:
        c.grad_bias = &grad_bias[0]
    return _ce_run(&c, _head_part, n_parts, num_threads)


cdef int _run_masked(Call *c, const uint8_t[::1] mask, tuple mask_dims, tuple mask_strides,
                     int num_threads) except -1:
    cdef int d
    c.mask = &mask[0]
    for d in range(3):
        c.mask_dims[d] = mask_dims[d]
        c.mask_strides[d] = mask_strides[d]
    with nogil:
        _run(_masked_part, c, num_threads)
    return 0


def softmax_masked(const floating[::1] x, const uint8_t[::1] mask, tuple mask_dims,
                   tuple mask_strides, floating[::1] y, Py_ssize_t n_rows, Py_ssize_t n, bint log,
                   int num_threads, bint stream):
    """y = softmax(x) (or log_softmax) over n_rows rows of n under a mask.

    ``mask`` holds one byte per element (non-zero: the entry takes part),
    row r's starting at ``sum(i_d * mask_strides[d])``, ``(i_0, i_1, i_2)``
    the digits of r in the radices ``mask_dims`` (three ints whose product
    is n_rows): a mask broadcast over the leading axes is read as it is.
    """
    cdef Call c = _call(floating is double, log, stream, &x[0], NULL, &y[0], n_rows, n, 1, 1)
    _run_masked(&c, mask, mask_dims, mask_strides, num_threads)


def logsumexp_masked(const floating[::1] x, const uint8_t[::1] mask, tuple mask_dims,
                     tuple mask_strides, floating[::1] out, Py_ssize_t n_rows, Py_ssize_t n,
                     int num_threads):
    """out[r] = logsumexp of row r's unmasked entries (mask as softmax_masked)."""
    cdef Call c = _call(floating is double, False, False, &x[0], NULL, &out[0], n_rows, n, 1, 1)
    c.flags = _FLAG_LOGSUMEXP
    _run_masked(&c, mask, mask_dims, mask_strides, num_threads)


def exp(const floating[::1] x, floating[::1] y):
    """y = exp(x) with the exp of the selected SIMD path (for accuracy tests)."""
    with nogil:
        if floating is float:
            fs_f32.exp_array(&x[0], &y[0], x.shape[0])
        else:
            fs_f64.exp_array(&x[0], &y[0], x.shape[0])


# --- thin entry points ------------------------------------------------------
#
# The functions above take typed memoryviews of a fused type: each call pays
# for the fused-type dispatch, one memoryview object per array and keyword
# parsing, about 0.5-1 us, which is most of a call on ten elements.  The
# entries below take the arrays' buffers directly (the buffer protocol, no
# memoryview objects), read the dtype from the buffer's format, and are
# called positionally.  They cover contiguous rows (inner == 1) only: the
# Python layer calls them for C-contiguous float32/float64 input along the
# last axis, the common call.

cdef int _rows_buffer(object array, Py_buffer *view, bint writable, Py_ssize_t count,
                      char kind) except -1:
    """Acquire ``array``'s buffer: C-contiguous, ``count`` elements of 8 bytes
    (``kind`` 'i': int64) or of float32 / float64 (``kind`` 'f').

    Returns 1 for an 8-byte element, 0 for float32.  A buffer of any other
    format or size is released again and raises ValueError: the Python layer
    never passes one, and a wrong one must not be read past its end.
    """
    PyObject_GetBuffer(array, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT
                       | (PyBUF_WRITABLE if writable else 0))
    cdef const char *fmt = view.format
    cdef char f = 0
    cdef bint ok
    if fmt == NULL:             # a buffer without a format is bytes
        fmt = "B"
    if fmt[0] == b'=' or fmt[0] == b'@':     # native order, standard size (unaligned data)
        fmt += 1
    f = fmt[0] if fmt[1] == 0 else 0
    if kind == b'i':
        ok = (f == b'l' or f == b'q') and view.itemsize == 8
    else:
        ok = (f == b'f' and view.itemsize == 4) or (f == b'd' and view.itemsize == 8)
    if not ok or view.len != count * view.itemsize:
        PyBuffer_Release(view)
        raise ValueError(f"expected {count} contiguous elements of kind {chr(kind)}")
    return view.itemsize == 8


def softmax_rows(x, y, Py_ssize_t n_rows, Py_ssize_t n, bint log, int num_threads, bint stream):
    """y = softmax(x) (or log_softmax) over ``n_rows`` contiguous rows of
    ``n``; x and y are C-contiguous float32 or float64 arrays of one dtype."""
    cdef Py_buffer xb, yb
    cdef bint f64 = _rows_buffer(x, &xb, False, n_rows * n, b'f')
    cdef Call c
    try:
        if _rows_buffer(y, &yb, True, n_rows * n, b'f') != f64:
            PyBuffer_Release(&yb)
            raise ValueError("x and y have different dtypes")
        c = _call(f64, log, stream, xb.buf, NULL, yb.buf, n_rows, n, 1, 1)
        with nogil:
            _run_rows(_softmax_part, &c, num_threads, False)
        PyBuffer_Release(&yb)
    finally:
        PyBuffer_Release(&xb)


def logsumexp_rows(x, out, Py_ssize_t n_rows, Py_ssize_t n, int num_threads):
    """out[r] = logsumexp(x[r, :]) over ``n_rows`` contiguous rows of ``n``;
    x and out are C-contiguous float32 or float64 arrays of one dtype."""
    cdef Py_buffer xb, ob
    cdef bint f64 = _rows_buffer(x, &xb, False, n_rows * n, b'f')
    cdef Call c
    try:
        if _rows_buffer(out, &ob, True, n_rows, b'f') != f64:
            PyBuffer_Release(&ob)
            raise ValueError("x and out have different dtypes")
        c = _call(f64, False, False, xb.buf, NULL, ob.buf, n_rows, n, 1, 1)
        with nogil:
            _run_rows(_logsumexp_part, &c, num_threads, True)
        PyBuffer_Release(&ob)
    finally:
        PyBuffer_Release(&xb)


cdef Py_ssize_t _count_share(const int64_t *target, Py_ssize_t n_rows, Py_ssize_t n,
                             int64_t ignore_index) noexcept nogil:
    """_count_targets of one share, without a branch: the compiler vectorises it."""
    cdef Py_ssize_t r, count = 0, bad = 0
    cdef uint64_t un = <uint64_t>n
    cdef int64_t v
    for r in range(n_rows):
        v = target[r]
        count += <uint64_t>v < un
        bad += (<uint64_t>v >= un) & (v != ignore_index)
    return -1 if bad else count


cdef Py_ssize_t _count_targets(const int64_t *target, Py_ssize_t n_rows, Py_ssize_t n,
                               int64_t ignore_index, int num_threads=1) noexcept nogil:
    """The rows whose target is a class in [0, n), or -1 when a target is
    neither a class nor ``ignore_index`` (the caller then reports it).

    It comes before the kernel (the mean's scale needs it), one read of the
    targets: on 4194304 rows of 10 classes a branchy loop took about 7 % of
    the call, so the count has no branch and is shared over the threads
    past a few pages of targets."""
    cdef Py_ssize_t t, total = 0, bad = 0, part
    cdef Py_ssize_t nt = max(1, min(<Py_ssize_t>num_threads, n_rows >> 14))
    if nt == 1:
        return _count_share(target, n_rows, n, ignore_index)
    for t in prange(nt, schedule='static', num_threads=nt):
        part = _count_share(target + _share(n_rows, t, nt),
                            _share(n_rows, t + 1, nt) - _share(n_rows, t, nt), n, ignore_index)
        if part < 0:
            bad += 1
        else:
            total += part
    return -1 if bad else total


def cross_entropy_index_rows(logits, target, Py_ssize_t n_rows, Py_ssize_t n,
                             int64_t ignore_index, double label_smoothing, bint mean, loss,
                             grad, int num_threads, bint stream):
    """Fused cross-entropy of ``n_rows`` contiguous rows of ``n`` logits
    against int64 class indices, unweighted, normalised in the loop.

    ``ignore_index`` must lie outside [0, n), so that the kernel skips its
    rows by itself.  With ``mean`` the gradient is scaled by one over the
    number of rows whose target is a class (NaN when there is none), else
    by 1.  ``loss`` (float64, one per row) and ``grad`` (like ``logits``)
    may be None.  Returns ``(total, count)``: the sum of the rows' losses
    and the number of rows whose target is a class, or ``(nan, -1)`` without
    running the kernel when a target is neither a class nor ``ignore_index``.
    """
    cdef Py_buffer lb, tb, sb, gb
    cdef bint f64 = _rows_buffer(logits, &lb, False, n_rows * n, b'f')
    cdef bint has_loss = loss is not None, has_grad = grad is not None
    cdef Py_ssize_t count = -1, i, n_parts
    cdef double total = 0.0, scale = 1.0, part0 = 0.0
    cdef double *parts = &part0
    cdef bint got_loss = False, got_grad = False, f64_loss, f64_grad
    cdef Call c
    try:
        _rows_buffer(target, &tb, False, n_rows, b'i')
        try:
            count = _count_targets(<const int64_t *>tb.buf, n_rows, n, ignore_index,
                                   num_threads)
            if count < 0:
                return float("nan"), -1
            if mean:
                # nothing to divide by: NaN loss and gradient, as PyTorch
                scale = 1.0 / count if count else float("nan")
            if has_loss:
                f64_loss = _rows_buffer(loss, &sb, True, n_rows, b'f')
                got_loss = True
                if not f64_loss:
                    raise ValueError("loss must be float64")
            if has_grad:
                f64_grad = _rows_buffer(grad, &gb, True, n_rows * n, b'f')
                got_grad = True
                if f64_grad != f64:
                    raise ValueError("logits and grad have different dtypes")
            c = _call(f64, False, stream, lb.buf, NULL, gb.buf if has_grad else NULL, n_rows, n,
                      1, 1)
            c.target = <const int64_t *>tb.buf
            c.weight_sum = n
            c.label_smoothing = label_smoothing
            c.scale = scale
            c.loss = <double *>sb.buf if has_loss else NULL
            n_parts = max(1, min(<Py_ssize_t>num_threads, n_rows))
            if n_parts > 1:
                parts = <double *>calloc(n_parts, sizeof(double))
                if parts == NULL:
                    raise MemoryError()
            c.loss_part = parts
            try:
                with nogil:
                    _run(_cross_entropy_part, &c, num_threads)
                # summed in the order of the general entry, so both agree to the bit
                for i in range(n_parts):
                    total += parts[i]
            finally:
                if parts != &part0:
                    free(parts)
        finally:
            if got_grad:
                PyBuffer_Release(&gb)
            if got_loss:
                PyBuffer_Release(&sb)
            PyBuffer_Release(&tb)
    finally:
        PyBuffer_Release(&lb)
    return total, count



# --- entries of small calls -------------------------------------------------
#
# On a few thousand elements or fewer a call costs more around the kernel
# than in it: the thin entries above, with the Python checks and the
# allocation before them, cost about 0.8 us of a 0.9 us softmax of 10
# float32 (AMD EPYC Zen 5).  The entries below take the public function's
# own arguments and do in C what that call needs: they pick the call when
# it is the common one (``_validation.fast_rows``: an exact ndarray,
# C-contiguous, aligned, native float32/float64, along its last axis as a
# plain int) and runs on one thread, allocate the result, and run the
# kernel on the calling thread with no OpenMP region.  For any other call
# they return None and touch nothing, and the caller takes its other paths,
# which check and report; they never raise for an argument.
#
# One thread is the Python layer's rule (``_runtime.threads_for``):
# ``num_threads`` None on fewer than ``serial_threshold`` elements, or 1.
# Only calls below ``serial_threshold`` are taken, so no output here is
# large enough to be streamed (``_runtime.STREAM_BYTES``).
#
# The arrays are read through the buffer protocol, not the NumPy C API, so
# that the module stays free of NumPy's ABI; the buffer of x is asked for
# without its format (NumPy then builds no format string), the dtype being
# known already.  (With the C API instead, one row of 10 float32: 0.25 us
# against 0.42 us a call, PyTorch 0.91 us, in one run.)

_NDARRAY = np.ndarray
_EMPTY = np.empty
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)


cdef inline bint _int_equals(object value, long long a, long long b):
    """Whether ``value`` is exactly an int (not a bool, not a NumPy integer)
    equal to ``a`` or ``b``."""
    cdef int overflow = 0
    cdef long long v
    if type(value) is not int:
        return False
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0 and (v == a or v == b)


cdef bint _contiguous_aligned(const Py_buffer *view) noexcept:
    """C-contiguity as NumPy's flag has it (strides of length-1 axes do not
    count) and the data aligned to the element size."""
    cdef Py_ssize_t expect = view.itemsize
    cdef int d
    if <size_t>view.buf % <size_t>view.itemsize:
        return False
    for d in range(view.ndim - 1, -1, -1):
        if view.shape[d] != 1 and view.strides[d] != expect:
            return False
        expect *= view.shape[d]
    return True


cdef int _small_rows(object x, object axis, object num_threads, Py_ssize_t serial_threshold,
                     Py_buffer *view) except -1:
    """1 (float32) or 2 (float64) when a call on ``x`` along ``axis`` is a
    small common call, ``view`` then holding ``x``'s buffer, for the caller
    to release; else 0, nothing held."""
    cdef object dtype
    cdef int kind
    if type(x) is not _NDARRAY:
        return 0
    dtype = (<object>x).dtype
    if dtype is _F32:
        kind = 1
    elif dtype is _F64:
        kind = 2
    else:
        return 0
    PyObject_GetBuffer(x, view, PyBUF_STRIDES)
    if (view.ndim > 0 and 0 < view.len < serial_threshold * view.itemsize
            and (num_threads is None or _int_equals(num_threads, 1, 1))
            and _int_equals(axis, -1, view.ndim - 1) and _contiguous_aligned(view)):
        return kind
    PyBuffer_Release(view)
    return 0


def softmax_small(x, axis, num_threads, bint log, Py_ssize_t serial_threshold):
    """softmax(x, axis) (or log_softmax) of a small common call, else None."""
    cdef Py_buffer xb, yb
    cdef int kind = _small_rows(x, axis, num_threads, serial_threshold, &xb)
    cdef Py_ssize_t n
    cdef Call c
    if kind == 0:
        return None
    try:
        y = _EMPTY(x.shape, _F64 if kind == 2 else _F32)
        PyObject_GetBuffer(y, &yb, PyBUF_SIMPLE | PyBUF_WRITABLE)
        n = xb.shape[xb.ndim - 1]
        c = _call(kind == 2, log, False, xb.buf, NULL, yb.buf, xb.len // xb.itemsize // n, n,
                  1, 1)
        with nogil:
            _run(_softmax_part, &c, 1)
        PyBuffer_Release(&yb)
    finally:
        PyBuffer_Release(&xb)
    return y


def logsumexp_small(x, axis, num_threads, Py_ssize_t serial_threshold):
    """logsumexp(x, axis) of a small common call, else None: an array of
    x's shape without its last axis, or a NumPy scalar for 1-D x."""
    cdef Py_buffer xb, ob
    cdef int kind = _small_rows(x, axis, num_threads, serial_threshold, &xb)
    cdef Py_ssize_t n
    cdef double scalar[1]       # room for one float32 or float64
    cdef Call c
    if kind == 0:
        return None
    try:
        n = xb.shape[xb.ndim - 1]
        if xb.ndim == 1:
            c = _call(kind == 2, False, False, xb.buf, NULL, scalar, 1, n, 1, 1)
            with nogil:
                _run(_logsumexp_part, &c, 1)
            # the value is exact in the dtype, so its scalar type takes it as it is
            return (_F64.type(scalar[0]) if kind == 2
                    else _F32.type((<float *>scalar)[0]))
        res = _EMPTY(x.shape[:xb.ndim - 1], _F64 if kind == 2 else _F32)
        PyObject_GetBuffer(res, &ob, PyBUF_SIMPLE | PyBUF_WRITABLE)
        c = _call(kind == 2, False, False, xb.buf, NULL, ob.buf, xb.len // xb.itemsize // n, n,
                  1, 1)
        with nogil:
            _run(_logsumexp_part, &c, 1)
        PyBuffer_Release(&ob)
    finally:
        PyBuffer_Release(&xb)
    return res


def cross_entropy_small(logits, target, axis, ignore_index, reduction, label_smoothing,
                        return_grad, num_threads, Py_ssize_t serial_threshold):
    """cross_entropy(logits, target, axis, ignore_index=, reduction=,
    label_smoothing=, return_grad=) of a small common call, else None.

    The common call besides its logits (see :func:`softmax_small`): a
    C-contiguous, aligned int64 ndarray of class indices of the logits'
    shape without the last axis, an int ``ignore_index`` that is not a
    class, ``reduction`` one of "mean", "sum", "none", an int or float
    ``label_smoothing`` in [0, 1] and a bool ``return_grad``.  A target
    that is neither a class nor ``ignore_index`` also gives None (the
    general path reports it).  The result is made as
    ``_cross_entropy._index_rows`` makes it.
    """
    cdef Py_buffer lb, tb, gb, ob
    cdef int kind = 0, overflow = 0, d
    cdef bint f64, mean, none, grad_wanted
    cdef long long ignore = 0
    cdef double smoothing = -1.0, total = 0.0, scale = 1.0, value
    cdef Py_ssize_t n_rows, n, count, r
    cdef double *loss = NULL
    cdef Call c
    # the options first: they need no buffer
    if type(reduction) is not str or not (reduction == "mean" or reduction == "sum"
                                          or reduction == "none"):
        return None
    if return_grad is not True and return_grad is not False:
        return None
    if type(label_smoothing) is float:
        smoothing = label_smoothing
    elif type(label_smoothing) is int and _int_equals(label_smoothing, 0, 1):
        smoothing = label_smoothing
    if not 0.0 <= smoothing <= 1.0:             # NaN too
        return None
    if type(ignore_index) is not int:
        return None
    ignore = PyLong_AsLongLongAndOverflow(ignore_index, &overflow)
    if overflow or type(target) is not _NDARRAY or (<object>target).dtype is not _I64:
        return None
    kind = _small_rows(logits, axis, num_threads, serial_threshold, &lb)
    if kind == 0:
        return None
    f64 = kind == 2
    n = lb.shape[lb.ndim - 1]
    n_rows = lb.len // lb.itemsize // n
    mean = reduction == "mean"
    none = reduction == "none"
    grad_wanted = return_grad
    try:
        if 0 <= ignore < n:
            return None
        PyObject_GetBuffer(target, &tb, PyBUF_STRIDES)
        try:
            if tb.ndim != lb.ndim - 1 or not _contiguous_aligned(&tb):
                return None
            for d in range(tb.ndim):
                if tb.shape[d] != lb.shape[d]:
                    return None
            count = _count_targets(<const int64_t *>tb.buf, n_rows, n, ignore)
            if count < 0:
                return None
            if mean:
                # nothing to divide by: NaN loss and gradient, as PyTorch
                scale = 1.0 / count if count else float("nan")
            dtype = _F64 if f64 else _F32
            grad = None
            if grad_wanted:
                grad = _EMPTY(logits.shape, dtype)
                PyObject_GetBuffer(grad, &gb, PyBUF_SIMPLE | PyBUF_WRITABLE)
            if none:
                loss = <double *>calloc(n_rows, sizeof(double))
                if loss == NULL:
                    if grad_wanted:
                        PyBuffer_Release(&gb)
                    raise MemoryError()
            c = _call(f64, False, False, lb.buf, NULL, gb.buf if grad_wanted else NULL, n_rows,
                      n, 1, 1)
            c.target = <const int64_t *>tb.buf
            c.weight_sum = n
            c.label_smoothing = smoothing
            c.scale = scale
            c.loss = loss
            c.loss_part = &total
            with nogil:
                _run(_cross_entropy_part, &c, 1)
            if grad_wanted:
                PyBuffer_Release(&gb)
            if none:
                # each row's loss in the logits' dtype, in the target's shape
                try:
                    loss_out = _EMPTY(target.shape, dtype)
                    PyObject_GetBuffer(loss_out, &ob, PyBUF_SIMPLE | PyBUF_WRITABLE)
                    for r in range(n_rows):
                        if f64:
                            (<double *>ob.buf)[r] = loss[r]
                        else:
                            (<float *>ob.buf)[r] = <float>loss[r]
                    PyBuffer_Release(&ob)
                finally:
                    free(loss)
            else:
                # nothing to divide by: NaN, as PyTorch
                value = total if not mean else total / count if count else float("nan")
                loss_out = dtype.type(value)
        finally:
            PyBuffer_Release(&tb)
    finally:
        PyBuffer_Release(&lb)
    return (loss_out, grad) if grad_wanted else loss_out

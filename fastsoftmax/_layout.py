"""Layout planning: how checked arrays map onto the kernels' memory layout.

The softmax-family kernels see one flat C-contiguous buffer in the
``(outer, n, inner)`` layout, ``n`` being the reduced axes.  C-contiguous
inputs go as they are, F-contiguous inputs through their transpose (free),
anything else (non-adjacent axes, strided views, negative strides,
byte-swapped data) through one copy.  ``inner == 1`` runs the row loops,
``inner > 1`` the column-tile loops.  The cross-entropy kernels see
C-contiguous logits in the same layout, or rows of classes
(:func:`rows_along`) for any other.

This module also allocates the kernels' outputs (64-byte aligned where they
are streamed) and decides when a user's ``out=`` can be written directly.
No argument checking and no kernel calls here.
"""

import math
from typing import NamedTuple

import numpy as np

from . import _runtime
from ._runtime import STREAM_BYTES

__all__ = ["MaskRows", "Plan", "aligned_empty", "column_tile", "mask_rows", "output_into",
           "rows_along", "streams"]


def kernel_order(ndim, c_contiguous, f_contiguous, axes):
    """The permutation bringing the arrays to a C-contiguous order in which
    ``axes`` are adjacent, and whether that needs a copy."""
    adjacent = all(b == a + 1 for a, b in zip(axes, axes[1:]))
    if adjacent and c_contiguous:
        return tuple(range(ndim)), False
    if adjacent and f_contiguous:
        return tuple(range(ndim - 1, -1, -1)), False
    kept = [a for a in range(ndim) if a not in axes]
    return tuple(kept) + tuple(axes), True


class Plan:
    """How same-shaped arrays map onto the kernels' (outer, n, inner) layout.

    Parameters
    ----------
    arrays : list of ndarray
        Arrays of one shape and dtype, read by one kernel call.
    axes : tuple of int
        The reduced axes, sorted and non-negative.

    Attributes
    ----------
    arrays : list of ndarray
        The inputs in kernel order (views, or C-contiguous copies).
    kshape : tuple of int
        The shape in kernel order.
    outer, n, inner : int
        The kernels' layout.
    kept : tuple of int
        The axes that are not reduced, in kernel order.
    """

    def __init__(self, arrays, axes):
        shape = arrays[0].shape
        ndim = len(shape)
        c = all(a.flags.c_contiguous for a in arrays)
        f = not c and all(a.flags.f_contiguous for a in arrays)
        self.perm, copy = kernel_order(ndim, c, f, axes)
        self.identity = c and not copy
        if self.identity:       # the common case, kept cheap for small inputs
            self.inv = self.perm
            self.kshape = shape
            self.arrays = arrays
        else:
            copy = copy or not (c or f)
            self.inv = tuple(sorted(range(ndim), key=self.perm.__getitem__))
            self.kshape = tuple(shape[p] for p in self.perm)
            if copy:
                self.arrays = [np.ascontiguousarray(a.transpose(self.perm)) for a in arrays]
            else:
                self.arrays = [a.transpose(self.perm) for a in arrays]
        if axes:
            a0 = axes[0] if self.identity else min(self.perm.index(a) for a in axes)
            a1 = a0 + len(axes) - 1
        else:
            a0, a1 = ndim, ndim - 1
        self.outer = math.prod(self.kshape[:a0])
        self.n = math.prod(self.kshape[a0:a1 + 1])
        self.inner = math.prod(self.kshape[a1 + 1:])
        self.kept = tuple(p for p in self.perm if p not in axes)

    def flat(self, i):
        """Input ``i`` as the flat buffer the kernels take."""
        return self.arrays[i].reshape(-1)

    def user_view(self, kernel_array):
        """A kernel-order array of kshape seen in the user's axis order."""
        return kernel_array if self.identity else kernel_array.transpose(self.inv)

    def kernel_view(self, user_array):
        """``user_array`` in kernel order, or None if that is not C-contiguous."""
        k = user_array if self.identity else user_array.transpose(self.perm)
        return k if k.flags.c_contiguous else None

    def tile(self, itemsize, num_threads):
        """Columns per tile for inner > 1: the widest the kernels take, with
        enough tiles to keep the threads busy.

        The column kernels read a tile's rows from memory once more for
        their output rather than keep the tile in cache: each row of a tile
        is one contiguous run, prefetched a few rows ahead, so wide runs
        serve the memory better than a tile small enough for L2 (``itemsize``
        then does not matter).  Along axis 0 of (4096, 4096) float32, 512
        columns against 64: softmax 2.6-3.0x against 5.3x a copy (one
        thread), softmax_backward 2.7x against 3.3x (two threads; AMD EPYC
        Zen 5).
        """
        if self.inner == 1:
            return 1
        return column_tile(self.outer, self.inner, num_threads)


class MaskRows(NamedTuple):
    """A ``where=`` mask as the masked row kernels read it.

    ``data`` is a flat byte view of the mask's memory; row ``r`` of the
    kernels' ``(outer, n)`` rows has its ``n`` bytes at
    ``sum(i_d * strides[d])``, ``(i_0, i_1, i_2)`` the digits of ``r`` in
    the radices ``dims``.  A stride of 0 repeats a mask row (broadcasting).
    """
    data: np.ndarray
    dims: tuple
    strides: tuple


# Leading-axis groups the loops walk (3 covers (B, H, L, L) with a mask of
# (L, L), (B, 1, L, L) or (B, 1, 1, L)); more are copied into one.
MASK_DIMS = 3


def _collapsed(shape, strides):
    """(shape, strides) with length-1 axes dropped and axes merged where
    one step of the outer is a whole run of the inner."""
    out = []
    for d, st in zip(shape, strides):
        if d == 1:
            continue
        if out and out[-1][1] == st * d:
            out[-1] = (out[-1][0] * d, st)
        else:
            out.append((d, st))
    return out


def mask_rows(mask, plan, axes):
    """``mask`` (broadcast to the input's shape) as :class:`MaskRows` for
    ``plan``'s rows, or None when the plan has column tiles (inner > 1).

    A mask whose rows are contiguous bytes is read where it lies, however
    it broadcasts over the leading axes: a causal (L, L) mask for a
    (B, L, L) input is never repeated in memory.  Any other mask (rows with
    a stride, a mask broadcast along the axis itself, reversed, more than
    ``MASK_DIMS`` leading groups) is copied once, one byte per element.
    """
    if plan.inner != 1:
        return None
    k = mask if plan.identity else mask.transpose(plan.perm)
    a0 = min(plan.perm.index(a) for a in axes) if axes else k.ndim
    step, contiguous = 1, True
    for d, st in zip(k.shape[a0:][::-1], k.strides[a0:][::-1]):
        contiguous &= d == 1 or st == step
        step *= d
    lead = _collapsed(k.shape[:a0], k.strides[:a0])
    if not contiguous or len(lead) > MASK_DIMS or any(st < 0 for _, st in lead):
        k = np.ascontiguousarray(k)
        lead = [(plan.outer, plan.n)] if plan.outer > 1 else []
    lead = [(1, 0)] * (MASK_DIMS - len(lead)) + lead
    extent = sum((d - 1) * st for d, st in lead) + plan.n
    data = np.lib.stride_tricks.as_strided(k.view(np.uint8), shape=(extent,), strides=(1,),
                                           writeable=False)
    return MaskRows(data, tuple(d for d, _ in lead), tuple(st for _, st in lead))


def column_tile(outer, inner, num_threads):
    """Columns per tile of the (outer, n, inner) layout: the kernels' limit,
    narrower while there are fewer than 4 tiles per thread, a multiple of
    16."""
    t = _runtime.kernels.MAX_TILE
    while t > 16 and outer * -(-inner // t) < 4 * num_threads:
        t //= 2
    return max(16, t - t % 16)


def streams(output, inner=1, columns=False):
    """Whether the kernel writes ``output`` with non-temporal stores: the
    row loops (``inner == 1``) and, with ``columns``, the column tiles too
    (those of the forward kernels, which stream whole aligned lines), only
    for outputs past ``STREAM_BYTES``.

    The row loops write a fresh buffer (one whose pages are not yet in
    memory, as after ``np.empty``) with ordinary stores: the OS zeroes each
    page as a row first touches it, leaving its lines in cache, and a
    non-temporal store would add their write-back.  A fresh (4096, 4096)
    softmax or cross-entropy gradient took 0.87-0.94 of the time of its
    streamed version (AMD EPYC Zen 5, 2 threads).  Column tiles go down
    every page before coming back to it, so the zeroed lines are gone by
    then: they stream either way (a fresh axis-0 softmax streamed took
    0.92-0.95 of the time unstreamed).
    """
    if not ((inner == 1 or columns) and output.nbytes > STREAM_BYTES):
        return False
    return inner > 1 or _runtime.kernels.pages_resident(output.ctypes.data, output.nbytes) != 0


def aligned_empty(shape, dtype, align=64):
    """``np.empty`` whose data starts on an ``align``-byte boundary.

    NumPy only guarantees 16 bytes; with 64, rows whose byte length is a
    multiple of 32 all start aligned, so the kernels can stream them out
    with non-temporal stores without a masked head and tail per row.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < STREAM_BYTES:       # only streamed outputs need it
        return np.empty(shape, dtype)
    # np.empty, not another allocator: NumPy asks for transparent huge pages
    # on buffers of 4 MiB or more, and a fresh (4096, 4096) float32 softmax
    # ran 4-5x slower on 4 KiB pages (AMD EPYC Zen 5, one thread)
    buf = np.empty(nbytes + align, dtype=np.uint8)
    offset = -buf.ctypes.data % align
    return buf[offset:offset + nbytes].view(dtype).reshape(shape)


def same_view(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides)


def output_into(out, plan, result, compute):
    """Where the kernel should write, and whether that is ``out`` itself.

    ``out`` is written directly when it is in kernel order, is aligned, has the
    computation dtype and layout, and is either disjoint from every input
    or exactly one of them (the kernels read each element before writing
    it); otherwise the kernel writes a fresh array in kernel order.
    """
    if out is not None and result == compute and out.flags.aligned:
        k = plan.kernel_view(out)
        if k is not None and all(not np.may_share_memory(a, k) or same_view(a, k)
                                 for a in plan.arrays):
            return k, True
    return aligned_empty(plan.kshape, compute), False


def rows_along(array, axis, dtype):
    """``array`` in ``dtype`` with ``axis`` moved last, C-contiguous: rows
    along ``axis``.  A view when it already is, else one copy."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(array, dtype=dtype), axis, -1))

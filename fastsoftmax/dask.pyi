# Type stubs for dask.py: the lazy functions on dask arrays.  Dask arrays are
# typed Any here, so that checking code that uses them needs no dask.
from typing import Any, Literal, overload

from numpy.typing import ArrayLike, DTypeLike

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "task_threads"]

_Axis = int | tuple[int, ...] | None

def task_threads(num_threads: int | None = None) -> int | None: ...
def softmax(x: Any, axis: _Axis = -1, *, where: Any = None, dtype: DTypeLike | None = None,
            num_threads: int | None = None) -> Any: ...
def log_softmax(x: Any, axis: _Axis = -1, *, where: Any = None,
                dtype: DTypeLike | None = None, num_threads: int | None = None) -> Any: ...
def logsumexp(x: Any, axis: _Axis = -1, *, where: Any = None, keepdims: bool = False,
              dtype: DTypeLike | None = None, num_threads: int | None = None) -> Any: ...

# return_grad=True: a (loss, grad) pair of dask arrays
@overload
def cross_entropy(logits: Any, target: Any, axis: int = -1, *,
                  weight: ArrayLike | None = None, sample_weight: Any = None,
                  ignore_index: int = -100,
                  reduction: Literal["mean", "sum", "none"] = "mean",
                  label_smoothing: float = 0.0, return_grad: Literal[False] = False,
                  num_threads: int | None = None) -> Any: ...
@overload
def cross_entropy(logits: Any, target: Any, axis: int = -1, *,
                  weight: ArrayLike | None = None, sample_weight: Any = None,
                  ignore_index: int = -100,
                  reduction: Literal["mean", "sum", "none"] = "mean",
                  label_smoothing: float = 0.0, return_grad: Literal[True],
                  num_threads: int | None = None) -> tuple[Any, Any]: ...

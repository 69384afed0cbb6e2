# Type stubs for _backward.py: softmax_backward, log_softmax_backward, softmax_jacobian.
from typing import Any, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["softmax_backward", "log_softmax_backward", "softmax_jacobian"]

_FloatT = TypeVar("_FloatT", bound=np.floating[Any])
_ArrayT = TypeVar("_ArrayT", bound=NDArray[Any])
_Axis = int | tuple[int, ...] | None

@overload
def softmax_backward(grad_output: ArrayLike, output: NDArray[_FloatT], axis: _Axis = -1, *,
                     where: ArrayLike | None = None, out: None = None,
                     num_threads: int | None = None) -> NDArray[_FloatT]: ...
@overload
def softmax_backward(grad_output: ArrayLike, output: ArrayLike, axis: _Axis = -1, *,
                     where: ArrayLike | None = None, out: _ArrayT,
                     num_threads: int | None = None) -> _ArrayT: ...
@overload
def softmax_backward(grad_output: ArrayLike, output: ArrayLike, axis: _Axis = -1, *,
                     where: ArrayLike | None = None, out: None = None,
                     num_threads: int | None = None) -> NDArray[np.floating[Any]]: ...

@overload
def log_softmax_backward(grad_output: ArrayLike, output: NDArray[_FloatT], axis: _Axis = -1, *,
                         where: ArrayLike | None = None, out: None = None,
                         num_threads: int | None = None) -> NDArray[_FloatT]: ...
@overload
def log_softmax_backward(grad_output: ArrayLike, output: ArrayLike, axis: _Axis = -1, *,
                         where: ArrayLike | None = None, out: _ArrayT,
                         num_threads: int | None = None) -> _ArrayT: ...
@overload
def log_softmax_backward(grad_output: ArrayLike, output: ArrayLike, axis: _Axis = -1, *,
                         where: ArrayLike | None = None, out: None = None,
                         num_threads: int | None = None) -> NDArray[np.floating[Any]]: ...

@overload
def softmax_jacobian(output: NDArray[_FloatT], axis: int = -1) -> NDArray[_FloatT]: ...
@overload
def softmax_jacobian(output: ArrayLike, axis: int = -1) -> NDArray[np.floating[Any]]: ...

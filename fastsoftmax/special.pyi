# Type stubs for special.py: scipy.special's softmax, log_softmax, logsumexp.
from typing import Any, Literal, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["softmax", "log_softmax", "logsumexp"]

_FloatT = TypeVar("_FloatT", bound=np.floating[Any])
_Axis = int | tuple[int, ...] | None

# A float array keeps its dtype.  Other inputs: a scalar gives a NumPy
# scalar, anything else an array, as SciPy; the types cannot tell which.

@overload
def softmax(x: NDArray[_FloatT], axis: _Axis = None) -> NDArray[_FloatT]: ...
@overload
def softmax(x: ArrayLike, axis: _Axis = None) -> Any: ...

@overload
def log_softmax(x: NDArray[_FloatT], axis: _Axis = None) -> NDArray[_FloatT]: ...
@overload
def log_softmax(x: ArrayLike, axis: _Axis = None) -> Any: ...

# a NumPy scalar for a full reduction, an array otherwise; with
# return_sign=True the pair (result, sign)
@overload
def logsumexp(a: ArrayLike, axis: _Axis = None, b: ArrayLike | None = None,
              keepdims: bool = False, return_sign: Literal[False] = False) -> Any: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis = None, b: ArrayLike | None = None,
              keepdims: bool = False, *, return_sign: Literal[True]) -> tuple[Any, Any]: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis, b: ArrayLike | None, keepdims: bool,
              return_sign: Literal[True]) -> tuple[Any, Any]: ...
@overload
def logsumexp(a: ArrayLike, axis: _Axis = None, b: ArrayLike | None = None,
              keepdims: bool = False, return_sign: bool = False) -> Any: ...

# Type stubs for _forward.py: softmax, log_softmax, logsumexp.
from typing import Any, Literal, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["softmax", "log_softmax", "logsumexp"]

_FloatT = TypeVar("_FloatT", bound=np.floating[Any])
_ArrayT = TypeVar("_ArrayT", bound=NDArray[Any])
_Axis = int | tuple[int, ...] | None

# Each function: a float array keeps its dtype; out= is returned as given;
# dtype=<a NumPy float type> gives that type; anything else is "some float".

@overload
def softmax(x: NDArray[_FloatT], axis: _Axis = -1, *, where: ArrayLike | None = None,
            out: None = None, dtype: None = None,
            num_threads: int | None = None) -> NDArray[_FloatT]: ...
@overload
def softmax(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
            out: _ArrayT, dtype: DTypeLike | None = None,
            num_threads: int | None = None) -> _ArrayT: ...
@overload
def softmax(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
            out: None = None, dtype: type[_FloatT],
            num_threads: int | None = None) -> NDArray[_FloatT]: ...
@overload
def softmax(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
            out: None = None, dtype: DTypeLike | None = None,
            num_threads: int | None = None) -> NDArray[np.floating[Any]]: ...

@overload
def log_softmax(x: NDArray[_FloatT], axis: _Axis = -1, *, where: ArrayLike | None = None,
                out: None = None, dtype: None = None,
                num_threads: int | None = None) -> NDArray[_FloatT]: ...
@overload
def log_softmax(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
                out: _ArrayT, dtype: DTypeLike | None = None,
                num_threads: int | None = None) -> _ArrayT: ...
@overload
def log_softmax(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
                out: None = None, dtype: type[_FloatT],
                num_threads: int | None = None) -> NDArray[_FloatT]: ...
@overload
def log_softmax(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
                out: None = None, dtype: DTypeLike | None = None,
                num_threads: int | None = None) -> NDArray[np.floating[Any]]: ...

# keepdims=True always gives an array; otherwise a full reduction gives a
# NumPy scalar and a partial one an array, which the types cannot tell
# apart (NumPy's own reductions return Any for the same reason).
@overload
def logsumexp(x: NDArray[_FloatT], axis: _Axis = -1, *, where: ArrayLike | None = None,
              keepdims: Literal[True], dtype: None = None, num_threads: int | None = None,
              b: None = None, return_sign: Literal[False] = False) -> NDArray[_FloatT]: ...
@overload
def logsumexp(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
              keepdims: Literal[True], dtype: DTypeLike | None = None,
              num_threads: int | None = None, b: ArrayLike | None = None,
              return_sign: Literal[False] = False) -> NDArray[np.floating[Any]]: ...
@overload
def logsumexp(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
              keepdims: Literal[True], dtype: DTypeLike | None = None,
              num_threads: int | None = None, b: ArrayLike | None = None,
              return_sign: Literal[True]
              ) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...
@overload
def logsumexp(x: ArrayLike, axis: _Axis = -1, *, where: ArrayLike | None = None,
              keepdims: bool = False, dtype: DTypeLike | None = None,
              num_threads: int | None = None, b: ArrayLike | None = None,
              return_sign: bool = False) -> Any: ...

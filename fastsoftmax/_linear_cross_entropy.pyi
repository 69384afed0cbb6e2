# Type stubs for _linear_cross_entropy.py: linear_cross_entropy.
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["linear_cross_entropy", "chunk_rows"]

_Loss = np.floating[Any]
_Losses = NDArray[np.floating[Any]]
_Grads = tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]],
               NDArray[np.floating[Any]] | None]
_Out = tuple[NDArray[Any] | None, NDArray[Any] | None] | tuple[
    NDArray[Any] | None, NDArray[Any] | None, NDArray[Any] | None]

CHUNK_ROWS: int
CHUNK_BYTES: int
PRODUCT_BYTES: int

def chunk_rows(n_rows: int, n_classes: int, itemsize: int) -> int: ...

# The result's type follows return_grad= (True: (loss, (grad_x, grad_weight,
# grad_bias))) and reduction= ("none": one loss per sample).

@overload
def linear_cross_entropy(x: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *,
                         linear_bias: ArrayLike | None = None, weight: ArrayLike | None = None,
                         sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Literal["mean", "sum", "none"] = "mean",
                         label_smoothing: float = 0.0, return_grad: Literal[False] = False,
                         chunk_size: int | None = None, out: _Out | None = None,
                         num_threads: int | None = None) -> _Loss | _Losses: ...
@overload
def linear_cross_entropy(x: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *,
                         linear_bias: ArrayLike | None = None, weight: ArrayLike | None = None,
                         sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Literal["mean", "sum", "none"] = "mean",
                         label_smoothing: float = 0.0, return_grad: Literal[True],
                         chunk_size: int | None = None, out: _Out | None = None,
                         num_threads: int | None = None) -> tuple[_Loss | _Losses, _Grads]: ...
@overload
def linear_cross_entropy(x: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *,
                         linear_bias: ArrayLike | None = None, weight: ArrayLike | None = None,
                         sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Literal["mean", "sum", "none"] = "mean",
                         label_smoothing: float = 0.0, return_grad: bool = False,
                         chunk_size: int | None = None, out: _Out | None = None,
                         num_threads: int | None = None
                         ) -> _Loss | _Losses | tuple[_Loss | _Losses, _Grads]: ...

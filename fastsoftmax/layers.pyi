# Type stubs for layers.py: Softmax, LogSoftmax, CrossEntropyLoss, LinearCrossEntropyLoss.
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Softmax", "LogSoftmax", "CrossEntropyLoss", "LinearCrossEntropyLoss"]

_Array = NDArray[np.floating[Any]]
_Axis = int | tuple[int, ...] | None

class _SoftmaxBase:
    axis: _Axis
    where: ArrayLike | None
    num_threads: int | None
    output: _Array | None
    def __init__(self, axis: _Axis = -1, *, where: ArrayLike | None = None,
                 num_threads: int | None = None) -> None: ...
    def forward(self, x: ArrayLike) -> _Array: ...
    def __call__(self, x: ArrayLike) -> _Array: ...
    def backward(self, grad_output: ArrayLike) -> _Array: ...

class Softmax(_SoftmaxBase): ...
class LogSoftmax(_SoftmaxBase): ...

class CrossEntropyLoss:
    axis: int
    weight: ArrayLike | None
    sample_weight: ArrayLike | None
    ignore_index: int
    reduction: Literal["mean", "sum", "none"]
    label_smoothing: float
    num_threads: int | None
    grad: _Array | None
    def __init__(self, axis: int = -1, *, weight: ArrayLike | None = None,
                 sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                 reduction: Literal["mean", "sum", "none"] = "mean",
                 label_smoothing: float = 0.0, num_threads: int | None = None) -> None: ...
    # the loss: a NumPy scalar for "mean" and "sum", an array for "none"
    def forward(self, logits: ArrayLike, target: ArrayLike,
                sample_weight: ArrayLike | None = None) -> np.floating[Any] | _Array: ...
    def __call__(self, logits: ArrayLike, target: ArrayLike,
                 sample_weight: ArrayLike | None = None) -> np.floating[Any] | _Array: ...
    def backward(self, grad_output: ArrayLike = 1.0) -> _Array: ...

_Grads = tuple[_Array, _Array, _Array | None]

class LinearCrossEntropyLoss:
    weight: ArrayLike | None
    sample_weight: ArrayLike | None
    ignore_index: int
    reduction: Literal["mean", "sum", "none"]
    label_smoothing: float
    chunk_size: int | None
    num_threads: int | None
    grads: _Grads | None
    def __init__(self, *, weight: ArrayLike | None = None,
                 sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                 reduction: Literal["mean", "sum", "none"] = "mean",
                 label_smoothing: float = 0.0, chunk_size: int | None = None,
                 num_threads: int | None = None) -> None: ...
    # the loss: a NumPy scalar for "mean" and "sum", an array for "none"
    def forward(self, x: ArrayLike, linear_weight: ArrayLike, target: ArrayLike,
                linear_bias: ArrayLike | None = None,
                sample_weight: ArrayLike | None = None) -> np.floating[Any] | _Array: ...
    def __call__(self, x: ArrayLike, linear_weight: ArrayLike, target: ArrayLike,
                 linear_bias: ArrayLike | None = None,
                 sample_weight: ArrayLike | None = None) -> np.floating[Any] | _Array: ...
    def backward(self, grad_output: ArrayLike = 1.0) -> _Grads: ...

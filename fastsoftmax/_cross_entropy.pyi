# Type stubs for _cross_entropy.py: cross_entropy.
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["cross_entropy"]

_Loss = np.floating[Any]
_Losses = NDArray[np.floating[Any]]
_Grad = NDArray[np.floating[Any]]

# The result's type follows reduction= ("none": one loss per sample) and
# return_grad= (True: a (loss, grad) pair; out= is the gradient's buffer).

@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = -1, *,
                  weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Literal["mean", "sum"] = "mean",
                  label_smoothing: float = 0.0, return_grad: Literal[False] = False,
                  out: NDArray[Any] | None = None, num_threads: int | None = None,
                  normalizer: float | None = None) -> _Loss: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = -1, *,
                  weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Literal["none"],
                  label_smoothing: float = 0.0, return_grad: Literal[False] = False,
                  out: NDArray[Any] | None = None, num_threads: int | None = None,
                  normalizer: float | None = None) -> _Losses: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = -1, *,
                  weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Literal["mean", "sum"] = "mean",
                  label_smoothing: float = 0.0, return_grad: Literal[True],
                  out: NDArray[Any] | None = None,
                  num_threads: int | None = None,
                  normalizer: float | None = None) -> tuple[_Loss, _Grad]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = -1, *,
                  weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Literal["none"],
                  label_smoothing: float = 0.0, return_grad: Literal[True],
                  out: NDArray[Any] | None = None,
                  num_threads: int | None = None,
                  normalizer: float | None = None) -> tuple[_Losses, _Grad]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = -1, *,
                  weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                  ignore_index: int = -100, reduction: Literal["mean", "sum", "none"] = "mean",
                  label_smoothing: float = 0.0, return_grad: bool = False,
                  out: NDArray[Any] | None = None, num_threads: int | None = None,
                  normalizer: float | None = None
                  ) -> _Loss | _Losses | tuple[_Loss | _Losses, _Grad]: ...

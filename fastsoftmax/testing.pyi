# Type stubs for testing.py: numerical_gradient, check_gradient.
from collections.abc import Callable
from typing import Any, SupportsFloat

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["numerical_gradient", "check_gradient"]

def numerical_gradient(f: Callable[[NDArray[np.float64]], SupportsFloat], x: ArrayLike,
                       eps: float = 1e-6) -> NDArray[np.float64]: ...
# the report: max_rel_error, max_abs_error (float), worst_index (tuple of
# int), passed (bool)
def check_gradient(f: Callable[[NDArray[np.float64]], SupportsFloat],
                   grad: Callable[[NDArray[np.float64]], ArrayLike] | ArrayLike, x: ArrayLike,
                   eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8,
                   raise_on_failure: bool = False) -> dict[str, Any]: ...

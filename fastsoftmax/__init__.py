"""fastsoftmax: fast, accurate softmax-family kernels for NumPy arrays."""

from . import special as special  # scipy.special's signatures and defaults
from ._backward import log_softmax_backward, softmax_backward, softmax_jacobian
from ._config import get_config, show_config
from ._cross_entropy import cross_entropy
from ._forward import log_softmax, logsumexp, softmax
from ._linear_cross_entropy import linear_cross_entropy
from .layers import CrossEntropyLoss, LinearCrossEntropyLoss, LogSoftmax, Softmax

__version__ = "0.1.0"

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_backward",
    "log_softmax_backward",
    "softmax_jacobian",
    "cross_entropy",
    "linear_cross_entropy",
    "Softmax",
    "LogSoftmax",
    "CrossEntropyLoss",
    "LinearCrossEntropyLoss",
    "get_config",
    "show_config",
]

# Type stubs of the public names (the functions' own stubs sit beside
# their modules: _forward.pyi, _backward.pyi, _cross_entropy.pyi, ...).
from . import special as special
from ._backward import log_softmax_backward as log_softmax_backward
from ._backward import softmax_backward as softmax_backward
from ._backward import softmax_jacobian as softmax_jacobian
from ._config import get_config as get_config
from ._config import show_config as show_config
from ._cross_entropy import cross_entropy as cross_entropy
from ._forward import log_softmax as log_softmax
from ._forward import logsumexp as logsumexp
from ._forward import softmax as softmax
from ._linear_cross_entropy import linear_cross_entropy as linear_cross_entropy
from .layers import CrossEntropyLoss as CrossEntropyLoss
from .layers import LinearCrossEntropyLoss as LinearCrossEntropyLoss
from .layers import LogSoftmax as LogSoftmax
from .layers import Softmax as Softmax

__version__: str

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

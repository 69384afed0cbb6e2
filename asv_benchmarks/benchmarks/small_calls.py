"""Small calls: the time of one call on one sample's logits, a minibatch, a
batch (``timing.SMALL_SHAPES``), where the fixed cost of a call counts and
not memory traffic.  Each call allocates its result and runs on the default
thread count, as a plain call does.

- ``SmallCalls.time_call``: the time of one call;
- ``SmallCalls.track_ratio_to_reference``: call time / the NumPy twin's,
  medians of an interleaved run, as in the other suites;
- ``SmallCallsTorch.track_ratio_to_torch``: call time / PyTorch's eager
  call on tensors made once from the same arrays; skipped where PyTorch is
  not installed (asv's own environments: ``tools/compare_peers.py`` prints
  the table beside PyTorch).
"""

from typing import ClassVar

from . import common
from .common import timing


class _SmallCall:
    """One public function on one small case; ``peer`` is the contender of
    the ratio benchmark."""

    param_names: ClassVar[list] = ["function", "shape", "dtype"]
    params: ClassVar[list] = [list(timing.SMALL_FUNCTIONS),
                              [timing.shape_name(s) for s in timing.SMALL_SHAPES],
                              ["float32", "float64"]]
    peer = "numpy"

    def setup(self, function, shape, dtype):
        args, kwargs = timing.make_inputs(function, timing.parse_shape(shape), dtype=dtype,
                                          out=False)
        self.call = timing.fastsoftmax_call(function, args, kwargs, None)
        peer = timing.peer_calls(function, args, kwargs, 1, peers=[self.peer])
        if self.peer not in peer:
            raise NotImplementedError(f"{self.peer} is not installed")
        self.call_peer = peer[self.peer]

    def _ratio_to_peer(self):
        calls = {"call": self.call, "peer": self.call_peer}
        medians = timing.interleaved_medians(calls, common.REFERENCE_REPEAT,
                                             number=timing.calls_per_sample(calls))
        return medians["call"] / medians["peer"]


class SmallCalls(_SmallCall):
    def time_call(self, *params):
        self.call()

    def track_ratio_to_reference(self, *params):
        return self._ratio_to_peer()

    track_ratio_to_reference.unit = "ratio"


class SmallCallsTorch(_SmallCall):
    params: ClassVar[list] = [*_SmallCall.params[:2], ["float32"]]
    peer = "torch"

    def track_ratio_to_torch(self, *params):
        return self._ratio_to_peer()

    track_ratio_to_torch.unit = "ratio"

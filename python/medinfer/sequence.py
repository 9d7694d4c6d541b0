"""Sequence models (LSTM, GRU): batches of uneven sequences, and streams that grow one
step at a time (one bed of a monitor).

>>> net = medinfer.Network.load("examples/models/icu_two_branch.onnx")
>>> risk = net.run_sequences(vitals, lengths=hours, static={"static": patients})  # [B, 1]
>>> with medinfer.Stream(net) as bed:
...     bed.set_static([1, 71, 178, 82.5])        # sex, age, height, weight
...     for sample in monitor:                     # 8 vitals an hour
...         risk = bed.push(sample)                # the prediction so far, O(1) work

A sequence model is an ONNX network with one input of shape [batch, time, features]
(the sequence input) and optionally static inputs of shape [batch, k]; its first output
is the prediction (see "Sequence models" in include/medinfer.h).
"""
from __future__ import annotations

import ctypes
from typing import Any, Mapping

import numpy as np

from . import _native
from .errors import check as _check
from .network import Network

__all__ = ["Stream", "run_sequences"]

_BUFFER_TOO_SMALL = 6


def _sequence_input(network: Network) -> tuple[str, list[int | None]]:
    """The [batch, time, features] input (the library checks the rest of the contract)."""
    for name, dims in network.inputs:
        if len(dims) == 3:
            return name, dims
    raise ValueError(f"not a sequence model: no input of rank 3 among {network.inputs}")


def _static_names(network: Network) -> list[str]:
    sequence_name, _ = _sequence_input(network)
    return [name for name, _ in network.inputs if name != sequence_name]


def _values_per_sequence(network: Network) -> int | None:
    """Values of the first output per sequence, when the file declares them ([N, 1] -> 1)."""
    dims = network.outputs[0][1] if network.outputs else []
    if len(dims) < 1 or any(d is None for d in dims[1:]):
        return None
    return int(np.prod(dims[1:], dtype=np.int64))


def _static_arrays(network: Network, static: Any) -> dict[str, np.ndarray]:
    """{name: float32 [batch, k]} from None, one array (the only static input) or a dict."""
    if static is None:
        return {}
    if not isinstance(static, Mapping):
        names = _static_names(network)
        if len(names) != 1:
            raise ValueError(f"the model has static inputs {names}: pass a dict {{name: array}}")
        static = {names[0]: static}
    return {name: np.atleast_2d(np.require(value, dtype=np.float32, requirements="C"))
            for name, value in static.items()}


def run_sequences(network: Network, values: Any, lengths: Any = None, static: Any = None) -> np.ndarray:
    """Runs a sequence model on a batch of sequences padded to a common length and returns
    the first output at each sequence's last step, float32 [batch, k].

    values   [batch, max_steps, features] raw values; steps past a sequence's length are
             ignored (any value, NaN included)
    lengths  `batch` integers in 1..max_steps, or None (every sequence is max_steps long)
    static   the static inputs: None, an array [batch, k] when the model has one, or
             {name: array} (see `Network.inputs`)

    The prediction for a sequence of length L is what the model gives for its first L
    steps alone. Also available as `Network.run_sequences(values, lengths, static)`."""
    run = _native.require("medinfer_sequence_run")
    array = np.require(values, dtype=np.float32, requirements="C")
    if array.ndim != 3:
        raise ValueError(f"expected values of shape [batch, steps, features], got shape {array.shape}")
    batch_size, max_steps, features = array.shape
    batch = _native.SequenceBatch()
    _native.require("medinfer_sequence_batch_init")(ctypes.byref(batch))
    batch.values = array.ctypes.data if array.size else None
    batch.batch, batch.max_steps, batch.features = batch_size, max_steps, features
    steps = None
    if lengths is not None:
        steps = np.require(lengths, dtype=np.int64, requirements="C").reshape(-1)
        if steps.size != batch_size:
            raise ValueError(f"{steps.size} lengths for {batch_size} sequences")
        batch.lengths = steps.ctypes.data
    statics = _static_arrays(network, static)
    tensors = (_native.InputTensor * max(len(statics), 1))()
    for tensor, (name, value) in zip(tensors, statics.items()):
        _native.describe_input(tensor, name, value)
    batch.static_inputs = tensors if statics else None
    batch.static_input_count = len(statics)

    session = network._session()
    count = ctypes.c_size_t()
    per_sequence = _values_per_sequence(network)
    if per_sequence is None:  # not declared in the file: ask the library (writes nothing)
        status = run(session, ctypes.byref(batch), None, 0, ctypes.byref(count))
        if status != _BUFFER_TOO_SMALL:
            _check(status)
        per_sequence = count.value // max(batch_size, 1)
    out = np.empty((batch_size, per_sequence), dtype=np.float32)
    status = run(session, ctypes.byref(batch), out.ctypes.data if out.size else None, out.size, ctypes.byref(count))
    if status == _BUFFER_TOO_SMALL and count.value > out.size:  # the declared shape was wrong
        out = np.empty((batch_size, count.value // max(batch_size, 1)), dtype=np.float32)
        status = run(session, ctypes.byref(batch), out.ctypes.data, out.size, ctypes.byref(count))
    _check(status)
    return out[:, : count.value // max(batch_size, 1)]


# Network is the class users hold (Network.load); the method lives here with the rest of
# the sequence API.
Network.run_sequences = run_sequences


class Stream(_native.OwnedHandle):
    """The state of one growing sequence (one bed): recurrent state, static inputs and step
    count, a few kilobytes. Any number of streams may share one network, in any threads;
    one stream is used by one thread at a time. The stream keeps its network alive.

    mode   'auto': exact O(1) steps for unidirectional models (the output after step t is
           the batch output on steps 0..t), 'window' for models with a bidirectional or
           reverse recurrence; 'window': every push reruns the model on the last `window`
           steps.
    window steps kept in window mode, 1..4096.
    explain_steps  recent steps `explain` may explain, 0..4096 (0: no explanations and
           nothing extra kept; an exact stream keeps these samples and its state before
           each of them)."""

    _free_function = "medinfer_stream_free"

    _MODES = {"auto": _native.STREAM_AUTO, "window": _native.STREAM_WINDOW}

    def __init__(self, network: Network, mode: str = "auto", window: int = 48, explain_steps: int = 0):
        if mode not in self._MODES:
            raise ValueError(f"mode must be 'auto' or 'window', got {mode!r}")
        self._lib = _native.library()
        self._handle = None
        self.network = network
        self.mode = mode
        self.window = window
        self.explain_steps = explain_steps
        options = _native.StreamOptions()
        _native.require("medinfer_stream_options_init")(ctypes.byref(options))
        options.mode = self._MODES[mode]
        options.window = window
        if explain_steps:
            _native.require("medinfer_stream_explain", "the network-explanation API")
            options.struct_size = ctypes.sizeof(_native.StreamOptions)
            options.explain_steps = explain_steps
        handle = ctypes.c_void_p()
        _check(_native.require("medinfer_stream_create")(network._handle, ctypes.byref(options),
                                                            ctypes.byref(handle)))
        self._handle = handle
        self._out = np.empty(_values_per_sequence(network) or 1, dtype=np.float32)
        self._push = self._lib.medinfer_stream_push
        self._count = ctypes.c_size_t()
        self._count_ref = ctypes.byref(self._count)

    def set_static(self, values: Any, name: str | None = None) -> None:
        """Sets a static input (one row, e.g. [sex, age, height, weight]); `name` may be
        omitted when the model has only one. Set them all before the first push; a later
        change applies from the next push on. NaN and Inf are rejected."""
        row = np.require(values, dtype=np.float32, requirements="C").reshape(-1)
        _check(self._lib.medinfer_stream_set_static(self._live(), name.encode() if name is not None else None,
                                                   row.ctypes.data, row.size))

    def push(self, sample: Any) -> np.ndarray:
        """Appends one time step (the features, raw values) and returns the model's first
        output for the sequence so far (a new array). A rejected sample (NaN, Inf, wrong
        size) raises MedInferError and leaves the stream exactly as it was."""
        # A bed pushes a few values at a time, so the per-call Python work matters as
        # much as the step itself: skip conversions when the sample is already float32.
        if isinstance(sample, np.ndarray) and sample.dtype == np.float32 and sample.flags.c_contiguous:
            values = sample
        else:
            values = np.require(sample, dtype=np.float32, requirements="C")
        count = self._count
        status = self._push(self.network._handle, self._live(), values.ctypes.data, values.size,
                            self._out.ctypes.data, self._out.size, self._count_ref)
        if status == _BUFFER_TOO_SMALL and count.value > self._out.size:  # not consumed: retry
            self._out = np.empty(count.value, dtype=np.float32)
            status = self._push(self.network._handle, self._live(), values.ctypes.data, values.size,
                                self._out.ctypes.data, self._out.size, self._count_ref)
        if status:
            _check(status)
        return self._out[: count.value].copy()

    def explain(self, reference: Any, *, method: str = "auto", budget: int = 1000, seed: int = 0,
                time_windows: int = 1, window_steps: int = 0) -> Any:
        """Shapley values of the latest output over the most recent steps: one player per
        channel per time window (counted back from the latest step; window_steps = 0 splits
        the last min(explain_steps, steps) steps evenly, the earliest window taking the
        remainder). A removed channel takes `reference` (one value per feature, e.g.
        normal vital signs) at every explained step; earlier steps and the static inputs
        keep the stream's own. The stream is not changed. Needs explain_steps at creation.
        Player names count steps back from the latest, t0: "vitals[2] t-11..-6".
        Returns a medinfer.NetworkExplanation."""
        from .explain import explain_stream
        return explain_stream(self, reference, method=method, budget=budget, seed=seed,
                              time_windows=time_windows, window_steps=window_steps)

    @property
    def steps(self) -> int:
        """Steps consumed since creation or the last reset."""
        steps = ctypes.c_uint64()
        _check(self._lib.medinfer_stream_steps(self._live(), ctypes.byref(steps)))
        return steps.value

    def reset(self) -> None:
        """Back to step 0 (zero recurrent state, empty window); static inputs are kept."""
        _check(self._lib.medinfer_stream_reset(self._live()))

    def _live(self) -> ctypes.c_void_p:
        if not self._handle:
            raise ValueError("the stream is closed")
        return self._handle

    def __repr__(self) -> str:
        state = f"{self.steps} steps" if self._handle else "closed"
        return f"<medinfer.Stream {self.mode} ({state})>"

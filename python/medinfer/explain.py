"""Shapley explanations of networks: which vital-sign channels (over which hours), static
features or image segments moved a sequence or image model's output.

>>> net = medinfer.Network.load("examples/models/icu_lstm.onnx")
>>> why = net.explain_sequence(vitals, background=normal_vitals)     # [T, 8] and [8]
>>> sorted(zip(why.players, why.values[:, 0]), key=lambda p: -abs(p[1]))[:3]
>>> with medinfer.Stream(net, explain_steps=12) as bed:
...     for sample in monitor:
...         risk = bed.push(sample)
...     why = bed.explain(normal_vitals, time_windows=2)     # last 12 h, two 6 h windows
>>> cnn = medinfer.Network.load("examples/models/skin_cnn_300.onnx")
>>> why = cnn.explain_image(photo, grid=(8, 8))
>>> medinfer.plots.image_heatmap_png(photo, why, "why.png")

Values are baseline (interventional) Shapley values: the value of a coalition of players
is the model's output with those players' values taken from the explained input and the
others' from the background (reference), averaged over the background rows. They add up:
`base_values + values.sum(0) == output` (see "Shapley explanations of networks" in
include/medinfer.h). Exact values enumerate every coalition (method "exact", at most 20
players; "auto" does so up to 16); "permutation" samples permutations of the players
within `budget` model evaluations per background row.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import _native
from .errors import check as _check

__all__ = ["NetworkExplanation", "explain_sequence", "explain_image", "explain_stream"]

_BUFFER_TOO_SMALL = 6
_API = "the network-explanation API"
_METHODS = {"auto": _native.SHAPLEY_AUTO, "exact": _native.SHAPLEY_EXACT,
            "permutation": _native.SHAPLEY_PERMUTATION}
_MASKERS = {"mean": _native.MASK_MEAN, "blur": _native.MASK_BLUR}


@dataclass
class NetworkExplanation:
    """One explanation of a network's first output.

    values        [players, K] float64: each player's Shapley value for each of the K
                  output values (e.g. K = 1 for a risk, K = classes for probabilities)
    base_values   [K] float64: the value of the empty coalition (the output with every
                  player taken from the background)
    players       one name per row of `values`:
                  - a static column: "<input name>[j]", e.g. "static[1]";
                  - a channel of the sequence input: "<input name>[c]", e.g. "vitals[5]",
                    and with several time windows "<input name>[c] t<first>..<last>"
                    (inclusive step indices; "t<i>" for a one-step window). For
                    `Network.explain_sequence` steps count from 0, the first step of the
                    sequence; for `Stream.explain` they count back from the latest step,
                    which is t0 ("vitals[5] t-11..-6", "vitals[5] t-5..0");
                  - an image segment: "segment <label>".
    output        [K]: base_values + values.sum(0), the model output explained
    segments      images: [H, W] int32, the segment label of each image pixel
    pixel_values  images: [H, W, K] float32, each pixel holding its segment's values
    """
    values: np.ndarray
    base_values: np.ndarray
    players: list[str]
    output: np.ndarray
    segments: np.ndarray | None = None
    pixel_values: np.ndarray | None = None

    def top(self, k: int = 5, output: int = 0) -> list[tuple[str, float]]:
        """The k players with the largest |value| for output `output`, largest first."""
        column = self.values[:, output]
        order = np.argsort(-np.abs(column), kind="stable")[:k]
        return [(self.players[i], float(column[i])) for i in order]


# --------------------------------------------------------------------------------------
# options and results
# --------------------------------------------------------------------------------------

def _method(method: str) -> int:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
    return _METHODS[method]


def _count(name: str, value: Any) -> int:
    """A non-negative integer option (the library checks the ranges)."""
    if isinstance(value, (bool, np.bool_)) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _shapley_options(method: str, budget: int, seed: int, time_windows: int, window_steps: int):
    options = _native.ShapleyOptions()
    _native.require("medinfer_shapley_options_init", _API)(ctypes.byref(options))
    options.struct_size = ctypes.sizeof(_native.ShapleyOptions)
    options.method = _method(method)
    options.budget = _count("budget", budget)
    options.seed = int(seed) % (1 << 64)
    options.time_windows = _count("time_windows", time_windows)
    options.window_steps = _count("window_steps", window_steps)
    return options


def _call_growing(call, expected: tuple[int, int] | None):
    """Runs `call(buffer, length, players_ref, outputs_ref)` with a float64 buffer sized
    for `expected` (players, K) when known; on BUFFER_TOO_SMALL (the counts are set and
    nothing is computed) it retries once with the size the library asks for. Returns
    (values [players + 1, K], players, K)."""
    players, outputs = ctypes.c_size_t(), ctypes.c_size_t()
    buffer = np.empty((expected[0] + 1) * expected[1] if expected else 0, dtype=np.float64)
    status = call(buffer, players, outputs)
    if status == _BUFFER_TOO_SMALL:
        needed = (players.value + 1) * outputs.value
        if needed > buffer.size:
            buffer = np.empty(needed, dtype=np.float64)
            status = call(buffer, players, outputs)
    _check(status)
    m, k = players.value, outputs.value
    return buffer[: (m + 1) * k].reshape(m + 1, k), m, k


def _result(table: np.ndarray, players: list[str], **extra: Any) -> NetworkExplanation:
    values = np.ascontiguousarray(table[:-1])
    base = table[-1].copy()
    if len(players) != values.shape[0]:  # the library's count wins; keep names usable
        players = [f"player {i}" for i in range(values.shape[0])]
    return NetworkExplanation(values=values, base_values=base, players=players,
                              output=base + values.sum(axis=0), **extra)


def _declared_outputs(network: Any) -> int | None:
    """Values of the first output per batch row when the file declares them."""
    dims = network.outputs[0][1] if network.outputs else []
    if len(dims) < 1 or any(d is None for d in dims[1:]):
        return None
    return int(np.prod(dims[1:], dtype=np.int64))


# --------------------------------------------------------------------------------------
# time windows and player names
# --------------------------------------------------------------------------------------

def time_windows_of(steps: int, time_windows: int, window_steps: int) -> list[tuple[int, int]]:
    """The [first, last] steps (inclusive, 0-based over `steps` explained-into steps) of
    each window, earliest first, as the library forms them: windows of `window_steps`
    ending at the last step, or (window_steps = 0) all the steps split evenly with the
    earliest window taking the remainder. Empty when they do not fit (the library says
    why)."""
    windows = max(time_windows, 1)
    if window_steps:
        sizes = [window_steps] * windows
    else:
        each, rest = divmod(steps, windows)
        sizes = [each + rest] + [each] * (windows - 1)
    if sum(sizes) > steps or min(sizes) < 1:
        return []
    spans, end = [], steps
    for size in reversed(sizes):
        spans.append((end - size, end - 1))
        end -= size
    return spans[::-1]


def _channel_names(sequence_name: str, features: int, spans: list[tuple[int, int]], offset: int = 0) -> list[str]:
    if len(spans) <= 1:
        return [f"{sequence_name}[{c}]" for c in range(features)]
    names = []
    for first, last in spans:
        first, last = first + offset, last + offset
        when = f"t{first}" if first == last else f"t{first}..{last}"
        names += [f"{sequence_name}[{c}] {when}" for c in range(features)]
    return names


# --------------------------------------------------------------------------------------
# sequences
# --------------------------------------------------------------------------------------

def _batch(values: np.ndarray, statics: Mapping[str, np.ndarray], keep: list) -> Any:
    batch = _native.SequenceBatch()
    _native.require("medinfer_sequence_batch_init")(ctypes.byref(batch))
    batch.values = values.ctypes.data if values.size else None
    batch.batch, batch.max_steps, batch.features = values.shape
    tensors = (_native.InputTensor * max(len(statics), 1))()
    for tensor, (name, value) in zip(tensors, statics.items()):
        _native.describe_input(tensor, name, value)
    batch.static_inputs = tensors if statics else None
    batch.static_input_count = len(statics)
    keep += [values, tensors, statics]
    return batch


def _float_array(value: Any, what: str) -> np.ndarray:
    array = np.require(value, dtype=np.float32, requirements="C")
    if array.dtype != np.float32:
        raise TypeError(f"{what} must be numeric")
    return array


def explain_sequence(network: Any, sequence: Any, static: Any = None, background: Any = None,
                     background_static: Any = None, *, method: str = "auto", budget: int = 1000, seed: int = 0,
                     time_windows: int = 1, window_steps: int = 0) -> NetworkExplanation:
    """Explains a sequence model's first output for one sequence (medinfer_explain_sequence).

    sequence           [T, F] (or [1, T, F]) raw values: the sequence explained, all T steps
    static             the static inputs of this sequence, for models that have them: an
                       array [k] when there is one, or {name: [k]} (as run_sequences)
    background         the reference the removed players take their values from, required:
                       [B, T, F] B reference sequences (step t takes reference step t),
                       [T, F] one reference sequence, or [F] one reference sample used at
                       every step (e.g. normal vital signs). Each coalition costs B runs.
    background_static  the reference static rows, required when the model has static
                       inputs: [B, k] (or [k], repeated for every background row) or
                       {name: array}
    method             "auto" (exact up to 16 players), "exact" (at most 20), "permutation"
    budget, seed       permutation sampling: model evaluations per background row (at least
                       2 x players) and the seed (same seed, same values)
    time_windows       players per channel, one per window of steps, earliest first
    window_steps       steps per window, the windows ending at the last step (earlier steps
                       always keep the sequence's values); 0 splits all T steps evenly, the
                       earliest window taking the remainder

    Players: every static column ("static[0]" ...), then per window every channel
    ("vitals[3]", or "vitals[3] t36..41" with several windows; steps from 0). Errors
    (wrong shapes, NaN, limits) raise MedInferError."""
    from .sequence import _sequence_input, _static_arrays, _static_names
    run = _native.require("medinfer_explain_sequence", _API)
    if background is None:
        raise ValueError("explain_sequence needs a background: reference sequences [B, T, F], one reference "
                         "sequence [T, F] or one reference sample [F] (e.g. normal values)")
    x = _float_array(sequence, "sequence")
    if x.ndim == 2:
        x = x.reshape(1, *x.shape)
    if x.ndim != 3 or x.shape[0] != 1:
        raise ValueError(f"expected one sequence of shape [T, F] or [1, T, F], got shape {np.shape(sequence)}")
    reference = _float_array(background, "background")
    if reference.ndim == 1:
        reference = reference.reshape(1, 1, -1)
    elif reference.ndim == 2:
        reference = reference.reshape(1, *reference.shape)
    if reference.ndim != 3:
        raise ValueError(f"expected a background of shape [B, T, F], [T, F] or [F], got shape {np.shape(background)}")
    rows = reference.shape[0]

    statics = _static_arrays(network, static)
    reference_statics = _static_arrays(network, background_static)
    for name, value in list(reference_statics.items()):
        if value.shape[0] == 1 and rows > 1:  # one reference row for every background sequence
            reference_statics[name] = np.ascontiguousarray(np.repeat(value, rows, axis=0))

    keep: list = []
    batch = _batch(x, statics, keep)
    background_batch = _batch(reference, reference_statics, keep)
    options = _shapley_options(method, budget, seed, time_windows, window_steps)

    sequence_name, _ = _sequence_input(network)
    static_widths = {name: dims[1] if len(dims) == 2 else None for name, dims in network.inputs
                     if name != sequence_name}
    names = []
    for name in _static_names(network):
        width = static_widths.get(name)
        if width is None and name in statics:
            width = statics[name].shape[-1]
        names += [f"{name}[{j}]" for j in range(width or 0)]
    spans = time_windows_of(x.shape[1], time_windows, window_steps)
    names += _channel_names(sequence_name, x.shape[2], spans)
    k = _declared_outputs(network)
    expected = (len(names), k) if k else None
    session = network._session()

    def call(buffer, players, outputs):
        return run(session, ctypes.byref(batch), ctypes.byref(background_batch), ctypes.byref(options),
                   buffer.ctypes.data if buffer.size else None, buffer.size, ctypes.byref(players),
                   ctypes.byref(outputs))

    table, _, _ = _call_growing(call, expected)
    return _result(table, names)


def explain_stream(stream: Any, reference: Any, *, method: str = "auto", budget: int = 1000, seed: int = 0,
                   time_windows: int = 1, window_steps: int = 0) -> NetworkExplanation:
    """Explains a stream's latest output over its most recent steps
    (medinfer_stream_explain); see `Stream.explain`."""
    from .sequence import _sequence_input
    run = _native.require("medinfer_stream_explain", _API)
    handle = stream._live()
    network = stream.network
    sample = _float_array(reference, "reference").reshape(-1)
    options = _shapley_options(method, budget, seed, time_windows, window_steps)
    sequence_name, dims = _sequence_input(network)
    features = dims[2] if dims[2] is not None else sample.size
    kept = stream.explain_steps
    consumed = stream.steps
    spans = time_windows_of(min(kept, consumed), time_windows, window_steps)
    # Step indices relative to the latest step (t0), counting back.
    names = _channel_names(sequence_name, features, spans, offset=-spans[-1][1] if spans else 0)
    k = _declared_outputs(network)
    expected = (len(names), k) if k else None

    def call(buffer, players, outputs):
        return run(network._handle, handle, sample.ctypes.data if sample.size else None, sample.size,
                   ctypes.byref(options), buffer.ctypes.data if buffer.size else None, buffer.size,
                   ctypes.byref(players), ctypes.byref(outputs))

    table, _, _ = _call_growing(call, expected)
    return _result(table, names)


# --------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------

def grid_segments(height: int, width: int, rows: int, cols: int) -> np.ndarray:
    """The grid's segment labels over an image, [height, width] int32: pixel (y, x) is in
    segment (y * rows // height) * cols + (x * cols // width)."""
    ys = (np.arange(height, dtype=np.int64) * rows) // height
    xs = (np.arange(width, dtype=np.int64) * cols) // width
    return (ys[:, None] * cols + xs[None, :]).astype(np.int32)


def explain_image(network: Any, image: Any, *, grid: tuple[int, int] = (8, 8), segments: Any = None,
                  masker: str = "mean", blur_radius: int = 0, method: str = "auto", budget: int = 1000,
                  seed: int = 0) -> NetworkExplanation:
    """Explains an image model's first output over image segments (medinfer_explain_image).

    image        uint8 [H, W, 3] RGB, [H, W, 4] RGBA or [H, W] grey, any size: preprocessed
                 as classify_image does
    grid         (rows, cols) of a regular grid of segments, when `segments` is None
    segments     or the caller's segmentation: int [H, W] labels 0 .. n - 1, every label used
                 (e.g. superpixels)
    masker       "mean": a removed segment takes the mean colour of the model input;
                 "blur": a box-blurred copy (`blur_radius` in model-input pixels, 0: the
                 larger side / 16)
    method, budget, seed   as for explain_sequence (exact up to 16 segments with "auto")

    Players are "segment 0" ... in label order (grid: row-major). The explanation also
    carries `segments` [H, W] and `pixel_values` [H, W, K] (each pixel its segment's
    values, for overlays such as medinfer.plots.image_heatmap_png)."""
    run = _native.require("medinfer_explain_image", _API)
    pixels = np.ascontiguousarray(image)
    if pixels.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        fmt = _native.PIXELS_GREY
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        fmt = _native.PIXELS_RGB if pixels.shape[2] == 3 else _native.PIXELS_RGBA
    else:
        raise ValueError(f"expected an H x W, H x W x 3 or H x W x 4 image, got shape {pixels.shape}")
    if masker not in _MASKERS:
        raise ValueError(f"masker must be 'mean' or 'blur', got {masker!r}")
    height, width = pixels.shape[:2]
    img = _native.Image(ctypes.sizeof(_native.Image), pixels.ctypes.data if pixels.size else None, width, height,
                        pixels.strides[0], fmt, 0)
    options = _native.ImageExplainOptions()
    _native.require("medinfer_image_explain_options_init", _API)(ctypes.byref(options))
    options.struct_size = ctypes.sizeof(_native.ImageExplainOptions)
    options.masker = _MASKERS[masker]
    options.method = _method(method)
    options.blur_radius = _count("blur_radius", blur_radius)
    options.budget = _count("budget", budget)
    options.seed = int(seed) % (1 << 64)
    if segments is not None:
        labels = np.asarray(segments)
        if labels.shape != (height, width):
            raise ValueError(f"segments must have the image's shape {(height, width)}, got {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"segments must be integer labels, got {labels.dtype}")
        if labels.size and (labels.min() < np.iinfo(np.int32).min or labels.max() > np.iinfo(np.int32).max):
            raise ValueError("segment labels must fit in int32")
        labels = np.ascontiguousarray(labels, dtype=np.int32)
        count = int(labels.max()) + 1 if labels.size else 0
        options.segments = labels.ctypes.data if labels.size else None
        options.segment_count = max(count, 0)
        options.grid_rows = options.grid_cols = 0
    else:
        rows, cols = (grid, grid) if np.ndim(grid) == 0 else grid
        options.grid_rows = _count("grid rows", rows)
        options.grid_cols = _count("grid cols", cols)
        labels = None  # filled in once the library accepted the grid
        count = options.grid_rows * options.grid_cols
    session = network._session()
    players, outputs = ctypes.c_size_t(), ctypes.c_size_t()

    def call(table: np.ndarray, pixel_values: np.ndarray) -> int:
        return run(session, ctypes.byref(img), ctypes.byref(options), table.ctypes.data if table.size else None,
                   table.size, pixel_values.ctypes.data if pixel_values.size else None, pixel_values.size,
                   ctypes.byref(players), ctypes.byref(outputs))

    k = _declared_outputs(network)
    if not k or not count:  # ask the counts (BUFFER_TOO_SMALL with them set; nothing computed)
        status = call(np.empty(0), np.empty(0, dtype=np.float32))
        if status != _BUFFER_TOO_SMALL:
            _check(status)
        count, k = players.value, outputs.value
    for _ in range(2):
        table = np.empty((count + 1) * k, dtype=np.float64)
        pixel_values = np.empty(height * width * k, dtype=np.float32)
        status = call(table, pixel_values)
        if status != _BUFFER_TOO_SMALL or (players.value, outputs.value) == (count, k):
            break
        count, k = players.value, outputs.value  # the file's declared output shape was wrong
    _check(status)
    m = players.value
    table = table.reshape(m + 1, k)
    if labels is None:
        labels = grid_segments(height, width, options.grid_rows, options.grid_cols)
    names = [f"segment {i}" for i in range(m)]
    return _result(table, names, segments=labels, pixel_values=pixel_values.reshape(height, width, k))

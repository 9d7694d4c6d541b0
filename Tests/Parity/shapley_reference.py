"""Brute-force baseline Shapley values, computed with onnxruntime, for the network
explanations (test_network_shap.py): the reference the library's exact values must equal.

The value of a coalition S of players is the model's output on an input that takes S's
players from the explained input and every other player's from a background row,
averaged over the background rows (baseline / interventional Shapley, as
include/medinfer.h defines it). `brute_force_shapley` evaluates the model on ALL 2^M
coalitions and weighs the marginal contributions exactly:

    phi_i = sum over S not containing i of |S|! (M - |S| - 1)! / M! * (v(S + i) - v(S))

and the base value is v(empty). Everything is float64 after the model's float32 outputs.

Input builders (coalition masks -> model feeds):
  - sequences: `sequence_feeds` (static columns first, then per time window every
    channel; steps outside the windows keep the explained values);
  - images: `image_model_input` (bilinear, half-pixel centres, x/255, as
    medinfer_classify_image), `model_input_segments` (each model-input pixel in the segment
    of the image pixel it samples nearest to) and `image_feeds` (mean-colour masker).

`permutation_shapley` is a plain antithetic permutation sampler, used to check the
reference itself (it must converge to the exact values) and to calibrate the sampling
tests before the library's numbers exist.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

F32 = np.float32


# --------------------------------------------------------------------------------------
# Exact Shapley values from all coalitions
# --------------------------------------------------------------------------------------

def all_coalitions(players: int) -> np.ndarray:
    """bool [2^players, players]: row s is the coalition whose bit i (of s) holds player i."""
    index = np.arange(1 << players, dtype=np.int64)
    return ((index[:, None] >> np.arange(players, dtype=np.int64)[None, :]) & 1).astype(bool)


def shapley_from_values(v: np.ndarray, players: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley values from the value of every coalition.

    v  [2^players, K] float64, v[s] the value of coalition s (bit i = player i).
    Returns (values [players, K], base [K] = v[0])."""
    v = np.asarray(v, dtype=np.float64)
    assert v.shape[0] == 1 << players, (v.shape, players)
    index = np.arange(1 << players, dtype=np.int64)
    sizes = _popcount(index)
    weights = np.array([math.factorial(s) * math.factorial(players - s - 1) / math.factorial(players)
                        for s in range(players)], dtype=np.float64)
    values = np.zeros((players, v.shape[1]), dtype=np.float64)
    for i in range(players):
        without = index[((index >> i) & 1) == 0]
        marginal = v[without | (1 << i)] - v[without]
        values[i] = (weights[sizes[without]][:, None] * marginal).sum(axis=0)
    return values, v[0].copy()


def _popcount(index: np.ndarray) -> np.ndarray:
    count = np.zeros_like(index)
    rest = index.copy()
    while rest.any():
        count += rest & 1
        rest >>= 1
    return count


def coalition_values(session, make_feeds: Callable[[np.ndarray], dict], masks: np.ndarray, rows: int = 1,
                     max_batch: int = 8192, output: int = 0) -> np.ndarray:
    """v(S) for each coalition mask, [C, K] float64: the model's `output` on the feeds
    `make_feeds(masks[chunk])` builds (len(chunk) * rows inputs, coalition-major: the rows
    of one coalition together), averaged over the rows."""
    per_chunk = max(1, max_batch // rows)
    parts = []
    for start in range(0, len(masks), per_chunk):
        chunk = masks[start:start + per_chunk]
        out = np.asarray(session.run(None, make_feeds(chunk))[output], dtype=np.float64)
        parts.append(out.reshape(len(chunk), rows, -1).mean(axis=1))
    return np.concatenate(parts)


def brute_force_shapley(session, make_feeds: Callable[[np.ndarray], dict], players: int, rows: int = 1,
                        max_batch: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact baseline Shapley values by evaluating ALL 2^players coalitions with
    onnxruntime. `make_feeds(masks)` turns bool coalition masks [C, players] into the feeds
    of C * rows model inputs (coalition-major; `rows` background rows per coalition).
    Returns (values [players, K], base [K], full [K] = v(all players))."""
    assert players <= 20, "brute force beyond 2^20 coalitions is not a test"
    masks = all_coalitions(players)
    v = coalition_values(session, make_feeds, masks, rows, max_batch)
    values, base = shapley_from_values(v, players)
    return values, base, v[-1].copy()


def permutation_shapley(evaluate: Callable[[np.ndarray], np.ndarray], players: int, permutations: int,
                        seed: int = 0) -> np.ndarray:
    """Antithetic permutation sampling (each permutation and its reverse): the mean
    marginal contribution of each player over the sampled orders. `evaluate(masks)`
    returns v for bool masks [C, players] as [C, K]. Returns [players, K]."""
    rng = np.random.default_rng(seed)
    pairs = max(1, permutations // 2)
    total = None
    for _ in range(pairs):
        order = rng.permutation(players)
        for perm in (order, order[::-1]):
            masks = np.zeros((players + 1, players), dtype=bool)
            for step, player in enumerate(perm):
                masks[step + 1:, player] = True
            v = evaluate(masks)
            contribution = np.zeros((players, v.shape[1]))
            contribution[perm] = v[1:] - v[:-1]
            total = contribution if total is None else total + contribution
    return total / (2 * pairs)


# --------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------

def time_windows(steps: int, windows: int, window_steps: int) -> list[tuple[int, int]]:
    """[first, last] (inclusive) steps of each window, earliest first, over a sequence of
    `steps` steps: `windows` windows of `window_steps` steps ending at the last step, or
    (window_steps = 0) all steps split evenly with the earliest taking the remainder."""
    if window_steps:
        sizes = [window_steps] * windows
    else:
        each, rest = divmod(steps, windows)
        sizes = [each + rest] + [each] * (windows - 1)
    assert sum(sizes) <= steps and min(sizes) >= 1, (steps, windows, window_steps)
    spans, end = [], steps
    for size in reversed(sizes):
        spans.append((end - size, end - 1))
        end -= size
    return spans[::-1]


def sequence_feeds(x: np.ndarray, background: np.ndarray, spans: list[tuple[int, int]], *,
                   static: np.ndarray | None = None, background_static: np.ndarray | None = None,
                   sequence_name: str = "vitals", static_name: str = "static") -> Callable[[np.ndarray], dict]:
    """Coalition masks -> feeds of a sequence model.

    x                  [T, F] the explained sequence
    background         [B, T, F] or [B, 1, F] (one reference sample for every step)
    spans              the time windows (see `time_windows`); steps outside them keep x
    static             [k] the explained static row (players 0..k-1), with
    background_static  [B, k]
    Players: the k static columns, then for each span every channel."""
    x = np.asarray(x, dtype=F32)
    background = np.asarray(background, dtype=F32)
    steps, features = x.shape
    k = 0 if static is None else len(static)
    rows = background.shape[0]

    def make(masks: np.ndarray) -> dict:
        count = masks.shape[0]
        keep = np.ones((count, steps, features), dtype=bool)
        for w, (first, last) in enumerate(spans):
            keep[:, first:last + 1, :] = masks[:, None, k + w * features:k + (w + 1) * features]
        bg = np.broadcast_to(background, (rows, steps, features))
        seq = np.where(keep[:, None], x[None, None], bg[None])                 # [C, B, T, F]
        feeds = {sequence_name: np.ascontiguousarray(seq.reshape(count * rows, steps, features), dtype=F32)}
        if static is not None:
            s = np.where(masks[:, None, :k], np.asarray(static, F32)[None, None],
                         np.asarray(background_static, F32)[None])                # [C, B, k]
            feeds[static_name] = np.ascontiguousarray(s.reshape(count * rows, k), dtype=F32)
        return feeds

    return make


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------

def _axis(n_in: int, n_out: int):
    x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (x - i0).astype(F32)


def image_model_input(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """What medinfer_classify_image feeds a model that fixes its input to height x width
    (RGB, NHWC): bilinear resize on half-pixel centres (tf.image.resize) in float32, then
    x * float32(1/255). [height, width, 3] float32."""
    src = np.asarray(image)[:, :, :3].astype(F32)
    h, w = src.shape[:2]
    scale = F32(1.0 / 255.0)
    if (h, w) == (height, width):
        return src * scale
    y0, y1, wy = _axis(h, height)
    x0, x1, wx = _axis(w, width)
    one = F32(1)
    top = src[y0][:, x0] * (one - wx)[None, :, None] + src[y0][:, x1] * wx[None, :, None]
    bottom = src[y1][:, x0] * (one - wx)[None, :, None] + src[y1][:, x1] * wx[None, :, None]
    return (top * (one - wy)[:, None, None] + bottom * wy[:, None, None]) * scale


def grid_segments(height: int, width: int, rows: int, cols: int) -> np.ndarray:
    """Segment of image pixel (y, x) in a rows x cols grid: (y*rows//H)*cols + x*cols//W."""
    ys = np.arange(height) * rows // height
    xs = np.arange(width) * cols // width
    return (ys[:, None] * cols + xs[None, :]).astype(np.int32)


def model_input_segments(segments: np.ndarray, height: int, width: int) -> np.ndarray:
    """The segment of each model-input pixel (height x width): that of the image pixel
    (floor((i + 0.5) * H / height), floor((j + 0.5) * W / width)), in exact integers."""
    h, w = segments.shape
    ys = ((2 * np.arange(height) + 1) * h) // (2 * height)
    xs = ((2 * np.arange(width) + 1) * w) // (2 * width)
    return segments[ys][:, xs]


def image_feeds(model_input: np.ndarray, pixel_segments: np.ndarray, fill: np.ndarray,
                input_name: str) -> Callable[[np.ndarray], dict]:
    """Coalition masks [C, segments] -> NHWC feeds [C, h, w, 3]: a segment in the coalition
    keeps the model input, a removed one takes `fill` ([3] mean colour or [h, w, 3])."""
    model_input = np.asarray(model_input, dtype=F32)
    fill = np.broadcast_to(np.asarray(fill, dtype=F32), model_input.shape)

    def make(masks: np.ndarray) -> dict:
        keep = masks[:, pixel_segments]                                        # [C, h, w]
        return {input_name: np.ascontiguousarray(np.where(keep[..., None], model_input[None], fill[None]),
                                                 dtype=F32)}

    return make


def mean_colour(model_input: np.ndarray) -> np.ndarray:
    """The mean masker's colour: the per-channel mean of the model input, float32 [3]."""
    return np.asarray(model_input, dtype=np.float64).reshape(-1, model_input.shape[-1]).mean(axis=0).astype(F32)

"""Optional SHAP plots (matplotlib): a waterfall for one prediction and a mean-|SHAP| bar
chart for many. Both write a PNG and return its path. And an image-explanation heat map
(no matplotlib needed) that returns the PNG's bytes.

    from medinfer.plots import waterfall, importance_bar, image_heatmap_png
    waterfall(model, frame.iloc[:1], "why.png")
    importance_bar(model, frame, "drivers.png")
    image_heatmap_png(photo, cnn.explain_image(photo), "segments.png")
"""
from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("medinfer.plots needs matplotlib (pip install matplotlib)") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _names(model: Any) -> list[str]:
    return model.feature_names or [f"feature {i}" for i in range(model.n_features)]


def waterfall(model: Any, row: Any, path: str | os.PathLike, output: int = 0, max_features: int = 10,
              title: str | None = None) -> str:
    """How one row's raw output is built from the expected value, feature by feature
    (largest |SHAP| first; the rest grouped)."""
    plt = _pyplot()
    contributions = model._explain(row, 0, interactions=False)[0, :, output]
    values, base = contributions[:-1], contributions[-1]
    names = _names(model)
    order = np.argsort(-np.abs(values), kind="stable")
    shown = order[:max_features]
    rest = values[order[max_features:]].sum()
    labels = [names[i] for i in shown] + ([f"{len(order) - len(shown)} other features"] if len(order) > len(shown) else [])
    steps = list(values[shown]) + ([rest] if len(order) > len(shown) else [])
    x = np.asarray(model._matrix(row))[0]
    labels = [f"{label} = {x[i]:.4g}" if j < len(shown) else label
              for j, (label, i) in enumerate(zip(labels, list(shown) + [None]))]

    figure, axes = plt.subplots(figsize=(8, 0.45 * len(steps) + 1.6))
    position = base
    for k, (label, step) in enumerate(zip(labels, steps)):
        y = len(steps) - 1 - k
        color = "#d62728" if step > 0 else "#1f77b4"
        axes.barh(y, step, left=position, color=color, height=0.6)
        axes.text(position + step, y, f" {step:+.3f}", va="center", ha="left" if step > 0 else "right", fontsize=8)
        position += step
    ends = np.cumsum([base] + steps)
    low, high = float(min(ends.min(), base)), float(max(ends.max(), base))
    pad = 0.15 * (high - low or 1.0)
    axes.set_xlim(low - pad, high + pad)
    axes.set_yticks(range(len(steps)))
    axes.set_yticklabels(list(reversed(labels)), fontsize=8)
    axes.axvline(base, color="gray", linestyle=":", linewidth=1)
    axes.axvline(position, color="black", linewidth=1)
    axes.set_xlabel(f"raw model output (expected {base:+.3f} -> this row {position:+.3f})")
    axes.set_title(title or "SHAP waterfall")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return str(path)


def importance_bar(model: Any, rows: Any, path: str | os.PathLike, output: int = 0, max_features: int = 15,
                   title: str | None = None) -> str:
    """Mean |SHAP value| per feature over `rows`, largest first."""
    plt = _pyplot()
    values = model._explain(rows, 0, interactions=False)[:, :-1, output]
    importance = np.abs(values).mean(axis=0)
    order = np.argsort(-importance, kind="stable")[:max_features]
    names = _names(model)
    figure, axes = plt.subplots(figsize=(8, 0.4 * len(order) + 1.4))
    axes.barh(range(len(order)), importance[order][::-1], color="#1f77b4")
    axes.set_yticks(range(len(order)))
    axes.set_yticklabels([names[i] for i in order][::-1], fontsize=8)
    axes.set_xlabel(f"mean |SHAP value| over {values.shape[0]} rows (raw output)")
    axes.set_title(title or "Feature importance (mean |SHAP|)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return str(path)


# Diverging colours of the heat map (those of the waterfall): red pushes the output up,
# blue pushes it down.
_UP = np.array([214, 39, 40], dtype=np.float64)
_DOWN = np.array([31, 119, 180], dtype=np.float64)


def _png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of `rgb` [H, W, 3] uint8 (zlib + struct: no imaging library)."""
    height, width = rgb.shape[:2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rgb.reshape(height, width * 3)], axis=1)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def image_heatmap_png(image: Any, explanation: Any, path: str | os.PathLike | None = None, output: int = 0,
                      alpha: float = 0.5) -> bytes:
    """Overlays an image explanation (Network.explain_image) on the image and returns the
    PNG's bytes (also written to `path` when given).

    Each pixel is tinted by its segment's value for output `output`: red where the segment
    pushes the output up, blue where it pushes it down, on a symmetric scale (the largest
    |value| gets the full `alpha` of colour; a value of 0 leaves the pixel as it is).
    `image` is the uint8 image explained: [H, W, 3], [H, W, 4] (alpha dropped) or [H, W]."""
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"expected an H x W, H x W x 3 or H x W x 4 image, got shape {np.shape(image)}")
    pixels = pixels[:, :, :3].astype(np.float64)
    values = getattr(explanation, "pixel_values", None)
    if values is None:
        raise ValueError("the explanation has no pixel_values: pass the result of Network.explain_image")
    values = np.asarray(values)
    if values.shape[:2] != pixels.shape[:2]:
        raise ValueError(f"the explanation is for a {values.shape[1]} x {values.shape[0]} image, "
                         f"this image is {pixels.shape[1]} x {pixels.shape[0]}")
    if not 0 <= output < values.shape[2]:
        raise ValueError(f"output {output} out of range: the explanation has {values.shape[2]} outputs")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    heat = values[:, :, output].astype(np.float64)
    heat = np.where(np.isfinite(heat), heat, 0.0)
    scale = float(np.abs(heat).max())
    strength = alpha * np.abs(heat) / scale if scale > 0 else np.zeros_like(heat)
    colour = np.where((heat >= 0)[:, :, None], _UP, _DOWN)
    blended = pixels * (1 - strength[:, :, None]) + colour * strength[:, :, None]
    data = _png(np.clip(np.rint(blended), 0, 255).astype(np.uint8))
    if path is not None:
        with open(path, "wb") as handle:
            handle.write(data)
    return data

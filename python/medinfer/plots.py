"""Optional SHAP plots (matplotlib): a waterfall for one prediction and a mean-|SHAP| bar
chart for many. Both write a PNG and return its path.

    from medinfer.plots import waterfall, importance_bar
    waterfall(model, frame.iloc[:1], "why.png")
    importance_bar(model, frame, "drivers.png")
"""
from __future__ import annotations

import os
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

"""MedInfer: exact, fast scoring and TreeSHAP explanations of tree ensembles.

>>> import medinfer
>>> model = medinfer.Model.load("examples/models/noshow_xgb.json")
>>> risk = model.predict(frame)              # numpy array or pandas DataFrame
>>> shap = model.shap_values(frame)          # shaped like shap.TreeExplainer's output

Arrays cross into the library without copies when they are C-contiguous float32;
anything else is converted once. NaN means "missing".
"""
from __future__ import annotations

import ctypes
import os
from typing import Any, Sequence

import numpy as np

from . import _native
from ._native import library_path
from .errors import MedInferError, check as _check
from .explain import NetworkExplanation
from .network import Network
from .sequence import Stream, run_sequences
from .sklearn_export import export_sklearn

__version__ = "0.1.0"
__all__ = ["Model", "Network", "NetworkExplanation", "Stream", "run_sequences", "MedInferError", "export_sklearn", "library_path", "__version__"]

_KINDS = {1: "xgboost", 2: "lightgbm", 3: "sklearn", 4: "onnx"}


class Model(_native.OwnedHandle):
    """A loaded tree ensemble. Immutable; safe to use from several threads at once."""

    _free_function = "medinfer_model_free"

    def __init__(self, handle: ctypes.c_void_p):
        self._lib = _native.library()
        self._handle = handle
        lib, h = self._lib, handle
        size = ctypes.c_size_t()
        kind = ctypes.c_int()
        _check(lib.medinfer_model_kind(h, ctypes.byref(kind)))
        self.kind: str = _KINDS.get(kind.value, "unknown")
        _check(lib.medinfer_model_feature_count(h, ctypes.byref(size)))
        self.n_features: int = size.value
        _check(lib.medinfer_model_class_count(h, ctypes.byref(size)))
        self.n_classes: int = size.value
        _check(lib.medinfer_model_tree_count(h, ctypes.byref(size)))
        self.n_trees: int = size.value
        _check(lib.medinfer_model_iteration_count(h, ctypes.byref(size)))
        self.n_iterations: int = size.value
        _check(lib.medinfer_model_default_iteration_limit(h, ctypes.byref(size)))
        self.default_iteration_limit: int = size.value
        text = ctypes.c_char_p()
        _check(lib.medinfer_model_objective(h, ctypes.byref(text)))
        self.objective: str = text.value.decode() if text.value else ""
        names = []
        for i in range(self.n_features):
            _check(lib.medinfer_model_feature_name(h, i, ctypes.byref(text)))
            if text.value is None:
                names = None
                break
            names.append(text.value.decode("utf-8", "replace"))
        self.feature_names: list[str] | None = names
        self._output_counts = {}
        for output, code in (("transformed", _native.OUTPUT_TRANSFORMED), ("raw", _native.OUTPUT_RAW)):
            _check(lib.medinfer_model_output_count(h, code, ctypes.byref(size)))
            self._output_counts[output] = size.value
        self._options = {}
        for output, code in (("transformed", _native.OUTPUT_TRANSFORMED), ("raw", _native.OUTPUT_RAW)):
            options = _native.PredictOptions(ctypes.sizeof(_native.PredictOptions), code, 0, 0)
            self._options[output] = options

    # -- loading ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Model":
        """Loads an XGBoost JSON, LightGBM text or MedInfer forest JSON file."""
        lib = _native.library()
        handle = ctypes.c_void_p()
        _check(lib.medinfer_model_load(os.fsencode(path), ctypes.byref(handle)))
        return cls(handle)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        """Loads a model from the bytes of a model file."""
        lib = _native.library()
        handle = ctypes.c_void_p()
        _check(lib.medinfer_model_load_from_memory(data, len(data), ctypes.byref(handle)))
        return cls(handle)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model as a MedInfer tree file (.mdi), which loads without JSON or
        text parsing (for cold-start-sensitive hosts) and scores identically."""
        _check(self._lib.medinfer_model_save(self._handle, os.fsencode(path)))

    def __repr__(self) -> str:
        return (f"<medinfer.Model {self.kind} {self.objective!r}: {self.n_features} features, "
                f"{self.n_trees} trees, {self.n_classes} classes>")

    # -- inputs ----------------------------------------------------------------------

    def output_count(self, output: str = "transformed") -> int:
        """Values per row that `predict` returns for `output` ("transformed" or "raw")."""
        return self._output_counts[output]

    def _matrix(self, X: Any) -> np.ndarray:
        """A C-contiguous float32 (rows, n_features) view or copy of X."""
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            X = self._frame_values(X)
        if isinstance(X, np.ndarray) and X.dtype == np.float32 and X.flags.c_contiguous:
            array = X
        else:
            array = np.ascontiguousarray(X, dtype=np.float32)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2:
            raise ValueError(f"expected a 2-D matrix of rows x {self.n_features} features, got shape {array.shape}")
        return array

    def _frame_values(self, frame: Any) -> np.ndarray:
        columns = [str(c) for c in frame.columns]
        if self.feature_names is not None and columns != self.feature_names:
            missing = [n for n in self.feature_names if n not in columns]
            extra = [c for c in columns if c not in self.feature_names]
            if missing or extra:
                raise ValueError("DataFrame columns do not match the model's features: "
                                 + (f"missing {missing}" if missing else "")
                                 + ("; " if missing and extra else "")
                                 + (f"unexpected {extra}" if extra else ""))
            frame = frame[self.feature_names]   # same names, other order: reorder
        return frame.to_numpy(dtype=np.float32, na_value=np.nan)

    def _options_for(self, output: str, iteration_limit: int) -> Any:
        if output not in self._options:
            raise ValueError(f"output must be 'transformed' or 'raw', got {output!r}")
        if iteration_limit == 0:
            return ctypes.byref(self._options[output])
        options = _native.PredictOptions(ctypes.sizeof(_native.PredictOptions),
                                         _native.OUTPUT_RAW if output == "raw" else _native.OUTPUT_TRANSFORMED,
                                         0, iteration_limit)
        return ctypes.byref(options)

    # -- prediction ------------------------------------------------------------------

    def predict(self, X: Any, output: str = "transformed", iteration_limit: int = 0) -> np.ndarray:
        """Scores rows. Returns float64 of shape (rows,) when the model gives one value per
        row, else (rows, K): probabilities (or predictions) like the training library's
        predict / predict_proba, or raw margins with output="raw". `iteration_limit`
        uses the first N boosting iterations (0: the model's default)."""
        array = self._matrix(X)
        rows = array.shape[0]
        width = self.output_count(output) if output in self._output_counts else 0
        options = self._options_for(output, iteration_limit)
        if rows == 0:
            return np.empty((0,) if width == 1 else (0, width))
        out = np.empty(rows * width)
        _check(self._lib.medinfer_predict(self._handle, array.ctypes.data, rows, array.shape[1], options,
                                          out.ctypes.data, out.size))
        return out if width == 1 else out.reshape(rows, width)

    # -- explanations ----------------------------------------------------------------

    def _explain(self, X: Any, iteration_limit: int, interactions: bool) -> np.ndarray:
        array = self._matrix(X)
        rows, m = array.shape[0], self.n_features
        k = self.output_count("raw")
        per_row = (m + 1) * (m + 1) * k if interactions else (m + 1) * k
        out = np.empty(rows * per_row)
        if rows:
            options = _native.ExplainOptions(ctypes.sizeof(_native.ExplainOptions), iteration_limit)
            function = (self._lib.medinfer_shap_interaction_values if interactions
                        else self._lib.medinfer_shap_values)
            _check(function(self._handle, array.ctypes.data, rows, array.shape[1], ctypes.byref(options),
                            out.ctypes.data, out.size))
        return out.reshape((rows, m + 1, m + 1, k) if interactions else (rows, m + 1, k))

    def shap_contributions(self, X: Any, iteration_limit: int = 0) -> np.ndarray:
        """SHAP values with the bias as a last column, XGBoost pred_contribs style:
        (rows, n_features + 1) for single-output models, else (rows, K, n_features + 1).
        Each row sums to the raw margin."""
        values = self._explain(X, iteration_limit, interactions=False)
        return values[:, :, 0] if values.shape[2] == 1 else values.transpose(0, 2, 1)

    def shap_values(self, X: Any, iteration_limit: int = 0) -> np.ndarray:
        """SHAP values shaped like shap.TreeExplainer(model).shap_values(X): (rows, M) for
        single-output models, (rows, M, K) for K outputs. See `expected_value`."""
        values = self._explain(X, iteration_limit, interactions=False)[:, :-1, :]
        return values[:, :, 0] if values.shape[2] == 1 else values

    def shap_interaction_values(self, X: Any, iteration_limit: int = 0) -> np.ndarray:
        """SHAP interaction values like shap's shap_interaction_values: (rows, M, M) or
        (rows, M, M, K). Use `shap_interaction_contributions` for XGBoost's
        pred_interactions layout with the bias row and column."""
        values = self._explain(X, iteration_limit, interactions=True)[:, :-1, :-1, :]
        return values[..., 0] if values.shape[3] == 1 else values

    def shap_interaction_contributions(self, X: Any, iteration_limit: int = 0) -> np.ndarray:
        """XGBoost pred_interactions layout: (rows, M+1, M+1) or (rows, K, M+1, M+1)."""
        values = self._explain(X, iteration_limit, interactions=True)
        return values[..., 0] if values.shape[3] == 1 else values.transpose(0, 3, 1, 2)

    def expected_value(self, iteration_limit: int = 0) -> float | np.ndarray:
        """The bias of the explanations (expected raw output): a float, or K values."""
        bias = self._explain(np.zeros((1, self.n_features), dtype=np.float32), iteration_limit,
                             interactions=False)[0, -1, :]
        return float(bias[0]) if bias.size == 1 else bias

    def top_drivers(self, X: Any, k: int = 5, output: int = 0) -> list[list[tuple[str, float]]]:
        """For each row, the k features with the largest |SHAP value| for one output,
        as (name, signed contribution) pairs, largest first."""
        values = self._explain(X, 0, interactions=False)[:, :-1, output]
        names: Sequence[str] = self.feature_names or [f"f{i}" for i in range(self.n_features)]
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
        return [[(names[j], float(values[r, j])) for j in order[r]] for r in range(values.shape[0])]


def __getattr__(name: str) -> Any:
    if name == "library":
        return _native.library()
    if name == "plots":  # medinfer.plots without an explicit import (it loads matplotlib lazily)
        import importlib
        return importlib.import_module(".plots", __name__)
    raise AttributeError(name)

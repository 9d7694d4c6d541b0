"""Batch scoring of pandas DataFrames, independent of the engine that runs it.

`score_frame(df, model_path, k=3, id_column="appointment_id")` takes one batch (a Dask
partition, a Spark Arrow batch, a Parquet file read with pandas) and returns a new
DataFrame with, per row:

    <id_column>        copied unchanged (row count and order preserved)
    risk               the model's output (probability for binary:logistic), float64
    driver_1..k        the k features with the largest |SHAP value|, as a pandas
                       Categorical whose categories are the model's feature names in order
    contribution_1..k  their signed SHAP values (margin space, as pred_contribs), float64

Driver ranking rule (deterministic, documented): features are ordered by |SHAP value|
descending (MedInfer's float64 values), exact ties by feature index ascending (the model's
feature order); the bias term is never a driver. (`tie_tolerance` > 0 treats values that
close as tied.) `rank_drivers(values, k)` applies the same rule to any (rows, features) array,
e.g. XGBoost's pred_contribs without its bias column, so results compare rank for rank.

The library and the model are loaded lazily, once per process: a ctypes handle cannot be
pickled, so engines ship the *paths* (absolute) and each worker process calls
`get_model(path)`, which caches the Model keyed by the resolved path. The feature matrix
crosses into the library as one C-contiguous float32 array, built with a single pass
over the partition's columns (a columnar partition has to be transposed to row-major once;
nothing else is copied).

Malformed partitions (a missing feature column, a column of strings, dates, ...) raise
`PartitionSchemaError` (a ValueError) naming the column, before anything reaches the
native library.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import _native

__all__ = ["score_frame", "get_model", "use_library", "rank_drivers", "output_columns",
           "output_meta", "feature_matrix", "PartitionSchemaError", "DEFAULT_ID_COLUMN", "TIE_TOLERANCE",
           "compare_drivers"]

DEFAULT_ID_COLUMN = "appointment_id"
#: Rows explained per native call: bounds the temporary SHAP matrix ((M + 1) doubles a
#: row, 12 MB for the no-show model) whatever the partition size.
CHUNK_ROWS = 65536
#: |SHAP values| closer than this count as tied when ranking drivers. Default 0: exact
#: ties only (broken by the lower feature index). MedInfer's values are float64; XGBoost's
#: pred_contribs are float32 (rounding ~1e-7 at these magnitudes), so where two features'
#: true values differ by less than that, XGBoost may see them tied or swapped: see
#: `compare_drivers`, which checks a ranking against such a reference.
TIE_TOLERANCE = 0.0

_models: dict[str, Any] = {}
_models_lock = threading.Lock()


class PartitionSchemaError(ValueError):
    """A partition does not have the columns or types the model needs. `column` names
    the first offending column."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
        self.column = column


# -- loading, once per process ----------------------------------------------------------

def use_library(path: str | os.PathLike | None) -> None:
    """Makes this process load libmedinfer from `path` (absolute, or made absolute) the
    first time it is needed. Does nothing if `path` is None or if the library is already
    loaded in this process (one copy per process; the first one wins)."""
    if path is None or _native._lib is not None:
        return
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"libmedinfer not found at {path} (pid {os.getpid()})")
    os.environ["MEDINFER_LIBRARY"] = path


def driver_model(model_path: str | os.PathLike, library_path: str | os.PathLike | None,
                 ship: bool) -> tuple[str, str | None, Any, list[str]]:
    """On the client/driver: absolute model and library paths (the loaded library's when
    shipping and none is given), the model, and its feature names."""
    model_path = os.path.abspath(os.fspath(model_path))
    if library_path is None and ship:
        from ._native import library_path as loaded_library_path

        library_path = loaded_library_path()
    library = os.path.abspath(os.fspath(library_path)) if library_path is not None else None
    model = get_model(model_path, library)
    names = model.feature_names or [f"f{i}" for i in range(model.n_features)]
    return model_path, library, model, names


def get_model(model_path: str | os.PathLike, library_path: str | os.PathLike | None = None) -> Any:
    """The Model at `model_path`, loaded at most once per process (cached by real path).
    Thread-safe: worker threads of one process share the immutable model."""
    from . import Model

    key = os.path.realpath(os.fspath(model_path))
    model = _models.get(key)
    if model is None:
        with _models_lock:
            model = _models.get(key)
            if model is None:
                use_library(library_path)
                if not os.path.isfile(key):
                    raise FileNotFoundError(f"model file not found: {key} (pid {os.getpid()})")
                model = Model.load(key)
                _models[key] = model
    return model


# -- inputs -----------------------------------------------------------------------------

def _describe(series: pd.Series) -> str:
    sample = series.dropna()
    example = f", e.g. {sample.iloc[0]!r}" if len(sample) else ""
    return f"dtype {series.dtype}{example}"


def feature_matrix(df: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """A C-contiguous float32 (rows, len(features)) matrix of df's feature columns, NaN
    for missing values (None, NaN, pandas NA). Accepts bool, integer and float columns
    (numpy or pandas nullable dtypes); raises PartitionSchemaError naming the first
    missing column or the first column of another type."""
    columns = set(map(str, df.columns))
    missing = [f for f in features if f not in columns]
    if missing:
        more = f" (and {len(missing) - 1} more: {missing[1:]})" if len(missing) > 1 else ""
        raise PartitionSchemaError(
            f"partition is missing feature column {missing[0]!r}{more}; the model needs "
            f"{len(features)} columns: {list(features)}", missing[0])
    n = len(df)
    out = np.empty((n, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        series = df[name]
        if isinstance(series, pd.DataFrame):
            raise PartitionSchemaError(f"partition has more than one column named {name!r}", name)
        dtype = series.dtype
        if isinstance(dtype, np.dtype):
            if dtype.kind not in "biuf":
                raise PartitionSchemaError(
                    f"feature column {name!r} has {_describe(series)}; expected numbers "
                    f"(bool, int or float; NaN = missing)", name)
            out[:, j] = series.to_numpy(copy=False)
        elif not isinstance(dtype, pd.CategoricalDtype) and (
                pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)):
            # pandas nullable (Int64, Float32, boolean) or Arrow-backed numbers: NA -> NaN
            out[:, j] = series.to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            raise PartitionSchemaError(
                f"feature column {name!r} has {_describe(series)}; expected numbers "
                f"(bool, int or float; NaN = missing)", name)
    return out


# -- outputs ----------------------------------------------------------------------------

def rank_drivers(values: np.ndarray, k: int, tie_tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """Indices (rows, k) of each row's k drivers, by the documented rule: repeatedly take,
    among the features not yet chosen, those whose |value| is within `tie_tolerance` of
    the largest remaining |value|, and choose the lowest feature index among them.
    tie_tolerance=0 is plain "|value| descending, exact ties by index". `values` is
    (rows, M) without a bias column."""
    values = np.asarray(values)
    rows, m = values.shape
    k = min(k, m)
    order = np.empty((rows, k), dtype=np.intp)
    if rows == 0 or k == 0:
        return order
    magnitude = np.abs(values).astype(np.float64, copy=False)    # a new array: ours to edit
    index = np.arange(rows)
    for i in range(k):
        if tie_tolerance > 0:
            top = magnitude.max(axis=1, keepdims=True)
            best = (magnitude >= top - tie_tolerance).argmax(axis=1)   # first True: lowest index
        else:
            best = magnitude.argmax(axis=1)  # first maximum: the lowest index among ties
        order[:, i] = best
        magnitude[index, best] = -np.inf     # never chosen again
    return order


def output_columns(k: int, id_column: str | None = DEFAULT_ID_COLUMN) -> list[str]:
    columns = [id_column] if id_column is not None else []
    columns.append("risk")
    for i in range(1, k + 1):
        columns += [f"driver_{i}", f"contribution_{i}"]
    return columns


def output_meta(feature_names: Sequence[str], k: int, id_column: str | None = DEFAULT_ID_COLUMN,
                id_dtype: Any = np.int64, index: pd.Index | None = None) -> pd.DataFrame:
    """An empty DataFrame with exactly the columns and dtypes score_frame returns."""
    data: dict[str, Any] = {}
    if id_column is not None:
        data[id_column] = pd.Series([], dtype=id_dtype)
    data["risk"] = pd.Series([], dtype=np.float64)
    categories = pd.CategoricalDtype(list(feature_names), ordered=False)
    for i in range(1, k + 1):
        data[f"driver_{i}"] = pd.Series([], dtype=categories)
        data[f"contribution_{i}"] = pd.Series([], dtype=np.float64)
    frame = pd.DataFrame(data)
    if index is not None:
        frame.index = index[:0]
    return frame


def score_frame(df: pd.DataFrame, model_path: str | os.PathLike, k: int = 3,
                id_column: str | None = DEFAULT_ID_COLUMN,
                library_path: str | os.PathLike | None = None,
                drivers_as: str = "category",
                tie_tolerance: float = TIE_TOLERANCE) -> pd.DataFrame:
    """Scores and explains one batch: see the module docstring for the columns.

    k             number of drivers per row (0: risk only, no SHAP computed).
    id_column     column copied to the output unchanged (None: no id column).
    library_path  absolute path of libmedinfer.so for this process (None: the binding's
                  usual search: $MEDINFER_LIBRARY, next to the package, .build/release).
    drivers_as    "category" (Categorical over the model's feature names, compact) or
                  "string" (Python str objects, e.g. for engines without dictionary types).
    tie_tolerance see rank_drivers (0: exact ties only).
    The output keeps df's index and row order."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if drivers_as not in ("category", "string"):
        raise ValueError(f"drivers_as must be 'category' or 'string', got {drivers_as!r}")
    model = get_model(model_path, library_path)
    if model.output_count("raw") != 1:
        raise ValueError(f"score_frame explains single-output models; {model_path} has "
                         f"{model.output_count('raw')} outputs")
    names = model.feature_names or [f"f{i}" for i in range(model.n_features)]
    if id_column is not None and id_column not in df.columns:
        raise PartitionSchemaError(f"partition is missing the id column {id_column!r}", id_column)
    X = feature_matrix(df, names)
    n, m = X.shape
    k = min(k, m)
    risk = model.predict(X) if n else np.empty(0)

    codes = np.empty((n, k), dtype=np.int8 if m < 128 else np.int32)
    contributions = np.empty((n, k), dtype=np.float64)
    if k:
        for start in range(0, n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n)
            values = model.shap_contributions(X[start:stop])[:, :m]
            order = rank_drivers(values, k, tie_tolerance)
            codes[start:stop] = order
            contributions[start:stop] = np.take_along_axis(values, order, axis=1)

    data: dict[str, Any] = {}
    if id_column is not None:
        data[id_column] = df[id_column].to_numpy(copy=False)
    data["risk"] = risk
    categories = pd.CategoricalDtype(list(names), ordered=False)
    name_array = np.asarray(names, dtype=object)
    for i in range(k):
        if drivers_as == "category":
            data[f"driver_{i + 1}"] = pd.Categorical.from_codes(codes[:, i], dtype=categories)
        else:
            data[f"driver_{i + 1}"] = name_array[codes[:, i]]
        data[f"contribution_{i + 1}"] = contributions[:, i]
    out = pd.DataFrame(data, index=df.index, copy=False)
    if id_column is not None:
        out[id_column] = out[id_column].astype(df[id_column].dtype, copy=False)
    return out


def compare_drivers(reference: np.ndarray, chosen: np.ndarray, k: int,
                    eps: float = 2e-6) -> tuple[int, int, np.ndarray]:
    """Checks drivers `chosen` (rows, k feature indices) against a reference's per-feature
    contributions (rows, M; e.g. XGBoost pred_contribs without the bias column), ranked by
    the same rule (`rank_drivers(reference, k)`).

    Returns (identical, near_ties, bad_rows): rows whose k drivers are identical, rows that
    differ only where the reference's own values are tied within `eps` (at every rank the
    chosen feature's |reference value| is within eps of the reference's pick: a float32
    rounding near-tie, not a different explanation), and the indices of any other rows."""
    reference = np.asarray(reference, dtype=np.float64)
    chosen = np.asarray(chosen, dtype=np.intp)
    expected = rank_drivers(reference, k)
    differs = (expected != chosen).any(axis=1)
    magnitude = np.abs(reference)
    gap = np.abs(np.take_along_axis(magnitude, expected, axis=1)
                 - np.take_along_axis(magnitude, chosen, axis=1)).max(axis=1)
    distinct = np.array([len(set(row)) == len(row) for row in chosen[differs]], dtype=bool)
    near = np.zeros(len(chosen), dtype=bool)
    near[np.flatnonzero(differs)[distinct]] = True
    near &= gap <= eps
    bad = np.flatnonzero(differs & ~near)
    return int((~differs).sum()), int(near.sum()), bad

"""medinfer.batch.score_frame without an engine: outputs, ranking rule, schema errors."""
from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from batch_checks import ID, check_against_xgboost
from conftest import MODEL, REPO

sys.path.insert(0, os.path.join(REPO, "examples", "models"))
from noshow_data import FEATURES, make_noshow  # noqa: E402

from medinfer import batch  # noqa: E402


@pytest.fixture(scope="module")
def frame():
    features, _ = make_noshow(20_000, seed=5)
    features.insert(0, ID, np.arange(10_000_000, 10_020_000, dtype=np.int64))
    return features


def test_matches_xgboost_on_20000_rows(frame, reference):
    out = batch.score_frame(frame, MODEL, k=3)
    assert list(out.columns) == batch.output_columns(3)
    assert out.index.equals(frame.index)
    stats = check_against_xgboost(frame, out, FEATURES, reference)
    print(stats)


def test_output_dtypes_match_meta_and_empty_frames(frame):
    out = batch.score_frame(frame.iloc[:10], MODEL, k=3)
    meta = batch.output_meta(FEATURES, 3, ID, np.int64)
    assert out.dtypes.equals(meta.dtypes)
    empty = batch.score_frame(frame.iloc[:0], MODEL, k=3)
    assert len(empty) == 0 and empty.dtypes.equals(meta.dtypes)
    risk_only = batch.score_frame(frame.iloc[:10], MODEL, k=0)
    assert list(risk_only.columns) == [ID, "risk"]
    np.testing.assert_array_equal(risk_only["risk"], out["risk"])


def test_ranking_rule_breaks_exact_ties_by_feature_index():
    values = np.array([[0.5, -0.5, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0], [-0.2, 0.3, -0.3, 0.3]])
    assert batch.rank_drivers(values, 3).tolist() == [[0, 1, 2], [0, 1, 2], [1, 2, 3]]
    near = np.array([[0.3, 0.3 + 5e-7, 0.1]])
    assert batch.rank_drivers(near, 2).tolist() == [[1, 0]]
    assert batch.rank_drivers(near, 2, tie_tolerance=1e-6).tolist() == [[0, 1]]


def test_model_loaded_once_per_process_and_arguments_pickle(frame):
    assert batch.get_model(MODEL) is batch.get_model(os.path.relpath(MODEL))
    pickle.dumps((batch.score_frame, MODEL))          # what an engine ships: a path, no handle


def test_nullable_and_integer_columns_score_like_float32(frame):
    small = frame.iloc[:500].copy()
    expected = batch.score_frame(small, MODEL)
    other = small.copy()
    other["Age"] = other["Age"].astype("Int64")
    other.loc[other.index[:7], "Age"] = pd.NA
    other["SMS_Received"] = other["SMS_Received"].astype(bool)
    other["Distance_km"] = other["Distance_km"].astype("float64")
    with_na = small.copy()
    with_na.loc[with_na.index[:7], "Age"] = np.nan
    pd.testing.assert_frame_equal(batch.score_frame(other, MODEL), batch.score_frame(with_na, MODEL))
    shuffled = small[[ID] + FEATURES[::-1]]                 # column order does not matter
    pd.testing.assert_frame_equal(batch.score_frame(shuffled, MODEL), expected)


@pytest.mark.parametrize("breakage, column", [
    (lambda f: f.drop(columns=["Distance_km"]), "Distance_km"),
    (lambda f: f.assign(Age=f["Age"].astype(str)), "Age"),
    (lambda f: f.assign(Gender=pd.Categorical(f["Gender"])), "Gender"),
    (lambda f: f.assign(Number_days=pd.Timestamp("2026-11-01")), "Number_days"),
    (lambda f: f.drop(columns=[ID]), ID),
])
def test_malformed_partition_names_the_column(frame, breakage, column):
    with pytest.raises(batch.PartitionSchemaError) as error:
        batch.score_frame(breakage(frame.iloc[:50].copy()), MODEL)
    assert repr(column) in str(error.value) and error.value.column == column

"""Error behaviour seen from Python: shape mismatches, truncated model files, DataFrames
missing a column, iteration limits beyond the model."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier

import parity_utils as pu


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """One small model of each family, saved: {family: path}."""
    d = tmp_path_factory.mktemp("error_models")
    rng = np.random.default_rng(11)
    X = pu.features(rng, 1500)
    y = pu.binary_target(rng, X)
    paths = {}
    dm = xgb.DMatrix(X, y, feature_names=pu.FEATURE_NAMES)
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 2}, dm, 10)
    paths["xgboost"] = d / "m.json"
    bst.save_model(str(paths["xgboost"]))
    lb = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 2, "num_leaves": 7},
                   lgb.Dataset(X, y, feature_name=pu.FEATURE_NAMES, params={"verbose": -1}), 10)
    paths["lightgbm"] = d / "m.txt"
    lb.save_model(str(paths["lightgbm"]))
    import medinfer
    rf = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    paths["sklearn"] = d / "m_forest.json"
    medinfer.export_sklearn(rf, str(paths["sklearn"]), feature_names=pu.FEATURE_NAMES)
    return paths


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "sklearn"])
@pytest.mark.parametrize("columns", [pu.N_FEATURES - 1, pu.N_FEATURES + 1])
def test_wrong_feature_count(medinfer, saved_models, family, columns):
    m = medinfer.Model.load(str(saved_models[family]))
    X = np.zeros((5, columns), dtype=np.float32)
    with pytest.raises(medinfer.MedInferError) as info:
        m.predict(X)
    assert info.value.status_name == "MEDINFER_ERR_SHAPE_MISMATCH"


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "sklearn"])
@pytest.mark.parametrize("where", ["half", "late", "tree_boundary"])
def test_truncated_file(medinfer, saved_models, tmp_path, family, where):
    data = saved_models[family].read_bytes()
    # LightGBM writes feature importances and parameters after "end of trees"; a cut there
    # leaves a complete model, so "late" cuts inside the last tree instead.
    end = data.find(b"end of trees") if family == "lightgbm" else len(data)
    if where == "half":
        n = len(data) // 2
    elif where == "late":
        n = end - 10
    else:  # just before the last tree (LightGBM), or at the start of the last tree object
        n = data.rfind(b"Tree=") if family == "lightgbm" else data.rfind(b"{", 0, int(len(data) * 0.95))
    cut = data[:n]
    path = tmp_path / ("truncated" + saved_models[family].suffix)
    path.write_bytes(cut)
    with pytest.raises(medinfer.MedInferError) as info:
        medinfer.Model.load(str(path))
    assert info.value.status_name == "MEDINFER_ERR_PARSE", f"{family}: {info.value}"
    with pytest.raises(medinfer.MedInferError) as info:
        medinfer.Model.from_bytes(cut)
    assert info.value.status_name == "MEDINFER_ERR_PARSE", f"{family}: {info.value}"


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "sklearn"])
def test_dataframe_missing_column(medinfer, saved_models, family):
    m = medinfer.Model.load(str(saved_models[family]))
    assert m.feature_names == pu.FEATURE_NAMES
    rng = np.random.default_rng(5)
    df = pd.DataFrame(pu.features(rng, 20), columns=pu.FEATURE_NAMES)
    # Control: the complete frame scores, and equals the same matrix passed as numpy.
    np.testing.assert_array_equal(m.predict(df), m.predict(df.to_numpy(np.float32)))
    with pytest.raises(ValueError) as info:
        m.predict(df.drop(columns=["fee"]))
    assert "fee" in str(info.value)


def test_iteration_limit_beyond_model(medinfer, saved_models):
    m = medinfer.Model.load(str(saved_models["xgboost"]))
    X = np.zeros((3, pu.N_FEATURES), dtype=np.float32)
    assert m.n_iterations == 10
    m.predict(X, iteration_limit=10)
    with pytest.raises(medinfer.MedInferError) as info:
        m.predict(X, iteration_limit=11)
    assert info.value.status_name == "MEDINFER_ERR_INVALID_ARGUMENT"

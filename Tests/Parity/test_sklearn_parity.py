"""Parity of MedInfer with scikit-learn tree ensembles, through `medinfer.export_sklearn`.

Each test fits a fresh small estimator (or Pipeline), exports it to MedInfer forest JSON,
loads it with `medinfer.Model.load` and compares, on >= 10,000 fresh rows plus edge rows,
against `predict_proba` / `predict` (transformed) and the raw outputs (forests: the
averaged class probabilities again; gradient boosting: `decision_function`; regressors:
`predict`). The reference gets the float32 matrix MedInfer gets, converted exactly to
float64 (`X32.astype(np.float64)`).

Missing values: random forests and extra trees are fitted with ~5% NaN (scikit-learn
learns a missing direction per split) and also without NaN and then scored with NaN
(scikit-learn then sends NaN to the child that saw more samples, which the exporter must
carry over). GradientBoosting* rejects NaN in fit and predict, so its rows have none.
Infinities are rejected by scikit-learn's input check, so no edge row holds one; nor do
rows whose scaled value overflows float32 in a Pipeline (scikit-learn rejects those too;
the number left out is printed).

Edge rows: thresholds read back from the exported JSON planted as the float32 at and
either side of them (for pipelines: raw values whose scaled float32 image lands on or
next to the threshold), -0.0, +/-0, tiny and subnormal values, +/-1e30, +/-float32 max,
all-missing rows.

Why 1e-6 absolute holds: scikit-learn trees compare the float32 feature (widened to
double) `<= threshold` in double, take double leaf values, and forests average them in
double; gradient boosting adds `learning_rate * value` stage by stage to a double init
score and applies expit / softmax in double. Scalers work in double and the result is
rounded to float32 by the tree's input check. MedInfer does the same arithmetic (the
exporter pre-multiplies leaf values by the learning rate, which is the same product), so
differences are a few double ulps (~1e-16 .. 1e-15); the summation order of a forest's
trees in scikit-learn's threaded predict_proba may differ, which is also at that level.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import parity_utils as pu

FAMILY = "sklearn"

# scikit-learn's own finiteness check sums float32-max edge rows and warns on the overflow.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
TRAIN_ROWS = 3000


def _raw_reference(est, X64):
    final = est[-1] if isinstance(est, Pipeline) else est
    if isinstance(final, (GradientBoostingClassifier,)):
        return est.decision_function(X64)
    if hasattr(final, "predict_proba"):
        return est.predict_proba(X64)
    return est.predict(X64)


def _transformed_reference(est, X64):
    final = est[-1] if isinstance(est, Pipeline) else est
    if hasattr(final, "predict_proba"):
        return est.predict_proba(X64)
    return est.predict(X64)


def _scaler_maps(scaler):
    """(forward, inverse) of a fitted MinMaxScaler / StandardScaler for one column, in
    double, as scikit-learn computes them."""
    if isinstance(scaler, MinMaxScaler):
        fwd = lambda f, x: x * scaler.scale_[f] + scaler.min_[f]
        inv = lambda f, v: (v - scaler.min_[f]) / scaler.scale_[f]
    else:
        fwd = lambda f, x: (x - scaler.mean_[f]) / scaler.scale_[f]
        inv = lambda f, v: v * scaler.scale_[f] + scaler.mean_[f]
    return fwd, inv


def _to_raw(scaler):
    """Maps a float32 value in the trees' (scaled) space to raw float32 inputs whose scaled
    float32 image is that value or its float32 neighbour."""
    fwd, inv = _scaler_maps(scaler)

    def to_raw(f, v):
        v = np.float32(v)
        x0 = np.float32(inv(f, float(v)))
        cands = [x0]
        up = down = x0
        for _ in range(4):
            up = np.nextafter(up, np.float32(np.inf))
            down = np.nextafter(down, np.float32(-np.inf))
            cands += [up, down]
        targets = {v, np.nextafter(v, np.float32(np.inf)), np.nextafter(v, np.float32(-np.inf))}
        hits = [c for c in cands if np.float32(fwd(f, float(c))) in targets]
        return hits or [x0]

    return to_raw


CASES = [
    # name, estimator factory, target kind, train with NaN, score with NaN, output counts (t, r), n_classes
    ("rf_classifier_binary_nan", lambda: RandomForestClassifier(n_estimators=30, max_depth=8, random_state=1, n_jobs=2),
     "binary", True, True, (2, 2), 2),
    ("rf_classifier_3class_clean", lambda: RandomForestClassifier(n_estimators=30, max_depth=8, random_state=2, n_jobs=2),
     "multi3_str", False, True, (3, 3), 3),
    ("rf_regressor_nan", lambda: RandomForestRegressor(n_estimators=30, max_depth=8, random_state=3, n_jobs=2),
     "regression", True, True, (1, 1), 1),
    ("et_classifier_nan", lambda: ExtraTreesClassifier(n_estimators=30, max_depth=10, random_state=4, n_jobs=2),
     "binary", True, True, (2, 2), 2),
    ("et_regressor_clean", lambda: ExtraTreesRegressor(n_estimators=30, max_depth=10, random_state=5, n_jobs=2),
     "regression", False, True, (1, 1), 1),
    ("gb_classifier_binary", lambda: GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=6),
     "binary", False, False, (2, 1), 2),
    ("gb_classifier_3class", lambda: GradientBoostingClassifier(n_estimators=25, max_depth=3, random_state=7),
     "multi3", False, False, (3, 3), 3),
    ("gb_regressor", lambda: GradientBoostingRegressor(n_estimators=40, max_depth=3, subsample=0.8, random_state=8),
     "regression", False, False, (1, 1), 1),
    ("pipeline_minmax_rf_nan", lambda: Pipeline([("scale", MinMaxScaler()), (
        "rf", RandomForestClassifier(n_estimators=30, max_depth=8, random_state=9, n_jobs=2))]),
     "binary", True, True, (2, 2), 2),
    ("pipeline_standard_rf_nan", lambda: Pipeline([("scale", StandardScaler()), (
        "rf", RandomForestClassifier(n_estimators=30, max_depth=8, random_state=10, n_jobs=2))]),
     "binary", True, True, (2, 2), 2),
]


def _target(kind, rng, X):
    if kind == "binary":
        return pu.binary_target(rng, X).astype(int)
    if kind == "multi3":
        return pu.multiclass_target(rng, X, 3).astype(int)
    if kind == "multi3_str":
        return np.array(["low", "mid", "high"])[pu.multiclass_target(rng, X, 3).astype(int)]
    return pu.regression_target(rng, X)


@pytest.mark.parametrize("name,factory,target,train_nan,score_nan,counts,n_classes", CASES,
                         ids=[c[0] for c in CASES])
def test_estimator(medinfer, model_dir, rng, name, factory, target, train_nan, score_nan, counts, n_classes):
    X = pu.features(rng, TRAIN_ROWS, nan_fraction=0.05 if train_nan else 0.0)
    y = _target(target, rng, X)
    est = factory().fit(X.astype(np.float64), y)
    path = model_dir / f"sk_{name}.json"
    medinfer.export_sklearn(est, str(path), feature_names=pu.FEATURE_NAMES)
    m = medinfer.Model.load(str(path))
    assert m.kind == "sklearn"
    assert m.n_features == pu.N_FEATURES
    assert m.feature_names == pu.FEATURE_NAMES
    assert m.n_classes == n_classes
    assert (m.output_count("transformed"), m.output_count("raw")) == counts

    to_raw = _to_raw(est[0]) if isinstance(est, Pipeline) else None
    Xt = pu.parity_matrix(rng, pu.forest_json_trees(path), strict_less=False, allow_inf=False,
                          nan_fraction=0.05 if score_nan else 0.0, to_raw=to_raw)
    if isinstance(est, Pipeline):
        # scikit-learn rejects rows whose scaled value overflows float32; leave them out.
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = est[0].transform(Xt.astype(np.float64)).astype(np.float32)
        keep = ~np.isinf(scaled).any(axis=1)
        print(f"  {name}: {int((~keep).sum())} edge rows left out (scaled value overflows float32)")
        Xt = np.ascontiguousarray(Xt[keep])
    X64 = Xt.astype(np.float64)
    r1 = pu.compare(FAMILY, name, "transformed", m.predict(Xt), _transformed_reference(est, X64), Xt)
    r2 = pu.compare(FAMILY, name, "raw", m.predict(Xt, output="raw"), _raw_reference(est, X64), Xt)
    pu.assert_results(r1, r2)

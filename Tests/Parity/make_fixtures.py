#!/usr/bin/env python3
"""Writes the offline parity fixtures that `swift test` replays without Python
(Tests/MedInferTests/FixtureParityTests.swift).

    .venv/bin/python Tests/Parity/make_fixtures.py

Deterministic: fixed seeds, one training thread, LightGBM in deterministic col-wise mode.
For each representative model it trains a small model, saves it in the file format
MedInfer reads, builds ~300 input rows (random rows with ~5% NaN, rows meeting split
thresholds exactly or one float32 step away, -0.0, tiny/huge/infinite values where the
reference accepts them, all-missing rows) and records the reference library's outputs.

Output, in Tests/MedInferTests/Fixtures/:
  manifest.json            {"generator", "versions", "cases": [{name, model_file, rows,
                            features, input_file, expected_transformed_file,
                            expected_raw_file, output_count_transformed,
                            output_count_raw, tolerance, reference, description}]}
  <case>.json / .txt       the model file
  <case>.input.f32         rows * features little-endian float32, row-major (NaN = missing)
  <case>.transformed.f64   rows * output_count_transformed little-endian float64
  <case>.raw.f64           rows * output_count_raw little-endian float64

Selected cases (xgb_binary, xgb_multi_softprob, xgb_categorical, lgb_binary,
lgb_categorical, lgb_rf, sk_rf_minmax_pipeline) also record exact path-dependent TreeSHAP
values, laid out exactly as medinfer_shap_values writes them (M = features, K =
output_count_raw), with the manifest fields expected_shap_file, shap_tolerance and
shap_reference; xgb_binary also records interaction values of its first
interaction_rows rows (expected_interactions_file), as medinfer_shap_interaction_values
writes them:
  <case>.shap.f64          rows * (M + 1) * K float64, out[(row * (M + 1) + j) * K + k]
                           (j == M is the bias)
  <case>.interactions.f64  interaction_rows * (M + 1)^2 * K float64,
                           out[((row * (M + 1) + i) * (M + 1) + j) * K + k]
References: XGBoost pred_contribs / pred_interactions (a DMatrix rejects +/-inf, so rows
holding +/-inf are explained as the same rows with +/-float32 max, which take the same
branch at every split: checked by bit-identical margins after every iteration), LightGBM
pred_contrib, and shap.TreeExplainer(pipeline[-1]) on pipeline[0].transform(X) (values
and expected_value as the bias). shap_tolerance is parity_utils.SHAP_TOLERANCE times
max(1, ceil(max |raw output|)): XGBoost computes SHAP values in float32 (see
Tests/Parity/test_shap_parity.py).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "python"))

import lightgbm as lgb  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402
import sklearn  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

import parity_utils as pu  # noqa: E402

OUT = os.path.join(REPO, "Tests", "MedInferTests", "Fixtures")
ROWS = 300
FRESH = 170
TRAIN_ROWS = 3000
INTERACTION_ROWS = 50


def fixture_rows(rng, trees, strict_less, allow_inf, allow_nan=True, make=None, extra_values=(), to_raw=None):
    """FRESH random rows + (ROWS - FRESH) edge rows, always including an all-missing row (if
    NaN is allowed) and rows made of one special value."""
    make = make or pu.features
    nan_fraction = 0.05 if allow_nan else 0.0
    fresh = make(rng, FRESH, nan_fraction)
    base = make(rng, 500, nan_fraction)
    n_edge = ROWS - FRESH
    specials = [0.0, -0.0, 1e30, -1e30, pu.F32_MAX, -pu.F32_MAX, 1e-36] + list(extra_values)
    if allow_inf:
        specials += [np.inf, -np.inf]
    if allow_nan:
        specials.append(np.nan)
    uniform = np.array([np.full(base.shape[1], v) for v in specials], dtype=np.float32)
    path_rows = pu.path_threshold_rows(rng, base, trees, n_edge - len(uniform) - 30, strict_less, to_raw=to_raw)
    sprinkled = []
    vals = np.array(specials, dtype=np.float32)
    for _ in range(30):
        row = base[rng.integers(len(base))].copy()
        mask = rng.random(base.shape[1]) < 0.3
        row[mask] = vals[rng.integers(len(vals), size=int(mask.sum()))]
        sprinkled.append(row)
    X = np.concatenate([fresh, path_rows, np.array(sprinkled, dtype=np.float32), uniform]).astype(np.float32)
    assert X.shape[0] == ROWS, X.shape
    return np.ascontiguousarray(X)


def as_2d(a, rows):
    return np.asarray(a, dtype=np.float64).reshape(rows, -1)


class Writer:
    def __init__(self):
        self.cases = []

    def add(self, name, model_file, X, transformed, raw, reference, description, shap=None):
        """`shap`: a Shap record (SHAP values, optional interactions) or None."""
        rows, features = X.shape
        t, r = as_2d(transformed, rows), as_2d(raw, rows)
        X.astype("<f4").tofile(os.path.join(OUT, f"{name}.input.f32"))
        t.astype("<f8").tofile(os.path.join(OUT, f"{name}.transformed.f64"))
        r.astype("<f8").tofile(os.path.join(OUT, f"{name}.raw.f64"))
        case = {
            "name": name, "model_file": model_file, "rows": rows, "features": features,
            "input_file": f"{name}.input.f32",
            "expected_transformed_file": f"{name}.transformed.f64",
            "expected_raw_file": f"{name}.raw.f64",
            "output_count_transformed": t.shape[1], "output_count_raw": r.shape[1],
            "tolerance": pu.TOLERANCE, "reference": reference, "description": description,
        }
        note = ""
        if shap is not None:
            case.update(shap.write(name, rows, features, r))
            note = " +shap" + (f" +interactions({shap.interaction_rows})" if shap.interactions is not None else "")
        self.cases.append(case)
        print(f"{name:<22} {model_file:<28} rows={rows} features={features} "
              f"outputs={t.shape[1]}/{r.shape[1]} model={os.path.getsize(os.path.join(OUT, model_file))} bytes{note}")


class Shap:
    """Expected SHAP values of a case, in the C API's layout.

    values        (rows, M + 1, K): feature j's value for raw output k, j == M the bias
    interactions  (interaction_rows, M + 1, M + 1, K) or None
    """

    def __init__(self, values, reference, interactions=None):
        self.values = np.asarray(values, dtype=np.float64)
        self.interactions = None if interactions is None else np.asarray(interactions, dtype=np.float64)
        self.interaction_rows = 0 if interactions is None else self.interactions.shape[0]
        self.reference = reference

    def write(self, name, rows, features, raw):
        k = raw.shape[1]
        assert self.values.shape == (rows, features + 1, k), (name, self.values.shape)
        # The reference's own additivity: values + bias sum to its raw output.
        tolerance = float(f"{pu.SHAP_TOLERANCE * max(1, math.ceil(float(np.max(np.abs(raw))))):.3g}")
        assert np.max(np.abs(self.values.sum(axis=1) - raw)) <= tolerance, name
        self.values.astype("<f8").tofile(os.path.join(OUT, f"{name}.shap.f64"))
        fields = {"expected_shap_file": f"{name}.shap.f64", "shap_tolerance": tolerance,
                  "shap_reference": self.reference}
        if self.interactions is not None:
            n = self.interaction_rows
            assert self.interactions.shape == (n, features + 1, features + 1, k), (name, self.interactions.shape)
            assert np.max(np.abs(self.interactions.sum(axis=2) - self.values[:n])) <= tolerance, name
            self.interactions.astype("<f8").tofile(os.path.join(OUT, f"{name}.interactions.f64"))
            fields.update({"expected_interactions_file": f"{name}.interactions.f64", "interaction_rows": n})
        return fields


def xgb_dmatrix_rows(bst, X, iterations, **dmatrix_kw):
    """A DMatrix of X for pred_contribs / pred_interactions. A DMatrix rejects +/-inf, so
    +/-inf become +/-float32 max, which takes the same branch at every split (XGBoost's
    thresholds are finite and compared with x < t): asserted by bit-identical margins
    after every iteration (inplace_predict accepts inf)."""
    Xs = X.copy()
    Xs[np.isposinf(Xs)] = pu.F32_MAX
    Xs[np.isneginf(Xs)] = -pu.F32_MAX
    for n in range(1, iterations + 1):
        a = bst.inplace_predict(X, predict_type="margin", iteration_range=(0, n))
        b = bst.inplace_predict(Xs, predict_type="margin", iteration_range=(0, n))
        np.testing.assert_array_equal(a, b)
    return xgb.DMatrix(Xs, missing=np.nan, **dmatrix_kw)


def xgb_shap(bst, X, iterations, interactions=False, **dmatrix_kw):
    """XGBoost's pred_contribs (and for the first INTERACTION_ROWS rows pred_interactions)
    in the C API's layout."""
    contribs = bst.predict(xgb_dmatrix_rows(bst, X, iterations, **dmatrix_kw), pred_contribs=True)
    # (rows, M + 1) or (rows, K, M + 1) -> (rows, M + 1, K)
    values = contribs[:, :, None] if contribs.ndim == 2 else contribs.transpose(0, 2, 1)
    inter = None
    reference = f"xgboost {xgb.__version__} Booster.predict(DMatrix, pred_contribs=True)"
    if interactions:
        Xi = X[:INTERACTION_ROWS]
        assert not np.isinf(Xi).any()
        p = bst.predict(xgb.DMatrix(Xi, missing=np.nan, **dmatrix_kw), pred_interactions=True)
        inter = p[..., None] if p.ndim == 3 else p.transpose(0, 2, 3, 1)
        reference += f" / pred_interactions=True (first {INTERACTION_ROWS} rows)"
    return Shap(values, reference + "; +/-inf explained as +/-float32 max", inter)


# ---- XGBoost ---------------------------------------------------------------------------

def xgb_params(**kw):
    p = {"max_depth": 4, "eta": 0.3, "nthread": 1, "seed": 7, "verbosity": 0}
    p.update(kw)
    return p


def xgb_case(w, rng, name, params, target, rounds, description, shap_values=False, interactions=False):
    X = pu.features(rng, TRAIN_ROWS)
    y = target(rng, X)
    bst = xgb.train(xgb_params(**params), xgb.DMatrix(X, y), rounds)
    model_file = f"{name}.json"
    bst.save_model(os.path.join(OUT, model_file))
    Xt = fixture_rows(rng, pu.xgboost_trees(os.path.join(OUT, model_file)), True, allow_inf=True)
    explained = xgb_shap(bst, Xt, rounds, interactions) if shap_values else None
    w.add(name, model_file, Xt, bst.inplace_predict(Xt), bst.inplace_predict(Xt, predict_type="margin"),
          f"xgboost {xgb.__version__} Booster.inplace_predict", description, shap=explained)


def xgb_categorical(w, rng):
    cats = [f"ward_{i:02d}" for i in range(16)]

    def frame(n, nan_fraction=0.05):
        df = pd.DataFrame(pu.features(rng, n, nan_fraction)[:, :6], columns=pu.FEATURE_NAMES[:6])
        df["ward"] = pd.Categorical.from_codes(rng.integers(0, len(cats), n), categories=cats)
        df["care_type"] = pd.Categorical.from_codes(rng.integers(0, 3, n), categories=["home", "clinic", "hospital"])
        for c in ("ward", "care_type"):
            df.loc[rng.random(n) < nan_fraction, c] = np.nan
        return df

    def codes(df):
        cols = []
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                v = df[c].cat.codes.to_numpy().astype(np.float64)
                v[v < 0] = np.nan
                cols.append(v)
            else:
                cols.append(df[c].to_numpy(np.float64))
        return np.column_stack(cols).astype(np.float32)

    df = frame(TRAIN_ROWS)
    effect = rng.normal(0, 1.5, len(cats))
    c = df["ward"].cat.codes.to_numpy()
    s = np.where(c >= 0, effect[np.maximum(c, 0)], 0.5) + 0.05 * np.nan_to_num(df[pu.FEATURE_NAMES[0]].to_numpy() - 50)
    s += 0.8 * (df["care_type"].cat.codes.to_numpy() == 2) + 0.5 * np.nan_to_num(df[pu.FEATURE_NAMES[1]].to_numpy())
    y = (rng.random(len(df)) < 1 / (1 + np.exp(-s))).astype(np.float64)
    bst = xgb.train(xgb_params(objective="binary:logistic", max_cat_to_onehot=4),
                    xgb.DMatrix(df, y, enable_categorical=True), 20)
    name = "xgb_categorical"
    bst.save_model(os.path.join(OUT, f"{name}.json"))
    trees = pu.xgboost_trees(os.path.join(OUT, f"{name}.json"))
    Xt = fixture_rows(rng, trees, True, allow_inf=True, make=lambda r, n, f: codes(frame(n, f)),
                      extra_values=[-1.0, 2.5, 16.0, 1000.0])
    explained = xgb_shap(bst, Xt, 20, feature_names=bst.feature_names, feature_types=bst.feature_types,
                         enable_categorical=True)
    w.add(name, f"{name}.json", Xt, bst.inplace_predict(Xt), bst.inplace_predict(Xt, predict_type="margin"),
          f"xgboost {xgb.__version__} Booster.inplace_predict on category codes",
          "binary:logistic with pandas categories (16 and 3 levels), inputs are category codes", shap=explained)


def xgb_early_stopped(w, rng):
    X = pu.features(rng, TRAIN_ROWS)
    y = pu.binary_target(rng, X)
    Xv = pu.features(rng, 1000)
    yv = pu.binary_target(rng, Xv)
    bst = xgb.train(xgb_params(objective="binary:logistic", eta=0.5, max_depth=5, eval_metric="logloss"),
                    xgb.DMatrix(X, y), 60, evals=[(xgb.DMatrix(Xv, yv), "valid")], early_stopping_rounds=4,
                    verbose_eval=False)
    best = bst.best_iteration
    assert best + 1 < bst.num_boosted_rounds()
    name = "xgb_early_stopped"
    bst.save_model(os.path.join(OUT, f"{name}.json"))
    Xt = fixture_rows(rng, pu.xgboost_trees(os.path.join(OUT, f"{name}.json")), True, allow_inf=True)
    rng_ = (0, best + 1)
    w.add(name, f"{name}.json", Xt, bst.inplace_predict(Xt, iteration_range=rng_),
          bst.inplace_predict(Xt, predict_type="margin", iteration_range=rng_),
          f"xgboost {xgb.__version__} Booster.inplace_predict(iteration_range=(0, best_iteration + 1))",
          f"binary:logistic early-stopped: best_iteration {best} of {bst.num_boosted_rounds()} rounds; "
          f"expected outputs use the default iteration limit (best_iteration + 1)")


# ---- LightGBM --------------------------------------------------------------------------

def lgb_params(**kw):
    p = {"num_leaves": 15, "learning_rate": 0.1, "num_threads": 1, "verbose": -1, "seed": 3,
         "deterministic": True, "force_col_wise": True, "min_data_in_leaf": 20}
    p.update(kw)
    return p


def lgb_case(w, rng, name, params, target, rounds, description, make=None, categorical=None, extra_values=(),
             train_nan=0.05, shap_values=False):
    make = make or pu.features
    X = make(rng, TRAIN_ROWS, train_nan)
    y = target(rng, X)
    kw = {} if categorical is None else {"categorical_feature": categorical}
    bst = lgb.train(lgb_params(**params), lgb.Dataset(X, y, params={"verbose": -1}, **kw), rounds)
    model_file = f"{name}.txt"
    bst.save_model(os.path.join(OUT, model_file))
    return_path = os.path.join(OUT, model_file)
    Xt = fixture_rows(rng, pu.lightgbm_trees(os.path.join(OUT, model_file)), False, allow_inf=True, make=make,
                      extra_values=extra_values)
    explained = None
    if shap_values:
        contribs = bst.predict(Xt, pred_contrib=True)  # (rows, K * (M + 1)), class-major
        k = bst.num_model_per_iteration()
        values = contribs.reshape(len(Xt), k, Xt.shape[1] + 1).transpose(0, 2, 1)
        explained = Shap(values, f"lightgbm {lgb.__version__} Booster.predict(X, pred_contrib=True)")
    w.add(name, model_file, Xt, bst.predict(Xt), bst.predict(Xt, raw_score=True),
          f"lightgbm {lgb.__version__} Booster.predict", description, shap=explained)
    return return_path


def lgb_categorical_features(rng, n, nan_fraction=0.05):
    X = pu.features(rng, n, nan_fraction)
    col = np.where(rng.random(n) < 0.5, rng.integers(0, 80, n), np.minimum(rng.zipf(1.3, n) - 1, 79))
    col = col.astype(np.float32)
    col[rng.random(n) < nan_fraction] = np.nan
    X[:, 2] = col
    return X


def lgb_categorical_target(rng, X):
    effect = np.random.default_rng(99).normal(0, 1.5, 80)
    c = X[:, 2]
    s = pu.signal(X) + np.where(np.isnan(c), 1.0, effect[np.nan_to_num(c, nan=0).astype(int)])
    return (rng.random(len(X)) < 1 / (1 + np.exp(-s))).astype(np.float64)


# ---- scikit-learn ----------------------------------------------------------------------

def sk_case(w, rng, name, est, target, train_nan, description, shap_values=False):
    import medinfer
    X = pu.features(rng, TRAIN_ROWS, 0.05 if train_nan else 0.0)
    y = target(rng, X)
    est.fit(X.astype(np.float64), y)
    model_file = f"{name}.json"
    medinfer.export_sklearn(est, os.path.join(OUT, model_file), feature_names=pu.FEATURE_NAMES)
    final = est[-1] if isinstance(est, Pipeline) else est
    trees = pu.forest_json_trees(os.path.join(OUT, model_file))
    to_raw = None
    if isinstance(est, Pipeline):
        sc = est[0]
        to_raw = lambda f, v: [np.float32((float(v) - sc.min_[f]) / sc.scale_[f])]
    Xt = fixture_rows(rng, trees, False, allow_inf=False, allow_nan=train_nan, to_raw=to_raw)
    if isinstance(est, Pipeline):
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = est[0].transform(Xt.astype(np.float64)).astype(np.float32)
        bad = np.isinf(scaled).any(axis=1)
        # scikit-learn rejects rows whose scaled value overflows float32: replace them by
        # fresh rows so every case keeps ROWS rows.
        Xt[bad] = pu.features(rng, int(bad.sum()), 0.05)
    X64 = Xt.astype(np.float64)
    proba = est.predict_proba(X64)
    raw = est.decision_function(X64) if isinstance(final, GradientBoostingClassifier) else proba
    explained = None
    if shap_values:
        # shap explains the final estimator on the tree inputs: the pipeline's transform.
        tree_input = est[:-1].transform(X64) if isinstance(est, Pipeline) else X64
        explainer = shap.TreeExplainer(final)
        values = np.asarray(explainer.shap_values(tree_input), dtype=np.float64)
        values = values if values.ndim == 3 else values[:, :, None]  # (rows, M, K)
        bias = np.broadcast_to(np.reshape(explainer.expected_value, (1, 1, -1)), (len(Xt), 1, values.shape[2]))
        explained = Shap(np.concatenate([values, bias], axis=1),
                         f"shap {shap.__version__} TreeExplainer(final estimator).shap_values on the pipeline's "
                         f"transform of the rows, expected_value as the bias")
    w.add(name, model_file, Xt, proba, raw, f"scikit-learn {sklearn.__version__} predict_proba / decision_function",
          description, shap=explained)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    w = Writer()
    rng = lambda seed: np.random.default_rng(seed)

    xgb_case(w, rng(101), "xgb_binary", dict(objective="binary:logistic"), pu.binary_target, 25,
             "binary:logistic, 25 trees of depth 4, trained with 5% NaN", shap_values=True, interactions=True)
    xgb_case(w, rng(102), "xgb_multi_softprob", dict(objective="multi:softprob", num_class=4, max_depth=3),
             lambda r, X: pu.multiclass_target(r, X, 4), 8, "multi:softprob, 4 classes, 8 iterations (32 trees)",
             shap_values=True)
    xgb_categorical(w, rng(103))
    xgb_case(w, rng(104), "xgb_poisson", dict(objective="count:poisson"), pu.count_target, 25,
             "count:poisson, 25 trees")
    xgb_early_stopped(w, rng(105))

    lgb_case(w, rng(201), "lgb_binary", dict(objective="binary"), pu.binary_target, 25, "binary, 25 trees, 15 leaves",
             shap_values=True)
    lgb_case(w, rng(202), "lgb_multiclass", dict(objective="multiclass", num_class=3),
             lambda r, X: pu.multiclass_target(r, X, 3), 10, "multiclass, 3 classes, 10 iterations (30 trees)")
    lgb_case(w, rng(203), "lgb_categorical",
             dict(objective="binary", max_cat_to_onehot=4, max_cat_threshold=48, cat_smooth=1, cat_l2=1,
                  min_data_per_group=5, min_data_in_leaf=10),
             lgb_categorical_target, 25, "binary with an 80-level categorical feature (column 2)",
             make=lgb_categorical_features, categorical=[2], extra_values=[-1.0, 2.5, 33.0, 80.0, 1000.0],
             shap_values=True)
    lgb_case(w, rng(204), "lgb_zero_missing", dict(objective="binary", zero_as_missing=True), pu.binary_target, 25,
             "binary with zero_as_missing=True (missing_type Zero)")
    path = lgb_case(w, rng(206), "lgb_nan_splits", dict(objective="regression"),
                    lambda r, X: pu.regression_target(r, X) + 1.0 * np.isnan(X[:, 6]) + 1.0 * np.isnan(X[:, 3]), 25,
                    "regression trained with 15% NaN: NaN defaults both ways, NaN-vs-value splits (threshold inf)",
                    train_nan=0.15)
    decisions = [int(d) for kv in pu.lightgbm_tree_sections(path) for d in kv.get("decision_type", "").split()]
    assert {bool(d & 2) for d in decisions if (d >> 2) & 3 == 2} == {True, False}
    assert any("inf" in kv.get("threshold", "").split() for kv in pu.lightgbm_tree_sections(path))
    lgb_case(w, rng(205), "lgb_rf",
             dict(objective="binary", boosting="rf", bagging_fraction=0.7, bagging_freq=1, feature_fraction=0.8),
             pu.binary_target, 20, "random forest mode (boosting=rf, bagging), average_output", shap_values=True)

    sk_case(w, rng(301), "sk_rf_minmax_pipeline",
            Pipeline([("scale", MinMaxScaler()),
                      ("rf", RandomForestClassifier(n_estimators=20, max_depth=6, random_state=1, n_jobs=1))]),
            lambda r, X: pu.binary_target(r, X).astype(int), True,
            "Pipeline(MinMaxScaler, RandomForestClassifier 20 trees depth 6), trained with NaN", shap_values=True)
    sk_case(w, rng(302), "sk_gbm_binary",
            GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=2),
            lambda r, X: pu.binary_target(r, X).astype(int), False,
            "GradientBoostingClassifier binary, 30 trees of depth 3 (no NaN: scikit-learn rejects it)")

    manifest = {
        "generator": "Tests/Parity/make_fixtures.py",
        "versions": {"xgboost": xgb.__version__, "lightgbm": lgb.__version__, "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__},
        "cases": w.cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(w.cases)} cases, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()

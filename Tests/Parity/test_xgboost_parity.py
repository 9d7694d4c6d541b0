"""Parity of MedInfer with XGBoost (xgboost 3.x, JSON model files).

Each test trains a fresh small Booster with `xgb.train` on synthetic data, saves it with
`Booster.save_model("*.json")`, loads it with `medinfer.Model.load` and compares, on
>= 10,000 fresh rows (~5% NaN) plus edge rows, against `Booster.inplace_predict` on the
same float32 matrix (transformed output, and `predict_type="margin"` for raw margins);
for a few models also against `Booster.predict(DMatrix, output_margin=True)`.

Edge rows: thresholds read back from the saved JSON (`split_conditions`) planted exactly
and one float32 step either side, along tree paths and one feature at a time; -0.0, +/-0,
tiny and subnormal values, +/-1e30, +/-float32 max, +/-inf (inplace_predict accepts inf
for a numpy input; an XGBoost DMatrix would reject it), all-missing rows and rows with
special values sprinkled in. For the categorical model also negative, fractional,
unseen and huge category codes.

Why 1e-6 absolute holds: XGBoost reads features as float32, compares `x < threshold` in
float32, and accumulates predictions in float32, starting from the base margin and adding
one tree after another in file order; its transforms (sigmoid, softmax, exp) are float32
too. MedInfer mirrors that arithmetic (float32 accumulation in the same order, base_score
turned into a margin in float32), so the raw margins should be bit-identical and the
transformed outputs identical too (MedInfer's float32 transform result is widened to
double). The only slack 1e-6 leaves is for libm's expf differing in the last bit between
XGBoost's C++ runtime and Swift's Glibc, which is ~6e-8 on a probability and
~6e-8 * value for exp(); the count:poisson model's predictions stay below ~16, so that is
< 1e-6. Anything else - a threshold rounded the wrong way, a wrong default direction, a
base margin computed in double - shows up as a difference of a whole leaf value (~1e-2)
or at least one float32 ulp of the margin (~1e-7 ... 1e-6), well above what bit-identical
arithmetic gives (0).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import parity_utils as pu

FAMILY = "xgboost"
TRAIN_ROWS = 4000


def _params(threads, **kw):
    p = {"max_depth": 4, "eta": 0.3, "nthread": threads, "seed": 7, "verbosity": 0}
    p.update(kw)
    return p


def _train_matrix(rng):
    X = pu.features(rng, TRAIN_ROWS)
    return X


def _compare_model(medinfer, name, bst, m, X, iteration_range=None, iteration_limit=0,
                   label_suffix=""):
    kw = {} if iteration_range is None else {"iteration_range": iteration_range}
    ref_t = bst.inplace_predict(X, **kw)
    ref_r = bst.inplace_predict(X, predict_type="margin", **kw)
    got_t = m.predict(X, output="transformed", iteration_limit=iteration_limit)
    got_r = m.predict(X, output="raw", iteration_limit=iteration_limit)
    label = name + label_suffix
    r1 = pu.compare(FAMILY, label, "transformed", got_t, ref_t, X)
    r2 = pu.compare(FAMILY, label, "raw", got_r, ref_r, X)
    return [r1, r2]


def _save_and_load(medinfer, model_dir, name, bst):
    path = model_dir / f"xgb_{name}.json"
    bst.save_model(str(path))
    return path, medinfer.Model.load(str(path))


def _check_metadata(m, bst, objective, n_classes=None, parallel=1):
    rounds = bst.num_boosted_rounds()
    per_iter = max(1, int(json.loads(bst.save_config())["learner"]["learner_model_param"]["num_class"]))
    assert m.kind == "xgboost"
    assert m.n_features == bst.num_features()
    assert m.objective == objective
    assert m.n_iterations == rounds
    assert m.n_trees == rounds * per_iter * parallel
    if n_classes is not None:
        assert m.n_classes == n_classes


CASES = [
    # name, params, target, rounds, n_classes (None = not asserted), output counts (t, r)
    ("binary_logistic", dict(objective="binary:logistic"), "binary", 30, 2, (1, 1)),
    ("binary_logitraw", dict(objective="binary:logitraw"), "binary", 30, None, (1, 1)),
    ("reg_squarederror_exact", dict(objective="reg:squarederror", tree_method="exact"), "regression", 30, 1, (1, 1)),
    ("reg_logistic", dict(objective="reg:logistic"), "proportion", 30, None, (1, 1)),
    ("multi_softprob_4", dict(objective="multi:softprob", num_class=4), "multi4", 20, 4, (4, 4)),
    ("multi_softmax_4", dict(objective="multi:softmax", num_class=4), "multi4", 20, 4, (1, 4)),
    ("count_poisson", dict(objective="count:poisson"), "count", 30, 1, (1, 1)),
    ("base_score_logistic_0.3", dict(objective="binary:logistic", base_score=0.3), "binary", 20, 2, (1, 1)),
    ("base_score_squarederror_-1.5", dict(objective="reg:squarederror", base_score=-1.5), "regression", 20, 1, (1, 1)),
    ("parallel_tree_4", dict(objective="binary:logistic", num_parallel_tree=4, subsample=0.7,
                             colsample_bynode=0.7, eta=0.5), "binary", 6, 2, (1, 1)),
]


def _target(kind, rng, X):
    if kind == "binary":
        return pu.binary_target(rng, X)
    if kind == "regression":
        return pu.regression_target(rng, X)
    if kind == "proportion":
        return 1 / (1 + np.exp(-(pu.signal(X) + rng.normal(0, 0.5, len(X)))))
    if kind == "multi4":
        return pu.multiclass_target(rng, X, 4)
    if kind == "count":
        return pu.count_target(rng, X)
    raise ValueError(kind)


@pytest.mark.parametrize("name,params,target,rounds,n_classes,counts", CASES, ids=[c[0] for c in CASES])
def test_objective(medinfer, model_dir, rng, threads, name, params, target, rounds, n_classes, counts):
    X = _train_matrix(rng)
    y = _target(target, rng, X)
    bst = xgb.train(_params(threads, **params), xgb.DMatrix(X, y, missing=np.nan), rounds)
    path, m = _save_and_load(medinfer, model_dir, name, bst)
    _check_metadata(m, bst, params["objective"], n_classes, params.get("num_parallel_tree", 1))
    assert (m.output_count("transformed"), m.output_count("raw")) == counts
    Xt = pu.parity_matrix(rng, pu.xgboost_trees(path), strict_less=True, allow_inf=True)
    results = _compare_model(medinfer, name, bst, m, Xt)
    if name in ("binary_logistic", "multi_softprob_4", "count_poisson"):
        # Cross-check with the DMatrix path, Booster.predict(output_margin=True) (which
        # rejects +/-inf, so those rows are left out here).
        finite = ~np.isinf(Xt).any(axis=1)
        Xd = np.ascontiguousarray(Xt[finite])
        dm = xgb.DMatrix(Xd, missing=np.nan)
        label = f"{name} (DMatrix predict)"
        results.append(pu.compare(FAMILY, label, "transformed", m.predict(Xd), bst.predict(dm), Xd))
        results.append(pu.compare(FAMILY, label, "raw", m.predict(Xd, output="raw"),
                                  bst.predict(dm, output_margin=True), Xd))
    if params["objective"] == "count:poisson":
        # The docstring's bound on expf's last-bit differences assumes predictions < 16.
        assert float(np.max(bst.inplace_predict(Xt))) < 16
    if params.get("num_parallel_tree", 1) > 1:
        # An iteration of a boosted random forest holds num_parallel_tree trees.
        results += _compare_model(medinfer, name, bst, m, Xt, iteration_range=(0, 2), iteration_limit=2,
                                  label_suffix=" (limit 2)")
    pu.assert_results(*results)


def test_iteration_limit(medinfer, model_dir, rng, threads):
    X = _train_matrix(rng)
    y = pu.multiclass_target(rng, X, 4)
    bst = xgb.train(_params(threads, objective="multi:softprob", num_class=4), xgb.DMatrix(X, y), 20)
    path, m = _save_and_load(medinfer, model_dir, "softprob_limits", bst)
    Xt = pu.parity_matrix(rng, pu.xgboost_trees(path), strict_less=True, allow_inf=True)
    results = []
    for limit in (1, 7, 20):
        results += _compare_model(medinfer, "softprob_4", bst, m, Xt, iteration_range=(0, limit),
                                  iteration_limit=limit, label_suffix=f" (limit {limit})")
    pu.assert_results(*results)


def test_early_stopping(medinfer, model_dir, rng, threads):
    X = _train_matrix(rng)
    y = pu.binary_target(rng, X)
    Xv = pu.features(rng, 1500)
    yv = pu.binary_target(rng, Xv)
    bst = xgb.train(_params(threads, objective="binary:logistic", eta=0.5, max_depth=6, eval_metric="logloss"),
                    xgb.DMatrix(X, y), 300, evals=[(xgb.DMatrix(Xv, yv), "valid")],
                    early_stopping_rounds=5, verbose_eval=False)
    best = bst.best_iteration
    assert best + 1 < bst.num_boosted_rounds(), "early stopping did not leave extra trees; the test proves nothing"
    path, m = _save_and_load(medinfer, model_dir, "early_stopping", bst)
    assert m.n_iterations == bst.num_boosted_rounds()
    assert m.default_iteration_limit == best + 1
    Xt = pu.parity_matrix(rng, pu.xgboost_trees(path), strict_less=True, allow_inf=True)
    results = _compare_model(medinfer, f"early_stopped (best {best})", bst, m, Xt, iteration_range=(0, best + 1),
                             iteration_limit=0, label_suffix=" default")
    n = bst.num_boosted_rounds()
    results += _compare_model(medinfer, "early_stopped", bst, m, Xt, iteration_range=(0, n), iteration_limit=n,
                              label_suffix=f" (all {n})")
    pu.assert_results(*results)


def test_json_from_bytes(medinfer, rng, threads):
    X = _train_matrix(rng)
    y = pu.binary_target(rng, X)
    bst = xgb.train(_params(threads, objective="binary:logistic"), xgb.DMatrix(X, y), 25)
    raw = bytes(bst.save_raw(raw_format="json"))
    m = medinfer.Model.from_bytes(raw)
    trees = []
    for t in json.loads(raw)["learner"]["gradient_booster"]["model"]["trees"]:
        trees.append(pu.Tree(t["left_children"], t["right_children"], t["split_indices"],
                             [float(v) for v in t["split_conditions"]], [False] * len(t["left_children"])))
    Xt = pu.parity_matrix(rng, trees, strict_less=True, allow_inf=True)
    pu.assert_results(*_compare_model(medinfer, "from_bytes(save_raw json)", bst, m, Xt))


# ---- categorical --------------------------------------------------------------------

CAT_MANY = [f"ward_{i:02d}" for i in range(20)]
CAT_FEW = ["home", "clinic", "hospital"]


def _categorical_frame(rng, rows, nan_fraction=0.05):
    Xn = pu.features(rng, rows, nan_fraction)[:, :6]
    df = pd.DataFrame(Xn, columns=pu.FEATURE_NAMES[:6])
    many = rng.integers(0, len(CAT_MANY), rows)
    few = rng.integers(0, len(CAT_FEW), rows)
    df["ward"] = pd.Categorical.from_codes(many, categories=CAT_MANY)
    df["care_type"] = pd.Categorical.from_codes(few, categories=CAT_FEW)
    for c in ("ward", "care_type"):
        df.loc[rng.random(rows) < nan_fraction, c] = np.nan
    return df


def _codes_matrix(df):
    """The float32 matrix MedInfer gets: numeric columns as they are, categories as their
    codes (NaN for missing)."""
    cols = []
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            codes = df[c].cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            cols.append(codes)
        else:
            cols.append(df[c].to_numpy(dtype=np.float64))
    return np.ascontiguousarray(np.column_stack(cols).astype(np.float32))


def _categorical_features(rng, rows, nan_fraction):
    return _codes_matrix(_categorical_frame(rng, rows, nan_fraction))


def test_categorical(medinfer, model_dir, rng, threads):
    df = _categorical_frame(rng, TRAIN_ROWS)
    effect = rng.normal(0, 1.5, len(CAT_MANY))
    codes = df["ward"].cat.codes.to_numpy()
    s = pu.signal(np.column_stack([df.iloc[:, :6].to_numpy(np.float32), np.zeros((len(df), 2), np.float32)]))
    s += np.where(codes >= 0, effect[np.maximum(codes, 0)], 0.5) + 0.7 * (df["care_type"].cat.codes.to_numpy() == 1)
    y = (rng.random(len(df)) < 1 / (1 + np.exp(-s))).astype(np.float64)
    bst = xgb.train(_params(threads, objective="binary:logistic", max_cat_to_onehot=4),
                    xgb.DMatrix(df, y, enable_categorical=True), 30)
    path, m = _save_and_load(medinfer, model_dir, "categorical", bst)
    assert m.feature_names == list(df.columns)
    trees = pu.xgboost_trees(path)
    assert any(any(t.categorical) for t in trees), "no categorical split was learned"

    # The reference scores category codes through the model's feature types; check once
    # that this equals scoring the DataFrame itself (so codes mean the same categories).
    fresh = _categorical_frame(rng, 10_000)
    Xf = _codes_matrix(fresh)
    np.testing.assert_array_equal(bst.inplace_predict(fresh), bst.inplace_predict(Xf))

    cat_extras = [-1.0, -0.5, 0.5, 2.7, 19.0, 19.5, 20.0, 21.0, 63.0, 64.0, 1000.0, 2.0**24, 2.0**24 + 2]
    Xt = pu.parity_matrix(rng, trees, strict_less=True, allow_inf=True, make=_categorical_features,
                          extra_values=cat_extras)
    Xt[:10_000] = Xf
    pu.assert_results(*_compare_model(medinfer, "categorical (20 + 3 categories)", bst, m, Xt))

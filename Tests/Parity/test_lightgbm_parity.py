"""Parity of MedInfer with LightGBM (lightgbm 4.x, text model files).

Each test trains a fresh small Booster with `lgb.train`, saves it with
`Booster.save_model("*.txt")`, loads it with `medinfer.Model.load` and compares, on
>= 10,000 fresh rows (~5% NaN) plus edge rows, against `Booster.predict(X)` and
`Booster.predict(X, raw_score=True)` on the same float32 matrix (and with
`num_iteration=k` against MedInfer's iteration_limit=k for some models).

Note on random-forest mode (`average_output`): LightGBM 4.x divides by the number of
iterations only in its transformed prediction; `raw_score=True` returns the plain sum of
the trees. The test compares against both as LightGBM reports them.

Edge rows: thresholds read back from the text model (`threshold=` of numerical splits,
doubles printed with 17 digits) planted as the float32 just below/at and just above
them, along tree paths and one feature at a time; -0.0, +/-0, values around LightGBM's
zero threshold (1e-35: 1e-36, 2e-35, subnormals), +/-1e30, +/-float32 max, +/-inf
(LightGBM accepts them), all-missing rows and rows with special values sprinkled in.
For the categorical model also negative, fractional, unseen and huge category values.

Why 1e-6 absolute holds: LightGBM widens each float32 feature to double, compares
`x <= threshold` in double, sums leaf values in double tree by tree and transforms in
double. MedInfer turns each double threshold into the largest float32 not above it, which
gives the same branch for every float32 input, and sums/transforms in double in the same
order, so the results agree to the last bit or within a few double ulps (~1e-15). A real
semantic difference (a wrong branch, a wrong missing rule) moves a prediction by a whole
leaf value (~1e-3 .. 1e-1).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

import parity_utils as pu

FAMILY = "lightgbm"
TRAIN_ROWS = 4000


def _params(threads, **kw):
    p = {"num_leaves": 15, "learning_rate": 0.1, "num_threads": threads, "verbose": -1, "seed": 3,
         "deterministic": True, "force_col_wise": True, "min_data_in_leaf": 20}
    p.update(kw)
    return p


def _decision_types(path):
    out = []
    for kv in pu.lightgbm_tree_sections(path):
        if "decision_type" in kv:
            out += [int(v) for v in kv["decision_type"].split()]
    return out


def _missing_types(path):
    """(missing_type, default_left) of every numerical split. missing_type: 0 None,
    1 Zero, 2 NaN (decision_type bits 2-3), default_left: bit 1."""
    return {((d >> 2) & 3, bool(d & 2)) for d in _decision_types(path) if not d & 1}


def _run(medinfer, model_dir, rng, name, bst, *, n_classes, counts, objective_prefix, make=None,
         extra_values=(), nan_fraction=0.05, limits=()):
    path = model_dir / f"lgb_{name}.txt"
    bst.save_model(str(path))
    m = medinfer.Model.load(str(path))
    assert m.kind == "lightgbm"
    assert m.n_features == bst.num_feature()
    assert m.feature_names == bst.feature_name()
    assert m.objective.startswith(objective_prefix)
    assert m.n_classes == n_classes
    assert m.n_trees == bst.num_trees()
    assert m.n_iterations == bst.current_iteration()
    assert (m.output_count("transformed"), m.output_count("raw")) == counts
    Xt = pu.parity_matrix(rng, pu.lightgbm_trees(path), strict_less=False, allow_inf=True, make=make,
                          extra_values=extra_values, nan_fraction=nan_fraction)
    r1 = pu.compare(FAMILY, name, "transformed", m.predict(Xt), bst.predict(Xt), Xt)
    r2 = pu.compare(FAMILY, name, "raw", m.predict(Xt, output="raw"), bst.predict(Xt, raw_score=True), Xt)
    results = [r1, r2]
    for k in limits:
        label = f"{name} (limit {k})"
        results.append(pu.compare(FAMILY, label, "transformed", m.predict(Xt, iteration_limit=k),
                                  bst.predict(Xt, num_iteration=k), Xt))
        results.append(pu.compare(FAMILY, label, "raw", m.predict(Xt, output="raw", iteration_limit=k),
                                  bst.predict(Xt, raw_score=True, num_iteration=k), Xt))
    pu.assert_results(*results)
    return path


def _train(params, X, y, rounds, **dataset_kw):
    return lgb.train(params, lgb.Dataset(X, y, params={"verbose": -1}, **dataset_kw), rounds)


def test_binary(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS)
    bst = _train(_params(threads, objective="binary"), X, pu.binary_target(rng, X), 30)
    _run(medinfer, model_dir, rng, "binary", bst, n_classes=2, counts=(1, 1), objective_prefix="binary",
         limits=(10,))


def test_multiclass(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS)
    bst = _train(_params(threads, objective="multiclass", num_class=3), X, pu.multiclass_target(rng, X, 3), 20)
    _run(medinfer, model_dir, rng, "multiclass_3", bst, n_classes=3, counts=(3, 3), objective_prefix="multiclass",
         limits=(1, 7))


def test_regression(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS)
    bst = _train(_params(threads, objective="regression"), X, pu.regression_target(rng, X), 30)
    _run(medinfer, model_dir, rng, "regression", bst, n_classes=1, counts=(1, 1), objective_prefix="regression")


def test_poisson(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS)
    bst = _train(_params(threads, objective="poisson"), X, pu.count_target(rng, X), 30)
    _run(medinfer, model_dir, rng, "poisson", bst, n_classes=1, counts=(1, 1), objective_prefix="poisson")


N_CATEGORIES = 100
CAT_COLUMN = 2


def _categorical_features(rng, rows, nan_fraction=0.05):
    X = pu.features(rng, rows, nan_fraction)
    # Skewed use of 100 categories: bitsets of LightGBM's many-vs-many splits span several
    # 32-bit words.
    cats = np.minimum(rng.zipf(1.3, rows) - 1, N_CATEGORIES - 1)
    cats = np.where(rng.random(rows) < 0.5, rng.integers(0, N_CATEGORIES, rows), cats)
    col = cats.astype(np.float32)
    col[rng.random(rows) < nan_fraction] = np.nan
    X[:, CAT_COLUMN] = col
    return X


def test_categorical(medinfer, model_dir, rng, threads):
    X = _categorical_features(rng, 6000)
    effect = rng.normal(0, 1.5, N_CATEGORIES)
    c = X[:, CAT_COLUMN]
    s = pu.signal(X) + np.where(np.isnan(c), 1.0, effect[np.nan_to_num(c, nan=0).astype(int)])
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-s))).astype(np.float64)
    params = _params(threads, objective="binary", max_cat_to_onehot=4, max_cat_threshold=64, cat_smooth=1,
                     cat_l2=1, min_data_per_group=5, min_data_in_leaf=10)
    bst = _train(params, X, y, 30, categorical_feature=[CAT_COLUMN])
    extras = [-1.0, -0.5, -0.0, 0.5, 2.7, 31.0, 32.0, 33.0, 63.0, 64.0, 99.0, 100.0, 1000.0, 2.0**31, 1e10]
    path = _run(medinfer, model_dir, rng, "categorical (100 categories)", bst, n_classes=2, counts=(1, 1),
                objective_prefix="binary", make=_categorical_features, extra_values=extras)
    words = []
    for kv in pu.lightgbm_tree_sections(path):
        if int(kv.get("num_cat", "0")) > 0:
            b = [int(v) for v in kv["cat_boundaries"].split()]
            words += [b[i + 1] - b[i] for i in range(len(b) - 1)]
    assert words and max(words) > 1, f"no categorical bitset spans several words ({words})"


def test_missing_type_zero(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS)
    bst = _train(_params(threads, objective="binary", zero_as_missing=True), X, pu.binary_target(rng, X), 30)
    path = _run(medinfer, model_dir, rng, "zero_as_missing", bst, n_classes=2, counts=(1, 1),
                objective_prefix="binary")
    assert any(mt == 1 for mt, _ in _missing_types(path)), "no split with missing_type Zero"


def test_missing_type_none(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS)
    bst = _train(_params(threads, objective="binary", use_missing=False), X, pu.binary_target(rng, X), 30)
    path = _run(medinfer, model_dir, rng, "use_missing=False", bst, n_classes=2, counts=(1, 1),
                objective_prefix="binary")
    assert {mt for mt, _ in _missing_types(path)} == {0}, "expected missing_type None everywhere"


def test_nan_default_left_and_right(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS, nan_fraction=0.15)
    # Strong effects of missingness make LightGBM learn "NaN vs every value" splits too,
    # which it writes with threshold=inf.
    y = pu.regression_target(rng, X) + 1.0 * np.isnan(X[:, 6]) + 1.0 * np.isnan(X[:, 3])
    bst = _train(_params(threads, objective="regression"), X, y, 30)
    path = _run(medinfer, model_dir, rng, "nan_default_left_right", bst, n_classes=1, counts=(1, 1),
                objective_prefix="regression")
    kinds = _missing_types(path)
    assert (2, True) in kinds and (2, False) in kinds, f"need NaN splits defaulting both ways, got {kinds}"
    assert any("inf" in kv.get("threshold", "").split() for kv in pu.lightgbm_tree_sections(path)), \
        "no NaN-vs-value split (threshold=inf) was learned"


def test_random_forest(medinfer, model_dir, rng, threads):
    X = pu.features(rng, TRAIN_ROWS)
    params = _params(threads, objective="binary", boosting="rf", bagging_fraction=0.7, bagging_freq=1,
                     feature_fraction=0.8)
    bst = _train(params, X, pu.binary_target(rng, X), 25)
    path = _run(medinfer, model_dir, rng, "rf (bagging)", bst, n_classes=2, counts=(1, 1),
                objective_prefix="binary", limits=(10,))
    with open(path) as f:
        assert "average_output" in f.read().split("Tree=0")[0]

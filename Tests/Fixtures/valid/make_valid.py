"""Regenerates the tiny valid models in this directory (run with the repo's venv:
`.venv/bin/python Tests/Fixtures/valid/make_valid.py`).

They are the seeds the malformed fixtures (../malformed/make_malformed.py) are derived
from, and the C API tests load them as controls. Each has 3 features named
age, dist, care ("care" is categorical in the XGBoost and LightGBM models) and 2 trees:

  xgb_tiny.json     XGBoost binary:logistic, max_depth 2, a categorical split
  lgbm_tiny.txt     LightGBM binary, num_leaves 4, a categorical split
  forest_tiny.json  MedInfer forest JSON (written by hand below): a 2-class random
                    forest with MinMax preprocessing

and, derived from those with the standard library only (`write_derived`):

  *_no_covers.*     the same models without node covers: they load and predict, but
                    SHAP values need covers, so medinfer_shap_values() must refuse them
                    with UNSUPPORTED
  xgb_wide_categories.json
                    xgb_tiny with tree 0 replaced by a complete depth-10 tree whose 1,023
                    splits are all categorical on category 16777215 (the largest XGBoost
                    allows): valid, ~80 kB, and a reader that built one dense bitset per
                    split would need 2 GB for it (test_capi checks the load stays small)

The committed files are what the tests use; regenerating them with another
xgboost/lightgbm version may change the bytes (the malformed set must then be
regenerated too).
"""

import json
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
NAMES = ["age", "dist", "care"]


def training_data():
    rng = np.random.default_rng(1)
    n = 600
    X = rng.normal(size=(n, 3)).astype(np.float32)
    X[:, 2] = rng.integers(0, 5, size=n)
    y = ((0.8 * X[:, 0] - 0.5 * X[:, 1] + 1.5 * np.isin(X[:, 2], [1, 3])
          + 0.3 * rng.normal(size=n)) > 0.7).astype(int)
    X[rng.random(n) < 0.05, 0] = np.nan
    return X, y


def xgboost_model(X, y):
    import xgboost as xgb
    d = xgb.DMatrix(X, y, feature_names=NAMES, feature_types=["q", "q", "c"],
                    enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1,
              "base_score": 0.5, "max_cat_to_onehot": 1}
    xgb.train(params, d, 2).save_model(str(HERE / "xgb_tiny.json"))


def lightgbm_model(X, y):
    import lightgbm as lgb
    ds = lgb.Dataset(X, y, feature_name=NAMES, categorical_feature=[2],
                     params={"verbose": -1, "min_data_per_group": 5, "cat_smooth": 1,
                             "max_cat_to_onehot": 1})
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1,
              "min_data_in_leaf": 5}
    lgb.train(params, ds, 2).save_model(str(HERE / "lgbm_tiny.txt"))


def forest_model():
    """Two small trees in the format of docs/forest-json.md."""
    model = {
        "format": "medinfer-forest",
        "format_version": 1,
        "model_type": "random_forest_classifier",
        "n_features": 3,
        "feature_names": NAMES,
        "n_classes": 2,
        "classes": [0, 1],
        "n_outputs": 2,
        "aggregation": "average",
        "base_margin": [0.0, 0.0],
        "post_transform": "identity",
        "preprocessing": {"type": "minmax", "scale": [0.5, 0.25, 0.25], "min": [0.5, 0.5, 0.0]},
        "trees": [
            {
                "output_index": 0,
                "leaf_width": 2,
                "children_left": [1, -1, 3, -1, -1],
                "children_right": [2, -1, 4, -1, -1],
                "feature": [0, -2, 2, -2, -2],
                "threshold": [0.5, -2.0, 0.375, -2.0, -2.0],
                "missing_go_to_left": [1, 0, 0, 0, 0],
                "value": [0.5, 0.5, 0.8, 0.2, 0.3, 0.7, 0.35, 0.65, 0.1, 0.9],
                "weighted_n_node_samples": [100.0, 40.0, 60.0, 25.0, 35.0],
            },
            {
                "output_index": 0,
                "leaf_width": 2,
                "children_left": [1, -1, -1],
                "children_right": [2, -1, -1],
                "feature": [1, -2, -2],
                "threshold": [0.5, -2.0, -2.0],
                "missing_go_to_left": [0, 0, 0],
                "value": [0.5, 0.5, 0.25, 0.75, 0.75, 0.25],
                "weighted_n_node_samples": [100.0, 50.0, 50.0],
            },
        ],
    }
    (HERE / "forest_tiny.json").write_text(json.dumps(model, indent=1) + "\n")


def write_derived():
    """Copies of the three models with every node cover removed or zeroed, and the
    wide-categories XGBoost model."""
    xgb_model = json.loads((HERE / "xgb_tiny.json").read_text())
    for tree in xgb_model["learner"]["gradient_booster"]["model"]["trees"]:
        del tree["sum_hessian"]
    (HERE / "xgb_tiny_no_covers.json").write_text(json.dumps(xgb_model, separators=(",", ":")))

    lines = (HERE / "lgbm_tiny.txt").read_text().split("\n")
    kept = [l for l in lines if not l.startswith(("leaf_count=", "internal_count="))]
    (HERE / "lgbm_tiny_no_covers.txt").write_text("\n".join(kept))

    forest = json.loads((HERE / "forest_tiny.json").read_text())
    for tree in forest["trees"]:
        tree["weighted_n_node_samples"] = [0.0] * len(tree["weighted_n_node_samples"])
    (HERE / "forest_tiny_no_covers.json").write_text(json.dumps(forest, indent=1) + "\n")

    wide = json.loads((HERE / "xgb_tiny.json").read_text())
    tree = wide["learner"]["gradient_booster"]["model"]["trees"][0]
    depth = 10
    n, internal = 2 ** (depth + 1) - 1, 2 ** depth - 1
    tree.update(
        left_children=[2 * i + 1 if i < internal else -1 for i in range(n)],
        right_children=[2 * i + 2 if i < internal else -1 for i in range(n)],
        parents=[2147483647] + [(i - 1) // 2 for i in range(1, n)],
        split_indices=[2] * n,
        split_conditions=[0.0 if i < internal else 0.01 * (i % 7) for i in range(n)],
        split_type=[1 if i < internal else 0 for i in range(n)],
        default_left=[0] * n, sum_hessian=[1.0] * n, loss_changes=[0.0] * n, base_weights=[0.0] * n,
        categories=[16777215], categories_nodes=list(range(internal)),
        categories_segments=[0] * internal, categories_sizes=[1] * internal)
    tree["tree_param"]["num_nodes"] = str(n)
    (HERE / "xgb_wide_categories.json").write_text(json.dumps(wide, separators=(",", ":")))


if __name__ == "__main__":
    X, y = training_data()
    xgboost_model(X, y)
    lightgbm_model(X, y)
    forest_model()
    write_derived()

"""Makes the bundled example models, deterministically (run from the repository root):

    .venv/bin/python examples/models/make_models.py

- noshow_xgb.json  XGBoost binary:logistic, 100 trees, depth 3, learning rate 0.1, on
                   synthetic no-show rows after random over-sampling of cancellations
- noshow_lgbm.txt  LightGBM binary, 50 trees, 15 leaves, Specialty as a categorical feature
- breast_rf.json   scikit-learn Pipeline(MinMaxScaler, RandomForest 50 trees, depth 8) on
                   the 11 production features of scikit-learn's breast-cancer data
- sample_rows.csv, breast_sample.csv   rows the C demo scores
"""
from __future__ import annotations

import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "python"))
from noshow_data import make_noshow  # noqa: E402
from medinfer.sklearn_export import export_sklearn  # noqa: E402

# The breast model's production features: scikit-learn's names, and the project's spelling.
BREAST = [("worst concave points", "concave points_worst"), ("mean concave points", "concave points_mean"),
          ("worst radius", "radius_worst"), ("worst perimeter", "perimeter_worst"),
          ("worst compactness", "compactness_worst"), ("worst symmetry", "symmetry_worst"),
          ("worst texture", "texture_worst"), ("area error", "area_se"), ("mean concavity", "concavity_mean"),
          ("worst area", "area_worst"), ("mean texture", "texture_mean")]


def noshow_models() -> None:
    frame, target = make_noshow(24000, seed=2024)
    train, test = slice(0, 20000), slice(20000, None)
    X, y = frame.iloc[train], target[train]
    # Random over-sampling of the minority class, as the project did.
    rng = np.random.default_rng(7)
    minority = np.flatnonzero(y == 1)
    extra = rng.choice(minority, size=int((y == 0).sum() - minority.size), replace=True)
    order = np.concatenate([np.arange(len(y)), extra])
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "nthread": 1,
                         "tree_method": "hist", "seed": 7, "eval_metric": "auc"},
                        xgb.DMatrix(X.iloc[order], y[order]), num_boost_round=100)
    booster.save_model(str(HERE / "noshow_xgb.json"))
    auc = roc_auc_score(target[test], booster.predict(xgb.DMatrix(frame.iloc[test])))
    print(f"noshow_xgb.json: 100 trees, holdout AUC {auc:.3f}")

    data = lgb.Dataset(X, y, categorical_feature=["Specialty"], free_raw_data=False)
    lgbm = lgb.train({"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "seed": 7,
                      "num_threads": 1, "deterministic": True, "verbose": -1, "min_data_per_group": 20,
                      "cat_smooth": 5}, data, num_boost_round=50)
    lgbm.save_model(str(HERE / "noshow_lgbm.txt"))
    auc = roc_auc_score(target[test], lgbm.predict(frame.iloc[test]))
    print(f"noshow_lgbm.txt: 50 trees, holdout AUC {auc:.3f}")

    sample = frame.iloc[test].head(8).copy()
    sample.iloc[2, sample.columns.get_loc("Distance_km")] = np.nan
    sample.iloc[5, sample.columns.get_loc("Hospital_Rating")] = np.nan
    sample.to_csv(HERE / "sample_rows.csv", index=False, na_rep="nan")


def breast_model() -> None:
    data = load_breast_cancer(as_frame=True)
    X = data.frame[[sk for sk, _ in BREAST]].astype(np.float32).astype(np.float64)
    X.columns = [ours for _, ours in BREAST]
    # Malignant is class 0 in scikit-learn's data; the project predicts malignancy = 1.
    y = (data.target == 0).astype(int).to_numpy()
    rng = np.random.default_rng(11)
    test = rng.random(len(y)) < 0.25
    # SMOTEENN is not available here; a balanced class weight plays its role.
    pipeline = make_pipeline(MinMaxScaler(), RandomForestClassifier(
        n_estimators=50, max_depth=8, class_weight="balanced", random_state=11, n_jobs=1))
    pipeline.fit(X[~test], y[~test])
    export_sklearn(pipeline, HERE / "breast_rf.json")
    auc = roc_auc_score(y[test], pipeline.predict_proba(X[test])[:, 1])
    print(f"breast_rf.json: 50 trees, holdout AUC {auc:.3f}")
    X[test].head(5).to_csv(HERE / "breast_sample.csv", index=False)


if __name__ == "__main__":
    noshow_models()
    breast_model()

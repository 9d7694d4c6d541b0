"""Exports scikit-learn tree models to MedInfer's forest JSON (docs/forest-json.md).

Supported: RandomForest / ExtraTrees / DecisionTree classifiers and regressors,
GradientBoosting classifiers (binary and multiclass) and regressors, and a Pipeline of an
optional MinMaxScaler or StandardScaler followed by one of them, so that callers pass raw
measurements. Node sample weights are kept: TreeSHAP needs them.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

FORMAT = "medinfer-forest"
FORMAT_VERSION = 1


def _tree_json(tree: Any, output_index: int, leaf_width: int, values: np.ndarray) -> dict:
    t = tree.tree_
    missing_left = getattr(t, "missing_go_to_left", None)
    if missing_left is None:
        missing_left = np.zeros(t.node_count, dtype=np.uint8)
    return {
        "output_index": int(output_index),
        "leaf_width": int(leaf_width),
        "children_left": t.children_left.tolist(),
        "children_right": t.children_right.tolist(),
        "feature": t.feature.tolist(),
        "threshold": t.threshold.astype(np.float64).tolist(),
        "missing_go_to_left": np.asarray(missing_left, dtype=np.int64).tolist(),
        "value": values.astype(np.float64).ravel().tolist(),
        "weighted_n_node_samples": t.weighted_n_node_samples.astype(np.float64).tolist(),
    }


def _classifier_values(tree: Any) -> np.ndarray:
    """Per-node class probabilities exactly as predict_proba normalizes them."""
    value = tree.tree_.value[:, 0, :].astype(np.float64)
    normalizer = value.sum(axis=1, keepdims=True)
    normalizer[normalizer == 0.0] = 1.0
    return value / normalizer


def _regressor_values(tree: Any) -> np.ndarray:
    value = tree.tree_.value
    if value.shape[1] != 1:
        raise TypeError("multi-output regression trees are not supported")
    return value[:, 0, 0].astype(np.float64)


def _forest(estimator: Any, model_type: str, classifier: bool) -> dict:
    trees = getattr(estimator, "estimators_", None) or [estimator]
    if classifier:
        if getattr(estimator, "n_outputs_", 1) != 1:
            raise TypeError("multi-output classifiers are not supported")
        k = len(estimator.classes_)
        body = [_tree_json(t, 0, k, _classifier_values(t)) for t in trees]
        return dict(model_type=model_type, n_classes=k, classes=estimator.classes_.tolist(), n_outputs=k,
                    aggregation="average", base_margin=[0.0] * k, post_transform="identity", trees=body)
    body = [_tree_json(t, 0, 1, _regressor_values(t)) for t in trees]
    return dict(model_type=model_type, n_classes=1, classes=None, n_outputs=1, aggregation="average",
                base_margin=[0.0], post_transform="identity", trees=body)


def _gradient_boosting(estimator: Any, classifier: bool, n_features: int) -> dict:
    from sklearn.ensemble import GradientBoostingClassifier  # noqa: F401  (import check)
    stages = estimator.estimators_          # (n_stages, K) DecisionTreeRegressor
    k = stages.shape[1]
    rate = float(estimator.learning_rate)
    # The raw score every row starts from, computed by scikit-learn itself.
    base = estimator._raw_predict_init(np.zeros((1, n_features), dtype=np.float32))[0].astype(np.float64)
    trees = []
    for stage in stages:
        for class_index, tree in enumerate(stage):
            trees.append(_tree_json(tree, class_index, 1, rate * _regressor_values(tree)))
    if classifier:
        classes = estimator.classes_.tolist()
        transform = "sigmoid" if k == 1 else "softmax"
        return dict(model_type="gradient_boosting_classifier", n_classes=len(classes), classes=classes,
                    n_outputs=k, aggregation="sum", base_margin=base.tolist(), post_transform=transform,
                    trees=trees)
    return dict(model_type="gradient_boosting_regressor", n_classes=1, classes=None, n_outputs=1,
                aggregation="sum", base_margin=base.tolist(), post_transform="identity", trees=trees)


def _scaler(step: Any) -> dict:
    from sklearn.preprocessing import MinMaxScaler, StandardScaler
    if isinstance(step, MinMaxScaler):
        return {"type": "minmax", "scale": step.scale_.astype(np.float64).tolist(),
                "min": step.min_.astype(np.float64).tolist()}
    if isinstance(step, StandardScaler):
        return {"type": "standard",
                "mean": None if step.mean_ is None else step.mean_.astype(np.float64).tolist(),
                "scale": None if step.scale_ is None else step.scale_.astype(np.float64).tolist()}
    raise TypeError(f"unsupported preprocessing step {type(step).__name__} (MinMaxScaler or StandardScaler)")


def to_forest_json(estimator: Any, feature_names: Sequence[str] | None = None) -> dict:
    """The forest JSON document for a fitted estimator or pipeline."""
    from sklearn import ensemble, tree
    from sklearn.pipeline import Pipeline

    preprocessing = None
    model = estimator
    if isinstance(estimator, Pipeline):
        steps = [s for _, s in estimator.steps if s not in (None, "passthrough")]
        if not 1 <= len(steps) <= 2:
            raise TypeError("a Pipeline must hold at most one scaler followed by one tree model")
        if len(steps) == 2:
            preprocessing = _scaler(steps[0])
        model = steps[-1]
        if feature_names is None and hasattr(estimator, "feature_names_in_"):
            feature_names = list(estimator.feature_names_in_)

    n_features = int(model.n_features_in_)
    kinds = [
        (ensemble.RandomForestClassifier, "random_forest_classifier", True),
        (ensemble.RandomForestRegressor, "random_forest_regressor", False),
        (ensemble.ExtraTreesClassifier, "extra_trees_classifier", True),
        (ensemble.ExtraTreesRegressor, "extra_trees_regressor", False),
        (tree.DecisionTreeClassifier, "decision_tree_classifier", True),
        (tree.DecisionTreeRegressor, "decision_tree_regressor", False),
    ]
    body = None
    for cls, name, classifier in kinds:
        if isinstance(model, cls):
            body = _forest(model, name, classifier)
            break
    if body is None and isinstance(model, ensemble.GradientBoostingClassifier):
        body = _gradient_boosting(model, True, n_features)
    if body is None and isinstance(model, ensemble.GradientBoostingRegressor):
        if getattr(model, "loss", "squared_error") not in ("squared_error", "absolute_error", "huber", "quantile"):
            raise TypeError(f"GradientBoostingRegressor loss {model.loss!r} is not supported")
        body = _gradient_boosting(model, False, n_features)
    if body is None:
        raise TypeError(f"cannot export {type(model).__name__}: supported are RandomForest, ExtraTrees, "
                        "DecisionTree, GradientBoosting (optionally in a Pipeline after a MinMaxScaler "
                        "or StandardScaler)")
    if feature_names is None and hasattr(model, "feature_names_in_"):
        feature_names = list(model.feature_names_in_)
    if feature_names is not None and len(feature_names) != n_features:
        raise ValueError(f"{len(feature_names)} feature names for {n_features} features")
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "n_features": n_features,
                "feature_names": None if feature_names is None else [str(n) for n in feature_names],
                "preprocessing": preprocessing}
    document.update(body)
    return document


def export_sklearn(estimator: Any, path: str | os.PathLike, feature_names: Sequence[str] | None = None) -> None:
    """Writes a fitted scikit-learn tree model (or scaler + model Pipeline) as MedInfer
    forest JSON at `path`, loadable with `medinfer.Model.load(path)`."""
    document = to_forest_json(estimator, feature_names)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, separators=(",", ":"))

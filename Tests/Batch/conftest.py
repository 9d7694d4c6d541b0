"""pytest configuration of the batch suite (Dask and Spark through libmedinfer).

Run from the repository root after `make lib`:

    .venv/bin/python -m pytest -q Tests/Batch

Data: a small month (make_month.py) in a session temp directory; the reference is
xgboost's own prediction and pred_contribs on the same rows.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for p in (os.path.join(REPO, "python"), os.path.join(REPO, "examples", "batch"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

MODEL = os.path.join(REPO, "examples", "models", "noshow_xgb.json")
#: Rows of the month the end-to-end tests score and check (the bar: >= 20,000).
MONTH_ROWS = 24_000
FEATURES_K = 3


@pytest.fixture(scope="session")
def month_dir(tmp_path_factory):
    import make_month

    out = tmp_path_factory.mktemp("month")
    make_month.write_month(MONTH_ROWS, str(out), chunk_rows=2_000, seed=77, quiet=True)
    return str(out)


@pytest.fixture(scope="session")
def reference():
    """A function: features DataFrame -> (xgboost risk, xgboost pred_contribs without bias)."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(MODEL)
    booster.set_param({"nthread": 1})

    def compute(features):
        matrix = xgb.DMatrix(features, missing=np.nan)
        return booster.predict(matrix), booster.predict(matrix, pred_contribs=True)[:, :-1]

    return compute

"""Shared checks: a scored output against xgboost on the same input rows."""
from __future__ import annotations

import numpy as np
import pandas as pd

from medinfer.batch import compare_drivers

ID = "appointment_id"


def check_against_xgboost(inputs: pd.DataFrame, output: pd.DataFrame, features: list[str], reference,
                          k: int = 3) -> dict:
    """Asserts: same row count, every id exactly once, risk within 1e-6 of xgboost, drivers
    ranked as xgboost's pred_contribs ranks them (same rule; see compare_drivers), and the
    contributions within 1e-6 of xgboost's. Returns numbers for the test log."""
    assert len(output) == len(inputs), f"{len(output)} rows out, {len(inputs)} in"
    assert output[ID].is_unique, "duplicated ids in the output"
    assert set(output[ID]) == set(inputs[ID]), "ids lost or invented"
    merged = inputs.set_index(ID).loc[output[ID].to_numpy()]
    risk, contribs = reference(merged[features])
    risk_diff = float(np.abs(output["risk"].to_numpy() - risk).max())
    assert risk_diff <= 1e-6, f"risk differs from xgboost by {risk_diff}"
    position = {name: j for j, name in enumerate(features)}
    chosen = np.stack([output[f"driver_{i}"].astype(str).map(position).to_numpy() for i in range(1, k + 1)], axis=1)
    identical, near_ties, bad = compare_drivers(contribs, chosen, k)
    assert len(bad) == 0, (f"{len(bad)} rows rank drivers differently from xgboost, e.g. row "
                           f"{output[ID].iloc[bad[0]]}: ours {chosen[bad[0]]}, xgboost |values| "
                           f"{np.round(np.abs(contribs[bad[0]]), 7)}")
    values = output[[f"contribution_{i}" for i in range(1, k + 1)]].to_numpy()
    contrib_diff = float(np.abs(values - np.take_along_axis(contribs, chosen, axis=1)).max())
    assert contrib_diff <= 1e-6, f"contributions differ from xgboost by {contrib_diff}"
    assert near_ties <= max(1, len(output) // 10_000), f"{near_ties} float32 near-ties: too many"
    return {"rows": len(output), "risk_max_diff": risk_diff, "contribution_max_diff": contrib_diff,
            "identical_rows": identical, "float32_near_ties": near_ties}

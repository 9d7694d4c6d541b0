"""Shared helpers of the parity suite: synthetic data, edge rows, model-file parsing,
comparison and the results table.

Everything here is deterministic given a numpy Generator. Inputs are always built as
float32 matrices (what the C API takes); the reference libraries get the same float32
values (as float32 where they accept it, else converted exactly to float64).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np

F32 = np.float32
F32_MAX = float(np.finfo(np.float32).max)
F32_TINY_SUBNORMAL = float(np.nextafter(F32(0), F32(1)))  # 1.4e-45

#: Tolerance on transformed outputs and raw margins, every family (see the modules).
TOLERANCE = 1e-6

#: Tolerance on SHAP values (see test_shap_parity.py): absolute, scaled by the size of the
#: raw outputs when those exceed 1 (XGBoost computes SHAP values in float32).
SHAP_TOLERANCE = 1e-5


def shap_tolerance(raw) -> float:
    """SHAP_TOLERANCE * max(1, max |raw output|) for the reference's raw outputs `raw`."""
    raw = np.asarray(raw, dtype=np.float64)
    scale = float(np.max(np.abs(raw))) if raw.size else 0.0
    return SHAP_TOLERANCE * max(1.0, scale)

#: Finite special values planted in edge rows. LightGBM treats |x| <= 1e-35 as zero, so
#: tiny values around that bound are included too.
FINITE_SPECIALS = [0.0, -0.0, 1e30, -1e30, F32_MAX, -F32_MAX, 1e-36, -1e-36, 2e-35, -2e-35,
                   F32_TINY_SUBNORMAL, -F32_TINY_SUBNORMAL]
INFINITIES = [math.inf, -math.inf]

# --------------------------------------------------------------------------------------
# Results table
# --------------------------------------------------------------------------------------


@dataclass
class Result:
    family: str
    model: str
    output: str
    rows: int
    max_diff: float
    tolerance: float
    worst_row: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.tolerance


RESULTS: list[Result] = []


def format_table(results: list[Result]) -> str:
    header = f"{'family':<9} {'model':<36} {'output':<12} {'rows':>7} {'max |diff|':>11} {'tolerance':>9}  ok"
    lines = [header, "-" * len(header)]
    for r in results:
        diff = "nan" if math.isnan(r.max_diff) else f"{r.max_diff:.3e}"
        lines.append(f"{r.family:<9} {r.model:<36} {r.output:<12} {r.rows:>7} {diff:>11} "
                     f"{r.tolerance:>9.0e}  {'yes' if r.ok else 'NO'}")
    return "\n".join(lines)


def compare(family: str, model: str, output: str, got, expected, X=None,
            tolerance: float = TOLERANCE) -> Result:
    """Records max |got - expected| and returns the Result (callers assert on .ok after
    recording both output kinds, so the table shows every measurement).

    NaN in both at the same place counts as equal; NaN on one side only is an infinite
    difference."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"{model} [{output}]: medinfer shape {got.shape} != reference shape {expected.shape}")
    diff = np.abs(got - expected)
    both_nan = np.isnan(got) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    per_row = diff.reshape(diff.shape[0], -1).max(axis=1) if diff.size else np.zeros(0)
    worst = int(np.argmax(per_row)) if per_row.size else -1
    result = Result(family, model, output, int(got.shape[0]), float(per_row[worst]) if worst >= 0 else 0.0,
                    tolerance, worst)
    RESULTS.append(result)
    if not result.ok:
        bad = int(np.count_nonzero(per_row > tolerance))
        detail = (f"{model} [{output}]: {bad} of {got.shape[0]} rows differ by more than {tolerance:g}; "
                  f"worst row {worst}: expected {expected[worst]!r}, got {got[worst]!r}, "
                  f"|diff| {per_row[worst]:.6g}")
        if X is not None:
            detail += f"\n  input row {worst}: {np.asarray(X)[worst].tolist()!r}"
        result.detail = detail
    print(f"  {model:<36} {output:<12} rows={got.shape[0]:>6} max|diff|={result.max_diff:.3e} tol={tolerance:g}")
    return result


def assert_results(*results: Result) -> None:
    failures = [r.detail for r in results if not r.ok]
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------

N_FEATURES = 8
FEATURE_NAMES = ["age_years", "lab_value", "visits", "flag", "score", "fee", "sms_count", "delta"]


def features(rng: np.random.Generator, rows: int, nan_fraction: float = 0.05) -> np.ndarray:
    """Mixed clinical-like columns: continuous, integer counts (many ties, so thresholds sit
    between data values and tree splits repeat), a 0/1 flag, wide and tiny scales."""
    X = np.empty((rows, N_FEATURES), dtype=np.float64)
    X[:, 0] = rng.normal(50, 15, rows)
    X[:, 1] = rng.normal(0, 1, rows)
    X[:, 2] = rng.integers(0, 10, rows)
    X[:, 3] = rng.integers(0, 2, rows)
    X[:, 4] = rng.uniform(-100, 100, rows)
    X[:, 5] = rng.lognormal(3, 1, rows)
    X[:, 6] = np.where(rng.random(rows) < 0.5, 0, rng.integers(1, 4, rows))
    X[:, 7] = rng.normal(0, 0.01, rows)
    X = X.astype(F32)
    if nan_fraction > 0:
        X[rng.random(X.shape) < nan_fraction] = np.nan
    return X


def signal(X: np.ndarray) -> np.ndarray:
    """A smooth latent score in roughly [-3, 3]; NaN counts as a value of its own."""
    Z = np.nan_to_num(X.astype(np.float64), nan=0.0)
    s = (0.04 * (Z[:, 0] - 50) + 0.8 * Z[:, 1] + 0.15 * (Z[:, 2] - 4.5) - 0.7 * Z[:, 3]
         + 0.01 * Z[:, 4] + 0.3 * np.log1p(np.abs(Z[:, 5])) - 1.0 + 0.3 * Z[:, 6] + 30 * Z[:, 7])
    s += np.where(np.isnan(X[:, 1]), 0.8, 0.0) - np.where(np.isnan(X[:, 4]), 0.6, 0.0)
    return s


def binary_target(rng, X):
    p = 1 / (1 + np.exp(-signal(X)))
    return (rng.random(len(X)) < p).astype(np.float64)


def multiclass_target(rng, X, k):
    s = signal(X)
    cuts = np.quantile(s, np.linspace(0, 1, k + 1)[1:-1])
    y = np.searchsorted(cuts, s + rng.normal(0, 0.5, len(X)))
    return y.astype(np.float64)


def regression_target(rng, X):
    return signal(X) + rng.normal(0, 0.3, len(X))


def count_target(rng, X):
    return rng.poisson(np.exp(0.4 * np.clip(signal(X), -3, 3) + 0.5)).astype(np.float64)


# --------------------------------------------------------------------------------------
# Trees parsed from the saved model files (for planting thresholds)
# --------------------------------------------------------------------------------------


@dataclass
class Tree:
    """Just enough of a tree to walk it: children (-1 / negative = leaf), split feature,
    numeric threshold (float64 as stored) and whether the split is categorical."""
    left: list
    right: list
    feature: list
    threshold: list
    categorical: list
    #: LightGBM lists internal nodes only (its children < 0 are leaves, mapped to -1
    #: here); XGBoost and scikit-learn list every node and mark leaves by left == -1.
    internal_only: bool = False

    def is_internal(self, n):
        return 0 <= n < len(self.left) and (self.internal_only or self.left[n] >= 0)


def xgboost_trees(path) -> list[Tree]:
    with open(path, "rb") as f:
        doc = json.load(f)
    out = []
    for t in doc["learner"]["gradient_booster"]["model"]["trees"]:
        split_type = t.get("split_type") or [0] * len(t["left_children"])
        out.append(Tree(t["left_children"], t["right_children"], t["split_indices"],
                        [float(v) for v in t["split_conditions"]], [s == 1 for s in split_type]))
    return out


def lightgbm_tree_sections(path) -> list[dict]:
    """key -> value strings of every `Tree=` block of a LightGBM text model."""
    with open(path) as f:
        text = f.read()
    text = text.split("end of trees")[0]
    sections = []
    for block in re.split(r"\nTree=\d+\n", text)[1:]:
        kv = {}
        for line in block.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                kv[k] = v
        sections.append(kv)
    return sections


def lightgbm_trees(path) -> list[Tree]:
    out = []
    for kv in lightgbm_tree_sections(path):
        if int(kv["num_leaves"]) <= 1:
            continue
        ints = lambda k: [int(v) for v in kv[k].split()]
        left, right = ints("left_child"), ints("right_child")
        dt = ints("decision_type")
        # LightGBM children: >= 0 internal node, negative = ~leaf. Map leaves to -1.
        left = [c if c >= 0 else -1 for c in left]
        right = [c if c >= 0 else -1 for c in right]
        # Walk helpers expect per-node arrays; leaves are not nodes in LightGBM, so a
        # child -1 is "stop".
        out.append(Tree(left, right, ints("split_feature"), [float(v) for v in kv["threshold"].split()],
                        [bool(d & 1) for d in dt], internal_only=True))
    return out


def forest_json_trees(path) -> list[Tree]:
    with open(path) as f:
        doc = json.load(f)
    return [Tree(t["children_left"], t["children_right"], t["feature"], [float(v) for v in t["threshold"]],
                 [False] * len(t["feature"])) for t in doc["trees"]]


def numeric_thresholds(trees: list[Tree]) -> list[tuple[int, float]]:
    seen = set()
    for tree in trees:
        for n, f in enumerate(tree.feature):
            if tree.is_internal(n) and not tree.categorical[n]:
                seen.add((int(f), tree.threshold[n]))
    return sorted(seen)


def float32_candidates(t: float, strict_less: bool):
    """The float32 values that decide a split at t: the value itself (rounded), and its
    float32 neighbours. For `x <= t` in double (LightGBM, scikit-learn) the float32 just
    below and just above t; for `x < t` in float32 (XGBoost) t, nextDown(t), nextUp(t)."""
    t32 = F32(t)
    if not np.isfinite(t32):
        return [t32]
    return [t32, np.nextafter(t32, F32(np.inf)), np.nextafter(t32, F32(-np.inf))]


def goes_left(v: np.float32, t: float, strict_less: bool) -> bool:
    return bool(v < F32(t)) if strict_less else bool(float(v) <= t)


# --------------------------------------------------------------------------------------
# Edge rows
# --------------------------------------------------------------------------------------


def path_threshold_rows(rng, base: np.ndarray, trees: list[Tree], rows: int, strict_less: bool,
                        to_raw=None) -> np.ndarray:
    """Rows that meet split thresholds exactly (or one float32 step away) along tree paths.

    For each row: pick a random tree and a random base row, walk from the root; at each
    numeric node whose feature this row has not pinned yet, pin the feature to the
    threshold or a float32 neighbour and follow the child that value takes. The row
    therefore compares equal-to-threshold values at several nodes of that tree (and, as
    features repeat across trees, in others too). `to_raw(feature, value)` maps a value
    in the trees' input space back to raw candidates (pipelines with a scaler)."""
    out = np.empty((rows, base.shape[1]), dtype=F32)
    usable = [t for t in trees if t.is_internal(0)]
    if not usable:
        return np.empty((0, base.shape[1]), dtype=F32)
    for i in range(rows):
        row = base[rng.integers(len(base))].copy()
        tree = usable[rng.integers(len(usable))]
        pinned = set()
        n = 0
        while tree.is_internal(n):
            f = int(tree.feature[n])
            # Infinite thresholds (LightGBM's and scikit-learn's "NaN vs every value"
            # splits) are met by the +/-inf special rows where the library accepts inf.
            if tree.categorical[n] or f in pinned or not math.isfinite(tree.threshold[n]):
                n = tree.left[n] if rng.random() < 0.5 else tree.right[n]
                continue
            cands = float32_candidates(tree.threshold[n], strict_less)
            v = cands[rng.integers(len(cands))] if rng.random() < 0.5 else cands[0]
            if to_raw is not None:
                raw = to_raw(f, v)
                v = raw[rng.integers(len(raw))]
                row[f] = v
                pinned.add(f)
                n = tree.left[n] if rng.random() < 0.5 else tree.right[n]
                continue
            row[f] = v
            pinned.add(f)
            n = tree.left[n] if goes_left(F32(v), tree.threshold[n], strict_less) else tree.right[n]
        out[i] = row
    return out


def all_threshold_rows(rng, base, thresholds: list[tuple[int, float]], strict_less: bool, copies: int = 2):
    """One row per (feature, threshold candidate, copy): a random base row with that one
    feature set to the threshold or a float32 neighbour."""
    out = []
    for f, t in thresholds:
        if not math.isfinite(t):
            continue
        for v in float32_candidates(t, strict_less):
            for _ in range(copies):
                row = base[rng.integers(len(base))].copy()
                row[f] = v
                out.append(row)
    return np.array(out, dtype=F32).reshape(-1, base.shape[1])


def special_rows(rng, base, allow_nan=True, allow_inf=False, extra_values=(), columns=None):
    """Base rows with one feature set to each special value, rows made entirely of one
    special value (the all-missing row among them), and rows with specials sprinkled in."""
    values = list(FINITE_SPECIALS) + list(extra_values)
    if allow_inf:
        values += INFINITIES
    if allow_nan:
        values.append(math.nan)
    cols = range(base.shape[1]) if columns is None else columns
    out = []
    for j in cols:
        for v in values:
            for _ in range(2):
                row = base[rng.integers(len(base))].copy()
                row[j] = v
                out.append(row)
    for v in values:
        for _ in range(3):
            out.append(np.full(base.shape[1], v, dtype=F32))
    vals = np.array(values, dtype=F32)
    for _ in range(400):
        row = base[rng.integers(len(base))].copy()
        mask = rng.random(base.shape[1]) < 0.3
        row[mask] = vals[rng.integers(len(vals), size=int(mask.sum()))]
        out.append(row)
    return np.array(out, dtype=F32)


def edge_rows(rng, base, trees, strict_less, allow_nan=True, allow_inf=False, path_rows=3000,
              max_thresholds=1500, to_raw=None, extra_values=()):
    thr = numeric_thresholds(trees)
    if len(thr) > max_thresholds:
        idx = rng.choice(len(thr), max_thresholds, replace=False)
        thr = [thr[i] for i in sorted(idx)]
    parts = [path_threshold_rows(rng, base, trees, path_rows, strict_less, to_raw=to_raw)]
    if to_raw is None:
        parts.append(all_threshold_rows(rng, base, thr, strict_less, copies=1))
    parts.append(special_rows(rng, base, allow_nan=allow_nan, allow_inf=allow_inf, extra_values=extra_values))
    E = np.concatenate(parts).astype(F32)
    if not allow_nan:
        assert not np.isnan(E).any()
    return E


def parity_matrix(rng, trees, strict_less, rows=10_000, nan_fraction=0.05, allow_inf=False,
                path_rows=3000, make=None, to_raw=None, extra_values=()):
    """`rows` fresh random rows (~nan_fraction NaN) followed by the edge rows."""
    make = make or features
    fresh = make(rng, rows, nan_fraction)
    base = make(rng, 2000, nan_fraction)
    E = edge_rows(rng, base, trees, strict_less, allow_nan=nan_fraction > 0, allow_inf=allow_inf,
                  path_rows=path_rows, to_raw=to_raw, extra_values=extra_values)
    X = np.ascontiguousarray(np.concatenate([fresh, E]).astype(F32))
    return X


def read_ppm(path) -> np.ndarray:
    """A binary PPM (P6, 8-bit) as an [height, width, 3] uint8 array (the bundled images)."""
    data = path.read_bytes()
    magic, w, h, _, rest = data.split(maxsplit=4)
    assert magic == b"P6", f"{path} is not a binary PPM"
    return np.frombuffer(rest[: int(w) * int(h) * 3], dtype=np.uint8).reshape(int(h), int(w), 3)

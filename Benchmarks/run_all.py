"""Side-by-side benchmark of MedInfer against the reference engines (make bench).

Everything runs in one process pinned to one core, on the same rows, one thread per
engine: xgboost (inplace_predict, DMatrix predict, pred_contribs / pred_interactions),
the TL2cgen-compiled model, lightgbm, scikit-learn, shap.TreeExplainer, and MedInfer
through its C API (tree_bench.c) and through Python. Outputs are compared once so a
fast wrong answer cannot hide. Results: Benchmarks/results/trees.{md,json}.

    .venv/bin/python Benchmarks/run_all.py [--quick] [--only noshow,deep,lgbm,rf]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".build" / "bench"
LIB_DIR = ROOT / ".build" / "release"
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "examples" / "models"))

import numpy as np  # noqa: E402

CPU = sorted(os.sched_getaffinity(0))[-1]
os.sched_setaffinity(0, {CPU})

import lightgbm as lgb  # noqa: E402
import xgboost as xgb  # noqa: E402

import medinfer  # noqa: E402
from noshow_data import make_noshow  # noqa: E402


# ---------------------------------------------------------------------------------- #
# timing helpers


def per_call(function, calls: int, groups: int = 21) -> float:
    """Median seconds per call over `groups` groups of `calls` calls."""
    for _ in range(max(1, calls // 10)):
        function()
    samples = []
    for _ in range(groups):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def best(function, runs: int = 5) -> float:
    """Best wall time of one call."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def compile_c(source: str, output: str, *extra: str) -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    target = BUILD / output
    subprocess.run(["cc", "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", f"-I{ROOT / 'include'}",
                    str(ROOT / "Benchmarks" / source), "-o", str(target), *extra], check=True)
    return target


def c_bench(model: Path, rows: np.ndarray, shap: bool) -> dict:
    data = BUILD / f"{model.stem}.rows.f32"
    np.ascontiguousarray(rows, dtype=np.float32).tofile(data)
    command = [str(BUILD / "tree_bench"), str(model), str(data), str(rows.shape[1])] + (["shap"] if shap else [])
    result = subprocess.run(["taskset", "-c", str(CPU)] + command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------- #
# results

ROWS: list[dict] = []


def record(model: str, task: str, engine: str, single_us: float | None = None, batch_rows_s: float | None = None,
           per_row_us: float | None = None, diff: float | None = None) -> None:
    ROWS.append(dict(model=model, task=task, engine=engine, single_us=single_us, batch_rows_s=batch_rows_s,
                     per_row_us=per_row_us, max_abs_diff=diff))


def fmt(value: float | None, pattern: str) -> str:
    return "" if value is None else pattern.format(value)


# ---------------------------------------------------------------------------------- #
# benchmarks


def bench_xgboost(name: str, path: Path, X: np.ndarray, tl2cgen_compile: bool, shap_rows: int,
                  interactions: bool) -> None:
    booster = xgb.Booster(model_file=str(path))
    booster.set_param({"nthread": 1})
    model = medinfer.Model.load(path)
    x1 = X[:1].copy()
    xs = [X[i:i + 1].copy() for i in range(64)]
    counter = iter(range(10 ** 12))

    # prediction
    reference = booster.inplace_predict(X)
    ours = model.predict(X)
    diff = float(np.abs(reference - ours).max())
    single = per_call(lambda: booster.inplace_predict(xs[next(counter) % 64]), 200)
    whole = best(lambda: booster.inplace_predict(X))
    record(name, "predict", "xgboost inplace_predict", single * 1e6, len(X) / whole)
    names = booster.feature_names
    # xgboost caches predictions per DMatrix: time each run on a fresh one.
    runs = []
    for _ in range(3):
        dmatrix = xgb.DMatrix(X, feature_names=names)
        start = time.perf_counter()
        booster.predict(dmatrix)
        runs.append(time.perf_counter() - start)
    whole = min(runs)
    single = per_call(lambda: booster.predict(xgb.DMatrix(xs[next(counter) % 64], feature_names=names)), 100)
    record(name, "predict", "xgboost DMatrix predict", single * 1e6, len(X) / whole)

    if tl2cgen_compile:
        import tl2cgen
        import treelite
        library = BUILD / f"{path.stem}_tl2cgen.so"
        if not library.exists() or library.stat().st_mtime < path.stat().st_mtime:
            tl_model = treelite.frontend.load_xgboost_model(str(path))
            tl2cgen.export_lib(tl_model, toolchain="gcc", libpath=str(library),
                               params={"parallel_comp": 16}, verbose=False)
        predictor = tl2cgen.Predictor(str(library), nthread=1, verbose=False)
        tl_matrix = tl2cgen.DMatrix(X)
        tl_out = predictor.predict(tl_matrix).reshape(-1)
        whole = best(lambda: predictor.predict(tl_matrix))
        tl_single = [tl2cgen.DMatrix(x) for x in xs]
        single = per_call(lambda: predictor.predict(tl_single[next(counter) % 64]), 200)
        record(name, "predict", "TL2cgen compiled", single * 1e6, len(X) / whole,
               diff=float(np.abs(tl_out - reference).max()))

    measured = c_bench(path, X, shap=True)
    record(name, "predict", "MedInfer C API", measured["predict_single_us"], measured["predict_batch_rows_per_s"],
           diff=diff)
    single = per_call(lambda: model.predict(xs[next(counter) % 64]), 2000)
    whole = best(lambda: model.predict(X))
    record(name, "predict", "MedInfer Python", single * 1e6, len(X) / whole, diff=diff)

    # SHAP values
    rows = X[:shap_rows]
    contributions_matrix = xgb.DMatrix(rows, feature_names=names)
    start = time.perf_counter()
    reference = booster.predict(contributions_matrix, pred_contribs=True)
    xgb_time = (time.perf_counter() - start) / shap_rows
    record(name, "SHAP values", "xgboost pred_contribs", per_row_us=xgb_time * 1e6)
    import shap
    explainer = shap.TreeExplainer(booster)
    start = time.perf_counter()
    explainer.shap_values(rows)
    record(name, "SHAP values", "shap.TreeExplainer", per_row_us=(time.perf_counter() - start) / shap_rows * 1e6)
    start = time.perf_counter()
    ours = model.shap_contributions(rows)
    python_time = (time.perf_counter() - start) / shap_rows
    diff = float(np.abs(reference - ours).max())
    record(name, "SHAP values", "MedInfer C API", single_us=measured.get("shap_single_us"),
           per_row_us=measured.get("shap_batch_us_per_row"), diff=diff)
    record(name, "SHAP values", "MedInfer Python", per_row_us=python_time * 1e6, diff=diff)

    if interactions:
        rows = X[:200]
        start = time.perf_counter()
        reference = booster.predict(xgb.DMatrix(rows, feature_names=names), pred_interactions=True)
        record(name, "SHAP interactions", "xgboost pred_interactions",
               per_row_us=(time.perf_counter() - start) / len(rows) * 1e6)
        start = time.perf_counter()
        ours = model.shap_interaction_contributions(rows)
        record(name, "SHAP interactions", "MedInfer Python",
               per_row_us=(time.perf_counter() - start) / len(rows) * 1e6,
               diff=float(np.abs(reference - ours).max()))


def bench_lightgbm(name: str, path: Path, X: np.ndarray, shap_rows: int) -> None:
    booster = lgb.Booster(model_file=str(path), params={"num_threads": 1})
    model = medinfer.Model.load(path)
    xs = [X[i:i + 1].astype(np.float64) for i in range(64)]
    counter = iter(range(10 ** 12))
    X64 = X.astype(np.float64)
    reference = booster.predict(X64, num_threads=1)
    diff = float(np.abs(reference - model.predict(X)).max())
    single = per_call(lambda: booster.predict(xs[next(counter) % 64], num_threads=1), 100)
    whole = best(lambda: booster.predict(X64, num_threads=1), 3)
    record(name, "predict", "lightgbm predict", single * 1e6, len(X) / whole)
    measured = c_bench(path, X, shap=True)
    record(name, "predict", "MedInfer C API", measured["predict_single_us"], measured["predict_batch_rows_per_s"],
           diff=diff)
    rows = X64[:shap_rows]
    start = time.perf_counter()
    reference = booster.predict(rows, pred_contrib=True, num_threads=1)
    record(name, "SHAP values", "lightgbm pred_contrib (= shap.TreeExplainer)",
           per_row_us=(time.perf_counter() - start) / shap_rows * 1e6)
    ours = model.shap_contributions(rows)
    record(name, "SHAP values", "MedInfer C API", single_us=measured.get("shap_single_us"),
           per_row_us=measured.get("shap_batch_us_per_row"), diff=float(np.abs(reference - ours).max()))


def bench_forest(name: str, shap_rows: int) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    import shap

    from make_models import BREAST  # the bundled model's features and training recipe
    data = load_breast_cancer(as_frame=True)
    X = data.frame[[sk for sk, _ in BREAST]].to_numpy(dtype=np.float32).astype(np.float64)
    y = (data.target == 0).astype(int).to_numpy()
    pipeline = make_pipeline(MinMaxScaler(), RandomForestClassifier(
        n_estimators=50, max_depth=8, class_weight="balanced", random_state=11, n_jobs=1)).fit(X, y)
    path = BUILD / "breast_rf.json"
    medinfer.export_sklearn(pipeline, path)
    model = medinfer.Model.load(path)
    # 100,000 rows drawn from the 569 tumours in random order (consecutive identical rows
    # would let branchy engines ride the branch predictor).
    rows = X[np.random.default_rng(3).integers(0, len(X), 100_000)].astype(np.float32)
    rows64 = rows.astype(np.float64)
    xs = [rows64[i:i + 1] for i in range(64)]
    counter = iter(range(10 ** 12))
    reference = pipeline.predict_proba(rows64)
    diff = float(np.abs(reference - model.predict(rows)).max())
    single = per_call(lambda: pipeline.predict_proba(xs[next(counter) % 64]), 20, groups=7)
    whole = best(lambda: pipeline.predict_proba(rows64), 2)
    record(name, "predict", "scikit-learn predict_proba", single * 1e6, len(rows) / whole)
    measured = c_bench(path, rows, shap=True)
    record(name, "predict", "MedInfer C API", measured["predict_single_us"], measured["predict_batch_rows_per_s"],
           diff=diff)
    forest = pipeline[-1]
    scaled = pipeline[0].transform(rows64[:shap_rows])
    explainer = shap.TreeExplainer(forest)
    start = time.perf_counter()
    reference = np.asarray(explainer.shap_values(scaled))
    record(name, "SHAP values", "shap.TreeExplainer", per_row_us=(time.perf_counter() - start) / shap_rows * 1e6)
    ours = model.shap_values(rows[:shap_rows])
    record(name, "SHAP values", "MedInfer C API", single_us=measured.get("shap_single_us"),
           per_row_us=measured.get("shap_batch_us_per_row"), diff=float(np.abs(reference - ours).max()))


def bench_cold_start(model: Path, features: int, runs: int) -> None:
    """A fresh process: from the XGBoost JSON, and from the same model saved as a
    MedInfer tree file (.mdi, what a serverless package would ship)."""
    program = compile_c("cold_start.c", "cold_start", "-ldl", "-lm")
    empty = BUILD / "empty"
    (BUILD / "empty.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["cc", "-O2", str(BUILD / "empty.c"), "-o", str(empty)], check=True)
    tree_file = BUILD / (model.stem + ".mdi")
    medinfer.Model.load(model).save(tree_file)
    library = str(LIB_DIR / "libmedinfer.so")
    for source, label in ((model, model.suffix[1:].upper()), (tree_file, ".mdi tree file")):
        inside, outside = [], []
        for _ in range(runs):
            start = time.perf_counter()
            result = subprocess.run(["taskset", "-c", str(CPU), str(program), library, str(source), str(features)],
                                    check=True, capture_output=True, text=True)
            outside.append(time.perf_counter() - start)
            inside.append(float(result.stdout))
        record(model.name, "cold start", f"MedInfer from {label}: dlopen + load + 1 row (in process)",
               single_us=statistics.median(inside))
        record(model.name, "cold start", f"MedInfer from {label}: whole process (fork+exec included)",
               single_us=statistics.median(outside) * 1e6)
    baseline = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(empty)], check=True)
        baseline.append(time.perf_counter() - start)
    record(model.name, "cold start", "empty C program (fork+exec baseline)", single_us=statistics.median(baseline) * 1e6)


# ---------------------------------------------------------------------------------- #
# report


def lookup(model: str, task: str, engine: str, field: str) -> float | None:
    for row in ROWS:
        if row["model"] == model and row["task"] == task and row["engine"].startswith(engine):
            return row[field]
    return None


def bars() -> list[tuple[str, str, bool | None]]:
    out = []
    n = "noshow_xgb.json"
    ours, theirs = lookup(n, "predict", "MedInfer C API", "batch_rows_s"), lookup(n, "predict", "xgboost inplace", "batch_rows_s")
    tl = lookup(n, "predict", "TL2cgen", "batch_rows_s")
    if ours and theirs:
        out.append(("no-show batch >= 3x xgboost inplace_predict", f"{ours / theirs:.1f}x", ours >= 3 * theirs))
    if ours and tl:
        out.append(("no-show batch faster than TL2cgen", f"{ours / tl:.2f}x", ours > tl))
    single = lookup(n, "predict", "MedInfer C API", "single_us")
    if single:
        out.append(("single row through the C API <= 2 us", f"{single:.2f} us", single <= 2))
    python, xgb_single = lookup(n, "predict", "MedInfer Python", "single_us"), lookup(n, "predict", "xgboost inplace", "single_us")
    if python and xgb_single:
        out.append(("Python single row <= 1/5 of xgboost inplace_predict", f"{xgb_single / python:.1f}x faster",
                    python * 5 <= xgb_single))
    for label in ("JSON", ".mdi tree file"):
        cold = lookup(n, "cold start", f"MedInfer from {label}: dlopen", "single_us")
        if cold:
            out.append((f"cold start from {label} (dlopen + load + 1 row) < 3 ms", f"{cold / 1000:.2f} ms", cold < 3000))
    for model, label in (("noshow_xgb.json", "no-show"), ("deep_xgb.json", "deep 500x8"),
                         ("noshow_lgbm.txt", "LightGBM"), ("breast_rf.json", "breast RF")):
        ours = lookup(model, "SHAP values", "MedInfer C API", "per_row_us")
        refs = [r["per_row_us"] for r in ROWS if r["model"] == model and r["task"] == "SHAP values"
                and not r["engine"].startswith("MedInfer") and r["per_row_us"]]
        if ours and refs:
            ratio = min(refs) / ours
            out.append((f"SHAP {label} >= 3x the fastest reference", f"{ratio:.1f}x", ratio >= 3))
    ours = lookup(n, "SHAP interactions", "MedInfer", "per_row_us")
    theirs = lookup(n, "SHAP interactions", "xgboost", "per_row_us")
    if ours and theirs:
        out.append(("interactions >= 2x xgboost pred_interactions", f"{theirs / ours:.1f}x", theirs >= 2 * ours))
    return out


def versions() -> str:
    import sklearn
    import shap
    parts = [f"xgboost {xgb.__version__}", f"lightgbm {lgb.__version__}", f"scikit-learn {sklearn.__version__}",
             f"shap {shap.__version__}"]
    try:
        import tl2cgen
        parts.append(f"tl2cgen {tl2cgen.__version__}")
    except ImportError:
        pass
    parts.append(f"medinfer {medinfer.__version__}")
    return ", ".join(parts)


def report() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [f"# Tree benchmarks", "",
             f"{datetime.date.today()} on {cpu}, one core (cpu {CPU}), {platform.python_version()}; {versions()}.",
             "Command: `make bench` (`.venv/bin/python Benchmarks/run_all.py`).", "",
             "| model | task | engine | one row (us) | batch (rows/s) | per row in batch (us) | max abs diff |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in ROWS:
        lines.append(f"| {r['model']} | {r['task']} | {r['engine']} | {fmt(r['single_us'], '{:.2f}')} | "
                     f"{fmt(r['batch_rows_s'], '{:,.0f}')} | {fmt(r['per_row_us'], '{:.1f}')} | "
                     f"{fmt(r['max_abs_diff'], '{:.1e}')} |")
    lines += ["", "| bar | measured | met |", "| --- | --- | --- |"]
    for label, value, met in bars():
        lines.append(f"| {label} | {value} | {'yes' if met else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repetitions")
    parser.add_argument("--only", default="noshow,deep,lgbm,rf,cold")
    args = parser.parse_args()
    only = set(args.only.split(","))
    compile_c("tree_bench.c", "tree_bench", f"-L{LIB_DIR}", "-lmedinfer", f"-Wl,-rpath,{LIB_DIR}")
    rows = 20_000 if args.quick else 100_000
    frame, target = make_noshow(rows, seed=31)
    X = frame.to_numpy(dtype=np.float32)
    models = ROOT / "examples" / "models"
    if "noshow" in only:
        bench_xgboost("noshow_xgb.json", models / "noshow_xgb.json", X, tl2cgen_compile=True,
                      shap_rows=2000, interactions=True)
    if "deep" in only:
        deep = BUILD / "deep_xgb.json"
        if not deep.exists():
            train, labels = make_noshow(20_000, seed=5)
            booster = xgb.train({"objective": "binary:logistic", "max_depth": 8, "eta": 0.05, "nthread": 1,
                                 "tree_method": "hist", "seed": 5}, xgb.DMatrix(train, labels), 500)
            booster.save_model(str(deep))
        bench_xgboost("deep_xgb.json", deep, X[: rows // 5], tl2cgen_compile=False, shap_rows=50 if args.quick else 200,
                      interactions=False)
    if "lgbm" in only:
        bench_lightgbm("noshow_lgbm.txt", models / "noshow_lgbm.txt", X, shap_rows=2000)
    if "rf" in only:
        bench_forest("breast_rf.json", shap_rows=500)
    if "cold" in only:
        bench_cold_start(models / "noshow_xgb.json", X.shape[1], 10 if args.quick else 30)
    text = report()
    print(text)
    if not args.quick and only >= {"noshow", "deep", "lgbm", "rf", "cold"}:
        (ROOT / "Benchmarks" / "results" / "trees.md").write_text(text)
        (ROOT / "Benchmarks" / "results" / "trees.json").write_text(json.dumps(ROWS, indent=1))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Shapley explanations of networks (issue 11): MedInfer's explain_sequence and
explain_image against shap driving onnxruntime, one process, one thread, one core, the same
data, in one run. Prints a table and writes Benchmarks/results/network_shap.md.

Sequences: exact values of one 48-hour ICU sequence (patient 0) against one background
patient, players = the 8 vital channels (plus the 4 static columns of the two-branch
model; plus a 2 x 6 h windowed case for the LSTM). Reference: shap.ExactExplainer over the
group players, f(z) masking the inputs with np.where and running onnxruntime on the whole
batch. Bar: 20x.

Image: skin_cnn.onnx on one demo image, 8x8 grid (64 segments), mean masker, 1,000 model
evaluations. Reference: shap.KernelExplainer(nsamples=1000), f(z) masking in chunks of 16
and running onnxruntime; MedInfer: permutation sampling with budget 1000. Bar: 10x. The two
estimators differ, so agreement is a correlation, not a tolerance.

    .venv/bin/python Benchmarks/network_shap_bench.py [--runs 5] [--image lesion_df_300x300] [--no-record]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "examples" / "models"
IMAGES_DIR = ROOT / "examples" / "images"
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(MODELS_DIR))

# One core for the whole process, so both sides see the same machine.
CPU = sorted(os.sched_getaffinity(0))[-1]
os.sched_setaffinity(0, {CPU})

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

warnings.filterwarnings("ignore")
import shap  # noqa: E402

import medinfer  # noqa: E402
from icu_data import make_cohort  # noqa: E402
from cnn_bench import read_ppm  # noqa: E402

STEPS = 48
SEED = 11
PATIENTS = 2            # patient 0 is explained, patient 1 is the background
SEQUENCE_BAR = 20.0
IMAGE_BAR = 10.0
IMAGE_BUDGET = 1000
IMAGE_GRID = (8, 8)
CHUNK = 16              # images per onnxruntime call in the image reference
SEQUENCE_TOLERANCE = 1e-5
#: case name -> (model stem, time_windows, window_steps)
SEQUENCE_CASES = {
    "icu_lstm": ("icu_lstm", 1, 0),
    "icu_gru (Loop)": ("icu_gru", 1, 0),
    "icu_bilstm": ("icu_bilstm", 1, 0),
    "icu_gru_fused": ("icu_gru_fused", 1, 0),
    "icu_two_branch": ("icu_two_branch", 1, 0),
    "icu_lstm, 2 x 6 h windows": ("icu_lstm", 2, 6),
}


def ort_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def min_time(fn, runs: int, warmup: bool = True) -> tuple[float, object]:
    """Smallest seconds per call of `runs` calls (after one warm-up call), and the last result."""
    result = fn() if warmup else None
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


# --------------------------------------------------------------------------------------
# sequences
# --------------------------------------------------------------------------------------

def channel_owners(steps: int, features: int, first_player: int, time_windows: int, window_steps: int) -> np.ndarray:
    """[steps, features] player index of each sequence value; -1 for steps before the first
    window (never masked). Windows of `window_steps` end at the last step (0: all steps,
    split evenly), player first_player + w * features + c for window w, channel c."""
    owners = np.full((steps, features), -1, dtype=np.int64)
    windows = max(time_windows, 1)
    sizes = [window_steps] * windows if window_steps else \
        [steps // windows + steps % windows] + [steps // windows] * (windows - 1)
    start = steps - sum(sizes)
    for w, size in enumerate(sizes):
        owners[start:start + size] = first_player + w * features + np.arange(features)
        start += size
    return owners


def sequence_reference(session, x, s, bg, bg_s, time_windows: int, window_steps: int):
    """A shap.ExactExplainer over the group players and its call, as a user would write it."""
    statics = 0 if s is None else s.shape[-1]
    owners = channel_owners(STEPS, x.shape[-1], statics, time_windows, window_steps)
    players = statics + x.shape[-1] * max(time_windows, 1)
    has_static = s is not None

    def f(z: np.ndarray) -> np.ndarray:
        present = np.concatenate([z, np.ones((len(z), 1))], axis=1) > 0.5   # column -1: always present
        feeds = {"vitals": np.where(present[:, owners], x, bg).astype(np.float32)}
        if has_static:
            feeds["static"] = np.where(present[:, :statics], s, bg_s).astype(np.float32)
        return session.run(None, feeds)[0][:, 0]

    explainer = shap.ExactExplainer(f, shap.maskers.Independent(np.zeros((1, players)), max_samples=1))
    return players, lambda: explainer(np.ones((1, players)), silent=True).values[0]


def sequence_rows(runs: int) -> list[dict]:
    vitals, static, _ = make_cohort(np.random.default_rng(SEED), PATIENTS, STEPS)
    rows = []
    for case, (stem, time_windows, window_steps) in SEQUENCE_CASES.items():
        path = MODELS_DIR / f"{stem}.onnx"
        session = ort_session(path)
        network = medinfer.Network.load(path)
        two_branch = any(i.name == "static" for i in session.get_inputs())
        s, bg_s = (static[0], static[1:2]) if two_branch else (None, None)
        players, reference = sequence_reference(session, vitals[0], s, vitals[1], bg_s[0] if two_branch else None,
                                                time_windows, window_steps)

        def ours():
            return network.explain_sequence(vitals[0], static=s, background=vitals[1:2], background_static=bg_s,
                                            method="exact", time_windows=time_windows,
                                            window_steps=window_steps).values[:, 0]

        t_ref, ref_values = min_time(reference, runs)
        t_ours, our_values = min_time(ours, runs)
        diff = float(np.abs(np.asarray(ref_values, dtype=np.float64) - our_values).max())
        what = "2 x 6 h windows" if time_windows > 1 else ("4 static + 8 channels" if two_branch else "8 channels")
        rows.append({"case": case, "players": f"{players} ({what})",
                     "reference": f"shap Exact, {2 ** players} coalitions", "ref_ms": t_ref * 1e3,
                     "ours_ms": t_ours * 1e3, "bar": SEQUENCE_BAR,
                     "check": f"{diff:.1e}" + ("" if diff <= SEQUENCE_TOLERANCE else " (> 1e-5!)"),
                     "ok": diff <= SEQUENCE_TOLERANCE})
        print(f"  {case}: reference {t_ref * 1e3:.1f} ms, MedInfer {t_ours * 1e3:.2f} ms, max |diff| {diff:.1e}",
              flush=True)
    return rows


# --------------------------------------------------------------------------------------
# image
# --------------------------------------------------------------------------------------

def image_row(image_name: str, runs: int) -> tuple[dict, list[str]]:
    path = MODELS_DIR / "skin_cnn.onnx"
    image_path = IMAGES_DIR / f"{image_name}.ppm"
    pixels = read_ppm(image_path)
    height, width = pixels.shape[:2]
    rows, cols = IMAGE_GRID
    segments = rows * cols
    labels = (np.arange(height)[:, None] * rows // height) * cols + np.arange(width)[None, :] * cols // width
    image = pixels.astype(np.float32)
    mean = image.reshape(-1, 3).mean(axis=0)
    session = ort_session(path)
    network = medinfer.Network.load(path)

    def f(z: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(z), CHUNK):
            masked = np.where(z[start:start + CHUNK, labels][..., None] > 0.5, image, mean).astype(np.float32)
            out.append(session.run(None, {"image": masked})[0])
        return np.concatenate(out)

    explainer = shap.KernelExplainer(f, np.zeros((1, segments)))
    explainer.shap_values(np.ones((1, segments)), nsamples=130, l1_reg=False, silent=True)  # warm-up
    started = time.perf_counter()
    ref = np.asarray(explainer.shap_values(np.ones((1, segments)), nsamples=IMAGE_BUDGET, l1_reg=False, silent=True))
    t_ref = time.perf_counter() - started
    ref = ref.reshape(segments, -1) if ref.ndim == 3 and ref.shape[0] == 1 else np.moveaxis(ref, 0, -1).reshape(segments, -1)

    def ours():
        return network.explain_image(pixels, grid=IMAGE_GRID, masker="mean", method="permutation",
                                     budget=IMAGE_BUDGET, seed=0)

    t_ours, why = min_time(ours, runs)
    probabilities = network.classify_image(pixels)
    probabilities = np.array(list(probabilities.values()) if isinstance(probabilities, dict) else probabilities)
    ort_probabilities = session.run(None, {"image": image[None]})[0][0]
    top = int(np.argmax(probabilities))
    corr = float(np.corrcoef(ref[:, top], why.values[:, top])[0, 1])
    diff = float(np.abs(ref[:, top] - why.values[:, top]).max())
    additivity = float(np.abs(why.base_values + why.values.sum(axis=0) - probabilities).max())
    label = (network.labels or [str(top)])[top] if network.labels else str(top)
    notes = [f"image {image_path.name} ({width}x{height}), top class {label} (p = {probabilities[top]:.3f}): "
             f"correlation {corr:.3f} and max |diff| {diff:.1e} between shap Kernel and MedInfer permutation "
             f"values (value range {np.ptp(ref[:, top]):.1e}); MedInfer additivity |base + sum - classify_image| "
             f"{additivity:.1e}; classify_image vs onnxruntime max |diff| "
             f"{np.abs(probabilities - ort_probabilities).max():.1e}"]
    print(f"  skin_cnn: reference {t_ref * 1e3:.0f} ms, MedInfer {t_ours * 1e3:.0f} ms, corr {corr:.3f}", flush=True)
    row = {"case": f"skin_cnn, {image_name}", "players": f"{segments} (8x8 grid, mean)",
           "reference": f"shap Kernel, nsamples {IMAGE_BUDGET}", "ref_ms": t_ref * 1e3, "ours_ms": t_ours * 1e3,
           "bar": IMAGE_BAR, "check": f"r = {corr:.3f}, max {diff:.1e}, additivity {additivity:.0e}", "ok": True}
    return row, notes


# --------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed sequence explanations per side (min taken)")
    parser.add_argument("--image-runs", type=int, default=2, help="timed MedInfer image explanations (min taken)")
    parser.add_argument("--image", default="lesion_df_300x300", help="demo image stem in examples/images")
    parser.add_argument("--no-record", action="store_true", help="do not write Benchmarks/results/network_shap.md")
    args = parser.parse_args()

    started = time.perf_counter()
    print("sequences (exact):", flush=True)
    rows = sequence_rows(args.runs)
    print("image (1,000 evaluations):", flush=True)
    row, notes = image_row(args.image, args.image_runs)
    rows.append(row)
    for r in rows:
        r["ratio"] = r["ref_ms"] / r["ours_ms"]
        r["met"] = r["ratio"] >= r["bar"]

    head = ["case", "players", "reference (what)", "reference ms", "medinfer ms", "ratio", "bar",
            "max abs diff (or agreement)"]
    cells = [[r["case"], r["players"], r["reference"], f"{r['ref_ms']:.1f}", f"{r['ours_ms']:.2f}",
              f"{r['ratio']:.1f}x", f"{r['bar']:.0f}x " + ("met" if r["met"] else "NOT met"), r["check"]]
             for r in rows]
    md_table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md_table += ["| " + " | ".join(c) + " |" for c in cells]
    machine = (f"{platform.processor() or platform.machine()}, one core (core {CPU}, pinned like taskset), "
               f"onnxruntime {ort.__version__} with 1 intra-op and 1 inter-op thread, shap {shap.__version__}, "
               f"MedInfer {medinfer._native.library().medinfer_version().decode()}, "
               f"{datetime.date.today().isoformat()}")
    footer = [f"Sequences: T = {STEPS}, make_cohort(default_rng({SEED}), {PATIENTS}, {STEPS}); patient 0 explained, "
              f"patient 1 the background (1 row); times are the min of {args.runs} calls after one warm-up, "
              f"shap's default batching (the masker hands f every coalition at once).",
              f"Image: reference is one KernelExplainer.shap_values call (after an nsamples=130 warm-up), "
              f"onnxruntime on chunks of {CHUNK}; MedInfer is the min of {args.image_runs} explain_image calls "
              f"(permutation, budget {IMAGE_BUDGET}, seed 0) after one warm-up.",
              f"Ratio = reference / MedInfer. Total run {time.perf_counter() - started:.0f} s."]
    verdicts = []
    if not all(r["ok"] for r in rows):
        verdicts.append("exact values differ by more than 1e-5 on: "
                        + "; ".join(r["case"] for r in rows if not r["ok"]))
    missed = [r["case"] for r in rows if not r["met"]]
    verdicts.append("bars met on every row" if not missed else "bars NOT met on: " + "; ".join(missed))

    print()
    print("\n".join(md_table))
    print()
    for line in verdicts + notes + footer + [machine]:
        print(line)
    if not args.no_record:
        out = ROOT / "Benchmarks" / "results"
        out.mkdir(exist_ok=True)
        md = ["# Network Shapley explanations: MedInfer vs shap + onnxruntime", "",
              f"Machine: {machine}.", "",
              "Made by `make bench` / `.venv/bin/python Benchmarks/network_shap_bench.py`.", ""]
        md += md_table + [""] + [f"- {line}" for line in verdicts + notes] + [""] + footer + [""]
        (out / "network_shap.md").write_text("\n".join(md))
        print(f"wrote {out / 'network_shap.md'}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

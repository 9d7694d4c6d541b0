#!/usr/bin/env python3
"""ICU sequence models (LSTM, GRU, bidirectional LSTM, two-branch, fused GRU): MedInfer
against onnxruntime, one process, one thread, one core, the same 48-hour sequences, batch
1 and batch 64. Prints a table and writes Benchmarks/results/sequence.md.

The tf2onnx Keras GRU (icu_gru.onnx) is a Loop whose body is the GRU cell, which
onnxruntime interprets node by node every step; MedInfer must recognise the cell and run
it as a fused GRU: the bar is 10x onnxruntime on that file at batch 1 (one bed). At batch
64 onnxruntime's per-step cost is shared by the batch and its Loop is about as fast as
its fused GRU, so that row is reported without a bar.

    .venv/bin/python Benchmarks/sequence_bench.py [--runs 200] [--no-record]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "examples" / "models"
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(MODELS_DIR))

# One core for the whole process, so both engines see the same machine.
CPU = sorted(os.sched_getaffinity(0))[-1]
os.sched_setaffinity(0, {CPU})

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import medinfer  # noqa: E402
from icu_data import make_cohort  # noqa: E402

STEPS = 48
BATCHES = (1, 64)
LOOP_MODEL = "icu_gru"
LOOP_BAR = 10.0
#: model stem -> what it is
MODELS = {
    "icu_lstm": "Keras LSTM(64) (fused LSTM op)",
    "icu_gru": "Keras GRU(64) (tf2onnx Loop)",
    "icu_bilstm": "Keras BiLSTM(64) + Dense 32",
    "icu_two_branch": "static Dense 16 + LSTM(64)",
    "icu_gru_fused": "torch-style GRU(64) op",
}


def ort_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed(fn, runs: int) -> list[float]:
    """Seconds per call, `runs` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def interleaved(fn_a, fn_b, runs: int, rounds: int = 4) -> tuple[list[float], list[float]]:
    """Both engines in alternating rounds, so that neither gets a quieter machine."""
    a, b = [], []
    for _ in range(rounds):
        a += timed(fn_a, max(runs // rounds, 1))
        b += timed(fn_b, max(runs // rounds, 1))
    return a, b


def stream_step_time(network, vitals: np.ndarray, static: np.ndarray | None, runs: int) -> float | None:
    """Median seconds per medinfer Stream.push over 48-step sequences (None: no stream API)."""
    try:
        stream = medinfer.Stream(network)
    except (NotImplementedError, medinfer.MedInferError):
        return None
    times = []
    with stream:
        if static is not None:
            stream.set_static(static[0])
        for _ in range(max(runs // STEPS, 2)):
            stream.reset()
            for t in range(STEPS):
                started = time.perf_counter()
                stream.push(vitals[0, t])
                times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per engine at batch 1 (a quarter at 64)")
    parser.add_argument("--no-record", action="store_true", help="do not write Benchmarks/results/sequence.md")
    args = parser.parse_args()

    rng = np.random.default_rng(48)
    vitals_all, static_all, _ = make_cohort(rng, max(BATCHES), STEPS)
    rows, notes = [], []
    for name, what in MODELS.items():
        path = MODELS_DIR / f"{name}.onnx"
        session = ort_session(path)
        try:
            network = medinfer.Network.load(path)
        except medinfer.MedInferError as error:
            network = None
            notes.append(f"{name}: MedInfer cannot load it: {error}")
        has_static = any(i.name == "static" for i in session.get_inputs())
        for batch in BATCHES:
            feeds = {"vitals": np.ascontiguousarray(vitals_all[:batch])}
            if has_static:
                feeds["static"] = np.ascontiguousarray(static_all[:batch])
            runs = args.runs if batch == 1 else max(args.runs // 4, 8)
            run_ort = lambda: session.run(None, feeds)  # noqa: E731
            row = {"model": name, "what": what, "batch": batch}
            if network is not None:
                try:
                    got = network.run(feeds)["risk"]
                    row["max_abs_diff"] = float(np.abs(got - run_ort()[0]).max())
                    t_ort, t_ours = interleaved(run_ort, lambda: network.run(feeds), runs)
                except medinfer.MedInferError as error:
                    notes.append(f"{name} batch {batch}: MedInfer failed: {error}")
                    t_ort, t_ours = timed(run_ort, runs), None
            else:
                t_ort, t_ours = timed(run_ort, runs), None
            row["ort_median"], row["ort_min"] = statistics.median(t_ort), min(t_ort)
            if t_ours is not None:
                row["ours_median"], row["ours_min"] = statistics.median(t_ours), min(t_ours)
                row["speedup"] = row["ort_median"] / row["ours_median"]
            if batch == 1 and network is not None:
                row["stream_step"] = stream_step_time(network, vitals_all, static_all if has_static else None, runs)
            rows.append(row)

    header = (f"{'model':<16}{'batch':>6}{'ORT med/min ms':>17}{'MedInfer med/min ms':>22}{'ORT seq/s':>11}"
              f"{'MedInfer seq/s':>16}{'speedup':>9}{'ORT us/step':>13}{'stream us/step':>16}{'max |diff|':>12}")
    lines = [header, "-" * len(header)]
    for r in rows:
        ours = (f"{r['ours_median'] * 1e3:>10.3f}/{r['ours_min'] * 1e3:<8.3f}" if "ours_median" in r else f"{'n/a':>19}")
        ours_rate = f"{r['batch'] / r['ours_median']:>16,.0f}" if "ours_median" in r else f"{'n/a':>16}"
        speedup = f"{r['speedup']:>8.2f}x" if "speedup" in r else f"{'n/a':>9}"
        stream = r.get("stream_step")
        stream_text = f"{stream * 1e6:>16.2f}" if stream else f"{'' if r['batch'] > 1 else 'n/a':>16}"
        diff = f"{r['max_abs_diff']:>12.1e}" if "max_abs_diff" in r else f"{'n/a':>12}"
        lines.append(f"{r['model']:<16}{r['batch']:>6}{r['ort_median'] * 1e3:>9.3f}/{r['ort_min'] * 1e3:<7.3f}"
                     f"{ours:>22}{r['batch'] / r['ort_median']:>11,.0f}{ours_rate}{speedup}"
                     f"{r['ort_median'] / (r['batch'] * STEPS) * 1e6:>13.2f}{stream_text}{diff}")
    verdicts = []
    for r in rows:
        if r["model"] != LOOP_MODEL:
            continue
        # The bar is for one bed at a time (batch 1), where onnxruntime pays the Loop's
        # per-step interpretation; at batch 64 that cost is shared by 64 sequences and
        # its Loop runs about as fast as its fused GRU, so there is no 10x to be had.
        bar = f"bar {LOOP_BAR:.0f}x" if r["batch"] == 1 else "no bar at this batch"
        if "speedup" in r:
            verdict = ("met" if r["speedup"] >= LOOP_BAR else "NOT met") if r["batch"] == 1 else "informational"
            verdicts.append(f"Keras GRU (Loop) at batch {r['batch']}: MedInfer {r['speedup']:.1f}x onnxruntime "
                            f"({bar}): {verdict}")
        else:
            verdicts.append(f"Keras GRU (Loop) at batch {r['batch']}: MedInfer could not run it ({bar})")
    fused = {r["batch"]: r for r in rows if r["model"] == "icu_gru_fused"}
    for r in rows:
        if r["model"] == LOOP_MODEL and r["batch"] in fused:
            verdicts.append(f"onnxruntime: the Loop GRU takes {r['ort_median'] / fused[r['batch']]['ort_median']:.1f}x "
                            f"the time of the fused GRU op at batch {r['batch']} (same sizes, other weights)")
    machine = (f"{platform.processor() or platform.machine()}, core {CPU}, onnxruntime {ort.__version__}, "
               f"MedInfer {medinfer._native.library().medinfer_version().decode()}, "
               f"{datetime.date.today().isoformat()}")
    footer = [f"T = {STEPS} steps, 8 vitals; times are per call (median/min of {args.runs} runs at batch 1, "
              f"{max(args.runs // 4, 8)} at batch 64; engines interleaved); seq/s and speedup from medians; "
              f"ORT us/step = ORT median / (batch x {STEPS}); stream us/step = MedInfer Stream.push median "
              f"(batch 1). One thread, one core ({machine})."]
    print("\n".join(lines))
    print()
    for line in verdicts + notes + footer:
        print(line)
    if not args.no_record:
        out = ROOT / "Benchmarks" / "results"
        out.mkdir(exist_ok=True)
        md = ["# ICU sequence models: MedInfer vs onnxruntime", "",
              "Made by `Benchmarks/sequence_bench.py`.", "",
              "| model | batch | ORT ms (med/min) | MedInfer ms (med/min) | ORT seq/s | MedInfer seq/s | speedup | "
              "ORT us/step | stream us/step | max abs diff |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            stream = r.get("stream_step")
            ours = "ours_median" in r
            cells = [f"{r['model']} ({r['what']})", str(r["batch"]),
                     f"{r['ort_median'] * 1e3:.3f} / {r['ort_min'] * 1e3:.3f}",
                     f"{r['ours_median'] * 1e3:.3f} / {r['ours_min'] * 1e3:.3f}" if ours else "n/a",
                     f"{r['batch'] / r['ort_median']:,.0f}",
                     f"{r['batch'] / r['ours_median']:,.0f}" if ours else "n/a",
                     f"{r['speedup']:.2f}x" if ours else "n/a",
                     f"{r['ort_median'] / (r['batch'] * STEPS) * 1e6:.2f}",
                     f"{stream * 1e6:.2f}" if stream else "",
                     f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "n/a"]
            md.append("| " + " | ".join(cells) + " |")
        md += [""] + [f"- {line}" for line in verdicts + notes] + ["", footer[0], ""]
        (out / "sequence.md").write_text("\n".join(md))
        print(f"wrote {out / 'sequence.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

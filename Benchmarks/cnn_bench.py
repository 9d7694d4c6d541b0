#!/usr/bin/env python3
"""Seed CNN (skin lesions) single-image latency: MedInfer vs onnxruntime, one thread,
same core, same images, in one run. Prints a table and the ratio; with --record writes
Benchmarks/results/cnn.{md,json}.

    .venv/bin/python Benchmarks/cnn_bench.py [--rounds 30] [--record]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import medinfer  # noqa: E402


def read_ppm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    magic, w, h, maxval, rest = data.split(maxsplit=4)
    assert magic == b"P6" and maxval == b"255"
    w, h = int(w), int(h)
    return np.frombuffer(rest[: w * h * 3], dtype=np.uint8).reshape(h, w, 3)


def ort_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed(fn, rounds: int) -> list[float]:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


STARTUP_SNIPPET = r"""
import sys, time, os, resource
sys.path.insert(0, {python!r})
import numpy as np
x = np.load({x!r})
def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
base_kb = rss_kb("VmRSS:")
if {engine!r} == "medinfer":
    import medinfer  # the library itself is loaded (dlopen) by the first call below
    t0 = time.perf_counter()
    net = medinfer.Network.load({model!r})
    run = lambda: net.run([x])
else:
    import onnxruntime as ort
    t0 = time.perf_counter()
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    s = ort.InferenceSession({model!r}, o, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    run = lambda: s.run(None, {{name: x}})
t1 = time.perf_counter()
run()
t2 = time.perf_counter()
warm = min((lambda: (lambda a: (run(), time.perf_counter() - a)[1])(time.perf_counter()))() for _ in range(5))
print(t1 - t0, t2 - t1, warm, rss_kb("VmHWM:") - base_kb)
"""


def startup(engine: str, model: Path, x_path: Path) -> tuple[float, float, float]:
    """(load, first run minus a warm run) in a fresh process, imports excluded; of 5
    processes, the one with the smallest total."""
    code = STARTUP_SNIPPET.format(python=str(ROOT / "python"), x=str(x_path), engine=engine, model=str(model))
    results = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}).stdout.split()
        load, first, warm, grown_kb = map(float, out)
        results.append((load, first - warm, grown_kb / 1024))
    return min(results, key=lambda r: r[0] + r[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    except (AttributeError, OSError):
        pass

    images = sorted((ROOT / "examples" / "images").glob("*.ppm"))
    rows = []
    for model_name, raw in (("skin_cnn.onnx", True), ("skin_cnn_300.onnx", False)):
        path = ROOT / "examples" / "models" / model_name
        net = medinfer.Network.load(path)
        session = ort_session(path)
        name = session.get_inputs()[0].name
        for image_path in images[:2]:
            img = read_ppm(image_path)
            if raw:
                x = img[None].astype(np.float32)
            else:
                if img.shape[:2] != (300, 300):
                    continue
                x = (img[None].astype(np.float32) * np.float32(1 / 255))
            ours_out = net.run([x])["probabilities"] if "probabilities" in net.run([x]) else list(net.run([x]).values())[0]
            ref_out = session.run(None, {name: x})[0]
            diff = float(np.abs(ours_out - ref_out).max())
            t_ours, t_ort = [], []
            for _ in range(3):  # interleave so both see the same machine state
                t_ort += timed(lambda: session.run(None, {name: x}), args.rounds // 3)
                t_ours += timed(lambda: net.run([x]), args.rounds // 3)
            rows.append({
                "model": model_name, "image": f"{image_path.stem} {img.shape[1]}x{img.shape[0]}",
                "onnxruntime_ms": min(t_ort) * 1e3, "medinfer_ms": min(t_ours) * 1e3,
                "onnxruntime_median_ms": statistics.median(t_ort) * 1e3,
                "medinfer_median_ms": statistics.median(t_ours) * 1e3,
                "speedup": min(t_ort) / min(t_ours), "max_abs_diff": diff,
            })
    x_path = Path("/tmp/medinfer_cnn_bench_input.npy")
    np.save(x_path, read_ppm(images[0])[None].astype(np.float32))
    model = ROOT / "examples" / "models" / "skin_cnn.onnx"
    ours_load, ours_first, ours_mb = startup("medinfer", model, x_path)
    ort_load, ort_first, ort_mb = startup("onnxruntime", model, x_path)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print(f"{'model':<20}{'image':<26}{'onnxruntime ms':>15}{'medinfer ms':>13}{'speedup':>9}{'max |diff|':>12}")
    for r in rows:
        print(f"{r['model']:<20}{r['image']:<26}{r['onnxruntime_ms']:>15.2f}{r['medinfer_ms']:>13.2f}"
              f"{r['speedup']:>8.2f}x{r['max_abs_diff']:>12.1e}")
    print(f"start-up (fresh process, load + first run - warm run): medinfer {(ours_load + ours_first) * 1e3:.1f} ms "
          f"(load {ours_load * 1e3:.1f}), onnxruntime {(ort_load + ort_first) * 1e3:.1f} ms (load {ort_load * 1e3:.1f}); "
          f"ratio {(ort_load + ort_first) / (ours_load + ours_first):.1f}x")
    print(f"peak memory of loading the model and classifying one 600x450 image (growth of the process's peak RSS "
          f"beyond Python + numpy): medinfer {ours_mb:.1f} MB, onnxruntime {ort_mb:.1f} MB")
    print(f"times are the minimum of {args.rounds} runs per engine (medians in the JSON); kernels: "
          f"{os.environ.get('MEDINFER_ISA', 'auto')} ISA; peak RSS of this process {peak_kb / 1024:.0f} MB")
    if args.record:
        out = ROOT / "Benchmarks" / "results"
        out.mkdir(exist_ok=True)
        record = {"rows": rows, "startup": {"medinfer_load_s": ours_load, "medinfer_first_extra_s": ours_first,
                                             "onnxruntime_load_s": ort_load, "onnxruntime_first_extra_s": ort_first},
                  "peak_memory_mb": {"medinfer": ours_mb, "onnxruntime": ort_mb}}
        (out / "cnn.json").write_text(json.dumps(record, indent=2))
        lines = ["| model | image | onnxruntime ms | medinfer ms | speedup | max abs diff |", "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['model']} | {r['image']} | {r['onnxruntime_ms']:.2f} | {r['medinfer_ms']:.2f} | "
                         f"{r['speedup']:.2f}x | {r['max_abs_diff']:.1e} |")
        lines.append("")
        lines.append(f"Start-up (fresh process: load model + first run - warm run): MedInfer "
                     f"{(ours_load + ours_first) * 1e3:.1f} ms, onnxruntime {(ort_load + ort_first) * 1e3:.1f} ms.")
        lines.append(f"Peak memory of loading and classifying one 600x450 image (peak RSS growth beyond Python "
                     f"and numpy): MedInfer {ours_mb:.1f} MB, onnxruntime {ort_mb:.1f} MB.")
        (out / "cnn.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

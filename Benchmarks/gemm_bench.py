#!/usr/bin/env python3
"""SGEMM at 256-1024: MedInfer's kernel (Benchmarks/Kernels, release build) beside numpy's
OpenBLAS, both on one thread and one core; prints GFLOP/s and the peak assumed.

    .venv/bin/python Benchmarks/gemm_bench.py [--record]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = [256, 512, 768, 1024]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    core = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {core})
    subprocess.run(["swift", "build", "-c", "release", "--product", "medinfer-bench-gemm"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run(["taskset", "-c", str(core), str(ROOT / ".build" / "release" / "medinfer-bench-gemm"),
                          *map(str, SIZES)], capture_output=True, text=True, check=True).stdout.split("\n")
    isa, peak = out[0].split()[1], float(out[0].split()[3])
    ours = {int(line.split()[0]): float(line.split()[2]) for line in out[1:] if line.strip()}
    rows = []
    for n in SIZES:
        a = np.random.rand(n, n).astype(np.float32)
        b = np.random.rand(n, n).astype(np.float32)
        best = min(_time(lambda: a @ b) for _ in range(max(3, int(2e9 / (2 * n ** 3)))))
        rows.append((n, 2 * n ** 3 / best / 1e9, ours[n]))
    lines = [f"SGEMM, one thread, {isa} kernels; assumed single-core FP32 peak {peak:.0f} GFLOP/s",
             f"{'size':>6}{'numpy (OpenBLAS) GFLOP/s':>26}{'MedInfer GFLOP/s':>18}{'% of peak':>11}"]
    for n, blas, mine in rows:
        lines.append(f"{n:>6}{blas:>26.1f}{mine:>18.1f}{100 * mine / peak:>10.0f}%")
    print("\n".join(lines))
    if args.record:
        (ROOT / "Benchmarks" / "results").mkdir(exist_ok=True)
        md = ["| size | numpy (OpenBLAS) GFLOP/s | MedInfer GFLOP/s | % of assumed peak |", "|---|---|---|---|"]
        md += [f"| {n} | {blas:.1f} | {mine:.1f} | {100 * mine / peak:.0f}% |" for n, blas, mine in rows]
        md.append(f"\nOne thread, {isa} kernels, assumed peak {peak:.0f} GFLOP/s "
                  f"(`.venv/bin/python Benchmarks/gemm_bench.py --record`).")
        (ROOT / "Benchmarks" / "results" / "gemm.md").write_text("\n".join(md) + "\n")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()

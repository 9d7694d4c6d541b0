"""Benchmark of the no-show Lambda function (make lambda-bench).

Runs `bootstrap` from the deployment zip against the local Runtime API emulator
(Tests/Lambda/emulator.py) and measures:

  - cold start: process start (fork/exec) to the first response arriving at the Runtime
    API, the event already queued; median over --starts fresh processes. In Lambda the
    sandbox start comes on top; this is the part the function controls (exec, dynamic
    loading, model load, explainer tables, first invocation).
  - warm handler time: what bootstrap reports in the Medinfer-Handler-Ns header of each
    response (clock_gettime around parse + validate + score + SHAP + serialize; no HTTP),
    median and p90 over --warm single-appointment events after a warm-up.
  - round trip through the emulator per event (Python HTTP server on the same machine:
    an upper bound, not what Lambda's Runtime API costs).
  - peak RSS (VmHWM from /proc) of the function after the warm run.
  - zip size.

bootstrap is pinned to one core and the emulator to the other where there are two.
Prints a table and writes Benchmarks/results/lambda.md.

    .venv/bin/python Benchmarks/lambda_bench.py [--starts 20] [--warm 5000]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Lambda"))
from emulator import Emulator, unpack_zip  # noqa: E402
from events import FEATURES, make_events  # noqa: E402

ZIP = ROOT / ".build" / "lambda" / "medinfer-noshow-lambda.zip"
RESULTS = ROOT / "Benchmarks" / "results" / "lambda.md"

# The public Lambda price model (x86, us-east-1), and the seed project's workload.
PRICE_PER_REQUEST = 0.20 / 1e6
PRICE_PER_GB_SECOND = 0.0000166667
CALLS_PER_MONTH = 30_000_000
SEED_ESTIMATE = 5442.0


def unpack(folder: Path) -> Path:
    return unpack_zip(ZIP, folder) / "bootstrap"


def pin_children(cpus: list[int]):
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, {cpus[0]}  # function, emulator


def single_event() -> bytes:
    """One typical appointment (the first sample row, with its missing fee)."""
    lines = (ROOT / "examples" / "models" / "sample_rows.csv").read_text().splitlines()
    names, values = lines[0].split(","), [float(v) for v in lines[1].split(",")]
    assert names == FEATURES
    return json.dumps({n: (None if v != v else v) for n, v in zip(names, values)}).encode()


def cold_starts(bootstrap: Path, starts: int, function_cpus) -> tuple[list[float], list[float]]:
    """(process start -> first response, main() -> ready as bootstrap logs it), in ms."""
    payload = single_event()
    times, inits = [], []
    log = bootstrap.parent / "cold.log"
    for _ in range(starts):
        with Emulator() as emu:
            rid = emu.invoke(payload)
            emu.start_function([str(bootstrap)], cpus=function_cpus, stderr_path=str(log))
            result = emu.wait([rid], timeout=30)[rid]
            times.append((result.received - emu.started_at) * 1e3)
            assert result.kind == "response", result.body
        m = re.search(r"ready in ([0-9.]+) ms", log.read_text())
        if m:
            inits.append(float(m.group(1)))
    return times, inits


def warm_run(bootstrap: Path, n: int, function_cpus) -> dict:
    payload = single_event()
    mixed = [e.payload for e in make_events(2000, seed=1) if e.valid and not e.batch and not e.proxy]
    with Emulator() as emu:
        emu.start_function([str(bootstrap)], cpus=function_cpus)
        warmup = [emu.invoke(payload) for _ in range(500)]
        emu.wait(warmup, timeout=120)
        ids = [emu.invoke(payload) for _ in range(n)]
        t0 = time.perf_counter()
        results = emu.wait(ids, timeout=300)
        elapsed = time.perf_counter() - t0
        mixed_ids = [emu.invoke(p) for p in mixed]
        mixed_results = emu.wait(mixed_ids, timeout=300)
        batch = json.dumps({"appointments": [json.loads(payload)] * 100}).encode()
        batch_ids = [emu.invoke(batch) for _ in range(200)]
        batch_results = emu.wait(batch_ids, timeout=300)
        rss = emu.peak_rss_kb()
    ns = sorted(results[r].handler_ns for r in ids)
    mixed_ns = sorted(mixed_results[r].handler_ns for r in mixed_ids)
    batch_ns = sorted(batch_results[r].handler_ns for r in batch_ids)
    return {
        "median_us": statistics.median(ns) / 1e3, "p90_us": ns[len(ns) * 9 // 10] / 1e3,
        "p99_us": ns[len(ns) * 99 // 100] / 1e3,
        "mixed_median_us": statistics.median(mixed_ns) / 1e3, "mixed_count": len(mixed_ns),
        "batch100_median_us": statistics.median(batch_ns) / 1e3,
        "round_trip_us": elapsed / n * 1e6, "rss_mb": rss / 1024 if rss else float("nan"),
    }


def cost(duration_ms: float, memory_mb: int = 128) -> dict:
    billed_ms = max(1, int(-(-duration_ms // 1)))  # rounded up to the next 1 ms
    gb_seconds = CALLS_PER_MONTH * billed_ms / 1000 * memory_mb / 1024
    requests = CALLS_PER_MONTH * PRICE_PER_REQUEST
    compute = gb_seconds * PRICE_PER_GB_SECOND
    return {"billed_ms": billed_ms, "gb_seconds": gb_seconds, "requests": requests, "compute": compute,
            "total": requests + compute, "memory_mb": memory_mb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--warm", type=int, default=5000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not ZIP.exists():
        print(f"{ZIP} does not exist: run make lambda-zip", file=sys.stderr)
        return 1
    cpus = sorted(os.sched_getaffinity(0))
    function_cpus, emulator_cpus = pin_children(cpus)
    if emulator_cpus:
        os.sched_setaffinity(0, emulator_cpus)
    with tempfile.TemporaryDirectory() as tmp:
        bootstrap = unpack(Path(tmp))
        colds, inits = cold_starts(bootstrap, args.starts, function_cpus)
        warm = warm_run(bootstrap, args.warm, function_cpus)
    zip_mb = ZIP.stat().st_size / 1e6
    cold_median = statistics.median(colds)
    # Billed duration of a warm call: the handler plus Runtime API overhead, well under
    # 1 ms, so 1 ms (the minimum). A cold call bills the init phase too (provided runtimes).
    warm_cost = cost(warm["median_us"] / 1e3)

    rows = [
        ("cold start (process start -> first response), median of %d" % len(colds), f"{cold_median:.1f} ms",
         "< 20 ms", cold_median < 20),
        ("cold start, min / max", f"{min(colds):.1f} / {max(colds):.1f} ms", "", None),
        ("  of which init inside bootstrap (model load + SHAP tables), median",
         f"{statistics.median(inits):.1f} ms" if inits else "n/a", "", None),
        ("warm handler time, one appointment, median", f"{warm['median_us']:.1f} us", "< 50 us",
         warm["median_us"] < 50),
        ("warm handler time, p90 / p99", f"{warm['p90_us']:.1f} / {warm['p99_us']:.1f} us", "", None),
        (f"warm handler time, {warm['mixed_count']} varied appointments, median", f"{warm['mixed_median_us']:.1f} us",
         "", None),
        ("warm handler time, batch of 100, median", f"{warm['batch100_median_us']:.0f} us", "", None),
        ("round trip through the Python emulator", f"{warm['round_trip_us']:.0f} us", "", None),
        ("peak RSS of the function", f"{warm['rss_mb']:.1f} MB", "", None),
        ("zip size", f"{zip_mb:.2f} MB", "< 10 MB", zip_mb < 10),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':{width}s}  {'value':>16s}  {'bar':>8s}", "-" * (width + 32)]
    for name, value, bar, ok in rows:
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        lines.append(f"{name:{width}s}  {value:>16s}  {bar:>8s}{mark}")
    print("\n".join(lines))
    c = warm_cost
    print(f"\n30 M calls/month at {c['memory_mb']} MB, {c['billed_ms']} ms billed: "
          f"${c['requests']:.2f} requests + ${c['compute']:.2f} compute = ${c['total']:.2f}/month "
          f"(seed estimate ${SEED_ESTIMATE:,.0f})")

    if not args.no_write:
        now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        md = [
            "# Lambda function benchmark",
            "",
            f"`make lambda-bench` ({now}, {platform.machine()}, {os.cpu_count()} cores shared with other work, "
            f"load average {os.getloadavg()[0]:.1f} at the end; "
            f"bootstrap pinned to CPU {sorted(function_cpus)[0] if function_cpus else '-'}, the emulator to the "
            "other). bootstrap runs from the deployment zip against the local Runtime API emulator.",
            "",
            "| measure | value | bar |",
            "| --- | ---: | ---: |",
        ]
        for name, value, bar, ok in rows:
            md.append(f"| {name} | {value} | {bar}{'' if ok is None else (' ok' if ok else ' missed')} |")
        md += [
            "",
            "Cold start = fork/exec of bootstrap until its first answer reaches the Runtime API, the event",
            "already queued: dynamic loading of libmedinfer.so and the shipped libraries, loading noshow.mdi,",
            "building the SHAP tables, one invocation. Lambda's own sandbox start is not included.",
            "Handler time = the `Medinfer-Handler-Ns` header: parse, validate, score, SHAP, serialize; no HTTP.",
            "",
            "## Cost of the seed workload (30 million calls a month)",
            "",
            f"x86 price model: $0.20 per 1M requests, $0.0000166667 per GB-second, 1 ms billing granularity; "
            f"{c['memory_mb']} MB memory.",
            "",
            f"- requests: 30 M x $0.20 / 1 M = **${c['requests']:.2f}**",
            f"- compute: a warm call runs {warm['median_us']:.0f} us in the handler (plus well under 1 ms of Runtime",
            f"  API traffic) and is billed the minimum {c['billed_ms']} ms: 30 M x {c['billed_ms'] / 1000:.3f} s x "
            f"{c['memory_mb']} / 1024 GB = {c['gb_seconds']:,.0f} GB-s x $0.0000166667 = **${c['compute']:.2f}**",
            f"- total: **${c['total']:.2f} a month**, against the seed project's estimate of about "
            f"${SEED_ESTIMATE:,.0f} (about {SEED_ESTIMATE / c['total']:,.0f}x less).",
            "",
        ]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("\n".join(md))
        print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

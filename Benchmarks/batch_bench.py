"""Batch benchmark: a month of appointments scored and explained on Dask and Spark.

On one machine (here 2 cores shared with other work), the same Parquet data
(examples/batch/make_month.py, default 15,000,000 rows) goes through:

  Dask, LocalCluster of N single-threaded worker processes (default 2):
    read          Parquet -> persisted in worker memory
    scoring only  MedInfer risk (k=0) on the persisted data      vs
                  xgboost.dask.inplace_predict on the same data    (best of --repeat)
    score+top-3   MedInfer risk + top-3 SHAP drivers on the persisted data
    explain ref   xgboost.dask.predict(pred_contribs=True) on the first --contribs-rows rows
    full job      Parquet -> risk + top-3 drivers -> Parquet (what score_month.py does)
  Spark local[N], the same Parquet:
    scoring only  MedInfer risk (k=0) into Spark's no-op sink
    full job      Parquet -> risk + top-3 drivers -> Parquet

rows/s for each, peak resident memory of the engine's processes (workers, nannies,
JVM, Python workers; sampled every 0.2 s with psutil) in total and of the largest single
process, and a correctness check of the full job's output on a random sample (risk
within 1e-6 of xgboost, drivers ranked as its pred_contribs). Throughput on a shared
machine is noisy: compare the ratios, measured in the same run.

    .venv/bin/python Benchmarks/batch_bench.py                 # 15M rows (~15 min)
    .venv/bin/python Benchmarks/batch_bench.py --rows 1000000  # smaller
Writes Benchmarks/results/batch.{md,json} (unless --no-write).
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "python", ROOT / "examples" / "batch", ROOT / "Tests" / "Batch"):
    sys.path.insert(0, str(p))
MODEL = str(ROOT / "examples" / "models" / "noshow_xgb.json")
RESULTS = ROOT / "Benchmarks" / "results"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

import make_month  # noqa: E402


class MemorySampler:
    """Peak RSS of this process's descendants (the engine's processes)."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak_total = 0
        self.peak_process = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_process = max(self.peak_process, rss)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def timed(label: str, rows: int, fn, results: list, engine: str, note: str = "", memory: bool = True) -> float:
    sampler = MemorySampler() if memory else None
    if sampler:
        sampler.__enter__()
    started = time.perf_counter()
    try:
        fn()
    finally:
        elapsed = time.perf_counter() - started
        if sampler:
            sampler.__exit__(None, None, None)
    record = {"engine": engine, "step": label, "rows": rows, "seconds": round(elapsed, 3),
              "rows_per_s": rows / elapsed, "note": note}
    if sampler:
        record.update(peak_rss_total=sampler.peak_total, peak_rss_process=sampler.peak_process)
    results.append(record)
    mem = f", peak {gib(sampler.peak_total)} total / {gib(sampler.peak_process)} largest process" if sampler else ""
    print(f"  {engine:5s} {label:34s} {rows:>12,} rows {elapsed:8.2f} s {rows / elapsed:>12,.0f} rows/s{mem}",
          flush=True)
    return elapsed


def ensure_data(rows: int, data_dir: str, chunk_rows: int) -> None:
    import score_month

    if os.path.isdir(data_dir) and glob.glob(os.path.join(data_dir, "*.parquet")):
        if score_month.parquet_rows(data_dir) == rows:
            print(f"data: {rows:,} rows in {data_dir} (reused)")
            return
    print(f"data: generating {rows:,} rows in {data_dir}")
    make_month.write_month(rows, data_dir, chunk_rows=chunk_rows)


def check_sample(output_dir: str, data_dir: str, sample_rows: int, seed: int = 0) -> dict:
    """Risk and drivers of a random sample of the job's output against xgboost."""
    import pyarrow.dataset as ds
    import xgboost as xgb

    from batch_checks import check_against_xgboost
    from medinfer.batch import get_model

    features = get_model(MODEL).feature_names
    out = ds.dataset(output_dir, format="parquet")
    total = out.count_rows()
    ids = ds.dataset(data_dir, format="parquet").to_table(columns=["appointment_id"])["appointment_id"].to_numpy()
    out_ids = out.to_table(columns=["appointment_id"])["appointment_id"].to_numpy()
    ids_ok = len(out_ids) == len(ids) and len(np.unique(out_ids)) == len(out_ids) \
        and np.array_equal(np.sort(out_ids), np.sort(ids))
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(ids, size=min(sample_rows, len(ids)), replace=False))
    import pyarrow as pa
    filt = ds.field("appointment_id").isin(pa.array(sample))
    inputs = ds.dataset(data_dir, format="parquet").to_table(filter=filt).to_pandas()
    output = out.to_table(filter=filt).to_pandas()
    booster = xgb.Booster()
    booster.load_model(MODEL)
    booster.set_param({"nthread": 2})

    def reference(frame):
        matrix = xgb.DMatrix(frame, missing=np.nan)
        return booster.predict(matrix), booster.predict(matrix, pred_contribs=True)[:, :-1]

    stats = check_against_xgboost(inputs, output, features, reference)
    stats.update(output_rows=total, ids_complete_and_unique=bool(ids_ok))
    assert ids_ok, "output ids differ from input ids"
    return stats


def run_dask(args, results: list) -> dict:
    import dask
    import dask.dataframe as dd
    import xgboost as xgb
    import xgboost.dask  # noqa: F401  (xgb.dask)
    from distributed import Client, LocalCluster, progress, wait

    from medinfer.dask import score_dask

    rows = args.rows
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           memory_limit=args.memory_limit, dashboard_address=None)
    client = Client(cluster)
    info = {}
    try:
        with dask.config.set({"dataframe.convert-string": False}):
            ddf = dd.read_parquet(args.data, split_row_groups=False)
            holder = {}

            def read():
                holder["data"] = ddf.persist()
                wait(holder["data"])

            timed("read Parquet -> worker memory", rows, read, results, "dask")
            data = holder["data"]
            booster = xgb.Booster()
            booster.load_model(MODEL)
            features = booster.feature_names

            def medinfer_risk():
                score_dask(data, MODEL, k=0)["risk"].sum().compute()

            def xgboost_risk():
                xgb.dask.inplace_predict(client, booster, data[features]).sum().compute()

            def medinfer_top3():
                scored = score_dask(data, MODEL, k=3)
                (scored["risk"].sum() + scored["contribution_1"].sum()).compute()

            best = {"medinfer": float("inf"), "xgboost": float("inf")}
            for i in range(args.repeat):
                best["medinfer"] = min(best["medinfer"], timed(f"scoring only: MedInfer (run {i + 1})", rows,
                                                               medinfer_risk, results, "dask"))
                best["xgboost"] = min(best["xgboost"], timed(f"scoring only: xgboost.dask (run {i + 1})", rows,
                                                             xgboost_risk, results, "dask",
                                                             "inplace_predict, nthread 1 per worker"))
            info["scoring_ratio"] = best["xgboost"] / best["medinfer"]
            info["medinfer_scoring_rows_per_s"] = rows / best["medinfer"]
            info["xgboost_scoring_rows_per_s"] = rows / best["xgboost"]
            print(f"  dask  scoring only, best of {args.repeat}: MedInfer {rows / best['medinfer']:,.0f} rows/s, "
                  f"xgboost.dask {rows / best['xgboost']:,.0f} rows/s: {info['scoring_ratio']:.2f}x")

            t3 = timed("risk + top-3 drivers: MedInfer", rows, medinfer_top3, results, "dask")
            info["medinfer_top3_rows_per_s"] = rows / t3

            n_ref = min(args.contribs_rows, rows)
            if n_ref:
                subset = data.partitions[:max(1, int(np.ceil(data.npartitions * n_ref / rows)))]
                sub_rows = int(subset.map_partitions(len).sum().compute())

                def xgboost_contribs():
                    xgb.dask.predict(client, booster, subset[features], pred_contribs=True).sum().compute()

                def medinfer_sub():
                    scored = score_dask(subset, MODEL, k=3)
                    (scored["risk"].sum() + scored["contribution_1"].sum()).compute()

                tx = timed("SHAP: xgboost.dask pred_contribs", sub_rows, xgboost_contribs, results, "dask",
                           "all contributions, no ranking")
                tm = timed("SHAP: MedInfer risk + top-3 (same rows)", sub_rows, medinfer_sub, results, "dask")
                info["explain_ratio"] = tx / tm
            del data, holder
            client.cancel(list(client.futures)) if client.futures else None

            out = os.path.join(args.work, "scored-dask")
            shutil.rmtree(out, ignore_errors=True)

            def full_job():
                frame = dd.read_parquet(args.data, split_row_groups=False)
                write = score_dask(frame, MODEL, k=3).to_parquet(
                    out, write_index=False, compute=False, name_function=lambda i: f"part-{i:05d}.parquet")
                future = client.compute(write)
                if not args.no_progress:
                    progress(future)
                    print()
                future.result()

            tj = timed("full job: Parquet -> risk+top-3 -> Parquet", rows, full_job, results, "dask")
            info["job_rows_per_s"] = rows / tj
            info["job_output"] = out
    finally:
        client.close()
        cluster.close()
    return info


def make_month_rows(path: str) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def run_spark(args, results: list) -> dict:
    from pyspark.sql import SparkSession

    from medinfer.spark import score_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    info = {}
    rows = args.rows
    spark = (SparkSession.builder.master(f"local[{args.workers}]").appName("medinfer-batch-bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false" if args.no_progress else "true")
             .config("spark.driver.memory", args.spark_driver_memory)
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_rows))
             .config("spark.sql.files.maxPartitionBytes", "16m")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    try:
        first = sorted(glob.glob(os.path.join(args.data, "*.parquet")))[0]

        def warm_up():
            score_spark(spark.read.parquet(first), MODEL, k=3).write.format("noop").mode("overwrite").save()

        # The first action of a fresh JVM spends 10-20 s in class loading and JIT, and
        # starts the Python workers: timed apart so the rows/s below are throughput.
        timed("warm-up: first file, first action", make_month_rows(first), warm_up, results, "spark",
              "JVM warm-up, Python workers start", memory=False)
        def risk_only():
            score_spark(spark.read.parquet(args.data), MODEL, k=0).write.format("noop").mode("overwrite").save()

        t0 = timed("scoring only: MedInfer -> noop sink", rows, risk_only, results, "spark",
                   "includes the Parquet read")
        info["scoring_rows_per_s"] = rows / t0
        out = os.path.join(args.work, "scored-spark")
        shutil.rmtree(out, ignore_errors=True)

        def full_job():
            score_spark(spark.read.parquet(args.data), MODEL, k=3).write.mode("overwrite").parquet(out)

        tj = timed("full job: Parquet -> risk+top-3 -> Parquet", rows, full_job, results, "spark")
        info["job_rows_per_s"] = rows / tj
        info["job_output"] = out
    finally:
        spark.stop()
    return info


def write_markdown(path: Path, meta: dict, results: list, dask_info: dict, spark_info: dict, checks: dict) -> None:
    lines = [
        "# Batch scoring benchmark: a month of appointments on Dask and Spark",
        "",
        f"`Benchmarks/batch_bench.py --rows {meta['rows']}` on {meta['date']}: {meta['cpu']}, "
        f"{meta['cores']} cores shared with other work (load average at start {meta['load']}), "
        f"{meta['workers']} single-threaded Dask worker processes / Spark local[{meta['workers']}]. "
        f"{meta['versions']}.",
        "",
        "Data: `examples/batch/make_month.py` (the no-show schema, 23 float32 features + "
        f"appointment_id, {meta['files']} Parquet files). Model: the bundled XGBoost no-show model "
        "(100 trees, depth 3). Peak memory: resident set of all the engine's processes "
        "(Dask workers + nannies; Spark's JVM + Python workers), and of the largest one.",
        "",
        "| engine | step | rows | seconds | rows/s | peak RSS, all processes | peak RSS, largest process | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(f"| {r['engine']} | {r['step']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} | "
                     f"{gib(r['peak_rss_total']) if 'peak_rss_total' in r else ''} | "
                     f"{gib(r['peak_rss_process']) if 'peak_rss_process' in r else ''} | {r['note']} |")
    lines += ["", "## Ratios", ""]
    if dask_info:
        lines.append(f"- Scoring alone (risk, data in worker memory), best of each: MedInfer "
                     f"{dask_info['medinfer_scoring_rows_per_s']:,.0f} rows/s vs xgboost.dask inplace_predict "
                     f"{dask_info['xgboost_scoring_rows_per_s']:,.0f} rows/s: **{dask_info['scoring_ratio']:.2f}x**.")
        if "explain_ratio" in dask_info:
            lines.append(f"- Explaining: MedInfer risk + top-3 drivers vs xgboost.dask pred_contribs alone on the "
                         f"same rows: **{dask_info['explain_ratio']:.2f}x**.")
        lines.append(f"- Full Dask job (Parquet -> risk + top-3 -> Parquet): {dask_info['job_rows_per_s']:,.0f} rows/s.")
    if spark_info:
        lines.append(f"- Full Spark job: {spark_info['job_rows_per_s']:,.0f} rows/s; Spark scoring only "
                     f"(with its Parquet read): {spark_info['scoring_rows_per_s']:,.0f} rows/s.")
    lines += ["", "## Correctness of the jobs' output", ""]
    for engine, stats in checks.items():
        lines.append(f"- {engine}: {stats['output_rows']:,} rows written, ids complete and unique: "
                     f"{stats['ids_complete_and_unique']}; on a random sample of {stats['rows']:,} rows: risk max "
                     f"|diff| vs xgboost {stats['risk_max_diff']:.1e}, contributions max |diff| "
                     f"{stats['contribution_max_diff']:.1e}, drivers identical to xgboost pred_contribs' ranking "
                     f"on {stats['identical_rows']:,} rows, float32 near-ties {stats['float32_near_ties']}.")
    lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=15_000_000)
    parser.add_argument("--data", default=None, help="Parquet directory (default /tmp/medinfer-month-ROWS, made if missing)")
    parser.add_argument("--work", default="/tmp/medinfer-batch-bench", help="output directory for the jobs")
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="6GiB", help="per Dask worker")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each scoring-only step (best kept)")
    parser.add_argument("--contribs-rows", type=int, default=1_000_000,
                        help="rows for the xgboost.dask pred_contribs reference (0: skip)")
    parser.add_argument("--check-rows", type=int, default=20_000)
    parser.add_argument("--batch-rows", type=int, default=65536, help="Spark Arrow batch rows")
    parser.add_argument("--spark-driver-memory", default="2g")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not write Benchmarks/results/batch.*")
    args = parser.parse_args()
    args.data = args.data or f"/tmp/medinfer-month-{args.rows}"
    os.makedirs(args.work, exist_ok=True)

    import dask
    import distributed
    import pyarrow
    import pyspark
    import xgboost

    versions = (f"Python {platform.python_version()}, dask/distributed {dask.__version__}/{distributed.__version__}, "
                f"pyspark {pyspark.__version__}, pyarrow {pyarrow.__version__}, xgboost {xgboost.__version__}, "
                f"pandas {pd.__version__}")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    meta = {"rows": args.rows, "date": datetime.date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
            "load": " / ".join(f"{x:.1f}" for x in os.getloadavg()), "workers": args.workers, "versions": versions}
    print(f"{args.rows:,} rows; {versions}; load {meta['load']}")
    ensure_data(args.rows, args.data, args.chunk_rows)
    meta["files"] = len(glob.glob(os.path.join(args.data, "*.parquet")))

    results: list = []
    checks: dict = {}
    dask_info = spark_info = {}
    if not args.skip_dask:
        print("dask:")
        dask_info = run_dask(args, results)
        checks["dask"] = check_sample(dask_info["job_output"], args.data, args.check_rows)
        print(f"  check: {checks['dask']}")
    if not args.skip_spark:
        print("spark:")
        spark_info = run_spark(args, results)
        checks["spark"] = check_sample(spark_info["job_output"], args.data, args.check_rows, seed=1)
        print(f"  check: {checks['spark']}")
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "batch.json").write_text(json.dumps(
            {"meta": meta, "results": results, "dask": dask_info, "spark": spark_info, "checks": checks},
            indent=2, default=str))
        write_markdown(RESULTS / "batch.md", meta, results, dask_info, spark_info, checks)
        print(f"wrote {RESULTS / 'batch.md'}")


if __name__ == "__main__":
    main()

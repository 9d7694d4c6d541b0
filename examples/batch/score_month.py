"""Scores and explains a month of appointments: Parquet in, Parquet out, on Dask or Spark.

Reads every Parquet file under INPUT (appointment_id + the 23 no-show features, as
make_month.py writes them), computes with libmedinfer the cancellation risk and the top-k
SHAP drivers of every row with the bundled XGBoost no-show model, writes OUTPUT (one
Parquet file per input partition: appointment_id, risk, driver_1, contribution_1, ...),
shows the engine's progress bar and prints rows/s.

    # Dask, local cluster of 2 single-threaded worker processes
    .venv/bin/python examples/batch/score_month.py --engine dask --input /tmp/month --output /tmp/scored
    # Dask, an existing cluster (paths must exist on every worker, or --ship)
    .venv/bin/python examples/batch/score_month.py --engine dask --scheduler tcp://host:8786 ...
    # Spark, local[2] (or under spark-submit: the master comes from spark-submit)
    .venv/bin/python examples/batch/score_month.py --engine spark --input /tmp/month --output /tmp/scored

See examples/batch/README.md for real clusters.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
if os.path.isdir(os.path.join(REPO, "python", "medinfer")):
    sys.path.insert(0, os.path.join(REPO, "python"))

DEFAULT_MODEL = os.path.join(REPO, "examples", "models", "noshow_xgb.json")


def parquet_rows(path: str) -> int:
    """Rows under a Parquet file or directory, from the footers (reads no data)."""
    import pyarrow.dataset as ds

    return ds.dataset(path, format="parquet").count_rows()


def run_dask(args: argparse.Namespace) -> float:
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster, progress

    from medinfer.dask import score_dask

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        # One thread per worker process: the native calls release the GIL, but the pandas
        # glue around them does not, so processes scale better than threads.
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=args.threads,
                               processes=True, memory_limit=args.memory_limit,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        with dask.config.set({"dataframe.convert-string": False}):
            ddf = dd.read_parquet(args.input, split_row_groups=False)
            scored = score_dask(ddf, args.model, k=args.k, id_column=args.id_column,
                                library_path=args.library, ship=args.ship, client=client)
            write = scored.to_parquet(args.output, write_index=False, compute=False,
                                      name_function=lambda i: f"part-{i:05d}.parquet")
        started = time.perf_counter()
        future = client.compute(write)
        if not args.no_progress:
            progress(future)
            print()
        future.result()
        return time.perf_counter() - started
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_spark(args: argparse.Namespace) -> float:
    from pyspark.sql import SparkSession

    from medinfer.spark import score_spark

    builder = (SparkSession.builder.appName("medinfer-score-month")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_rows))
               .config("spark.ui.showConsoleProgress", "false" if args.no_progress else "true")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.files.maxPartitionBytes", "64m"))
    if args.master:
        builder = builder.master(args.master)
    if args.master and args.master.startswith("local"):
        # Executors' Python = this interpreter (its numpy/pandas/pyarrow), unless set.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if args.driver_memory:
        builder = builder.config("spark.driver.memory", args.driver_memory)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        sdf = spark.read.parquet(args.input)
        scored = score_spark(sdf, args.model, k=args.k, id_column=args.id_column,
                             library_path=args.library, ship=args.ship)
        started = time.perf_counter()
        scored.write.mode("overwrite").parquet(args.output)
        return time.perf_counter() - started
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="Parquet file or directory")
    parser.add_argument("--output", required=True, help="output directory (replaced)")
    parser.add_argument("--engine", choices=("dask", "spark"), default="dask")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model file (default: the bundled no-show XGBoost)")
    parser.add_argument("--library", default=None,
                        help="absolute path of libmedinfer.so on the workers (default: the binding's search)")
    parser.add_argument("--k", type=int, default=3, help="drivers per row (default 3; 0 = risk only)")
    parser.add_argument("--id-column", default="appointment_id")
    parser.add_argument("--ship", action="store_true",
                        help="upload the .so and the model to the workers (Dask: Client.upload_file; "
                             "Spark: SparkContext.addFile, the default there)")
    parser.add_argument("--no-ship", dest="ship", action="store_false")
    parser.set_defaults(ship=None)
    parser.add_argument("--no-progress", action="store_true")
    dask_group = parser.add_argument_group("dask")
    dask_group.add_argument("--scheduler", help="scheduler address (default: a LocalCluster)")
    dask_group.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    dask_group.add_argument("--threads", type=int, default=1, help="threads per worker (default 1)")
    dask_group.add_argument("--memory-limit", default="auto", help="per worker, e.g. 2GiB (default auto)")
    spark_group = parser.add_argument_group("spark")
    spark_group.add_argument("--master", default=None,
                             help="Spark master (default: spark-submit's, else local[2])")
    spark_group.add_argument("--batch-rows", type=int, default=65536,
                             help="spark.sql.execution.arrow.maxRecordsPerBatch (default 65536)")
    spark_group.add_argument("--driver-memory", default=None)
    args = parser.parse_args(argv)
    if args.ship is None:
        args.ship = args.engine == "spark"
    if args.engine == "spark" and args.master is None and "SPARK_ENV_LOADED" not in os.environ \
            and "PYSPARK_SUBMIT_ARGS" not in os.environ:
        args.master = "local[2]"
    args.model = os.path.abspath(args.model)
    args.input = os.path.abspath(args.input) if "://" not in args.input else args.input
    if "://" not in args.output:
        args.output = os.path.abspath(args.output)
        shutil.rmtree(args.output, ignore_errors=True)

    rows = parquet_rows(args.input)
    print(f"{args.engine}: scoring {rows:,} rows from {args.input} with {os.path.basename(args.model)}, "
          f"top-{args.k} drivers -> {args.output}", flush=True)
    elapsed = run_dask(args) if args.engine == "dask" else run_spark(args)
    written = parquet_rows(args.output)
    print(f"{written:,} rows written in {elapsed:.1f} s: {written / elapsed:,.0f} rows/s", flush=True)
    if written != rows:
        print(f"error: read {rows:,} rows but wrote {written:,}", file=sys.stderr)
        sys.exit(1)
    return {"rows": rows, "seconds": elapsed, "rows_per_s": written / elapsed}


if __name__ == "__main__":
    main()

"""Writes a month of synthetic appointments with the no-show schema as Parquet, in chunks.

Each chunk is `noshow_data.make_noshow(rows, seed + chunk)` (the 23 model features, float32,
~5% missing in the incomplete columns) with an `appointment_id` column (int64, 0..N-1 in
order, unique) in front; chunk i is written to OUT/part-{i:05d}.parquet, so memory stays
at one chunk whatever the total.

    .venv/bin/python examples/batch/make_month.py --rows 15000000 --out /tmp/month
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models"))

from noshow_data import make_noshow  # noqa: E402

ID_COLUMN = "appointment_id"


def chunk_table(start: int, rows: int, seed: int) -> pa.Table:
    features, _ = make_noshow(rows, seed)
    features.insert(0, ID_COLUMN, np.arange(start, start + rows, dtype=np.int64))
    return pa.Table.from_pandas(features, preserve_index=False)


def write_month(rows: int, out: str, chunk_rows: int = 500_000, seed: int = 2026,
                row_group_rows: int | None = None, quiet: bool = False) -> list[str]:
    """Writes `rows` appointments to `out` (a directory, created) and returns the files."""
    if rows < 0 or chunk_rows <= 0:
        raise ValueError("rows must be >= 0 and chunk_rows > 0")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.startswith("part-") and name.endswith(".parquet"):
            os.remove(os.path.join(out, name))
    files = []
    started = time.perf_counter()
    for i, start in enumerate(range(0, rows, chunk_rows)):
        n = min(chunk_rows, rows - start)
        path = os.path.join(out, f"part-{i:05d}.parquet")
        pq.write_table(chunk_table(start, n, seed + i), path, row_group_size=row_group_rows or n)
        files.append(path)
        if not quiet:
            print(f"\r{start + n:,} / {rows:,} rows", end="", flush=True)
    if not quiet:
        elapsed = time.perf_counter() - started
        print(f"\nwrote {rows:,} rows in {len(files)} files to {out} ({elapsed:.1f} s)")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="appointments in all (default 1,000,000)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--chunk-rows", type=int, default=500_000, help="rows per file (default 500,000)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    write_month(args.rows, args.out, args.chunk_rows, args.seed)


if __name__ == "__main__":
    main()

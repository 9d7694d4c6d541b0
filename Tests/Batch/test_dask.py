"""End to end on Dask: the batch job on a local cluster of 2 worker processes, a worker
killed mid-job, malformed partitions."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import time

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from batch_checks import ID, check_against_xgboost  # noqa: E402
from conftest import MODEL, MONTH_ROWS  # noqa: E402

from medinfer import batch  # noqa: E402
from medinfer.dask import score_dask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, memory_limit="1GiB")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def month(month_dir):
    return pd.read_parquet(month_dir)


def features():
    return batch.get_model(MODEL).feature_names


def test_score_month_job_on_dask(client, month_dir, month, tmp_path, reference, capsys):
    import score_month

    out = str(tmp_path / "scored")
    result = score_month.main(["--engine", "dask", "--scheduler", client.scheduler.address,
                               "--input", month_dir, "--output", out, "--no-progress"])
    assert result["rows"] == MONTH_ROWS
    assert "rows/s" in capsys.readouterr().out
    scored = pd.read_parquet(out)
    assert len(glob.glob(os.path.join(out, "*.parquet"))) == MONTH_ROWS // 2_000
    stats = check_against_xgboost(month, scored, features(), reference)
    print(stats)


def _slow(frame):
    time.sleep(0.5)          # keeps the job running long enough to kill a worker in it
    return frame


def test_worker_killed_mid_job_loses_and_duplicates_nothing(client, month_dir, month, tmp_path, reference):
    out = str(tmp_path / "scored")
    ddf = dd.read_parquet(month_dir)
    slowed = ddf.map_partitions(_slow, meta=ddf._meta)
    scored = score_dask(slowed, MODEL, k=3, ship=True, client=client)   # shipped: restarted workers get the files too
    write = scored.to_parquet(out, write_index=False, compute=False,
                              name_function=lambda i: f"part-{i:05d}.parquet")
    future = client.compute(write)
    deadline = time.monotonic() + 60
    while not glob.glob(os.path.join(out, "*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = sorted(client.scheduler_info()["workers"])[0]
    pid = client.run(os.getpid, workers=[victim])[victim]
    assert not future.done(), "the job finished before the worker could be killed"
    os.kill(pid, signal.SIGKILL)
    future.result(timeout=120)
    assert len(glob.glob(os.path.join(out, "*.parquet"))) == ddf.npartitions
    stats = check_against_xgboost(month, pd.read_parquet(out), features(), reference)
    print(stats)
    # the nanny restarted the killed worker: two workers again
    client.wait_for_workers(2, timeout=60)


def test_malformed_parquet_file_fails_naming_the_column(client, month_dir, tmp_path):
    bad = str(tmp_path / "bad")
    shutil.copytree(month_dir, bad)
    victim = sorted(glob.glob(os.path.join(bad, "*.parquet")))[3]
    frame = pd.read_parquet(victim)
    frame["Age"] = frame["Age"].astype(str)                     # a column of strings in one file
    frame.to_parquet(victim, index=False)
    with pytest.raises(Exception) as error:
        score_dask(dd.read_parquet(bad), MODEL).compute()
    assert "'Age'" in str(error.value), str(error.value)
    assert isinstance(error.value, batch.PartitionSchemaError)


def test_partition_missing_a_column_fails_naming_it(client, month):
    parts = [month.iloc[i * 4_000:(i + 1) * 4_000] for i in range(3)]
    parts[1] = parts[1].drop(columns=["Waiting_Time_Minutes"])
    ddf = dd.from_map(lambda frame: frame, parts, meta=month.iloc[:0], enforce_metadata=False)
    with pytest.raises(batch.PartitionSchemaError, match="'Waiting_Time_Minutes'"):
        score_dask(ddf, MODEL).compute()


def test_dataframe_without_a_feature_fails_before_running(client, month):
    ddf = dd.from_pandas(month.drop(columns=["Hospital_Rating"]), npartitions=2)
    with pytest.raises(batch.PartitionSchemaError, match="'Hospital_Rating'"):
        score_dask(ddf, MODEL)

"""End to end on Spark (local[2]): the batch job through mapInPandas with Arrow, the .so
and model shipped with SparkContext.addFile, malformed inputs."""
from __future__ import annotations

import os
import shutil
import sys

import pandas as pd
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs a Java runtime (17+)", allow_module_level=True)

from batch_checks import check_against_xgboost  # noqa: E402
from conftest import MODEL, MONTH_ROWS, REPO  # noqa: E402

from medinfer import batch  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("medinfer-batch-test")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.memory", "1g")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def month(month_dir):
    return pd.read_parquet(month_dir)


def test_score_month_job_on_spark(spark, month_dir, month, tmp_path, reference, capsys):
    import score_month

    out = str(tmp_path / "scored")
    # The job reuses this session (getOrCreate) and stops it at the end; Spark then makes
    # a new context for the next test in the same JVM.
    result = score_month.main(["--engine", "spark", "--master", "local[2]", "--batch-rows", "5000",
                               "--input", month_dir, "--output", out, "--no-progress"])
    assert result["rows"] == MONTH_ROWS
    assert "rows/s" in capsys.readouterr().out
    scored = pd.read_parquet(out)
    stats = check_against_xgboost(month, scored, batch.get_model(MODEL).feature_names, reference)
    print(stats)


def _session(**conf):
    from pyspark.sql import SparkSession

    if conf and SparkSession.getActiveSession() is not None:
        SparkSession.getActiveSession().stop()              # static settings need a new context
    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def test_found_on_every_node_without_shipping(month, reference):
    from medinfer import _native
    from medinfer.spark import score_spark

    # Nodes where medinfer is installed: here, on the executors' PYTHONPATH.
    spark = _session(**{"spark.executorEnv.PYTHONPATH": os.path.join(REPO, "python")})
    sdf = spark.createDataFrame(month.iloc[:3_000])
    scored = score_spark(sdf, MODEL, k=2, ship=False, ship_package=False,
                         library_path=_native.library_path())
    out = scored.toPandas()
    assert list(out.columns) == batch.output_columns(2)
    check_against_xgboost(month.iloc[:3_000], out, batch.get_model(MODEL).feature_names, reference, k=2)


def test_string_column_fails_naming_it(month):
    from medinfer.spark import score_spark

    spark = _session()
    sdf = spark.createDataFrame(month.iloc[:100].assign(Hospital_Rating=lambda f: f["Hospital_Rating"].astype(str)))
    with pytest.raises(batch.PartitionSchemaError, match="'Hospital_Rating'"):
        score_spark(sdf, MODEL)
    with pytest.raises(batch.PartitionSchemaError, match="'Gender'"):
        score_spark(spark.createDataFrame(month.iloc[:100].drop(columns=["Gender"])), MODEL)


def test_malformed_parquet_file_fails_naming_the_column(month_dir, tmp_path):
    from medinfer.spark import score_spark

    bad = str(tmp_path / "bad")
    shutil.copytree(month_dir, bad)
    victim = os.path.join(bad, sorted(os.listdir(bad))[2])
    frame = pd.read_parquet(victim)
    frame["Age"] = frame["Age"].astype(str)
    frame.to_parquet(victim, index=False)
    spark = _session()
    with pytest.raises(Exception) as error:
        score_spark(spark.read.parquet(bad), MODEL).write.mode("overwrite").parquet(str(tmp_path / "out"))
    assert "Age" in str(error.value)

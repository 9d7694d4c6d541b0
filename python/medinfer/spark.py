"""Spark adapter: score and explain a Spark DataFrame with `medinfer.batch.score_frame`
through `mapInPandas` (Arrow record batches in, pandas DataFrames out).

    from pyspark.sql import SparkSession
    from medinfer.spark import score_spark
    spark = SparkSession.builder.getOrCreate()
    scored = score_spark(spark.read.parquet("/data/month"), "/opt/models/noshow_xgb.json", k=3)
    scored.write.parquet("/data/scored")

Only paths travel to the executors: each Python worker loads libmedinfer and the model
once, on its first batch, and keeps them (Spark reuses Python workers by default,
spark.python.worker.reuse=true).

Where the files come from, two ways:
  * shipped (`ship=True`, the default): the driver calls SparkContext.addFile for the .so
    and the model, and executors read their local copies through SparkFiles.get(name).
    With `ship_package=True` (default) the driver also zips this package and adds it with
    SparkContext.addPyFile, so executors need only numpy, pandas and pyarrow.
  * found on every node (`ship=False`): `model_path` and `library_path` are absolute
    paths that exist on every executor (shared filesystem, image, `pip install`); with
    library_path=None executors use the binding's search ($MEDINFER_LIBRARY, ...).

Arrow is required by mapInPandas; `score_spark` also turns on
spark.sql.execution.arrow.pyspark.enabled (for toPandas/createDataFrame) unless
`configure_arrow=False`. Batch size is spark.sql.execution.arrow.maxRecordsPerBatch
(Spark's default 10,000; 50,000-100,000 amortizes per-call costs better).

Importing this module imports pyspark; `import medinfer` does not.
"""
from __future__ import annotations

import os
import tempfile
import threading
import zipfile
from typing import Any, Iterator

from . import batch

__all__ = ["score_spark", "output_schema", "package_zip"]

_zip_lock = threading.Lock()
_zip_path: str | None = None


def package_zip() -> str:
    """A zip of this Python package (no native library), made once per driver process,
    for SparkContext.addPyFile."""
    global _zip_path
    with _zip_lock:
        if _zip_path is None or not os.path.exists(_zip_path):
            here = os.path.dirname(os.path.abspath(__file__))
            target = os.path.join(tempfile.mkdtemp(prefix="medinfer-pkg-"), "medinfer_pkg.zip")
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for name in sorted(os.listdir(here)):
                    if name.endswith(".py") or name == "py.typed":
                        archive.write(os.path.join(here, name), os.path.join("medinfer", name))
            _zip_path = target
    return _zip_path


def output_schema(id_field: Any, k: int) -> Any:
    """The Spark schema of score_frame's output with drivers as strings."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    fields = [id_field] if id_field is not None else []
    fields.append(StructField("risk", DoubleType(), False))
    for i in range(1, k + 1):
        fields.append(StructField(f"driver_{i}", StringType(), True))
        fields.append(StructField(f"contribution_{i}", DoubleType(), True))
    return StructType(fields)


def _scorer(model_path: str, k: int, id_column: str | None, library_path: str | None, shipped: bool,
            tie_tolerance: float):
    model_name = os.path.basename(model_path)
    library_name = os.path.basename(library_path) if library_path else None

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        from medinfer import batch as mbatch

        if shipped:
            from pyspark import SparkFiles

            model = SparkFiles.get(model_name)
            library = SparkFiles.get(library_name) if library_name else None
        else:
            model, library = model_path, library_path
        for frame in batches:
            out = mbatch.score_frame(frame, model, k=k, id_column=id_column, library_path=library,
                                     drivers_as="string", tie_tolerance=tie_tolerance)
            yield out.reset_index(drop=True)

    return score


def score_spark(sdf: Any, model_path: str | os.PathLike, k: int = 3,
                id_column: str | None = batch.DEFAULT_ID_COLUMN,
                library_path: str | os.PathLike | None = None, ship: bool = True,
                ship_package: bool = True, configure_arrow: bool = True,
                tie_tolerance: float = batch.TIE_TOLERANCE) -> Any:
    """A lazy Spark DataFrame with columns id, risk, driver_1, contribution_1, ... for
    every row of `sdf` (drivers as strings). The model is also loaded on the driver to
    read its feature names and check sdf's columns and types before any task runs."""
    spark = sdf.sparkSession
    sc = spark.sparkContext
    model_path, library, model, names = batch.driver_model(model_path, library_path, ship)
    k = min(k, len(names))

    from pyspark.sql.types import BooleanType, NumericType

    fields = {f.name: f for f in sdf.schema.fields}
    for name in ([id_column] if id_column is not None else []) + list(names):
        if name not in fields:
            raise batch.PartitionSchemaError(f"Spark DataFrame has no column {name!r} (the model needs "
                                             f"{id_column!r} and {len(names)} features)", name)
    for name in names:
        data_type = fields[name].dataType
        if not isinstance(data_type, (NumericType, BooleanType)):
            raise batch.PartitionSchemaError(f"feature column {name!r} has Spark type {data_type.simpleString()}; "
                                             f"expected numbers (NaN/null = missing)", name)
    if configure_arrow:
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    if ship:
        for path in (library, model_path):
            if path:
                sc.addFile(path)
        if ship_package:
            sc.addPyFile(package_zip())

    schema = output_schema(fields[id_column] if id_column is not None else None, k)
    needed = ([id_column] if id_column is not None else []) + list(names)
    return sdf.select(*needed).mapInPandas(_scorer(model_path, k, id_column, library, ship, tie_tolerance),
                                           schema=schema)

"""Dask adapter: score and explain a dask DataFrame with `medinfer.batch.score_frame`.

    from distributed import Client
    from medinfer.dask import score_dask
    client = Client("tcp://scheduler:8786")          # or Client(LocalCluster(...))
    ddf = dask.dataframe.read_parquet("s3://.../month/")
    scored = score_dask(ddf, "/opt/models/noshow_xgb.json", k=3)
    scored.to_parquet("s3://.../scored/")

Each partition becomes one `score_frame` call (map_partitions with an explicit meta, so
nothing is computed to infer the output schema). Only paths travel to the workers: each
worker process loads libmedinfer and the model once, on its first partition, and keeps
them (see medinfer.batch.get_model).

Where the files come from, two ways:
  * found on every node (default): `model_path` and `library_path` are absolute paths that
    exist on every worker (shared filesystem, container image, `pip install`). With
    library_path=None a worker uses the binding's search ($MEDINFER_LIBRARY, next to the
    package, <repo>/.build/release).
  * shipped (`ship=True`, needs a distributed Client): the client uploads the .so and the
    model file to every worker's local directory (`Client.upload_file(load=False)`, which
    also reaches workers that join or restart later) and workers use those copies.
The medinfer package itself must be importable on the workers (installed, on PYTHONPATH,
or uploaded as a zip with `Client.upload_file`).

Importing this module imports dask; `import medinfer` does not.
"""
from __future__ import annotations

import os
from typing import Any

import dask.dataframe as dd

from . import batch

__all__ = ["score_dask", "ship_files"]


def _worker_path(path: str, shipped: bool) -> str:
    if not shipped:
        return path
    from distributed import get_worker

    return os.path.join(get_worker().local_directory, os.path.basename(path))


def _score_partition(df: Any, model_path: str, k: int, id_column: str | None,
                     library_path: str | None, shipped: bool, tie_tolerance: float) -> Any:
    model = _worker_path(model_path, shipped)
    library = _worker_path(library_path, shipped) if library_path else None
    return batch.score_frame(df, model, k=k, id_column=id_column, library_path=library,
                             tie_tolerance=tie_tolerance)


def ship_files(client: Any, *paths: str | os.PathLike) -> None:
    """Uploads files (the .so, the model) to every worker's local directory, now and for
    workers that join later."""
    for path in paths:
        client.upload_file(os.path.abspath(os.fspath(path)), load=False)


def score_dask(ddf: dd.DataFrame, model_path: str | os.PathLike, k: int = 3,
               id_column: str | None = batch.DEFAULT_ID_COLUMN,
               library_path: str | os.PathLike | None = None, ship: bool = False,
               client: Any = None, tie_tolerance: float = batch.TIE_TOLERANCE) -> dd.DataFrame:
    """A lazy dask DataFrame of score_frame's columns (id, risk, driver_i, contribution_i)
    for every partition of `ddf`, same partitions and index.

    The model is also loaded here, on the client, to read its feature names (the meta's
    driver categories) and to check ddf's columns before any task runs. `ship=True`
    uploads the library and the model with `client` (default: the current Client)."""
    model_path, library, model, names = batch.driver_model(model_path, library_path, ship)

    columns = [str(c) for c in ddf.columns]
    for name in ([id_column] if id_column is not None else []) + list(names):
        if name not in columns:
            raise batch.PartitionSchemaError(f"dask DataFrame has no column {name!r} (the model needs "
                                             f"{id_column!r} and {len(names)} features)", name)
    if ship:
        if client is None:
            from distributed import get_client

            client = get_client()
        ship_files(client, *(p for p in (library, model_path) if p))

    id_dtype = ddf.dtypes[id_column] if id_column is not None else None
    meta = batch.output_meta(names, min(k, len(names)), id_column, id_dtype, index=ddf._meta.index)
    return ddf.map_partitions(_score_partition, model_path, k, id_column, library, ship, tie_tolerance,
                              meta=meta, enforce_metadata=False)

"""The exception every binding call raises when libmedinfer reports a failure."""
from __future__ import annotations

from . import _native


class MedInferError(Exception):
    """An error reported by libmedinfer: `status` is the C status code, `status_name` its
    name (e.g. "MEDINFER_ERR_PARSE") and the message names the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.status_name = _native.STATUS_NAMES.get(status, "MEDINFER_UNKNOWN_STATUS")


def check(status: int) -> None:
    if status != _native.OK:
        message = _native.library().medinfer_last_error().decode("utf-8", "replace")
        raise MedInferError(status, message)

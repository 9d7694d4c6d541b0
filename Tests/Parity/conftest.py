"""pytest configuration of the parity suite.

Run from the repository root (after the library is built):

    .venv/bin/python -m pytest Tests/Parity -q          # summary table at the end
    .venv/bin/python -m pytest Tests/Parity -s          # also a line per comparison

The `medinfer` package is imported from <repo>/python; it loads
<repo>/.build/release/libmedinfer.so (or whatever the binding is pointed at).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for p in (os.path.join(REPO, "python"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import parity_utils  # noqa: E402

#: Threads the reference libraries may use while training (the suite targets 2 cores).
THREADS = 2

_started = time.monotonic()


@pytest.fixture(scope="session")
def medinfer():
    """The Python binding. A missing binding or library is a failure, not a skip: a parity
    suite that silently skips proves nothing."""
    try:
        import medinfer as mod
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"cannot import medinfer from {os.path.join(REPO, 'python')}: {exc!r}")
    return mod


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A fresh directory for the model files the tests train and save."""
    return tmp_path_factory.mktemp("parity_models")


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's name: reproducible, different per test."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.name)) % (2**32)
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def threads():
    return THREADS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = parity_utils.RESULTS
    if not results:
        return
    terminalreporter.section("MedInfer parity: max |medinfer - reference| per model and output")
    terminalreporter.write_line(parity_utils.format_table(results))
    bad = [r for r in results if not r.ok]
    terminalreporter.write_line(
        f"{len(results)} comparisons, {len(bad)} over tolerance; "
        f"wall time {time.monotonic() - _started:.1f} s")

"""MedInfer against onnxruntime on the ICU sequence models (examples/models/icu_*.onnx:
Keras LSTM, GRU as a tf2onnx Loop, bidirectional LSTM, two-branch static + LSTM, and a
torch-style fused GRU), on fresh synthetic vitals in raw clinical units with extreme
values planted:

  (a) whole sequences through Network.run, batch 1 and 64, 48 steps;
  (b) uneven lengths through run_sequences (medinfer_sequence_run): the reference is
      onnxruntime on each sequence cut to its own length;
  (c) streams (medinfer_stream_*): after every step the output equals the batch output
      on the prefix so far, or on the last `window` steps in window mode;
  (d) bad input through the binding raises the documented MedInferError, and a rejected
      sample leaves the stream as it was.

Every comparison is absolute, within 1e-5 (the outputs are probabilities), and lands in
the summary table at the end of the run.
"""
from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "examples" / "models"
for path in (ROOT / "python", MODELS_DIR, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import medinfer  # noqa: E402
import parity_utils  # noqa: E402
from icu_data import extreme_vitals, make_cohort, make_static  # noqa: E402

TOLERANCE = 1e-5
STEPS = 48
FEATURES = 8
FAMILY = "sequence"

#: model stem -> (has the static branch, has a bidirectional recurrence)
MODELS = {
    "icu_lstm": (False, False),
    "icu_gru": (False, False),          # tf2onnx Loop with the GRU cell in its body
    "icu_bilstm": (False, True),
    "icu_two_branch": (True, False),
    "icu_gru_fused": (False, False),    # one GRU op, linear_before_reset=1, torch layout
}


# --------------------------------------------------------------------------------------
# Models, references, data
# --------------------------------------------------------------------------------------

class _Networks(dict):
    """name -> medinfer.Network, loaded on first use, so that a model the library cannot
    load fails its own tests only."""

    def __missing__(self, name):
        network = self[name] = medinfer.Network.load(MODELS_DIR / f"{name}.onnx")
        return network


@pytest.fixture(scope="module")
def networks():
    loaded = _Networks()
    yield loaded
    for network in loaded.values():
        network.close()


@pytest.fixture(scope="module")
def references():
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return {name: ort.InferenceSession(str(MODELS_DIR / f"{name}.onnx"), options,
                                       providers=["CPUExecutionProvider"]) for name in MODELS}


def reference(session, vitals: np.ndarray, static: np.ndarray | None = None) -> np.ndarray:
    feeds = {"vitals": np.ascontiguousarray(vitals, dtype=np.float32)}
    if static is not None:
        feeds["static"] = np.ascontiguousarray(static, dtype=np.float32)
    return session.run(None, feeds)[0]


def extreme_static(rng: np.random.Generator, patients: int) -> np.ndarray:
    """Static rows with a few at the edges (18 and 105 years, 140 and 210 cm, 35 and 250 kg)."""
    static = make_static(rng, patients)
    edges = np.array([[0, 1], [18, 105], [140, 210], [35, 250]], dtype=np.float32)
    mask = rng.random(static.shape) < 0.2
    values = edges[np.arange(4)[None, :], rng.integers(0, 2, static.shape)]
    static[mask] = values[mask]
    return static


def cohort(rng: np.random.Generator, patients: int, steps: int = STEPS):
    """Fresh patients: half ordinary, half with extreme vitals planted (at least one of each)."""
    ordinary = (patients + 1) // 2
    vitals = np.concatenate([make_cohort(rng, ordinary, steps)[0],
                             extreme_vitals(rng, patients - ordinary, steps)]) if patients > 1 \
        else extreme_vitals(rng, 1, steps)
    return np.ascontiguousarray(vitals), extreme_static(rng, patients)


def feeds_for(name: str, vitals: np.ndarray, static: np.ndarray) -> dict[str, np.ndarray]:
    has_static, _ = MODELS[name]
    return {"static": static, "vitals": vitals} if has_static else {"vitals": vitals}


def record(model: str, output: str, got, expected, X=None):
    return parity_utils.compare(FAMILY, model, output, np.asarray(got, dtype=np.float64),
                                np.asarray(expected, dtype=np.float64), X=X, tolerance=TOLERANCE)


# --------------------------------------------------------------------------------------
# (a) whole sequences
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("batch", [1, 64])
def test_whole_sequences_match_onnxruntime(name, batch, networks, references, rng):
    vitals, static = cohort(rng, batch)
    has_static, _ = MODELS[name]
    expected = reference(references[name], vitals, static if has_static else None)
    got = networks[name].run(feeds_for(name, vitals, static))["risk"]
    parity_utils.assert_results(record(name, f"run b={batch}", got, expected))


# --------------------------------------------------------------------------------------
# (b) uneven lengths
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_uneven_lengths_match_each_sequence_cut_to_its_length(name, networks, references, rng):
    batch = 24
    vitals, static = cohort(rng, batch)
    lengths = rng.integers(1, STEPS + 1, batch)
    lengths[:3] = [1, STEPS, 2]                  # the edges, always
    padded = vitals.copy()
    for i, length in enumerate(lengths):         # past a sequence's end: garbage, NaN too
        padded[i, length:] = np.where(rng.random((STEPS - length, FEATURES)) < 0.5, np.nan, 1e30)
    has_static, _ = MODELS[name]
    expected = np.concatenate([
        reference(references[name], vitals[i:i + 1, :length], static[i:i + 1] if has_static else None)
        for i, length in enumerate(lengths)])
    got = networks[name].run_sequences(padded, lengths=lengths, static=static if has_static else None)
    # without lengths every sequence is max_steps long
    full = networks[name].run_sequences(vitals, static={"static": static} if has_static else None)
    parity_utils.assert_results(
        record(name, "uneven", got, expected, X=lengths[:, None]),
        record(name, "max_steps", full, reference(references[name], vitals, static if has_static else None)))


# --------------------------------------------------------------------------------------
# (c) streams
# --------------------------------------------------------------------------------------

def stream_against_prefixes(name, network, session, vitals, static, mode, window):
    """Pushes every step of every sequence; returns (got, expected) [sequences * steps, 1]
    where expected is onnxruntime on steps max(0, t - window + 1)..t (window = None: 0..t)."""
    has_static, _ = MODELS[name]
    got, expected = [], []
    for i in range(vitals.shape[0]):
        with medinfer.Stream(network, mode=mode, window=window or 48) as stream:
            if has_static:
                stream.set_static(static[i])
            for t in range(vitals.shape[1]):
                got.append(stream.push(vitals[i, t]))
                start = 0 if window is None else max(0, t - window + 1)
                expected.append(reference(session, vitals[i:i + 1, start:t + 1],
                                          static[i:i + 1] if has_static else None)[0])
            assert stream.steps == vitals.shape[1]
    return np.array(got), np.array(expected)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_stream_output_after_each_step_equals_the_prefix_output(name, networks, references, rng):
    vitals, static = cohort(rng, 3)
    _, bidirectional = MODELS[name]
    # AUTO: exact for unidirectional models; a bidirectional one falls back to a window of
    # the default 48 steps, which at T = 48 still covers the whole prefix.
    got, expected = stream_against_prefixes(name, networks[name], references[name], vitals, static,
                                            mode="auto", window=None)
    parity_utils.assert_results(record(name, "stream auto", got, expected))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_stream_window_mode_equals_the_last_window_steps(name, networks, references, rng):
    window = 16
    vitals, static = cohort(rng, 2)
    got, expected = stream_against_prefixes(name, networks[name], references[name], vitals, static,
                                            mode="window", window=window)
    parity_utils.assert_results(record(name, f"stream w={window}", got, expected))


def test_stream_reset_starts_over_and_keeps_statics(networks, references, rng):
    name = "icu_two_branch"
    vitals, static = cohort(rng, 1)
    with medinfer.Stream(networks[name]) as stream:
        stream.set_static(static[0], name="static")
        first = [stream.push(v) for v in vitals[0, :10]]
        stream.reset()
        assert stream.steps == 0
        again = [stream.push(v) for v in vitals[0, :10]]
    np.testing.assert_array_equal(np.array(first), np.array(again))


# --------------------------------------------------------------------------------------
# (d) bad input
# --------------------------------------------------------------------------------------

def raises(status_name: str):
    """pytest.raises for a MedInferError with this status (checked after the block)."""
    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(medinfer.MedInferError)
            self._info = self._ctx.__enter__()
            return self._info

        def __exit__(self, *exc):
            suppressed = self._ctx.__exit__(*exc)
            if suppressed:
                assert self._info.value.status_name == status_name, \
                    f"expected {status_name}, got {self._info.value.status_name}: {self._info.value}"
            return suppressed
    return _Check()


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejected_sample_leaves_the_stream_unchanged(name, bad, networks, rng):
    vitals, static = cohort(rng, 1)
    has_static, _ = MODELS[name]
    clean = medinfer.Stream(networks[name])
    skipped = medinfer.Stream(networks[name])
    if has_static:
        clean.set_static(static[0])
        skipped.set_static(static[0])
    for t in range(5):
        clean.push(vitals[0, t])
        skipped.push(vitals[0, t])
    sample = vitals[0, 5].copy()
    index = int(rng.integers(FEATURES))
    sample[index] = bad
    with raises("MEDINFER_ERR_INVALID_ARGUMENT") as error:
        skipped.push(sample)
    assert str(index) in str(error.value), f"the message should name value {index}: {error.value}"
    assert skipped.steps == 5
    for t in range(5, 10):
        np.testing.assert_array_equal(skipped.push(vitals[0, t]), clean.push(vitals[0, t]))
    clean.close()
    skipped.close()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_wrong_feature_count_is_a_shape_mismatch(name, networks, rng):
    vitals, static = cohort(rng, 2)
    has_static, _ = MODELS[name]
    network = networks[name]
    with medinfer.Stream(network) as stream:
        if has_static:
            stream.set_static(static[0])
        for count in (FEATURES - 1, FEATURES + 1, 0):
            with raises("MEDINFER_ERR_SHAPE_MISMATCH"):
                stream.push(np.zeros(count, dtype=np.float32))
        assert stream.steps == 0
        stream.push(vitals[0, 0])           # still usable
        assert stream.steps == 1
    with raises("MEDINFER_ERR_SHAPE_MISMATCH"):
        network.run_sequences(vitals[:, :, :7], static=static if has_static else None)


def test_static_input_missing_or_wrong(networks, rng):
    network = networks["icu_two_branch"]
    vitals, static = cohort(rng, 2)
    with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
        network.run_sequences(vitals)                                    # static missing
    with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
        network.run_sequences(vitals, static={"static": static, "nope": static})   # unknown
    with raises("MEDINFER_ERR_SHAPE_MISMATCH"):
        network.run_sequences(vitals, static=static[:, :3])              # row of 3, not 4
    with pytest.raises(medinfer.MedInferError):
        network.run({"vitals": vitals})                                  # plain run, too
    with medinfer.Stream(network) as stream:
        with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
            stream.push(vitals[0, 0])                                    # not set yet
        assert stream.steps == 0
        with raises("MEDINFER_ERR_SHAPE_MISMATCH"):
            stream.set_static(static[0, :3])
        with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
            stream.set_static(static[0], name="nope")
        with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
            stream.set_static([1, np.nan, 170, 70])
        stream.set_static(static[0])
        stream.push(vitals[0, 0])
        assert stream.steps == 1
    with medinfer.Stream(networks["icu_lstm"]) as stream:                # no static input at all
        with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
            stream.set_static(static[0])


def test_bad_lengths_and_options(networks, rng):
    network = networks["icu_lstm"]
    vitals, _ = cohort(rng, 3)
    for lengths in ([0, 5, 5], [5, STEPS + 1, 5], [-1, 5, 5]):
        with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
            network.run_sequences(vitals, lengths=lengths)
    for window in (0, 4097):
        with raises("MEDINFER_ERR_INVALID_ARGUMENT"):
            medinfer.Stream(network, mode="window", window=window)
    with pytest.raises(ValueError):
        medinfer.Stream(network, mode="sideways")


def test_not_a_sequence_model_and_another_models_stream(networks):
    cnn = medinfer.Network.load(MODELS_DIR / "skin_cnn_300.onnx")
    with raises("MEDINFER_ERR_UNSUPPORTED"):
        medinfer.Stream(cnn)
    cnn.close()
    # A stream pushed with a model it was not created from (only the C API lets a host
    # get this wrong: the binding always passes the stream's own network).
    stream = medinfer.Stream(networks["icu_lstm"])
    lib = medinfer._native.library()
    sample = np.zeros(FEATURES, dtype=np.float32)
    out = np.zeros(4, dtype=np.float32)
    count = ctypes.c_size_t()
    status = lib.medinfer_stream_push(networks["icu_gru_fused"]._handle, stream._handle, sample.ctypes.data,
                                      FEATURES, out.ctypes.data, out.size, ctypes.byref(count))
    assert medinfer._native.STATUS_NAMES[status] == "MEDINFER_ERR_INVALID_ARGUMENT"
    assert stream.steps == 0
    stream.close()
    stream.close()                       # twice is fine
    with pytest.raises(ValueError):
        stream.push(sample)

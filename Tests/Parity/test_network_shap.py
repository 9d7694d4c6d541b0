"""Shapley explanations of networks (medinfer_explain_sequence, medinfer_stream_explain,
medinfer_explain_image through the Python binding) against a brute force in onnxruntime
(shapley_reference.py: every coalition evaluated, exact Shapley weights):

  (1) exact values of the ICU sequence models (Keras LSTM, GRU as a Loop, bidirectional
      LSTM, two-branch static + LSTM, fused GRU) equal the brute force within 1e-5: one
      background row, three rows, one reference sample [F], a masked suffix (the prefix
      keeps the explained values), two time windows, static players;
  (2) additivity: base + sum(values) is the model output on the explained input, for
      exact and permutation values alike;
  (3) streams: the explanation of the latest output equals the brute force on the model
      run over the whole history with the last steps masked, and the stream goes on as if
      nothing had been asked; a bidirectional (window) stream over its window;
  (4) images (a small CNN built here): exact values over a 2 x 5 grid equal the brute
      force (the model input masked with its mean colour), permutation sampling converges,
      per-pixel values and a caller segmentation agree with the grid;
  (5) agreement with shap.KernelExplainer on 64 segments (statistical, over seeds);
  (6) bad input raises MedInferError (or ValueError in Python), never crashes.

Comparisons land in the parity summary table (family "netshap").
"""
from __future__ import annotations

import struct
import sys
import time
import zlib
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
import shapley_reference as ref  # noqa: E402
from icu_data import make_cohort  # noqa: E402

TOLERANCE = 1e-5
FAMILY = "netshap"
FEATURES = 8
STEPS = 24

#: model stem -> has the static branch
MODELS = {"icu_lstm": False, "icu_gru": False, "icu_bilstm": False, "icu_two_branch": True,
          "icu_gru_fused": False}


# --------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------

def _ort_session(source):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class _Loaded(dict):
    def __init__(self, load):
        super().__init__()
        self._load = load

    def __missing__(self, name):
        value = self[name] = self._load(name)
        return value


@pytest.fixture(scope="module")
def networks():
    loaded = _Loaded(lambda name: medinfer.Network.load(MODELS_DIR / f"{name}.onnx"))
    yield loaded
    for network in loaded.values():
        network.close()


@pytest.fixture(scope="module")
def sessions():
    return _Loaded(lambda name: _ort_session(str(MODELS_DIR / f"{name}.onnx")))


def record(model: str, case: str, explanation, values, base, extra_tolerance: float = 0.0):
    """Compares (values; base) row by row within TOLERANCE and records the result."""
    got = np.vstack([explanation.values, explanation.base_values[None]])
    expected = np.vstack([values, base[None]])
    return parity_utils.compare(FAMILY, model, case, got, expected, tolerance=TOLERANCE + extra_tolerance)


def check_additive(model: str, case: str, explanation, model_output):
    """base + sum(values) equals the model's output on the explained input."""
    total = explanation.base_values + explanation.values.sum(axis=0)
    result = parity_utils.compare(FAMILY, model, f"{case} additivity", total[None],
                                  np.asarray(model_output, dtype=np.float64).reshape(1, -1), tolerance=TOLERANCE)
    assert np.allclose(explanation.output, total, rtol=0, atol=1e-12)
    return result


def cohort(seed: int, patients: int, steps: int = STEPS):
    vitals, static, _ = make_cohort(np.random.default_rng(seed), patients, steps)
    return np.ascontiguousarray(vitals), np.ascontiguousarray(static)


def model_output(session, vitals, static=None):
    feeds = {"vitals": np.ascontiguousarray(vitals[None], dtype=np.float32)}
    if static is not None:
        feeds["static"] = np.ascontiguousarray(np.asarray(static, np.float32)[None])
    return session.run(None, feeds)[0][0]


# --------------------------------------------------------------------------------------
# (1) + (2) sequences: exact values against the brute force
# --------------------------------------------------------------------------------------

#: case -> (background rows (0: one reference sample [F]), window_steps of a single window)
SEQUENCE_CASES = {
    "1 row": (1, 0),
    "3 rows": (3, 0),
    "sample [F]": (0, 0),
    "suffix 6": (1, 6),   # steps 0..17 keep x's values
}


@pytest.mark.parametrize("case", list(SEQUENCE_CASES))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_sequence_exact_values_equal_brute_force(name, case, networks, sessions):
    rows, window_steps = SEQUENCE_CASES[case]
    has_static = MODELS[name]
    vitals, static = cohort(11 + len(case), 5)
    x, s = vitals[0], static[0]
    if rows:
        background = vitals[1:1 + rows]
        reference_rows = background
        bg_static = static[1:1 + rows]
    else:
        background = vitals[1:].mean(axis=(0, 1)).astype(np.float32)       # [F]: "normal" values
        reference_rows = background[None, None]
        bg_static = static[1:2]
    spans = ref.time_windows(STEPS, 1, window_steps)
    make = ref.sequence_feeds(x, reference_rows, spans, static=s if has_static else None,
                              background_static=bg_static if has_static else None)
    players = FEATURES + (4 if has_static else 0)
    values, base, full = ref.brute_force_shapley(sessions[name], make, players, rows=reference_rows.shape[0])
    method = "auto" if case == "1 row" else "exact"   # auto is exact up to 16 players
    got = networks[name].explain_sequence(x, s if has_static else None, background,
                                          bg_static if has_static else None, method=method,
                                          window_steps=window_steps)
    assert got.values.shape == (players, 1) and got.base_values.shape == (1,)
    expected_names = ([f"static[{j}]" for j in range(4)] if has_static else []) + \
        [f"vitals[{c}]" for c in range(FEATURES)]
    assert got.players == expected_names
    output = model_output(sessions[name], x, s if has_static else None)
    parity_utils.assert_results(record(name, case, got, values, base), check_additive(name, case, got, output))
    assert np.allclose(full, output, atol=1e-6)


@pytest.mark.parametrize("name", ["icu_lstm", "icu_gru", "icu_gru_fused"])
def test_two_time_windows_with_an_unmasked_prefix(name, networks, sessions):
    """16 players (8 channels x 2 windows of 6 steps) over a 14-step sequence: steps 0-1
    always keep the explained values."""
    steps = 14
    vitals, _ = cohort(23, 2, steps)
    x, background = vitals[0], vitals[1:2]
    spans = ref.time_windows(steps, 2, 6)
    assert spans == [(2, 7), (8, 13)]
    values, base, _ = ref.brute_force_shapley(sessions[name], ref.sequence_feeds(x, background, spans), 16)
    got = networks[name].explain_sequence(x, background=background, method="exact", time_windows=2, window_steps=6)
    assert got.players[0] == "vitals[0] t2..7" and got.players[15] == "vitals[7] t8..13", got.players
    parity_utils.assert_results(record(name, "2 windows x 6", got, values, base),
                                check_additive(name, "2 windows x 6", got, model_output(sessions[name], x)))


def test_two_branch_static_players_with_two_background_rows(networks, sessions):
    """12 players: 4 static columns then 8 channels; two background patients."""
    name = "icu_two_branch"
    vitals, static = cohort(31, 3)
    x, s = vitals[0], static[0]
    background, bg_static = vitals[1:3], static[1:3]
    make = ref.sequence_feeds(x, background, ref.time_windows(STEPS, 1, 0), static=s, background_static=bg_static)
    values, base, _ = ref.brute_force_shapley(sessions[name], make, 12, rows=2)
    got = networks[name].explain_sequence(x, {"static": s}, background, {"static": bg_static}, method="exact")
    assert got.players[:4] == ["static[0]", "static[1]", "static[2]", "static[3]"]
    parity_utils.assert_results(record(name, "statics, 2 rows", got, values, base),
                                check_additive(name, "statics, 2 rows", got, model_output(sessions[name], x, s)))


@pytest.mark.parametrize("name", ["icu_lstm", "icu_two_branch", "icu_bilstm"])
def test_permutation_values_are_additive_and_near_exact(name, networks, sessions):
    has_static = MODELS[name]
    vitals, static = cohort(41, 3)
    x, s = vitals[0], static[0]
    kwargs = dict(static=s, background_static=static[1:3]) if has_static else {}
    exact = networks[name].explain_sequence(x, background=vitals[1:3], method="exact", **kwargs)
    first = networks[name].explain_sequence(x, background=vitals[1:3], method="permutation", budget=400, seed=5,
                                            **kwargs)
    again = networks[name].explain_sequence(x, background=vitals[1:3], method="permutation", budget=400, seed=5,
                                            **kwargs)
    other = networks[name].explain_sequence(x, background=vitals[1:3], method="permutation", budget=400, seed=6,
                                            **kwargs)
    output = model_output(sessions[name], x, s if has_static else None)
    parity_utils.assert_results(check_additive(name, "permutation", first, output),
                                check_additive(name, "permutation seed 6", other, output))
    assert np.array_equal(first.values, again.values), "same seed, different values"
    assert not np.array_equal(first.values, other.values), "another seed gave the same values"
    assert np.allclose(first.base_values, exact.base_values, atol=TOLERANCE)
    scale = np.abs(exact.values).max()
    error = np.abs(first.values - exact.values).max()
    print(f"  {name}: permutation (budget 400) max |error| {error:.2e}, largest |value| {scale:.2e}")
    assert error <= 0.25 * scale + 1e-6


# --------------------------------------------------------------------------------------
# (3) streams
# --------------------------------------------------------------------------------------

def test_stream_explanation_equals_brute_force_over_the_whole_history(networks, sessions):
    name = "icu_lstm"
    network = networks[name]
    vitals, _ = cohort(53, 2, 40)
    samples = vitals[0]
    reference = vitals[1].mean(axis=0).astype(np.float32)
    explained = medinfer.Stream(network, explain_steps=12)
    twin = medinfer.Stream(network, explain_steps=12)     # never explains
    plain = medinfer.Stream(network)                       # keeps nothing extra
    for t in range(30):
        a, b, c = explained.push(samples[t]), twin.push(samples[t]), plain.push(samples[t])
        assert np.array_equal(a, b) and np.allclose(a, c, atol=1e-6)
    started = time.perf_counter()
    got = explained.explain(reference, method="exact", time_windows=2, window_steps=6)
    elapsed = time.perf_counter() - started
    # The brute force: the model on all 30 steps, steps 18..29 masked in two windows.
    spans = [(18, 23), (24, 29)]
    values, base, full = ref.brute_force_shapley(sessions[name], ref.sequence_feeds(samples[:30], reference[None, None],
                                                                                    spans), 16)
    assert got.players[0] == "vitals[0] t-11..-6" and got.players[8] == "vitals[0] t-5..0", got.players
    print(f"  stream explanation, 16 players exact: {elapsed * 1e3:.0f} ms")
    output = model_output(sessions[name], samples[:30])
    parity_utils.assert_results(record(name, "stream 2 x 6 of 30", got, values, base),
                                check_additive(name, "stream 2 x 6 of 30", got, output))
    assert explained.steps == 30
    # Explaining changed nothing: the stream goes on exactly as its twin.
    explained.explain(reference, method="permutation", budget=100, seed=1)
    for t in range(30, 40):
        a, b = explained.push(samples[t]), twin.push(samples[t])
        assert np.array_equal(a, b), f"step {t}: {a} after explaining, {b} without"
    # ...and the explanation of the latest output moves with it (steps 28..39 masked).
    later = explained.explain(reference, method="exact", window_steps=12)
    values, base, _ = ref.brute_force_shapley(sessions[name], ref.sequence_feeds(samples, reference[None, None],
                                                                                 [(28, 39)]), 8)
    parity_utils.assert_results(record(name, "stream 12 of 40", later, values, base))
    for stream in (explained, twin, plain):
        stream.close()


def test_stream_default_windows_split_the_steps_consumed(networks, sessions):
    """window_steps = 0 splits min(explain_steps, steps consumed) steps evenly."""
    name = "icu_lstm"
    vitals, _ = cohort(57, 2, 8)
    reference = vitals[1, 0]
    with medinfer.Stream(networks[name], explain_steps=12) as bed:
        for sample in vitals[0]:
            bed.push(sample)
        got = bed.explain(reference, method="exact", time_windows=2)       # 8 consumed < 12 kept
    assert got.players[0] == "vitals[0] t-7..-4" and got.players[8] == "vitals[0] t-3..0", got.players
    values, base, _ = ref.brute_force_shapley(sessions[name], ref.sequence_feeds(vitals[0], reference[None, None],
                                                                                 [(0, 3), (4, 7)]), 16)
    parity_utils.assert_results(record(name, "stream 2 x 4 of 8", got, values, base))


def test_two_branch_stream_keeps_its_static_inputs(networks, sessions):
    name = "icu_two_branch"
    vitals, static = cohort(59, 2, 16)
    reference = vitals[1, 0]
    with medinfer.Stream(networks[name], explain_steps=8) as bed:
        bed.set_static(static[0])
        for sample in vitals[0]:
            bed.push(sample)
        got = bed.explain(reference, method="exact")
    make = ref.sequence_feeds(vitals[0], reference[None, None], [(8, 15)])

    def feeds(masks):
        out = make(masks)
        out["static"] = np.repeat(static[:1], len(masks), axis=0)
        return out

    values, base, _ = ref.brute_force_shapley(sessions[name], feeds, 8)
    assert got.players == [f"vitals[{c}]" for c in range(FEATURES)]
    parity_utils.assert_results(record(name, "stream 8 of 16 + statics", got, values, base),
                                check_additive(name, "stream 8 of 16 + statics", got,
                                               model_output(sessions[name], vitals[0], static[0])))


def test_bidirectional_stream_explains_its_window(networks, sessions):
    """icu_bilstm streams in window mode (window 16): the output is the model on the last
    16 steps; the last 8 of them are masked."""
    name = "icu_bilstm"
    vitals, _ = cohort(61, 2, 20)
    reference = vitals[1].mean(axis=0).astype(np.float32)
    with medinfer.Stream(networks[name], window=16, explain_steps=8) as bed:
        for sample in vitals[0]:
            out = bed.push(sample)
        got = bed.explain(reference, method="exact")
        after = bed.push(vitals[1, 3])
    window = vitals[0, 4:20]
    assert np.allclose(out, model_output(sessions[name], window), atol=TOLERANCE)
    values, base, _ = ref.brute_force_shapley(sessions[name], ref.sequence_feeds(window, reference[None, None],
                                                                                 [(8, 15)]), 8)
    parity_utils.assert_results(record(name, "window stream 8 of 16", got, values, base),
                                check_additive(name, "window stream 8 of 16", got,
                                               model_output(sessions[name], window)))
    following = np.concatenate([vitals[0, 5:20], vitals[1, 3:4]])
    assert np.allclose(after, model_output(sessions[name], following), atol=TOLERANCE)


# --------------------------------------------------------------------------------------
# (4) images
# --------------------------------------------------------------------------------------

CNN_SIZE = 32
IMAGE_H, IMAGE_W = 40, 48


def small_cnn(batch) -> bytes:
    """NHWC [batch, 32, 32, 3] -> NCHW -> Conv 3x3 (8) + Relu -> MaxPool 2 -> Flatten ->
    Gemm (3) -> Softmax: random weights, fixed seed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(7)
    weights = {
        "W": rng.normal(0, 0.6, (8, 3, 3, 3)).astype(np.float32),
        "B": rng.normal(0, 0.1, 8).astype(np.float32),
        "G": rng.normal(0, 0.08, (3, 8 * 16 * 16)).astype(np.float32),
        "C": np.zeros(3, np.float32),
    }
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "W", "B"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "G", "C"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, CNN_SIZE, CNN_SIZE, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, 3])],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def structured_image() -> np.ndarray:
    """A 40 x 48 RGB image with structure: a gradient, two blobs, noise."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:IMAGE_H, 0:IMAGE_W]
    img = np.stack([120 + 80 * x / IMAGE_W, 90 + 100 * y / IMAGE_H, 160 - 60 * (x + y) / (IMAGE_H + IMAGE_W)], axis=2)
    img[(y - 12) ** 2 + (x - 14) ** 2 < 60] = [230, 40, 60]
    img[(y - 28) ** 2 + (x - 34) ** 2 < 90] = [30, 60, 200]
    img += rng.normal(0, 10, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)




class ImageCase:
    """The CNN (for medinfer: batch fixed to 1, or open; open for onnxruntime), the image,
    its model input and the mean masker's colour."""

    def __init__(self, batch=1):
        self.network = medinfer.Network.from_bytes(small_cnn(batch))
        self.session = _ort_session(small_cnn("N"))
        self.image = structured_image()
        self.model_input = ref.image_model_input(self.image, CNN_SIZE, CNN_SIZE)
        self.fill = ref.mean_colour(self.model_input)
        self.output = self.session.run(None, {"image": self.model_input[None]})[0][0]
        self._exact = {}

    def make_feeds(self, segments):
        return ref.image_feeds(self.model_input, ref.model_input_segments(segments, CNN_SIZE, CNN_SIZE), self.fill,
                               "image")

    def brute_force(self, rows, cols):
        if (rows, cols) not in self._exact:
            segments = ref.grid_segments(IMAGE_H, IMAGE_W, rows, cols)
            self._exact[rows, cols] = ref.brute_force_shapley(self.session, self.make_feeds(segments), rows * cols)
        return self._exact[rows, cols]


@pytest.fixture(scope="module", params=[1, "N"], ids=["batch 1", "batch N"])
def image_case(request):
    """The model file fixes batch 1 (as Keras exports often do: the library must run the
    coalitions one at a time) or leaves it open (coalitions batched)."""
    case = ImageCase(request.param)
    yield case
    case.network.close()


def test_image_model_input_is_what_classify_image_feeds(image_case):
    """The reference's resize equals the library's preprocessing (an identity model shows it)."""
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CNN_SIZE, CNN_SIZE, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CNN_SIZE, CNN_SIZE, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with medinfer.Network.from_bytes(model.SerializeToString()) as identity:
        fed = np.asarray(identity.classify_image(image_case.image)).reshape(CNN_SIZE, CNN_SIZE, 3)
    assert np.abs(fed - image_case.model_input).max() <= 1e-6


def test_image_exact_values_equal_brute_force(image_case):
    values, base, full = image_case.brute_force(2, 5)
    assert np.allclose(full, image_case.output, atol=1e-6)
    got = image_case.network.explain_image(image_case.image, grid=(2, 5), method="exact")
    assert got.values.shape == (10, 3) and got.players == [f"segment {i}" for i in range(10)]
    grid = ref.grid_segments(IMAGE_H, IMAGE_W, 2, 5)
    assert got.segments.shape == (IMAGE_H, IMAGE_W) and np.array_equal(got.segments, grid)
    assert got.pixel_values.shape == (IMAGE_H, IMAGE_W, 3) and got.pixel_values.dtype == np.float32
    broadcast = got.values[grid].astype(np.float32)
    assert np.abs(got.pixel_values - broadcast).max() <= 1e-7, "pixel_values are not the segment values"
    print(f"  image 2x5 exact: largest |value| {np.abs(values).max():.3e}")
    parity_utils.assert_results(record("small_cnn", "2x5 grid exact", got, values, base),
                                check_additive("small_cnn", "2x5 grid exact", got, image_case.output))
    # AUTO is exact for 10 players; the caller's segmentation equal to the grid gives the same.
    auto = image_case.network.explain_image(image_case.image, grid=(2, 5))
    labelled = image_case.network.explain_image(image_case.image, segments=grid, method="exact")
    assert np.allclose(auto.values, got.values, atol=1e-9, rtol=0)
    assert np.allclose(labelled.values, got.values, atol=1e-9, rtol=0)
    assert np.allclose(labelled.base_values, got.base_values, atol=1e-9, rtol=0)
    assert np.array_equal(labelled.segments, grid)
    # RGBA (alpha ignored) explains like RGB.
    rgba = np.concatenate([image_case.image, np.full((IMAGE_H, IMAGE_W, 1), 7, np.uint8)], axis=2)
    assert np.allclose(image_case.network.explain_image(rgba, grid=(2, 5), method="exact").values, got.values,
                       atol=1e-9, rtol=0)


def test_image_caller_segmentation_of_any_shape(image_case):
    """Irregular labels (quadrants and a diagonal band, 5 segments) against the brute force."""
    y, x = np.mgrid[0:IMAGE_H, 0:IMAGE_W]
    labels = (2 * (y >= IMAGE_H // 2) + (x >= IMAGE_W // 2)).astype(np.int32)
    labels[np.abs(y - x) < 5] = 4
    values, base, _ = ref.brute_force_shapley(image_case.session, image_case.make_feeds(labels), 5)
    got = image_case.network.explain_image(image_case.image, segments=labels, method="exact")
    assert np.abs(got.pixel_values - got.values[labels].astype(np.float32)).max() <= 1e-7
    parity_utils.assert_results(record("small_cnn", "5 labels exact", got, values, base))


def test_image_permutation_sampling_converges(image_case):
    values, base, _ = image_case.brute_force(2, 5)
    errors = {}
    for budget in (40, 400, 4000):
        per_seed = []
        for seed in range(3):
            got = image_case.network.explain_image(image_case.image, grid=(2, 5), method="permutation",
                                                   budget=budget, seed=seed)
            parity_utils.assert_results(check_additive("small_cnn", f"2x5 budget {budget}", got, image_case.output))
            assert np.allclose(got.base_values, base, atol=TOLERANCE)
            per_seed.append(np.abs(got.values - values).mean())
        errors[budget] = float(np.mean(per_seed))
    scale = float(np.abs(values).mean())
    print(f"  permutation mean |error| by budget: "
          + ", ".join(f"{b}: {e:.2e}" for b, e in errors.items()) + f" (mean |exact| {scale:.2e})")
    assert errors[40] > errors[400] > errors[4000]
    assert errors[4000] <= 0.05 * scale


def test_image_blur_masker_is_additive(image_case):
    got = image_case.network.explain_image(image_case.image, grid=(2, 5), masker="blur", method="exact")
    wide = image_case.network.explain_image(image_case.image, grid=(2, 5), masker="blur", blur_radius=6,
                                            method="exact")
    mean = image_case.network.explain_image(image_case.image, grid=(2, 5), method="exact")
    parity_utils.assert_results(check_additive("small_cnn", "2x5 blur", got, image_case.output),
                                check_additive("small_cnn", "2x5 blur r6", wide, image_case.output))
    assert np.isfinite(got.values).all()
    assert not np.allclose(got.base_values, mean.base_values, atol=1e-6), "blur masker gave the mean masker's base"


def test_image_heatmap_png(image_case, tmp_path):
    got = image_case.network.explain_image(image_case.image, grid=(2, 5), method="exact")
    path = tmp_path / "heat.png"
    data = medinfer.plots.image_heatmap_png(image_case.image, got, path, output=1)
    assert path.read_bytes() == data
    pixels = _decode_png(data)
    assert pixels.shape == (IMAGE_H, IMAGE_W, 3)
    heat = got.pixel_values[:, :, 1]
    moved = np.abs(pixels.astype(int) - image_case.image.astype(int)).sum(axis=2)
    strongest = np.unravel_index(np.argmax(np.abs(heat)), heat.shape)
    assert moved[strongest] > 0
    # Clearly positive pixels move towards red, clearly negative ones towards blue.
    assert (heat > 0).any() and (heat < 0).any()
    for sign, colour in ((1, (214, 39, 40)), (-1, (31, 119, 180))):
        strong = sign * heat > 0.25 * np.abs(heat).max()
        before = np.abs(image_case.image.astype(float) - colour).sum(axis=2)[strong]
        after = np.abs(pixels.astype(float) - colour).sum(axis=2)[strong]
        assert (after[before > 20] < before[before > 20]).all()
    # Zero values leave the image as it is.
    blank = medinfer.NetworkExplanation(values=got.values * 0, base_values=got.base_values, players=got.players,
                                        output=got.base_values, pixel_values=np.zeros_like(got.pixel_values))
    assert np.array_equal(_decode_png(medinfer.plots.image_heatmap_png(image_case.image, blank)), image_case.image)


def _decode_png(data: bytes) -> np.ndarray:
    """Reads an 8-bit RGB PNG with filter type 0 rows (what image_heatmap_png writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, size = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        crc, = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            size = struct.unpack(">IIBBBBB", body)
            assert size[2:] == (8, 2, 0, 0, 0)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height = size[0], size[1]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


# --------------------------------------------------------------------------------------
# (5) agreement with shap.KernelExplainer
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_name", ["lesion_df_300x300", "lesion_vasc_257x333"])
def test_regional_reruns_equal_whole_runs_on_the_skin_cnn(image_name, monkeypatch):
    """Image explanations re-run only what the changed segments reach (a crop per
    convolution); the values must equal explaining with whole runs of the network
    (MEDINFER_IMAGE_REGIONAL=0), up to float rounding. The 257x333 image goes through the
    model's own Resize, the 300x300 one does not."""
    image = parity_utils.read_ppm(ROOT / "examples" / "images" / f"{image_name}.ppm")
    with medinfer.Network.load(MODELS_DIR / "skin_cnn.onnx") as network:
        regional = network.explain_image(image, grid=(8, 8), method="permutation", budget=300, seed=5)
        monkeypatch.setenv("MEDINFER_IMAGE_REGIONAL", "0")
        whole = network.explain_image(image, grid=(8, 8), method="permutation", budget=300, seed=5)
    parity_utils.assert_results(
        parity_utils.compare(FAMILY, "skin_cnn", f"{image_name} regional vs whole", regional.values, whole.values,
                             tolerance=1e-6),
        parity_utils.compare(FAMILY, "skin_cnn", f"{image_name} regional vs whole, base", regional.base_values[None],
                             whole.base_values[None], tolerance=1e-6))


def test_image_permutation_agrees_with_kernel_shap(image_case):
    import shap
    repeats, budget = 4, 1000
    segments = ref.grid_segments(IMAGE_H, IMAGE_W, 8, 8)
    make = image_case.make_feeds(segments)

    def f(z):
        return image_case.session.run(None, make(np.asarray(z) > 0.5))[0].astype(np.float64)

    started = time.perf_counter()
    kernel = []
    explainer = shap.KernelExplainer(f, np.zeros((1, 64)))
    for seed in range(repeats):
        np.random.seed(seed)
        out = explainer.shap_values(np.ones((1, 64)), nsamples=budget, l1_reg=False, silent=True)
        kernel.append(np.asarray(out)[0] if np.ndim(out) == 3 else np.stack(out, axis=-1)[0])
    kernel_time = time.perf_counter() - started
    started = time.perf_counter()
    mine = []
    for seed in range(repeats):
        got = image_case.network.explain_image(image_case.image, grid=(8, 8), method="permutation", budget=budget,
                                               seed=seed)
        parity_utils.assert_results(check_additive("small_cnn", f"8x8 seed {seed}", got, image_case.output))
        mine.append(got.values)
    medinfer_time = time.perf_counter() - started
    kernel, mine = np.array(kernel), np.array(mine)               # [R, 64, 3]
    assert kernel.shape == mine.shape == (repeats, 64, 3), (kernel.shape, mine.shape)
    sd_k, sd_m = kernel.std(axis=0, ddof=1), mine.std(axis=0, ddof=1)
    gap = np.abs(mine.mean(axis=0) - kernel.mean(axis=0))
    bound = 4 * np.sqrt(sd_m ** 2 / repeats + sd_k ** 2 / repeats) + 1e-6
    within = float((gap <= bound).mean())
    print(f"  64 segments x 3 outputs, {repeats} seeds, budget {budget}: within 4 sigma {within:.1%}; "
          f"mean sd medinfer {sd_m.mean():.2e}, kernel {sd_k.mean():.2e}; mean |gap| {gap.mean():.2e}; "
          f"mean |value| {np.abs(kernel).mean():.2e}; time medinfer {medinfer_time:.2f} s, kernel {kernel_time:.2f} s")
    assert within >= 0.9


# --------------------------------------------------------------------------------------
# (6) bad input
# --------------------------------------------------------------------------------------

def _raises(status: str | tuple, call, *args, match: str | None = None, **kwargs):
    statuses = (status,) if isinstance(status, str) else status
    with pytest.raises(medinfer.MedInferError, match=match) as caught:
        call(*args, **kwargs)
    assert caught.value.status_name in [f"MEDINFER_ERR_{s}" for s in statuses], \
        f"{caught.value.status_name}: {caught.value}"
    return caught.value


def test_bad_sequence_input_raises(networks):
    network = networks["icu_lstm"]
    vitals, static = cohort(71, 3)
    x, background = vitals[0], vitals[1:3]
    explain = network.explain_sequence
    _raises("SHAPE_MISMATCH", explain, x[:, :7], background=background[:, :, :7])
    _raises("SHAPE_MISMATCH", explain, x, background=background[:, :, :7])
    _raises("SHAPE_MISMATCH", explain, x, background=background[:, :STEPS - 1])        # neither T nor 1 steps
    bad = x.copy()
    bad[5, 2] = np.nan
    _raises("INVALID_ARGUMENT", explain, bad, background=background)
    bad_background = background.copy()
    bad_background[1, 3, 0] = np.inf
    _raises("INVALID_ARGUMENT", explain, x, background=bad_background)
    _raises("INVALID_ARGUMENT", explain, x, background=background, method="permutation", budget=15)  # < 2 x 8
    error = _raises("INVALID_ARGUMENT", explain, x, background=background, method="exact", time_windows=3)  # 24
    assert "20" in str(error), str(error)
    _raises("INVALID_ARGUMENT", explain, x, background=background, time_windows=2, window_steps=13)  # 26 > 24
    _raises("INVALID_ARGUMENT", explain, x, background=background, time_windows=25)      # windows of 0 steps
    with pytest.raises(ValueError):
        explain(x)                                                                        # no background
    with pytest.raises(ValueError):
        explain(x, background=background, method="shapley")
    # The library still works after all that.
    assert explain(x, background=background).values.shape == (8, 1)

    two = networks["icu_two_branch"]
    _raises("INVALID_ARGUMENT", two.explain_sequence, x, static[0], background)           # no background statics
    _raises("SHAPE_MISMATCH", two.explain_sequence, x, static[0, :3], background, static[1:3, :3])
    error = _raises("INVALID_ARGUMENT", two.explain_sequence, x, static[0], background, static[1:3], method="exact",
                    time_windows=2)            # 20 players x 2 rows: 2^21 evaluations
    assert "1048576" in str(error) or "evaluations" in str(error), str(error)


def test_bad_stream_explanations_raise(networks):
    network = networks["icu_lstm"]
    vitals, _ = cohort(73, 1, 20)
    reference = vitals[0].mean(axis=0)
    with medinfer.Stream(network) as plain:
        for sample in vitals[0, :5]:
            plain.push(sample)
        _raises("INVALID_ARGUMENT", plain.explain, reference)                             # explain_steps 0
    bed = medinfer.Stream(network, explain_steps=12)
    for sample in vitals[0, :5]:
        bed.push(sample)
    _raises("INVALID_ARGUMENT", bed.explain, reference, window_steps=6)                   # 6 > 5 consumed
    for sample in vitals[0, 5:20]:
        bed.push(sample)
    _raises("INVALID_ARGUMENT", bed.explain, reference, time_windows=2, window_steps=7)   # 14 > 12 kept
    _raises("SHAPE_MISMATCH", bed.explain, reference[:7])
    bad = reference.copy()
    bad[4] = np.nan
    _raises("INVALID_ARGUMENT", bed.explain, bad)
    _raises("INVALID_ARGUMENT", bed.explain, reference, method="permutation", budget=3)
    _raises("INVALID_ARGUMENT", bed.explain, reference, method="exact", time_windows=3, window_steps=4)  # 24 players
    before = bed.steps
    assert bed.explain(reference, window_steps=12).values.shape == (8, 1)
    assert bed.steps == before
    bed.close()
    with pytest.raises((ValueError, medinfer.MedInferError)):
        bed.explain(reference)                                                            # freed: raises, no crash


def test_bad_image_explanations_raise(image_case):
    net, image = image_case.network, image_case.image
    _raises("INVALID_ARGUMENT", net.explain_image, image, grid=(IMAGE_H + 1, 2))          # grid larger than image
    _raises("INVALID_ARGUMENT", net.explain_image, image, grid=(0, 4))
    labels = ref.grid_segments(IMAGE_H, IMAGE_W, 2, 2)
    unused = np.where(labels == 1, 3, labels)                                             # label 1 unused
    _raises("INVALID_ARGUMENT", net.explain_image, image, segments=unused)
    negative = labels.copy()
    negative[0, 0] = -1
    _raises("INVALID_ARGUMENT", net.explain_image, image, segments=negative)
    _raises("INVALID_ARGUMENT", net.explain_image, image, grid=(2, 5), method="permutation", budget=19)
    _raises("INVALID_ARGUMENT", net.explain_image, image, grid=(3, 7), method="exact")   # 21 players
    with pytest.raises(ValueError):
        net.explain_image(image, segments=labels[:-1])
    with pytest.raises(TypeError):
        net.explain_image(image.astype(np.float32))
    with pytest.raises(ValueError):
        net.explain_image(image, masker="noise")
    with medinfer.Network.load(MODELS_DIR / "icu_lstm.onnx") as sequence_model:
        _raises("UNSUPPORTED", sequence_model.explain_image, image)
    assert net.explain_image(image, grid=(1, 2)).values.shape == (2, 3)

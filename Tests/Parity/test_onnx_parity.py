"""MedInfer against onnxruntime on ONNX models: every operator on random shapes (graphs
from onnx_graphs.py), the seed CNN on 20 images, and the image call's resizing against
tf.image.resize's bilinear formula. Prints a table per family."""
from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_graphs  # noqa: E402
import parity_utils  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
import medinfer  # noqa: E402

SEEDS_PER_FAMILY = 24
TOLERANCE = 1e-5          # |got - expected| <= TOLERANCE * (1 + |expected|)
# 3x3 convolutions run as Winograd F(4x4, 3x3), whose rounding error scales with the
# tensor's magnitude rather than each element's: those families compare against
# TOLERANCE * (1 + max |expected|).
WINOGRAD_FAMILIES = {"conv", "conv_relu_maxpool", "keras_cnn", "winograd_chain"}
CNN_TOLERANCE = 1e-5      # probabilities, absolute

_rows: list[tuple[str, int, float, str]] = []


def _compare(got: np.ndarray, expected: np.ndarray, tensor_scale: bool = False) -> float:
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    expected = expected.astype(np.float32)
    both_nan = np.isnan(got) & np.isnan(expected)
    finite = expected[np.isfinite(expected)]
    scale = (1 + np.abs(finite).max()) if tensor_scale and finite.size else (1 + np.abs(expected))
    error = np.where(both_nan, 0, np.abs(got.astype(np.float64) - expected) / scale)
    return float(np.nanmax(error)) if error.size else 0.0


def _keep_failure(family: str, seed: int, model_bytes: bytes, inputs: dict) -> None:
    """Saves a failing case (model + inputs) under .build/onnx-failures for replay."""
    out = ROOT / ".build" / "onnx-failures"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{family}_{seed}.onnx").write_bytes(model_bytes)
    np.savez(out / f"{family}_{seed}.npz", **inputs)


@pytest.mark.parametrize("family", sorted(onnx_graphs.BUILDERS))
def test_operator_family_matches_onnxruntime(family: str) -> None:
    builder = onnx_graphs.BUILDERS[family]
    worst = 0.0
    for seed in range(SEEDS_PER_FAMILY):
        rng = np.random.RandomState(1000 * (zlib.crc32(family.encode()) % 1000) + seed)
        model_bytes, inputs = builder(rng)
        expected = onnx_graphs.reference(model_bytes, inputs)
        net = medinfer.Network.from_bytes(model_bytes)
        try:
            got = net.run(inputs)
        except medinfer.MedInferError:
            _keep_failure(family, seed, model_bytes, inputs)
            raise
        names = [name for name, _ in net.outputs]
        for name, want in zip(names, expected):
            error = _compare(got[name], np.asarray(want), tensor_scale=family in WINOGRAD_FAMILIES)
            worst = max(worst, error)
            if not error <= TOLERANCE:
                _keep_failure(family, seed, model_bytes, inputs)
            assert error <= TOLERANCE, f"{family} seed {seed} output {name}: relative error {error:.2e}"
        net.close()
    _rows.append((family, SEEDS_PER_FAMILY, worst, "yes"))


def _images() -> list[np.ndarray]:
    """The 5 bundled images plus 15 synthetic ones of assorted sizes (odd ones too)."""
    images = [parity_utils.read_ppm(p) for p in sorted((ROOT / "examples" / "images").glob("*.ppm"))]
    rng = np.random.RandomState(7)
    for i in range(20 - len(images)):
        h, w = rng.randint(33, 420), rng.randint(33, 420)
        yy, xx = np.mgrid[0:h, 0:w]
        blob = ((yy - h / 2) ** 2 / (h / 3) ** 2 + (xx - w / 2) ** 2 / (w / 3) ** 2) < 1
        base = np.array([200, 160, 140]) + rng.randint(-20, 20, 3)
        img = np.broadcast_to(base, (h, w, 3)).astype(np.float64) + rng.normal(0, 8, (h, w, 3))
        img[blob] *= rng.uniform(0.3, 0.8, 3)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def tf_resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """tf.image.resize(img, (height, width), "bilinear", antialias=False) in numpy:
    half-pixel centres, source coordinates clamped at the edges."""
    h, w = img.shape[:2]

    def axis(n_in: int, n_out: int):
        x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0, n_in - 1)
        i0 = np.floor(x).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (x - i0)

    y0, y1, wy = axis(h, height)
    x0, x1, wx = axis(w, width)
    src = img.astype(np.float64)
    top = src[y0][:, x0] * (1 - wx)[None, :, None] + src[y0][:, x1] * wx[None, :, None]
    bottom = src[y1][:, x0] * (1 - wx)[None, :, None] + src[y1][:, x1] * wx[None, :, None]
    return top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]


def test_seed_cnn_matches_onnxruntime_on_20_images() -> None:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    raw_model = ROOT / "examples" / "models" / "skin_cnn.onnx"
    fixed_model = ROOT / "examples" / "models" / "skin_cnn_300.onnx"
    raw_ref = ort.InferenceSession(str(raw_model), options, providers=["CPUExecutionProvider"])
    fixed_ref = ort.InferenceSession(str(fixed_model), options, providers=["CPUExecutionProvider"])
    raw_net, fixed_net = medinfer.Network.load(raw_model), medinfer.Network.load(fixed_model)
    assert raw_net.labels == ["bcc", "df", "mel", "nv", "vasc"]
    worst_raw = worst_image = worst_fixed = 0.0
    images = _images()
    for img in images:
        # The in-model resize_and_rescale: raw pixels at their own size.
        expected = raw_ref.run(None, {"image": img[None].astype(np.float32)})[0][0]
        got = raw_net.run([img[None].astype(np.float32)])["probabilities"][0]
        worst_raw = max(worst_raw, float(np.abs(got - expected).max()))
        by_image = np.array(list(raw_net.classify_image(img).values()), dtype=np.float32)
        worst_image = max(worst_image, float(np.abs(by_image - expected).max()))
        # A fixed 300x300 [0,1] model: the call resizes (tf bilinear) and rescales.
        x = (tf_resize_bilinear(img, 300, 300).astype(np.float32) * np.float32(1 / 255))[None]
        expected_fixed = fixed_ref.run(None, {"image": x})[0][0]
        got_fixed = np.array(list(fixed_net.classify_image(img).values()), dtype=np.float32)
        worst_fixed = max(worst_fixed, float(np.abs(got_fixed - expected_fixed).max()))
    print(f"\n{'seed CNN case':<52}{'images':>7}{'max |diff|':>12}{'tolerance':>11}")
    for label, worst, tol in (("skin_cnn.onnx, tensors (in-model resize)", worst_raw, CNN_TOLERANCE),
                              ("skin_cnn.onnx, medinfer_classify_image", worst_image, CNN_TOLERANCE),
                              ("skin_cnn_300.onnx, classify_image resizes itself", worst_fixed, 1e-4)):
        print(f"{label:<52}{len(images):>7}{worst:>12.1e}{tol:>11.0e}")
    assert worst_raw <= CNN_TOLERANCE and worst_image <= CNN_TOLERANCE
    # The call's resize differs from numpy's only in float rounding order.
    assert worst_fixed <= 1e-4


def _identity_image_model(height: int, width: int, channels: int = 3, nchw: bool = False) -> bytes:
    """A model that returns its input: shows exactly what the image call feeds a model."""
    shape = [1, channels, height, width] if nchw else [1, height, width, channels]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.mark.parametrize("size", [(300, 300), (64, 48), (7, 33)])
def test_image_resize_matches_tf_bilinear_within_one_grey_level(size) -> None:
    height, width = size
    net = medinfer.Network.from_bytes(_identity_image_model(height, width))
    worst = 0.0
    for img in _images()[:8]:
        got = np.asarray(net.classify_image(img)).reshape(height, width, 3) * 255
        expected = tf_resize_bilinear(img, height, width)
        worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= 1.0, f"resize differs from tf.image.resize bilinear by {worst:.3f} grey levels"
    assert worst <= 1e-2  # in practice only float32 rounding (measured 0.005)


def test_image_formats_and_strides_agree() -> None:
    """Grey, RGBA and row-padded images give what the equivalent RGB image gives."""
    net = medinfer.Network.from_bytes(_identity_image_model(40, 30))
    rng = np.random.RandomState(3)
    rgb = rng.randint(0, 256, (57, 45, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.randint(0, 256, (57, 45, 1), dtype=np.uint8)], axis=2)
    padded = np.zeros((57, 64, 3), dtype=np.uint8)
    padded[:, :45] = rgb
    strided = padded[:, :45]  # a view with a row stride of 64 * 3 bytes
    base = np.asarray(net.classify_image(rgb))
    assert np.array_equal(np.asarray(net.classify_image(rgba)), base)
    assert np.array_equal(np.asarray(net.classify_image(strided)), base)
    grey = rgb[:, :, 0].copy()
    as_rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.array_equal(np.asarray(net.classify_image(grey)), np.asarray(net.classify_image(as_rgb)))
    nchw = medinfer.Network.from_bytes(_identity_image_model(40, 30, nchw=True))
    planes = np.asarray(nchw.classify_image(rgb)).reshape(3, 40, 30)
    assert np.array_equal(planes.transpose(1, 2, 0).reshape(-1), base)


def test_bad_network_inputs_are_errors_not_crashes() -> None:
    net = medinfer.Network.load(ROOT / "examples" / "models" / "skin_cnn_300.onnx")
    with pytest.raises(medinfer.MedInferError, match="SHAPE|shape|must have"):
        net.run([np.zeros((1, 299, 300, 3), np.float32)])
    with pytest.raises(medinfer.MedInferError, match="no input named"):
        net.run({"nope": np.zeros((1, 300, 300, 3), np.float32)})
    with pytest.raises(medinfer.MedInferError, match="dimension"):
        net.run([np.zeros((0, 300, 300, 3), np.float32)])
    with pytest.raises(medinfer.MedInferError, match="rank"):
        net.run([np.zeros((300, 300, 3), np.float32)])
    with pytest.raises(ValueError):
        net.classify_image(np.zeros((10, 10, 5), np.uint8))
    for data in (b"", b"\x08", b"garbage" * 10, (ROOT / "examples" / "models" / "skin_cnn_300.onnx").read_bytes()[:5000]):
        if not data:
            continue
        with pytest.raises(medinfer.MedInferError):
            medinfer.Network.from_bytes(data)
    with pytest.raises(medinfer.MedInferError, match="not an ONNX network"):
        medinfer.Network.load(ROOT / "examples" / "models" / "noshow_xgb.json")


def test_print_operator_table() -> None:
    if not _rows:
        pytest.skip("operator tests did not run")
    print(f"\n{'operator family':<24}{'seeds':>6}{'worst rel. error':>18}{'tolerance':>11}{'ok':>4}")
    for family, seeds, worst, ok in sorted(_rows):
        print(f"{family:<24}{seeds:>6}{worst:>18.1e}{TOLERANCE:>11.0e}{ok:>4}")

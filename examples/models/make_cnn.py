#!/usr/bin/env python3
"""Build, briefly train and export the seed skin-lesion CNN (issue 5).

The model is the one the skin-lesion project used (see shared DESIGN.md):

    input [N, H, W, 3] (RGB, 0..255, any H and W)
    resize_and_rescale: Resizing(300, 300) (bilinear) -> Rescaling(1/255)
    6 x [Conv2D 3x3 (32 filters, then 64), padding 'valid' -> ReLU -> MaxPooling2D 2x2]
    Flatten -> Dense 64 ReLU -> Dense 5 softmax      (classes bcc, df, mel, nv, vasc)

The real dermoscopy images cannot be shipped, so the model is trained for a few hundred
steps on synthetic "dermoscopy-like" pictures (skin-coloured background, a lesion whose
colour, shape and border depend on the class, hairs, noise). The point is a realistic
export with non-degenerate outputs, not a useful classifier.

Outputs (paths relative to the repository root):

    examples/models/skin_cnn.onnx      tf2onnx export of the full model, input [N, H, W, 3]
                                       with dynamic H, W (Resize linear / half_pixel inside)
    examples/models/skin_cnn_300.onnx  the same weights without the resize_and_rescale block:
                                       input [N, 300, 300, 3], values already in [0, 1]
    examples/models/cnn_labels.txt     the class labels, one a line
    examples/images/*.ppm              demo images (binary PPM, P6), one per class
    examples/images/expected.csv       onnxruntime probabilities of skin_cnn.onnx per image

Both ONNX files carry the labels in metadata_props: key "labels", value "bcc,df,mel,nv,vasc".

This needs TensorFlow, which neither the library nor its tests use. Run it in a separate
virtualenv (versions this was made with: tensorflow-cpu 2.20.0, keras 3.15.1, tf2onnx 1.17.0,
onnx 1.23.2, onnxruntime 1.32.0, numpy 2.4.6, Python 3.11):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.20.0 tf2onnx==1.17.0 onnx onnxruntime pillow
    /tmp/tfvenv/bin/python examples/models/make_cnn.py

It uses one CPU thread and takes about four minutes. Seeds are fixed, TensorFlow runs with
op determinism and PYTHONHASHSEED=0 (tf2onnx's node order depends on it), so a rerun with
the same versions gives byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

# tf2onnx names and orders some nodes by iterating over Python sets: fix the string hash
# seed (re-executing once) so that a rerun writes byte-identical ONNX files.
if os.environ.get("PYTHONHASHSEED") != "0" and __name__ == "__main__":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IMAGES = os.path.join(REPO, "examples", "images")

CLASSES = ["bcc", "df", "mel", "nv", "vasc"]
LABELS = ",".join(CLASSES)
SIDE = 300
OPSET = 13
SEED = 20240505

#: (file stem, class, height, width) of the bundled demo images.
DEMO_IMAGES = [
    ("lesion_bcc_450x600", "bcc", 450, 600),
    ("lesion_df_300x300", "df", 300, 300),
    ("lesion_mel_480x640", "mel", 480, 640),
    ("lesion_nv_224x224", "nv", 224, 224),
    ("lesion_vasc_257x333", "vasc", 257, 333),
]


# --------------------------------------------------------------------------------------
# Synthetic dermoscopy-like images
# --------------------------------------------------------------------------------------

def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """A smooth random field in [0, 1] of shape [h, w] (bilinear upsampling of a coarse grid)."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    img = Image.fromarray(coarse, mode="L").resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _blob(yy, xx, cy, cx, radius, irregularity, rng, edge):
    """Soft mask of a star-shaped blob whose radius varies with the angle."""
    dy, dx = yy - cy, xx - cx
    dist = np.sqrt(dy * dy + dx * dx)
    theta = np.arctan2(dy, dx)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += irregularity * rng.normal() / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r *= radius
    return np.clip((r - dist) / max(edge, 1e-3) + 0.5, 0.0, 1.0)


def make_image(rng: np.random.Generator, cls: str, h: int, w: int) -> np.ndarray:
    """One synthetic dermoscopy-like image, uint8 [h, w, 3] RGB."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    s = float(min(h, w))

    # Skin background with uneven lighting and a vignette, as dermoscopes show.
    base_r = rng.uniform(185, 235)
    skin = np.array([base_r, base_r * rng.uniform(0.70, 0.80), base_r * rng.uniform(0.58, 0.68)],
                    dtype=np.float32)
    light = 0.9 + 0.2 * _smooth_field(rng, h, w, 4)
    vign = 1.0 - 0.35 * (((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2) / 2
    img = skin[None, None, :] * (light * vign)[:, :, None]

    cy = h / 2 + rng.uniform(-0.12, 0.12) * h
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w

    def paint(mask, colour, opacity=1.0):
        nonlocal img
        a = (mask * opacity)[:, :, None]
        img = img * (1 - a) + np.asarray(colour, np.float32)[None, None, :] * a

    if cls == "nv":  # naevus: round, uniform medium brown, fairly sharp border
        m = _blob(yy, xx, cy, cx, s * rng.uniform(0.18, 0.30), 0.08, rng, s * 0.02)
        tone = rng.uniform(0.8, 1.15)
        paint(m, np.array([140, 92, 62]) * tone, 0.95)
    elif cls == "mel":  # melanoma: large, irregular, several colours (brown, black, blue-grey)
        m = _blob(yy, xx, cy, cx, s * rng.uniform(0.25, 0.36), 0.55, rng, s * rng.uniform(0.01, 0.06))
        paint(m, [95, 55, 38], 0.95)
        f = _smooth_field(rng, h, w, 7)
        paint(m * np.clip((f - 0.55) * 4, 0, 1), [35, 22, 24], 0.95)
        g = _smooth_field(rng, h, w, 6)
        paint(m * np.clip((g - 0.6) * 4, 0, 1), [95, 100, 125], 0.8)
    elif cls == "bcc":  # basal cell carcinoma: pinkish pearly nodule with red vessels
        m = _blob(yy, xx, cy, cx, s * rng.uniform(0.18, 0.30), 0.3, rng, s * 0.08)
        paint(m, [228, 150, 158], 0.75)
        for _ in range(rng.integers(3, 7)):  # arborising vessels: thin red curves
            a0, a1 = rng.uniform(0, 2 * np.pi, 2)
            t = np.linspace(0, 1, 200)
            rad = s * 0.2 * t
            ang = a0 + (a1 - a0) * 0.3 * t
            py, px = cy + rad * np.sin(ang), cx + rad * np.cos(ang)
            ok = (py >= 0) & (py < h - 1) & (px >= 0) & (px < w - 1)
            vessel = np.zeros((h, w), np.float32)
            vessel[py[ok].astype(int), px[ok].astype(int)] = 1
            vessel = np.maximum(vessel, np.roll(vessel, 1, 0))
            paint(vessel, [175, 30, 45], 0.8)
    elif cls == "df":  # dermatofibroma: small light-brown ring with a white centre
        r = s * rng.uniform(0.12, 0.2)
        m = _blob(yy, xx, cy, cx, r, 0.15, rng, s * 0.05)
        paint(m, [165, 112, 82], 0.85)
        c = _blob(yy, xx, cy, cx, r * 0.45, 0.3, rng, s * 0.04)
        paint(c, [238, 225, 215], 0.85)
    elif cls == "vasc":  # vascular lesion: clustered red-purple lobules
        for _ in range(rng.integers(4, 9)):
            ly = cy + rng.normal() * s * 0.08
            lx = cx + rng.normal() * s * 0.08
            m = _blob(yy, xx, ly, lx, s * rng.uniform(0.04, 0.09), 0.2, rng, s * 0.015)
            paint(m, [rng.uniform(140, 190), 30, rng.uniform(55, 95)], 0.9)
    else:
        raise ValueError(cls)

    for _ in range(rng.integers(0, 4)):  # hairs
        y0, x0 = rng.uniform(0, h), rng.uniform(0, w)
        ang = rng.uniform(0, np.pi)
        t = np.linspace(-s, s, int(4 * s))
        py, px = y0 + t * np.sin(ang) + 8 * np.sin(t / 40), x0 + t * np.cos(ang)
        ok = (py >= 0) & (py < h) & (px >= 0) & (px < w)
        hair = np.zeros((h, w), np.float32)
        hair[py[ok].astype(int), px[ok].astype(int)] = 1
        paint(hair, [50, 35, 30], 0.7)

    img += rng.normal(0, 5, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_ppm(path: str, img: np.ndarray) -> None:
    h, w, _ = img.shape
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())


def read_ppm(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P6" and parts[3] == b"255"
    w, h = int(parts[1]), int(parts[2])
    return np.frombuffer(parts[4], np.uint8, h * w * 3).reshape(h, w, 3)


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------

def build_models(keras):
    """The full model (dynamic H, W) and a [N,300,300,3] head sharing its layers."""
    L = keras.layers
    convs = []
    for i in range(6):
        convs.append(L.Conv2D(32 if i == 0 else 64, (3, 3), activation="relu", name=f"conv{i + 1}"))
    pools = [L.MaxPooling2D((2, 2), name=f"pool{i + 1}") for i in range(6)]
    flatten = L.Flatten(name="flatten")
    dense1 = L.Dense(64, activation="relu", name="dense1")
    dense2 = L.Dense(len(CLASSES), activation="softmax", name="probabilities")

    def trunk(x):
        for c, p in zip(convs, pools):
            x = p(c(x))
        return dense2(dense1(flatten(x)))

    resize_and_rescale = keras.Sequential(
        [L.Resizing(SIDE, SIDE, interpolation="bilinear"), L.Rescaling(1.0 / 255)],
        name="resize_and_rescale")
    inp = keras.Input(shape=(None, None, 3), name="image")
    full = keras.Model(inp, trunk(resize_and_rescale(inp)), name="skin_cnn")
    inp300 = keras.Input(shape=(SIDE, SIDE, 3), name="image")
    head = keras.Model(inp300, trunk(inp300), name="skin_cnn_300")
    return full, head


def training_data(rng, n, h=150, w=200):
    x = np.empty((n, h, w, 3), np.float32)
    y = np.empty((n,), np.int64)
    for i in range(n):
        c = i % len(CLASSES)
        x[i] = make_image(rng, CLASSES[c], h, w)
        y[i] = c
    perm = rng.permutation(n)
    return x[perm], y[perm]


def canonical_constant_names(proto) -> None:
    """Rename tf2onnx's shared constants (const_axes__153, roi__6, ...) to const_0, const_1,
    ... in order of first use, and sort the initializers by name. tf2onnx deduplicates
    equal constants keeping whichever name it meets first, and orders initializers, in ways
    that vary from run to run; after this the file bytes do not."""
    import re
    pattern = re.compile(r"^(const_[A-Za-z_]+|roi)__\d+$")
    inits = {t.name for t in proto.graph.initializer}
    mapping = {}
    for node in proto.graph.node:
        for name in node.input:
            if name in inits and pattern.match(name) and name not in mapping:
                mapping[name] = f"const_{len(mapping)}"
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
    for t in proto.graph.initializer:
        if t.name in mapping:
            t.name = mapping[t.name]
    # and the order of the initializers varies too: sort them by name
    tensors = sorted(proto.graph.initializer, key=lambda t: t.name)
    copies = [type(t)() for t in tensors]
    for c, t in zip(copies, tensors):
        c.CopyFrom(t)
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(copies)


def export(tf, tf2onnx, onnx, model, shape, path):
    spec = (tf.TensorSpec(shape, tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    canonical_constant_names(proto)
    # Readable symbolic dimensions instead of tf2onnx's unk__NN counters.
    names = ["N", "H", "W"]
    for i, d in enumerate(proto.graph.input[0].type.tensor_type.shape.dim):
        if d.dim_param:
            d.dim_param = names[i]
    for d in proto.graph.output[0].type.tensor_type.shape.dim[:1]:
        if d.dim_param:
            d.dim_param = "N"
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "labels", LABELS
    proto.doc_string = ("MedInfer seed skin-lesion CNN (synthetic training data); "
                        "made by examples/models/make_cnn.py")
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return proto


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=240, help="training steps (batch 16)")
    args = ap.parse_args()

    import tensorflow as tf
    import keras
    import tf2onnx
    import onnx
    import onnxruntime as ort

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, tf2onnx {tf2onnx.__version__}, "
          f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}")

    rng = np.random.default_rng(SEED)
    t0 = time.time()
    x_train, y_train = training_data(rng, 800)
    x_val, y_val = training_data(rng, 100, 180, 160)
    print(f"synthetic data: {len(x_train)} train, {len(x_val)} val ({time.time() - t0:.1f} s)")

    full, head = build_models(keras)
    full.summary(print_fn=lambda s, **k: print(s))
    # Label smoothing keeps the softmax away from 0 and 1, so the exported model gives
    # graded probabilities (a parity test on saturated outputs would prove little).
    full.compile(optimizer=keras.optimizers.Adam(1e-3),
                 loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.4),
                 metrics=["accuracy"])
    batch = 16
    epochs = max(1, int(round(args.steps * batch / len(x_train))))
    t0 = time.time()
    onehot = np.eye(len(CLASSES), dtype=np.float32)
    full.fit(x_train, onehot[y_train], batch_size=batch, epochs=epochs, shuffle=True, verbose=2,
             validation_data=(x_val, onehot[y_val]))
    print(f"trained {epochs * len(x_train) // batch} steps in {time.time() - t0:.0f} s")
    import hashlib
    digest = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in full.get_weights()))
    print(f"weights sha256 {digest.hexdigest()[:16]}")
    val_p = full.predict(x_val, verbose=0)
    print(f"validation accuracy {np.mean(val_p.argmax(1) == y_val):.3f}; "
          f"predicted class counts {np.bincount(val_p.argmax(1), minlength=5).tolist()}")

    out_full = os.path.join(HERE, "skin_cnn.onnx")
    out_300 = os.path.join(HERE, "skin_cnn_300.onnx")
    p_full = export(tf, tf2onnx, onnx, full, (None, None, None, 3), out_full)
    p_300 = export(tf, tf2onnx, onnx, head, (None, SIDE, SIDE, 3), out_300)
    with open(os.path.join(HERE, "cnn_labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    for path, proto in ((out_full, p_full), (out_300, p_300)):
        ops = sorted({n.op_type for n in proto.graph.node})
        counts = {op: sum(n.op_type == op for n in proto.graph.node) for op in ops}
        size = os.path.getsize(path)
        print(f"{os.path.relpath(path, REPO)}: {size} bytes, {len(proto.graph.node)} nodes, "
              f"opset {proto.opset_import[0].version}, ops {counts}")
        for n in proto.graph.node:
            if n.op_type == "Resize":
                print("  Resize attributes:",
                      {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute})
        io = [(i.name, [d.dim_value or d.dim_param or "?" for d in i.type.tensor_type.shape.dim])
              for i in list(proto.graph.input) + list(proto.graph.output)]
        print("  inputs/outputs:", io)
        assert size < 1_000_000, f"{path} is {size} bytes"

    sess_full = ort.InferenceSession(out_full, so, providers=["CPUExecutionProvider"])
    sess_300 = ort.InferenceSession(out_300, so, providers=["CPUExecutionProvider"])
    in_full = sess_full.get_inputs()[0].name
    in_300 = sess_300.get_inputs()[0].name

    # Parity: Keras vs onnxruntime, on images of several sizes, and the 300 head on
    # Keras' own resize_and_rescale output.
    prng = np.random.default_rng(SEED + 1)
    worst_full = worst_300 = 0.0
    for (h, w) in [(450, 600), (300, 300), (64, 80), (120, 90), (1, 1), (7, 33), (601, 299)]:
        xs = np.stack([make_image(prng, CLASSES[i % 5], h, w) if min(h, w) > 16 else
                       prng.integers(0, 256, (h, w, 3)) for i in range(2)]).astype(np.float32)
        k = full.predict(xs, verbose=0)
        o = sess_full.run(None, {in_full: xs})[0]
        worst_full = max(worst_full, float(np.max(np.abs(k - o))))
        pre = full.get_layer("resize_and_rescale")(xs).numpy()
        k3 = head.predict(pre, verbose=0)
        o3 = sess_300.run(None, {in_300: pre})[0]
        worst_300 = max(worst_300, float(np.max(np.abs(k3 - o3))))
        assert np.max(np.abs(k3 - k)) < 1e-5
    print(f"max |keras - onnxruntime|: skin_cnn.onnx {worst_full:.3g}, "
          f"skin_cnn_300.onnx {worst_300:.3g}")
    assert worst_full < 1e-4 and worst_300 < 1e-4

    # Demo images and their expected probabilities.
    os.makedirs(IMAGES, exist_ok=True)
    irng = np.random.default_rng(SEED + 2)
    rows = []
    for stem, cls, h, w in DEMO_IMAGES:
        img = make_image(irng, cls, h, w)
        path = os.path.join(IMAGES, stem + ".ppm")
        write_ppm(path, img)
        back = read_ppm(path)
        assert np.array_equal(back, img)
        x = back[None].astype(np.float32)
        p = sess_full.run(None, {in_full: x})[0][0]
        k = full.predict(x, verbose=0)[0]
        rows.append([stem + ".ppm"] + [f"{v:.8g}" for v in p])
        print(f"{stem}.ppm ({cls}): onnxruntime {np.round(p, 4).tolist()} -> "
              f"{CLASSES[int(p.argmax())]}; max |keras - ort| {np.max(np.abs(p - k)):.2g}")
    with open(os.path.join(IMAGES, "expected.csv"), "w", newline="") as f:
        wr = csv.writer(f, lineterminator="\n")
        wr.writerow(["file"] + CLASSES)
        wr.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

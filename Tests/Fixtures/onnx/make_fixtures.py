#!/usr/bin/env python3
"""Offline ONNX parity fixtures: small graphs, their inputs and onnxruntime's outputs.

For every case NAME this writes, next to this script:

    NAME.onnx        the model (hand-built with onnx.helper), except the skin_cnn cases,
                     which point at examples/models/*.onnx instead of copying them
    NAME.json        {"model": "<path relative to this directory>",
                      "inputs":  [{"name", "shape", "dtype": "float32", "file"}],
                      "outputs": [{"name", "shape", "dtype": "float32", "file"}],
                      "tolerance": t, "opset": k, "description": "..."}
    NAME.in<i>.f32   raw little-endian float32, row-major, one file per graph input
    NAME.out<i>.f32  raw little-endian float32, row-major, one file per graph output,
                     in graph-output order, as onnxruntime computed them

A result `got` matches the expected `exp` when |got - exp| <= tolerance * (1 + |exp|)
element by element (and the shapes are equal). Every input and output is float32.

Needs only numpy, onnx and onnxruntime (no TensorFlow). Run from anywhere:

    python Tests/Fixtures/onnx/make_fixtures.py

The skin_cnn cases read examples/models/skin_cnn.onnx and skin_cnn_300.onnx (made by
examples/models/make_cnn.py) and draw their input pictures with that script's image
generator (numpy + pillow only). Everything is seeded; rerunning with the same onnxruntime
gives the same bytes. It also rewrites README.md.
"""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "Tests", "Parity"))
sys.path.insert(0, os.path.join(REPO, "examples", "models"))

import onnx_graphs as G  # noqa: E402

F32 = np.float32
SEED = 1234
TOL = 1e-5
CNN_TOL = 1e-4


def i64(v):
    return np.asarray(v, np.int64)


def rnd(rng, shape, scale=1.0):
    return np.asarray(rng.standard_normal(size=tuple(shape)) * scale, F32)


def model(nodes, inputs, outputs, inits=None, opset=13, name="fixture"):
    """Assemble via onnx_graphs._model (declares concrete output shapes, runs the checker)."""
    return G._model(nodes, inputs, outputs, inits or {}, opset=opset, name=name)


# ----------------------------------------------------------------------------------------
# cases: each returns (model bytes, inputs dict, description)
# ----------------------------------------------------------------------------------------

def case_conv_group_dilation(rng):
    inits = {"W": rnd(rng, [6, 2, 3, 3], 0.4), "B": rnd(rng, [6], 0.2)}
    nodes = [
        helper.make_node("Conv", ["X", "W", "B"], ["c"], kernel_shape=[3, 3], group=2,
                         strides=[2, 1], dilations=[2, 1], pads=[1, 0, 2, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["Y"], kernel_shape=[2, 3], strides=[2, 2],
                         pads=[0, 1, 1, 1]),
    ]
    return (model(nodes, {"X": rnd(rng, [1, 4, 9, 11])}, ["Y"], inits),
            "Conv 3x3 group 2, strides [2,1], dilations [2,1], asymmetric pads -> Relu -> "
            "MaxPool 2x3 stride 2 with pads")


def case_conv_depthwise_same(rng):
    inits = {"W": rnd(rng, [3, 1, 3, 3], 0.4), "W2": rnd(rng, [5, 3, 1, 1], 0.5),
             "B2": rnd(rng, [5], 0.1)}
    nodes = [
        helper.make_node("Conv", ["X", "W"], ["d"], kernel_shape=[3, 3], group=3,
                         strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["d"], ["Y0"]),
        helper.make_node("Conv", ["X", "W2", "B2"], ["Y1"], kernel_shape=[1, 1], strides=[3, 2]),
        helper.make_node("MaxPool", ["X"], ["Y2"], kernel_shape=[3, 3], strides=[2, 2],
                         dilations=[2, 1], ceil_mode=1),
    ]
    return (model(nodes, {"X": rnd(rng, [2, 3, 7, 8])}, ["Y0", "Y1", "Y2"], inits),
            "depthwise Conv (group = channels, no bias) SAME_UPPER stride 2 -> Relu; 1x1 Conv "
            "stride [3,2]; MaxPool dilations [2,1] ceil_mode")


def case_gemm(rng):
    inits = {"B": rnd(rng, [4, 5]), "C": rnd(rng, [4]), "B2": rnd(rng, [5, 4]),
             "C2": rnd(rng, [3, 1])}
    nodes = [
        helper.make_node("Gemm", ["A", "B", "C"], ["Y0"], transA=1, transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Gemm", ["At", "B2"], ["Y1"]),
        helper.make_node("Gemm", ["At", "B2", "C2"], ["Y2"], alpha=-1.25, beta=0.75),
    ]
    return (model(nodes, {"A": rnd(rng, [5, 3]), "At": rnd(rng, [3, 5])}, ["Y0", "Y1", "Y2"],
                  inits),
            "Gemm transA+transB alpha 0.5 beta 2 with C [N]; plain Gemm without C; "
            "alpha -1.25 beta 0.75 with C [M,1]")


def case_matmul_broadcast(rng):
    nodes = [
        helper.make_node("MatMul", ["A", "B"], ["Y0"]),
        helper.make_node("MatMul", ["v", "B"], ["Y1"]),
        helper.make_node("MatMul", ["M", "v"], ["Y2"]),
        helper.make_node("MatMul", ["M", "W"], ["Y3"]),
    ]
    return (model(nodes, {"A": rnd(rng, [2, 1, 3, 4]), "B": rnd(rng, [5, 4, 6]),
                          "v": rnd(rng, [4]), "M": rnd(rng, [7, 4])}, ["Y0", "Y1", "Y2", "Y3"],
                  {"W": rnd(rng, [4, 33])}),
            "MatMul [2,1,3,4]x[5,4,6] (batch broadcast), 1-D x 3-D, 2-D x 1-D, 2-D x weight")


def case_elementwise_broadcast(rng):
    den = (rng.uniform(0.5, 2.0, size=(1, 3, 4, 5)) * np.where(rng.uniform(size=(1, 3, 4, 5)) < .5,
                                                               -1, 1)).astype(F32)
    inits = {"a": rnd(rng, [4, 1]), "b": rnd(rng, [5]), "c": np.array(1.5, F32), "den": den}
    nodes = [
        helper.make_node("Add", ["X", "a"], ["t0"]),
        helper.make_node("Sub", ["b", "t0"], ["t1"]),
        helper.make_node("Mul", ["t1", "Z"], ["t2"]),
        helper.make_node("Div", ["t2", "den"], ["t3"]),
        helper.make_node("Sub", ["t3", "c"], ["Y0"]),
        helper.make_node("Div", ["c", "den"], ["Y1"]),
    ]
    return (model(nodes, {"X": rnd(rng, [2, 3, 4, 5]), "Z": rnd(rng, [3, 1, 1])}, ["Y0", "Y1"],
                  inits),
            "Add [2,3,4,5]+[4,1], Sub [5]-x, Mul by input [3,1,1], Div by [1,3,4,5], "
            "Sub scalar; scalar / tensor")


def case_softmax_axis(rng):
    nodes = [helper.make_node("Softmax", ["X"], ["Y0"], axis=1),
             helper.make_node("Softmax", ["X"], ["Y1"]),
             helper.make_node("Softmax", ["X"], ["Y2"], axis=0)]
    return (model(nodes, {"X": rnd(rng, [2, 3, 4], 10.0)}, ["Y0", "Y1", "Y2"]),
            "Softmax opset 13 on [2,3,4]: axis 1, default axis -1, axis 0 (inputs scaled x10)")


def case_softmax_opset11(rng):
    nodes = [helper.make_node("Softmax", ["X"], ["Y0"], axis=1),
             helper.make_node("Softmax", ["X"], ["Y1"])]
    return (model(nodes, {"X": rnd(rng, [2, 3, 4], 3.0)}, ["Y0", "Y1"], opset=11),
            "Softmax opset 11 on [2,3,4]: axis 1 coerces to [2,12]; the default axis is 1 too")


def case_batchnorm(rng):
    c = 3
    inits = {"s": rnd(rng, [c]), "b": rnd(rng, [c]), "m": rnd(rng, [c]),
             "v": np.asarray(rng.uniform(0.1, 3.0, c), F32)}
    nodes = [helper.make_node("BatchNormalization", ["X", "s", "b", "m", "v"], ["Y0"],
                              epsilon=1e-3),
             helper.make_node("BatchNormalization", ["X2", "s", "b", "m", "v"], ["Y1"])]
    return (model(nodes, {"X": rnd(rng, [2, c, 4, 5]), "X2": rnd(rng, [4, c])}, ["Y0", "Y1"],
                  inits),
            "BatchNormalization (inference) on [2,3,4,5] epsilon 1e-3, and on [4,3] default epsilon")


def case_averagepool(rng):
    nodes = [
        helper.make_node("AveragePool", ["X"], ["Y0"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("AveragePool", ["X"], ["Y1"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("AveragePool", ["X"], ["Y2"], kernel_shape=[2, 3], strides=[2, 2],
                         pads=[0, 1, 1, 0], ceil_mode=1),
    ]
    return (model(nodes, {"X": rnd(rng, [1, 2, 7, 8])}, ["Y0", "Y1", "Y2"]),
            "AveragePool 3x3/2 pads 1: count_include_pad 0 and 1; 2x3/2 asymmetric pads ceil_mode")


def case_globalaveragepool(rng):
    nodes = [helper.make_node("GlobalAveragePool", ["X"], ["Y"])]
    return (model(nodes, {"X": rnd(rng, [2, 3, 5, 7])}, ["Y"]), "GlobalAveragePool [2,3,5,7]")


def case_activations(rng):
    x = rnd(rng, [3, 17], 4.0)
    x[0, :6] = [0.0, -0.0, 100.0, -100.0, 6.0, -1.0]
    inits = {"lo": np.array(-1.0, F32), "hi": np.array(6.0, F32)}
    nodes = [
        helper.make_node("Clip", ["X", "lo", "hi"], ["Y0"]),
        helper.make_node("Clip", ["X", "lo"], ["Y1"]),
        helper.make_node("Clip", ["X", "", "hi"], ["Y2"]),
        helper.make_node("LeakyRelu", ["X"], ["Y3"], alpha=0.1),
        helper.make_node("LeakyRelu", ["X"], ["Y4"]),
        helper.make_node("Sigmoid", ["X"], ["Y5"]),
        helper.make_node("Tanh", ["X"], ["Y6"]),
        helper.make_node("Relu", ["X"], ["Y7"]),
    ]
    return (model(nodes, {"X": x}, [f"Y{i}" for i in range(8)], inits),
            "Clip (min+max inputs, min only, max only via empty name), LeakyRelu alpha 0.1 and "
            "default 0.01, Sigmoid, Tanh, Relu; zeros, -0 and +-100 planted")


def case_shape_ops(rng):
    inits = {
        "rs": i64([0, -1, 5]), "ax1": i64([1]), "st": i64([1, -1]), "en": i64([7, -4]),
        "axs": i64([0, 2]), "sp": i64([2, -1]), "gi": i64([[2, 0], [-1, 1]]),
        "split": i64([2, 3]), "eshape": i64([2, 3, 3, 4]), "gs": i64(-2), "m1": i64([-1]),
        "zero": i64(0),
    }
    nodes = [
        helper.make_node("Transpose", ["X"], ["t"], perm=[0, 2, 3, 1]),          # [2,4,5,3]
        helper.make_node("Flatten", ["t"], ["f"], axis=2),                        # [8,15]
        helper.make_node("Reshape", ["f", "rs"], ["r"]),                          # [8,3,5]
        helper.make_node("Unsqueeze", ["r", "ax1"], ["u"]),                       # [8,1,3,5]
        helper.make_node("Squeeze", ["u", "ax1"], ["sq"]),                        # [8,3,5]
        helper.make_node("Slice", ["sq", "st", "en", "axs", "sp"], ["sl"]),       # [3,3,3]
        helper.make_node("Gather", ["sl", "gi"], ["Y0"], axis=1),                 # [3,2,2,3]
        helper.make_node("Gather", ["sl", "gs"], ["Y1"], axis=-1),                # [3,3]
        helper.make_node("Shape", ["X"], ["shp"]),
        helper.make_node("Cast", ["shp"], ["Y2"], to=TensorProto.FLOAT),          # [4]
        helper.make_node("Concat", ["sl", "sl"], ["Y3"], axis=-1),                # [3,3,6]
        helper.make_node("Split", ["sq", "split"], ["Y4", "Y5"], axis=2),        # [8,3,2] [8,3,3]
        helper.make_node("Gather", ["Y1", "zero"], ["col"], axis=1),              # [3]
        helper.make_node("Unsqueeze", ["col", "m1"], ["e_in"]),                   # [3,1]
        helper.make_node("Expand", ["e_in", "eshape"], ["Y6"]),                   # [2,3,3,4]
        helper.make_node("Cast", ["X"], ["xi"], to=TensorProto.INT32),
        helper.make_node("Cast", ["xi"], ["Y7"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["X"], ["Y8"], axis=0),                       # [1,120]
    ]
    x = rnd(rng, [2, 3, 4, 5], 3.0)
    outs = [f"Y{i}" for i in range(9)]
    return (model(nodes, {"X": x}, outs, inits),
            "Transpose, Flatten axis 2 and 0, Reshape [0,-1,5], Unsqueeze/Squeeze (axes inputs), "
            "Slice with negative start/end/step, Gather (index matrix with -1; scalar -2 on axis "
            "-1), Shape->Cast, Concat axis -1, Split sizes input, Expand, Cast to int32 and back")


def case_opset11_forms(rng):
    inits = {"roi": np.zeros([0], F32), "scales": np.asarray([1, 1, 2, 0.5], F32),
             "lo": np.array(-0.5, F32)}
    nodes = [
        helper.make_node("Unsqueeze", ["X"], ["u"], axes=[0, -1]),               # [1,3,4,6,1]
        helper.make_node("Squeeze", ["u"], ["Y0"], axes=[4]),                     # [1,3,4,6]
        helper.make_node("Split", ["X"], ["Y1", "Y2", "Y3"], axis=2, split=[1, 2, 3]),
        helper.make_node("Resize", ["Y0", "roi", "scales"], ["Y4"], mode="linear",
                         coordinate_transformation_mode="align_corners"),
        helper.make_node("Clip", ["X", "lo"], ["Y5"]),
        helper.make_node("Dropout", ["X"], ["Y6"], ratio=0.3),
        helper.make_node("Softmax", ["X"], ["Y7"]),
    ]
    return (model(nodes, {"X": rnd(rng, [3, 4, 6])}, [f"Y{i}" for i in range(8)], inits, opset=11),
            "opset 11 forms: Unsqueeze/Squeeze axes attributes, Split split attribute, Resize "
            "with roi + scales inputs, Clip min input, Dropout ratio attribute, Softmax default axis")


def _resize_case(rng, mode, specs, desc):
    """specs: list of (coord, nearest_mode, 'scales'|'sizes', values)."""
    x = rnd(rng, [1, 2, 5, 7])
    inits, nodes, outs = {}, [], []
    for i, (coord, nm, kind, vals) in enumerate(specs):
        attrs = {"mode": mode, "coordinate_transformation_mode": coord}
        if nm:
            attrs["nearest_mode"] = nm
        if kind == "scales":
            inits[f"s{i}"] = np.asarray(vals, F32)
            ins = ["X", "", f"s{i}"]
        else:
            inits[f"z{i}"] = i64(vals)
            ins = ["X", "", "", f"z{i}"]
        nodes.append(helper.make_node("Resize", ins, [f"Y{i}"], **attrs))
        outs.append(f"Y{i}")
    return model(nodes, {"X": x}, outs, inits), desc


def case_resize_linear(rng):
    specs = [("half_pixel", None, "scales", [1, 1, 2.0, 1.5]),
             ("align_corners", None, "sizes", [1, 2, 9, 4]),
             ("asymmetric", None, "scales", [1, 1, 0.6, 2.0]),
             ("pytorch_half_pixel", None, "sizes", [1, 2, 1, 13]),
             ("half_pixel", None, "sizes", [1, 2, 3, 3])]
    return _resize_case(rng, "linear", specs,
                        "Resize linear on [1,2,5,7]: half_pixel x2/x1.5 (scales), align_corners to "
                        "9x4 (sizes), asymmetric x0.6/x2, pytorch_half_pixel to 1x13, half_pixel "
                        "down to 3x3")


def case_resize_nearest(rng):
    specs = [("half_pixel", None, "scales", [1, 1, 2.0, 1.5]),
             ("align_corners", "round_prefer_ceil", "sizes", [1, 2, 9, 4]),
             ("asymmetric", "floor", "scales", [1, 1, 0.6, 2.0]),
             ("pytorch_half_pixel", "ceil", "sizes", [1, 2, 1, 13]),
             ("half_pixel", "round_prefer_floor", "sizes", [1, 2, 3, 3]),
             ("asymmetric", "ceil", "scales", [1, 1, 3.0, 3.0])]
    return _resize_case(rng, "nearest", specs,
                        "Resize nearest on [1,2,5,7]: same sizes as resize_linear with "
                        "nearest_mode default (round_prefer_floor), round_prefer_ceil, floor, "
                        "ceil; asymmetric+ceil x3")


def case_resize_dynamic_nhwc(rng):
    inits = {"hw": i64([12, 10]), "b0": i64([0]), "b2": i64([2])}
    nodes = [
        helper.make_node("Transpose", ["X"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Shape", ["nchw"], ["s"]),
        helper.make_node("Slice", ["s", "b0", "b2"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["nchw", "", "", "sizes"], ["r"], mode="linear",
                         coordinate_transformation_mode="half_pixel", nearest_mode="floor"),
        helper.make_node("Transpose", ["r"], ["Y"], perm=[0, 2, 3, 1]),
    ]
    return (model(nodes, {"X": np.asarray(rng.uniform(0, 255, (2, 7, 16, 3)), F32)}, ["Y"], inits),
            "the tf2onnx Keras Resizing pattern: NHWC -> Transpose -> Shape/Slice/Concat sizes -> "
            "Resize linear half_pixel to 12x10 -> Transpose back")


def case_constant_identity_dropout(rng):
    nodes = [
        G._const("k", rnd(rng, [1, 4])),
        helper.make_node("Constant", [], ["kf"], value_float=0.25),
        helper.make_node("Add", ["X", "k"], ["a"]),
        helper.make_node("Mul", ["a", "kf"], ["b"]),
        helper.make_node("Identity", ["b"], ["c"]),
        helper.make_node("Dropout", ["c", "ratio"], ["Y0", "mask"]),
        helper.make_node("Dropout", ["X"], ["Y1"]),
        helper.make_node("Identity", ["w"], ["Y2"]),
    ]
    return (model(nodes, {"X": rnd(rng, [3, 4])}, ["Y0", "Y1", "Y2"],
                  {"ratio": np.array(0.5, F32), "w": rnd(rng, [2, 2])}),
            "Constant (tensor and value_float), Identity, Dropout opset 13 with ratio input and an "
            "unused mask output (inference: identity), Identity of an initializer")


def case_keras_cnn(rng):
    mb, ins = G.build_keras_cnn(np.random.RandomState(7))
    return (mb, ins), "small tf2onnx-style Keras CNN (onnx_graphs.build_keras_cnn, seed 7)"


CASES = [
    ("conv_group_dilation", case_conv_group_dilation),
    ("conv_depthwise_same", case_conv_depthwise_same),
    ("gemm", case_gemm),
    ("matmul_broadcast", case_matmul_broadcast),
    ("elementwise_broadcast", case_elementwise_broadcast),
    ("softmax_axis", case_softmax_axis),
    ("softmax_opset11", case_softmax_opset11),
    ("batchnorm", case_batchnorm),
    ("averagepool", case_averagepool),
    ("globalaveragepool", case_globalaveragepool),
    ("activations", case_activations),
    ("shape_ops", case_shape_ops),
    ("opset11_forms", case_opset11_forms),
    ("resize_linear", case_resize_linear),
    ("resize_nearest", case_resize_nearest),
    ("resize_dynamic_nhwc", case_resize_dynamic_nhwc),
    ("constant_identity_dropout", case_constant_identity_dropout),
    ("keras_cnn", case_keras_cnn),
]


# ----------------------------------------------------------------------------------------

def write_case(name, model_rel, model_bytes, inputs, tolerance, description):
    outs = G.reference(model_bytes, inputs)
    m = onnx.load_from_string(model_bytes)
    out_names = [o.name for o in m.graph.output]
    spec = {"model": model_rel, "description": description,
            "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "tolerance": tolerance, "inputs": [], "outputs": []}
    for i, (k, v) in enumerate(inputs.items()):
        f = f"{name}.in{i}.f32"
        np.asarray(v, "<f4").tofile(os.path.join(HERE, f))
        spec["inputs"].append({"name": k, "shape": list(v.shape), "dtype": "float32", "file": f})
    for i, (k, v) in enumerate(zip(out_names, outs)):
        assert v.dtype == np.float32, (name, k, v.dtype)
        f = f"{name}.out{i}.f32"
        np.asarray(v, "<f4").tofile(os.path.join(HERE, f))
        spec["outputs"].append({"name": k, "shape": list(v.shape), "dtype": "float32", "file": f})
    text = json.dumps(spec, indent=1)
    # shapes on one line: "shape": [1, 64, 80, 3]
    text = re.sub(r"\[\s*([-0-9,\s]*?)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",") if v.strip())
                  + "]", text)
    with open(os.path.join(HERE, name + ".json"), "w") as fh:
        fh.write(text + "\n")
    ops = sorted({n.op_type for n in m.graph.node})
    return spec, ops


def skin_cases():
    import make_cnn  # numpy + pillow only at import time
    rows = []
    full = os.path.join(REPO, "examples", "models", "skin_cnn.onnx")
    head = os.path.join(REPO, "examples", "models", "skin_cnn_300.onnx")
    rel_full = os.path.relpath(full, HERE)
    rel_head = os.path.relpath(head, HERE)
    mb_full = open(full, "rb").read()
    mb_head = open(head, "rb").read()
    in_name = onnx.load_from_string(mb_full).graph.input[0].name
    rng = np.random.default_rng(SEED)
    for name, cls, h, w in [("skin_cnn_64x80", "mel", 64, 80), ("skin_cnn_120x90", "nv", 120, 90)]:
        img = make_cnn.make_image(rng, cls, h, w)[None].astype(F32)
        spec, ops = write_case(name, rel_full, mb_full, {in_name: img}, CNN_TOL,
                               f"examples/models/skin_cnn.onnx on a synthetic {cls} picture "
                               f"{h}x{w} (RGB 0..255, NHWC); the model resizes it to 300x300")
        rows.append((name, spec, ops))
    img = make_cnn.make_image(rng, "bcc", 300, 300)[None].astype(F32) / 255.0
    in300 = onnx.load_from_string(mb_head).graph.input[0].name
    spec, ops = write_case("skin_cnn_300", rel_head, mb_head, {in300: img.astype(F32)}, CNN_TOL,
                           "examples/models/skin_cnn_300.onnx on a synthetic bcc picture "
                           "300x300 scaled to [0,1] (NHWC)")
    rows.append(("skin_cnn_300", spec, ops))
    return rows


def main():
    for f in os.listdir(HERE):
        if f.endswith((".onnx", ".json", ".f32")):
            os.remove(os.path.join(HERE, f))
    rows = []
    for name, fn in CASES:
        (mb, inputs), desc = fn(np.random.default_rng([SEED, len(rows)]))
        with open(os.path.join(HERE, name + ".onnx"), "wb") as fh:
            fh.write(mb)
        spec, ops = write_case(name, name + ".onnx", mb, inputs, TOL, desc)
        rows.append((name, spec, ops))
    rows += skin_cases()

    total = sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE))
    lines = [
        "# ONNX parity fixtures",
        "",
        "Small graphs with inputs and the outputs onnxruntime computed for them, readable without",
        "numpy. Regenerate with `python Tests/Fixtures/onnx/make_fixtures.py` (needs numpy, onnx,",
        "onnxruntime and pillow; no TensorFlow; seeded, so a rerun with the same onnxruntime gives",
        "the same files). Edit the script, not the files.",
        "",
        "Per case `NAME`:",
        "",
        "- `NAME.json`: `{\"model\": path, \"inputs\": [...], \"outputs\": [...], \"tolerance\": t,",
        "  \"opset\": k, \"description\": ...}`; each input/output is `{\"name\", \"shape\",",
        "  \"dtype\": \"float32\", \"file\"}`. Paths are relative to this directory.",
        "- `NAME.onnx`: the model. The `skin_cnn_*` cases do not copy the 740 KB CNN: their",
        "  `model` is `../../../examples/models/skin_cnn.onnx` (or `skin_cnn_300.onnx`).",
        "- `NAME.in<i>.f32`, `NAME.out<i>.f32`: raw little-endian float32, row-major, no header;",
        "  outputs in graph-output order.",
        "",
        "A value matches when `|got - expected| <= tolerance * (1 + |expected|)`, element by",
        "element, with equal shapes. Every graph input and output is float32 (integer results such",
        "as Shape's are Cast to float inside the graph).",
        "",
        f"Generated with onnx {onnx.__version__} and onnxruntime {__import__('onnxruntime').__version__}. "
        f"Directory size: {total / 1024:.0f} KB.",
        "",
        "| case | opset | inputs | outputs | tolerance | operators | what it checks |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, spec, ops in rows:
        ins = ", ".join(f"{i['name']} {i['shape']}" for i in spec["inputs"])
        outs = ", ".join(f"{o['name']} {o['shape']}" for o in spec["outputs"])
        lines.append(f"| `{name}` | {spec['opset']} | {ins} | {outs} | {spec['tolerance']:g} | "
                     f"{', '.join(ops)} | {spec['description']} |")
    with open(os.path.join(HERE, "README.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"{len(rows)} cases, {total} bytes")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Build, briefly train and export the ICU stroke-alert sequence models (issue 6).

The models are the ones the ICU project used (see shared DESIGN.md): predict a stroke
alert 2 hours ahead from hourly vital signs (MIMIC-III in the project; synthetic here).
Every model takes RAW clinical values: a Keras Normalization layer adapted to the
training data is the first layer of each branch, so callers never scale anything.

    vitals [N, T, 8]  heart rate (bpm), systolic, diastolic, mean arterial pressure (mmHg),
                      respiratory rate (/min), SpO2 (%), temperature (C), GCS (3-15);
                      N and T are dynamic
    static [N, 4]     sex (0 = female, 1 = male), age (years), height (cm), weight (kg)
                      (two-branch model only)
    risk   [N, 1]     probability of a stroke alert within 2 hours

Outputs (paths relative to the repository root):

    examples/models/icu_lstm.onnx        Normalization -> LSTM(64) -> Dense(1, sigmoid)
    examples/models/icu_gru.onnx         Normalization -> GRU(64) -> Dense(1, sigmoid);
                                         tf2onnx writes the GRU as a Loop whose body is the
                                         GRU cell (kept as exported, on purpose)
    examples/models/icu_bilstm.onnx      Normalization -> Bidirectional(LSTM(64)) ->
                                         Dense(32, relu) -> Dense(1, sigmoid)  ("tuned")
    examples/models/icu_two_branch.onnx  static -> Normalization -> Dense(16, relu);
                                         vitals -> Normalization -> LSTM(64);
                                         Concatenate -> Dense(32, relu) -> Dense(1, sigmoid)
    examples/models/icu_gru_fused.onnx   no TensorFlow: what torch.onnx.export writes for
                                         nn.GRU(8, 64, batch_first=True) + Linear + Sigmoid
                                         on Y_h (one fused GRU op, linear_before_reset=1),
                                         with (x - mean) / std in front, random weights

Each file carries metadata_props "feature_names" (the 8 vital names, comma-separated;
the two-branch model also "static_feature_names"). No class labels are stored: the
output is one probability.

This needs TensorFlow, which neither the library nor its tests use. Run it in a separate
virtualenv (made with tensorflow-cpu 2.20.0, keras 3.15.1, tf2onnx 1.17.0, onnx 1.23.2,
onnxruntime 1.32.0):

    /work/tfvenv/bin/python examples/models/make_icu.py

One CPU thread, about 20 s in all. Seeds are fixed, TensorFlow runs with op determinism
and PYTHONHASHSEED=0 (tf2onnx's node order depends on it): a rerun gives the same graphs
and weights, but not always the same bytes, because of which of two equal constants
tf2onnx keeps (e.g. ".../zeros/Const:0" or ".../zeros_1/Const:0") varies between runs.
`--loop-body-report FILE` writes the GRU Loop body's node list (what the engine must
recognise as a GRU cell).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

# tf2onnx names and orders some nodes by iterating over Python sets: fix the string hash
# seed (re-executing once) so that reruns write the same graphs.
if os.environ.get("PYTHONHASHSEED") != "0" and __name__ == "__main__":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from icu_data import (HIDDEN, STATIC_NAMES, VITAL_NAMES, make_cohort, vital_mean_std)  # noqa: E402

OPSET = 17
SEED = 20240606


# --------------------------------------------------------------------------------------
# Keras models
# --------------------------------------------------------------------------------------

def build_models(keras, vitals, static):
    """The four Keras models, their Normalization layers adapted to the training data."""
    layers = keras.layers
    flat = vitals.reshape(-1, vitals.shape[-1])

    def normalizer(name, data):
        norm = layers.Normalization(axis=-1, name=name)
        norm.adapt(data)
        return norm

    def recurrent_model(name, body):
        x_in = keras.Input(shape=(None, len(VITAL_NAMES)), name="vitals")
        x = normalizer("vitals_norm", flat)(x_in)
        return keras.Model(x_in, body(x), name=name)

    def dense_head(x):
        return layers.Dense(1, activation="sigmoid", name="risk")(x)

    models = {
        "icu_lstm": recurrent_model("icu_lstm", lambda x: dense_head(layers.LSTM(HIDDEN, name="lstm")(x))),
        "icu_gru": recurrent_model("icu_gru", lambda x: dense_head(layers.GRU(HIDDEN, name="gru")(x))),
        "icu_bilstm": recurrent_model("icu_bilstm", lambda x: dense_head(
            layers.Dense(32, activation="relu", name="tuned_dense")(
                layers.Bidirectional(layers.LSTM(HIDDEN), name="bilstm")(x)))),
    }
    s_in = keras.Input(shape=(len(STATIC_NAMES),), name="static")
    v_in = keras.Input(shape=(None, len(VITAL_NAMES)), name="vitals")
    s = layers.Dense(16, activation="relu", name="static_dense")(normalizer("static_norm", static)(s_in))
    v = layers.LSTM(HIDDEN, name="lstm")(normalizer("vitals_norm", flat)(v_in))
    h = layers.Dense(32, activation="relu", name="head_dense")(layers.Concatenate(name="concat")([s, v]))
    models["icu_two_branch"] = keras.Model([s_in, v_in], dense_head(h), name="icu_two_branch")
    return models


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------

def _all_graphs(graph):
    """The graph and every subgraph (Loop/If bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g.node:
                yield from _all_graphs(attr.g)
            for g in attr.graphs:
                yield from _all_graphs(g)


def canonical_names(proto) -> None:
    """Rename tf2onnx's counter-suffixed constants (const_starts__99, axes_const__92, ...)
    to const_0, const_1, ... in order of first use, in the graph and in every Loop body
    (bodies have their own initializers and also read the outer ones by name), and sort
    the initializers: their names and order vary from run to run, the graph does not."""
    pattern = re.compile(r"^(const_[A-Za-z_]+|[a-z]+_const|roi)__\d+$")
    graphs = list(_all_graphs(proto.graph))
    inits = {t.name for g in graphs for t in g.initializer}
    mapping = {}
    for graph in graphs:
        for node in graph.node:
            for name in node.input:
                if name in inits and pattern.match(name) and name not in mapping:
                    mapping[name] = f"const_{len(mapping)}"
    for graph in graphs:
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name in mapping:
                    node.input[i] = mapping[name]
        for t in graph.initializer:
            if t.name in mapping:
                t.name = mapping[t.name]
        tensors = sorted(graph.initializer, key=lambda t: t.name)
        copies = [type(t)() for t in tensors]
        for c, t in zip(copies, tensors):
            c.CopyFrom(t)
        del graph.initializer[:]
        graph.initializer.extend(copies)


def rename_output(proto, new_name: str) -> None:
    """tf2onnx names the output after the last Keras layer's tensor ("risk" or "risk_1"
    etc.): call it `new_name` everywhere it appears."""
    old = proto.graph.output[0].name
    if old == new_name:
        return
    for graph in _all_graphs(proto.graph):
        for node in graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new_name
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new_name
    proto.graph.output[0].name = new_name


def set_metadata(proto, doc: str, static: bool) -> None:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "feature_names", ",".join(VITAL_NAMES)
    if static:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "static_feature_names", ",".join(STATIC_NAMES)
    proto.doc_string = doc + "; made by examples/models/make_icu.py (synthetic training data)"


def export(tf, tf2onnx, onnx, model, name: str, path: str):
    static = len(model.inputs) == 2
    spec = []
    if static:
        spec.append(tf.TensorSpec((None, len(STATIC_NAMES)), tf.float32, name="static"))
    spec.append(tf.TensorSpec((None, None, len(VITAL_NAMES)), tf.float32, name="vitals"))
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=tuple(spec), opset=OPSET)
    canonical_names(proto)
    rename_output(proto, "risk")
    # Readable symbolic dimensions instead of tf2onnx's unk__NN counters.
    for graph_input in proto.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        for d, label in zip(dims, ["N", "T", "F"]):
            if d.dim_param or not d.dim_value:
                d.dim_param = label
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    if dims and (dims[0].dim_param or not dims[0].dim_value):
        dims[0].dim_param = "N"
    set_metadata(proto, f"MedInfer ICU stroke-alert model {name}", static)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return proto


# --------------------------------------------------------------------------------------
# The PyTorch-style fused GRU (onnx.helper only)
# --------------------------------------------------------------------------------------

def make_fused_gru(onnx, path: str, rng: np.random.Generator, vitals) -> None:
    """What torch.onnx.export writes for

        class Net(nn.Module):
            def forward(self, x):                          # x [N, T, 8], raw vitals
                x = (x - self.mean) / self.std
                _, h = self.gru(x)                         # nn.GRU(8, 64, batch_first=True)
                return torch.sigmoid(self.fc(h[-1]))       # nn.Linear(64, 1)

    torch moves batch_first to the front with a Transpose, reorders its gates (r, z, n)
    into ONNX's (z, r, h), uses linear_before_reset=1 (PyTorch's n-gate form), passes no
    initial_h, and feeds Y_h [1, N, 64] to the Linear through Squeeze. Weights are random
    (PyTorch's U(-1/sqrt(64), 1/sqrt(64)) init) with a few deliberately large recurrent
    ones, so the gates saturate on some inputs."""
    from onnx import TensorProto, helper, numpy_helper

    mean, std = vital_mean_std(vitals)
    bound = 1 / np.sqrt(HIDDEN)
    w = rng.uniform(-bound, bound, (1, 3 * HIDDEN, len(VITAL_NAMES))).astype(np.float32) * 4
    r = rng.uniform(-bound, bound, (1, 3 * HIDDEN, HIDDEN)).astype(np.float32) * 2
    b = rng.uniform(-bound, bound, (1, 6 * HIDDEN)).astype(np.float32)
    fc_w = rng.normal(0, 0.3, (1, HIDDEN)).astype(np.float32)
    fc_b = np.array([-0.5], dtype=np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (mean.astype(np.float32), "onnx::Sub_mean"), (std.astype(np.float32), "onnx::Div_std"),
        (w, "onnx::GRU_W"), (r, "onnx::GRU_R"), (b, "onnx::GRU_B"),
        (np.array([0], dtype=np.int64), "onnx::Squeeze_axes"),
        (fc_w, "fc.weight"), (fc_b, "fc.bias"))]
    nodes = [
        helper.make_node("Sub", ["vitals", "onnx::Sub_mean"], ["/Sub_output_0"], name="/Sub"),
        helper.make_node("Div", ["/Sub_output_0", "onnx::Div_std"], ["/Div_output_0"], name="/Div"),
        helper.make_node("Transpose", ["/Div_output_0"], ["/gru/Transpose_output_0"], name="/gru/Transpose",
                         perm=[1, 0, 2]),
        helper.make_node("GRU", ["/gru/Transpose_output_0", "onnx::GRU_W", "onnx::GRU_R", "onnx::GRU_B", ""],
                         ["/gru/GRU_output_0", "/gru/GRU_output_1"], name="/gru/GRU",
                         hidden_size=HIDDEN, linear_before_reset=1),
        helper.make_node("Squeeze", ["/gru/GRU_output_1", "onnx::Squeeze_axes"], ["/Squeeze_output_0"],
                         name="/Squeeze"),
        helper.make_node("Gemm", ["/Squeeze_output_0", "fc.weight", "fc.bias"], ["/fc/Gemm_output_0"],
                         name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Sigmoid", ["/fc/Gemm_output_0"], ["risk"], name="/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("vitals", TensorProto.FLOAT, ["N", "T", len(VITAL_NAMES)])],
        [helper.make_tensor_value_info("risk", TensorProto.FLOAT, ["N", 1])], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8,
                              producer_name="pytorch", producer_version="2.5.0")
    set_metadata(proto, "PyTorch-style fused GRU (random weights)", static=False)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------

def describe_ops(proto) -> str:
    ops = {}
    for graph in _all_graphs(proto.graph):
        for node in graph.node:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(ops.items()))


def loop_bodies(proto) -> str:
    """The node list of every Loop body: op type, inputs -> outputs."""
    lines = []
    for node in proto.graph.node:
        if node.op_type != "Loop":
            continue
        body = next(a.g for a in node.attribute if a.name == "body")
        lines.append(f"Loop {node.name!r}: inputs {list(node.input)} -> outputs {list(node.output)}")
        lines.append(f"  body inputs:  {[i.name for i in body.input]}")
        lines.append(f"  body outputs: {[o.name for o in body.output]}")
        outer = {t.name: t for t in proto.graph.initializer}
        lines.append("  outer initializers fed to the Loop: " + ", ".join(
            f"{name} {tensor_text(outer[name])}" for name in node.input if name in outer))
        lines.append("  body initializers: " + ", ".join(f"{t.name} {tensor_text(t)}" for t in body.initializer))
        for i, n in enumerate(body.node):
            attrs = {a.name: onnx_attr(a) for a in n.attribute}
            attr_text = f"  {attrs}" if attrs else ""
            lines.append(f"  {i:2d} {n.op_type:<12} {list(n.input)} -> {list(n.output)}{attr_text}")
    return "\n".join(lines)


def tensor_text(tensor) -> str:
    """Shape, and the values of small tensors (slice bounds, axes, scalars)."""
    from onnx import numpy_helper
    values = numpy_helper.to_array(tensor)
    return f"{list(values.shape)}" + (f"={values.tolist()}" if values.size <= 4 else "")


def onnx_attr(attr):
    from onnx import helper
    value = helper.get_attribute_value(attr)
    if hasattr(value, "dims"):  # a tensor
        return f"tensor{list(value.dims)}"
    if isinstance(value, bytes):
        return value.decode()
    return value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--loop-body-report", default=None,
                    help="also write the GRU Loop body's node list to this file")
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
          f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")

    rng = np.random.default_rng(SEED)
    vitals, static, labels = make_cohort(rng, args.patients, steps=48)
    print(f"cohort: {len(labels)} patients x 48 h, {labels.mean():.1%} stroke alerts")
    split = int(0.8 * len(labels))
    models = build_models(keras, vitals[:split], static[:split])

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    check_rng = np.random.default_rng(SEED + 1)
    check_vitals, check_static, _ = make_cohort(check_rng, 64, steps=30)
    for name, model in models.items():
        two_inputs = len(model.inputs) == 2
        train_x = [static[:split], vitals[:split]] if two_inputs else vitals[:split]
        test_x = [static[split:], vitals[split:]] if two_inputs else vitals[split:]
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
        started = time.perf_counter()
        model.fit(train_x, labels[:split], epochs=args.epochs, batch_size=64, verbose=0)
        _, auc = model.evaluate(test_x, labels[split:], verbose=0)
        path = os.path.join(HERE, f"{name}.onnx")
        proto = export(tf, tf2onnx, onnx, model, name, path)
        # Keras against onnxruntime on other data, another length than training (T=30).
        check_x = [check_static, check_vitals] if two_inputs else check_vitals
        want = model.predict(check_x, verbose=0)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feeds = {"vitals": check_vitals}
        if two_inputs:
            feeds["static"] = check_static
        got = session.run(None, feeds)[0]
        print(f"\n{name}: trained {time.perf_counter() - started:.1f} s, test AUC {auc:.3f}, "
              f"{os.path.getsize(path) / 1024:.0f} KB, Keras vs onnxruntime max |diff| "
              f"{np.abs(got - want).max():.1e} (64 patients x 30 h)")
        print(f"  ops: {describe_ops(proto)}")
        if any(n.op_type == "Loop" for n in proto.graph.node):
            report = loop_bodies(proto)
            print(report)
            if args.loop_body_report:
                with open(args.loop_body_report, "w") as f:
                    f.write(f"{name}.onnx (tf2onnx {tf2onnx.__version__}, opset {OPSET})\n{report}\n")

    path = os.path.join(HERE, "icu_gru_fused.onnx")
    make_fused_gru(onnx, path, np.random.default_rng(SEED + 2), vitals[:split])
    proto = onnx.load(path)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    risk = session.run(None, {"vitals": check_vitals})[0]
    print(f"\nicu_gru_fused: {os.path.getsize(path) / 1024:.0f} KB, risks {risk.min():.3f}..{risk.max():.3f}")
    print(f"  ops: {describe_ops(proto)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

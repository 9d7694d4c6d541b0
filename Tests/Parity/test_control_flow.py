"""Loop and If that are not a GRU cell, against onnxruntime.

The Keras GRU's Loop runs on the fused kernel (test_sequence_parity.py); these graphs take
the general paths: a Loop unrolled into the plan (a scan over time steps read from the
enclosing graph, carried state, a stacked scan output) and an If whose condition is known
when the input shapes are.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "python") not in sys.path:
    sys.path.insert(0, str(ROOT / "python"))
import medinfer  # noqa: E402


def _model(graph) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _compare(data: bytes, feeds: dict) -> None:
    reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = list(medinfer.Network.from_bytes(data).run(feeds).values())
    assert len(got) == len(reference)
    for r, g in zip(reference, got):
        assert r.shape == g.shape
        assert np.abs(r - g).max() <= 1e-6


def test_a_recurrence_that_is_not_a_gru_is_unrolled():
    steps, batch, features = 5, 2, 3
    body = helper.make_graph(
        [helper.make_node("Gather", ["X", "i"], ["x_t"], axis=0),
         helper.make_node("Mul", ["h", "a"], ["ha"]),
         helper.make_node("Add", ["ha", "x_t"], ["s"]),
         helper.make_node("Tanh", ["s"], ["h_next"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["h_next"], ["scan"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_next", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("scan", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([0.5, -0.3, 0.9], np.float32), "a")])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["M", "", "h0"], ["h_last", "Y"], body=body)],
        "scan", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [steps, batch, features])],
        [helper.make_tensor_value_info("h_last", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(steps, np.int64), "M"),
         numpy_helper.from_array(np.zeros((batch, features), np.float32), "h0")])
    x = np.random.default_rng(0).normal(size=(steps, batch, features)).astype(np.float32)
    _compare(_model(graph), {"X": x})


def test_an_if_on_a_shape_takes_its_branch():
    def branch(name: str, op: str) -> object:
        return helper.make_graph([helper.make_node(op, ["X"], [name])], name, [],
                                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)])
    graph = helper.make_graph(
        [helper.make_node("Shape", ["X"], ["shape"]),
         helper.make_node("Gather", ["shape", "zero"], ["rows"], axis=0),
         helper.make_node("Greater", ["rows", "one"], ["many"]),
         helper.make_node("If", ["many"], ["out"], then_branch=branch("then", "Tanh"), else_branch=branch("else", "Sigmoid"))],
        "choose", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array(1, np.int64), "one")])
    data = _model(graph)
    rng = np.random.default_rng(1)
    for rows in (1, 3):
        _compare(data, {"X": rng.normal(size=(rows, 4)).astype(np.float32)})

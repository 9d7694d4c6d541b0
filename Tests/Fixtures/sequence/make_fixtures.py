#!/usr/bin/env python3
"""Offline fixtures for the ICU sequence models: a small input and onnxruntime's output
per model, readable without numpy or onnxruntime (Tests/MedInferCoreTests/
SequenceFixtureTests.swift reads them). Edit this script, not the files:

    .venv/bin/python Tests/Fixtures/sequence/make_fixtures.py

Per model NAME (examples/models/NAME.onnx), batch 2 (one ordinary patient, one with
extreme vitals), 10 hourly steps:

    NAME.inputs.f32   every input, in the order of the manifest's `input` lines, raw
                      little-endian float32, row-major, concatenated, no header
    NAME.txt          the manifest, one fact per line:
                          model <path relative to this directory>
                          tolerance <absolute>
                          input <name> <dim> <dim> ...        (model input order)
                          output <name> <dim> <dim> ...
                          expected <value> <value> ...        (the output, row-major,
                                                               float32 printed exactly)

numpy and onnxruntime only (no TensorFlow); seeded, so a rerun with the same onnxruntime
writes the same files.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MODELS_DIR = ROOT / "examples" / "models"
sys.path.insert(0, str(MODELS_DIR))
from icu_data import extreme_vitals, make_cohort  # noqa: E402

MODELS = ["icu_lstm", "icu_gru", "icu_bilstm", "icu_two_branch", "icu_gru_fused"]
BATCH, STEPS = 2, 10
TOLERANCE = 1e-5
SEED = 6


def main() -> None:
    rng = np.random.default_rng(SEED)
    ordinary, static, _ = make_cohort(rng, BATCH, STEPS)
    vitals = np.concatenate([ordinary[:1], extreme_vitals(rng, 1, STEPS)])
    data = {"vitals": np.ascontiguousarray(vitals, dtype="<f4"), "static": np.ascontiguousarray(static, dtype="<f4")}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    for name in MODELS:
        path = MODELS_DIR / f"{name}.onnx"
        graph = onnx.load(str(path)).graph
        initializers = {t.name for t in graph.initializer}
        input_names = [i.name for i in graph.input if i.name not in initializers]
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = {n: data[n] for n in input_names}
        output_name = session.get_outputs()[0].name
        expected = session.run([output_name], feeds)[0].astype("<f4")
        (HERE / f"{name}.inputs.f32").write_bytes(b"".join(feeds[n].tobytes() for n in input_names))
        lines = [f"# {name}: onnxruntime {ort.__version__}, made by make_fixtures.py",
                 f"model ../../../examples/models/{name}.onnx", f"tolerance {TOLERANCE:g}"]
        lines += [f"input {n} " + " ".join(str(d) for d in feeds[n].shape) for n in input_names]
        lines.append(f"output {output_name} " + " ".join(str(d) for d in expected.shape))
        lines.append("expected " + " ".join(repr(float(v)) for v in expected.reshape(-1)))
        (HERE / f"{name}.txt").write_text("\n".join(lines) + "\n")
        print(f"{name}: inputs {[(n, feeds[n].shape) for n in input_names]} -> {expected.reshape(-1)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Malformed and hostile ONNX files for the ONNX reader's error paths.

Every file written here must be refused by a loader with an error status, never accepted,
never a crash, hang or huge allocation. Most are derived from a tiny valid model built in
memory (X[1,3] -> MatMul -> Add -> Softmax); the truncations also cut the real
examples/models/skin_cnn_300.onnx. Wire-level defects (overlong varints, lengths past the
end, deep nesting) are written with the small protobuf encoder below, so they do not depend
on what the protobuf library agrees to serialize.

Run: python Tests/Fixtures/malformed-onnx/make_malformed.py   (numpy, onnx; onnxruntime
optional: when present, every file is checked to be rejected by onnxruntime too). It deletes
the *.onnx files here, rewrites them and README.md. Seeded: the same bytes every run.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SKIN_300 = os.path.join(REPO, "examples", "models", "skin_cnn_300.onnx")
SEED = 5

# ---------------------------------------------------------------------------------------
# a minimal protobuf encoder
# ---------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    assert n >= 0
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def f_varint(field: int, value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    return key(field, 0) + varint(value)


def f_bytes(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def f_str(field: int, s: str) -> bytes:
    return f_bytes(field, s.encode())


# ONNX field numbers used below
M_IR, M_OPSET, M_GRAPH, M_PRODUCER = 1, 8, 7, 2
OPSET_DOMAIN, OPSET_VERSION = 1, 2
G_NODE, G_NAME, G_INIT, G_INPUT, G_OUTPUT = 1, 2, 5, 11, 12
N_INPUT, N_OUTPUT, N_NAME, N_OPTYPE, N_ATTR = 1, 2, 3, 4, 5
A_NAME, A_G, A_TYPE = 1, 6, 20
ATTR_GRAPH = 5
VI_NAME, VI_TYPE = 1, 2
T_TENSOR = 1
TT_ELEM, TT_SHAPE = 1, 2
SHAPE_DIM, DIM_VALUE = 1, 1


def value_info(name: str, dims) -> bytes:
    shape = b"".join(f_bytes(SHAPE_DIM, f_varint(DIM_VALUE, d)) for d in dims)
    tensor_type = f_varint(TT_ELEM, TensorProto.FLOAT) + f_bytes(TT_SHAPE, shape)
    return f_str(VI_NAME, name) + f_bytes(VI_TYPE, f_bytes(T_TENSOR, tensor_type))


def model_bytes(graph: bytes, ir: int = 7, opset: int = 13) -> bytes:
    return (f_varint(M_IR, ir) + f_str(M_PRODUCER, "medinfer-malformed") + f_bytes(M_GRAPH, graph)
            + f_bytes(M_OPSET, f_str(OPSET_DOMAIN, "") + f_varint(OPSET_VERSION, opset)))


# ---------------------------------------------------------------------------------------
# the tiny valid model
# ---------------------------------------------------------------------------------------

def tiny_graph(nodes=None, inits=None, inputs=None, outputs=None, name="tiny"):
    rng = np.random.default_rng(SEED)
    if inits is None:
        inits = [numpy_helper.from_array(rng.standard_normal((3, 2)).astype(np.float32), "W"),
                 numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "B")]
    if nodes is None:
        nodes = [helper.make_node("MatMul", ["X", "W"], ["m"], name="matmul"),
                 helper.make_node("Add", ["m", "B"], ["a"], name="add"),
                 helper.make_node("Softmax", ["a"], ["Y"], name="softmax", axis=-1)]
    inputs = inputs or [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3])]
    outputs = outputs or [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])]
    return helper.make_graph(nodes, name, inputs, outputs, initializer=inits)


def tiny_model(**kw) -> onnx.ModelProto:
    m = helper.make_model(tiny_graph(**kw), opset_imports=[helper.make_opsetid("", 13)],
                          ir_version=7, producer_name="medinfer-malformed")
    entry = m.metadata_props.add()
    entry.key, entry.value = "labels", "a,b"
    return m


def ser(m: onnx.ModelProto) -> bytes:
    return m.SerializeToString()


def raw_tensor(name, dims, data_type=TensorProto.FLOAT, raw=b"", **extra) -> TensorProto:
    t = TensorProto()
    t.name = name
    t.dims.extend(dims)
    t.data_type = data_type
    if raw:
        t.raw_data = raw
    for k, v in extra.items():
        setattr(t, k, v)
    return t


# ---------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------

def cases():
    out = []  # (file name, bytes, what is wrong)
    valid = ser(tiny_model())
    assert onnx.load_from_string(valid) is not None

    # --- truncations -----------------------------------------------------------------
    if os.path.exists(SKIN_300):
        skin = open(SKIN_300, "rb").read()
        for cut in (1, 2, 9, 64, 700, 4096, 65536):
            try:
                onnx.load_from_string(skin[:cut])
                why = ("it ends on a field boundary, so it is well-formed protobuf, but only "
                       "ir_version is left: no graph, no opset_import")
            except Exception:
                why = "the field being read runs past the end of the file"
            out.append((f"skin_cnn_300_truncated_{cut}.onnx", skin[:cut],
                        f"examples/models/skin_cnn_300.onnx cut after {cut} byte{'s' if cut > 1 else ''}: {why}"))
    else:
        print(f"warning: {SKIN_300} missing, its truncations are not written")
    for frac in (0.25, 0.5, 0.75):
        cut = int(len(valid) * frac)
        out.append((f"tiny_truncated_{int(frac * 100)}pct.onnx", valid[:cut],
                    f"a valid {len(valid)}-byte model cut after {cut} bytes"))
    out.append(("tiny_truncated_last_byte.onnx", valid[:-1],
                "a valid model without its last byte (inside metadata_props, the last field)"))

    # --- not ONNX at all ---------------------------------------------------------------
    out.append(("empty.onnx", b"", "zero bytes (an empty protobuf message: no graph, no "
                "ir_version, no opset_import)"))
    rng = np.random.default_rng(SEED)
    out.append(("random_garbage.onnx", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                "4096 random bytes"))
    out.append(("text_file.onnx", b"ir_version: 7\ngraph { name: \"g\" }\n",
                "protobuf text format instead of binary"))

    # --- bit flips -----------------------------------------------------------------------
    # Flips at seeded positions, kept only where the result no longer parses as a ModelProto
    # (a flip inside a float weight would give a valid model).
    frng = np.random.default_rng(SEED + 1)
    kept = 0
    while kept < 4:
        pos = int(frng.integers(0, len(valid)))
        bit = int(frng.integers(0, 8))
        b = bytearray(valid)
        b[pos] ^= 1 << bit
        try:
            onnx.load_from_string(bytes(b))
            continue
        except Exception:
            pass
        kept += 1
        out.append((f"tiny_bitflip_{kept}.onnx", bytes(b),
                    f"the tiny model with bit {bit} of byte {pos} flipped (no longer parses)"))

    # --- tensors -------------------------------------------------------------------------
    def with_init(t, file, what, node_input="W"):
        m = tiny_model(inits=[t, numpy_helper.from_array(np.zeros(2, np.float32), "B")])
        out.append((file, ser(m), what))

    with_init(raw_tensor("W", [2**32, 2**32, 16], raw=b"\0" * 24), "dims_overflow_int64.onnx",
              "initializer W with dims [2^32, 2^32, 16]: the element count overflows int64")
    with_init(raw_tensor("W", [2**61, 3], raw=b"\0" * 24), "dims_bytes_overflow.onnx",
              "initializer W with dims [2^61, 3]: the count fits in int64 but count x 4 bytes "
              "does not")
    with_init(raw_tensor("W", [-3, 2], raw=b"\0" * 24), "dims_negative.onnx",
              "initializer W with a negative dimension [-3, 2]")
    with_init(raw_tensor("W", [3, 2], raw=b"\0" * 20), "raw_data_short.onnx",
              "initializer W: dims [3, 2] float32 need 24 bytes of raw_data, it has 20")
    with_init(raw_tensor("W", [3, 2], raw=b"\0" * 28), "raw_data_long.onnx",
              "initializer W: dims [3, 2] float32 need 24 bytes of raw_data, it has 28")
    t = raw_tensor("W", [3, 2])
    t.float_data.extend([1.0] * 5)
    with_init(t, "float_data_count.onnx", "initializer W: dims [3, 2] but 5 values in float_data")
    with_init(raw_tensor("W", [3, 2], data_type=99, raw=b"\0" * 24), "data_type_unknown.onnx",
              "initializer W with data_type 99 (no such TensorProto.DataType)")
    t = raw_tensor("W", [3, 2], data_type=TensorProto.STRING)
    t.string_data.extend([b"a"] * 6)
    with_init(t, "data_type_string.onnx", "initializer W is a STRING tensor used by MatMul")
    t = raw_tensor("W", [3, 2], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "skin_weights.bin"), ("offset", "0"), ("length", "24")):
        e = t.external_data.add()
        e.key, e.value = k, v
    with_init(t, "external_data.onnx",
              "initializer W with data_location EXTERNAL, location 'skin_weights.bin' (no such "
              "file; a reader that does not support external data must say so)")
    t = raw_tensor("W", [3, 2], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "../../../../../../etc/passwd"), ("offset", "0"), ("length", "24")):
        e = t.external_data.add()
        e.key, e.value = k, v
    with_init(t, "external_data_path_traversal.onnx",
              "initializer W with external data at '../../../../../../etc/passwd' (must never be "
              "read)")

    # --- resource caps: a few hundred bytes asking planning for hundreds of MB -----------
    sizes = numpy_helper.from_array(np.array([1, 1, 2, 1 << 23], np.int64), "sizes")
    resize = [helper.make_node("Resize", ["X", "", "", "sizes"], ["Y"], name="resize", mode="nearest")]
    out.append(("resize_sizes_huge.onnx",
                ser(tiny_model(nodes=resize, inits=[sizes],
                               inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 2, 2])],
                               outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 1, 2, 1 << 23])])),
                "Resize of a 2x2 image to 2 x 8,388,608: its resampling tables alone would take 100 MB "
                "(planning's limit is 48 MiB plus the file's size)"))
    shape = numpy_helper.from_array(np.array([1 << 22], np.int64), "shape")
    fold = [helper.make_node("ConstantOfShape", ["shape"], ["k0"], name="fill",
                             value=numpy_helper.from_array(np.ones(1, np.float32)))]
    for i in range(1, 7):
        fold.append(helper.make_node("Add", [f"k{i-1}", f"k{i-1}"], [f"k{i}"], name=f"double{i}"))
    fold.append(helper.make_node("Add", ["X", "k6"], ["Y"], name="add"))
    out.append(("fold_amplification.onnx",
                ser(tiny_model(nodes=fold, inits=[shape],
                               inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
                               outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1 << 22])])),
                "ConstantOfShape of 4M floats doubled six times by constant Adds: folding would "
                "compute over 100 MB of constants"))

    bounds = [numpy_helper.from_array(np.array(v, np.float32), n)
              for n, v in (("start", 0.0), ("limit", np.inf), ("delta", 1.0))]
    rng_nodes = [helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range"),
                 helper.make_node("ReduceSum", ["r"], ["s"], name="sum", keepdims=1),
                 helper.make_node("Add", ["X", "s"], ["Y"], name="add")]
    out.append(("range_infinite_limit.onnx",
                ser(tiny_model(nodes=rng_nodes, inits=bounds,
                               inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
                               outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])])),
                "Range from 0 to +inf: its element count is not a number of elements (converting it "
                "to an integer would trap)"))

    # --- graph structure -----------------------------------------------------------------
    cyc = [helper.make_node("Add", ["X", "b_out"], ["a_out"], name="A"),
           helper.make_node("Relu", ["a_out"], ["b_out"], name="B"),
           helper.make_node("Identity", ["a_out"], ["Y"], name="C")]
    out.append(("graph_cycle.onnx", ser(tiny_model(nodes=cyc, inits=[],
                                                   outputs=[helper.make_tensor_value_info(
                                                       "Y", TensorProto.FLOAT, [1, 3])])),
                "node A (Add) consumes B's output and B (Relu) consumes A's: a cycle"))
    self_loop = [helper.make_node("Relu", ["r"], ["r"], name="self"),
                 helper.make_node("Add", ["X", "r"], ["Y"], name="add")]
    out.append(("graph_self_loop.onnx", ser(tiny_model(nodes=self_loop, inits=[],
                                                       outputs=[helper.make_tensor_value_info(
                                                           "Y", TensorProto.FLOAT, [1, 3])])),
                "a Relu node whose input is its own output"))
    unk = [helper.make_node("MatMul", ["X", "W"], ["m"]),
           helper.make_node("FancyConv", ["m"], ["Y"], name="fancy")]
    out.append(("unknown_op.onnx", ser(tiny_model(nodes=unk)),
                "a node with op_type 'FancyConv' (no such operator in the default domain)"))
    custom = [helper.make_node("MatMul", ["X", "W"], ["m"]),
              helper.make_node("Softmax", ["m"], ["Y"], domain="com.example.secret")]
    m = tiny_model(nodes=custom)
    m.opset_import.append(helper.make_opsetid("com.example.secret", 1))
    out.append(("unknown_domain.onnx", ser(m), "Softmax in the custom domain 'com.example.secret'"))
    missing_out = tiny_model(outputs=[helper.make_tensor_value_info("Z", TensorProto.FLOAT, [1, 2])])
    out.append(("output_never_produced.onnx", ser(missing_out),
                "the graph output 'Z' is produced by no node, input or initializer"))
    ghost = [helper.make_node("MatMul", ["X", "ghost"], ["m"]),
             helper.make_node("Add", ["m", "B"], ["a"]),
             helper.make_node("Softmax", ["a"], ["Y"])]
    out.append(("input_never_produced.onnx", ser(tiny_model(nodes=ghost)),
                "a MatMul reads 'ghost', which nothing defines"))
    dup = [helper.make_node("MatMul", ["X", "W"], ["m"]),
           helper.make_node("Add", ["m", "B"], ["m"]),
           helper.make_node("Softmax", ["m"], ["Y"])]
    out.append(("duplicate_output_name.onnx", ser(tiny_model(nodes=dup)),
                "two nodes write the same tensor name 'm' (not single static assignment)"))
    m = tiny_model()
    m.graph.ClearField("node")
    m.graph.ClearField("initializer")
    m.ClearField("graph")
    out.append(("no_graph.onnx", ser(m), "a ModelProto with ir_version and opset but no graph"))
    m = tiny_model()
    del m.opset_import[:]
    out.append(("no_opset_import.onnx", ser(m), "no opset_import at all"))
    m = tiny_model()
    m.opset_import[0].version = 1000
    out.append(("opset_1000.onnx", ser(m), "default-domain opset 1000 (from the future)"))
    bad_attr = [helper.make_node("MatMul", ["X", "W"], ["m"]),
                helper.make_node("Add", ["m", "B"], ["a"]),
                helper.make_node("Softmax", ["a"], ["Y"], axis=7)]
    out.append(("softmax_axis_out_of_range.onnx", ser(tiny_model(nodes=bad_attr)),
                "Softmax axis 7 on a rank-2 tensor"))
    wrong_type = [helper.make_node("MatMul", ["X", "W"], ["m"]),
                  helper.make_node("Add", ["m", "B"], ["a"]),
                  helper.make_node("Softmax", ["a"], ["Y"], axis=1.5)]
    out.append(("attribute_wrong_type.onnx", ser(tiny_model(nodes=wrong_type)),
                "Softmax 'axis' is a FLOAT attribute (1.5) instead of INT"))
    rng2 = np.random.default_rng(SEED)
    bad_shape = tiny_model(inits=[
        numpy_helper.from_array(rng2.standard_normal((4, 2)).astype(np.float32), "W"),
        numpy_helper.from_array(np.zeros(2, np.float32), "B")])
    out.append(("matmul_shape_mismatch.onnx", ser(bad_shape),
                "MatMul of X [1,3] by an initializer W [4,2]: inner dimensions differ"))
    conv = helper.make_graph(
        [helper.make_node("Conv", ["X", "W"], ["Y"], kernel_shape=[3, 3], pads=[-1, -1, -1, -1])],
        "conv", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 5, 5])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "W")])
    out.append(("conv_negative_pads.onnx", ser(helper.make_model(
        conv, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)),
        "Conv with pads [-1, -1, -1, -1]"))
    conv = helper.make_graph(
        [helper.make_node("Conv", ["X", "W"], ["Y"], kernel_shape=[3, 3], group=0)],
        "conv", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "W")])
    out.append(("conv_group_zero.onnx", ser(helper.make_model(
        conv, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)),
        "Conv with group 0 (a division by zero for a reader that trusts it)"))
    reshape = helper.make_graph(
        [helper.make_node("Reshape", ["X", "s"], ["Y"])], "reshape",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array([-1, -1], np.int64), "s")])
    out.append(("reshape_two_minus_one.onnx", ser(helper.make_model(
        reshape, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)),
        "Reshape whose constant target shape has two -1 entries"))
    gather = helper.make_graph(
        [helper.make_node("Gather", ["X", "i"], ["Y"], axis=0)], "gather",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array([0, 1000000], np.int64), "i")])
    out.append(("gather_index_out_of_range.onnx", ser(helper.make_model(
        gather, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)),
        "Gather with a constant index 1000000 on a dimension of 2 (fails when run, if not at "
        "load)"))

    # --- wire-level defects ----------------------------------------------------------------
    good_graph = tiny_model().graph.SerializeToString()
    opset = f_bytes(M_OPSET, f_str(OPSET_DOMAIN, "") + f_varint(OPSET_VERSION, 13))
    overlong = key(M_IR, 0) + b"\x80" * 10 + b"\x01"
    out.append(("varint_11_bytes.onnx", overlong + f_bytes(M_GRAPH, good_graph) + opset,
                "ir_version encoded as an 11-byte varint (at most 10 are allowed)"))
    out.append(("varint_overflow_64.onnx",
                key(M_IR, 0) + b"\xff" * 9 + b"\x7f" + f_bytes(M_GRAPH, good_graph) + opset,
                "ir_version as a 10-byte varint whose value needs 70 bits"))
    out.append(("varint_unterminated.onnx", key(M_IR, 0) + b"\x80\x80\x80",
                "the file ends inside a varint (continuation bit set on the last byte)"))
    out.append(("length_past_end.onnx",
                f_varint(M_IR, 7) + key(M_GRAPH, 2) + varint(1_000_000) + good_graph + opset,
                f"the graph field declares 1,000,000 bytes; {len(good_graph) + len(opset)} follow"))
    out.append(("length_huge.onnx",
                f_varint(M_IR, 7) + key(M_GRAPH, 2) + varint(2**63 - 5) + good_graph,
                "the graph field declares 2^63-5 bytes (offset + length overflows a signed "
                "64-bit position)"))
    out.append(("length_2_64_minus_1.onnx",
                f_varint(M_IR, 7) + key(M_GRAPH, 2) + b"\xff" * 9 + b"\x01" + good_graph,
                "the graph field declares 2^64-1 bytes (negative as an Int64)"))
    inner_past_end = tiny_model().graph
    node_bytes = inner_past_end.node[0].SerializeToString()
    bad_node = key(G_NODE, 2) + varint(len(node_bytes) + 40) + node_bytes
    out.append(("nested_length_past_parent.onnx",
                f_varint(M_IR, 7) + f_bytes(M_GRAPH, bad_node + good_graph) + opset,
                "a node inside the graph declares 40 bytes more than its enclosing graph field "
                "holds (the outer length is right, the inner one is not)"))
    out.append(("wrong_wire_type.onnx",
                f_varint(M_IR, 7) + f_varint(M_GRAPH, 12345) + opset,
                "the graph field (7) encoded as a varint instead of a length-delimited message "
                "(protobuf libraries either fail or keep it as an unknown field, which leaves "
                "no graph)"))
    out.append(("wire_type_7.onnx", f_varint(M_IR, 7) + key(M_GRAPH, 7) + good_graph,
                "a field key with wire type 7 (no such wire type)"))
    out.append(("wire_type_group.onnx", f_varint(M_IR, 7) + key(3, 3) + key(4, 3) + key(3, 4),
                "deprecated group wire types 3/4, with a mismatched end-group"))
    out.append(("field_number_zero.onnx", key(0, 0) + varint(1) + f_bytes(M_GRAPH, good_graph),
                "a field numbered 0 (invalid in protobuf)"))
    # Nested subgraphs: an If node whose then_branch holds an If node whose ... 150 levels.
    def nested(depth: int, minimal: bool) -> bytes:
        g = (f_str(G_NAME, "leaf") + f_bytes(G_OUTPUT, value_info("Y", [1]))) if not minimal else b""
        for i in range(depth):
            attr = f_str(A_NAME, "then_branch") + f_varint(A_TYPE, ATTR_GRAPH) if not minimal \
                else b""
            attr += f_bytes(A_G, g)
            node = (f_str(N_OPTYPE, "If") + f_str(N_INPUT, "c")) if not minimal else b""
            node += f_bytes(N_ATTR, attr)
            g = f_bytes(G_NODE, node)
            if not minimal:
                g += f_str(G_NAME, f"g{i}") + f_bytes(G_OUTPUT, value_info("Y", [1]))
        return g
    out.append(("nesting_150.onnx", f_varint(M_IR, 7) + f_bytes(M_GRAPH, nested(150, False)) + opset,
                "If nodes nested 150 deep through then_branch subgraph attributes (more than "
                "100 levels)"))
    out.append(("nesting_5000.onnx", f_varint(M_IR, 7) + f_bytes(M_GRAPH, nested(5000, True)) + opset,
                "graph -> node -> attribute -> graph ... 5000 levels, only the nesting fields "
                "(a stack-exhaustion attempt on a recursive parser)"))
    return out


#: Files onnxruntime loads anyway: protobuf C++ drops the varint bits past 64, and it
#: allocates whatever a graph asks for (the resource-cap cases).
ORT_ACCEPTS = {"varint_overflow_64.onnx", "resize_sizes_huge.onnx", "fold_amplification.onnx"}


def check_onnxruntime(name, data):
    """True when onnxruntime refuses the file (at session creation or on a run)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.log_severity_level = 4
    so.intra_op_num_threads = 1
    try:
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception:
        return True
    try:
        feeds = {}
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) else 1 for d in i.shape]
            feeds[i.name] = np.zeros(shape, np.float32)
        sess.run(None, feeds)
    except Exception:
        return True
    return False


def main():
    for f in os.listdir(HERE):
        if f.endswith(".onnx"):
            os.remove(os.path.join(HERE, f))
    rows = []
    accepted = []
    for name, data, what in cases():
        with open(os.path.join(HERE, name), "wb") as fh:
            fh.write(data)
        refused = check_onnxruntime(name, data)
        if refused is False:
            accepted.append(name)
        rows.append((name, len(data), what))
    if set(accepted) - ORT_ACCEPTS:
        raise SystemExit(f"onnxruntime accepted: {sorted(set(accepted) - ORT_ACCEPTS)}")
    lines = [
        "# Malformed ONNX files",
        "",
        "Every file here must be refused by the ONNX reader with an error status (parse,",
        "unsupported or shape error, with a message naming the problem): never accepted, never a",
        "crash, a hang or a huge allocation. onnxruntime refuses them too (checked by the",
        "generator, at session creation or, for `gather_index_out_of_range.onnx`, when run), except",
        "`varint_overflow_64.onnx`, which protobuf C++ loads by dropping the bits past 64: a strict",
        "reader refuses it, and the two resource-cap files (`resize_sizes_huge.onnx`,",
        "`fold_amplification.onnx`), which onnxruntime runs by allocating what they ask for.",
        "",
        "Regenerate with `python Tests/Fixtures/malformed-onnx/make_malformed.py` (numpy, onnx;",
        "onnxruntime for the check). It rewrites the files and this README; edit the script, not",
        "the files. Truncated copies of the real CNN are cut from",
        "`examples/models/skin_cnn_300.onnx`; a test may also cut that file at other points itself.",
        "",
        "| file | what is wrong |",
        "| --- | --- |",
    ]
    for name, size, what in rows:
        suffix = "" if "truncated" in name else f" ({size} bytes)"
        lines.append(f"| `{name}` | {what}{suffix} |")
    with open(os.path.join(HERE, "README.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"{len(rows)} files")


if __name__ == "__main__":
    main()

"""Random ONNX graph builders for the ONNX parity tests (MedInfer against onnxruntime).

Every builder has the signature

    build_xxx(rng, **options) -> (model_bytes: bytes, inputs: dict[str, np.ndarray])

`rng` is a numpy RandomState (np.random.RandomState(seed)); a np.random.Generator works too.
Everything random (shapes, attributes, which opset form is used, values) comes from `rng`,
so a seed reproduces a case. Keyword options pin a choice (e.g. build_resize(rng,
mode="nearest", coord="align_corners")); the defaults draw it at random. Shapes are drawn
from SIZES, which includes the awkward sizes 1, 7 and 33.

Conventions, so that a host that only speaks float32 can run every graph:
- every graph input is float32 (indices, shapes, axes, scales... are initializers or
  Constant nodes, as exporters write them);
- every graph output is float32 (an integer result such as Shape's is Cast to float);
- graph outputs are declared with elem_type FLOAT and no shape.

The models are checked with onnx.checker; `reference(model_bytes, inputs)` runs them in
onnxruntime on one thread. BUILDERS maps a family name to its builder; OPERATORS lists the
op types the builders cover.

Opset forms covered (the `opset` option where a builder has it):
- Squeeze / Unsqueeze: axes attribute (opset 11) or axes input (opset 13)
- Split: split attribute (11), split input (13), num_outputs (18), equal split (any)
- Clip: min/max attributes (Clip-6, opset 10) or optional min/max inputs (11, 13)
- Resize: roi+scales (11), scales or sizes with empty optional inputs (13), opset 18/19 too
- Softmax: 2-D coercion semantics (11) or single axis (13)
- Dropout: ratio attribute (10/11) or optional ratio input (13)
- Slice: starts/ends/axes/steps inputs (10+), including negative steps and clamped ends
- Shape: start/end attributes (15)
- LSTM / GRU: opset 11-14 forms; layout 1 (batch-major, 14) is run in onnxruntime, which
  refuses it, as the equivalent layout-0 node between Transposes (see `reference`)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["SIZES", "BUILDERS", "OPERATORS", "reference"]

#: Dimension sizes drawn by the builders (odd sizes 1, 7 and 33 on purpose).
SIZES = (1, 2, 3, 5, 7, 8, 16, 33)
#: Smaller sizes for dimensions that multiply (channels, batch).
SMALL = (1, 2, 3, 7)

#: IR version to write for each default-domain opset (the oldest that allows it).
_IR_FOR_OPSET = {6: 3, 7: 3, 9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8,
                 18: 8, 19: 9, 20: 9, 21: 10}

F32 = np.float32


# ----------------------------------------------------------------------------------------
# rng helpers (RandomState and Generator)
# ----------------------------------------------------------------------------------------

def _int(rng, lo, hi):
    """Integer in [lo, hi] inclusive."""
    if hasattr(rng, "integers"):
        return int(rng.integers(lo, hi + 1))
    return int(rng.randint(lo, hi + 1))


def _pick(rng, seq):
    return seq[_int(rng, 0, len(seq) - 1)]


def _bool(rng):
    return _int(rng, 0, 1) == 1


def _dim(rng, choices=SIZES):
    return int(_pick(rng, list(choices)))


def _normal(rng, shape, scale=1.0):
    return np.asarray(rng.standard_normal(size=tuple(shape)) * scale, dtype=F32)


def _uniform(rng, lo, hi, shape):
    return np.asarray(rng.uniform(lo, hi, size=tuple(shape)), dtype=F32)


def _shape(rng, rank, choices=SIZES):
    return [_dim(rng, choices) for _ in range(rank)]


# ----------------------------------------------------------------------------------------
# model assembly
# ----------------------------------------------------------------------------------------

def _model(nodes, inputs, outputs, initializers=None, opset=13, name="g"):
    """Assemble, check and serialize a model.

    inputs: dict name -> float32 array (graph inputs, shapes taken from the arrays)
    outputs: list of output names (all float32)
    initializers: dict name -> numpy array (any dtype)
    """
    inputs = {k: np.array(v, dtype=F32, order="C") for k, v in inputs.items()}
    g_inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape))
                for k, v in inputs.items()]
    g_outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()]
    graph = helper.make_graph(nodes, name, g_inputs, g_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=_IR_FOR_OPSET.get(opset, 8),
                              producer_name="medinfer-onnx-graphs")
    _set_output_shapes(model, inputs)
    onnx.checker.check_model(model)
    return model.SerializeToString(), inputs


def _set_output_shapes(model, inputs):
    """Declare each graph output's concrete shape (the checker wants one): taken from a
    run in onnxruntime, which also proves the graph is valid."""
    outs = reference(model.SerializeToString(), inputs)
    for vi, arr in zip(model.graph.output, outs):
        shape = vi.type.tensor_type.shape
        shape.Clear()
        for d in np.shape(arr):
            shape.dim.add().dim_value = int(d)


def _i64(values):
    return np.asarray(values, dtype=np.int64)


def _const(name, array):
    """A Constant node holding `array`."""
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array)))


def reference(model_bytes, inputs, output_names=None):
    """Run a model in onnxruntime (CPU, one thread, all graph optimizations); returns a
    list of outputs in graph order."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(_batch_major_as_time_major(model_bytes), so,
                                providers=["CPUExecutionProvider"])
    return sess.run(output_names, inputs)


def _batch_major_as_time_major(model_bytes):
    """onnxruntime refuses LSTM/GRU with layout=1 (batch-major [N, T, ...] tensors): the
    same computation as layout 0 between Transposes, which it runs. Other models are
    returned unchanged."""
    model = onnx.load_from_string(model_bytes)
    recurrent = [n for n in model.graph.node if n.op_type in ("LSTM", "GRU", "RNN")
                 and any(a.name == "layout" and a.i == 1 for a in n.attribute)]
    if not recurrent:
        return model_bytes
    nodes = []
    for node in model.graph.node:
        if node not in recurrent:
            nodes.append(node)
            continue
        for attr in list(node.attribute):
            if attr.name == "layout":
                node.attribute.remove(attr)
        # inputs: X [N, T, I] -> [T, N, I]; initial_h/c [N, D, H] -> [D, N, H]
        for slot in (0, 5, 6):
            if slot < len(node.input) and node.input[slot]:
                name = node.input[slot]
                nodes.append(helper.make_node("Transpose", [name], [name + "__tm"], perm=[1, 0, 2]))
                node.input[slot] = name + "__tm"
        # outputs: Y [T, D, N, H] -> [N, T, D, H]; Y_h/Y_c [D, N, H] -> [N, D, H]
        after = []
        for slot, name in enumerate(list(node.output)):
            if name:
                node.output[slot] = name + "__tm"
                after.append(helper.make_node("Transpose", [name + "__tm"], [name],
                                              perm=[2, 0, 1, 3] if slot == 0 else [1, 0, 2]))
        nodes += [node] + after
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()


# ----------------------------------------------------------------------------------------
# convolution and pooling (NCHW)
# ----------------------------------------------------------------------------------------

def _conv_node(rng, x_name, c_in, spatial, out_name, prefix, inits, *, group=None,
               kernel=None, strides=None, dilations=None, pads=None, auto_pad=None, bias=None,
               c_out=None):
    """Draw a Conv over `spatial` (list of spatial sizes); returns (node, out channels)."""
    nd = len(spatial)
    if group is None:
        group = _pick(rng, [1, 1, 2, c_in]) if c_in > 1 else 1
    if c_in % group:
        group = 1
    if c_out is None:
        c_out = group * _pick(rng, [1, 2, 3]) if group > 1 else _dim(rng, SMALL + (8,))
    if c_out % group:
        c_out = group * max(1, c_out // group)
    kernel = kernel or [_pick(rng, [1, 2, 3, 3, 5]) for _ in range(nd)]
    if auto_pad is None:
        auto_pad = _pick(rng, ["NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
    if auto_pad.startswith("SAME"):  # onnxruntime: no dilation with SAME_*
        dilations = [1] * nd
    dilations = dilations or [_pick(rng, [1, 1, 2]) for _ in range(nd)]
    strides = strides or [_pick(rng, [1, 1, 2, 3]) for _ in range(nd)]
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    attrs = dict(kernel_shape=kernel, strides=strides, dilations=dilations)
    if group != 1 or _bool(rng):
        attrs["group"] = group
    if auto_pad == "NOTSET":
        if pads is None:
            pads = [_int(rng, 0, e - 1) for e in eff for _ in range(1)]
            pads = pads + [_int(rng, 0, e - 1) for e in eff]
        attrs["pads"] = pads
        total = [s + pads[i] + pads[i + nd] for i, s in enumerate(spatial)]
    else:
        attrs["auto_pad"] = auto_pad
        total = list(spatial)
    for i in range(nd):  # make the window fit
        if auto_pad in ("NOTSET", "VALID") and total[i] < eff[i]:
            raise _Retry()
    w = _normal(rng, [c_out, c_in // group] + kernel, 1.0 / np.sqrt(np.prod(kernel) * c_in / group))
    inits[prefix + "_W"] = w
    ins = [x_name, prefix + "_W"]
    if bias is None:
        bias = _bool(rng)
    if bias:
        inits[prefix + "_B"] = _normal(rng, [c_out], 0.5)
        ins.append(prefix + "_B")
    return helper.make_node("Conv", ins, [out_name], **attrs), c_out


class _Retry(Exception):
    """Raised when a random draw gives an invalid configuration; the builder redraws."""


def _retrying(fn):
    def wrapper(rng, **kw):
        for _ in range(200):
            try:
                return fn(rng, **kw)
            except _Retry:
                continue
        raise RuntimeError(f"{fn.__name__}: no valid configuration in 200 draws")
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_retrying
def build_conv(rng, *, ndim=2, **conv_options):
    """Conv (1-D, 2-D or 3-D spatial, default 2-D): group (incl. depthwise), strides,
    dilations, explicit asymmetric pads or auto_pad, optional bias."""
    n = _dim(rng, (1, 2))
    c = _dim(rng, SMALL + (4, 8))
    spatial = _shape(rng, ndim, SIZES if ndim < 3 else (1, 3, 5, 7))
    inits = {}
    node, _ = _conv_node(rng, "X", c, spatial, "Y", "conv", inits, **conv_options)
    return _model([node], {"X": _normal(rng, [n, c] + spatial)}, ["Y"], inits, name="conv")


def _pool_attrs(rng, spatial, allow_dilations, *, kernel=None, strides=None, pads=None,
                ceil_mode=None, dilations=None):
    nd = len(spatial)
    kernel = kernel or [_pick(rng, [1, 2, 2, 3, 5]) for _ in range(nd)]
    strides = strides or [_pick(rng, [1, 2, 2, 3]) for _ in range(nd)]
    attrs = dict(kernel_shape=kernel, strides=strides)
    if allow_dilations:
        dilations = dilations or [_pick(rng, [1, 1, 2]) for _ in range(nd)]
        attrs["dilations"] = dilations
    else:
        dilations = [1] * nd
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if pads is None:
        pads = [_int(rng, 0, k // 2) for k in kernel] + [_int(rng, 0, k // 2) for k in kernel]
    if any(p >= k for p, k in zip(pads, kernel + kernel)):
        raise _Retry()
    attrs["pads"] = pads
    if ceil_mode is None:
        ceil_mode = _pick(rng, [0, 0, 1])
    if ceil_mode:
        attrs["ceil_mode"] = 1
    for i, s in enumerate(spatial):
        total = s + pads[i] + pads[i + nd]
        if total < eff[i]:
            raise _Retry()
        if ceil_mode:
            # Leave out the corner where the last ceil-mode window would start in the end
            # padding: onnxruntime drops that window, ONNX shape inference keeps it.
            out = -(-(total - eff[i]) // strides[i]) + 1
            if (out - 1) * strides[i] >= s + pads[i]:
                raise _Retry()
    return attrs


@_retrying
def build_maxpool(rng, *, opset=None, **pool_options):
    """MaxPool 2-D: kernel, strides, pads, dilations (opset >= 10), ceil_mode."""
    opset = opset or _pick(rng, [11, 12, 13])
    x = _normal(rng, [_dim(rng, (1, 2)), _dim(rng, SMALL)] + _shape(rng, 2))
    attrs = _pool_attrs(rng, list(x.shape[2:]), True, **pool_options)
    return _model([helper.make_node("MaxPool", ["X"], ["Y"], **attrs)], {"X": x}, ["Y"],
                  opset=opset, name="maxpool")


@_retrying
def build_averagepool(rng, *, count_include_pad=None, **pool_options):
    """AveragePool 2-D: kernel, strides, pads with count_include_pad 0 or 1, ceil_mode."""
    x = _normal(rng, [_dim(rng, (1, 2)), _dim(rng, SMALL)] + _shape(rng, 2))
    attrs = _pool_attrs(rng, list(x.shape[2:]), False, **pool_options)
    if count_include_pad is None:
        count_include_pad = _int(rng, 0, 1)
    attrs["count_include_pad"] = count_include_pad
    return _model([helper.make_node("AveragePool", ["X"], ["Y"], **attrs)], {"X": x}, ["Y"],
                  name="averagepool")


def build_globalaveragepool(rng):
    """GlobalAveragePool on a 3-D, 4-D or 5-D input."""
    rank = _pick(rng, [3, 4, 4, 5])
    x = _normal(rng, [_dim(rng, (1, 2)), _dim(rng, SMALL)] + _shape(rng, rank - 2, (1, 3, 7, 16)))
    return _model([helper.make_node("GlobalAveragePool", ["X"], ["Y"])], {"X": x}, ["Y"],
                  name="globalaveragepool")


@_retrying
def build_conv_relu_maxpool(rng):
    """Conv -> Relu -> MaxPool -> Conv -> Relu, the inner loop of a CNN."""
    n, c = _dim(rng, (1, 2)), _dim(rng, SMALL)
    spatial = [_dim(rng, (7, 8, 16, 33)), _dim(rng, (7, 8, 16, 33))]
    inits = {}
    conv1, c1 = _conv_node(rng, "X", c, spatial, "c1", "conv1", inits)
    nodes = [conv1, helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "conv2_W", "conv2_B"], ["c2"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["Y"])]
    c2 = _dim(rng, SMALL)
    inits["conv2_W"] = _normal(rng, [c2, c1, 3, 3], 0.3)
    inits["conv2_B"] = _normal(rng, [c2], 0.1)
    return _model(nodes, {"X": _normal(rng, [n, c] + spatial)}, ["Y"], inits,
                  name="conv_relu_maxpool")


@_retrying
def build_winograd_chain(rng):
    """[Resize of an NCHW tensor or of a transposed NHWC image, times a scale] -> two or
    three 3x3 convolutions (zero or one padding) with Relu, each maybe followed by a 2x2
    max pool: layers that write straight into the next layer's padded input (batch 1),
    the edge tiles of odd sizes, and a layer that also leaves as a graph output."""
    n = _pick(rng, (1, 1, 1, 2))
    c = _pick(rng, (3, 4, 5))
    h, w = _dim(rng, (12, 19, 37, 45, 70)), _dim(rng, (12, 19, 37, 45, 70))
    inits, nodes = {}, []
    front = _pick(rng, ("none", "nchw", "nhwc"))
    if front == "none":
        x = _normal(rng, [n, c, h, w])
        current = "X"
    else:
        oh, ow = _dim(rng, (14, 21, 40, 52)), _dim(rng, (14, 21, 40, 52))
        inits["sizes"] = _i64([n, c, oh, ow])
        if front == "nchw":
            x = _uniform(rng, 0, 255, [n, c, h, w])
            source = "X"
        else:
            x = _uniform(rng, 0, 255, [n, h, w, c])
            nodes.append(helper.make_node("Transpose", ["X"], ["T"], perm=[0, 3, 1, 2]))
            source = "T"
        nodes.append(helper.make_node("Resize", [source, "", "", "sizes"], ["R"], mode="linear",
                                      coordinate_transformation_mode="half_pixel"))
        current = "R"
        if _bool(rng):
            inits["scale"] = np.array(1 / 255, F32)
            nodes.append(helper.make_node("Mul", ["R", "scale"], ["Rs"]))
            current = "Rs"
        h, w = oh, ow
    channels = c
    outputs = []
    layers = _pick(rng, (2, 3))
    for i in range(layers):
        pad = _pick(rng, (0, 1))
        if h + 2 * pad - 2 < 4 or w + 2 * pad - 2 < 4:
            break
        k = _pick(rng, (3, 6, 8))
        inits[f"W{i}"] = _normal(rng, [k, channels, 3, 3], 0.4)
        inits[f"B{i}"] = _normal(rng, [k], 0.1)
        nodes.append(helper.make_node("Conv", [current, f"W{i}", f"B{i}"], [f"c{i}"], kernel_shape=[3, 3],
                                      pads=[pad] * 4))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        current, channels = f"r{i}", k
        h, w = h + 2 * pad - 2, w + 2 * pad - 2
        if h >= 2 and w >= 2 and _bool(rng):
            nodes.append(helper.make_node("MaxPool", [current], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            current, h, w = f"p{i}", h // 2, w // 2
        if i == 0 and rng.rand() < 0.2:
            outputs.append(current)
    outputs.append(current)
    return _model(nodes, {"X": x}, outputs, inits, opset=13, name="winograd_chain")


# ----------------------------------------------------------------------------------------
# dense algebra
# ----------------------------------------------------------------------------------------

def build_gemm(rng, *, trans_a=None, trans_b=None, alpha=None, beta=None, c_shape=None,
               b_is_input=None):
    """Gemm with transA / transB / alpha / beta and every broadcastable C (or none)."""
    m, k, n = _dim(rng), _dim(rng), _dim(rng)
    trans_a = _int(rng, 0, 1) if trans_a is None else trans_a
    trans_b = _int(rng, 0, 1) if trans_b is None else trans_b
    alpha = _pick(rng, [1.0, 0.5, -1.25, 2.0]) if alpha is None else alpha
    beta = _pick(rng, [1.0, 0.0, 0.75, -2.0]) if beta is None else beta
    a = _normal(rng, [k, m] if trans_a else [m, k])
    b = _normal(rng, [n, k] if trans_b else [k, n])
    if c_shape is None:
        c_shape = _pick(rng, [None, [1], [n], [1, n], [m, 1], [m, n], []])
    inputs = {"A": a}
    inits = {}
    if b_is_input if b_is_input is not None else _bool(rng):
        inputs["B"] = b
    else:
        inits["B"] = b
    ins = ["A", "B"]
    if c_shape is not None:
        inits["C"] = _normal(rng, c_shape)
        ins.append("C")
    attrs = {}
    if trans_a or _bool(rng):
        attrs["transA"] = trans_a
    if trans_b or _bool(rng):
        attrs["transB"] = trans_b
    if alpha != 1.0 or _bool(rng):
        attrs["alpha"] = float(alpha)
    if beta != 1.0 or _bool(rng):
        attrs["beta"] = float(beta)
    return _model([helper.make_node("Gemm", ins, ["Y"], **attrs)], inputs, ["Y"], inits,
                  name="gemm")


def build_matmul(rng, *, a_shape=None, b_shape=None):
    """MatMul with numpy broadcasting: 1-D operands, batch dims of different ranks and 1s."""
    if a_shape is None or b_shape is None:
        m, k, n = _dim(rng), _dim(rng), _dim(rng)
        batch = _shape(rng, _int(rng, 0, 2), SMALL)
        ra, rb = _int(rng, 0, len(batch)), _int(rng, 0, len(batch))
        ba = [d if _int(rng, 0, 3) else 1 for d in batch[len(batch) - ra:]]
        bb = [d if _int(rng, 0, 3) else 1 for d in batch[len(batch) - rb:]]
        a_shape = [k] if _int(rng, 0, 5) == 0 else ba + [m, k]
        b_shape = [k] if _int(rng, 0, 5) == 0 else bb + [k, n]
    a, b = _normal(rng, a_shape), _normal(rng, b_shape)
    if _bool(rng):
        return _model([helper.make_node("MatMul", ["A", "B"], ["Y"])], {"A": a, "B": b}, ["Y"],
                      name="matmul")
    return _model([helper.make_node("MatMul", ["A", "B"], ["Y"])], {"A": a}, ["Y"], {"B": b},
                  name="matmul")


def _broadcast_partner(rng, shape):
    """A shape that broadcasts against `shape` (lower rank and/or 1s)."""
    rank = _int(rng, 0, len(shape))
    tail = shape[len(shape) - rank:]
    return [d if _int(rng, 0, 2) else 1 for d in tail]


def build_elementwise(rng, *, ops=None):
    """A chain of Add / Sub / Mul / Div with numpy broadcasting on both sides, constants
    (initializers) and graph inputs, including rank-0 operands."""
    ops = ops or [_pick(rng, ["Add", "Sub", "Mul", "Div"]) for _ in range(_int(rng, 2, 5))]
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:6])
    inputs = {"X": _normal(rng, _broadcast_partner(rng, shape) if _bool(rng) else shape)}
    inits = {}
    nodes = []
    cur = "X"
    for i, op in enumerate(ops):
        other_shape = _broadcast_partner(rng, shape) if _bool(rng) else shape
        if op == "Div":
            other = (_uniform(rng, 0.5, 2.0, other_shape) *
                     np.where(rng.uniform(size=other_shape) < 0.5, -1, 1)).astype(F32)
        else:
            other = _normal(rng, other_shape)
        name = f"in{i}"
        if _bool(rng):
            inputs[name] = other
        else:
            inits[name] = other
        out = "Y" if i == len(ops) - 1 else f"t{i}"
        # the chained value on either side (Sub is not commutative); Div always divides
        # by the drawn operand, which stays away from zero
        ins = [name, cur] if op != "Div" and _bool(rng) else [cur, name]
        nodes.append(helper.make_node(op, ins, [out]))
        cur = out
    return _model(nodes, inputs, ["Y"], inits, name="elementwise")


def build_softmax(rng, *, opset=None, axis=None):
    """Softmax on a random axis: opset 13 (one axis) or opset 11 (2-D coercion)."""
    opset = opset or _pick(rng, [11, 13, 13])
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:7])
    rank = len(shape)
    axis = _int(rng, -rank, rank - 1) if axis is None else axis
    attrs = {} if (axis == (-1 if opset >= 13 else 1) and _bool(rng)) else {"axis": axis}
    x = _normal(rng, shape, _pick(rng, [1.0, 10.0]))
    return _model([helper.make_node("Softmax", ["X"], ["Y"], **attrs)], {"X": x}, ["Y"],
                  opset=opset, name="softmax")


def build_batchnorm(rng, *, epsilon=None):
    """BatchNormalization (inference) on [N, C], [N, C, L] or [N, C, H, W]."""
    rank = _pick(rng, [2, 3, 4, 4])
    c = _dim(rng, SMALL + (16,))
    x = _normal(rng, [_dim(rng, (1, 2, 3)), c] + _shape(rng, rank - 2, (1, 5, 7)))
    inits = {"scale": _normal(rng, [c]), "bias": _normal(rng, [c]), "mean": _normal(rng, [c]),
             "var": _uniform(rng, 0.1, 3.0, [c])}
    attrs = {}
    if epsilon is not None or _bool(rng):
        attrs["epsilon"] = float(epsilon if epsilon is not None else _pick(rng, [1e-3, 1e-5, 0.1]))
    node = helper.make_node("BatchNormalization", ["X", "scale", "bias", "mean", "var"], ["Y"],
                            **attrs)
    return _model([node], {"X": x}, ["Y"], inits, name="batchnorm")


# ----------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------

def _activation_input(rng):
    x = _normal(rng, _shape(rng, _int(rng, 1, 4), SIZES[:7]), _pick(rng, [1.0, 5.0, 30.0]))
    flat = x.reshape(-1)
    if flat.size > 4:  # plant zeros and saturating values
        flat[0], flat[1], flat[2], flat[3] = 0.0, 100.0, -100.0, -0.0
    return x


def build_relu(rng):
    """Relu."""
    return _model([helper.make_node("Relu", ["X"], ["Y"])], {"X": _activation_input(rng)}, ["Y"],
                  name="relu")


def build_sigmoid(rng):
    """Sigmoid (saturating inputs included)."""
    return _model([helper.make_node("Sigmoid", ["X"], ["Y"])], {"X": _activation_input(rng)},
                  ["Y"], name="sigmoid")


def build_tanh(rng):
    """Tanh (saturating inputs included)."""
    return _model([helper.make_node("Tanh", ["X"], ["Y"])], {"X": _activation_input(rng)}, ["Y"],
                  name="tanh")


def build_leakyrelu(rng, *, alpha=None):
    """LeakyRelu with the default or a drawn alpha."""
    attrs = {}
    if alpha is not None or _bool(rng):
        attrs["alpha"] = float(alpha if alpha is not None else _pick(rng, [0.1, 0.3, 0.0, 1.5]))
    return _model([helper.make_node("LeakyRelu", ["X"], ["Y"], **attrs)],
                  {"X": _activation_input(rng)}, ["Y"], name="leakyrelu")


def build_clip(rng, *, opset=None, has_min=None, has_max=None):
    """Clip: opset 10 (min/max attributes, the Clip-6 form) or opset 11/13 (optional
    min/max inputs, an omitted min given as the empty name)."""
    opset = opset or _pick(rng, [10, 11, 13, 13])
    has_min = _bool(rng) if has_min is None else has_min
    has_max = _bool(rng) if has_max is None else has_max
    lo = float(_pick(rng, [-1.0, 0.0, -0.5]))
    hi = float(_pick(rng, [1.0, 6.0, 0.25]))
    x = _activation_input(rng)
    inits = {}
    if opset < 11:
        attrs = {}
        if has_min:
            attrs["min"] = lo
        if has_max:
            attrs["max"] = hi
        node = helper.make_node("Clip", ["X"], ["Y"], **attrs)
    else:
        ins = ["X", "", ""]
        if has_min:
            inits["lo"] = np.array(lo, F32)
            ins[1] = "lo"
        if has_max:
            inits["hi"] = np.array(hi, F32)
            ins[2] = "hi"
        while ins[-1] == "":
            ins.pop()
        node = helper.make_node("Clip", ins, ["Y"])
    return _model([node], {"X": x}, ["Y"], inits, opset=opset, name="clip")


# ----------------------------------------------------------------------------------------
# shape manipulation
# ----------------------------------------------------------------------------------------

def build_reshape(rng):
    """Reshape with a target shape using 0 (copy a dimension) and -1 (infer one)."""
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:7])
    total = int(np.prod(shape))
    # a random factorisation of `total`
    target = []
    rest = total
    for _ in range(_int(rng, 0, 3)):
        divs = [d for d in range(1, rest + 1) if rest % d == 0]
        d = _pick(rng, divs)
        target.append(d)
        rest //= d
    target.append(rest)
    spec = list(target)
    spec[_int(rng, 0, len(spec) - 1)] = -1
    if len(shape) <= len(spec) and spec[0] != -1 and spec[0] == shape[0] and _bool(rng):
        spec[0] = 0
    return _model([helper.make_node("Reshape", ["X", "shape"], ["Y"])],
                  {"X": _normal(rng, shape)}, ["Y"], {"shape": _i64(spec)}, name="reshape")


def build_flatten(rng, *, axis=None):
    """Flatten at a random axis, negative axes and axis 0 included."""
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:7])
    r = len(shape)
    axis = _int(rng, -r, r) if axis is None else axis
    attrs = {} if axis == 1 and _bool(rng) else {"axis": axis}
    return _model([helper.make_node("Flatten", ["X"], ["Y"], **attrs)],
                  {"X": _normal(rng, shape)}, ["Y"], name="flatten")


def build_transpose(rng, *, perm=None):
    """Transpose with a random permutation, or none (reverse the axes)."""
    shape = _shape(rng, _int(rng, 1, 5), SIZES[:6])
    if perm is None and _int(rng, 0, 4):
        perm = list(rng.permutation(len(shape)))
    attrs = {} if perm is None else {"perm": [int(p) for p in perm]}
    return _model([helper.make_node("Transpose", ["X"], ["Y"], **attrs)],
                  {"X": _normal(rng, shape)}, ["Y"], name="transpose")


def build_squeeze(rng, *, opset=None):
    """Squeeze: axes attribute (opset 11), axes input (opset 13), or no axes (all 1s)."""
    opset = opset or _pick(rng, [11, 13, 13])
    shape = [_pick(rng, [1, 1, 2, 3, 7]) for _ in range(_int(rng, 1, 5))]
    ones = [i for i, d in enumerate(shape) if d == 1]
    if not ones:
        shape[0] = 1
        ones = [0]
    r = len(shape)
    if _int(rng, 0, 3) == 0:
        axes = None
    else:
        axes = [a - r if _bool(rng) else a for a in ones if _bool(rng)] or [ones[0]]
    inits = {}
    if axes is None:
        node = helper.make_node("Squeeze", ["X"], ["Y"])
    elif opset < 13:
        node = helper.make_node("Squeeze", ["X"], ["Y"], axes=axes)
    else:
        inits["axes"] = _i64(axes)
        node = helper.make_node("Squeeze", ["X", "axes"], ["Y"])
    return _model([node], {"X": _normal(rng, shape)}, ["Y"], inits, opset=opset, name="squeeze")


def build_unsqueeze(rng, *, opset=None):
    """Unsqueeze: axes attribute (opset 11) or axes input (opset 13), negative axes,
    several axes in any order."""
    opset = opset or _pick(rng, [11, 13, 13])
    shape = _shape(rng, _int(rng, 0, 3), SIZES[:6])
    k = _int(rng, 1, 3)
    out_rank = len(shape) + k
    axes = [int(a) for a in rng.permutation(out_rank)[:k]]
    axes = [a - out_rank if _bool(rng) else a for a in axes]
    inits = {}
    if opset < 13:
        node = helper.make_node("Unsqueeze", ["X"], ["Y"], axes=axes)
    else:
        inits["axes"] = _i64(axes)
        node = helper.make_node("Unsqueeze", ["X", "axes"], ["Y"])
    return _model([node], {"X": _normal(rng, shape)}, ["Y"], inits, opset=opset,
                  name="unsqueeze")


def build_concat(rng):
    """Concat of 1-4 tensors (inputs and initializers) on a random, possibly negative axis."""
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:7])
    r = len(shape)
    axis = _int(rng, -r, r - 1)
    inputs, inits, names = {}, {}, []
    for i in range(_int(rng, 1, 4)):
        s = list(shape)
        s[axis] = _pick(rng, [1, 2, 3, 7])
        arr = _normal(rng, s)
        name = f"x{i}"
        (inputs if i == 0 or _bool(rng) else inits)[name] = arr
        names.append(name)
    return _model([helper.make_node("Concat", names, ["Y"], axis=axis)], inputs, ["Y"], inits,
                  name="concat")


def build_slice(rng):
    """Slice with starts / ends / axes / steps inputs: negative indices, negative steps,
    out-of-range (clamped) ends such as INT64_MAX, omitted axes or steps."""
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:8])
    r = len(shape)
    n_axes = _int(rng, 1, r)
    axes = [int(a) for a in rng.permutation(r)[:n_axes]]
    starts, ends, steps = [], [], []
    for a in axes:
        d = shape[a]
        step = _pick(rng, [1, 1, 2, 3, -1, -2])
        if step > 0:
            s = _pick(rng, [0, _int(rng, 0, d - 1), -_int(rng, 1, d), -(d + 5)])
            e = _pick(rng, [d, _int(rng, 0, d), -_int(rng, 1, d), 2**63 - 1, d + 10])
        else:
            s = _pick(rng, [-1, _int(rng, 0, d - 1), d + 10, 2**63 - 1])
            e = _pick(rng, [-(2**63), -(d + 5), _int(rng, -d, d - 1)])
        starts.append(s)
        ends.append(e)
        steps.append(step)
    inits = {"starts": _i64(starts), "ends": _i64(ends)}
    ins = ["X", "starts", "ends"]
    keep_axes = _int(rng, 0, 3) > 0 or axes != list(range(n_axes))
    keep_steps = any(s != 1 for s in steps) or _bool(rng)
    if keep_axes or keep_steps:
        inits["axes"] = _i64([a - r if _bool(rng) else a for a in axes])
        ins.append("axes")
    if keep_steps:
        inits["steps"] = _i64(steps)
        ins.append("steps")
    return _model([helper.make_node("Slice", ins, ["Y"])], {"X": _normal(rng, shape)}, ["Y"],
                  inits, name="slice")


def build_gather(rng, *, axis=None):
    """Gather with negative indices, a scalar index (drops the axis) or an index tensor."""
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:7])
    r = len(shape)
    axis = _int(rng, -r, r - 1) if axis is None else axis
    d = shape[axis]
    kind = _int(rng, 0, 2)
    if kind == 0:
        idx = np.array(_int(rng, -d, d - 1), np.int64)
    else:
        idx = rng.randint(-d, d, size=_shape(rng, kind, (1, 2, 3, 5))) if hasattr(rng, "randint") \
            else rng.integers(-d, d, size=_shape(rng, kind, (1, 2, 3, 5)))
        idx = idx.astype(np.int64)
    attrs = {} if axis == 0 and _bool(rng) else {"axis": axis}
    return _model([helper.make_node("Gather", ["X", "idx"], ["Y"], **attrs)],
                  {"X": _normal(rng, shape)}, ["Y"], {"idx": idx}, name="gather")


def build_shape(rng, *, opset=None):
    """Shape (cast to float); opset 15 adds start/end attributes."""
    opset = opset or _pick(rng, [13, 15])
    shape = _shape(rng, _int(rng, 0, 4), SIZES)
    attrs = {}
    if opset >= 15 and _bool(rng):
        r = max(len(shape), 1)
        attrs["start"] = _int(rng, -r, r)
        if _bool(rng):
            attrs["end"] = _int(rng, -r, r + 2)
    nodes = [helper.make_node("Shape", ["X"], ["s"], **attrs),
             helper.make_node("Cast", ["s"], ["Y"], to=TensorProto.FLOAT)]
    return _model(nodes, {"X": _normal(rng, shape)}, ["Y"], opset=opset, name="shape")


def build_cast(rng, *, to=None):
    """Cast float -> (int32 | int64 | bool | float16 | double | float) -> float: truncation
    toward zero, nonzero -> true, float16 rounding."""
    to = to or _pick(rng, [TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL,
                           TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.FLOAT])
    x = _normal(rng, _shape(rng, _int(rng, 1, 3), SIZES[:7]), 10.0)
    flat = x.reshape(-1)
    if flat.size > 3:
        flat[0], flat[1], flat[2] = 0.0, -2.5, 2.5
    nodes = [helper.make_node("Cast", ["X"], ["c"], to=to),
             helper.make_node("Cast", ["c"], ["Y"], to=TensorProto.FLOAT)]
    return _model(nodes, {"X": x}, ["Y"], name="cast")


def build_expand(rng):
    """Expand to a broadcast shape (which may have more dims, or 1s that keep a dim)."""
    target = _shape(rng, _int(rng, 1, 4), SIZES[:6])
    x_shape = _broadcast_partner(rng, target)
    spec = [1 if (d == xd and _int(rng, 0, 3) == 0) else d
            for d, xd in zip(target, [None] * (len(target) - len(x_shape)) + x_shape)]
    return _model([helper.make_node("Expand", ["X", "shape"], ["Y"])],
                  {"X": _normal(rng, x_shape)}, ["Y"], {"shape": _i64(spec)}, name="expand")


def build_split(rng, *, opset=None):
    """Split into 1-4 outputs: sizes as attribute (11), as input (13), equal parts
    (no sizes), or num_outputs (18, last chunk smaller)."""
    opset = opset or _pick(rng, [11, 13, 13, 18])
    shape = _shape(rng, _int(rng, 1, 4), SIZES[:8])
    r = len(shape)
    axis = _int(rng, -r, r - 1)
    d = shape[axis]
    k = _int(rng, 1, min(d, 4))
    mode = _pick(rng, ["sizes", "sizes", "equal"])
    inits = {}
    if opset >= 18 and mode == "equal":
        node_attrs = {"axis": axis, "num_outputs": k}
        outs = [f"Y{i}" for i in range(k)]
        ins = ["X"]
    elif mode == "equal":
        # equal split needs d divisible by k
        k = _pick(rng, [q for q in range(1, min(d, 4) + 1) if d % q == 0])
        node_attrs = {"axis": axis}
        outs = [f"Y{i}" for i in range(k)]
        ins = ["X"]
    else:
        cuts = sorted(int(c) for c in rng.permutation(np.arange(1, d))[:k - 1]) if d > 1 else []
        sizes = np.diff([0] + cuts + [d]).tolist()
        if _int(rng, 0, 4) == 0:
            sizes = sizes + [0]  # a zero-size part (allowed)
        outs = [f"Y{i}" for i in range(len(sizes))]
        node_attrs = {"axis": axis}
        ins = ["X"]
        if opset < 13:
            node_attrs["split"] = sizes
        else:
            inits["split"] = _i64(sizes)
            ins.append("split")
    return _model([helper.make_node("Split", ins, outs, **node_attrs)],
                  {"X": _normal(rng, shape)}, outs, inits, opset=opset, name="split")


def build_shape_chain(rng):
    """The chains exporters write: Shape -> Gather -> Unsqueeze -> Concat -> Reshape (the
    tf2onnx Flatten), Shape -> Slice -> Cast -> Mul -> Cast -> Concat feeding Expand,
    Transpose, Squeeze / Unsqueeze (opset 13 inputs), Split and Concat back."""
    n, c, h, w = _dim(rng, (1, 2, 3)), _dim(rng, SMALL), _dim(rng, SIZES[:7]), _dim(rng, SIZES[:7])
    x = _normal(rng, [n, h, w, c])
    inits = {"zero": _i64(0), "ax0": _i64([0]), "minus1": _i64([-1]), "one": _i64([1]),
             "three": _i64([3]), "two_f": np.array([2.0], F32), "ax1": _i64([1]),
             "split": _i64([1, c * h * w - 1])}
    nodes = [
        helper.make_node("Transpose", ["X"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Shape", ["nchw"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "ax0"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["nchw", "flat_shape"], ["flat"]),           # [n, c*h*w]
        helper.make_node("Slice", ["s", "one", "three"], ["ch"]),                # [c, h]
        helper.make_node("Cast", ["ch"], ["ch_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["ch_f", "two_f"], ["ch2_f"]),
        helper.make_node("Cast", ["ch2_f"], ["ch2"], to=TensorProto.INT64),
        helper.make_node("Concat", ["batch1", "ch2"], ["exp_shape3"], axis=0),  # [n, 2c, 2h]
        helper.make_node("Unsqueeze", ["flat", "ax1"], ["flat3"]),              # [n, 1, chw]
        helper.make_node("ReduceMean", ["flat3"], ["m"], axes=[2], keepdims=1),  # [n, 1, 1]
        helper.make_node("Expand", ["m", "exp_shape3"], ["expanded"]),           # [n, 2c, 2h]
        helper.make_node("Squeeze", ["flat3", "ax1"], ["flat_again"]),
        helper.make_node("Split", ["flat_again", "split"], ["p0", "p1"], axis=1),
        helper.make_node("Concat", ["p1", "p0"], ["Y0"], axis=1),
        helper.make_node("Cast", ["s"], ["Y1"], to=TensorProto.FLOAT),
        helper.make_node("Identity", ["expanded"], ["Y2"]),
    ]
    return _model(nodes, {"X": x}, ["Y0", "Y1", "Y2"], inits, opset=13, name="shape_chain")


# ----------------------------------------------------------------------------------------
# Resize
# ----------------------------------------------------------------------------------------

RESIZE_COORDS = ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def build_resize(rng, *, opset=None, mode=None, coord=None, nearest_mode=None, use_sizes=None,
                 layout=None, out_hw=None, in_hw=None):
    """Resize (linear or nearest) of the two spatial dims of an NCHW (or, linear only, an
    NHWC) tensor, up or down, to sizes including 1, with each coordinate transformation,
    each nearest_mode, given by scales or by sizes; opset 11 (roi + scales inputs), 13
    (empty optional inputs), 18 or 19."""
    opset = opset or _pick(rng, [11, 13, 13, 13, 18, 19])
    mode = mode or _pick(rng, ["linear", "nearest"])
    coord = coord or _pick(rng, RESIZE_COORDS)
    n, c = _dim(rng, (1, 2)), _dim(rng, (1, 2, 3))
    h, w = in_hw or (_dim(rng, SIZES), _dim(rng, SIZES))
    use_sizes = _bool(rng) if use_sizes is None else use_sizes
    layout = layout or ("NHWC" if mode == "linear" and _int(rng, 0, 3) == 0 else "NCHW")
    if use_sizes:
        oh, ow = out_hw or (_dim(rng, SIZES + (4, 10, 64)), _dim(rng, SIZES + (4, 10, 64)))
    else:
        sh, sw = _pick(rng, [0.5, 2.0, 3.0, 1.5, 0.75, 1.0, 0.3]), _pick(rng, [0.5, 2.0, 0.6, 1.7])
        if out_hw:
            oh, ow = out_hw
            sh, sw = oh / h, ow / w
        if int(np.floor(h * sh)) < 1 or int(np.floor(w * sw)) < 1:
            sh, sw = max(sh, 1.0), max(sw, 1.0)
    if layout == "NCHW":
        shape = [n, c, h, w]
        full = lambda a, b: [1, 1, a, b]  # noqa: E731
    else:
        shape = [n, h, w, c]
        full = lambda a, b: [1, a, b, 1]  # noqa: E731
    inits = {}
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    if mode == "nearest":
        nm = nearest_mode or _pick(rng, NEAREST_MODES)
        if nm != "round_prefer_floor" or _bool(rng):
            attrs["nearest_mode"] = nm
    ins = ["X"]
    if opset < 13:
        inits["roi"] = np.zeros([0], F32)
        ins.append("roi")
    else:
        ins.append("")
    if use_sizes:
        if opset < 13:
            inits["scales"] = np.zeros([0], F32)
            ins.append("scales")
        else:
            ins.append("")
        inits["sizes"] = _i64([n, c, oh, ow] if layout == "NCHW" else [n, oh, ow, c])
        ins.append("sizes")
    else:
        inits["scales"] = np.asarray(full(sh, sw), F32)
        ins.append("scales")
    node = helper.make_node("Resize", ins, ["Y"], **attrs)
    return _model([node], {"X": _normal(rng, shape)}, ["Y"], inits, opset=opset, name="resize")


def build_resize_of_transposed_image(rng, *, mode=None, coord=None):
    """The Keras export's image input: an NHWC tensor transposed to NCHW, its shape read
    by a Shape node, and resized (linear or nearest, any coordinate transformation) over
    height and width. MedInfer resizes straight from the NHWC tensor (no transpose)."""
    mode = mode or _pick(rng, ["linear", "nearest"])
    coord = coord or _pick(rng, RESIZE_COORDS)
    n, c = _dim(rng, (1, 2)), _dim(rng, (1, 3, 4))
    h, w = _dim(rng, SIZES), _dim(rng, SIZES)
    oh, ow = _dim(rng, SIZES + (4, 10)), _dim(rng, SIZES + (4, 10))
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    inits = {"sizes": _i64([n, c, oh, ow])}
    nodes = [
        helper.make_node("Transpose", ["X"], ["T"], perm=[0, 3, 1, 2]),
        helper.make_node("Shape", ["T"], ["s"]),
        helper.make_node("Cast", ["s"], ["Y1"], to=TensorProto.FLOAT),
        helper.make_node("Resize", ["T", "", "", "sizes"], ["Y"], **attrs),
    ]
    return _model(nodes, {"X": _normal(rng, [n, h, w, c])}, ["Y", "Y1"], inits, opset=13,
                  name="resize_of_transposed_image")


# ----------------------------------------------------------------------------------------
# constants and pass-throughs
# ----------------------------------------------------------------------------------------

def build_constant(rng, *, form=None):
    """Constant (value tensor, value_float, value_floats; opset 13) added to the input."""
    form = form or _pick(rng, ["value", "value_float", "value_floats"])
    shape = _shape(rng, _int(rng, 1, 3), SIZES[:6])
    if form == "value":
        c = _normal(rng, _broadcast_partner(rng, shape))
        node = _const("c", c)
    elif form == "value_float":
        node = helper.make_node("Constant", [], ["c"], value_float=float(rng.standard_normal()))
    else:
        vals = _normal(rng, [shape[-1]]).tolist()
        node = helper.make_node("Constant", [], ["c"], value_floats=vals)
    return _model([node, helper.make_node("Add", ["X", "c"], ["Y"])],
                  {"X": _normal(rng, shape)}, ["Y"], name="constant")


def build_identity(rng):
    """Identity of an input, and of an initializer (a graph output that is a weight)."""
    shape = _shape(rng, _int(rng, 0, 3), SIZES[:6])
    nodes = [helper.make_node("Identity", ["X"], ["Y0"]),
             helper.make_node("Identity", ["w"], ["Y1"])]
    return _model(nodes, {"X": _normal(rng, shape)}, ["Y0", "Y1"], {"w": _normal(rng, [3])},
                  name="identity")


def build_dropout(rng, *, opset=None):
    """Dropout in inference (the identity): ratio attribute (opset 10/11) or optional ratio
    input (13), with or without the mask output."""
    opset = opset or _pick(rng, [10, 11, 13, 13])
    shape = _shape(rng, _int(rng, 1, 3), SIZES[:6])
    outs = ["d", "mask"] if _bool(rng) else ["d"]
    inits = {}
    if opset >= 12:
        if _bool(rng):
            inits["ratio"] = np.array(_pick(rng, [0.1, 0.5]), F32)
            node = helper.make_node("Dropout", ["X", "ratio"], outs)
        else:
            node = helper.make_node("Dropout", ["X"], outs)
    else:
        node = helper.make_node("Dropout", ["X"], outs, ratio=float(_pick(rng, [0.1, 0.5])))
    nodes = [node, helper.make_node("Relu", ["d"], ["Y"])]
    return _model(nodes, {"X": _normal(rng, shape)}, ["Y"], inits, opset=opset, name="dropout")


# ----------------------------------------------------------------------------------------
# recurrent operators (LSTM, GRU)
# ----------------------------------------------------------------------------------------

#: Hidden and input sizes of the recurrent builders (1 and 33 straddle SIMD widths).
RECURRENT_SIZES = (1, 7, 33)


def _recurrent(rng, op, gates, *, direction, layout, hidden, input_size, batch, steps, has_bias,
               has_lengths, has_initial_h, has_initial_c, outputs, opset, attributes):
    """One LSTM (gates=4) or GRU (gates=3) node with every optional input drawn or pinned.

    Graph inputs are X and, when used, initial_h / initial_c (float32); W, R, B and
    sequence_lens (int32) are initializers. Outputs not wanted are left empty, as
    exporters write them; a dropped output is the empty name, never a hole in the middle."""
    directions = 2 if direction == "bidirectional" else 1
    x_shape = [batch, steps, input_size] if layout == 1 else [steps, batch, input_size]
    state_shape = [batch, directions, hidden] if layout == 1 else [directions, batch, hidden]
    # Weights around 1/sqrt(fan in), some larger, so gates both saturate and stay linear.
    scale = _pick(rng, [0.5, 1.0, 2.0])
    inits = {
        "W": _normal(rng, [directions, gates * hidden, input_size], scale / np.sqrt(input_size)),
        "R": _normal(rng, [directions, gates * hidden, hidden], scale / np.sqrt(hidden)),
    }
    inputs = {"X": _normal(rng, x_shape, _pick(rng, [1.0, 3.0]))}
    names = ["X", "W", "R", "", "", "", ""][: 3 + (4 if gates == 4 else 3)]
    if has_bias:
        inits["B"] = _normal(rng, [directions, 2 * gates * hidden], 0.5)
        names[3] = "B"
    if has_lengths:
        lengths = np.array([_int(rng, 1, steps) for _ in range(batch)], dtype=np.int32)
        lengths[_int(rng, 0, batch - 1)] = steps
        inits["sequence_lens"] = lengths
        names[4] = "sequence_lens"
    if has_initial_h:
        inputs["initial_h"] = _normal(rng, state_shape, 0.5)
        names[5] = "initial_h"
    if gates == 4 and has_initial_c:
        inputs["initial_c"] = _normal(rng, state_shape, 1.0)
        names[6] = "initial_c"
    while names and names[-1] == "":
        names.pop()
    out_names = ["Y", "Y_h", "Y_c"][: 3 if gates == 4 else 2]
    node_outputs = [name if name in outputs else "" for name in out_names]
    while node_outputs[-1] == "":
        node_outputs.pop()
    attrs = dict(hidden_size=hidden, direction=direction, **attributes)
    if layout == 1:
        attrs["layout"] = 1
    node = helper.make_node(op, names, node_outputs, **attrs)
    return _model([node], inputs, [n for n in out_names if n in outputs], inits, opset=opset, name=op.lower())


def _recurrent_choices(rng, gates, direction, layout, hidden, input_size, batch, steps, outputs, opset):
    direction = direction or _pick(rng, ["forward", "reverse", "bidirectional"])
    layout = _pick(rng, [0, 1]) if layout is None else layout
    if outputs is None:
        candidates = ["Y", "Y_h", "Y_c"][:gates - 1]
        outputs = [name for name in candidates if _bool(rng)] or [_pick(rng, candidates)]
    return dict(
        direction=direction, layout=layout,
        hidden=hidden or _pick(rng, RECURRENT_SIZES), input_size=input_size or _pick(rng, RECURRENT_SIZES),
        batch=batch or _pick(rng, [1, 3]), steps=steps or _pick(rng, [1, 2, 5, 9]), outputs=outputs,
        # layout is an attribute since opset 14; earlier forms are the same operator
        opset=opset or (14 if layout == 1 else _pick(rng, [11, 13, 14])))


def build_lstm(rng, *, direction=None, layout=None, hidden=None, input_size=None, batch=None, steps=None,
               has_bias=None, has_lengths=None, has_initial_h=None, has_initial_c=None, outputs=None, opset=None):
    """LSTM (gates i, o, f, c): forward, reverse or bidirectional; layout 0 ([T, N, I]) or 1
    ([N, T, I]); bias, sequence_lens, initial_h and initial_c each present or absent; any
    non-empty subset of Y, Y_h, Y_c."""
    choices = _recurrent_choices(rng, 4, direction, layout, hidden, input_size, batch, steps, outputs, opset)
    pick = lambda value: _bool(rng) if value is None else value  # noqa: E731
    return _recurrent(rng, "LSTM", 4, has_bias=pick(has_bias), has_lengths=pick(has_lengths),
                      has_initial_h=pick(has_initial_h), has_initial_c=pick(has_initial_c),
                      attributes={}, **choices)


def build_gru(rng, *, direction=None, layout=None, hidden=None, input_size=None, batch=None, steps=None,
              linear_before_reset=None, has_bias=None, has_lengths=None, has_initial_h=None, outputs=None,
              opset=None):
    """GRU (gates z, r, h): linear_before_reset 0 (the ONNX default, Keras reset_after=False)
    or 1 (PyTorch, Keras reset_after=True), directions, layouts and optional inputs as
    build_lstm; any non-empty subset of Y, Y_h."""
    choices = _recurrent_choices(rng, 3, direction, layout, hidden, input_size, batch, steps, outputs, opset)
    pick = lambda value: _bool(rng) if value is None else value  # noqa: E731
    reset = _pick(rng, [0, 1]) if linear_before_reset is None else linear_before_reset
    return _recurrent(rng, "GRU", 3, has_bias=pick(has_bias), has_lengths=pick(has_lengths),
                      has_initial_h=pick(has_initial_h), has_initial_c=False,
                      attributes={"linear_before_reset": reset}, **choices)


# ----------------------------------------------------------------------------------------
# a Keras-style CNN as tf2onnx writes it
# ----------------------------------------------------------------------------------------

def build_keras_cnn(rng):
    """NHWC input -> Mul/Add rescale -> Transpose -> [Conv -> Relu -> MaxPool] x 2 ->
    Transpose back -> Shape/Gather/Unsqueeze/Concat/Reshape flatten -> MatMul + Add ->
    Relu -> MatMul + Add -> Softmax: the shape of a tf2onnx Keras export."""
    n = _dim(rng, (1, 2))
    h, w = _dim(rng, (16, 17, 20, 33)), _dim(rng, (16, 18, 33))
    x = _uniform(rng, 0, 255, [n, h, w, 3])
    c1, c2, hid, ncls = 4, 6, _dim(rng, (5, 8)), _dim(rng, (2, 5))
    oh, ow = ((h - 2) // 2 - 2) // 2, ((w - 2) // 2 - 2) // 2
    inits = {
        "scale": np.array(1 / 255, F32), "offset": np.array(0.0, F32),
        "W1": _normal(rng, [c1, 3, 3, 3], 0.5), "B1": _normal(rng, [c1], 0.1),
        "W2": _normal(rng, [c2, c1, 3, 3], 0.3), "B2": _normal(rng, [c2], 0.1),
        "zero": _i64(0), "ax0": _i64([0]), "minus1": _i64([-1]),
        "D1": _normal(rng, [oh * ow * c2, hid], 0.2), "E1": _normal(rng, [hid], 0.1),
        "D2": _normal(rng, [hid, ncls], 0.5), "E2": _normal(rng, [ncls], 0.1),
    }
    nodes = [
        helper.make_node("Mul", ["X", "scale"], ["xs"]),
        helper.make_node("Add", ["xs", "offset"], ["xr"]),
        helper.make_node("Transpose", ["xr"], ["x0"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x0", "W1", "B1"], ["c1"], kernel_shape=[3, 3],
                         strides=[1, 1], dilations=[1, 1], pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "W2", "B2"], ["c2"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["p2"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Shape", ["nhwc"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        helper.make_node("Concat", ["b1", "minus1"], ["fs"], axis=0),
        helper.make_node("Reshape", ["nhwc", "fs"], ["flat"]),
        helper.make_node("MatMul", ["flat", "D1"], ["m1"]),
        helper.make_node("Add", ["m1", "E1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "D2"], ["m2"]),
        helper.make_node("Add", ["m2", "E2"], ["a2"]),
        helper.make_node("Softmax", ["a2"], ["Y"], axis=-1),
    ]
    return _model(nodes, {"X": x}, ["Y"], inits, opset=13, name="keras_cnn")


# ----------------------------------------------------------------------------------------

#: family name -> builder
BUILDERS = {
    "conv": build_conv,
    "conv_relu_maxpool": build_conv_relu_maxpool,
    "maxpool": build_maxpool,
    "averagepool": build_averagepool,
    "globalaveragepool": build_globalaveragepool,
    "gemm": build_gemm,
    "matmul": build_matmul,
    "elementwise": build_elementwise,
    "softmax": build_softmax,
    "batchnorm": build_batchnorm,
    "relu": build_relu,
    "sigmoid": build_sigmoid,
    "tanh": build_tanh,
    "leakyrelu": build_leakyrelu,
    "clip": build_clip,
    "reshape": build_reshape,
    "flatten": build_flatten,
    "transpose": build_transpose,
    "squeeze": build_squeeze,
    "unsqueeze": build_unsqueeze,
    "concat": build_concat,
    "slice": build_slice,
    "gather": build_gather,
    "shape": build_shape,
    "cast": build_cast,
    "expand": build_expand,
    "split": build_split,
    "shape_chain": build_shape_chain,
    "resize": build_resize,
    "resize_of_transposed_image": build_resize_of_transposed_image,
    "constant": build_constant,
    "identity": build_identity,
    "dropout": build_dropout,
    "keras_cnn": build_keras_cnn,
    "winograd_chain": build_winograd_chain,
    "lstm": build_lstm,
    "gru": build_gru,
}

#: op types that appear in the graphs above
OPERATORS = sorted({
    "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul", "Add",
    "Sub", "Mul", "Div", "Softmax", "BatchNormalization", "Clip", "LeakyRelu", "Sigmoid",
    "Tanh", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Slice",
    "Gather", "Shape", "Cast", "Expand", "Split", "Resize", "Constant", "Identity", "Dropout",
    "ReduceMean", "LSTM", "GRU",
})


if __name__ == "__main__":  # smoke test: every builder, many seeds, run in onnxruntime
    import sys
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    seen = set()
    for fam, fn in BUILDERS.items():
        for seed in range(seeds):
            mb, ins = fn(np.random.RandomState(seed))
            outs = reference(mb, ins)
            assert all(o.dtype == np.float32 for o in outs), fam
            seen.update(n.op_type for n in onnx.load_from_string(mb).graph.node)
        print(f"{fam}: {seeds} seeds ok")
    missing = set(OPERATORS) - seen
    print("operators never drawn:", sorted(missing) or "none")

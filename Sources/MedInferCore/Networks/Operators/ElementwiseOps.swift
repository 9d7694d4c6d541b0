#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Element-wise operators with NumPy broadcasting: Add/Sub/Mul/Div/Pow/Max/Min/Sum,
/// the activations and unary maps, Clip, comparisons, logical operators and Where (constants only).

final class BinaryStep: NetworkStep {
    let a: Int, b: Int, out: Int, op: BinaryOperator, layout: BroadcastLayout
    init(a: Int, b: Int, out: Int, op: BinaryOperator, layout: BroadcastLayout) {
        self.a = a; self.b = b; self.out = out; self.op = op; self.layout = layout
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        Elementwise.binary(op, slots[a], slots[b], slots[out], layout)
    }
}

final class UnaryStep: NetworkStep {
    let input: Int, output: Int, op: UnaryOperator, count: Int
    init(input: Int, output: Int, op: UnaryOperator, count: Int) {
        self.input = input; self.output = output; self.op = op; self.count = count
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        op.apply(slots[input], slots[output], count: count)
    }
}

extension Operators {
    static func binary(_ c: NodeContext, _ op: BinaryOperator) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0), y = try c.input(1)
        // x * s feeding only a convolution: the scale moves into the convolution's
        // weights (Conv(s x) = Conv with s W, zero padding included), saving a pass
        // over the image (Keras' Rescaling(1/255) before the first Conv2D).
        if op == .mul, case .tensor = x, let k = y.constant, k.isFloat, k.count == 1, k.shape.count <= 1,
           let (index, next) = c.planner.soleConsumer(of: c.node.outputs[0]), next.opType == "Conv",
           next.inputs.first == c.node.outputs[0], next.inputs.count >= 2,
           c.planner.values[next.inputs[1]]?.constant != nil {
            c.planner.inputScale[index] = k.floatValues[0]
            return [x]
        }
        return try binaryValues(c, x, y, op)
    }

    static func binaryValues(_ c: NodeContext, _ x: PlanValue, _ y: PlanValue, _ op: BinaryOperator)
        throws(MedInferError) -> [PlanValue]
    {
        guard let outShape = BroadcastLayout.shape(x.shape, y.shape) else {
            throw .shapeMismatch("shapes \(x.shape) and \(y.shape) do not broadcast")
        }
        // Integer arithmetic on shape values stays integer (Div truncates, as ONNX does).
        if let kx = x.constant, let ky = y.constant, !kx.isFloat, !ky.isFloat {
            let strideX = try broadcastMap(kx.shape, outShape, charging: c.builder), strideY = try broadcastMap(ky.shape, outShape, charging: c.builder)
            let a = kx.intValues, b = ky.intValues
            var values: [Int64] = []
            for i in 0 ..< strideX.count {
                let u = a[strideX[i]], v = b[strideY[i]]
                switch op {
                case .add: values.append(u &+ v)
                case .sub: values.append(u &- v)
                case .mul: values.append(u &* v)
                case .div:
                    guard v != 0 else { throw .parse("integer division by zero") }
                    values.append(u / v)
                case .pow: values.append(Int64(clamping: Int(exactly: powf(Float(u), Float(v)).rounded()) ?? 0))
                case .max: values.append(Swift.max(u, v))
                case .min: values.append(Swift.min(u, v))
                }
            }
            return [.constant(ConstTensor(shape: outShape, ints: values, type: kx.elementType))]
        }
        let a = try c.builder.tensor(x), b = try c.builder.tensor(y)
        let out = try c.newTensor(outShape)
        let layout = BroadcastLayout(a: x.shape, b: y.shape, out: outShape)
        return try c.emit(BinaryStep(a: a.slot, b: b.slot, out: out.slot, op: op, layout: layout),
                      reading: [a, b], writing: [out])
    }

    /// Flat index into a tensor of `shape` for every element of the broadcast `outShape`.
    static func broadcastMap(_ shape: [Int], _ outShape: [Int], charging builder: PlanBuilder) throws(MedInferError) -> [Int] {
        let padded = [Int](repeating: 1, count: outShape.count - shape.count) + shape
        return try indexMap(outShape: outShape, sourceStrides: rowMajorStrides(padded), charging: builder) { a, i in padded[a] == 1 ? 0 : i }
    }

    static func variadic(_ c: NodeContext, _ op: BinaryOperator) throws(MedInferError) -> [PlanValue] {
        let parts = c.inputs.compactMap { $0 }
        guard var acc = parts.first else { throw .parse("no inputs") }
        for next in parts.dropFirst() { acc = try binaryValues(c, acc, next, op)[0] }
        return [acc]
    }

    static func unary(_ c: NodeContext, _ op: UnaryOperator) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        if let k = x.constant, !k.isFloat, case .neg = op {
            return [.constant(ConstTensor(shape: k.shape, ints: k.intValues.map { 0 &- $0 }, type: k.elementType))]
        }
        let input = try c.builder.tensor(x)
        let out = try c.newTensor(x.shape)
        return try c.emit(UnaryStep(input: input.slot, output: out.slot, op: op, count: input.count),
                      reading: [input], writing: [out])
    }

    /// Clip's bounds: attributes before opset 11, optional constant inputs after.
    static func clipBounds(_ node: ONNXNode, inputs: [PlanValue?]) throws(MedInferError) -> (Float, Float) {
        var lo = -Float.greatestFiniteMagnitude, hi = Float.greatestFiniteMagnitude
        for a in node.attributes {
            if a.name == "min", case .float(let f) = a.value { lo = f }
            if a.name == "max", case .float(let f) = a.value { hi = f }
        }
        if inputs.count > 0, let v = inputs[0] {
            guard let k = v.constant, k.count == 1 else { throw .unsupported("Clip min must be a constant scalar") }
            lo = k.floatValues[0]
        }
        if inputs.count > 1, let v = inputs[1] {
            guard let k = v.constant, k.count == 1 else { throw .unsupported("Clip max must be a constant scalar") }
            hi = k.floatValues[0]
        }
        return (lo, hi)
    }

    static func clip(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let (lo, hi) = try clipBounds(c.node, inputs: Array(c.inputs.dropFirst()))
        return try unary(c, .activation(.clip(min: lo, max: hi)))
    }

    static func comparison(_ c: NodeContext, _ compare: (Double, Double) -> Bool) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0), y = try c.input(1)
        guard let kx = x.constant, let ky = y.constant else {
            throw .unsupported("comparisons of run-time tensors are not supported")
        }
        guard let outShape = BroadcastLayout.shape(kx.shape, ky.shape) else {
            throw .shapeMismatch("shapes \(kx.shape) and \(ky.shape) do not broadcast")
        }
        let mx = try broadcastMap(kx.shape, outShape, charging: c.builder), my = try broadcastMap(ky.shape, outShape, charging: c.builder)
        let a = kx.isFloat ? kx.floatValues.map(Double.init) : kx.intValues.map(Double.init)
        let b = ky.isFloat ? ky.floatValues.map(Double.init) : ky.intValues.map(Double.init)
        let values = (0 ..< mx.count).map { compare(a[mx[$0]], b[my[$0]]) ? Int64(1) : 0 }
        return [.constant(ConstTensor(shape: outShape, ints: values, type: .bool))]
    }

    static func logicalNot(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        guard let k = try c.input(0).constant else { throw .unsupported("Not of a run-time tensor") }
        return [.constant(ConstTensor(shape: k.shape, ints: k.intValues.map { $0 == 0 ? 1 : 0 }, type: .bool))]
    }

    static func whereOp(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        guard let cond = try c.input(0).constant, let x = try c.input(1).constant, let y = try c.input(2).constant else {
            throw .unsupported("Where over run-time tensors is not supported")
        }
        guard let s1 = BroadcastLayout.shape(cond.shape, x.shape), let outShape = BroadcastLayout.shape(s1, y.shape) else {
            throw .shapeMismatch("shapes of Where do not broadcast")
        }
        let mc = try broadcastMap(cond.shape, outShape, charging: c.builder), mx = try broadcastMap(x.shape, outShape, charging: c.builder), my = try broadcastMap(y.shape, outShape, charging: c.builder)
        let flags = cond.intValues
        if x.isFloat || y.isFloat {
            let a = x.floatValues, b = y.floatValues
            return [.constant(ConstTensor(shape: outShape, floats: (0 ..< mc.count).map { flags[mc[$0]] != 0 ? a[mx[$0]] : b[my[$0]] }))]
        }
        let a = x.intValues, b = y.intValues
        return [.constant(ConstTensor(shape: outShape, ints: (0 ..< mc.count).map { flags[mc[$0]] != 0 ? a[mx[$0]] : b[my[$0]] }, type: x.elementType))]
    }
}

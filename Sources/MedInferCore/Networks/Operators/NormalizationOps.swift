/// BatchNormalization (inference form, folded to a per-channel scale and shift at plan
/// time) and Softmax / LogSoftmax (opset < 13: over the flattened trailing axes;
/// opset 13+: over one axis).

final class ChannelAffineStep: NetworkStep {
    let input: Int, output: Int, batch: Int, plane: Int
    let scale: [Float], shift: [Float]
    init(input: Int, output: Int, batch: Int, plane: Int, scale: [Float], shift: [Float]) {
        self.input = input; self.output = output; self.batch = batch; self.plane = plane
        self.scale = scale; self.shift = shift
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        var src = slots[input], dst = slots[output]
        for _ in 0 ..< batch {
            for ch in 0 ..< scale.count {
                let s = scale[ch], t = shift[ch]
                for i in 0 ..< plane { dst[i] = src[i] * s + t }
                src += plane; dst += plane
            }
        }
    }
}

final class SoftmaxStep: NetworkStep {
    let input: Int, output: Int, outer: Int, axis: Int, inner: Int, log: Bool
    init(input: Int, output: Int, outer: Int, axis: Int, inner: Int, log: Bool) {
        self.input = input; self.output = output; self.outer = outer; self.axis = axis; self.inner = inner; self.log = log
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        Softmax.run(slots[input], slots[output], outer: outer, axis: axis, inner: inner, log: log)
    }
}

extension Operators {
    static func batchNormalization(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        guard x.shape.count >= 2 else { throw .shapeMismatch("input \(x.shape) has no channel axis") }
        let channels = x.shape[1]
        guard let gamma = try c.constantInput(1, "scale"), let beta = try c.constantInput(2, "B"),
              let mean = try c.constantInput(3, "mean"), let variance = try c.constantInput(4, "var") else {
            throw .parse("BatchNormalization needs scale, B, mean and var")
        }
        for (name, t) in [("scale", gamma), ("B", beta), ("mean", mean), ("var", variance)] where t.count != channels {
            throw .shapeMismatch("\(name) has \(t.count) values for \(channels) channels")
        }
        if try c.int("training_mode", 0) != 0 { throw .unsupported("training_mode 1") }
        let epsilon = try c.float("epsilon", 1e-5)
        let g = gamma.floatValues, b = beta.floatValues, mu = mean.floatValues, v = variance.floatValues
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for ch in 0 ..< channels {
            scale[ch] = g[ch] / (v[ch] + epsilon).squareRoot()
            shift[ch] = b[ch] - mu[ch] * scale[ch]
        }
        let input = try c.builder.tensor(x)
        let out = try c.newTensor(x.shape)
        return try c.emit(ChannelAffineStep(input: input.slot, output: out.slot, batch: x.shape[0],
                                        plane: x.shape[2...].reduce(1, *), scale: scale, shift: shift),
                      reading: [input], writing: [out])
    }

    static func softmax(_ c: NodeContext, log: Bool) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        let axis = try c.axis(try c.int("axis", c.opset >= 13 ? -1 : 1), rank: rank)
        let outer = x.shape[..<axis].reduce(1, *)
        let (length, inner) = c.opset >= 13
            ? (x.shape[axis], x.shape[(axis + 1)...].reduce(1, *))
            : (x.shape[axis...].reduce(1, *), 1)
        let input = try c.builder.tensor(x)
        let out = try c.newTensor(x.shape)
        return try c.emit(SoftmaxStep(input: input.slot, output: out.slot, outer: outer, axis: length, inner: inner, log: log),
                      reading: [input], writing: [out])
    }
}

/// Shape arithmetic and data movement: Shape, Reshape, Flatten, Squeeze, Unsqueeze,
/// Transpose, Concat, Split, Slice, Gather, Expand, Cast, Identity/Dropout, Constant,
/// ConstantOfShape, Range, Reduce*. On constants these fold; on run-time tensors the
/// pure reshapes are free (same slot, new shape) and the rest copy.

/// out[i] = in[map[i]]: Gather, Slice, Expand and Split on run-time tensors.
final class IndexGatherStep: NetworkStep {
    let source: Int, destination: Int
    let map: [Int32]
    /// Where the map reads one consecutive run (the last step of an LSTM's Y, a Split of
    /// the outer axis): then the gather is one copy.
    let runStart: Int?
    init(source: Int, destination: Int, map: [Int32]) {
        self.source = source; self.destination = destination; self.map = map
        let first = map.first.map(Int.init) ?? 0
        runStart = map.indices.allSatisfy { Int(map[$0]) == first + $0 } ? first : nil
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        let src = slots[source], dst = slots[destination]
        if let runStart {
            dst.update(from: src + runStart, count: map.count)
            return
        }
        map.withUnsafeBufferPointer { m in for i in 0 ..< m.count { dst[i] = src[Int(m[i])] } }
    }
}

final class TransposeStep: NetworkStep {
    let source: Int, destination: Int
    let shape: [Int], permutation: [Int]
    init(source: Int, destination: Int, shape: [Int], permutation: [Int]) {
        self.source = source; self.destination = destination; self.shape = shape; self.permutation = permutation
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        Transpose.run(slots[source], slots[destination], shape: shape, permutation: permutation)
    }
}

/// Concatenation as `outer` rounds of one contiguous chunk from each input.
final class ConcatStep: NetworkStep {
    let sources: [Int], chunks: [Int], destination: Int, outer: Int
    init(sources: [Int], chunks: [Int], destination: Int, outer: Int) {
        self.sources = sources; self.chunks = chunks; self.destination = destination; self.outer = outer
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        var out = slots[destination]
        for o in 0 ..< outer {
            for (k, slot) in sources.enumerated() where chunks[k] > 0 {
                out.update(from: slots[slot] + o * chunks[k], count: chunks[k])
                out += chunks[k]
            }
        }
    }
}

func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { strides[i] = step; step *= shape[i] }
    return strides
}

/// Steps a multi-index to the next element in row-major order (the last axis fastest).
@inline(__always)
func advance(_ position: inout [Int], within shape: [Int]) {
    var a = shape.count - 1
    while a >= 0 {
        position[a] += 1
        if position[a] < shape[a] { return }
        position[a] = 0
        a -= 1
    }
}

/// Flat source index for every element of `outShape`, given per-axis source indices.
/// Refuses maps beyond `PlanBuilder.maxFoldedElements` (they are built while planning).
func indexMap(outShape: [Int], sourceStrides: [Int], charging builder: PlanBuilder,
              axisIndex: (Int, Int) -> Int) throws(MedInferError) -> [Int] {
    let total = try PlanBuilder.elementCount(outShape, "re-indexing")
    guard total <= PlanBuilder.maxFoldedElements else {
        throw .outOfMemory("a gather/slice/expand of shape \(outShape) (over \(PlanBuilder.maxFoldedElements) elements) is too large to plan")
    }
    try builder.charge(MemoryLayout<Int>.stride * total, for: "an index map of shape \(outShape)")
    var result = [Int](repeating: 0, count: total)
    guard total > 0 else { return result }
    var position = [Int](repeating: 0, count: outShape.count)
    for i in 0 ..< total {
        var offset = 0
        for a in 0 ..< outShape.count { offset += axisIndex(a, position[a]) * sourceStrides[a] }
        result[i] = offset
        advance(&position, within: outShape)
    }
    return result
}

extension Operators {
    /// Reads `map` from `value` into a tensor of `outShape`: folded for constants.
    static func gatherElements(_ c: NodeContext, _ value: PlanValue, map: [Int], outShape: [Int])
        throws(MedInferError) -> PlanValue
    {
        switch value {
        case .constant(let k): return .constant(k.gathered(map, shape: outShape))
        case .tensor(let t):
            guard map.count < Int(Int32.max), t.count < Int(Int32.max) else {
                throw .outOfMemory("tensor too large to re-index")
            }
            let out = try c.newTensor(outShape)
            return try c.emit(IndexGatherStep(source: t.slot, destination: out.slot, map: map.map { Int32($0) }),
                          reading: [t], writing: [out])[0]
        }
    }

    static func alias(_ value: PlanValue, _ shape: [Int]) -> PlanValue {
        switch value {
        case .constant(let k): return .constant(k.reshaped(shape))
        case .tensor(var t): t.shape = shape; return .tensor(t)
        }
    }

    static func passThrough(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        return [x]
    }

    static func shape(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let s = try c.input(0).shape
        var start = try c.int("start", 0), end = try c.int("end", s.count)
        if start < 0 { start += s.count }
        if end < 0 { end += s.count }
        start = max(0, min(start, s.count)); end = max(start, min(end, s.count))
        return [.constant(.vector(s[start ..< end].map { Int64($0) }))]
    }

    static func size(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        [.constant(.scalar(Int64(try c.input(0).shape.reduce(1, *))))]
    }

    static func reshape(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let requested: [Int64]
        if let target = try c.constantInput(1, "shape") { requested = target.intValues }
        else if let attr = try c.ints("shape") { requested = attr.map { Int64($0) } }
        else { throw .parse("Reshape without a target shape") }
        let allowZero = try c.int("allowzero", 0) != 0
        var shape: [Int] = []
        var inferred: Int?
        for (i, d) in requested.enumerated() {
            if d == -1 {
                guard inferred == nil else { throw .parse("more than one -1 in target shape \(requested)") }
                inferred = i; shape.append(1)
            } else if d == 0 && !allowZero {
                guard i < x.shape.count else { throw .shapeMismatch("target shape \(requested) copies axis \(i) of \(x.shape)") }
                shape.append(x.shape[i])
            } else {
                guard d >= 0, d < (1 << 40) else { throw .parse("invalid dimension \(d) in target shape \(requested)") }
                shape.append(Int(d))
            }
        }
        let total = x.shape.reduce(1, *)
        // Target dimensions come from the file: multiply with overflow checks.
        func product(_ dims: [Int]) -> Int? {
            var p = 1
            for d in dims {
                let (q, overflow) = p.multipliedReportingOverflow(by: d)
                if overflow { return nil }
                p = q
            }
            return p
        }
        if let i = inferred {
            guard let known = product(shape), known > 0, total % known == 0 else {
                throw .shapeMismatch("cannot reshape \(x.shape) to \(requested)")
            }
            shape[i] = total / known
        }
        guard product(shape) == total else { throw .shapeMismatch("cannot reshape \(x.shape) (\(total) elements) to \(shape)") }
        return [alias(x, shape)]
    }

    static func flatten(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        var axis = try c.int("axis", 1)
        if axis < 0 { axis += rank }
        guard axis >= 0, axis <= rank else { throw .parse("axis \(axis) is out of range for rank \(rank)") }
        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[axis...].reduce(1, *)
        return [alias(x, [outer, inner])]
    }

    /// Axes from an attribute (older opsets) or the second input (opset 13+).
    static func axesList(_ c: NodeContext, input: Int) throws(MedInferError) -> [Int]? {
        if let attr = try c.ints("axes") { return attr }
        if let k = try c.constantInput(input, "axes") { return k.intValues.map { Int($0) } }
        return nil
    }

    static func squeeze(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        var remove = Set<Int>()
        if let axes = try axesList(c, input: 1) {
            for a in axes {
                let axis = try c.axis(a, rank: rank)
                guard x.shape[axis] == 1 else { throw .shapeMismatch("cannot squeeze axis \(a) of shape \(x.shape)") }
                remove.insert(axis)
            }
        } else {
            for (i, d) in x.shape.enumerated() where d == 1 { remove.insert(i) }
        }
        return [alias(x, x.shape.enumerated().filter { !remove.contains($0.offset) }.map(\.element))]
    }

    static func unsqueeze(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        guard let axes = try axesList(c, input: 1) else { throw .parse("Unsqueeze without axes") }
        let rank = x.shape.count + axes.count
        var inserted = Set<Int>()
        for a in axes {
            let axis = try c.axis(a, rank: rank)
            guard inserted.insert(axis).inserted else { throw .parse("axis \(a) repeated") }
        }
        var shape: [Int] = []
        var source = x.shape.makeIterator()
        for i in 0 ..< rank { shape.append(inserted.contains(i) ? 1 : source.next()!) }
        return [alias(x, shape)]
    }

    static func transpose(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        let perm = try c.ints("perm") ?? Array((0 ..< rank).reversed())
        guard perm.count == rank, Set(perm) == Set(0 ..< rank) else {
            throw .parse("perm \(perm) is not a permutation of 0..<\(rank)")
        }
        let outShape = perm.map { x.shape[$0] }
        // Moving only axes of extent 1 is a reshape.
        if perm.filter({ x.shape[$0] != 1 }) == (0 ..< rank).filter({ x.shape[$0] != 1 }) {
            return [alias(x, outShape)]
        }
        switch x {
        case .constant(let k):
            let strides = rowMajorStrides(k.shape)
            let map = try indexMap(outShape: outShape, sourceStrides: perm.map { strides[$0] }, charging: c.builder) { _, i in i }
            return [.constant(k.gathered(map, shape: outShape))]
        case .tensor(let t):
            let out = try c.newTensor(outShape)
            return try c.emit(TransposeStep(source: t.slot, destination: out.slot, shape: t.shape, permutation: perm),
                          reading: [t], writing: [out])
        }
    }

    static func concat(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let parts = c.inputs.compactMap { $0 }
        guard let first = parts.first else { throw .parse("Concat without inputs") }
        let rank = first.shape.count
        let axis = try c.axis(try c.int("axis", 0), rank: rank)
        var outShape = first.shape
        outShape[axis] = 0
        for p in parts {
            guard p.shape.count == rank else { throw .shapeMismatch("Concat of ranks \(rank) and \(p.shape.count)") }
            for i in 0 ..< rank where i != axis && p.shape[i] != first.shape[i] {
                throw .shapeMismatch("Concat of shapes \(first.shape) and \(p.shape) along axis \(axis)")
            }
            outShape[axis] += p.shape[axis]
        }
        let outer = first.shape[..<axis].reduce(1, *)
        let chunks = parts.map { $0.shape[axis...].reduce(1, *) }
        if c.allInputsConstant {
            let consts = parts.map { $0.constant! }
            if consts.allSatisfy({ !$0.isFloat }) {
                var values: [Int64] = []
                let arrays = consts.map(\.intValues)
                for o in 0 ..< outer { for (k, a) in arrays.enumerated() { values += a[o * chunks[k] ..< (o + 1) * chunks[k]] } }
                return [.constant(ConstTensor(shape: outShape, ints: values, type: consts[0].elementType))]
            }
            var values: [Float] = []
            let arrays = consts.map(\.floatValues)
            for o in 0 ..< outer { for (k, a) in arrays.enumerated() { values += a[o * chunks[k] ..< (o + 1) * chunks[k]] } }
            return [.constant(ConstTensor(shape: outShape, floats: values))]
        }
        var tensors: [RuntimeTensor] = []
        for p in parts { tensors.append(try c.builder.tensor(p)) }
        let out = try c.newTensor(outShape)
        return try c.emit(ConcatStep(sources: tensors.map(\.slot), chunks: chunks, destination: out.slot, outer: outer),
                      reading: tensors, writing: [out])
    }

    static func split(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        let axis = try c.axis(try c.int("axis", 0), rank: rank)
        let count = c.node.outputs.count
        var sizes: [Int]
        if let attr = try c.ints("split") { sizes = attr }
        else if let k = try c.constantInput(1, "split") { sizes = k.intValues.map { Int($0) } }
        else {
            let n = try c.int("num_outputs", count)
            guard n > 0 else { throw .parse("Split into \(n) outputs") }
            let chunk = (x.shape[axis] + n - 1) / n
            sizes = (0 ..< n).map { i in max(0, min(chunk, x.shape[axis] - i * chunk)) }
        }
        guard sizes.count == count, sizes.allSatisfy({ $0 >= 0 && $0 <= x.shape[axis] }),
              sizes.reduce(0, +) == x.shape[axis] else {
            throw .shapeMismatch("split sizes \(sizes) do not divide axis \(axis) of \(x.shape) into \(count) outputs")
        }
        var results: [PlanValue] = []
        var start = 0
        let strides = rowMajorStrides(x.shape)
        for size in sizes {
            var outShape = x.shape
            outShape[axis] = size
            let offset = start
            let map = try indexMap(outShape: outShape, sourceStrides: strides, charging: c.builder) { a, i in a == axis ? i + offset : i }
            results.append(try gatherElements(c, x, map: map, outShape: outShape))
            start += size
        }
        return results
    }

    static func slice(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        var starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?
        if c.opset < 10 {
            starts = (try c.ints("starts") ?? []).map { Int64($0) }
            ends = (try c.ints("ends") ?? []).map { Int64($0) }
            axes = try c.ints("axes")?.map { Int64($0) }
        } else {
            guard let s = try c.constantInput(1, "starts"), let e = try c.constantInput(2, "ends") else {
                throw .parse("Slice needs starts and ends")
            }
            starts = s.intValues; ends = e.intValues
            axes = try c.constantInput(3, "axes")?.intValues
            steps = try c.constantInput(4, "steps")?.intValues
        }
        let axisList = axes ?? (0 ..< Int64(starts.count)).map { $0 }
        guard starts.count == ends.count, axisList.count == starts.count, steps == nil || steps!.count == starts.count else {
            throw .parse("starts, ends, axes and steps differ in length")
        }
        var begin = [Int](repeating: 0, count: rank)
        var step = [Int](repeating: 1, count: rank)
        var outShape = x.shape
        var seen = Set<Int>()
        for (i, a) in axisList.enumerated() {
            let axis = try c.axis(Int(clamping: a), rank: rank)
            guard seen.insert(axis).inserted else { throw .parse("axis \(a) repeated") }
            let dim = Int64(x.shape[axis])
            // A step longer than the axis takes one element, like dim + 1: bounding it keeps
            // the count arithmetic below from overflowing on a file's Int64.max.
            let given = steps?[i] ?? 1
            guard given != 0 else { throw .parse("step 0 on axis \(a)") }
            let st = given > 0 ? min(given, dim + 1) : max(given, -(dim + 1))
            var s = starts[i], e = ends[i]
            if s < 0 { s += dim }
            if e < 0 { e += dim }
            if st > 0 {
                s = max(0, min(s, dim)); e = max(0, min(e, dim))
                outShape[axis] = e > s ? Int((e - s + st - 1) / st) : 0
            } else {
                s = max(-1, min(s, dim - 1)); e = max(-1, min(e, dim - 1))
                outShape[axis] = s > e ? Int((s - e + (-st) - 1) / (-st)) : 0
            }
            begin[axis] = Int(s); step[axis] = Int(clamping: st)
        }
        // The whole tensor (a stream's one step sliced as "the last step"): no copy.
        if outShape == x.shape && begin.allSatisfy({ $0 == 0 }) && step.allSatisfy({ $0 == 1 }) {
            return [x]
        }
        let map = try indexMap(outShape: outShape, sourceStrides: rowMajorStrides(x.shape), charging: c.builder) { a, i in begin[a] + i * step[a] }
        return [try gatherElements(c, x, map: map, outShape: outShape)]
    }

    static func gather(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        guard let indices = try c.constantInput(1, "indices") else { throw .parse("Gather without indices") }
        let rank = x.shape.count
        guard rank > 0 else { throw .shapeMismatch("Gather on a scalar") }
        let axis = try c.axis(try c.int("axis", 0), rank: rank)
        let dim = x.shape[axis]
        var idx: [Int] = []
        for v in indices.intValues {
            let i = v < 0 ? v + Int64(dim) : v
            guard i >= 0, i < Int64(dim) else { throw .shapeMismatch("index \(v) is out of range for axis \(axis) of size \(dim)") }
            idx.append(Int(i))
        }
        let outShape = Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...])
        let strides = rowMajorStrides(x.shape)
        // Output axes: [0, axis) from x, then the indices' axes, then x's axes after `axis`.
        let ir = indices.shape.count
        let indexStrides = rowMajorStrides(indices.shape)
        let total = try PlanBuilder.elementCount(outShape, "Gather")
        guard total <= PlanBuilder.maxFoldedElements else { throw .outOfMemory("Gather output \(outShape) is too large to plan") }
        try c.builder.charge(MemoryLayout<Int>.stride * total, for: "Gather output \(outShape)")
        var map = [Int](repeating: 0, count: total)
        var position = [Int](repeating: 0, count: outShape.count)
        for i in 0 ..< total {
            var offset = 0, flatIndex = 0
            for a in 0 ..< outShape.count {
                if a < axis { offset += position[a] * strides[a] }
                else if a < axis + ir { flatIndex += position[a] * indexStrides[a - axis] }
                else { offset += position[a] * strides[a - ir + 1] }
            }
            map[i] = offset + idx[flatIndex] * strides[axis]
            advance(&position, within: outShape)
        }
        return [try gatherElements(c, x, map: map, outShape: outShape)]
    }

    static func expand(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        guard let target = try c.constantInput(1, "shape") else { throw .parse("Expand without a shape") }
        let requested = target.intValues.map { Int(clamping: $0) }
        guard requested.allSatisfy({ $0 >= 0 }), let outShape = BroadcastLayout.shape(x.shape, requested) else {
            throw .shapeMismatch("cannot expand \(x.shape) to \(requested)")
        }
        let padded = [Int](repeating: 1, count: outShape.count - x.shape.count) + x.shape
        let strides = rowMajorStrides(padded)
        let map = try indexMap(outShape: outShape, sourceStrides: strides, charging: c.builder) { a, i in padded[a] == 1 ? 0 : i }
        return [try gatherElements(c, x, map: map, outShape: outShape)]
    }

    static func cast(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let to = try c.int("to", 1)
        guard let type = ONNXElementType(rawValue: Int32(clamping: to)), type != .string else {
            throw .unsupported("Cast to \(ONNXElementType.name(Int32(clamping: to)))")
        }
        let toFloat = type == .float || type == .double || type == .float16
        switch x {
        case .constant(let k):
            if toFloat { return [.constant(ConstTensor(shape: k.shape, floats: k.floatValues))] }
            if type == .bool {
                return [.constant(ConstTensor(shape: k.shape, ints: k.floatValues.map { $0 != 0 ? 1 : 0 }, type: .bool))]
            }
            return [.constant(ConstTensor(shape: k.shape, ints: k.intValues, type: type))]
        case .tensor(let t):
            if type == .float || type == .double { return [x] }
            // Run-time tensors stay float32; a cast to an integer, bool or half type
            // rounds the values as that type would (exact for |x| < 2^24).
            let op: UnaryOperator
            switch type {
            case .bool: op = .toBool
            case .float16: op = .toHalf
            default: op = .truncate
            }
            let out = try c.newTensor(t.shape)
            return try c.emit(UnaryStep(input: t.slot, output: out.slot, op: op, count: t.count), reading: [t], writing: [out])
        }
    }

    static func constant(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        if let v = c.attribute("value") {
            guard case .tensor(let t) = v else { throw .parse("attribute 'value' is not a tensor") }
            return [.constant(try ConstTensor(t, bytes: c.planner.model.bytes.buffer, label: "value"))]
        }
        if let v = c.attribute("value_float") { if case .float(let f) = v { return [.constant(ConstTensor(shape: [], floats: [f]))] } }
        if let v = c.attribute("value_floats") { if case .floats(let f) = v { return [.constant(ConstTensor(shape: [f.count], floats: f))] } }
        if let v = c.attribute("value_int") { if case .int(let i) = v { return [.constant(.scalar(i))] } }
        if let v = c.attribute("value_ints") { if case .ints(let i) = v { return [.constant(.vector(i))] } }
        throw .unsupported("Constant without a value, value_float(s) or value_int(s) attribute")
    }

    static func constantOfShape(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        guard let s = try c.constantInput(0, "shape") else { throw .parse("ConstantOfShape without a shape") }
        let shape = s.intValues.map { Int(clamping: $0) }
        let count = try PlanBuilder.elementCount(shape, c.node.label)
        guard count <= PlanBuilder.maxFoldedElements else {
            throw .outOfMemory("ConstantOfShape of \(shape) (over \(PlanBuilder.maxFoldedElements) elements)")
        }
        try c.builder.charge(8 * count, for: "ConstantOfShape of \(shape)")
        var fill = ConstTensor(shape: [1], floats: [0])
        if let v = c.attribute("value"), case .tensor(let t) = v {
            fill = try ConstTensor(t, bytes: c.planner.model.bytes.buffer, label: "value")
            guard fill.count == 1 else { throw .parse("'value' must hold one element") }
        }
        if fill.isFloat { return [.constant(ConstTensor(shape: shape, floats: [Float](repeating: fill.floatValues[0], count: count)))] }
        return [.constant(ConstTensor(shape: shape, ints: [Int64](repeating: fill.intValues[0], count: count), type: fill.elementType))]
    }

    /// Elements of a Range whose span over delta is `steps` (any float: infinite or NaN
    /// bounds are refused before converting to Int, which would trap).
    static func rangeCount(_ steps: Double) throws(MedInferError) -> Int {
        guard !steps.isNaN else { throw .parse("Range bounds give no count") }
        let n = max(0, steps.rounded(.up))
        guard n <= Double(1 << 24) else { throw .outOfMemory("Range of \(n) values (over \(1 << 24))") }
        return Int(n)
    }

    static func range(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        guard let start = try c.constantInput(0, "start"), let limit = try c.constantInput(1, "limit"),
              let delta = try c.constantInput(2, "delta") else { throw .parse("Range needs start, limit and delta") }
        if start.isFloat {
            let s = start.floatValues[0], l = limit.floatValues[0], d = delta.floatValues[0]
            guard d != 0, d.isFinite else { throw .parse("Range delta \(d)") }
            let n = try rangeCount((Double(l) - Double(s)) / Double(d))
            try c.builder.charge(4 * n, for: "Range of \(n) values")
            return [.constant(ConstTensor(shape: [n], floats: (0 ..< n).map { s + Float($0) * d }))]
        }
        let s = start.intValues[0], l = limit.intValues[0], d = delta.intValues[0]
        guard d != 0 else { throw .parse("Range delta 0") }
        let span = Double(l) - Double(s)
        let n = try rangeCount(span / Double(d))
        try c.builder.charge(8 * n, for: "Range of \(n) values")
        // Wrapping arithmetic: start and delta come from the file and may overflow.
        return [.constant(ConstTensor(shape: [n], ints: (0 ..< n).map { s &+ Int64($0) &* d }, type: start.elementType))]
    }

    enum Reduction { case sum, prod, mean, max, min }

    static func reduce(_ c: NodeContext, _ kind: Reduction) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        let keep = try c.int("keepdims", 1) != 0
        var axes = try axesList(c, input: 1) ?? []
        if axes.isEmpty {
            if try c.int("noop_with_empty_axes", 0) != 0 { return [x] }
            axes = Array(0 ..< rank)
        }
        var reduced = Set<Int>()
        for a in axes { reduced.insert(try c.axis(a, rank: rank)) }
        let outShape = x.shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        let finalShape = keep ? outShape : x.shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
        let strides = rowMajorStrides(outShape)
        let sourceStrides = rowMajorStrides(x.shape)
        let total = x.shape.reduce(1, *)
        guard total <= PlanBuilder.maxFoldedElements else { throw .outOfMemory("reduction over \(x.shape) is too large to plan") }
        try c.builder.charge(MemoryLayout<Int>.stride * total, for: "reduction over \(x.shape)")
        // Output slot for every input element.
        var target = [Int](repeating: 0, count: total)
        var position = [Int](repeating: 0, count: rank)
        for i in 0 ..< total {
            var o = 0
            for a in 0 ..< rank where !reduced.contains(a) { o += position[a] * strides[a] }
            target[i] = o
            advance(&position, within: x.shape)
        }
        _ = sourceStrides
        let outCount = outShape.reduce(1, *)
        let groupSize = outCount > 0 ? total / outCount : 0
        switch x {
        case .constant(let k) where !k.isFloat:
            let v = k.intValues
            var acc = [Int64](repeating: kind == .prod ? 1 : (kind == .max ? Int64.min : (kind == .min ? Int64.max : 0)), count: outCount)
            for i in 0 ..< total {
                switch kind {
                case .sum, .mean: acc[target[i]] &+= v[i]
                case .prod: acc[target[i]] &*= v[i]
                case .max: acc[target[i]] = Swift.max(acc[target[i]], v[i])
                case .min: acc[target[i]] = Swift.min(acc[target[i]], v[i])
                }
            }
            if kind == .mean && groupSize > 0 { acc = acc.map { $0 / Int64(groupSize) } }
            return [.constant(ConstTensor(shape: finalShape, ints: acc, type: k.elementType))]
        default:
            let input = try c.builder.tensor(x)
            let out = try c.newTensor(finalShape)
            let step = ReduceStep(source: input.slot, destination: out.slot, target: target.map { Int32(truncatingIfNeeded: $0) },
                                  outCount: outCount, kind: kind, groupSize: groupSize)
            return try c.emit(step, reading: [input], writing: [out])
        }
    }
}

final class ReduceStep: NetworkStep {
    let source: Int, destination: Int, target: [Int32], outCount: Int, kind: Operators.Reduction, groupSize: Int
    init(source: Int, destination: Int, target: [Int32], outCount: Int, kind: Operators.Reduction, groupSize: Int) {
        self.source = source; self.destination = destination; self.target = target
        self.outCount = outCount; self.kind = kind; self.groupSize = groupSize
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        let src = slots[source], dst = slots[destination]
        let initial: Float = kind == .prod ? 1 : (kind == .max ? -.infinity : (kind == .min ? .infinity : 0))
        dst.update(repeating: initial, count: outCount)
        for i in 0 ..< target.count {
            let t = Int(target[i])
            switch kind {
            case .sum, .mean: dst[t] += src[i]
            case .prod: dst[t] *= src[i]
            case .max: dst[t] = Swift.max(dst[t], src[i])
            case .min: dst[t] = Swift.min(dst[t], src[i])
            }
        }
        if kind == .mean && groupSize > 0 {
            let scale = 1 / Float(groupSize)
            for i in 0 ..< outCount { dst[i] *= scale }
        }
    }
}

/// Batches of sequences of different lengths through a sequence model: one run, with each
/// recurrence stopping at each sequence's own length (planning mode `.lengths`), so the
/// output of sequence b is what the model gives for its first lengths[b] steps alone.

/// A static (per-sequence, not per-step) input of a sequence model, one row per sequence.
public struct StaticRows {
    public let input: Int
    public let values: UnsafePointer<Float>
    public let width: Int

    public init(input: Int, values: UnsafePointer<Float>, width: Int) {
        self.input = input; self.values = values; self.width = width
    }
}

extension NetworkModel {
    func requireSequenceInput() throws(MedInferError) -> Int {
        guard let sequence = sequenceInput else {
            throw .unsupported("not a sequence model: it needs exactly one input of shape [batch, time, features] (has \(inputs.map { "'\($0.name)'" }.joined(separator: ", ")))")
        }
        return sequence
    }
}

extension NetworkSession {
    /// Runs `batch` sequences of up to `maxSteps` steps ([batch, maxSteps, features]
    /// row-major; steps past a sequence's length are never read). `lengths` nil means all
    /// `maxSteps`. Writes the first output (its leading dimension is the batch) when
    /// `capacity` holds it; returns its element count either way.
    public func runSequences(values: UnsafePointer<Float>, batch: Int, maxSteps: Int, features: Int,
                             lengths: [Int]?, statics: [StaticRows],
                             output: UnsafeMutablePointer<Float>?, capacity: Int) throws(MedInferError) -> Int {
        let sequence = try model.requireSequenceInput()
        guard batch > 0, maxSteps > 0 else { throw .invalidArgument("a sequence batch needs at least one sequence and one step") }
        var shapes = [[Int]](repeating: [], count: model.inputs.count)
        var pointers = [UnsafePointer<Float>](repeating: values, count: model.inputs.count)
        shapes[sequence] = [batch, maxSteps, features]
        var given = Set<Int>()
        for rows in statics {
            guard rows.input != sequence, rows.input >= 0, rows.input < model.inputs.count, given.insert(rows.input).inserted else {
                throw .invalidArgument("static input #\(rows.input) is not a static input of the model, or is given twice")
            }
            shapes[rows.input] = [batch, rows.width]
            pointers[rows.input] = rows.values
        }
        for index in model.staticInputs where !given.contains(index) {
            throw .invalidArgument("static input '\(model.inputs[index].name)' is missing")
        }
        var uneven = false
        if let lengths {
            guard lengths.count == batch else { throw .invalidArgument("\(lengths.count) lengths for \(batch) sequences") }
            for (b, length) in lengths.enumerated() {
                guard length >= 1, length <= maxSteps else {
                    throw .invalidArgument("length \(length) of sequence \(b) is outside 1...\(maxSteps)")
                }
                if length != maxSteps { uneven = true }
            }
        }
        let plan = try plan(for: shapes, mode: uneven ? .lengths : .plain)
        let count: Int
        switch plan.outputs[0] {
        case .slot(_, let shape): count = shape.reduce(1, *)
        case .constant(let c): count = c.count
        }
        guard let output, capacity >= count else { return count }
        guard uneven, let lengths else {
            _ = try run(plan: plan, inputs: pointers, outputs: [output])
            return count
        }
        // Padded steps repeat the sequence's last step: they are never consumed by a
        // recurrence, and this keeps NaN or garbage padding out of every other operator.
        let stepFloats = features, sequenceFloats = maxSteps * features
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: batch * sequenceFloats)
        defer { padded.deallocate() }
        for b in 0 ..< batch {
            let source = values + b * sequenceFloats, target = padded + b * sequenceFloats
            let valid = lengths[b] * stepFloats
            target.update(from: source, count: valid)
            for t in lengths[b] ..< maxSteps { (target + t * stepFloats).update(from: source + valid - stepFloats, count: stepFloats) }
        }
        pointers[sequence] = UnsafePointer(padded)
        let lengthValues = lengths.map { Float($0) }
        try lengthValues.withUnsafeBufferPointer { (lengthBuffer) throws(MedInferError) in
            _ = try run(plan: plan, inputs: pointers + [lengthBuffer.baseAddress!], outputs: [output])
        }
        return count
    }
}

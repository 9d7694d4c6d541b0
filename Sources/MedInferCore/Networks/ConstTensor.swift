/// A tensor whose values are known while planning: an initializer, a Constant node, or
/// the folded result of shape arithmetic. Floats are kept as Float (weights may point
/// into the mapped model file); every other element type is widened to Int64, which is
/// exact for the integer and boolean tensors exporters use in shape chains.
struct ConstTensor {
    enum Storage {
        case floats([Float])
        /// In place in the model file (aligned raw_data); the model keeps the bytes alive.
        case mapped(UnsafePointer<Float>, Int)
        /// In place in the model file at an offset protobuf did not align to 4 bytes:
        /// read with unaligned loads (`withFloatBytes`), or through a temporary aligned
        /// copy (`withFloats`).
        case unaligned(UnsafeRawPointer, Int)
        case ints([Int64])
    }

    var shape: [Int]
    var elementType: ONNXElementType
    var storage: Storage

    var count: Int { shape.reduce(1, *) }
    var isFloat: Bool { elementType == .float || elementType == .double || elementType == .float16 }

    init(shape: [Int], floats: [Float]) {
        self.shape = shape; elementType = .float; storage = .floats(floats)
    }

    init(shape: [Int], ints: [Int64], type: ONNXElementType = .int64) {
        self.shape = shape; elementType = type; storage = .ints(ints)
    }

    static func scalar(_ v: Int64) -> ConstTensor { ConstTensor(shape: [], ints: [v]) }
    static func vector(_ v: [Int64]) -> ConstTensor { ConstTensor(shape: [v.count], ints: v) }

    /// Values as floats (integers converted).
    var floatValues: [Float] {
        switch storage {
        case .floats(let f): return f
        case .mapped(let p, let n): return Array(UnsafeBufferPointer(start: p, count: n))
        case .unaligned(let p, let n): return (0 ..< n).map { p.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .ints(let i): return i.map { Float($0) }
        }
    }

    /// Values as integers (floats truncated toward zero, as Cast does; NaN/inf -> 0).
    var intValues: [Int64] {
        switch storage {
        case .ints(let i): return i
        default: return floatValues.map { $0.isFinite && abs($0) < 9.2e18 ? Int64($0) : 0 }
        }
    }

    func withFloats<R>(_ body: (UnsafePointer<Float>) throws(MedInferError) -> R) throws(MedInferError) -> R {
        switch storage {
        case .mapped(let p, _): return try body(p)
        case .unaligned(let p, let n):
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            defer { copy.deallocate() }
            UnsafeMutableRawPointer(copy).copyMemory(from: p, byteCount: n * 4)
            return try body(copy)
        case .floats(let f):
            return try f.withUnsafeBufferPointer { (b) throws(MedInferError) -> R in
                try body(b.baseAddress ?? UnsafePointer(bitPattern: 16)!)
            }
        case .ints(let i):
            let f = i.map { Float($0) }
            return try f.withUnsafeBufferPointer { (b) throws(MedInferError) -> R in
                try body(b.baseAddress ?? UnsafePointer(bitPattern: 16)!)
            }
        }
    }

    /// The values as bytes of consecutive Floats, possibly not 4-byte aligned (read them
    /// with unaligned loads): in place for initializers, without the copy `withFloats`
    /// makes of unaligned ones.
    func withFloatBytes<R>(_ body: (UnsafeRawPointer) throws(MedInferError) -> R) throws(MedInferError) -> R {
        if case .unaligned(let p, _) = storage { return try body(p) }
        return try withFloats { (p) throws(MedInferError) in try body(UnsafeRawPointer(p)) }
    }

    /// The same values reinterpreted with another shape (same element count).
    func reshaped(_ newShape: [Int]) -> ConstTensor {
        var copy = self
        copy.shape = newShape
        return copy
    }

    /// Elements picked by flat index: out[i] = self[indices[i]].
    func gathered(_ indices: [Int], shape newShape: [Int]) -> ConstTensor {
        switch storage {
        case .ints(let v):
            return ConstTensor(shape: newShape, ints: indices.map { v[$0] }, type: elementType)
        case .floats(let v):
            return ConstTensor(shape: newShape, floats: indices.map { v[$0] })
        case .mapped(let p, _):
            return ConstTensor(shape: newShape, floats: indices.map { p[$0] })
        case .unaligned(let p, _):
            return ConstTensor(shape: newShape, floats: indices.map { p.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) })
        }
    }

    /// Decodes an ONNX tensor. Float raw_data is used in place, aligned or not (protobuf
    /// gives no alignment): the model keeps `bytes` alive.
    init(_ tensor: ONNXTensor, bytes: UnsafeRawBufferPointer, label: @autoclosure () -> String) throws(MedInferError) {
        guard let type = ONNXElementType(rawValue: tensor.elementTypeCode) else {
            throw .unsupported("\(label()): element type \(tensor.elementTypeCode) is not supported")
        }
        shape = tensor.dims
        let n = tensor.elementCount
        switch type {
        case .float, .double, .float16:
            elementType = .float
        case .int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64, .bool:
            elementType = type
        case .string, .bfloat16:
            throw .unsupported("\(label()): element type \(type) is not supported")
        }
        switch tensor.payload {
        case .none:
            guard n == 0 else { throw .parse("\(label()): tensor of \(n) elements has no data") }
            storage = elementType == .float ? .floats([]) : .ints([])
        case .floats(let f):
            storage = .floats(f)
        case .doubles(let d):
            storage = .floats(d.map { Float($0) })
        case .integers(let i):
            if type == .float16 {
                storage = .floats(i.map { Float(Float16(bitPattern: UInt16(truncatingIfNeeded: $0))) })
            } else {
                storage = elementType == .float ? .floats(i.map { Float($0) }) : .ints(i)
            }
        case .raw(let range):
            let base = bytes.baseAddress! + range.lowerBound
            switch type {
            case .float:
                if Int(bitPattern: base) % 4 == 0 {
                    storage = .mapped(base.assumingMemoryBound(to: Float.self), n)
                } else {
                    storage = .unaligned(UnsafeRawPointer(base), n)
                }
            case .double:
                storage = .floats((0 ..< n).map { Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))) })
            case .float16:
                storage = .floats((0 ..< n).map { Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) })
            case .int64, .uint64:
                storage = .ints((0 ..< n).map { Int64(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) })
            case .int32:
                storage = .ints((0 ..< n).map { Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) })
            case .uint32:
                storage = .ints((0 ..< n).map { Int64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) })
            case .int16:
                storage = .ints((0 ..< n).map { Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) })
            case .uint16:
                storage = .ints((0 ..< n).map { Int64(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) })
            case .int8:
                storage = .ints((0 ..< n).map { Int64(Int8(bitPattern: base.load(fromByteOffset: $0, as: UInt8.self))) })
            case .uint8, .bool:
                storage = .ints((0 ..< n).map { Int64(base.load(fromByteOffset: $0, as: UInt8.self)) })
            case .string, .bfloat16:
                throw .unsupported("\(label()): element type \(type) is not supported")
            }
        }
    }
}

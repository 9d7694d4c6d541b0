/// A bounds-checked reader of the protobuf wire format over bytes it does not own.
/// Every length and offset is checked against the end of the enclosing message before
/// use, so a truncated or hostile file yields an error, never a read past the buffer.
struct ProtobufReader {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    let base: UnsafeRawBufferPointer
    /// Absolute offsets into `base`: the unread part of the current message.
    private(set) var position: Int
    let end: Int
    /// Where this message is in the file.
    let path: ProtobufPath
    /// What is being read, for error messages ("ModelProto.graph.node[3]").
    var context: String { path.description }

    init(_ base: UnsafeRawBufferPointer, range: Range<Int>, context: String) {
        self.init(base, range: range, path: ProtobufPath(parent: nil, name: context, index: nil))
    }

    private init(_ base: UnsafeRawBufferPointer, range: Range<Int>, path: ProtobufPath) {
        self.base = base
        self.position = range.lowerBound
        self.end = range.upperBound
        self.path = path
    }

    var isAtEnd: Bool { position >= end }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws(MedInferError) -> (number: Int, wire: WireType)? {
        guard position < end else { return nil }
        let at = position
        let key = try readVarint()
        let wireBits = UInt8(truncatingIfNeeded: key & 7)
        guard let wire = WireType(rawValue: wireBits) else {
            throw .parse("\(context): invalid wire type \(wireBits) at byte \(at)")
        }
        let number = key >> 3
        guard number >= 1, number <= (1 << 29) - 1 else {
            throw .parse("\(context): invalid field number \(number) at byte \(at)")
        }
        return (Int(number), wire)
    }

    mutating func readVarint() throws(MedInferError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < end else { throw .parse("\(context): truncated varint at byte \(start)") }
            let byte = base[position]
            position += 1
            if shift == 63 && byte > 1 {
                throw .parse("\(context): varint at byte \(start) overflows 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            guard shift <= 63 else { throw .parse("\(context): varint at byte \(start) is longer than 10 bytes") }
        }
    }

    mutating func readInt64() throws(MedInferError) -> Int64 {
        Int64(bitPattern: try readVarint())
    }

    /// An int32 field: protobuf encodes negative int32 values as 10-byte varints.
    mutating func readInt32(_ field: String) throws(MedInferError) -> Int32 {
        let value = Int64(bitPattern: try readVarint())
        guard let narrow = Int32(exactly: value) else {
            throw .parse("\(context).\(field): \(value) does not fit in int32")
        }
        return narrow
    }

    mutating func readFixed32() throws(MedInferError) -> UInt32 {
        guard end - position >= 4 else { throw .parse("\(context): truncated fixed32 at byte \(position)") }
        let value = base.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: value)
    }

    mutating func readFixed64() throws(MedInferError) -> UInt64 {
        guard end - position >= 8 else { throw .parse("\(context): truncated fixed64 at byte \(position)") }
        let value = base.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(littleEndian: value)
    }

    mutating func readFloat() throws(MedInferError) -> Float { Float(bitPattern: try readFixed32()) }

    /// The byte range of a length-delimited field's payload, checked to lie inside the message.
    mutating func readLengthDelimited() throws(MedInferError) -> Range<Int> {
        let at = position
        let length = try readVarint()
        guard length <= UInt64(end - position) else {
            throw .parse("\(context): field at byte \(at) declares \(length) bytes but only \(end - position) remain")
        }
        let range = position ..< position + Int(length)
        position += Int(length)
        return range
    }

    mutating func readString() throws(MedInferError) -> String {
        let range = try readLengthDelimited()
        return String(decoding: UnsafeRawBufferPointer(rebasing: base[range]), as: UTF8.self)
    }

    /// A reader over a nested message's payload: field `name` (entry `index` of a
    /// repeated field) of this message.
    mutating func readMessage(_ name: String, index: Int? = nil) throws(MedInferError) -> ProtobufReader {
        ProtobufReader(base, range: try readLengthDelimited(), path: ProtobufPath(parent: path, name: name, index: index))
    }

    mutating func skip(_ wire: WireType) throws(MedInferError) {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup, .endGroup:
            throw .parse("\(context): protobuf groups are not used by ONNX (byte \(position))")
        }
    }

    /// Repeated int64/int32 values, packed (one length-delimited run) or one per field.
    mutating func appendVarints(_ wire: WireType, to values: inout [Int64], limit: Int, field: String)
        throws(MedInferError)
    {
        if wire == .lengthDelimited {
            var packed = try readMessage(field)
            while !packed.isAtEnd {
                guard values.count < limit else { throw .outOfMemory("\(context).\(field): more than \(limit) values") }
                values.append(try packed.readInt64())
            }
        } else if wire == .varint {
            guard values.count < limit else { throw .outOfMemory("\(context).\(field): more than \(limit) values") }
            values.append(try readInt64())
        } else {
            throw .parse("\(context).\(field): wire type \(wire.rawValue) where integers are expected")
        }
    }

    /// Repeated float values, packed or one per field.
    mutating func appendFloats(_ wire: WireType, to values: inout [Float], limit: Int, field: String)
        throws(MedInferError)
    {
        try appendFixedWidth(wire, single: .fixed32, to: &values, limit: limit, field: field, what: "floats") {
            Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: $1, as: UInt32.self)))
        }
    }

    /// Repeated double values, packed or one per field.
    mutating func appendDoubles(_ wire: WireType, to values: inout [Double], limit: Int, field: String)
        throws(MedInferError)
    {
        try appendFixedWidth(wire, single: .fixed64, to: &values, limit: limit, field: field, what: "doubles") {
            Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: $1, as: UInt64.self)))
        }
    }

    /// Repeated fixed-width values (MemoryLayout<T>.size bytes each): one length-delimited
    /// run of whole values, or one value per field of wire type `single`.
    private mutating func appendFixedWidth<T>(_ wire: WireType, single: WireType, to values: inout [T], limit: Int,
                                              field: String, what: String,
                                              decode: (UnsafeRawBufferPointer, Int) -> T) throws(MedInferError)
    {
        let width = MemoryLayout<T>.size
        let range: Range<Int>
        if wire == .lengthDelimited {
            range = try readLengthDelimited()
            guard range.count % width == 0 else {
                throw .parse("\(context).\(field): packed \(what) of \(range.count) bytes (not a multiple of \(width))")
            }
        } else if wire == single {
            guard end - position >= width else { throw .parse("\(context): truncated \(what) at byte \(position)") }
            range = position ..< position + width
            position += width
        } else {
            throw .parse("\(context).\(field): wire type \(wire.rawValue) where \(what) are expected")
        }
        guard values.count + range.count / width <= limit else {
            throw .outOfMemory("\(context).\(field): more than \(limit) values")
        }
        values.reserveCapacity(values.count + range.count / width)
        var offset = range.lowerBound
        while offset < range.upperBound {
            values.append(decode(base, offset))
            offset += width
        }
    }

    func expect(_ wire: WireType, _ expected: WireType, field: String) throws(MedInferError) {
        guard wire == expected else {
            throw .parse("\(context).\(field): wire type \(wire.rawValue), expected \(expected.rawValue)")
        }
    }
}

/// A message's place in the file ("ModelProto.graph.node[3].attribute[0]"), kept as a
/// chain and spelled out only for an error message: a model's hundreds of nested
/// messages would otherwise each build a string nobody reads (a tenth of its load time).
final class ProtobufPath: CustomStringConvertible {
    let parent: ProtobufPath?
    let name: String
    let index: Int?

    init(parent: ProtobufPath?, name: String, index: Int?) {
        self.parent = parent; self.name = name; self.index = index
    }

    var description: String {
        let own = index.map { "\(name)[\($0)]" } ?? name
        guard let parent else { return own }
        return parent.description + "." + own
    }
}

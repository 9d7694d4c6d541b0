/// The parts of an ONNX ModelProto that inference needs, as decoded from the file.
/// Large tensor payloads are byte ranges into the model's bytes, not copies.

/// ONNX TensorProto.DataType values this library knows by name.
public enum ONNXElementType: Int32, Sendable {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8
    case bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13, bfloat16 = 16

    public var byteWidth: Int? {
        switch self {
        case .float, .int32, .uint32: return 4
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .int64, .double, .uint64: return 8
        case .string: return nil
        }
    }

    static func name(_ raw: Int32) -> String {
        guard let type = ONNXElementType(rawValue: raw) else { return "data type \(raw)" }
        return "\(type)"
    }
}

/// Where a tensor's values are: a range of the model bytes (raw_data), or decoded from
/// one of the typed repeated fields.
enum ONNXPayload {
    case none
    case raw(Range<Int>)
    case floats([Float])
    case integers([Int64])
    case doubles([Double])
}

struct ONNXTensor {
    var name: String = ""
    var elementTypeCode: Int32 = 0
    var dims: [Int] = []
    var payload: ONNXPayload = .none
    var hasExternalData = false

    var elementCount: Int { dims.reduce(1, *) }
}

enum ONNXAttributeValue {
    case float(Float)
    case int(Int64)
    case string(String)
    case tensor(ONNXTensor)
    case graph(ONNXGraph)
    case floats([Float])
    case ints([Int64])
    case strings([String])
    case unsupported(Int32)
}

struct ONNXAttribute {
    var name: String
    var value: ONNXAttributeValue
}

struct ONNXNode {
    var name: String = ""
    var opType: String = ""
    var domain: String = ""
    var inputs: [String] = []
    var outputs: [String] = []
    var attributes: [ONNXAttribute] = []

    /// Position in its graph's node list.
    var index = 0

    /// "Conv node 'conv2d_1'" or "Conv node #3" for messages (spelled out only for one).
    var label: String { name.isEmpty ? "\(opType) node #\(index)" : "\(opType) node '\(name)'" }
}

/// A tensor dimension as declared: a number, a symbolic name, or nothing.
public enum ONNXDimension: Equatable, Sendable {
    case fixed(Int)
    case symbolic(String)
    case unknown
}

struct ONNXValueInfo {
    var name: String = ""
    var elementTypeCode: Int32 = 0
    /// nil when the file declares no shape (rank unknown).
    var dims: [ONNXDimension]?
}

final class ONNXGraph {
    var name = ""
    var nodes: [ONNXNode] = []
    var initializers: [ONNXTensor] = []
    var inputs: [ONNXValueInfo] = []
    var outputs: [ONNXValueInfo] = []
}

struct ONNXModel {
    var irVersion: Int64 = 0
    /// Opset of the default ("" / "ai.onnx") domain.
    var opsetVersion: Int64 = 0
    var otherDomains: [String] = []
    var producer = ""
    var graph = ONNXGraph()
    var metadata: [(key: String, value: String)] = []
}

/// Decodes an ONNX ModelProto (protobuf wire format) into `ONNXModel`. Field numbers
/// follow onnx.proto; unknown fields are skipped, as protobuf readers must. Every
/// count is capped (`ONNXLimits`) so a small file cannot ask for unbounded memory.
enum ONNXLimits {
    static let maxNodes = 1 << 20
    static let maxRank = 8
    static let maxGraphDepth = 8
    static let maxAttributeValues = 1 << 24
    /// Elements one tensor may declare (1 G floats = 4 GiB).
    static let maxTensorElements = 1 << 30
    static let maxNamesPerNode = 1 << 16
}

enum ONNXReader {
    static func read(_ bytes: UnsafeRawBufferPointer) throws(MedInferError) -> ONNXModel {
        var reader = ProtobufReader(bytes, range: 0 ..< bytes.count, context: "ModelProto")
        var model = ONNXModel()
        var sawGraph = false
        var sawDefaultOpset = false
        while let (field, wire) = try reader.nextField() {
            switch field {
            case 1:
                try reader.expect(wire, .varint, field: "ir_version")
                model.irVersion = try reader.readInt64()
            case 2:
                try reader.expect(wire, .lengthDelimited, field: "producer_name")
                model.producer = try reader.readString()
            case 7:
                try reader.expect(wire, .lengthDelimited, field: "graph")
                var graphReader = try reader.readMessage("graph")
                model.graph = try readGraph(&graphReader, depth: 0)
                sawGraph = true
            case 8:
                try reader.expect(wire, .lengthDelimited, field: "opset_import")
                var opset = try reader.readMessage("opset_import")
                var domain = ""
                var version: Int64 = 0
                while let (f, w) = try opset.nextField() {
                    if f == 1 { try opset.expect(w, .lengthDelimited, field: "domain"); domain = try opset.readString() }
                    else if f == 2 { try opset.expect(w, .varint, field: "version"); version = try opset.readInt64() }
                    else { try opset.skip(w) }
                }
                if domain == "" || domain == "ai.onnx" {
                    model.opsetVersion = version
                    sawDefaultOpset = true
                } else {
                    model.otherDomains.append(domain)
                }
            case 14:
                try reader.expect(wire, .lengthDelimited, field: "metadata_props")
                var entry = try reader.readMessage("metadata_props")
                var key = "", value = ""
                while let (f, w) = try entry.nextField() {
                    if f == 1 { try entry.expect(w, .lengthDelimited, field: "key"); key = try entry.readString() }
                    else if f == 2 { try entry.expect(w, .lengthDelimited, field: "value"); value = try entry.readString() }
                    else { try entry.skip(w) }
                }
                guard model.metadata.count < 4096 else { throw .outOfMemory("ModelProto: more than 4096 metadata_props") }
                model.metadata.append((key, value))
            default:
                try reader.skip(wire)
            }
        }
        guard sawGraph else { throw .parse("ModelProto has no graph (field 7): not an ONNX model, or the file is truncated") }
        guard model.irVersion >= 3 else {
            throw .unsupported("ModelProto.ir_version \(model.irVersion): ONNX IR version 3 or newer is needed")
        }
        guard sawDefaultOpset else { throw .parse("ModelProto has no opset_import for the default ONNX domain") }
        return model
    }

    static func readGraph(_ reader: inout ProtobufReader, depth: Int) throws(MedInferError) -> ONNXGraph {
        guard depth <= ONNXLimits.maxGraphDepth else {
            throw .unsupported("\(reader.context): subgraphs nested more than \(ONNXLimits.maxGraphDepth) deep")
        }
        let graph = ONNXGraph()
        while let (field, wire) = try reader.nextField() {
            switch field {
            case 1:
                try reader.expect(wire, .lengthDelimited, field: "node")
                guard graph.nodes.count < ONNXLimits.maxNodes else {
                    throw .outOfMemory("\(reader.context): more than \(ONNXLimits.maxNodes) nodes")
                }
                var nodeReader = try reader.readMessage("node", index: graph.nodes.count)
                graph.nodes.append(try readNode(&nodeReader, index: graph.nodes.count, depth: depth))
            case 2:
                try reader.expect(wire, .lengthDelimited, field: "name")
                graph.name = try reader.readString()
            case 5:
                try reader.expect(wire, .lengthDelimited, field: "initializer")
                guard graph.initializers.count < ONNXLimits.maxNodes else {
                    throw .outOfMemory("\(reader.context): more than \(ONNXLimits.maxNodes) initializers")
                }
                var t = try reader.readMessage("initializer", index: graph.initializers.count)
                graph.initializers.append(try readTensor(&t))
            case 11, 12:
                try reader.expect(wire, .lengthDelimited, field: field == 11 ? "input" : "output")
                var v = try reader.readMessage(field == 11 ? "input" : "output")
                let info = try readValueInfo(&v)
                guard graph.inputs.count + graph.outputs.count < ONNXLimits.maxNodes else {
                    throw .outOfMemory("\(reader.context): too many inputs/outputs")
                }
                if field == 11 { graph.inputs.append(info) } else { graph.outputs.append(info) }
            case 15:
                throw .unsupported("\(reader.context): sparse initializers are not supported")
            default:
                try reader.skip(wire)
            }
        }
        return graph
    }

    static func readNode(_ reader: inout ProtobufReader, index: Int, depth: Int) throws(MedInferError) -> ONNXNode {
        var node = ONNXNode()
        while let (field, wire) = try reader.nextField() {
            switch field {
            case 1, 2:
                try reader.expect(wire, .lengthDelimited, field: field == 1 ? "input" : "output")
                guard node.inputs.count + node.outputs.count < ONNXLimits.maxNamesPerNode else {
                    throw .outOfMemory("\(reader.context): too many inputs/outputs")
                }
                let name = try reader.readString()
                if field == 1 { node.inputs.append(name) } else { node.outputs.append(name) }
            case 3:
                try reader.expect(wire, .lengthDelimited, field: "name")
                node.name = try reader.readString()
            case 4:
                try reader.expect(wire, .lengthDelimited, field: "op_type")
                node.opType = try reader.readString()
            case 5:
                try reader.expect(wire, .lengthDelimited, field: "attribute")
                guard node.attributes.count < 4096 else { throw .outOfMemory("\(reader.context): too many attributes") }
                var a = try reader.readMessage("attribute", index: node.attributes.count)
                node.attributes.append(try readAttribute(&a, depth: depth))
            case 7:
                try reader.expect(wire, .lengthDelimited, field: "domain")
                node.domain = try reader.readString()
            default:
                try reader.skip(wire)
            }
        }
        node.index = index
        return node
    }

    static func readAttribute(_ reader: inout ProtobufReader, depth: Int) throws(MedInferError) -> ONNXAttribute {
        var name = ""
        var type: Int32 = 0
        var f: Float = 0, i: Int64 = 0, s = ""
        var t: ONNXTensor?
        var g: ONNXGraph?
        var floats: [Float] = [], ints: [Int64] = [], strings: [String] = []
        var sawValue = false
        let limit = ONNXLimits.maxAttributeValues
        while let (field, wire) = try reader.nextField() {
            switch field {
            case 1: try reader.expect(wire, .lengthDelimited, field: "name"); name = try reader.readString()
            case 20: try reader.expect(wire, .varint, field: "type"); type = try reader.readInt32("type")
            case 2: try reader.expect(wire, .fixed32, field: "f"); f = try reader.readFloat(); sawValue = true
            case 3: try reader.expect(wire, .varint, field: "i"); i = try reader.readInt64(); sawValue = true
            case 4: try reader.expect(wire, .lengthDelimited, field: "s"); s = try reader.readString(); sawValue = true
            case 5:
                try reader.expect(wire, .lengthDelimited, field: "t")
                var m = try reader.readMessage("t")
                t = try readTensor(&m)
            case 6:
                try reader.expect(wire, .lengthDelimited, field: "g")
                var m = try reader.readMessage("g")
                g = try readGraph(&m, depth: depth + 1)
            case 7: try reader.appendFloats(wire, to: &floats, limit: limit, field: "floats")
            case 8: try reader.appendVarints(wire, to: &ints, limit: limit, field: "ints")
            case 9:
                try reader.expect(wire, .lengthDelimited, field: "strings")
                guard strings.count < 65536 else { throw .outOfMemory("\(reader.context): too many strings") }
                strings.append(try reader.readString())
            case 11:
                // Graph lists (e.g. If branches are single graphs; lists are rare): decoded
                // only to validate nesting depth.
                try reader.expect(wire, .lengthDelimited, field: "graphs")
                var m = try reader.readMessage("graphs")
                _ = try readGraph(&m, depth: depth + 1)
            default: try reader.skip(wire)
            }
        }
        let value: ONNXAttributeValue
        switch type {
        case 1: value = .float(f)
        case 2: value = .int(i)
        case 3: value = .string(s)
        case 4:
            guard let t else { throw .parse("\(reader.context) '\(name)': TENSOR attribute without a tensor") }
            value = .tensor(t)
        case 5:
            guard let g else { throw .parse("\(reader.context) '\(name)': GRAPH attribute without a graph") }
            value = .graph(g)
        case 6: value = .floats(floats)
        case 7: value = .ints(ints)
        case 8: value = .strings(strings)
        case 0:
            // IR < 3 writers may omit the type; infer it from the field that was set.
            if let t { value = .tensor(t) } else if let g { value = .graph(g) }
            else if !floats.isEmpty { value = .floats(floats) } else if !ints.isEmpty { value = .ints(ints) }
            else if !strings.isEmpty { value = .strings(strings) } else if sawValue { value = .int(i) }
            else { throw .parse("\(reader.context) '\(name)': attribute without a type or value") }
        default: value = .unsupported(type)
        }
        return ONNXAttribute(name: name, value: value)
    }

    static func readTensor(_ reader: inout ProtobufReader) throws(MedInferError) -> ONNXTensor {
        var tensor = ONNXTensor()
        var dims: [Int64] = []
        var floats: [Float] = [], integers: [Int64] = [], doubles: [Double] = []
        var raw: Range<Int>?
        let limit = ONNXLimits.maxTensorElements
        while let (field, wire) = try reader.nextField() {
            switch field {
            case 1: try reader.appendVarints(wire, to: &dims, limit: ONNXLimits.maxRank + 1, field: "dims")
            case 2: try reader.expect(wire, .varint, field: "data_type"); tensor.elementTypeCode = try reader.readInt32("data_type")
            case 4: try reader.appendFloats(wire, to: &floats, limit: limit, field: "float_data")
            case 5, 7, 11: try reader.appendVarints(wire, to: &integers, limit: limit, field: "int_data")
            case 8: try reader.expect(wire, .lengthDelimited, field: "name"); tensor.name = try reader.readString()
            case 9: try reader.expect(wire, .lengthDelimited, field: "raw_data"); raw = try reader.readLengthDelimited()
            case 10: try reader.appendDoubles(wire, to: &doubles, limit: limit, field: "double_data")
            case 13: try reader.skip(wire); tensor.hasExternalData = true
            case 14:
                try reader.expect(wire, .varint, field: "data_location")
                if try reader.readVarint() == 1 { tensor.hasExternalData = true }
            case 3: throw .unsupported("\(reader.context): segmented tensors are not supported")
            default: try reader.skip(wire)
            }
        }
        let name = tensor.name, path = reader.path
        var label: String { name.isEmpty ? path.description : "tensor '\(name)'" }   // for errors only
        guard dims.count <= ONNXLimits.maxRank else {
            throw .unsupported("\(label): rank above \(ONNXLimits.maxRank)")
        }
        var count = 1
        for d in dims {
            guard d >= 0 else { throw .parse("\(label): negative dimension \(d)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow, product <= limit else {
                throw .outOfMemory("\(label): dims \(dims) hold more than \(limit) elements")
            }
            count = product
        }
        tensor.dims = dims.map { Int($0) }
        guard !tensor.hasExternalData else {
            throw .unsupported("\(label): external data files are not supported (save the model with all tensors inside)")
        }
        guard let type = ONNXElementType(rawValue: tensor.elementTypeCode), type != .string else {
            throw .unsupported("\(label): element type \(ONNXElementType.name(tensor.elementTypeCode)) is not supported")
        }
        if let raw {
            let width = type.byteWidth ?? 1
            guard raw.count == count * width else {
                throw .parse("\(label): raw_data holds \(raw.count) bytes but dims \(dims) of \(type) need \(count * width)")
            }
            tensor.payload = .raw(raw)
        } else if !floats.isEmpty || type == .float {
            guard floats.count == count else {
                throw .parse("\(label): float_data holds \(floats.count) values but dims \(dims) need \(count)")
            }
            tensor.payload = .floats(floats)
        } else if !doubles.isEmpty || type == .double {
            guard doubles.count == count else {
                throw .parse("\(label): double_data holds \(doubles.count) values but dims \(dims) need \(count)")
            }
            tensor.payload = .doubles(doubles)
        } else {
            guard integers.count == count else {
                throw .parse("\(label): int data holds \(integers.count) values but dims \(dims) need \(count)")
            }
            tensor.payload = .integers(integers)
        }
        return tensor
    }

    static func readValueInfo(_ reader: inout ProtobufReader) throws(MedInferError) -> ONNXValueInfo {
        var info = ONNXValueInfo()
        while let (field, wire) = try reader.nextField() {
            if field == 1 {
                try reader.expect(wire, .lengthDelimited, field: "name")
                info.name = try reader.readString()
            } else if field == 2 {
                try reader.expect(wire, .lengthDelimited, field: "type")
                var type = try reader.readMessage("type")
                while let (f, w) = try type.nextField() {
                    guard f == 1 else { try type.skip(w); continue }  // tensor_type
                    try type.expect(w, .lengthDelimited, field: "tensor_type")
                    var tensorType = try type.readMessage("tensor_type")
                    while let (tf, tw) = try tensorType.nextField() {
                        if tf == 1 {
                            try tensorType.expect(tw, .varint, field: "elem_type")
                            info.elementTypeCode = try tensorType.readInt32("elem_type")
                        } else if tf == 2 {
                            try tensorType.expect(tw, .lengthDelimited, field: "shape")
                            var shape = try tensorType.readMessage("shape")
                            var dims: [ONNXDimension] = []
                            while let (sf, sw) = try shape.nextField() {
                                guard sf == 1 else { try shape.skip(sw); continue }
                                try shape.expect(sw, .lengthDelimited, field: "dim")
                                guard dims.count < ONNXLimits.maxRank else {
                                    throw .unsupported("\(reader.context): rank above \(ONNXLimits.maxRank)")
                                }
                                var dim = try shape.readMessage("dim")
                                var value = ONNXDimension.unknown
                                while let (df, dw) = try dim.nextField() {
                                    if df == 1 {
                                        try dim.expect(dw, .varint, field: "dim_value")
                                        let v = try dim.readInt64()
                                        guard v >= 0, v <= Int64(ONNXLimits.maxTensorElements) else {
                                            throw .parse("\(reader.context): dimension \(v) out of range")
                                        }
                                        value = .fixed(Int(v))
                                    } else if df == 2 {
                                        try dim.expect(dw, .lengthDelimited, field: "dim_param")
                                        value = .symbolic(try dim.readString())
                                    } else { try dim.skip(dw) }
                                }
                                dims.append(value)
                            }
                            info.dims = dims
                        } else { try tensorType.skip(tw) }
                    }
                }
            } else {
                try reader.skip(wire)
            }
        }
        return info
    }
}

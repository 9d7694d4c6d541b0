import CJSONC

/// A parsed JSON document owned by json-c. Values borrowed from it (`JSONValue`) are
/// valid while the document is alive; readers keep the document for the whole read.
final class JSONDocument {
    let root: JSONValue
    private let object: OpaquePointer

    /// Nesting deeper than this is refused by the tokenizer, so hostile input cannot
    /// exhaust the stack of any recursive consumer.
    static let maxDepth: Int32 = 64

    init(bytes: UnsafeRawBufferPointer, fileDescription: String) throws(MedInferError) {
        guard bytes.count > 0, let base = bytes.baseAddress else {
            throw .parse("\(fileDescription): empty input")
        }
        guard bytes.count < Int(Int32.max) else {
            throw .outOfMemory("\(fileDescription): JSON larger than 2 GiB")
        }
        guard let tokener = json_tokener_new_ex(JSONDocument.maxDepth) else {
            throw .outOfMemory("cannot allocate a JSON tokenizer")
        }
        defer { json_tokener_free(tokener) }
        let parsed = json_tokener_parse_ex(
            tokener, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        let error = json_tokener_get_error(tokener)
        guard error == json_tokener_success, let parsed else {
            if let parsed { json_object_put(parsed) }
            let reason: String
            if error == json_tokener_continue {
                reason = "truncated JSON (the document ends before it is complete)"
            } else if let description = json_tokener_error_desc(error) {
                reason = String(cString: description)
            } else {
                reason = "malformed JSON"
            }
            let offset = Int(json_tokener_get_parse_end(tokener))
            throw .parse("\(fileDescription): \(reason) at byte \(offset)")
        }
        // Trailing non-whitespace after the document means a corrupted or concatenated file.
        var end = Int(json_tokener_get_parse_end(tokener))
        while end < bytes.count {
            let c = bytes[end]
            if c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09 && c != 0 {
                json_object_put(parsed)
                throw .parse("\(fileDescription): unexpected data after the JSON document at byte \(end)")
            }
            end += 1
        }
        object = parsed
        root = JSONValue(parsed, path: "")
    }

    deinit { json_object_put(object) }
}

/// A borrowed view of one JSON value with typed, validating accessors. Every accessor
/// throws a parse error naming the JSON path and what was expected.
struct JSONValue {
    let object: OpaquePointer?
    let path: String

    init(_ object: OpaquePointer?, path: String) {
        self.object = object
        self.path = path
    }

    private var kind: json_type { json_object_get_type(object) }
    private var shownPath: String { path.isEmpty ? "the document root" : "'\(path)'" }

    var isNull: Bool { object == nil || kind == json_type_null }
    var isObject: Bool { object != nil && kind == json_type_object }
    var isArray: Bool { object != nil && kind == json_type_array }
    var isString: Bool { object != nil && kind == json_type_string }
    var isNumber: Bool { object != nil && (kind == json_type_double || kind == json_type_int) }

    private func fail(_ expected: String) -> MedInferError {
        let got: String
        switch kind {
        case json_type_null: got = "null"
        case json_type_boolean: got = "a boolean"
        case json_type_double, json_type_int: got = "a number"
        case json_type_object: got = "an object"
        case json_type_array: got = "an array"
        case json_type_string: got = "a string"
        default: got = "an unknown JSON type"
        }
        return .parse("\(shownPath): expected \(expected), got \(got)")
    }

    /// A member that must be present.
    func member(_ key: String) throws(MedInferError) -> JSONValue {
        guard let value = optionalMember(key) else {
            throw .parse("missing field '\(path.isEmpty ? key : path + "." + key)'")
        }
        return value
    }

    /// A member that may be absent (nil); present-but-null is returned as a null value.
    func optionalMember(_ key: String) -> JSONValue? {
        guard isObject else { return nil }
        var child: OpaquePointer?
        guard json_object_object_get_ex(object, key, &child) != 0 else { return nil }
        return JSONValue(child, path: path.isEmpty ? key : path + "." + key)
    }

    func requireObject() throws(MedInferError) {
        guard isObject else { throw fail("an object") }
    }

    var count: Int { isArray ? Int(json_object_array_length(object)) : 0 }

    func arrayCount() throws(MedInferError) -> Int {
        guard isArray else { throw fail("an array") }
        return Int(json_object_array_length(object))
    }

    func element(_ index: Int) -> JSONValue {
        JSONValue(json_object_array_get_idx(object, index), path: "\(path)[\(index)]")
    }

    func string() throws(MedInferError) -> String {
        guard isString, let text = json_object_get_string(object) else { throw fail("a string") }
        return String(cString: text)
    }

    /// A number, also accepted when written as a string (XGBoost stores most scalar
    /// parameters as strings such as "5E-1").
    func double() throws(MedInferError) -> Double {
        if isNumber { return json_object_get_double(object) }
        if isString, let text = json_object_get_string(object),
           let value = parseDouble(String(cString: text)) {
            return value
        }
        throw fail("a number")
    }

    /// An integer within `range`, also accepted as a string or an integral double.
    func integer(in range: ClosedRange<Int>) throws(MedInferError) -> Int {
        let value = try double()
        guard value == value.rounded(.towardZero), value >= Double(range.lowerBound),
              value <= Double(range.upperBound) else {
            throw .parse("\(shownPath): expected an integer in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        return Int(value)
    }

    func bool() throws(MedInferError) -> Bool {
        if object != nil && kind == json_type_boolean { return json_object_get_boolean(object) != 0 }
        return try integer(in: 0...1) == 1
    }

    /// An array of numbers, read in one pass.
    func doubles() throws(MedInferError) -> [Double] {
        let n = try arrayCount()
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let item = json_object_array_get_idx(object, i)
            let t = json_object_get_type(item)
            if t == json_type_double || t == json_type_int {
                out[i] = json_object_get_double(item)
            } else {
                out[i] = try element(i).double()
            }
        }
        return out
    }

    /// An array of integers within `range`.
    func integers(in range: ClosedRange<Int>) throws(MedInferError) -> [Int] {
        let n = try arrayCount()
        var out = [Int](repeating: 0, count: n)
        for i in 0..<n {
            let item = json_object_array_get_idx(object, i)
            if json_object_get_type(item) == json_type_int {
                let v = json_object_get_int64(item)
                guard v >= Int64(range.lowerBound) && v <= Int64(range.upperBound) else {
                    throw .parse("'\(path)[\(i)]': expected an integer in \(range.lowerBound)...\(range.upperBound), got \(v)")
                }
                out[i] = Int(v)
            } else {
                out[i] = try element(i).integer(in: range)
            }
        }
        return out
    }

    func strings() throws(MedInferError) -> [String] {
        let n = try arrayCount()
        var out: [String] = []
        out.reserveCapacity(n)
        for i in 0..<n { out.append(try element(i).string()) }
        return out
    }
}

/// Parses a decimal or special floating-point literal ("1.5", "5E-1", "inf", "-nan")
/// without Foundation. Returns nil for anything else.
func parseDouble<S: StringProtocol>(_ text: S) -> Double? {
    if let value = Double(text) { return value }
    switch text.lowercased() {
    case "inf", "+inf", "infinity", "+infinity": return .infinity
    case "-inf", "-infinity": return -.infinity
    case "nan", "-nan", "+nan": return .nan
    default: return nil
    }
}

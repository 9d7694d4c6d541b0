import Testing
@testable import MedInferCore

/// The wire-format decoder on edge cases a hostile file can hold.
@Suite struct ProtobufReaderTests {
    func reader(_ bytes: [UInt8], _ body: (inout ProtobufReader) throws(MedInferError) -> Void) -> MedInferError? {
        bytes.withUnsafeBytes { raw in
            var r = ProtobufReader(raw, range: 0 ..< raw.count, context: "test")
            do throws(MedInferError) { try body(&r); return nil } catch { return error }
        }
    }

    @Test func varints() {
        var value: UInt64 = 0
        #expect(reader([0x96, 0x01]) { (r) throws(MedInferError) in value = try r.readVarint() } == nil && value == 150)
        // The largest 10-byte varint is 2^64 - 1; an 11th byte or a 10th byte above 1 is refused.
        #expect(reader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) { (r) throws(MedInferError) in value = try r.readVarint() } == nil)
        #expect(value == UInt64.max)
        #expect(reader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]) { (r) throws(MedInferError) in _ = try r.readVarint() } != nil)
        #expect(reader([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]) { (r) throws(MedInferError) in _ = try r.readVarint() } != nil)
        #expect(reader([0x80]) { (r) throws(MedInferError) in _ = try r.readVarint() } != nil)
    }

    @Test func lengthsCannotRunPastTheMessage() {
        #expect(reader([0x0A, 0x05, 1, 2, 3]) { (r) throws(MedInferError) in _ = try r.nextField(); _ = try r.readLengthDelimited() } != nil)
        #expect(reader([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) { (r) throws(MedInferError) in _ = try r.nextField(); _ = try r.readLengthDelimited() } != nil)
        var range = 0 ..< 0
        #expect(reader([0x0A, 0x02, 1, 2]) { (r) throws(MedInferError) in _ = try r.nextField(); range = try r.readLengthDelimited() } == nil)
        #expect(range == 2 ..< 4)
    }

    @Test func invalidKeysAreRefused() {
        #expect(reader([0x07]) { (r) throws(MedInferError) in _ = try r.nextField() } != nil)  // wire type 7
        #expect(reader([0x00]) { (r) throws(MedInferError) in _ = try r.nextField() } != nil)  // field 0
        #expect(reader([0x0B]) { (r) throws(MedInferError) in let f = try r.nextField()!; try r.skip(f.wire) } != nil)  // group
    }

    @Test func packedFloatsMustBeWholeValues() {
        var floats: [Float] = []
        #expect(reader([0x0A, 0x03, 0, 0, 0]) { (r) throws(MedInferError) in
            let f = try r.nextField()!
            try r.appendFloats(f.wire, to: &floats, limit: 100, field: "f")
        } != nil)
        #expect(reader([0x0A, 0x08, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]) { (r) throws(MedInferError) in
            let f = try r.nextField()!
            try r.appendFloats(f.wire, to: &floats, limit: 100, field: "f")
        } == nil && floats == [1, 2])
    }
}

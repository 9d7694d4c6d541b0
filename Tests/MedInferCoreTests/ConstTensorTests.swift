import XCTest
@testable import MedInferCore

/// Networks/ConstTensor.swift: float raw_data is used in place wherever protobuf put it.
/// At an offset that is not a multiple of 4 every accessor must still see the file's
/// values: unaligned loads (`withFloatBytes`, `floatValues`, `gathered`) or a temporary
/// aligned copy (`withFloats`).
final class ConstTensorTests: XCTestCase {
    func testUnalignedRawDataReadsTheFilesValues() throws {
        let values: [Float] = (0 ..< 37).map { Float($0) * 0.25 - 3 }
        for offset in 0 ..< 4 {
            var bytes = [UInt8](repeating: 0xA5, count: offset + values.count * 4 + 3)
            values.withUnsafeBytes { raw in
                for (i, b) in raw.enumerated() { bytes[offset + i] = b }
            }
            let tensor = ONNXTensor(name: "w", elementTypeCode: ONNXElementType.float.rawValue, dims: [37],
                                    payload: .raw(offset ..< offset + values.count * 4))
            try bytes.withUnsafeBytes { (file: UnsafeRawBufferPointer) throws in
                let t = try ConstTensor(tensor, bytes: file, label: "w")
                let inPlace: Bool
                switch t.storage {
                case .mapped, .unaligned: inPlace = true
                default: inPlace = false
                }
                XCTAssertTrue(inPlace, "offset \(offset): raw data is used where it is")
                XCTAssertEqual(t.floatValues, values, "offset \(offset)")
                XCTAssertEqual(try t.withFloats { p in Array(UnsafeBufferPointer(start: p, count: 37)) }, values)
                XCTAssertEqual(try t.withFloatBytes { p in (0 ..< 37).map { p.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } },
                               values)
                XCTAssertEqual(t.gathered([36, 0, 5], shape: [3]).floatValues, [values[36], values[0], values[5]])
            }
        }
    }
}

import XCTest
@testable import MedInferCore

/// Support/MemoryRegion.swift: blocks carved back to back from reserved address space,
/// zeroed, 64-byte aligned and disjoint, on 4 KiB pages while the region is small and on
/// huge pages after; blocks larger than a reservation get one of their own.
final class MemoryRegionTests: XCTestCase {
    private func check(_ blocks: [(UnsafeMutableRawPointer, Int)], file: StaticString = #filePath, line: UInt = #line) {
        for (p, bytes) in blocks {
            XCTAssertEqual(Int(bitPattern: p) % 64, 0, "aligned", file: file, line: line)
            let floats = p.bindMemory(to: Float.self, capacity: bytes / 4)
            // Every float of small blocks; of large ones one per 256 and the last.
            let step = bytes > 1 << 20 ? 256 : 1
            let probes = Array(stride(from: 0, to: bytes / 4, by: step)) + (bytes >= 4 ? [bytes / 4 - 1] : [])
            XCTAssertTrue(probes.allSatisfy { floats[$0] == 0 }, "zeroed", file: file, line: line)
            floats.update(repeating: 1, count: bytes / 4)   // writable to its last byte
        }
        let sorted = blocks.map { (Int(bitPattern: $0.0), $0.1) }.sorted { $0.0 < $1.0 }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            XCTAssertLessThanOrEqual(a.0 + a.1, b.0, "disjoint", file: file, line: line)
        }
    }

    func testSmallBlocksThenLargeOnesAreZeroedAlignedAndDisjoint() throws {
        let region = MemoryRegion()
        var blocks: [(UnsafeMutableRawPointer, Int)] = []
        // Small blocks (4 KiB pages), across the 128 KiB switch, then huge-page ones.
        for bytes in [4, 100, 4096, 60_000, 70_000, 1 << 20, 3 << 20, 64, 5_000_000] {
            blocks.append((try XCTUnwrap(region.allocate(bytes: bytes)), bytes))
        }
        check(blocks)
        // The huge-page part starts on a 2 MiB boundary: blocks after the switch sit apart
        // from the small ones.
        let afterSwitch = Int(bitPattern: blocks[4].0)
        XCTAssertEqual(afterSwitch % (1 << 21), 0)
    }

    func testABlockBeyondAReservationGetsItsOwn() throws {
        let region = MemoryRegion()
        let first = try XCTUnwrap(region.allocate(bytes: 1000))
        let big = try XCTUnwrap(region.allocate(bytes: 70 << 20))
        let after = try XCTUnwrap(region.allocate(bytes: 1000))
        check([(first, 1000), (big, 70 << 20), (after, 1000)])
    }

    func testImpossibleSizesAreRefused() {
        let region = MemoryRegion()
        XCTAssertNil(region.allocate(bytes: -1))
        XCTAssertNil(region.allocate(bytes: Int.max))
        XCTAssertNil(region.allocate(bytes: Int.max - (1 << 20)))
        XCTAssertNotNil(region.allocate(bytes: 0))
    }
}

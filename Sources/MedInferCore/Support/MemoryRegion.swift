/// Zeroed blocks carved one after another from a few populated huge-page chunks
/// (`PrefaultedMemory`) and released together when the region goes. For the many
/// medium-sized buffers a model keeps for its lifetime (transformed weights, padded
/// convolution inputs): allocated one by one, each would fault in 4 KiB at a time, and a
/// fresh 4 KiB page costs about 1.4 µs on this VM against about 50 µs per 2 MiB page,
/// which made page faults the largest part of a fresh process's first classification.
///
/// Thread-safe. Whoever keeps a block must keep the region alive (hold a reference).
final class MemoryRegion: @unchecked Sendable {
    /// Chunk size: one transparent huge page.
    static let chunkBytes = 1 << 21
    private struct State {
        var chunks: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
        var next: UnsafeMutableRawPointer?
        var left = 0
    }
    private let state = Locked(State())

    /// `bytes` of zero-filled memory aligned to 64 bytes, or nil when out of memory.
    func allocate(bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes >= 0, bytes <= Int.max - 2 * Self.chunkBytes else { return nil }
        let size = max(64, (bytes + 63) & ~63)
        return state.withLock { s -> UnsafeMutableRawPointer? in
            if size > Self.chunkBytes / 2 {
                // Large blocks get chunks of their own, so the current chunk's rest stays usable.
                let length = (size + Self.chunkBytes - 1) / Self.chunkBytes * Self.chunkBytes
                guard let p = PrefaultedMemory.allocate(bytes: length) else { return nil }
                s.chunks.append((p, length))
                return p
            }
            if size > s.left {
                guard let p = PrefaultedMemory.allocate(bytes: Self.chunkBytes) else { return nil }
                s.chunks.append((p, Self.chunkBytes))
                s.next = p
                s.left = Self.chunkBytes
            }
            let p = s.next!
            s.next = p + size
            s.left -= size
            return p
        }
    }

    deinit {
        state.withLock { s in
            for chunk in s.chunks { PrefaultedMemory.deallocate(chunk.pointer, bytes: chunk.bytes) }
        }
    }
}

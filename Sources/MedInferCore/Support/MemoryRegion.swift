#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Zeroed blocks carved one after another from one reserved range of address space and
/// released together when the region goes. For the medium-sized buffers a model or a plan
/// keeps for its lifetime (transformed weights, padded convolution inputs, packing space).
///
/// What a fresh process pays for is pages, not bytes: a fresh 4 KiB page costs about
/// 1.4 µs on this VM, a 2 MiB page about 50-100 µs. So the blocks sit back to back and
/// pages are populated as the blocks reach them, in one system call each time: 4 KiB
/// pages while the region is small (a sequence model's few weights), whole 2 MiB pages
/// once it is not. The last page is the only one partly unused.
///
/// Thread-safe. Whoever keeps a block must keep the region alive (hold a reference).
final class MemoryRegion: @unchecked Sendable {
    private static let hugePage = 1 << 21
    private static let smallPage = 1 << 12
    /// Address space reserved at a time (nothing is committed until used; kept modest
    /// for hosts that cap address space, since a model and each of its plans have one).
    private static let reservationBytes = 1 << 26
    /// Up to this many bytes the region uses 4 KiB pages; the first block beyond it
    /// starts at the next 2 MiB boundary, on huge pages.
    private static let smallRegionBytes = 1 << 17

    private struct State {
        var reservations: [(base: UnsafeMutableRawPointer, bytes: Int)] = []
        /// Offset of the next block in the newest reservation.
        var used = 0
        /// Bytes of the newest reservation that are writable and populated.
        var committed = 0
        var hugePages = false
    }
    private let state = Locked(State())

    /// `bytes` of zero-filled memory aligned to 64 bytes, or nil when out of memory.
    func allocate(bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes >= 0, bytes <= Int.max - 4 * Self.hugePage else { return nil }
        let size = max(64, (bytes + 63) & ~63)
        return state.withLock { s -> UnsafeMutableRawPointer? in
            var start = s.used
            if !s.hugePages && start + size > Self.smallRegionBytes {
                start = Self.roundUp(s.committed, to: Self.hugePage)   // onto huge pages
            }
            if s.reservations.isEmpty || start + size > s.reservations[s.reservations.count - 1].bytes {
                // A new range of inaccessible address space (no memory committed); the rest
                // of the old one stays reserved but untouched.
                let length = max(Self.reservationBytes, Self.roundUp(size, to: Self.hugePage))
                guard let base = PrefaultedMemory.mapHugePageAligned(length, protection: PROT_NONE, flags: MAP_NORESERVE)
                else { return nil }
                s.hugePages = !s.reservations.isEmpty || size > Self.smallRegionBytes
                s.reservations.append((base, length))
                s.committed = 0
                start = 0
            } else if start != s.used {
                s.committed = start
                s.hugePages = true
            }
            s.used = start
            let base = s.reservations[s.reservations.count - 1].base
            let end = s.used + size
            if end > s.committed {
                let target = Self.roundUp(end, to: s.hugePages ? Self.hugePage : Self.smallPage)
                guard mprotect(base + s.committed, target - s.committed, PROT_READ | PROT_WRITE) == 0 else { return nil }
                // Populate now (Linux 5.14+); on older kernels pages fault in on use.
                _ = madvise(base + s.committed, target - s.committed, 23 /* MADV_POPULATE_WRITE */)
                s.committed = target
            }
            let block = base + s.used
            s.used = end
            return block
        }
    }

    private static func roundUp(_ n: Int, to unit: Int) -> Int { (n + unit - 1) / unit * unit }

    deinit {
        state.withLock { s in
            for r in s.reservations { munmap(r.base, r.bytes) }
        }
    }
}

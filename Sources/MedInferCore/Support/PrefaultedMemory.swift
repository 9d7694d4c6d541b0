#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Memory of its own for a buffer that belongs to no `MemoryRegion` (a GEMM workspace
/// outside a plan), mapped with its pages populated in one system call on transparent
/// huge pages: a fresh process otherwise takes a page fault per 4 KiB it touches, each
/// microseconds in a virtual machine. Small blocks come from calloc.
enum PrefaultedMemory {
    /// From a quarter huge page on a block is mapped whole (rounded up to 2 MiB pages:
    /// resident memory traded for fewer faults); below it, calloc'ed.
    static let threshold = 1 << 19
    private static let hugePage = 1 << 21

    /// `bytes` of zero-filled memory (huge-page-aligned when mapped, malloc's alignment
    /// below `threshold`), or nil when out of memory.
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes >= threshold else { return calloc(max(bytes, 1), 1) }
        guard bytes <= Int.max - 2 * hugePage else { return nil }   // room to round up and align
        let length = roundedLength(bytes)
        guard let mapped = mapHugePageAligned(length, protection: PROT_READ | PROT_WRITE) else { return nil }
        // Populate now (Linux 5.14+); on older kernels this fails and pages fault in on use.
        _ = madvise(mapped, length, 23 /* MADV_POPULATE_WRITE */)
        return mapped
    }

    /// Releases a block from `allocate(bytes:)` of the same size.
    static func deallocate(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        if bytes >= threshold {
            munmap(pointer, roundedLength(bytes))
        } else {
            free(pointer)
        }
    }

    /// `length` bytes of private anonymous memory at a 2 MiB boundary, marked for huge
    /// pages. Mapped one huge page larger and the unaligned ends unmapped: kernels before
    /// 6.7 do not align anonymous mappings themselves.
    static func mapHugePageAligned(_ length: Int, protection: Int32, flags: Int32 = 0) -> UnsafeMutableRawPointer? {
        guard length <= Int.max - hugePage,
              let raw = mmap(nil, length + hugePage, protection, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0),
              raw != MAP_FAILED else { return nil }
        let head = (hugePage - Int(bitPattern: raw) % hugePage) % hugePage
        if head > 0 { munmap(raw, head) }
        let mapped = raw + head
        munmap(mapped + length, hugePage - head)
        _ = madvise(mapped, length, 14 /* MADV_HUGEPAGE */)
        return mapped
    }

    private static func roundedLength(_ bytes: Int) -> Int { (bytes + hugePage - 1) / hugePage * hugePage }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Large tensor memory (a CNN's arena) mapped with its pages populated in one system call,
/// on transparent huge pages where the kernel offers them. A fresh process's first image
/// otherwise takes a page fault per 4 KiB it touches: ~4,600 for the seed CNN at
/// 600x450, and in a virtual machine each fault costs microseconds. Small blocks come
/// from calloc.
enum PrefaultedMemory {
    /// Below this a block is calloc'ed (populating buys nothing for a few pages).
    static let threshold = 1 << 21
    private static let hugePage = 1 << 21

    /// `bytes` of zero-filled memory (huge-page-aligned when mapped, malloc's alignment
    /// below `mappedFrom` bytes), or nil when out of memory. Mapping rounds up to whole
    /// 2 MiB pages: a lower `mappedFrom` trades resident memory for fewer faults.
    static func allocate(bytes: Int, mappedFrom: Int = threshold) -> UnsafeMutableRawPointer? {
        guard bytes >= mappedFrom else { return calloc(max(bytes, 1), 1) }
        guard bytes <= Int.max - 2 * hugePage else { return nil }   // room to round up and align
        let length = roundedLength(bytes)
        guard let mapped = mapHugePageAligned(length, protection: PROT_READ | PROT_WRITE) else { return nil }
        // Populate now (Linux 5.14+); on older kernels this fails and pages fault in on use.
        _ = madvise(mapped, length, 23 /* MADV_POPULATE_WRITE */)
        return mapped
    }

    /// Releases a block from `allocate(bytes:mappedFrom:)` with the same arguments.
    static func deallocate(_ pointer: UnsafeMutableRawPointer, bytes: Int, mappedFrom: Int = threshold) {
        if bytes >= mappedFrom {
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

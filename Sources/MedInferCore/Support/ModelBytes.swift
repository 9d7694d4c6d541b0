#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A model file's bytes for the lifetime of a model: memory-mapped read-only from a
/// file (weights are then used in place), or a private copy of a caller's buffer.
final class ModelBytes: @unchecked Sendable {
    let base: UnsafeRawPointer
    let count: Int
    private let mapped: Bool

    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    init(copying bytes: UnsafeRawBufferPointer) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        if let source = bytes.baseAddress { p.copyMemory(from: source, byteCount: bytes.count) }
        base = UnsafeRawPointer(p)
        count = bytes.count
        mapped = false
    }

    init(mapping path: String) throws(MedInferError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .io("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io("cannot stat '\(path)': \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io("'\(path)' is not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else { throw .io("'\(path)' is empty") }
        guard size <= Limits.maxModelFileBytes else {
            throw .outOfMemory("'\(path)' is \(size) bytes, above the \(Limits.maxModelFileBytes)-byte limit")
        }
        // Mapped whole at once: the reader walks the file and a first run reads every
        // weight, so populating in one call saves a page fault per 64 KiB (0.06 ms of the
        // seed CNN's 0.8 ms load).
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), p != MAP_FAILED else {
            throw .io("cannot map '\(path)': \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        count = size
        mapped = true
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), count) }
        else { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A per-thread scratch buffer reused across calls, so that scoring a single row does
/// not pay a heap allocation (the scorer's block buffers are larger than what Swift will
/// put on the stack). Freed when the thread exits. A nested use on the same thread gets
/// a fresh allocation instead.
enum ThreadScratch {
    private struct Header {
        var capacity: Int
        var inUse: Bool
    }

    nonisolated(unsafe) private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { buffer in free(buffer) }
        return key
    }()

    private static let headerSize = 64  // keeps the payload cache-line aligned

    static func withBuffer<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) -> R) -> R {
        var header = pthread_getspecific(key)?.assumingMemoryBound(to: Header.self)
        if let current = header, current.pointee.inUse {
            // Re-entered on this thread: do not share the buffer.
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
            defer { buffer.deallocate() }
            return body(buffer)
        }
        if header == nil || header!.pointee.capacity < bytes {
            free(header)
            pthread_setspecific(key, nil)
            var raw: UnsafeMutableRawPointer?
            guard posix_memalign(&raw, 64, headerSize + bytes) == 0, let raw else {
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
                defer { buffer.deallocate() }
                return body(buffer)
            }
            header = raw.bindMemory(to: Header.self, capacity: 1)
            header!.initialize(to: Header(capacity: bytes, inUse: false))
            pthread_setspecific(key, raw)
        }
        header!.pointee.inUse = true
        defer { header!.pointee.inUse = false }
        return body(UnsafeMutableRawPointer(header!) + headerSize)
    }
}

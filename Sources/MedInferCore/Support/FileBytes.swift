#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file with POSIX calls (no Foundation), refusing directories and files
/// beyond `Limits.maxModelFileBytes`.
enum FileBytes {
    static func read(path: String) throws(MedInferError) -> [UInt8] {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
        // forever; for regular files it changes nothing.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw .io("cannot open '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .io("cannot stat '\(path)': \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .io("'\(path)' is not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else { throw .io("'\(path)' is empty") }
        guard size <= Limits.maxModelFileBytes else {
            throw .outOfMemory("'\(path)' is \(size) bytes, above the \(Limits.maxModelFileBytes)-byte limit")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var filled = 0
        let failure: Int32 = bytes.withUnsafeMutableBytes { buffer in
            while filled < size {
                let n = Glibc.read(fd, buffer.baseAddress! + filled, size - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { break }
                filled += n
            }
            return 0
        }
        guard failure == 0 else {
            throw .io("cannot read '\(path)': \(String(cString: strerror(failure)))")
        }
        guard filled == size else { throw .io("'\(path)' shrank while being read") }
        return bytes
    }
}

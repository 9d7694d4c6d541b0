#if !FUZZING
#if canImport(Glibc)
import Glibc
#endif

/// Runs every regular file named, or found one level inside a named directory, through
/// `exercise`, and prints how many. A crash here is a regression.
func replay<S: Sequence<String>>(_ paths: S) {
    var count = 0
    for path in paths {
        var files: [String] = []
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { files.append(path + "/" + name) }
            }
            closedir(directory)
        } else {
            files.append(path)
        }
        for file in files.sorted() {
            guard let handle = fopen(file, "rb") else { continue }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, handle)
                if n <= 0 { break }
                bytes += chunk[0..<n]
            }
            fclose(handle)
            bytes.withUnsafeBytes { exercise($0) }
            count += 1
        }
    }
    print("replayed \(count) inputs through the model readers: no crash")
}
#endif

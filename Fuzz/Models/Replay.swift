#if !FUZZING
#if canImport(Glibc)
import Glibc
#endif
import MedInferCore

/// Every regular file named, or found one level inside a named directory, sorted.
func inputFiles<S: Sequence<String>>(_ paths: S) -> [String] {
    var all: [String] = []
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
        all += files.sorted()
    }
    return all
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func readFile(_ file: String) -> [UInt8]? {
    guard let handle = fopen(file, "rb") else { return nil }
    defer { fclose(handle) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, handle)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes
}

/// Runs every input through `exercise` and prints how many. A crash here is a regression.
func replay<S: Sequence<String>>(_ paths: S) {
    var count = 0
    var slowest = (seconds: 0.0, file: "")
    for file in inputFiles(paths) {
        guard let bytes = readFile(file) else { continue }
        let start = now()
        bytes.withUnsafeBytes { exercise($0) }
        let seconds = now() - start
        if seconds > slowest.seconds { slowest = (seconds, file) }
        count += 1
    }
    print("replayed \(count) inputs through the model readers: no crash; slowest \(Int(slowest.seconds * 1000)) ms (\(slowest.file))")
}

/// Peak memory per input, each in a forked child so that inputs cannot share or hide
/// allocations: loading alone (the readers), then loading, planning and running as
/// `exercise` does. Prints the largest growth beyond the file's own size and exits 1 when
/// loading grew past `capMiB` (the documented cap: Fuzz/README.md).
func measurePeakMemory<S: Sequence<String>>(_ paths: S, capMiB: Int) {
    func childPeakKiB(_ work: () -> Void) -> Int {
        let pid = fork()
        if pid == 0 { work(); _exit(0) }
        var status: Int32 = 0
        var usage = rusage()
        guard pid > 0, wait4(pid, &status, 0, &usage) == pid else { return -1 }
        return usage.ru_maxrss
    }
    let files = inputFiles(paths)
    var worstLoad = (kib: 0, file: ""), worstRun = (kib: 0, file: "")
    var over = 0
    for file in files {
        // The child reads the file itself: the parent stays small and equal for each fork.
        let baseline = childPeakKiB {}
        let load = childPeakKiB {
            guard let bytes = readFile(file) else { return }
            bytes.withUnsafeBytes { raw in
                if let first = raw.first, ModelLoader.looksLikeONNX(firstByte: first) {
                    _ = try? NetworkModel(copying: raw)
                } else {
                    _ = try? ModelLoader.load(bytes: raw, description: "input")
                }
            }
        }
        let run = childPeakKiB { if let bytes = readFile(file) { bytes.withUnsafeBytes { exercise($0) } } }
        var info = stat()
        let size = stat(file, &info) == 0 ? Int(info.st_size) / 1024 : 0
        let loadGrowth = load - baseline - size, runGrowth = run - baseline - size
        if loadGrowth > worstLoad.kib { worstLoad = (loadGrowth, file) }
        if runGrowth > worstRun.kib { worstRun = (runGrowth, file) }
        if loadGrowth > capMiB * 1024 { over += 1; print("over the cap: \(file) grew \(loadGrowth / 1024) MiB while loading") }
    }
    print("peak memory beyond the file's size over \(files.count) inputs (forked child each):")
    print("  loading (readers only):           \(worstLoad.kib / 1024) MiB  (\(worstLoad.file))")
    print("  loading + planning + running:     \(worstRun.kib / 1024) MiB  (\(worstRun.file))")
    print("  cap for loading: \(capMiB) MiB; inputs over it: \(over)")
    if over > 0 { exit(1) }
}
#endif

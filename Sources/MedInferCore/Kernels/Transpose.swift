/// Permutes the axes of a dense tensor: out[i0, i1, ...] = in[i_perm...]. Adjacent axes
/// that stay adjacent are merged first, so NHWC <-> NCHW becomes a 2-D (or 3-D)
/// transpose, done in cache-sized blocks.
enum Transpose {
    static func run(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                    shape fullShape: [Int], permutation fullPermutation: [Int]) {
        // Axes of extent 1 move nothing: drop them and renumber the rest.
        var renumber = [Int](repeating: -1, count: fullShape.count)
        var shape: [Int] = []
        for (axis, extent) in fullShape.enumerated() where extent != 1 {
            renumber[axis] = shape.count
            shape.append(extent)
        }
        let permutation = fullPermutation.compactMap { renumber[$0] >= 0 ? renumber[$0] : nil }
        if shape.isEmpty { output.update(from: input, count: 1); return }
        // Merge axes that are consecutive in both layouts.
        var dims: [Int] = []    // input extents of merged groups (input order)
        var perm: [Int] = []    // output order in terms of merged groups
        var groups: [[Int]] = []
        for axis in permutation {
            if let last = groups.last, last.last! + 1 == axis { groups[groups.count - 1].append(axis) }
            else { groups.append([axis]) }
        }
        let orderByInput = groups.enumerated().sorted { $0.element[0] < $1.element[0] }
        var groupRank = [Int](repeating: 0, count: groups.count)
        for (rank, entry) in orderByInput.enumerated() {
            groupRank[entry.offset] = rank
            dims.append(entry.element.reduce(1) { $0 * shape[$1] })
        }
        perm = groupRank
        let rank = dims.count
        let total = dims.reduce(1, *)
        if rank == 1 { output.update(from: input, count: total); return }
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * dims[i + 1] }
        let outDims = perm.map { dims[$0] }
        let srcStride = perm.map { inStrides[$0] }
        if rank == 2 {
            transpose2D(input, output, rows: dims[0], cols: dims[1])
            return
        }
        // General: walk the output in order; innermost axis as a strided gather.
        let inner = outDims[rank - 1], innerStride = srcStride[rank - 1]
        var index = [Int](repeating: 0, count: rank - 1)
        var offset = 0
        var o = output
        let outerCount = total / Swift.max(inner, 1)
        for _ in 0 ..< outerCount {
            let s = input + offset
            if innerStride == 1 {
                // The last axis stays last ([T, B, F] <-> [B, T, F]): contiguous runs.
                o.update(from: s, count: inner)
            } else {
                for i in 0 ..< inner { o[i] = s[i * innerStride] }
            }
            o += inner
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                offset += srcStride[axis]
                if index[axis] < outDims[axis] { break }
                offset -= srcStride[axis] * outDims[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// out[c][r] = in[r][c], in 32×32 blocks; a few columns (NHWC -> NCHW of an RGB
    /// image) as one strided pass per column.
    static func transpose2D(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        if cols <= 4 {
            for c in 0 ..< cols {
                let dst = output + c * rows
                var src = input + c
                for r in 0 ..< rows {
                    dst[r] = src.pointee
                    src += cols
                }
            }
            return
        }
        let block = 32
        var r0 = 0
        while r0 < rows {
            let r1 = Swift.min(r0 + block, rows)
            var c0 = 0
            while c0 < cols {
                let c1 = Swift.min(c0 + block, cols)
                for r in r0 ..< r1 {
                    let src = input + r * cols
                    for c in c0 ..< c1 { output[c * rows + r] = src[c] }
                }
                c0 = c1
            }
            r0 = r1
        }
    }
}

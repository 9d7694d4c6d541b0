/// C = A·B (+ bias) when B has a few columns: a risk head (one output) or a small
/// classifier over a batch. Each output is a dot product of an A row with a B column, run
/// along the contiguous A row in independent SIMD chains; the blocked GEMM would pack all
/// of A for a product with one useful column per micro-kernel tile.
enum FewColumnsGemm {
    typealias Vector = SIMD8<Float>
    /// Columns up to which this beats the blocked GEMM.
    static let maxColumns = 4

    /// out[i][j] = bias[j] + Σₖ a[i][k]·b[k][j] for i < rows, j < columns (≤ maxColumns);
    /// `a` rows have stride `lda`, `b` rows `ldb`, `out` rows `ldo`.
    static func multiply(rows: Int, columns: Int, depth: Int, a: UnsafePointer<Float>, lda: Int,
                         b: UnsafePointer<Float>, ldb: Int, bias: UnsafePointer<Float>?,
                         out: UnsafeMutablePointer<Float>, ldo: Int) {
        precondition(columns <= maxColumns)
        // B's columns made contiguous once, so every dot product reads two sequential rows.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(columns * depth, 1)) { column in
            for j in 0 ..< columns {
                for k in 0 ..< depth { column[j &* depth &+ k] = b[k &* ldb &+ j] }
            }
            let vectorDepth = depth & ~15
            for i in 0 ..< rows {
                let row = UnsafeRawPointer(a + i &* lda)
                for j in 0 ..< columns {
                    let weights = UnsafeRawPointer(column.baseAddress! + j &* depth)
                    var even = Vector(), odd = Vector()
                    var k = 0
                    while k < vectorDepth {
                        even = even.addingProduct(row.loadUnaligned(fromByteOffset: k &* 4, as: Vector.self),
                                                  weights.loadUnaligned(fromByteOffset: k &* 4, as: Vector.self))
                        odd = odd.addingProduct(row.loadUnaligned(fromByteOffset: k &* 4 &+ 32, as: Vector.self),
                                                weights.loadUnaligned(fromByteOffset: k &* 4 &+ 32, as: Vector.self))
                        k &+= 16
                    }
                    var sum = (even + odd).sum()
                    while k < depth {
                        sum += a[i &* lda &+ k] * column[j &* depth &+ k]
                        k &+= 1
                    }
                    out[i &* ldo &+ j] = sum + (bias?[j] ?? 0)
                }
            }
        }
    }
}

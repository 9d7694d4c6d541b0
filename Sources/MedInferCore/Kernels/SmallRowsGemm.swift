/// C = A·B (+ bias) for a few rows of A: a recurrent step's h·Rᵀ for one sequence, a
/// stream's single-step projection, a dense layer on one row. The blocked GEMM's packing
/// costs more than the arithmetic at these sizes; here each row streams through B once,
/// 64 columns at a time in eight independent FMA chains. B can come pre-arranged in
/// 64-column panels (`panels`), which turns those reads into one sequential sweep. (A
/// 16-wide AVX-512 variant with the depth split over eight chains measured 12% slower:
/// the step is bound by streaming B from L2, not by FMA throughput.)
enum SmallRowsGemm {
    typealias Vector = SIMD8<Float>
    static let panelWidth = 64

    /// B [depth][width] (row-major) rearranged as ⌊width/64⌋ panels of [depth][64].
    static func panels(_ b: UnsafePointer<Float>, depth: Int, width: Int) -> UnsafeMutablePointer<Float> {
        let count = width / panelWidth
        // Cache-line aligned: every 64-byte row of a panel is one line, never two.
        let panels = UnsafeMutableRawPointer.allocate(byteCount: max(count * depth * panelWidth, 1) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(count * depth * panelWidth, 1))
        for p in 0 ..< count {
            for k in 0 ..< depth {
                (panels + (p * depth + k) * panelWidth).update(from: b + k * width + p * panelWidth, count: panelWidth)
            }
        }
        return panels
    }

    /// out[i][c − columns.lowerBound] = bias[c] + Σₖ a[i][k]·b[k][c] for c in `columns`,
    /// rows i < `rows`. `a` rows have stride `lda`, `b` rows `ldb`, `out` rows `ldo`;
    /// `panels` (from `panels(b, …)`) is used when `columns` starts on a panel.
    static func multiply(rows: Int, a: UnsafePointer<Float>, lda: Int, depth: Int, b: UnsafePointer<Float>, ldb: Int,
                         panels: UnsafePointer<Float>?, columns: Range<Int>, bias: UnsafePointer<Float>?,
                         out: UnsafeMutablePointer<Float>, ldo: Int) {
        let usePanels = panels != nil && columns.lowerBound % panelWidth == 0
        for i in 0 ..< rows {
            let row = a + i &* lda
            let outRow = out + i &* ldo
            var c = columns.lowerBound
            var o = 0
            while c &+ 64 <= columns.upperBound {
                let source: UnsafeRawPointer
                let stride: Int
                if usePanels {
                    source = UnsafeRawPointer(panels! + (c / panelWidth) &* depth &* panelWidth)
                    stride = panelWidth &* 4
                } else {
                    source = UnsafeRawPointer(b + c)
                    stride = ldb &* 4
                }
                var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
                var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
                if let bias {
                    let raw = UnsafeRawPointer(bias + c)
                    a0 = raw.loadUnaligned(fromByteOffset: 0, as: Vector.self); a1 = raw.loadUnaligned(fromByteOffset: 32, as: Vector.self)
                    a2 = raw.loadUnaligned(fromByteOffset: 64, as: Vector.self); a3 = raw.loadUnaligned(fromByteOffset: 96, as: Vector.self)
                    a4 = raw.loadUnaligned(fromByteOffset: 128, as: Vector.self); a5 = raw.loadUnaligned(fromByteOffset: 160, as: Vector.self)
                    a6 = raw.loadUnaligned(fromByteOffset: 192, as: Vector.self); a7 = raw.loadUnaligned(fromByteOffset: 224, as: Vector.self)
                }
                var p = source
                for k in 0 ..< depth {
                    let x = Vector(repeating: row[k])
                    a0 = a0.addingProduct(x, p.loadUnaligned(fromByteOffset: 0, as: Vector.self))
                    a1 = a1.addingProduct(x, p.loadUnaligned(fromByteOffset: 32, as: Vector.self))
                    a2 = a2.addingProduct(x, p.loadUnaligned(fromByteOffset: 64, as: Vector.self))
                    a3 = a3.addingProduct(x, p.loadUnaligned(fromByteOffset: 96, as: Vector.self))
                    a4 = a4.addingProduct(x, p.loadUnaligned(fromByteOffset: 128, as: Vector.self))
                    a5 = a5.addingProduct(x, p.loadUnaligned(fromByteOffset: 160, as: Vector.self))
                    a6 = a6.addingProduct(x, p.loadUnaligned(fromByteOffset: 192, as: Vector.self))
                    a7 = a7.addingProduct(x, p.loadUnaligned(fromByteOffset: 224, as: Vector.self))
                    p += stride
                }
                let raw = UnsafeMutableRawPointer(outRow + o)
                raw.storeBytes(of: a0, toByteOffset: 0, as: Vector.self); raw.storeBytes(of: a1, toByteOffset: 32, as: Vector.self)
                raw.storeBytes(of: a2, toByteOffset: 64, as: Vector.self); raw.storeBytes(of: a3, toByteOffset: 96, as: Vector.self)
                raw.storeBytes(of: a4, toByteOffset: 128, as: Vector.self); raw.storeBytes(of: a5, toByteOffset: 160, as: Vector.self)
                raw.storeBytes(of: a6, toByteOffset: 192, as: Vector.self); raw.storeBytes(of: a7, toByteOffset: 224, as: Vector.self)
                c &+= 64; o &+= 64
            }
            while c &+ 8 <= columns.upperBound {
                var acc = bias.map { UnsafeRawPointer($0 + c).loadUnaligned(as: Vector.self) } ?? Vector()
                let source = UnsafeRawPointer(b + c)
                for k in 0 ..< depth {
                    acc = acc.addingProduct(Vector(repeating: row[k]), source.loadUnaligned(fromByteOffset: k &* ldb &* 4, as: Vector.self))
                }
                UnsafeMutableRawPointer(outRow + o).storeBytes(of: acc, as: Vector.self)
                c &+= 8; o &+= 8
            }
            while c < columns.upperBound {
                var acc = bias?[c] ?? 0
                for k in 0 ..< depth { acc += row[k] * b[k &* ldb &+ c] }
                outRow[o] = acc
                c &+= 1; o &+= 1
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MedInferKernelsAVX512

/// Single-precision matrix product C[M×N] = A[M×K]·B[K×N], row-major, with a fused
/// epilogue (bias per row or column, activation). Structured as in BLIS: B is packed
/// into KC×NR panels that stay in L1, A into MR×KC panels streamed from L2, and a
/// register-blocked micro-kernel computes one MR×NR tile with FMA. Operands are packed
/// through `GemmPackA`/`GemmPackB`, so a convolution can pack its image patches
/// straight into B panels (implicit im2col) instead of materializing the patch matrix.
enum Gemm {
    /// Rows and columns of one micro-tile: 6 rows × 16 columns = 12 ymm accumulators.
    static let mr = 6
    static let nr = 16
    /// Depth of one packed block: two 16-column B panels of 384 rows are 48 KiB (L1).
    /// KC, MC and NC were tuned with Benchmarks/gemm_bench.py on this machine.
    static let kc = 384
    /// Columns of B packed at once (KC×NC floats = 768 KiB).
    static let nc = 512
    /// Rows of A per block: 480 × KC floats = 720 KiB, resident in L2 while the B
    /// panels stream past.
    static let mc = 480

    struct Epilogue {
        var alpha: Float = 1
        var rowBias: UnsafePointer<Float>? = nil
        var columnBias: UnsafePointer<Float>? = nil
        var activation: Activation = .identity
    }

    /// C = A·B with the epilogue applied. `c` has row stride `ldc`.
    static func multiply<A: GemmPackA, B: GemmPackB>(
        m: Int, n: Int, k: Int, a: A, b: B,
        c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue, workspace: GemmWorkspace? = nil
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0 ..< m { (c + i * ldc).initialize(repeating: 0, count: n) }
            finish(c: c, ldc: ldc, rows: 0 ..< m, columns: 0 ..< n, epilogue: epilogue)
            return
        }
        let kBlock = min(kc, k)
        let nBlock = min(nc, roundUp(n, nr))
        // A workspace made here must outlive every use of its buffer, not just the call
        // that reserves it (its deinit frees the buffer).
        let workspace = workspace ?? GemmWorkspace()
        defer { withExtendedLifetime(workspace) {} }
        let space = workspace.reserve(kBlock * nBlock + roundUp(m, mr) * kBlock + mr * nr)
        let packedB = space
        let packedA = space + kBlock * nBlock
        let scratch = packedA + roundUp(m, mr) * kBlock

        var n0 = 0
        while n0 < n {
            let nWidth = min(nBlock, n - n0)
            var k0 = 0
            while k0 < k {
                let depth = min(kBlock, k - k0)
                let first = k0 == 0
                let last = k0 + depth == k
                let bPanels: UnsafePointer<Float>
                if let ready = b.packedPanels(k0: k0, depth: depth, n0: n0) {
                    bPanels = ready
                } else {
                    b.pack(into: packedB, k0: k0, depth: depth, n0: n0, width: nWidth)
                    bPanels = UnsafePointer(packedB)
                }
                let (aPanels, aPanelStride) = a.panels(scratch: packedA, rows: m, k0: k0, depth: depth)
                let wide = KernelDispatch.wideGemm
                // Row blocks of MC: their A panels (MC × KC) stay in L2 while every B
                // panel of the block streams past them.
                var i0 = 0
                while i0 < m {
                    let iEnd = min(m, i0 + mc)
                    var j = 0
                    while j < nWidth {
                        // Two full 16-column panels at once on AVX-512 (a 6×32 zmm tile).
                        let pair = wide && nWidth - j >= 2 * nr
                        let cols = min(nr, nWidth - j)
                        let bPanel = bPanels + j * depth
                        var i = i0
                        while i < iEnd {
                            let rows = min(mr, m - i)
                            let aPanel = aPanels + (i / mr) * aPanelStride
                            let cTile = c + i * ldc + n0 + j
                            if pair && rows == mr {
                                gemmMicroKernel6x32(depth: depth, a: aPanel, b0: bPanel, b1: bPanel + nr * depth,
                                                    c: cTile, ldc: ldc, accumulate: !first)
                            } else {
                                for half in 0 ..< (pair ? 2 : 1) {
                                    tile(depth: depth, a: aPanel, b: bPanel + half * nr * depth, c: cTile + half * nr,
                                         ldc: ldc, rows: rows, cols: pair ? nr : cols, first: first, scratch: scratch)
                                }
                            }
                            if last {
                                finish(c: c, ldc: ldc, rows: i ..< i + rows,
                                       columns: n0 + j ..< n0 + j + (pair ? 2 * nr : cols), epilogue: epilogue)
                            }
                            i += mr
                        }
                        j += pair ? 2 * nr : nr
                    }
                    i0 = iEnd
                }
                k0 += depth
            }
            n0 += nWidth
        }
    }

    /// One 6×16 tile, through scratch when it is cut by the matrix edge.
    @inline(__always)
    static func tile(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c cTile: UnsafeMutablePointer<Float>,
                     ldc: Int, rows: Int, cols: Int, first: Bool, scratch: UnsafeMutablePointer<Float>) {
        if rows == mr && cols == nr {
            microKernel(depth: depth, a: a, b: b, c: cTile, ldc: ldc, accumulate: !first)
            return
        }
        if !first {
            for r in 0 ..< rows { for q in 0 ..< cols { scratch[r * nr + q] = cTile[r * ldc + q] } }
        }
        microKernel(depth: depth, a: a, b: b, c: scratch, ldc: nr, accumulate: !first)
        for r in 0 ..< rows { for q in 0 ..< cols { cTile[r * ldc + q] = scratch[r * nr + q] } }
    }

    @inline(__always)
    static func roundUp(_ x: Int, _ to: Int) -> Int { (x + to - 1) / to * to }

    /// Bias and activation over one finished tile (still in L1).
    @inline(__always)
    static func finish(c: UnsafeMutablePointer<Float>, ldc: Int, rows: Range<Int>, columns: Range<Int>,
                       epilogue: Epilogue) {
        if epilogue.alpha != 1 {
            for r in rows {
                let row = c + r * ldc
                for q in columns { row[q] *= epilogue.alpha }
            }
        }
        if let bias = epilogue.rowBias {
            for r in rows {
                let value = bias[r]
                let row = c + r * ldc
                for q in columns { row[q] += value }
            }
        }
        if let bias = epilogue.columnBias {
            for r in rows {
                let row = c + r * ldc
                for q in columns { row[q] += bias[q] }
            }
        }
        if epilogue.activation != .identity {
            for r in rows { epilogue.activation.apply(c + r * ldc + columns.lowerBound, count: columns.count) }
        }
    }

    /// One 6×16 tile over `depth` packed steps: a[p*6 + i], b[p*16 + j].
    @inline(__always)
    static func microKernel(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                            c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        typealias V = SIMD8<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        let cr = UnsafeMutableRawPointer(c)
        let rowBytes = ldc * 4
        if accumulate {
            c00 = cr.loadUnaligned(fromByteOffset: 0, as: V.self); c01 = cr.loadUnaligned(fromByteOffset: 32, as: V.self)
            c10 = cr.loadUnaligned(fromByteOffset: rowBytes, as: V.self); c11 = cr.loadUnaligned(fromByteOffset: rowBytes + 32, as: V.self)
            c20 = cr.loadUnaligned(fromByteOffset: 2 * rowBytes, as: V.self); c21 = cr.loadUnaligned(fromByteOffset: 2 * rowBytes + 32, as: V.self)
            c30 = cr.loadUnaligned(fromByteOffset: 3 * rowBytes, as: V.self); c31 = cr.loadUnaligned(fromByteOffset: 3 * rowBytes + 32, as: V.self)
            c40 = cr.loadUnaligned(fromByteOffset: 4 * rowBytes, as: V.self); c41 = cr.loadUnaligned(fromByteOffset: 4 * rowBytes + 32, as: V.self)
            c50 = cr.loadUnaligned(fromByteOffset: 5 * rowBytes, as: V.self); c51 = cr.loadUnaligned(fromByteOffset: 5 * rowBytes + 32, as: V.self)
        }
        let ar = UnsafeRawPointer(a)
        let br = UnsafeRawPointer(b)
        var p = 0
        while p < depth {
            let b0 = br.loadUnaligned(fromByteOffset: p * 64, as: V.self)
            let b1 = br.loadUnaligned(fromByteOffset: p * 64 + 32, as: V.self)
            let ap = ar + p * 24
            var x = V(repeating: ap.load(fromByteOffset: 0, as: Float.self))
            c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = V(repeating: ap.load(fromByteOffset: 4, as: Float.self))
            c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = V(repeating: ap.load(fromByteOffset: 8, as: Float.self))
            c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = V(repeating: ap.load(fromByteOffset: 12, as: Float.self))
            c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = V(repeating: ap.load(fromByteOffset: 16, as: Float.self))
            c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = V(repeating: ap.load(fromByteOffset: 20, as: Float.self))
            c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
            p += 1
        }
        cr.storeBytes(of: c00, toByteOffset: 0, as: V.self); cr.storeBytes(of: c01, toByteOffset: 32, as: V.self)
        cr.storeBytes(of: c10, toByteOffset: rowBytes, as: V.self); cr.storeBytes(of: c11, toByteOffset: rowBytes + 32, as: V.self)
        cr.storeBytes(of: c20, toByteOffset: 2 * rowBytes, as: V.self); cr.storeBytes(of: c21, toByteOffset: 2 * rowBytes + 32, as: V.self)
        cr.storeBytes(of: c30, toByteOffset: 3 * rowBytes, as: V.self); cr.storeBytes(of: c31, toByteOffset: 3 * rowBytes + 32, as: V.self)
        cr.storeBytes(of: c40, toByteOffset: 4 * rowBytes, as: V.self); cr.storeBytes(of: c41, toByteOffset: 4 * rowBytes + 32, as: V.self)
        cr.storeBytes(of: c50, toByteOffset: 5 * rowBytes, as: V.self); cr.storeBytes(of: c51, toByteOffset: 5 * rowBytes + 32, as: V.self)
    }
}

/// Operand A as MR-row panels for depth k0..<k0+depth: each panel holds `depth` steps of
/// MR floats (rows past the end zero), panels `panelStride` floats apart. Runtime
/// operands pack into `scratch`; prepacked weights return a pointer into themselves.
protocol GemmPackA {
    func panels(scratch: UnsafeMutablePointer<Float>, rows: Int, k0: Int, depth: Int)
        -> (UnsafePointer<Float>, panelStride: Int)
}

/// Scratch memory steps reuse instead of allocating on every call: GEMM packing (a layer
/// calls the GEMM per row block), Winograd's transforms and zero-bordered inputs. Its
/// contents last only until the next user reserves it.
final class GemmWorkspace {
    private var buffer: UnsafeMutablePointer<Float>?
    private var capacity = 0
    /// Where the buffer comes from when given (a plan's region, beside its kernels'
    /// buffers); a buffer outgrown there stays until the region goes.
    private let memory: MemoryRegion?

    /// The most any user has said it will reserve (see `expect`).
    private var expected = 0

    init(memory: MemoryRegion? = nil) { self.memory = memory }

    /// Notes, while planning, a size a step will reserve when it runs: the first reserve
    /// then allocates for the largest at once instead of growing layer by layer.
    func expect(_ count: Int) { expected = max(expected, count) }

    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            release()
            let size = max(count, expected)
            let allocated = memory.map { $0.allocate(bytes: size * 4) }
                ?? PrefaultedMemory.allocate(bytes: size * 4)
            guard let allocated else { fatalError("out of memory for \(size * 4) bytes of GEMM workspace") }
            buffer = allocated.bindMemory(to: Float.self, capacity: size)
            capacity = size
        }
        return buffer!
    }

    private func release() {
        if let buffer, memory == nil { PrefaultedMemory.deallocate(buffer, bytes: capacity * 4) }
        buffer = nil
        capacity = 0
    }

    deinit { release() }
}

/// Packs depth k0..<k0+depth, columns n0..<n0+width of B into NR-column panels:
/// panel j holds depth steps of NR floats, columns past the end zero-filled.
protocol GemmPackB {
    func pack(into buffer: UnsafeMutablePointer<Float>, k0: Int, depth: Int, n0: Int, width: Int)
    /// The block's panels when they already exist in packed form (`PrepackedB`), so the
    /// product reads them in place; nil to pack.
    func packedPanels(k0: Int, depth: Int, n0: Int) -> UnsafePointer<Float>?
}

extension GemmPackB {
    func packedPanels(k0: Int, depth: Int, n0: Int) -> UnsafePointer<Float>? { nil }
}

/// A plain strided matrix as operand A: element (i, p) at base[i*rowStride + p*colStride].
struct StridedMatrixA: GemmPackA {
    let base: UnsafePointer<Float>
    let rowStride: Int
    let colStride: Int

    func panels(scratch: UnsafeMutablePointer<Float>, rows: Int, k0: Int, depth: Int)
        -> (UnsafePointer<Float>, panelStride: Int)
    {
        let mr = Gemm.mr
        var out = scratch
        var i = 0
        while i < rows {
            let valid = min(mr, rows - i)
            for p in 0 ..< depth {
                let src = base + i * rowStride + (k0 + p) * colStride
                for r in 0 ..< valid { out[r] = src[r * rowStride] }
                for r in valid ..< mr { out[r] = 0 }
                out += mr
            }
            i += mr
        }
        return (UnsafePointer(scratch), depth * mr)
    }
}

/// A plain strided matrix as operand B: element (p, j) at base[p*rowStride + j*colStride].
struct StridedMatrixB: GemmPackB {
    let base: UnsafePointer<Float>
    let rowStride: Int
    let colStride: Int

    func pack(into buffer: UnsafeMutablePointer<Float>, k0: Int, depth: Int, n0: Int, width: Int) {
        let nr = Gemm.nr
        var out = buffer
        var j = 0
        while j < width {
            let valid = min(nr, width - j)
            if colStride == 1 && valid == nr {
                for p in 0 ..< depth {
                    let src = UnsafeRawPointer(base + (k0 + p) * rowStride + n0 + j)
                    let raw = UnsafeMutableRawPointer(out)
                    raw.storeBytes(of: src.loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
                    out += nr
                }
            } else {
                for p in 0 ..< depth {
                    let src = base + (k0 + p) * rowStride + (n0 + j) * colStride
                    for q in 0 ..< valid { out[q] = src[q * colStride] }
                    for q in valid ..< nr { out[q] = 0 }
                    out += nr
                }
            }
            j += nr
        }
    }
}

/// An operand A packed once (a layer's weights at plan time), used in place.
final class PrepackedA: GemmPackA, @unchecked Sendable {
    let rows: Int
    let depth: Int
    /// Panels of MR rows, each `depth` steps of MR floats.
    private let storage: UnsafeMutablePointer<Float>

    init(rows: Int, depth: Int, element: (Int, Int) -> Float) {
        self.rows = rows
        self.depth = depth
        owner = nil
        let mr = Gemm.mr
        let panels = (rows + mr - 1) / mr
        storage = calloc(max(1, panels * mr * depth), MemoryLayout<Float>.stride)!.assumingMemoryBound(to: Float.self)
        for panel in 0 ..< panels {
            for p in 0 ..< depth {
                for r in 0 ..< mr where panel * mr + r < rows {
                    storage[(panel * depth + p) * mr + r] = element(panel * mr + r, p)
                }
            }
        }
    }

    /// Packs a row-major rows × depth matrix.
    convenience init(rows: Int, depth: Int, rowMajor source: UnsafePointer<Float>) {
        self.init(rows: rows, depth: depth, rowStride: depth, columnStride: 1, source: source)
    }

    /// Packs the matrix whose element (r, p) is source[r * rowStride + p * columnStride].
    init(rows: Int, depth: Int, rowStride: Int, columnStride: Int, source: UnsafePointer<Float>) {
        self.rows = rows
        self.depth = depth
        owner = nil
        let mr = Gemm.mr
        let panels = (rows + mr - 1) / mr
        let count = max(1, panels * mr * depth)
        // Zeroed by calloc: only the padding rows rely on it, every other entry is written.
        storage = calloc(count, MemoryLayout<Float>.stride)!.assumingMemoryBound(to: Float.self)
        for panel in 0 ..< panels {
            for r in 0 ..< mr where panel * mr + r < rows {
                var src = source + (panel * mr + r) * rowStride
                var dst = storage + panel * depth * mr + r
                for _ in 0 ..< depth {
                    dst.pointee = src.pointee
                    dst += mr
                    src += columnStride
                }
            }
        }
    }

    /// Panels already laid out by their maker in a block `owner` keeps alive (a Winograd
    /// layer writes its 36 operands into one block as it transforms them).
    init(rows: Int, depth: Int, packedAt storage: UnsafeMutablePointer<Float>, owner: AnyObject) {
        self.rows = rows
        self.depth = depth
        self.storage = storage
        self.owner = owner
    }

    /// Set when the panels live in another object's block; nil when this object owns them.
    private let owner: AnyObject?

    deinit { if owner == nil { free(storage) } }

    func panels(scratch: UnsafeMutablePointer<Float>, rows: Int, k0: Int, depth: Int)
        -> (UnsafePointer<Float>, panelStride: Int)
    {
        (UnsafePointer(storage + k0 * Gemm.mr), self.depth * Gemm.mr)
    }
}

/// A constant B operand packed once (a recurrent layer's Rᵀ, multiplied every time step):
/// the whole depth in one block of NR-column panels, used in place when the product's
/// depth fits one block, packed from the source otherwise.
final class PrepackedB: GemmPackB, @unchecked Sendable {
    let depth: Int
    let width: Int
    private let source: StridedMatrixB
    private let storage: UnsafeMutablePointer<Float>

    /// `source` [depth][width] row-major with row stride `ldb`; it must outlive this object.
    init(depth: Int, width: Int, source: UnsafePointer<Float>, ldb: Int) {
        self.depth = depth
        self.width = width
        self.source = StridedMatrixB(base: source, rowStride: ldb, colStride: 1)
        let padded = Gemm.roundUp(max(width, 1), Gemm.nr)
        storage = .allocate(capacity: padded * max(depth, 1))
        self.source.pack(into: storage, k0: 0, depth: depth, n0: 0, width: width)
    }

    deinit { storage.deallocate() }

    func pack(into buffer: UnsafeMutablePointer<Float>, k0: Int, depth: Int, n0: Int, width: Int) {
        source.pack(into: buffer, k0: k0, depth: depth, n0: n0, width: width)
    }

    func packedPanels(k0: Int, depth: Int, n0: Int) -> UnsafePointer<Float>? {
        guard k0 == 0, depth == self.depth, n0 % Gemm.nr == 0 else { return nil }
        return UnsafePointer(storage + n0 * depth)
    }
}

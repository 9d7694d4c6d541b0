#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MedInferKernelsAVX512

/// Where the elements of a Winograd layer's zero-bordered input are, for a layer before
/// it that writes its output there directly (no tensor in the arena, no copy): channel
/// planes of `planeFloats`, rows of `rowFloats` split by column mod 4 into phases.
/// Integers only, so kernels copy it into their loops freely.
struct PaddedInputLayout {
    /// Floats the buffer holds.
    let count: Int
    let planeFloats: Int, rowFloats: Int, phaseLength: Int
    let padTop: Int, padLeft: Int

    /// Element (y, x) of a channel plane.
    @inline(__always) func offset(y: Int, x: Int) -> Int {
        let column = x + padLeft
        return (y + padTop) * rowFloats + (column & 3) * phaseLength + (column >> 2)
    }

    /// Stores `count` consecutive values as columns padLeft ..< padLeft + count of one
    /// padded row, split by column mod 4 into the four phases: scalar up to a multiple of
    /// 4, then 16 columns (four 4-float stores) per step.
    @inline(__always)
    static func splitRow(_ src: UnsafePointer<Float>, count: Int, into row: UnsafeMutablePointer<Float>,
                         padLeft: Int, phaseLength: Int) {
        var x = 0
        while x < count && (x + padLeft) & 3 != 0 {
            let column = x + padLeft
            row[(column & 3) * phaseLength + (column >> 2)] = src[x]
            x += 1
        }
        while x + 16 <= count {
            let v = UnsafeRawPointer(src + x).loadUnaligned(as: SIMD16<Float>.self)
            let out = UnsafeMutableRawPointer(row + ((x + padLeft) >> 2))
            out.storeBytes(of: SIMD4<Float>(v[0], v[4], v[8], v[12]), as: SIMD4<Float>.self)
            out.storeBytes(of: SIMD4<Float>(v[1], v[5], v[9], v[13]), toByteOffset: phaseLength * 4, as: SIMD4<Float>.self)
            out.storeBytes(of: SIMD4<Float>(v[2], v[6], v[10], v[14]), toByteOffset: phaseLength * 8, as: SIMD4<Float>.self)
            out.storeBytes(of: SIMD4<Float>(v[3], v[7], v[11], v[15]), toByteOffset: phaseLength * 12, as: SIMD4<Float>.self)
            x += 16
        }
        while x < count {
            let column = x + padLeft
            row[(column & 3) * phaseLength + (column >> 2)] = src[x]
            x += 1
        }
    }
}

/// A Winograd layer's padded input buffer and its layout: what the planner hands the
/// layer before it.
struct PaddedInput {
    let buffer: GemmWorkspace
    let layout: PaddedInputLayout
}

/// 3×3 stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray
/// 2016): each 4×4 output tile costs 36 multiplies per input channel instead of 144.
/// Work is done in blocks of 32 tiles so the transformed input (V) and the products (M)
/// stay in L2: input transform -> 36 small GEMMs (one per point of the 6×6 transform
/// domain, with the weights transformed and packed once) -> output transform with bias
/// and activation fused. Transforms are vectorized across 8 neighbouring tiles: the input
/// is copied once into a zero-bordered buffer split by x mod 4 ("phases"), so the
/// element at column s of 8 consecutive tiles is one contiguous vector load.
final class WinogradConv3x3: @unchecked Sendable {
    let g: Conv2DGeometry
    let activation: Activation
    /// A fused 2×2 stride-2 max pool: each 4×4 output tile becomes a 2×2 pooled block.
    let poolAfter: Bool
    private let bias: [Float]
    /// Transformed weights U[ξ] (K × C), one packed GEMM operand per transform point.
    private let u: [PrepackedA]
    private let tilesY: Int, tilesX: Int
    private let paddedOutChannels: Int
    /// Floats between the 36 transform points' planes of V and of M. Padded by one
    /// cache line: planes a multiple of 4 KiB apart would all map to the same L1 sets,
    /// and the transforms touch all 36 at once.
    private var vStride: Int { g.channels * WinogradConv3x3.blockTiles + 16 }
    private var mStride: Int { paddedOutChannels * WinogradConv3x3.blockTiles + 16 }
    /// Tiles per row rounded up to 8, so a group of 8 never spans two tile rows.
    private let rowTiles: Int
    /// The zero-bordered input copy: [channel][row][x mod 4][x / 4], phases of
    /// `phaseLength` floats (one per real tile and one more), so a row holds
    /// 4 × phaseLength floats. Made at each run in
    /// memory every Winograd layer of a plan shares (`paddedInputs`): the layers run one
    /// after another and only need it during their own run.
    private var padded: UnsafeMutablePointer<Float>
    private let paddedInputs: GemmWorkspace
    /// The layer before writes this layer's input straight into `paddedInputs` (set while
    /// planning, with that layer's `writeOutput(into:)`): no copy here.
    var inputPrepadded = false
    /// Where the output goes instead of `run`'s output tensor: the next Winograd layer's
    /// padded input (set while planning; batch 1).
    private(set) var outputBuffer: GemmWorkspace?
    private(set) var outputLayout: PaddedInputLayout?

    func writeOutput(into next: PaddedInput) {
        outputBuffer = next.buffer
        outputLayout = next.layout
    }
    private let paddedCount: Int
    private let paddedHeight: Int, phaseLength: Int
    /// Tiles per block: two 16-wide GEMM panels.
    static let blockTiles = 32
    /// Transformed inputs V and products M of the current block, in memory shared by
    /// every layer of a plan (layers run one after another).
    private let scratch: GemmWorkspace
    private var v: UnsafeMutablePointer<Float>
    private var m: UnsafeMutablePointer<Float>
    private let edgeScratch: UnsafeMutablePointer<Float>
    /// Transform registers spilled to memory: patch, half-transformed patch, result.
    private let d = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 40)
    private let t = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: 36)

    /// Fewest input channels for Winograd. Even the seed CNN's 3-channel first layer is
    /// faster this way (10.8 vs 11.2 ms CPU per image); MEDINFER_WINOGRAD_MIN_CHANNELS
    /// overrides it for comparisons.
    static let minimumChannels: Int = {
        if let v = getenv("MEDINFER_WINOGRAD_MIN_CHANNELS"), let n = Int(String(cString: v)) { return n }
        return 3
    }()

    static func applies(to g: Conv2DGeometry) -> Bool {
        g.kernelH == 3 && g.kernelW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1
            && g.dilationW == 1 && g.groups == 1 && g.channels >= minimumChannels && g.outHeight >= 4 && g.outWidth >= 4
    }

    /// The transformed, packed weights of one layer: U[ξ] (K × C) for the 36 points.
    /// Immutable, so one copy serves every plan and thread (see `WeightCache`).
    final class Weights: @unchecked Sendable {
        let u: [PrepackedA]
        /// Transforms the K × C kernels into 36 packed operands written in place into one
        /// block of `memory` (or of its own when nil).
        /// `weights`: K × C × 3 × 3 floats, read with unaligned loads (an initializer in
        /// place in the model file need not be 4-byte aligned).
        init?(_ weights: UnsafeRawPointer, outChannels k: Int, channels c: Int, memory: MemoryRegion? = nil) {
            // Lane r of a transform is output channel 6p + r of panel p (one input channel
            // at a time), so each point's six results are one contiguous panel entry: one
            // vector store per point instead of 36 scattered ones per kernel. The store's
            // two extra lanes land on the next entry, written after it; planes are apart
            // by 16 spare floats for the last entry's.
            let mr = Gemm.mr   // 6: the six rows r0 ... r5 below
            let panels = (k + mr - 1) / mr
            let pointFloats = panels * mr * c
            let pointStride = pointFloats + 16
            let region = memory ?? MemoryRegion()
            // Zeroed; the last panel's rows past K get zero kernels' transforms (zero).
            guard let raw = region.allocate(bytes: 36 * pointStride * MemoryLayout<Float>.stride) else { return nil }
            let block = raw.bindMemory(to: Float.self, capacity: 36 * pointStride)
            let kernels = UnsafeMutablePointer<SIMD8<Double>>.allocate(capacity: 9)
            let zeros = UnsafeMutablePointer<Float>.allocate(capacity: 9 * c)
            zeros.initialize(repeating: 0, count: 9 * c)
            defer { kernels.deallocate(); zeros.deallocate() }
            for panel in 0 ..< panels {
                // The panel's six output channels' kernels (zeros past K), 9 floats per input channel.
                func rows(_ r: Int) -> UnsafeRawPointer {
                    panel * mr + r < k ? weights + (panel * mr + r) * c * 9 * 4 : UnsafeRawPointer(zeros)
                }
                let r0 = rows(0), r1 = rows(1), r2 = rows(2), r3 = rows(3), r4 = rows(4), r5 = rows(5)
                for ic in 0 ..< c {
                    let o = ic * 9
                    // Each kernel's first 8 elements in one load, then regrouped by element.
                    @inline(__always) func head(_ r: UnsafeRawPointer) -> SIMD8<Float> {
                        r.loadUnaligned(fromByteOffset: o * 4, as: SIMD8<Float>.self)
                    }
                    @inline(__always) func last(_ r: UnsafeRawPointer) -> Float {
                        r.loadUnaligned(fromByteOffset: (o + 8) * 4, as: Float.self)
                    }
                    let h0 = head(r0), h1 = head(r1), h2 = head(r2), h3 = head(r3), h4 = head(r4), h5 = head(r5)
                    for j in 0 ..< 8 {
                        kernels[j] = SIMD8<Double>(SIMD8<Float>(h0[j], h1[j], h2[j], h3[j], h4[j], h5[j], 0, 0))
                    }
                    kernels[8] = SIMD8<Double>(SIMD8<Float>(last(r0), last(r1), last(r2), last(r3), last(r4), last(r5), 0, 0))
                    WinogradConv3x3.transformKernels(kernels, into: UnsafeMutableRawPointer(block + (panel * c + ic) * mr),
                                                     pointBytes: pointStride * 4)
                }
            }
            u = (0 ..< 36).map { xi in
                PrepackedA(rows: k, depth: c, packedAt: block + xi * pointStride, owner: region)
            }
        }
    }

    /// `scratch` holds a block's transforms and products, `paddedInputs` the zero-bordered
    /// input; a plan passes the same two to all its layers.
    convenience init(geometry: Conv2DGeometry, weights: Weights, bias: [Float]?, activation: Activation,
                     poolAfter: Bool = false, scratch: GemmWorkspace = GemmWorkspace(),
                     paddedInputs: GemmWorkspace = GemmWorkspace()) {
        self.init(geometry: geometry, u: weights.u, bias: bias ?? [Float](repeating: 0, count: geometry.outChannels),
                  activation: activation, poolAfter: poolAfter, scratch: scratch, paddedInputs: paddedInputs)
    }

    func resized(to geometry: Conv2DGeometry) -> any ConvolutionKernel {
        WinogradConv3x3(geometry: geometry, u: u, bias: bias, activation: activation, poolAfter: poolAfter,
                        scratch: scratch, paddedInputs: paddedInputs)
    }

    private init(geometry: Conv2DGeometry, u: [PrepackedA], bias: [Float], activation: Activation,
                 poolAfter: Bool, scratch: GemmWorkspace, paddedInputs: GemmWorkspace) {
        self.scratch = scratch
        self.paddedInputs = paddedInputs
        g = geometry
        self.activation = activation
        self.poolAfter = poolAfter
        self.bias = bias
        let k = geometry.outChannels, c = geometry.channels
        self.u = u
        tilesY = (geometry.outHeight + 3) / 4
        tilesX = (geometry.outWidth + 3) / 4
        rowTiles = (tilesX + 7) / 8 * 8
        paddedHeight = tilesY * 4 + 2
        // Tile tx reads phase entries tx and tx + 1: a real tile's all lie in its phase.
        // The padding tiles that round a row up to groups of 8 read on into the next
        // phase or row (lanes never stored), and past the last row by up to 7 floats.
        phaseLength = tilesX + 1
        paddedCount = c * paddedHeight * 4 * phaseLength + 8
        paddedInputs.expect(paddedCount)
        padded = UnsafeMutablePointer(bitPattern: 64)!
        v = UnsafeMutablePointer(bitPattern: 64)!
        // Rows rounded up to the micro-kernel's 6, so every GEMM tile is a full tile
        // (the packed weights' extra rows are zero; their products are never read).
        paddedOutChannels = (k + Gemm.mr - 1) / Gemm.mr * Gemm.mr
        m = UnsafeMutablePointer(bitPattern: 64)!
        edgeScratch = .allocate(capacity: Gemm.mr * Gemm.nr)
        scratch.expect(36 * (vStride + mStride))
    }

    deinit {
        edgeScratch.deallocate()
        d.deallocate(); t.deallocate()
    }

    /// This layer's padded input, for a layer before it that writes there directly.
    var paddedInput: PaddedInput {
        PaddedInput(buffer: paddedInputs,
                    layout: PaddedInputLayout(count: paddedCount, planeFloats: paddedHeight * 4 * phaseLength,
                                              rowFloats: 4 * phaseLength, phaseLength: phaseLength,
                                              padTop: g.padTop, padLeft: g.padLeft))
    }

    /// Whether `paddedInputs` is the buffer this layer reads its input from.
    func readsInput(from buffer: GemmWorkspace) -> Bool { buffer === paddedInputs }

    /// G g Gᵀ for eight 3×3 kernels at once (lane l of w[j] is element j of kernel l,
    /// row-major), computed in Double so the transform adds no rounding of its own. Point
    /// ξ of the 6×6 transform domain (row-major) is stored at `out + ξ · pointBytes`.
    @inline(__always)
    static func transformKernels(_ w: UnsafePointer<SIMD8<Double>>, into out: UnsafeMutableRawPointer, pointBytes: Int) {
        typealias D8 = SIMD8<Double>
        // G k (6×3): the rows of G applied to the kernel's columns.
        var gk = (D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(),
                  D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8())
        withUnsafeMutableBytes(of: &gk) { raw in
            let gk = raw.baseAddress!.assumingMemoryBound(to: D8.self)
            // Multiplies by Double reciprocals (divides took half the time): a Double
            // rounding of 1e-16 does not show after rounding to Float.
            let sixth = 1.0 / 6, twelfth = 1.0 / 12, twentyFourth = 1.0 / 24
            for j in 0 ..< 3 {
                let k0 = w[j], k1 = w[3 + j], k2 = w[6 + j]
                gk[j] = k0 * 0.25
                gk[3 + j] = -(k0 + k1 + k2) * sixth
                gk[6 + j] = -(k0 - k1 + k2) * sixth
                gk[9 + j] = k0 * twentyFourth + k1 * twelfth + k2 * sixth
                gk[12 + j] = k0 * twentyFourth - k1 * twelfth + k2 * sixth
                gk[15 + j] = k2
            }
            // (G k) Gᵀ (6×6): the same rows of G applied to each row of G k.
            for i in 0 ..< 6 {
                let a = gk[i * 3], b = gk[i * 3 + 1], c = gk[i * 3 + 2]
                let o = out + i * 6 * pointBytes
                o.storeBytes(of: SIMD8<Float>(a * 0.25), as: SIMD8<Float>.self)
                (o + pointBytes).storeBytes(of: SIMD8<Float>(-(a + b + c) * sixth), as: SIMD8<Float>.self)
                (o + 2 * pointBytes).storeBytes(of: SIMD8<Float>(-(a - b + c) * sixth), as: SIMD8<Float>.self)
                (o + 3 * pointBytes).storeBytes(of: SIMD8<Float>(a * twentyFourth + b * twelfth + c * sixth), as: SIMD8<Float>.self)
                (o + 4 * pointBytes).storeBytes(of: SIMD8<Float>(a * twentyFourth - b * twelfth + c * sixth), as: SIMD8<Float>.self)
                (o + 5 * pointBytes).storeBytes(of: SIMD8<Float>(c), as: SIMD8<Float>.self)
            }
        }
    }

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        let vCount = 36 * vStride
        v = scratch.reserve(vCount + 36 * mStride)   // as `expect`ed at init
        m = v + vCount
        let plane = g.height * g.width
        let outPlane = poolAfter ? (g.outHeight / 2) * (g.outWidth / 2) : g.outHeight * g.outWidth
        let total = tilesY * rowTiles
        let rowFloats = 4 * phaseLength, paddedPlane = paddedHeight * rowFloats
        padded = paddedInputs.reserve(paddedCount)
        // Columns the padded buffer holds; the border around them is cleared once per run
        // (another layer's input may have been there).
        let columns = min(g.width, 4 * phaseLength - g.padLeft)
        for ch in 0 ..< g.channels { clearBorder(padded + ch * paddedPlane, columns: columns) }
        // A target or a prepadded input holds one image: the planner sets them for batch 1 only.
        let target = outputLayout.flatMap { layout in outputBuffer?.reserve(layout.count) }
        for n in 0 ..< batch {
            let image = input + n * g.channels * plane
            for ch in 0 ..< g.channels where !inputPrepadded {
                let source = image + ch * plane
                let target = padded + ch * paddedPlane
                for y in 0 ..< g.height where y + g.padTop < paddedHeight {
                    PaddedInputLayout.splitRow(source + y * g.width, count: columns,
                                               into: target + (y + g.padTop) * rowFloats, padLeft: g.padLeft,
                                               phaseLength: phaseLength)
                }
            }
            let out = target ?? output + n * g.outChannels * outPlane
            var start = 0
            while start < total {
                transformInput(firstTile: start)
                multiply()
                transformOutput(out, firstTile: start, tiles: min(WinogradConv3x3.blockTiles, total - start))
                start += WinogradConv3x3.blockTiles
            }
        }
    }

    /// Zeroes one channel's padded rows and columns around the image that real tiles
    /// read: the rows above and below it, and the columns left of it and right of it up to
    /// the last real tile's patch. Tiles past the last real one (rows are rounded up to
    /// groups of 8) read whatever is there; their lanes are never stored.
    private func clearBorder(_ plane: UnsafeMutablePointer<Float>, columns: Int) {
        let rowFloats = 4 * phaseLength
        let top = min(g.padTop, paddedHeight)
        let bottom = top + max(0, min(g.height, paddedHeight - g.padTop))
        plane.update(repeating: 0, count: top * rowFloats)
        (plane + bottom * rowFloats).update(repeating: 0, count: (paddedHeight - bottom) * rowFloats)
        let right = g.padLeft + columns                       // first column past the image
        let readEnd = min(4 * phaseLength, 4 * tilesX + 2)    // past the last real patch
        guard g.padLeft > 0 || right < readEnd else { return }
        for y in top ..< bottom {
            let row = plane + y * rowFloats
            for column in 0 ..< g.padLeft { row[(column & 3) * phaseLength + (column >> 2)] = 0 }
            var column = right
            while column < readEnd {
                row[(column & 3) * phaseLength + (column >> 2)] = 0
                column += 1
            }
        }
    }

    typealias V8 = SIMD8<Float>

    /// Bᵀ x for six vectors (one column or row of 6×6 tiles, 8 tiles per vector).
    @inline(__always)
    static func bt(_ d0: V8, _ d1: V8, _ d2: V8, _ d3: V8, _ d4: V8, _ d5: V8) -> (V8, V8, V8, V8, V8, V8) {
        let r0 = 4 * d0 - 5 * d2 + d4
        let r1 = d3 + d4 - 4 * (d1 + d2)
        let r2 = 4 * (d1 - d2) + d4 - d3
        let r3 = 2 * (d3 - d1) + d4 - d2
        let r4 = 2 * (d1 - d3) + d4 - d2
        let r5 = 4 * d1 - 5 * d3 + d5
        return (r0, r1, r2, r3, r4, r5)
    }

    /// Aᵀ x for six vectors.
    @inline(__always)
    static func at(_ m0: V8, _ m1: V8, _ m2: V8, _ m3: V8, _ m4: V8, _ m5: V8) -> (V8, V8, V8, V8) {
        let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
        return (m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5)
    }

    private func transformInput(firstTile: Int) {
        let c = g.channels, tb = WinogradConv3x3.blockTiles
        let rowFloats = 4 * phaseLength, paddedPlane = paddedHeight * rowFloats
        let total = tilesY * rowTiles
        var group = 0
        while group < tb {
            let panel = group / 16, lane0 = group % 16
            let global = firstTile + group
            let real = global < total
            let ty = global / rowTiles, tx = global % rowTiles
            let origin = UnsafeRawPointer(padded + (real ? (ty * 4) * rowFloats + tx : 0))
            let phase = phaseLength * 4  // bytes between phases
            for ch in 0 ..< c {
                if real {
                    // Columns first: Bᵀ over the 6 rows of each patch column (6 vector
                    // loads from the phase-split rows), then rows, straight into V.
                    let channelOrigin = origin + ch * paddedPlane * 4
                    let rowBytes = rowFloats * 4
                    for s in 0 ..< 6 {
                        let p = channelOrigin + (s < 4 ? s * phase : (s - 4) * phase + 4)
                        let col = WinogradConv3x3.bt(p.loadUnaligned(as: V8.self),
                                                     p.loadUnaligned(fromByteOffset: rowBytes, as: V8.self),
                                                     p.loadUnaligned(fromByteOffset: 2 * rowBytes, as: V8.self),
                                                     p.loadUnaligned(fromByteOffset: 3 * rowBytes, as: V8.self),
                                                     p.loadUnaligned(fromByteOffset: 4 * rowBytes, as: V8.self),
                                                     p.loadUnaligned(fromByteOffset: 5 * rowBytes, as: V8.self))
                        t[s] = col.0; t[6 + s] = col.1; t[12 + s] = col.2; t[18 + s] = col.3; t[24 + s] = col.4; t[30 + s] = col.5
                    }
                } else {
                    for i in 0 ..< 36 { t[i] = V8() }
                }
                let base = v + panel * c * 16 + ch * 16 + lane0
                for r in 0 ..< 6 {
                    let row = WinogradConv3x3.bt(t[r * 6], t[r * 6 + 1], t[r * 6 + 2], t[r * 6 + 3], t[r * 6 + 4], t[r * 6 + 5])
                    let step = vStride
                    let at = base + r * 6 * step
                    UnsafeMutableRawPointer(at).storeBytes(of: row.0, as: V8.self)
                    UnsafeMutableRawPointer(at + step).storeBytes(of: row.1, as: V8.self)
                    UnsafeMutableRawPointer(at + 2 * step).storeBytes(of: row.2, as: V8.self)
                    UnsafeMutableRawPointer(at + 3 * step).storeBytes(of: row.3, as: V8.self)
                    UnsafeMutableRawPointer(at + 4 * step).storeBytes(of: row.4, as: V8.self)
                    UnsafeMutableRawPointer(at + 5 * step).storeBytes(of: row.5, as: V8.self)
                }
            }
            group += 8
        }
    }

    /// Max-pools the 8 finished 4×4 tiles in `d` (y) 2×2 and stores the 2×2 blocks in
    /// `channel`: a plane of the pooled output, or of the next layer's padded input.
    @inline(__always)
    private func storePooled(_ channel: UnsafeMutablePointer<Float>, _ layout: PaddedInputLayout?,
                             ty: Int, tx: Int, count: Int) {
        let y = d
        @inline(__always) func mx(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .> a) }
        let p00 = mx(mx(y[0], y[1]), mx(y[4], y[5])), p01 = mx(mx(y[2], y[3]), mx(y[6], y[7]))
        let p10 = mx(mx(y[8], y[9]), mx(y[12], y[13])), p11 = mx(mx(y[10], y[11]), mx(y[14], y[15]))
        let ph = g.outHeight / 2, pw = g.outWidth / 2
        let py = ty * 2, px = tx * 2
        if count == 8 && py + 2 <= ph && px + 16 <= pw {
            storePooledRows(channel, layout, py: py, px: px, p00, p01, p10, p11)
            return
        }
        for l in 0 ..< count {
            let x = px + 2 * l
            if py < ph {
                if x < pw { put(p00[l], channel, py, x, layout) }
                if x + 1 < pw { put(p01[l], channel, py, x + 1, layout) }
            }
            if py + 1 < ph {
                if x < pw { put(p10[l], channel, py + 1, x, layout) }
                if x + 1 < pw { put(p11[l], channel, py + 1, x + 1, layout) }
            }
        }
    }

    /// One output value at (y, x) of an output plane (plain, or in `layout`).
    @inline(__always)
    private func put(_ value: Float, _ channel: UnsafeMutablePointer<Float>, _ y: Int, _ x: Int,
                     _ layout: PaddedInputLayout?) {
        if let layout {
            channel[layout.offset(y: y, x: x)] = value
        } else {
            channel[y * (poolAfter ? g.outWidth / 2 : g.outWidth) + x] = value
        }
    }

    /// Two pooled rows of 16 columns from 8 tiles (lane l: columns px + 2l and px + 2l + 1).
    @inline(__always)
    private func storePooledRows(_ channel: UnsafeMutablePointer<Float>, _ layout: PaddedInputLayout?, py: Int, px: Int,
                                 _ p00: V8, _ p01: V8, _ p10: V8, _ p11: V8) {
        if let layout {
            // Columns px + j, + 4, + 8, + 12 share a phase and sit side by side in it.
            @inline(__always) func row(_ y: Int, _ a: V8, _ b: V8) {
                for j in 0 ..< 4 {
                    let v = j & 1 == 0 ? a : b, l = j >> 1
                    UnsafeMutableRawPointer(channel + layout.offset(y: y, x: px + j))
                        .storeBytes(of: SIMD4<Float>(v[l], v[l + 2], v[l + 4], v[l + 6]), as: SIMD4<Float>.self)
                }
            }
            row(py, p00, p01)
            row(py + 1, p10, p11)
            return
        }
        let pw = g.outWidth / 2
        let row = UnsafeMutableRawPointer(channel + py * pw + px)
        row.storeBytes(of: SIMD16<Float>(p00[0], p01[0], p00[1], p01[1], p00[2], p01[2], p00[3], p01[3],
                                         p00[4], p01[4], p00[5], p01[5], p00[6], p01[6], p00[7], p01[7]), as: SIMD16<Float>.self)
        (row + pw * 4).storeBytes(of: SIMD16<Float>(p10[0], p11[0], p10[1], p11[1], p10[2], p11[2], p10[3], p11[3],
                                                    p10[4], p11[4], p10[5], p11[5], p10[6], p11[6], p10[7], p11[7]), as: SIMD16<Float>.self)
    }

    /// M[ξ] = U[ξ] · V[ξ] for the 36 transform points.
    private func multiply() {
        let k = g.outChannels, c = g.channels, tb = WinogradConv3x3.blockTiles
        let nr = Gemm.nr, mr = Gemm.mr
        let wide = KernelDispatch.wideGemm
        for xi in 0 ..< 36 {
            let (aPanels, stride) = u[xi].panels(scratch: edgeScratch, rows: k, k0: 0, depth: c)
            let b = UnsafePointer(v + xi * vStride)
            let out = m + xi * mStride
            var i = 0
            while i < k {
                let a = aPanels + (i / mr) * stride
                if wide {
                    gemmMicroKernel6x32(depth: c, a: a, b0: b, b1: b + c * nr, c: out + i * tb, ldc: tb, accumulate: false)
                } else {
                    Gemm.microKernel(depth: c, a: a, b: b, c: out + i * tb, ldc: tb, accumulate: false)
                    Gemm.microKernel(depth: c, a: a, b: b + c * nr, c: out + i * tb + nr, ldc: tb, accumulate: false)
                }
                i += mr
            }
        }
    }

    private func transformOutput(_ out: UnsafeMutablePointer<Float>, firstTile: Int, tiles: Int) {
        let k = g.outChannels, tb = WinogradConv3x3.blockTiles
        let oh = g.outHeight, ow = g.outWidth
        // Floats between output channels: of the output tensor, or of the target's planes.
        let layout = outputLayout
        let outChannelFloats = layout?.planeFloats ?? (poolAfter ? (oh / 2) * (ow / 2) : oh * ow)
        let y = d
        let isRelu = activation == .relu, isIdentity = activation == .identity
        var group = 0
        while group < tiles {
            let global = firstTile + group
            let ty = global / rowTiles, tx = global % rowTiles
            let oy = ty * 4, ox = tx * 4
            let count = max(0, min(8, tilesX - tx))   // real tiles in this group
            if count == 0 { group += 8; continue }
            let fullRow = count == 8 && oy + 4 <= oh && ox + 32 <= ow
            let origin = oy * ow + ox
            let poolFast = poolAfter && count == 8 && ty * 2 + 2 <= oh / 2 && tx * 2 + 16 <= ow / 2
            let rowBytes = mStride * 4
            for oc in 0 ..< k {
                // Columns first, straight from M (6 strided vector loads per column).
                let src = UnsafeRawPointer(m + oc * tb + group)
                let t = d + 16  // Aᵀ M: 4×6, after y's 16 entries
                for s in 0 ..< 6 {
                    let p = src + s * rowBytes
                    let col = WinogradConv3x3.at(p.loadUnaligned(as: V8.self),
                                                 p.loadUnaligned(fromByteOffset: 6 * rowBytes, as: V8.self),
                                                 p.loadUnaligned(fromByteOffset: 12 * rowBytes, as: V8.self),
                                                 p.loadUnaligned(fromByteOffset: 18 * rowBytes, as: V8.self),
                                                 p.loadUnaligned(fromByteOffset: 24 * rowBytes, as: V8.self),
                                                 p.loadUnaligned(fromByteOffset: 30 * rowBytes, as: V8.self))
                    t[s] = col.0; t[6 + s] = col.1; t[12 + s] = col.2; t[18 + s] = col.3
                }
                if poolFast && (isRelu || isIdentity) {
                    // Pool the raw sums, then add the bias and apply Relu to the 4 pooled
                    // vectors: max and Relu commute, and max(a + b, c + b) = max(a, c) + b.
                    @inline(__always) func mx(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .> a) }
                    let r0 = WinogradConv3x3.at(t[0], t[1], t[2], t[3], t[4], t[5])
                    let r1 = WinogradConv3x3.at(t[6], t[7], t[8], t[9], t[10], t[11])
                    var p00 = mx(mx(r0.0, r0.1), mx(r1.0, r1.1)), p01 = mx(mx(r0.2, r0.3), mx(r1.2, r1.3))
                    let r2 = WinogradConv3x3.at(t[12], t[13], t[14], t[15], t[16], t[17])
                    let r3 = WinogradConv3x3.at(t[18], t[19], t[20], t[21], t[22], t[23])
                    var p10 = mx(mx(r2.0, r2.1), mx(r3.0, r3.1)), p11 = mx(mx(r2.2, r2.3), mx(r3.2, r3.3))
                    let b = V8(repeating: bias[oc])
                    p00 += b; p01 += b; p10 += b; p11 += b
                    if isRelu {
                        let zero = V8()
                        p00 = mx(p00, zero); p01 = mx(p01, zero); p10 = mx(p10, zero); p11 = mx(p11, zero)
                    }
                    storePooledRows(out + oc * outChannelFloats, layout, py: ty * 2, px: tx * 2, p00, p01, p10, p11)
                    continue
                }
                let b = V8(repeating: bias[oc])
                for r in 0 ..< 4 {
                    let row = WinogradConv3x3.at(t[r * 6], t[r * 6 + 1], t[r * 6 + 2], t[r * 6 + 3], t[r * 6 + 4], t[r * 6 + 5])
                    y[r * 4] = row.0 + b; y[r * 4 + 1] = row.1 + b; y[r * 4 + 2] = row.2 + b; y[r * 4 + 3] = row.3 + b
                }
                if isRelu {
                    for i in 0 ..< 16 {
                        let bits = unsafeBitCast(y[i], to: SIMD8<Int32>.self)
                        y[i] = unsafeBitCast(bits & ~(bits &>> 31), to: V8.self)
                    }
                } else if !isIdentity {
                    for i in 0 ..< 16 { for l in 0 ..< 8 { y[i][l] = activation.apply(y[i][l]) } }
                }
                if poolAfter {
                    storePooled(out + oc * outChannelFloats, layout, ty: ty, tx: tx, count: count)
                    continue
                }
                let channel = out + oc * outChannelFloats
                if let layout {
                    // Columns ox + 4l + s of the 8 tiles share a phase, side by side: one
                    // vector per row and column of the tiles when all 8 are whole.
                    let scalars = UnsafeRawPointer(y).assumingMemoryBound(to: Float.self)
                    let rows = min(4, oh - oy)
                    for r in 0 ..< rows {
                        for s in 0 ..< 4 {
                            if fullRow {
                                UnsafeMutableRawPointer(channel + layout.offset(y: oy + r, x: ox + s))
                                    .storeBytes(of: y[4 * r + s], as: V8.self)
                                continue
                            }
                            for l in 0 ..< count where ox + 4 * l + s < ow {
                                channel[layout.offset(y: oy + r, x: ox + 4 * l + s)] = scalars[(r * 4 + s) * 8 + l]
                            }
                        }
                    }
                    continue
                }
                if fullRow {
                    // 8 whole tiles side by side: each output row is 32 contiguous floats,
                    // a 4×8 transpose of y[4r ..< 4r+4].
                    let dst = UnsafeMutableRawPointer(channel + origin)
                    for r in 0 ..< 4 {
                        let p = y[4 * r], q = y[4 * r + 1], u = y[4 * r + 2], w = y[4 * r + 3]
                        let row = dst + r * ow * 4
                        row.storeBytes(of: V8(p[0], q[0], u[0], w[0], p[1], q[1], u[1], w[1]), as: V8.self)
                        row.storeBytes(of: V8(p[2], q[2], u[2], w[2], p[3], q[3], u[3], w[3]), toByteOffset: 32, as: V8.self)
                        row.storeBytes(of: V8(p[4], q[4], u[4], w[4], p[5], q[5], u[5], w[5]), toByteOffset: 64, as: V8.self)
                        row.storeBytes(of: V8(p[6], q[6], u[6], w[6], p[7], q[7], u[7], w[7]), toByteOffset: 96, as: V8.self)
                    }
                    continue
                }
                let scalars = UnsafeRawPointer(y).assumingMemoryBound(to: Float.self)
                let rows = min(4, oh - oy)
                for l in 0 ..< count {
                    let dst = channel + origin + 4 * l
                    let cols = min(4, ow - ox - 4 * l)
                    for r in 0 ..< rows {
                        for s in 0 ..< cols { dst[r * ow + s] = scalars[(r * 4 + s) * 8 + l] }
                    }
                }
            }
            group += 8
        }
    }
}

/// One LSTM time step for a batch of sequences, fused. For a 16-unit slice of every gate
/// and four sequences at a time, x_t·Wᵀ + h·Rᵀ + bias is accumulated in zmm registers
/// (one product over the concatenated [x_t, h]: the input projection needs no GEMM of its
/// own), then the cell update runs on those values while they are in L1. The unfused path
/// projects all steps with a GEMM, packs h for another GEMM every step and writes and
/// re-reads [batch][4·hidden] pre-activations.
///
/// Layouts (the core's `RecurrentWeights` prepares `slices` and `bias`):
/// - `slices`: [Wᵀ; Rᵀ] as [hidden/16][inputSize + hidden][4][16]: for slice s, depth k
///   (inputs first, then hidden units) and gate g (ONNX order i, o, f, c), the 16 weights
///   of units s·16 ..< s·16+16.
/// - `bias`: [4][hidden], Wb + Rb.
/// - `x`: the step's input of row b at `x + b·xStride`, `inputSize` floats.
/// - `h`, `c`, `hNext`: [rows][hidden]. c is updated in place; h is only read, so the
///   caller alternates two h buffers.
/// - `active`: nil, or one byte per row; a row whose byte is 0 keeps its state (hNext gets
///   h, c is untouched): a sequence that has ended.
/// `hidden` must be a multiple of 16.
public func lstmStep16(rows: Int, inputSize: Int, hidden: Int, x: UnsafePointer<Float>, xStride: Int,
                       h: UnsafePointer<Float>, slices: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                       c: UnsafeMutablePointer<Float>, hNext: UnsafeMutablePointer<Float>,
                       active: UnsafePointer<UInt8>?) {
    let depth = inputSize &+ hidden
    // Pre-activations pass from the product to the cell through this buffer
    // ([4 rows][4 gates][16]) and separate functions: compiled as one, LLVM split the
    // accumulators into 128-bit pieces and spilled them (3x slower).
    withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 16) { buffer in
        let gates = UnsafeMutableRawPointer(buffer.baseAddress!)
        for s in 0 ..< hidden / 16 {
            let tile = LSTMTile(inputSize: inputSize, hidden: hidden, x: x, xStride: xStride, h: h,
                                panel: UnsafeRawPointer(slices + s &* depth &* 64),
                                bias: UnsafeRawPointer(bias + s &* 16), gates: gates)
            var r = 0
            while r < rows {
                let count = min(4, rows &- r)
                if count == 4 {
                    tile.four(row: r)
                } else {
                    for row in 0 ..< count { tile.one(row: r &+ row, into: row) }
                }
                let offset = r &* hidden &+ s &* 16
                LSTMTile.update(rows: count, gates: gates, c: c + offset, hNext: hNext + offset, hidden: hidden,
                                active: active.map { $0 + r })
                if let active {
                    for row in r ..< r &+ count where active[row] == 0 {
                        let keep = row &* hidden &+ s &* 16
                        (hNext + keep).update(from: h + keep, count: 16)
                    }
                }
                r &+= count
            }
        }
    }
}

/// The product half of the step for one slice: pre-activations of four rows or one.
struct LSTMTile {
    typealias V = SIMD16<Float>
    let inputSize: Int, hidden: Int
    let x: UnsafePointer<Float>, xStride: Int
    let h: UnsafePointer<Float>
    let panel: UnsafeRawPointer
    let bias: UnsafeRawPointer
    let gates: UnsafeMutableRawPointer

    @inline(always)
    static func load(_ p: UnsafeRawPointer, _ offset: Int) -> V { p.loadUnaligned(fromByteOffset: offset, as: V.self) }

    /// Rows `row` ..< `row` + 4: 16 accumulators; each depth step loads the four gate
    /// vectors once and broadcasts one value per row.
    @inline(never)
    func four(row: Int) {
        let gateBytes = hidden &* 4
        let i = Self.load(bias, 0), o = Self.load(bias, gateBytes), f = Self.load(bias, 2 &* gateBytes), g = Self.load(bias, 3 &* gateBytes)
        var i0 = i, o0 = o, f0 = f, g0 = g, i1 = i, o1 = o, f1 = f, g1 = g
        var i2 = i, o2 = o, f2 = f, g2 = g, i3 = i, o3 = o, f3 = f, g3 = g
        var w = panel
        @inline(always) func accumulate(_ a0: UnsafePointer<Float>, _ a1: UnsafePointer<Float>,
                                        _ a2: UnsafePointer<Float>, _ a3: UnsafePointer<Float>, count: Int) {
            for k in 0 ..< count {
                let wi = Self.load(w, 0), wo = Self.load(w, 64), wf = Self.load(w, 128), wg = Self.load(w, 192)
                var v = V(repeating: a0[k])
                i0 = i0.addingProduct(v, wi); o0 = o0.addingProduct(v, wo); f0 = f0.addingProduct(v, wf); g0 = g0.addingProduct(v, wg)
                v = V(repeating: a1[k])
                i1 = i1.addingProduct(v, wi); o1 = o1.addingProduct(v, wo); f1 = f1.addingProduct(v, wf); g1 = g1.addingProduct(v, wg)
                v = V(repeating: a2[k])
                i2 = i2.addingProduct(v, wi); o2 = o2.addingProduct(v, wo); f2 = f2.addingProduct(v, wf); g2 = g2.addingProduct(v, wg)
                v = V(repeating: a3[k])
                i3 = i3.addingProduct(v, wi); o3 = o3.addingProduct(v, wo); f3 = f3.addingProduct(v, wf); g3 = g3.addingProduct(v, wg)
                w += 256
            }
        }
        let x0 = x + row &* xStride
        accumulate(x0, x0 + xStride, x0 + 2 &* xStride, x0 + 3 &* xStride, count: inputSize)
        let h0 = h + row &* hidden
        accumulate(h0, h0 + hidden, h0 + 2 &* hidden, h0 + 3 &* hidden, count: hidden)
        store(i0, o0, f0, g0, gates)
        store(i1, o1, f1, g1, gates + 256)
        store(i2, o2, f2, g2, gates + 512)
        store(i3, o3, f3, g3, gates + 768)
    }

    /// One row (a batch's remainder after fours), into buffer row `slot`. Even and odd
    /// depths go to separate accumulators: eight FMA chains, so that a single row is not
    /// bound by FMA latency.
    @inline(never)
    func one(row: Int, into slot: Int) {
        let gateBytes = hidden &* 4
        var i = Self.load(bias, 0), o = Self.load(bias, gateBytes), f = Self.load(bias, 2 &* gateBytes), g = Self.load(bias, 3 &* gateBytes)
        var i1 = V(), o1 = V(), f1 = V(), g1 = V()
        var w = panel
        @inline(always) func accumulate(_ a: UnsafePointer<Float>, count: Int) {
            var k = 0
            while k &+ 2 <= count {
                let u = V(repeating: a[k]), v = V(repeating: a[k &+ 1])
                i = i.addingProduct(u, Self.load(w, 0)); o = o.addingProduct(u, Self.load(w, 64))
                f = f.addingProduct(u, Self.load(w, 128)); g = g.addingProduct(u, Self.load(w, 192))
                i1 = i1.addingProduct(v, Self.load(w, 256)); o1 = o1.addingProduct(v, Self.load(w, 320))
                f1 = f1.addingProduct(v, Self.load(w, 384)); g1 = g1.addingProduct(v, Self.load(w, 448))
                w += 512
                k &+= 2
            }
            if k < count {
                let u = V(repeating: a[k])
                i = i.addingProduct(u, Self.load(w, 0)); o = o.addingProduct(u, Self.load(w, 64))
                f = f.addingProduct(u, Self.load(w, 128)); g = g.addingProduct(u, Self.load(w, 192))
                w += 256
            }
        }
        accumulate(x + row &* xStride, count: inputSize)
        accumulate(h + row &* hidden, count: hidden)
        store(i + i1, o + o1, f + f1, g + g1, gates + slot &* 256)
    }

    @inline(always)
    func store(_ i: V, _ o: V, _ f: V, _ g: V, _ to: UnsafeMutableRawPointer) {
        to.storeBytes(of: i, as: V.self); to.storeBytes(of: o, toByteOffset: 64, as: V.self)
        to.storeBytes(of: f, toByteOffset: 128, as: V.self); to.storeBytes(of: g, toByteOffset: 192, as: V.self)
    }

    /// The cell half: c = σ(f)·c + σ(i)·tanh(g); h = σ(o)·tanh(c) for 16 units of `rows`
    /// rows (c and hNext rows `hidden` apart) from pre-activations [row][i, o, f, c][16].
    /// With e_x = exp(−x) and tanh(x) = ±(1 − e)/(1 + e), e = exp(−2|x|):
    ///   c' = c/(1 + e_f) + t_g/((1 + e_i)(1 + e_g)) = (c·A + t_g·F)/(F·A),  F = 1 + e_f, A = (1 + e_i)(1 + e_g)
    ///   h  = t_c'/((1 + e_o)(1 + e_c'))
    /// two divisions per cell instead of five. Gate inputs below −28 count as −28, which
    /// keeps the products finite (σ(−28) < 1e-12).
    @inline(never)
    static func update(rows: Int, gates: UnsafeMutableRawPointer, c: UnsafeMutablePointer<Float>,
                       hNext: UnsafeMutablePointer<Float>, hidden: Int, active: UnsafePointer<UInt8>?) {
        let one = V(repeating: 1), limit = V(repeating: 28)
        @inline(always) func expNegative(_ x: V) -> V {
            let y = -x
            return VectorMath16.exp(y.replacing(with: limit, where: y .> limit))
        }
        @inline(always) func tanhParts(_ x: V) -> (numerator: V, denominator: V) {
            let e = VectorMath16.exp(VectorMath16.float(VectorMath16.bits(x) & 0x7FFF_FFFF) * -2)
            let sign = VectorMath16.bits(x) & Int32(bitPattern: 0x8000_0000)
            return (VectorMath16.float(VectorMath16.bits(one - e) | sign), one + e)
        }
        // Two passes, c then h, of short independent chains: one pass per cell made every
        // cell a chain of two exp-and-divide rounds that the core could not overlap.
        for row in 0 ..< rows {
            if let active, active[row] == 0 { continue }
            let base = row &* 256
            let i = gates.load(fromByteOffset: base, as: V.self)
            let f = gates.load(fromByteOffset: base &+ 128, as: V.self), g = gates.load(fromByteOffset: base &+ 192, as: V.self)
            let cRaw = UnsafeMutableRawPointer(c + row &* hidden)
            let forget = one + expNegative(f)
            let (tg, gDenominator) = tanhParts(g)
            let input = (one + expNegative(i)) * gDenominator
            cRaw.storeBytes(of: (cRaw.loadUnaligned(as: V.self) * input + tg * forget) / (forget * input), as: V.self)
        }
        for row in 0 ..< rows {
            if let active, active[row] == 0 { continue }
            let o = gates.load(fromByteOffset: row &* 256 &+ 64, as: V.self)
            let (tc, cDenominator) = tanhParts(UnsafeRawPointer(c + row &* hidden).loadUnaligned(as: V.self))
            UnsafeMutableRawPointer(hNext + row &* hidden).storeBytes(of: tc / ((one + expNegative(o)) * cDenominator), as: V.self)
        }
    }
}

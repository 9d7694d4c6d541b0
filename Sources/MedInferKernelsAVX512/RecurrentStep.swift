/// One LSTM or GRU time step for a batch of sequences, fused. For a 16-unit slice of every
/// gate and four sequences at a time, x_t·Wᵀ + h·Rᵀ + bias is accumulated in zmm registers
/// (one product over the concatenated [x_t, h]: the input projection needs no GEMM of its
/// own), then the cell update runs on those values while they are in L1. The unfused path
/// projects all steps with a GEMM, packs h for another GEMM every step and writes and
/// re-reads [batch][gates·hidden] pre-activations.
///
/// Layouts (the core's `RecurrentWeights` prepares `slices` and `bias`):
/// - `slices`: [Wᵀ; Rᵀ] as [hidden/16][inputSize + hidden][gates][16]: for slice s, depth k
///   (inputs first, then hidden units) and gate g (ONNX order: LSTM i, o, f, c; GRU z, r, h),
///   the 16 weights of units s·16 ..< s·16+16.
/// - `bias`: [gates][hidden] (LSTM: Wb + Rb; GRU: Wbz + Rbz, Wbr + Rbr, Wbh), and for a GRU
///   `resetBias` Rbh [hidden] (linear-before-reset GRUs only: r ⊙ (h·Rhᵀ + Rbh)).
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
    fusedStep(LSTMCell(c: c), rows: rows, inputSize: inputSize, hidden: hidden, x: x, xStride: xStride, h: h,
              slices: slices, bias: bias, hNext: hNext, active: active)
}

/// A linear-before-reset GRU step (ONNX linear_before_reset = 1; PyTorch, Keras reset_after).
public func gruStep16(rows: Int, inputSize: Int, hidden: Int, x: UnsafePointer<Float>, xStride: Int,
                      h: UnsafePointer<Float>, slices: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                      resetBias: UnsafePointer<Float>, hNext: UnsafeMutablePointer<Float>,
                      active: UnsafePointer<UInt8>?) {
    fusedStep(GRUCell(resetBias: resetBias), rows: rows, inputSize: inputSize, hidden: hidden, x: x, xStride: xStride,
              h: h, slices: slices, bias: bias, hNext: hNext, active: active)
}

/// What differs between the cells: the product of one tile (`four`, `one`), writing
/// pre-activations [item][4][16] to the tile buffer, and the cell update on them.
protocol FusedCell {
    static var gates: Int { get }
    func four(_ tile: Tile, row: Int)
    func one(_ tile: Tile, row: Int, into slot: Int)
    /// One row over two slices (`tile`'s and the next), into slots `slot` and `slot` + 1:
    /// twice the independent FMA chains of `one`, for a batch of one.
    func pair(_ tile: Tile, _ next: Tile, row: Int, into slot: Int)
    /// The cell on buffer items 0 ..< `items`, whose state (c, h, hNext) is at
    /// `first + item·stride`; an item whose `active` byte is 0 is skipped.
    func update(_ tile: Tile, items: Int, first: Int, stride: Int, hNext: UnsafeMutablePointer<Float>, active: UnsafePointer<UInt8>?)
}

@inline(always)
func fusedStep<Cell: FusedCell>(_ cell: Cell, rows: Int, inputSize: Int, hidden: Int, x: UnsafePointer<Float>, xStride: Int,
                                h: UnsafePointer<Float>, slices: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                hNext: UnsafeMutablePointer<Float>, active: UnsafePointer<UInt8>?) {
    let depth = inputSize &+ hidden, sliceCount = hidden / 16
    func tile(_ s: Int, _ buffer: UnsafeMutableRawPointer) -> Tile {
        Tile(inputSize: inputSize, hidden: hidden, x: x, xStride: xStride, h: h,
             panel: UnsafeRawPointer(slices + s &* depth &* Cell.gates &* 16),
             bias: UnsafeRawPointer(bias + s &* 16), slice: s, buffer: buffer)
    }
    // Pre-activations pass from the product to the cell through this buffer
    // ([item][4 values][16]) and separate functions: compiled as one, LLVM split the
    // accumulators into 128-bit pieces and spilled them (3x slower).
    withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: 4 &* max(4, sliceCount)) { storage in
        let buffer = UnsafeMutableRawPointer(storage.baseAddress!)
        if rows < 4 {
            // A row at a time, every slice's product first, then one update over all
            // slices: independent chains for the core to overlap (a stream's step).
            for row in 0 ..< rows {
                let offset = row &* hidden
                if let active, active[row] == 0 {
                    (hNext + offset).update(from: h + offset, count: hidden)   // an ended sequence keeps its state
                    continue
                }
                var s = 0
                while s &+ 2 <= sliceCount {
                    cell.pair(tile(s, buffer), tile(s &+ 1, buffer), row: row, into: s)
                    s &+= 2
                }
                if s < sliceCount { cell.one(tile(s, buffer), row: row, into: s) }
                cell.update(tile(0, buffer), items: sliceCount, first: offset, stride: 16, hNext: hNext, active: nil)
            }
            return
        }
        for s in 0 ..< sliceCount {
            let tile = tile(s, buffer)
            var r = 0
            while r < rows {
                let count = min(4, rows &- r)
                if count == 4 {
                    cell.four(tile, row: r)
                } else {
                    for row in 0 ..< count { cell.one(tile, row: r &+ row, into: row) }
                }
                cell.update(tile, items: count, first: r &* hidden &+ s &* 16, stride: hidden, hNext: hNext,
                            active: active.map { $0 + r })
                if let active {
                    for row in r ..< r &+ count where active[row] == 0 {
                        let keep = row &* hidden &+ s &* 16
                        (hNext + keep).update(from: h + keep, count: 16)   // an ended sequence keeps its state
                    }
                }
                r &+= count
            }
        }
    }
}

/// One slice's operands, and the tile buffer.
struct Tile {
    typealias V = SIMD16<Float>
    let inputSize: Int, hidden: Int
    let x: UnsafePointer<Float>, xStride: Int
    let h: UnsafePointer<Float>
    let panel: UnsafeRawPointer
    let bias: UnsafeRawPointer
    let slice: Int
    let buffer: UnsafeMutableRawPointer

    @inline(always)
    static func load(_ p: UnsafeRawPointer, _ offset: Int) -> V { p.loadUnaligned(fromByteOffset: offset, as: V.self) }

    @inline(always)
    func bias(_ gate: Int) -> V { Self.load(bias, gate &* hidden &* 4) }

    @inline(always)
    func store(_ a: V, _ b: V, _ c: V, _ d: V, slot: Int) {
        let to = buffer + slot &* 256
        to.storeBytes(of: a, as: V.self); to.storeBytes(of: b, toByteOffset: 64, as: V.self)
        to.storeBytes(of: c, toByteOffset: 128, as: V.self); to.storeBytes(of: d, toByteOffset: 192, as: V.self)
    }

    @inline(always)
    func value(slot: Int, _ index: Int) -> V { buffer.load(fromByteOffset: slot &* 256 &+ index &* 64, as: V.self) }
}

/// LSTM: pre-activations i, o, f, c of four rows in 16 accumulators.
struct LSTMCell: FusedCell {
    typealias V = SIMD16<Float>
    static var gates: Int { 4 }
    let c: UnsafeMutablePointer<Float>

    @inline(never)
    func four(_ tile: Tile, row: Int) {
        let i = tile.bias(0), o = tile.bias(1), f = tile.bias(2), g = tile.bias(3)
        var i0 = i, o0 = o, f0 = f, g0 = g, i1 = i, o1 = o, f1 = f, g1 = g
        var i2 = i, o2 = o, f2 = f, g2 = g, i3 = i, o3 = o, f3 = f, g3 = g
        var w = tile.panel
        @inline(always) func accumulate(_ a0: UnsafePointer<Float>, _ stride: Int, count: Int) {
            let a1 = a0 + stride, a2 = a0 + 2 &* stride, a3 = a0 + 3 &* stride
            for k in 0 ..< count {
                let wi = Tile.load(w, 0), wo = Tile.load(w, 64), wf = Tile.load(w, 128), wg = Tile.load(w, 192)
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
        accumulate(tile.x + row &* tile.xStride, tile.xStride, count: tile.inputSize)
        accumulate(tile.h + row &* tile.hidden, tile.hidden, count: tile.hidden)
        tile.store(i0, o0, f0, g0, slot: 0)
        tile.store(i1, o1, f1, g1, slot: 1)
        tile.store(i2, o2, f2, g2, slot: 2)
        tile.store(i3, o3, f3, g3, slot: 3)
    }

    /// One row (a batch's remainder after fours, or a stream's step). Each value is summed
    /// in the same order as in `four`, so a sequence's result does not depend on where in
    /// the batch it sits (explanations compare runs of different batch shapes bit for bit).
    @inline(never)
    func one(_ tile: Tile, row: Int, into slot: Int) {
        var i = tile.bias(0), o = tile.bias(1), f = tile.bias(2), g = tile.bias(3)
        var w = tile.panel
        @inline(always) func accumulate(_ a: UnsafePointer<Float>, count: Int) {
            for k in 0 ..< count {
                let u = V(repeating: a[k])
                i = i.addingProduct(u, Tile.load(w, 0)); o = o.addingProduct(u, Tile.load(w, 64))
                f = f.addingProduct(u, Tile.load(w, 128)); g = g.addingProduct(u, Tile.load(w, 192))
                w += 256
            }
        }
        accumulate(tile.x + row &* tile.xStride, count: tile.inputSize)
        accumulate(tile.h + row &* tile.hidden, count: tile.hidden)
        tile.store(i, o, f, g, slot: slot)
    }

    @inline(never)
    func pair(_ tile: Tile, _ next: Tile, row: Int, into slot: Int) {
        var i = tile.bias(0), o = tile.bias(1), f = tile.bias(2), g = tile.bias(3)
        var i1 = next.bias(0), o1 = next.bias(1), f1 = next.bias(2), g1 = next.bias(3)
        var w = tile.panel, w1 = next.panel
        @inline(always) func accumulate(_ a: UnsafePointer<Float>, count: Int) {
            for k in 0 ..< count {
                let u = V(repeating: a[k])
                i = i.addingProduct(u, Tile.load(w, 0)); o = o.addingProduct(u, Tile.load(w, 64))
                f = f.addingProduct(u, Tile.load(w, 128)); g = g.addingProduct(u, Tile.load(w, 192))
                i1 = i1.addingProduct(u, Tile.load(w1, 0)); o1 = o1.addingProduct(u, Tile.load(w1, 64))
                f1 = f1.addingProduct(u, Tile.load(w1, 128)); g1 = g1.addingProduct(u, Tile.load(w1, 192))
                w += 256; w1 += 256
            }
        }
        accumulate(tile.x + row &* tile.xStride, count: tile.inputSize)
        accumulate(tile.h + row &* tile.hidden, count: tile.hidden)
        tile.store(i, o, f, g, slot: slot)
        tile.store(i1, o1, f1, g1, slot: slot &+ 1)
    }

    /// c = σ(f)·c + σ(i)·tanh(g); h = σ(o)·tanh(c), as
    ///   c' = c/F + t_g/A = (c·A + t_g·F)/(F·A),  F = 1 + e_f, A = (1 + e_i)(1 + e_g)
    ///   h  = t_c'/((1 + e_o)(1 + e_c'))
    /// two divisions per cell instead of five, in two passes (c, then h) of short
    /// independent chains: one pass per cell made each a chain of two exp-and-divide
    /// rounds that the core could not overlap.
    @inline(never)
    func update(_ tile: Tile, items: Int, first: Int, stride: Int, hNext: UnsafeMutablePointer<Float>, active: UnsafePointer<UInt8>?) {
        for row in 0 ..< items {
            if let active, active[row] == 0 { continue }
            let cRaw = UnsafeMutableRawPointer(c + (first &+ row &* stride))
            let forget = GateMath.sigmoidDenominator(tile.value(slot: row, 2))
            let (tg, gDenominator) = GateMath.tanhParts(tile.value(slot: row, 3))
            let input = GateMath.sigmoidDenominator(tile.value(slot: row, 0)) * gDenominator
            cRaw.storeBytes(of: (cRaw.loadUnaligned(as: V.self) * input + tg * forget) / (forget * input), as: V.self)
        }
        for row in 0 ..< items {
            if let active, active[row] == 0 { continue }
            let (tc, cDenominator) = GateMath.tanhParts(UnsafeRawPointer(c + (first &+ row &* stride)).loadUnaligned(as: V.self))
            let h = tc / (GateMath.sigmoidDenominator(tile.value(slot: row, 1)) * cDenominator)
            UnsafeMutableRawPointer(hNext + (first &+ row &* stride)).storeBytes(of: h, as: V.self)
        }
    }
}

/// Linear-before-reset GRU: per row z and r (input and hidden products together), and
/// the candidate's input part x·Whᵀ + Wbh and hidden part h·Rhᵀ + Rbh apart, since r
/// scales only the latter: 16 accumulators for four rows.
struct GRUCell: FusedCell {
    typealias V = SIMD16<Float>
    static var gates: Int { 3 }
    let resetBias: UnsafePointer<Float>

    /// Rbh of the tile's slice.
    @inline(always)
    func resetSlice(_ tile: Tile) -> V { Tile.load(UnsafeRawPointer(resetBias), tile.slice &* 64) }

    @inline(never)
    func four(_ tile: Tile, row: Int) {
        let z = tile.bias(0), r = tile.bias(1), n = tile.bias(2), m = resetSlice(tile)
        var z0 = z, r0 = r, x0 = n, h0 = m, z1 = z, r1 = r, x1 = n, h1 = m
        var z2 = z, r2 = r, x2 = n, h2 = m, z3 = z, r3 = r, x3 = n, h3 = m
        var w = tile.panel
        /// z and r take every depth; the candidate's third weight goes to `c0`…`c3`.
        @inline(always) func accumulate(_ a0: UnsafePointer<Float>, _ stride: Int, count: Int,
                                        _ c0: inout V, _ c1: inout V, _ c2: inout V, _ c3: inout V) {
            let a1 = a0 + stride, a2 = a0 + 2 &* stride, a3 = a0 + 3 &* stride
            for k in 0 ..< count {
                let wz = Tile.load(w, 0), wr = Tile.load(w, 64), wn = Tile.load(w, 128)
                var v = V(repeating: a0[k])
                z0 = z0.addingProduct(v, wz); r0 = r0.addingProduct(v, wr); c0 = c0.addingProduct(v, wn)
                v = V(repeating: a1[k])
                z1 = z1.addingProduct(v, wz); r1 = r1.addingProduct(v, wr); c1 = c1.addingProduct(v, wn)
                v = V(repeating: a2[k])
                z2 = z2.addingProduct(v, wz); r2 = r2.addingProduct(v, wr); c2 = c2.addingProduct(v, wn)
                v = V(repeating: a3[k])
                z3 = z3.addingProduct(v, wz); r3 = r3.addingProduct(v, wr); c3 = c3.addingProduct(v, wn)
                w += 192
            }
        }
        accumulate(tile.x + row &* tile.xStride, tile.xStride, count: tile.inputSize, &x0, &x1, &x2, &x3)
        accumulate(tile.h + row &* tile.hidden, tile.hidden, count: tile.hidden, &h0, &h1, &h2, &h3)
        tile.store(z0, r0, x0, h0, slot: 0)
        tile.store(z1, r1, x1, h1, slot: 1)
        tile.store(z2, r2, x2, h2, slot: 2)
        tile.store(z3, r3, x3, h3, slot: 3)
    }

    /// One row, summed in the same order as `four` (see LSTMCell.one).
    @inline(never)
    func one(_ tile: Tile, row: Int, into slot: Int) {
        var z = tile.bias(0), r = tile.bias(1), x = tile.bias(2), n = resetSlice(tile)
        var w = tile.panel
        @inline(always) func accumulate(_ a: UnsafePointer<Float>, count: Int, _ candidate: inout V) {
            for k in 0 ..< count {
                let v = V(repeating: a[k])
                z = z.addingProduct(v, Tile.load(w, 0)); r = r.addingProduct(v, Tile.load(w, 64))
                candidate = candidate.addingProduct(v, Tile.load(w, 128))
                w += 192
            }
        }
        accumulate(tile.x + row &* tile.xStride, count: tile.inputSize, &x)
        accumulate(tile.h + row &* tile.hidden, count: tile.hidden, &n)
        tile.store(z, r, x, n, slot: slot)
    }

    @inline(never)
    func pair(_ tile: Tile, _ next: Tile, row: Int, into slot: Int) {
        var z = tile.bias(0), r = tile.bias(1), x = tile.bias(2), n = resetSlice(tile)
        var z1 = next.bias(0), r1 = next.bias(1), x1 = next.bias(2), n1 = resetSlice(next)
        var w = tile.panel, w1 = next.panel
        @inline(always) func accumulate(_ a: UnsafePointer<Float>, count: Int, _ candidate: inout V, _ candidate1: inout V) {
            for k in 0 ..< count {
                let v = V(repeating: a[k])
                z = z.addingProduct(v, Tile.load(w, 0)); r = r.addingProduct(v, Tile.load(w, 64))
                candidate = candidate.addingProduct(v, Tile.load(w, 128))
                z1 = z1.addingProduct(v, Tile.load(w1, 0)); r1 = r1.addingProduct(v, Tile.load(w1, 64))
                candidate1 = candidate1.addingProduct(v, Tile.load(w1, 128))
                w += 192; w1 += 192
            }
        }
        accumulate(tile.x + row &* tile.xStride, count: tile.inputSize, &x, &x1)
        accumulate(tile.h + row &* tile.hidden, count: tile.hidden, &n, &n1)
        tile.store(z, r, x, n, slot: slot)
        tile.store(z1, r1, x1, n1, slot: slot &+ 1)
    }

    /// n = tanh(x_n + σ(r)·h_n) = tanh(x_n + h_n/R), R = 1 + e_r; then
    /// h' = (1 − z)·n + z·h = n + (h − n)/Z, Z = 1 + e_z: three divisions per cell, in two
    /// passes (n, then h').
    @inline(never)
    func update(_ tile: Tile, items: Int, first: Int, stride: Int, hNext: UnsafeMutablePointer<Float>, active: UnsafePointer<UInt8>?) {
        for row in 0 ..< items {
            if let active, active[row] == 0 { continue }
            let reset = GateMath.sigmoidDenominator(tile.value(slot: row, 1))
            let (tn, nDenominator) = GateMath.tanhParts(tile.value(slot: row, 2) + tile.value(slot: row, 3) / reset)
            tile.buffer.storeBytes(of: tn / nDenominator, toByteOffset: row &* 256 &+ 128, as: V.self)
        }
        for row in 0 ..< items {
            if let active, active[row] == 0 { continue }
            let n = tile.value(slot: row, 2)
            let update = GateMath.sigmoidDenominator(tile.value(slot: row, 0))
            let previous = UnsafeRawPointer(tile.h + (first &+ row &* stride)).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(hNext + (first &+ row &* stride)).storeBytes(of: n + (previous - n) / update, as: V.self)
        }
    }
}

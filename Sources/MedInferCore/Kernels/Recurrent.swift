/// LSTM and GRU cells. A layer runs in two parts: the input projection of every time
/// step at once (one GEMM, by the caller), then per step the recurrent product h·Rᵀ and
/// the gate non-linearities, fused here. ONNX gate orders: LSTM i, o, f, c; GRU z, r, h.

/// One direction of a recurrent layer's weights, in the layouts the kernels read.
/// Immutable; shared by every plan of a model through the `WeightCache`.
final class RecurrentWeights: @unchecked Sendable {
    enum Cell: Equatable {
        case lstm
        /// `linearBeforeReset`: r ⊙ (h·Rhᵀ + Rbh) (PyTorch, Keras reset_after) instead of
        /// (r ⊙ h)·Rhᵀ.
        case gru(linearBeforeReset: Bool)
    }

    let cell: Cell
    let hidden: Int
    let inputSize: Int
    var gateCount: Int { cell == .lstm ? 4 : 3 }
    var width: Int { gateCount * hidden }
    /// Wᵀ: [inputSize][width], the B operand of the input projection.
    let inputWeights: UnsafeMutablePointer<Float>
    /// Rᵀ: [hidden][width] row-major (the packed GEMM of a batch reads it).
    let recurrentWeights: UnsafeMutablePointer<Float>
    /// Rᵀ again in 64-column panels, each [hidden][64] contiguous, so that one row's
    /// product streams through memory in order (`SmallRowsGemm`).
    let recurrentPanels: UnsafeMutablePointer<Float>
    /// Rᵀ's columns as packed GEMM B operands, for a batch's h·Rᵀ: those that multiply h
    /// directly (all, or z and r for a GRU without linear-before-reset, whose h columns
    /// multiply r⊙h: `packedResetColumns`).
    let packedRecurrent: PrepackedB
    let packedResetColumns: PrepackedB?
    /// Added to the input projection: Wb + Rb, except a linear-before-reset GRU's Rbh.
    let projectionBias: [Float]
    /// A linear-before-reset GRU's Rbh (added inside the reset product); else empty.
    let resetBias: [Float]
    /// LSTM peepholes Pi, Po, Pf ([3][hidden]), or empty.
    let peepholes: [Float]
    /// [Wᵀ; Rᵀ] as [hidden/16][inputSize + hidden][gates][16] for the fused AVX-512 steps
    /// (`lstmStep16`, `gruStep16`): nil unless the CPU has AVX-512, hidden is a multiple of
    /// 16 and the cell is an LSTM or a linear-before-reset GRU.
    let fusedSlices: UnsafeMutablePointer<Float>?

    /// `w` is [width][inputSize], `r` [width][hidden], `bias` [2·width] (Wb then Rb) or
    /// nil, `peepholes` [3·hidden] or nil, all in ONNX gate order.
    init(cell: Cell, hidden: Int, inputSize: Int, w: UnsafePointer<Float>, r: UnsafePointer<Float>,
         bias: UnsafePointer<Float>?, peepholes: UnsafePointer<Float>?) {
        self.cell = cell
        self.hidden = hidden
        self.inputSize = inputSize
        let width = (cell == .lstm ? 4 : 3) * hidden
        inputWeights = .allocate(capacity: max(inputSize * width, 1))
        recurrentWeights = .allocate(capacity: max(hidden * width, 1))
        for j in 0 ..< width {
            for k in 0 ..< inputSize { inputWeights[k * width + j] = w[j * inputSize + k] }
            for k in 0 ..< hidden { recurrentWeights[k * width + j] = r[j * hidden + k] }
        }
        recurrentPanels = SmallRowsGemm.panels(recurrentWeights, depth: hidden, width: width)
        let splitReset = cell == .gru(linearBeforeReset: false)
        packedRecurrent = PrepackedB(depth: hidden, width: splitReset ? 2 * hidden : width, source: recurrentWeights, ldb: width)
        packedResetColumns = splitReset
            ? PrepackedB(depth: hidden, width: hidden, source: recurrentWeights + 2 * hidden, ldb: width)
            : nil
        var projection = [Float](repeating: 0, count: width)
        var reset: [Float] = []
        if let bias {
            for j in 0 ..< width { projection[j] = bias[j] + bias[width + j] }
            if cell == .gru(linearBeforeReset: true) {
                reset = (0 ..< hidden).map { bias[width + 2 * hidden + $0] }
                for j in 0 ..< hidden { projection[2 * hidden + j] = bias[2 * hidden + j] }
            }
        } else if cell == .gru(linearBeforeReset: true) {
            reset = [Float](repeating: 0, count: hidden)
        }
        projectionBias = projection
        resetBias = reset
        self.peepholes = peepholes.map { Array(UnsafeBufferPointer(start: $0, count: 3 * hidden)) } ?? []
        let fusable = cell == .lstm || cell == .gru(linearBeforeReset: true)
        if fusable && hidden % 16 == 0 && KernelDispatch.instructionSet == .avx512 {
            let depth = inputSize + hidden, gates = width / hidden
            let slices = UnsafeMutablePointer<Float>.allocate(capacity: depth * width)
            for s in 0 ..< hidden / 16 {
                for k in 0 ..< depth {
                    let row = k < inputSize ? inputWeights + k * width : recurrentWeights + (k - inputSize) * width
                    for gate in 0 ..< gates {
                        (slices + ((s * depth + k) * gates + gate) * 16).initialize(from: row + gate * hidden + s * 16, count: 16)
                    }
                }
            }
            fusedSlices = slices
        } else {
            fusedSlices = nil
        }
    }

    deinit {
        inputWeights.deallocate()
        recurrentWeights.deallocate()
        recurrentPanels.deallocate()
        fusedSlices?.deallocate()
    }
}

enum Recurrent {
    typealias Vector = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }

    @inline(__always)
    static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self) }

    @inline(__always)
    static func clamp(_ v: Vector, _ limit: Float) -> Vector {
        let a = v.replacing(with: limit, where: v .> limit)
        return a.replacing(with: -limit, where: a .< -limit)
    }

    /// One LSTM step for one batch row: pre-activations = projection + recurrent (each
    /// [4·hidden], gate order i, o, f, c); updates c and writes h. `clip` bounds the
    /// pre-activations (ONNX `clip`), infinity for none.
    static func lstmCell(hidden: Int, projection: UnsafePointer<Float>, recurrent: UnsafePointer<Float>,
                         peepholes: UnsafePointer<Float>?, clip: Float,
                         c: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>) {
        let hasClip = clip.isFinite
        var j = 0
        while j + 8 <= hidden {
            var i = load(projection + j) + load(recurrent + j)
            var o = load(projection + hidden + j) + load(recurrent + hidden + j)
            var f = load(projection + 2 * hidden + j) + load(recurrent + 2 * hidden + j)
            var g = load(projection + 3 * hidden + j) + load(recurrent + 3 * hidden + j)
            let cPrevious = load(c + j)
            if let p = peepholes {
                i = i.addingProduct(load(p + j), cPrevious)
                f = f.addingProduct(load(p + 2 * hidden + j), cPrevious)
            }
            if hasClip { i = clamp(i, clip); f = clamp(f, clip); g = clamp(g, clip) }
            let cNew = VectorMath.sigmoid(f) * cPrevious + VectorMath.sigmoid(i) * VectorMath.tanh(g)
            if let p = peepholes { o = o.addingProduct(load(p + hidden + j), cNew) }
            if hasClip { o = clamp(o, clip) }
            store(cNew, c + j)
            store(VectorMath.sigmoid(o) * VectorMath.tanh(cNew), h + j)
            j += 8
        }
        while j < hidden {
            var i = projection[j] + recurrent[j]
            var o = projection[hidden + j] + recurrent[hidden + j]
            var f = projection[2 * hidden + j] + recurrent[2 * hidden + j]
            var g = projection[3 * hidden + j] + recurrent[3 * hidden + j]
            let cPrevious = c[j]
            if let p = peepholes { i += p[j] * cPrevious; f += p[2 * hidden + j] * cPrevious }
            if hasClip { i = clampScalar(i, clip); f = clampScalar(f, clip); g = clampScalar(g, clip) }
            let cNew = VectorMath.sigmoid(f) * cPrevious + VectorMath.sigmoid(i) * VectorMath.tanh(g)
            if let p = peepholes { o += p[hidden + j] * cNew }
            if hasClip { o = clampScalar(o, clip) }
            c[j] = cNew
            h[j] = VectorMath.sigmoid(o) * VectorMath.tanh(cNew)
            j += 1
        }
    }

    @inline(__always)
    static func clampScalar(_ x: Float, _ limit: Float) -> Float { x > limit ? limit : (x < -limit ? -limit : x) }

    /// The update and reset gates of a GRU step for one row: z and r (written to `gates`
    /// [0..<2·hidden]) from projection + recurrent.
    static func gruGates(hidden: Int, projection: UnsafePointer<Float>, recurrent: UnsafePointer<Float>, clip: Float,
                         gates: UnsafeMutablePointer<Float>) {
        let count = 2 * hidden
        let hasClip = clip.isFinite
        var j = 0
        while j + 8 <= count {
            var x = load(projection + j) + load(recurrent + j)
            if hasClip { x = clamp(x, clip) }
            store(VectorMath.sigmoid(x), gates + j)
            j += 8
        }
        while j < count {
            var x = projection[j] + recurrent[j]
            if hasClip { x = clampScalar(x, clip) }
            gates[j] = VectorMath.sigmoid(x)
            j += 1
        }
    }

    /// The rest of a GRU step: the candidate from the projection's h part and
    /// `hiddenProduct` (linear before reset: h·Rhᵀ, scaled here by r after adding Rbh;
    /// otherwise (r⊙h)·Rhᵀ, used as is), then h = (1 − z)⊙candidate + z⊙h.
    static func gruUpdate(hidden: Int, projection: UnsafePointer<Float>, gates: UnsafePointer<Float>,
                          hiddenProduct: UnsafePointer<Float>, resetBias: UnsafePointer<Float>?, clip: Float,
                          h: UnsafeMutablePointer<Float>) {
        let hasClip = clip.isFinite
        let hProjection = projection + 2 * hidden
        var j = 0
        while j + 8 <= hidden {
            var recurrent = load(hiddenProduct + j)
            if let rb = resetBias { recurrent = load(gates + hidden + j) * (recurrent + load(rb + j)) }
            var x = load(hProjection + j) + recurrent
            if hasClip { x = clamp(x, clip) }
            let candidate = VectorMath.tanh(x)
            let z = load(gates + j)
            store(candidate + z * (load(h + j) - candidate), h + j)
            j += 8
        }
        while j < hidden {
            var recurrent = hiddenProduct[j]
            if let rb = resetBias { recurrent = gates[hidden + j] * (recurrent + rb[j]) }
            var x = hProjection[j] + recurrent
            if hasClip { x = clampScalar(x, clip) }
            let candidate = VectorMath.tanh(x)
            let z = gates[j]
            h[j] = candidate + z * (h[j] - candidate)
            j += 1
        }
    }
}

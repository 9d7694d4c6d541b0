/// Gemm and MatMul. A MatMul whose only consumer adds a bias vector (the MatMul+Add
/// that exporters write for a dense layer), and an activation after either, are fused
/// into the product's epilogue.

/// Batched products: for each batch entry, C = alpha·op(A)·op(B) + biases.
final class MatMulStep: NetworkStep {
    let a: Int, b: Int, out: Int
    let m: Int, n: Int, k: Int
    let transA: Bool, transB: Bool
    /// Element offsets of A, B and C for each batch entry.
    let batchOffsets: [(a: Int, b: Int, c: Int)]
    let alpha: Float
    let rowBias: [Float]?, columnBias: [Float]?
    let activation: Activation
    /// The plan's packing memory (a product allocating its own would cost more than a
    /// small layer's arithmetic).
    let workspace: GemmWorkspace

    init(a: Int, b: Int, out: Int, m: Int, n: Int, k: Int, transA: Bool, transB: Bool,
         batchOffsets: [(a: Int, b: Int, c: Int)], alpha: Float, rowBias: [Float]?, columnBias: [Float]?,
         activation: Activation, workspace: GemmWorkspace) {
        self.workspace = workspace
        self.a = a; self.b = b; self.out = out; self.m = m; self.n = n; self.k = k
        self.transA = transA; self.transB = transB; self.batchOffsets = batchOffsets
        self.alpha = alpha; self.rowBias = rowBias; self.columnBias = columnBias; self.activation = activation
    }

    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        let pa = slots[a], pb = slots[b], pc = slots[out]
        if m < 6, !transA, !transB, alpha == 1, rowBias == nil {
            // A row or a few (a dense layer on one sample): no packing.
            columnBias.withOptionalPointer { columnBias in
                for offsets in batchOffsets {
                    SmallRowsGemm.multiply(rows: m, a: pa + offsets.a, lda: k, depth: k, b: pb + offsets.b, ldb: n, panels: nil,
                                           columns: 0 ..< n, bias: columnBias, out: pc + offsets.c, ldo: n)
                    activation.apply(pc + offsets.c, count: m * n)
                }
            }
            return
        }
        if n <= FewColumnsGemm.maxColumns, !transA, !transB, alpha == 1, rowBias == nil {
            // A head with one or a few outputs over a batch: dot products, no packing.
            columnBias.withOptionalPointer { columnBias in
                for offsets in batchOffsets {
                    FewColumnsGemm.multiply(rows: m, columns: n, depth: k, a: pa + offsets.a, lda: k, b: pb + offsets.b, ldb: n,
                                            bias: columnBias, out: pc + offsets.c, ldo: n)
                    activation.apply(pc + offsets.c, count: m * n)
                }
            }
            return
        }
        rowBias.withOptionalPointer { rowBias in
            columnBias.withOptionalPointer { columnBias in
                let epilogue = Gemm.Epilogue(alpha: alpha, rowBias: rowBias, columnBias: columnBias, activation: activation)
                for offsets in batchOffsets {
                    let matrixA = StridedMatrixA(base: pa + offsets.a, rowStride: transA ? 1 : k, colStride: transA ? m : 1)
                    let matrixB = StridedMatrixB(base: pb + offsets.b, rowStride: transB ? 1 : n, colStride: transB ? k : 1)
                    Gemm.multiply(m: m, n: n, k: k, a: matrixA, b: matrixB, c: pc + offsets.c, ldc: n, epilogue: epilogue,
                                  workspace: workspace)
                }
            }
        }
    }
}

extension Operators {
    static func gemm(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0), y = try c.input(1)
        guard x.shape.count == 2, y.shape.count == 2 else {
            throw .shapeMismatch("Gemm needs 2-D inputs, got \(x.shape) and \(y.shape)")
        }
        let transA = try c.int("transA", 0) != 0, transB = try c.int("transB", 0) != 0
        let m = transA ? x.shape[1] : x.shape[0], k = transA ? x.shape[0] : x.shape[1]
        let kb = transB ? y.shape[1] : y.shape[0], n = transB ? y.shape[0] : y.shape[1]
        guard k == kb else { throw .shapeMismatch("Gemm of \(x.shape)\(transA ? "ᵀ" : "") and \(y.shape)\(transB ? "ᵀ" : "")") }
        let alpha = try c.float("alpha", 1), beta = try c.float("beta", 1)
        var rowBias: [Float]?, columnBias: [Float]?
        var fullBias: PlanValue?
        if let bias = c.optionalInput(2), beta != 0 {
            if let kc = bias.constant, let kind = biasKind(kc.shape, m: m, n: n) {
                let values = kc.floatValues.map { $0 * beta }
                switch kind {
                case .scalar: columnBias = [Float](repeating: values[0], count: n)
                case .column: columnBias = values
                case .row: rowBias = values
                }
            } else {
                guard BroadcastLayout.shape(bias.shape, [m, n]) == [m, n] else {
                    throw .shapeMismatch("bias \(bias.shape) does not broadcast to [\(m), \(n)]")
                }
                fullBias = bias
            }
        }
        let activation = fullBias == nil && !c.allInputsConstant ? try c.fuseActivation(after: c.node.outputs[0])?.0 : nil
        let a = try c.builder.tensor(x), b = try c.builder.tensor(y)
        let out = try c.newTensor([m, n])
        var result = try c.emit(MatMulStep(a: a.slot, b: b.slot, out: out.slot, m: m, n: n, k: k, transA: transA, transB: transB,
                                       batchOffsets: [(0, 0, 0)], alpha: alpha, rowBias: rowBias, columnBias: columnBias,
                                       activation: activation ?? .identity, workspace: c.builder.kernelScratch),
                            reading: [a, b], writing: [out])
        if let fullBias {
            var scaled = fullBias
            if beta != 1 { scaled = try binaryValues(c, fullBias, .constant(ConstTensor(shape: [], floats: [beta])), .mul)[0] }
            result = try binaryValues(c, result[0], scaled, .add)
        }
        return result
    }

    enum BiasKind { case scalar, column, row }

    static func biasKind(_ shape: [Int], m: Int, n: Int) -> BiasKind? {
        let count = shape.reduce(1, *)
        if count == 1 && shape.count <= 2 { return .scalar }
        if (shape == [n] || shape == [1, n]) { return .column }
        if shape == [m, 1] { return .row }
        return nil
    }

    static func matMul(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0), y = try c.input(1)
        guard !x.shape.isEmpty, !y.shape.isEmpty else { throw .shapeMismatch("MatMul of a scalar") }
        // 1-D operands: a row vector on the left, a column vector on the right.
        let aShape = x.shape.count == 1 ? [1, x.shape[0]] : x.shape
        let bShape = y.shape.count == 1 ? [y.shape[0], 1] : y.shape
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
        let kb = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
        guard k == kb else { throw .shapeMismatch("MatMul of \(x.shape) and \(y.shape)") }
        let batchA = Array(aShape.dropLast(2)), batchB = Array(bShape.dropLast(2))
        guard let batch = BroadcastLayout.shape(batchA, batchB) else {
            throw .shapeMismatch("batch dimensions of \(x.shape) and \(y.shape) do not broadcast")
        }
        var outShape = batch + [m, n]
        if x.shape.count == 1 { outShape.remove(at: outShape.count - 2) }
        if y.shape.count == 1 { outShape.removeLast() }

        var offsets: [(a: Int, b: Int, c: Int)]
        var rows = m
        if batchB.reduce(1, *) == 1 && batchA.reduce(1, *) == batch.reduce(1, *) {
            // B is one matrix: fold A's batch into its rows (a dense layer on [N, ..., K]).
            rows = m * batchA.reduce(1, *)
            offsets = [(0, 0, 0)]
        } else {
            let mapA = try broadcastMap(batchA, batch, charging: c.builder), mapB = try broadcastMap(batchB, batch, charging: c.builder)
            offsets = (0 ..< mapA.count).map { (mapA[$0] * m * k, mapB[$0] * k * n, $0 * m * n) }
        }
        // Fuse a following bias add (and activation) when B is one matrix.
        var columnBias: [Float]?
        var lastOutput = c.node.outputs[0]
        if offsets.count == 1, !c.allInputsConstant,
           let (index, add) = c.planner.soleConsumer(of: lastOutput), add.opType == "Add", add.inputs.count == 2 {
            let other = add.inputs[0] == lastOutput ? add.inputs[1] : add.inputs[0]
            if other != lastOutput, let bias = c.planner.values[other]?.constant,
               bias.count == n, bias.shape.last == n || n == 1,
               BroadcastLayout.shape(outShape, bias.shape) == outShape {
                columnBias = bias.floatValues
                c.planner.markFused(index, outputOf: lastOutput)
                lastOutput = add.outputs[0]
            }
        }
        let activation = c.allInputsConstant ? nil : try c.fuseActivation(after: lastOutput)?.0
        let a = try c.builder.tensor(x), b = try c.builder.tensor(y)
        let out = try c.newTensor(outShape)
        return try c.emit(MatMulStep(a: a.slot, b: b.slot, out: out.slot, m: rows, n: n, k: k, transA: false, transB: false,
                                 batchOffsets: offsets, alpha: 1, rowBias: nil, columnBias: columnBias,
                                 activation: activation ?? .identity, workspace: c.builder.kernelScratch),
                      reading: [a, b], writing: [out])
    }
}

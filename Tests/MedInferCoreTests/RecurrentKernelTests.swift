import Foundation
import Testing
@testable import MedInferCore
@testable import MedInferKernelsAVX512

/// The gate functions against libm, and the fused AVX-512 LSTM and GRU steps against the
/// unfused cells (projection, h·Rᵀ, `Recurrent.lstmCell` / `gruGates` + `gruUpdate`) on
/// awkward batch sizes, with ended rows.
@Suite struct RecurrentKernelTests {
    static let samples: [Float] = (0 ... 4000).map { Float($0 - 2000) / 50 } + [-200, -88.5, 88.5, 200, .infinity, -.infinity]

    @Test func sigmoidAndTanhAreWithinOneMillionthOfLibm() {
        for x in Self.samples {
            let sigmoid = 1 / (1 + Foundation.exp(-Double(x))), tanh = Foundation.tanh(Double(x))
            #expect(abs(Double(VectorMath.sigmoid(x)) - sigmoid) <= 1e-6, "sigmoid(\(x))")
            #expect(abs(Double(VectorMath.tanh(x)) - tanh) <= 1e-6, "tanh(\(x))")
        }
        #expect(VectorMath.sigmoid(Float.nan).isNaN && VectorMath.tanh(Float.nan).isNaN)
    }

    /// The fused cells' σ and tanh (fractions over the gate exp), 16 lanes at a time.
    @Test func fusedGateFunctionsAreWithinTwoTenMillionthsOfLibm() throws {
        try #require(KernelDispatch.instructionSet == .avx512, "needs AVX-512")
        let samples = Self.samples + [Float](repeating: .nan, count: 16 - Self.samples.count % 16)   // whole vectors, NaN last
        for start in stride(from: 0, to: samples.count, by: 16) {
            let lanes = SIMD16<Float>(samples[start ..< start + 16])
            let sigmoid = 1 / GateMath.sigmoidDenominator(lanes)
            let (numerator, denominator) = GateMath.tanhParts(lanes)
            let tanh = numerator / denominator
            for lane in 0 ..< 16 {
                let x = Double(lanes[lane])
                if x.isNaN {
                    #expect(sigmoid[lane].isNaN && tanh[lane].isNaN)
                    continue
                }
                #expect(abs(Double(sigmoid[lane]) - 1 / (1 + Foundation.exp(-x))) <= 2e-7, "sigmoid(\(x))")
                #expect(abs(Double(tanh[lane]) - Foundation.tanh(x)) <= 2e-7, "tanh(\(x))")
            }
        }
    }

    struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        }
        mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0 ..< n).map { _ in next() * scale } }

        /// Random weights of a cell (recurrent ones halved, so that h stays in range).
        mutating func weights(_ cell: RecurrentWeights.Cell, hidden: Int, inputSize: Int) -> RecurrentWeights {
            let width = (cell == .lstm ? 4 : 3) * hidden
            let w = array(width * inputSize), r = array(width * hidden, scale: 0.5), bias = array(2 * width)
            return w.withUnsafeBufferPointer { wp in r.withUnsafeBufferPointer { rp in bias.withUnsafeBufferPointer { bp in
                RecurrentWeights(cell: cell, hidden: hidden, inputSize: inputSize, w: wp.baseAddress!, r: rp.baseAddress!,
                                 bias: bp.baseAddress!, peepholes: nil)
            } } }
        }
    }

    @Test(arguments: [(1, 16, 3), (4, 32, 8), (7, 16, 1), (9, 48, 5)])
    func fusedStepMatchesTheUnfusedCell(rows: Int, hidden: Int, inputSize: Int) throws {
        try #require(KernelDispatch.instructionSet == .avx512, "needs AVX-512")
        var g = Generator(state: UInt64(rows * 1000 + hidden))
        let width = 4 * hidden
        let weights = g.weights(.lstm, hidden: hidden, inputSize: inputSize)
        let slices = try #require(weights.fusedSlices)
        // Inputs of 3 rows per row (stride), large values included to reach saturation.
        let xStride = 3 * inputSize
        let x = g.array(rows * xStride, scale: 4), h = g.array(rows * hidden), c0 = g.array(rows * hidden, scale: 3)
        let active: [UInt8] = (0 ..< rows).map { $0 % 3 == 2 ? 0 : 1 }

        var expectedC = c0, expectedH = h
        for b in 0 ..< rows where active[b] != 0 {
            var projection = weights.projectionBias, recurrent = [Float](repeating: 0, count: width)
            for j in 0 ..< width {
                for k in 0 ..< inputSize { projection[j] += x[b * xStride + k] * weights.inputWeights[k * width + j] }
                for k in 0 ..< hidden { recurrent[j] += h[b * hidden + k] * weights.recurrentWeights[k * width + j] }
            }
            expectedC.withUnsafeMutableBufferPointer { cp in expectedH.withUnsafeMutableBufferPointer { hp in
                Recurrent.lstmCell(hidden: hidden, projection: projection, recurrent: recurrent, peepholes: nil, clip: .infinity,
                                   c: cp.baseAddress! + b * hidden, h: hp.baseAddress! + b * hidden)
            } }
        }

        var c = c0, hNext = [Float](repeating: .nan, count: rows * hidden + 1)
        hNext[rows * hidden] = 12345
        weights.projectionBias.withUnsafeBufferPointer { bp in
            lstmStep16(rows: rows, inputSize: inputSize, hidden: hidden, x: x, xStride: xStride, h: h, slices: slices,
                       bias: bp.baseAddress!, c: &c, hNext: &hNext, active: active)
        }
        for i in 0 ..< rows * hidden {
            #expect(abs(c[i] - expectedC[i]) <= 2e-6 * max(1, abs(expectedC[i])), "c[\(i)]")
            #expect(abs(hNext[i] - expectedH[i]) <= 2e-6, "h[\(i)]")
        }
        #expect(hNext[rows * hidden] == 12345, "wrote past hNext")
        // Bit for bit the same when each row is stepped alone (a row's place in the batch
        // decides whether a four-row tile or the one-row path computes it).
        for b in 0 ..< rows where active[b] != 0 {
            var cAlone = Array(c0[(b * hidden) ..< ((b + 1) * hidden)]), hAlone = [Float](repeating: .nan, count: hidden)
            weights.projectionBias.withUnsafeBufferPointer { bp in
                lstmStep16(rows: 1, inputSize: inputSize, hidden: hidden, x: Array(x[(b * xStride)...]), xStride: xStride,
                           h: Array(h[(b * hidden)...]), slices: slices, bias: bp.baseAddress!, c: &cAlone, hNext: &hAlone, active: nil)
            }
            #expect(cAlone == Array(c[(b * hidden) ..< ((b + 1) * hidden)]) && hAlone == Array(hNext[(b * hidden) ..< ((b + 1) * hidden)]),
                    "row \(b) alone differs from row \(b) in a batch of \(rows)")
        }
    }

    @Test(arguments: [(1, 16, 3), (4, 32, 8), (6, 16, 1), (9, 48, 5)])
    func fusedGRUStepMatchesTheUnfusedCell(rows: Int, hidden: Int, inputSize: Int) throws {
        try #require(KernelDispatch.instructionSet == .avx512, "needs AVX-512")
        var g = Generator(state: UInt64(rows * 77 + hidden))
        let width = 3 * hidden
        let weights = g.weights(.gru(linearBeforeReset: true), hidden: hidden, inputSize: inputSize)
        let slices = try #require(weights.fusedSlices)
        let xStride = 2 * inputSize
        let x = g.array(rows * xStride, scale: 4), h = g.array(rows * hidden)
        let active: [UInt8] = (0 ..< rows).map { $0 % 4 == 1 ? 0 : 1 }

        var expected = h
        for b in 0 ..< rows where active[b] != 0 {
            var projection = weights.projectionBias, recurrent = [Float](repeating: 0, count: width)
            for j in 0 ..< width {
                for k in 0 ..< inputSize { projection[j] += x[b * xStride + k] * weights.inputWeights[k * width + j] }
                for k in 0 ..< hidden { recurrent[j] += h[b * hidden + k] * weights.recurrentWeights[k * width + j] }
            }
            var gates = [Float](repeating: 0, count: 2 * hidden)
            Recurrent.gruGates(hidden: hidden, projection: projection, recurrent: recurrent, clip: .infinity, gates: &gates)
            expected.withUnsafeMutableBufferPointer { hp in
                Recurrent.gruUpdate(hidden: hidden, projection: projection, gates: gates, hiddenProduct: Array(recurrent[(2 * hidden)...]),
                                    resetBias: weights.resetBias, clip: .infinity, h: hp.baseAddress! + b * hidden)
            }
        }

        var hNext = [Float](repeating: .nan, count: rows * hidden + 1)
        hNext[rows * hidden] = 12345
        weights.projectionBias.withUnsafeBufferPointer { bp in
            gruStep16(rows: rows, inputSize: inputSize, hidden: hidden, x: x, xStride: xStride, h: h, slices: slices,
                      bias: bp.baseAddress!, resetBias: weights.resetBias, hNext: &hNext, active: active)
        }
        for i in 0 ..< rows * hidden { #expect(abs(hNext[i] - expected[i]) <= 2e-6, "h[\(i)]") }
        #expect(hNext[rows * hidden] == 12345, "wrote past hNext")
    }
}

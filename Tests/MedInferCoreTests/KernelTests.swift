import Testing
@testable import MedInferCore

/// Each kernel against a plain reference implementation on awkward sizes (1, 7, 33, not
/// multiples of the vector width or the GEMM tile), on both GEMM paths (AVX-512 tile and
/// the AVX2 tile; on a CPU without AVX-512 only the latter can run).
@Suite(.serialized) struct KernelTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        }
        mutating func array(_ n: Int) -> [Float] { (0 ..< n).map { _ in next() } }
    }

    static var paths: [Bool] { KernelDispatch.instructionSet == .avx512 ? [true, false] : [false] }

    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * (1 + abs($1)) }
    }

    @Test func gemmMatchesNaiveProductOnOddSizes() {
        var g = Generator(state: 1)
        let sizes = [1, 7, 33]
        for wide in Self.paths {
            KernelDispatch.wideGemm = wide
            defer { KernelDispatch.wideGemm = KernelDispatch.instructionSet == .avx512 }
            for m in sizes + [6, 13] {
                for n in sizes + [16, 32, 48] {
                    for k in sizes + [300] {
                        let a = g.array(m * k), b = g.array(k * n), rowBias = g.array(m), colBias = g.array(n)
                        var reference = [Float](repeating: 0, count: m * n)
                        for i in 0 ..< m {
                            for j in 0 ..< n {
                                var s: Float = 0
                                for p in 0 ..< k { s += a[i * k + p] * b[p * n + j] }
                                reference[i * n + j] = max(0, 0.5 * s + rowBias[i] + colBias[j])
                            }
                        }
                        var c = [Float](repeating: .nan, count: m * n + 1)
                        c[m * n] = 12345
                        a.withUnsafeBufferPointer { pa in
                            b.withUnsafeBufferPointer { pb in
                                rowBias.withUnsafeBufferPointer { rb in
                                    colBias.withUnsafeBufferPointer { cb in
                                        c.withUnsafeMutableBufferPointer { pc in
                                            Gemm.multiply(m: m, n: n, k: k,
                                                          a: StridedMatrixA(base: pa.baseAddress!, rowStride: k, colStride: 1),
                                                          b: StridedMatrixB(base: pb.baseAddress!, rowStride: n, colStride: 1),
                                                          c: pc.baseAddress!, ldc: n,
                                                          epilogue: .init(alpha: 0.5, rowBias: rb.baseAddress, columnBias: cb.baseAddress,
                                                                          activation: .relu))
                                        }
                                    }
                                }
                            }
                        }
                        #expect(Self.close(Array(c[..<(m * n)]), reference), "m \(m) n \(n) k \(k) wide \(wide)")
                        #expect(c[m * n] == 12345, "wrote past C")
                    }
                }
            }
        }
    }

    /// Direct convolution by definition: NCHW, zero padding, groups, strides, dilations.
    static func referenceConv(_ x: [Float], _ w: [Float], _ bias: [Float], _ g: Conv2DGeometry) -> [Float] {
        var out = [Float](repeating: 0, count: g.outChannels * g.outHeight * g.outWidth)
        for oc in 0 ..< g.outChannels {
            let group = oc / g.outChannelsPerGroup
            for oy in 0 ..< g.outHeight {
                for ox in 0 ..< g.outWidth {
                    var s = bias[oc]
                    for ic in 0 ..< g.channelsPerGroup {
                        for ky in 0 ..< g.kernelH {
                            for kx in 0 ..< g.kernelW {
                                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                let c = group * g.channelsPerGroup + ic
                                s += x[(c * g.height + iy) * g.width + ix]
                                    * w[((oc * g.channelsPerGroup + ic) * g.kernelH + ky) * g.kernelW + kx]
                            }
                        }
                    }
                    out[(oc * g.outHeight + oy) * g.outWidth + ox] = s
                }
            }
        }
        return out
    }

    static func pool2x2(_ x: [Float], channels: Int, height: Int, width: Int) -> [Float] {
        let ph = height / 2, pw = width / 2
        var out = [Float](repeating: 0, count: channels * ph * pw)
        for c in 0 ..< channels {
            for y in 0 ..< ph {
                for xx in 0 ..< pw {
                    let at = { (dy: Int, dx: Int) in x[(c * height + 2 * y + dy) * width + 2 * xx + dx] }
                    out[(c * ph + y) * pw + xx] = max(max(at(0, 0), at(0, 1)), max(at(1, 0), at(1, 1)))
                }
            }
        }
        return out
    }

    @Test func convolutionsMatchTheDefinition() {
        var gen = Generator(state: 2)
        for wide in Self.paths {
            KernelDispatch.wideGemm = wide
            defer { KernelDispatch.wideGemm = KernelDispatch.instructionSet == .avx512 }
            for (channels, outChannels, h, w, pad) in [(3, 7, 9, 13, 0), (8, 13, 7, 33, 1), (9, 1, 14, 5, 1), (1, 6, 4, 4, 0), (16, 33, 11, 10, 2)] {
                let g = Conv2DGeometry(channels: channels, height: h, width: w, outChannels: outChannels, groups: 1,
                                       kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, dilationH: 1, dilationW: 1,
                                       padTop: pad, padLeft: pad, outHeight: h + 2 * pad - 2, outWidth: w + 2 * pad - 2)
                let x = gen.array(channels * h * w), weights = gen.array(outChannels * channels * 9), bias = gen.array(outChannels)
                let expected = Self.referenceConv(x, weights, bias, g).map { max(0, $0) }
                let pooled = Self.pool2x2(expected, channels: outChannels, height: g.outHeight, width: g.outWidth)
                for pool in [false, true] {
                    let count = pool ? pooled.count : expected.count
                    var direct = [Float](repeating: .nan, count: count)
                    var winograd = [Float](repeating: .nan, count: count)
                    weights.withUnsafeBufferPointer { pw in
                        x.withUnsafeBufferPointer { px in
                            let d = Conv2DKernel(geometry: g, weights: Conv2DKernel.pack(pw.baseAddress!, geometry: g),
                                                 bias: bias, activation: .relu, poolAfter: pool)
                            direct.withUnsafeMutableBufferPointer { d.run(input: px.baseAddress!, output: $0.baseAddress!, batch: 1) }
                            if WinogradConv3x3.applies(to: g) {
                                let wk = WinogradConv3x3(geometry: g, weights: .init(pw.baseAddress!, outChannels: outChannels, channels: channels)!,
                                                         bias: bias, activation: .relu, poolAfter: pool)
                                winograd.withUnsafeMutableBufferPointer { wk.run(input: px.baseAddress!, output: $0.baseAddress!, batch: 1) }
                            } else {
                                winograd = pool ? pooled : expected
                            }
                        }
                    }
                    let want = pool ? pooled : expected
                    #expect(Self.close(direct, want), "direct \(channels)->\(outChannels) \(h)x\(w) pad \(pad) pool \(pool) wide \(wide)")
                    // Winograd's transforms add rounding: checked to 1e-4 relative.
                    #expect(Self.close(winograd, want, tolerance: 1e-4), "winograd \(channels)->\(outChannels) \(h)x\(w) pad \(pad) pool \(pool) wide \(wide)")
                }
            }
        }
    }

    /// A plan's Winograd layers share one buffer for their zero-bordered inputs: whatever
    /// another layer (or garbage) left there must not reach a result.
    @Test func winogradLayersSharingTheirInputBufferMatchFreshOnes() {
        var gen = Generator(state: 5)
        let shared = GemmWorkspace()
        let dirty = shared.reserve(1 << 16)
        dirty.update(repeating: .nan, count: 1 << 16)
        let layers = [(3, 7, 9, 13, 0), (8, 13, 7, 33, 1), (16, 33, 11, 10, 2), (4, 6, 30, 5, 1), (3, 7, 9, 13, 0)]
        for (channels, outChannels, h, w, pad) in layers {
            let g = Conv2DGeometry(channels: channels, height: h, width: w, outChannels: outChannels, groups: 1,
                                   kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, dilationH: 1, dilationW: 1,
                                   padTop: pad, padLeft: pad, outHeight: h + 2 * pad - 2, outWidth: w + 2 * pad - 2)
            let x = gen.array(channels * h * w), weights = gen.array(outChannels * channels * 9), bias = gen.array(outChannels)
            for pool in [false, true] {
                let count = outChannels * (pool ? (g.outHeight / 2) * (g.outWidth / 2) : g.outHeight * g.outWidth)
                var fresh = [Float](repeating: .nan, count: count), reused = fresh
                weights.withUnsafeBufferPointer { pw in
                    x.withUnsafeBufferPointer { px in
                        let transformed = WinogradConv3x3.Weights(pw.baseAddress!, outChannels: outChannels, channels: channels)!
                        let alone = WinogradConv3x3(geometry: g, weights: transformed, bias: bias, activation: .relu, poolAfter: pool)
                        let sharing = WinogradConv3x3(geometry: g, weights: transformed, bias: bias, activation: .relu,
                                                      poolAfter: pool, paddedInputs: shared)
                        fresh.withUnsafeMutableBufferPointer { alone.run(input: px.baseAddress!, output: $0.baseAddress!, batch: 1) }
                        reused.withUnsafeMutableBufferPointer { sharing.run(input: px.baseAddress!, output: $0.baseAddress!, batch: 1) }
                    }
                }
                let differing = zip(fresh, reused).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "\(channels)->\(outChannels) \(h)x\(w) pad \(pad) pool \(pool): \(differing) values differ")
            }
        }
    }

    @Test func stridedGroupedDilatedConvolution() {
        var gen = Generator(state: 3)
        let g = Conv2DGeometry(channels: 6, height: 11, width: 9, outChannels: 4, groups: 2, kernelH: 3, kernelW: 2,
                               strideH: 2, strideW: 3, dilationH: 2, dilationW: 1, padTop: 1, padLeft: 2,
                               outHeight: (11 + 1 + 1 - 5) / 2 + 1, outWidth: (9 + 2 + 0 - 2) / 3 + 1)
        let x = gen.array(6 * 11 * 9), w = gen.array(4 * 3 * 3 * 2), bias = gen.array(4)
        let expected = Self.referenceConv(x, w, bias, g)
        var got = [Float](repeating: .nan, count: expected.count)
        w.withUnsafeBufferPointer { pw in
            let k = Conv2DKernel(geometry: g, weights: Conv2DKernel.pack(pw.baseAddress!, geometry: g), bias: bias, activation: .identity)
            x.withUnsafeBufferPointer { px in got.withUnsafeMutableBufferPointer { k.run(input: px.baseAddress!, output: $0.baseAddress!, batch: 1) } }
        }
        #expect(Self.close(got, expected))
    }

    @Test func fewColumnsGemmMatchesNaiveProduct() {
        var g = Generator(state: 9)
        for rows in [1, 7, 33] {
            for columns in 1 ... FewColumnsGemm.maxColumns {
                for depth in [1, 7, 15, 16, 33, 64] {
                    for withBias in [false, true] {
                        let lda = depth + 3, ldo = columns + 2   // padded rows: strides are honoured
                        let a = g.array(rows * lda), b = g.array(depth * columns), bias = g.array(columns)
                        var expected = [Float](repeating: .nan, count: rows * ldo + 1)
                        for i in 0 ..< rows {
                            for j in 0 ..< columns {
                                var sum: Double = withBias ? Double(bias[j]) : 0
                                for k in 0 ..< depth { sum += Double(a[i * lda + k]) * Double(b[k * columns + j]) }
                                expected[i * ldo + j] = Float(sum)
                            }
                        }
                        var out = [Float](repeating: .nan, count: rows * ldo + 1)
                        out[rows * ldo] = 12345
                        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in bias.withUnsafeBufferPointer { pbias in
                            out.withUnsafeMutableBufferPointer { po in
                                FewColumnsGemm.multiply(rows: rows, columns: columns, depth: depth, a: pa.baseAddress!, lda: lda,
                                                        b: pb.baseAddress!, ldb: columns, bias: withBias ? pbias.baseAddress : nil,
                                                        out: po.baseAddress!, ldo: ldo)
                            }
                        } } }
                        for i in 0 ..< rows {
                            for j in 0 ..< columns {
                                #expect(abs(out[i * ldo + j] - expected[i * ldo + j]) <= 1e-5 * (1 + abs(expected[i * ldo + j])),
                                        "rows \(rows) columns \(columns) depth \(depth) [\(i)][\(j)]")
                            }
                            for j in columns ..< ldo where i * ldo + j < rows * ldo { #expect(out[i * ldo + j].isNaN, "wrote a padding column") }
                        }
                        #expect(out[rows * ldo] == 12345, "wrote past the output")
                    }
                }
            }
        }
    }

    @Test func transposeMatchesIndexArithmetic() {
        var gen = Generator(state: 4)
        for (shape, perm) in [([7, 33], [1, 0]), ([1, 5, 7, 3], [0, 3, 1, 2]), ([2, 3, 4, 5], [3, 1, 0, 2]), ([33, 1, 7], [2, 0, 1]),
                              ([7, 33, 9], [1, 0, 2]), ([3, 5, 2, 8], [2, 0, 1, 3])] {   // last two: the last axis stays
            let x = gen.array(shape.reduce(1, *))
            let outShape = perm.map { shape[$0] }
            var expected = [Float](repeating: 0, count: x.count)
            let inStrides = rowMajorStrides(shape), outStrides = rowMajorStrides(outShape)
            for i in 0 ..< x.count {
                var rest = i, source = 0
                for a in 0 ..< outShape.count {
                    let index = rest / outStrides[a]
                    rest %= outStrides[a]
                    source += index * inStrides[perm[a]]
                }
                expected[i] = x[source]
            }
            var got = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { px in got.withUnsafeMutableBufferPointer { Transpose.run(px.baseAddress!, $0.baseAddress!, shape: shape, permutation: perm) } }
            #expect(got == expected, "\(shape) \(perm)")
        }
    }

    @Test func broadcastingMatchesPerElementIndexing() throws {
        var gen = Generator(state: 5)
        for (a, b) in [([2, 3, 4, 5], [4, 1]), ([7], [33, 1]), ([1, 3, 1, 5], [2, 1, 4, 1]), ([33], [33]), ([], [7, 1]),
                       ([7, 5, 9], [9]), ([33, 9], [33, 1]), ([9], [7, 33, 9])] {   // last three: one outer axis
            let out = BroadcastLayout.shape(a, b)!
            let x = gen.array(a.reduce(1, *)), y = gen.array(b.reduce(1, *))
            let planning = PlanBuilder(modelBytes: 0)
            let mx = try Operators.broadcastMap(a, out, charging: planning), my = try Operators.broadcastMap(b, out, charging: planning)
            let expected = (0 ..< mx.count).map { x[mx[$0]] - y[my[$0]] }
            var got = [Float](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { px in y.withUnsafeBufferPointer { py in got.withUnsafeMutableBufferPointer {
                Elementwise.binary(.sub, px.baseAddress!, py.baseAddress!, $0.baseAddress!, BroadcastLayout(a: a, b: b, out: out))
            } } }
            #expect(got == expected, "\(a) - \(b)")
        }
    }

    @Test func resizeCoordinatesFollowTheOnnxFormulas() {
        // half_pixel 2x upsampling of 4 samples: source x = (i + 0.5) / 2 - 0.5, clamped.
        let r = AxisResampling(inputLength: 4, outputLength: 8, scale: 2, mode: .linear, coordinates: .halfPixel)
        #expect(r.index0 == [0, 0, 0, 1, 1, 2, 2, 3])
        #expect(r.weight1 == [0, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0])
        let corners = AxisResampling(inputLength: 5, outputLength: 3, scale: 0.6, mode: .linear, coordinates: .alignCorners)
        #expect(corners.index0 == [0, 2, 4] && corners.weight1 == [0, 0, 0])
        let nearest = AxisResampling(inputLength: 3, outputLength: 6, scale: 2, mode: .nearest(.roundPreferFloor), coordinates: .asymmetric)
        #expect(nearest.index0 == [0, 0, 1, 1, 2, 2])
    }

    @Test func softmaxRowsSumToOneWithoutOverflow() {
        let x: [Float] = [1000, 1001, 999, -1000, 0, 1e-3, 88, 89, 90]
        var y = [Float](repeating: 0, count: 9)
        x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { Softmax.run(px.baseAddress!, $0.baseAddress!, outer: 3, axis: 3, inner: 1, log: false) } }
        for row in 0 ..< 3 { #expect(abs(y[row * 3] + y[row * 3 + 1] + y[row * 3 + 2] - 1) < 1e-6) }
        #expect(y.allSatisfy { $0.isFinite })
    }
}

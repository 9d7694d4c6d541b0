/// 2-D convolution over NCHW tensors as a GEMM: weights [Cout × Cin·kh·kw] times the
/// image patches, which are packed straight into GEMM panels (implicit im2col), so the
/// patch matrix is never materialized. Groups run as separate products.
struct Conv2DGeometry: Equatable {
    var channels: Int, height: Int, width: Int
    var outChannels: Int, groups: Int
    var kernelH: Int, kernelW: Int
    var strideH: Int, strideW: Int
    var dilationH: Int, dilationW: Int
    var padTop: Int, padLeft: Int
    var outHeight: Int, outWidth: Int

    var channelsPerGroup: Int { channels / groups }
    var outChannelsPerGroup: Int { outChannels / groups }
    var patchSize: Int { channelsPerGroup * kernelH * kernelW }
}

/// The patches of one image (one group's channels) as GEMM operand B:
/// row p = (channel, ky, kx), column j = output pixel.
struct ImagePatchesB: GemmPackB {
    let image: UnsafePointer<Float>   // first channel of the group, [C_g, H, W]
    let g: Conv2DGeometry
    /// Output pixel of column 0 (a product may cover a band of output rows).
    var firstPixel = 0

    func pack(into buffer: UnsafeMutablePointer<Float>, k0: Int, depth: Int, n0: Int, width: Int) {
        let nr = Gemm.nr
        let kArea = g.kernelH * g.kernelW
        let plane = g.height * g.width
        var out = buffer
        // The panel's columns as runs of pixels along one output row.
        var segments: [(oy: Int, ox: Int, count: Int, at: Int)] = []
        segments.reserveCapacity(nr)
        var j = 0
        while j < width {
            let valid = min(nr, width - j)
            segments.removeAll(keepingCapacity: true)
            var q = 0
            while q < valid {
                let pixel = firstPixel + n0 + j + q
                let oy = pixel / g.outWidth, ox = pixel % g.outWidth
                let count = min(valid - q, g.outWidth - ox)
                segments.append((oy, ox, count, q))
                q += count
            }
            for p in 0 ..< depth {
                let row = k0 + p
                let c = row / kArea
                let ky = (row % kArea) / g.kernelW
                let kx = row % g.kernelW
                let channel = image + c * plane
                if valid < nr { (out + valid).initialize(repeating: 0, count: nr - valid) }
                for s in segments {
                    let iy = s.oy * g.strideH - g.padTop + ky * g.dilationH
                    let dst = out + s.at
                    guard iy >= 0, iy < g.height else {
                        dst.initialize(repeating: 0, count: s.count)
                        continue
                    }
                    let src = channel + iy * g.width
                    let ix0 = s.ox * g.strideW - g.padLeft + kx * g.dilationW
                    let ixLast = ix0 + (s.count - 1) * g.strideW
                    if g.strideW == 1 && ix0 >= 0 && ixLast < g.width {
                        dst.update(from: src + ix0, count: s.count)
                    } else {
                        var ix = ix0
                        for t in 0 ..< s.count {
                            dst[t] = (ix >= 0 && ix < g.width) ? src[ix] : 0
                            ix += g.strideW
                        }
                    }
                }
                out += nr
            }
            j += nr
        }
    }
}

/// A convolution layer with its weights packed once. With `poolAfter`, a 2×2 stride-2
/// max pool is fused in: the layer computes a band of output rows into a small buffer
/// and pools it at once, so the full-resolution activations never reach memory.
final class Conv2DKernel: @unchecked Sendable {
    let geometry: Conv2DGeometry
    let weights: [PrepackedA]      // one per group
    let bias: [Float]?
    let activation: Activation
    let poolAfter: Bool
    private let workspace: GemmWorkspace
    private var band: UnsafeMutablePointer<Float>?
    /// Output row pairs computed per band.
    private let bandPairs: Int

    /// Packs a layer's weights [Cout, Cin/groups, kh, kw] as one GEMM operand per group.
    static func pack(_ weights: UnsafePointer<Float>, geometry: Conv2DGeometry) -> [PrepackedA] {
        let perGroup = geometry.outChannelsPerGroup, patch = geometry.patchSize
        return (0 ..< geometry.groups).map { group in
            PrepackedA(rows: perGroup, depth: patch, rowMajor: weights + group * perGroup * patch)
        }
    }

    init(geometry: Conv2DGeometry, weights: [PrepackedA], bias: [Float]?, activation: Activation,
         poolAfter: Bool = false, workspace: GemmWorkspace = GemmWorkspace()) {
        self.geometry = geometry
        self.workspace = workspace
        self.weights = weights
        self.bias = bias
        self.activation = activation
        self.poolAfter = poolAfter
        bandPairs = max(1, 512 / max(1, 2 * geometry.outWidth))
        if poolAfter { band = .allocate(capacity: geometry.outChannelsPerGroup * 2 * bandPairs * geometry.outWidth) }
    }

    deinit { band?.deallocate() }

    func resized(to geometry: Conv2DGeometry) -> any ConvolutionKernel {
        Conv2DKernel(geometry: geometry, weights: weights, bias: bias, activation: activation, poolAfter: poolAfter,
                     workspace: workspace)
    }

    /// Output height and width after the fused pool (or of the convolution itself).
    var producedHeight: Int { poolAfter ? geometry.outHeight / 2 : geometry.outHeight }
    var producedWidth: Int { poolAfter ? geometry.outWidth / 2 : geometry.outWidth }

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int) {
        let g = geometry
        let inPlane = g.height * g.width
        let outPlane = producedHeight * producedWidth
        bias.withOptionalPointer { bias in
            for n in 0 ..< batch {
                for group in 0 ..< g.groups {
                    let image = input + (n * g.channels + group * g.channelsPerGroup) * inPlane
                    let out = output + (n * g.outChannels + group * g.outChannelsPerGroup) * outPlane
                    var epilogue = Gemm.Epilogue(activation: activation)
                    epilogue.rowBias = bias.map { $0 + group * g.outChannelsPerGroup }
                    if poolAfter {
                        runPooled(image: image, out: out, group: group, epilogue: epilogue)
                        continue
                    }
                    Gemm.multiply(m: g.outChannelsPerGroup, n: outPlane, k: g.patchSize,
                                  a: weights[group], b: ImagePatchesB(image: image, g: g),
                                  c: out, ldc: outPlane, epilogue: epilogue, workspace: workspace)
                }
            }
        }
    }

    private func runPooled(image: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, group: Int,
                           epilogue: Gemm.Epilogue) {
        let g = geometry, band = band!
        let ph = producedHeight, pw = producedWidth, outPlane = ph * pw
        let rows = g.outChannelsPerGroup
        var pair = 0
        while pair < ph {
            let pairs = min(bandPairs, ph - pair)
            let columns = 2 * pairs * g.outWidth
            Gemm.multiply(m: rows, n: columns, k: g.patchSize, a: weights[group],
                          b: ImagePatchesB(image: image, g: g, firstPixel: 2 * pair * g.outWidth),
                          c: band, ldc: columns, epilogue: epilogue, workspace: workspace)
            for r in 0 ..< rows {
                for p in 0 ..< pairs {
                    let top = band + r * columns + 2 * p * g.outWidth, bottom = top + g.outWidth
                    Pooling.max2x2Row(top, bottom, out + r * outPlane + (pair + p) * pw, count: pw)
                }
            }
            pair += pairs
        }
    }
}

extension Optional where Wrapped == [Float] {
    @inline(__always)
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .none: return body(nil)
        case .some(let array): return array.withUnsafeBufferPointer { body($0.baseAddress) }
        }
    }
}

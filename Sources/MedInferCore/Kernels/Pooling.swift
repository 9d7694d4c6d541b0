/// Max and average pooling over the last two axes of NCHW tensors, ONNX semantics:
/// pads are outside the image; average pooling divides by the window's in-image
/// size unless `countIncludePad`; max pooling ignores padding.
struct Pool2DGeometry: Equatable {
    var height: Int, width: Int
    var kernelH: Int, kernelW: Int
    var strideH: Int, strideW: Int
    var dilationH: Int, dilationW: Int
    var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    var outHeight: Int, outWidth: Int
}

enum Pooling {
    static func max(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, planes: Int,
                    _ g: Pool2DGeometry) {
        let inPlane = g.height * g.width, outPlane = g.outHeight * g.outWidth
        let fast2x2 = g.kernelH == 2 && g.kernelW == 2 && g.strideH == 2 && g.strideW == 2
            && g.dilationH == 1 && g.dilationW == 1 && g.padTop == 0 && g.padLeft == 0
            && g.outHeight * 2 <= g.height && g.outWidth * 2 <= g.width
        for plane in 0 ..< planes {
            let src = input + plane * inPlane, dst = output + plane * outPlane
            if fast2x2 {
                for oy in 0 ..< g.outHeight {
                    let r0 = src + 2 * oy * g.width, r1 = r0 + g.width
                    max2x2Row(r0, r1, dst + oy * g.outWidth, count: g.outWidth)
                }
                continue
            }
            for oy in 0 ..< g.outHeight {
                for ox in 0 ..< g.outWidth {
                    var best = -Float.greatestFiniteMagnitude  // onnxruntime: a window in the padding gives lowest()
                    for ky in 0 ..< g.kernelH {
                        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                        guard iy >= 0, iy < g.height else { continue }
                        for kx in 0 ..< g.kernelW {
                            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                            guard ix >= 0, ix < g.width else { continue }
                            let v = src[iy * g.width + ix]
                            if v > best || v.isNaN { best = v }
                        }
                    }
                    dst[oy * g.outWidth + ox] = best
                }
            }
        }
    }

    /// One output row of a 2×2 stride-2 max pool: out[x] = max of top[2x], top[2x+1],
    /// bottom[2x], bottom[2x+1]. Vector max per row pair, then even/odd lanes.
    @inline(__always)
    static func max2x2Row(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>,
                          count: Int) {
        var ox = 0
        while ox + 8 <= count {
            let a = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
            let b = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
            let v = a.replacing(with: b, where: b .> a)
            let even = SIMD8<Float>(v[0], v[2], v[4], v[6], v[8], v[10], v[12], v[14])
            let odd = SIMD8<Float>(v[1], v[3], v[5], v[7], v[9], v[11], v[13], v[15])
            UnsafeMutableRawPointer(o + ox).storeBytes(of: even.replacing(with: odd, where: odd .> even), as: SIMD8<Float>.self)
            ox += 8
        }
        while ox < count {
            let a = Swift.max(r0[2 * ox], r0[2 * ox + 1]), b = Swift.max(r1[2 * ox], r1[2 * ox + 1])
            o[ox] = Swift.max(a, b)
            ox += 1
        }
    }

    static func average(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, planes: Int,
                        _ g: Pool2DGeometry, countIncludePad: Bool) {
        let inPlane = g.height * g.width, outPlane = g.outHeight * g.outWidth
        for plane in 0 ..< planes {
            let src = input + plane * inPlane, dst = output + plane * outPlane
            for oy in 0 ..< g.outHeight {
                for ox in 0 ..< g.outWidth {
                    var sum: Float = 0
                    var count = 0
                    let y0 = oy * g.strideH - g.padTop, x0 = ox * g.strideW - g.padLeft
                    for ky in 0 ..< g.kernelH {
                        let iy = y0 + ky * g.dilationH
                        guard iy >= 0, iy < g.height else { continue }
                        for kx in 0 ..< g.kernelW {
                            let ix = x0 + kx * g.dilationW
                            guard ix >= 0, ix < g.width else { continue }
                            sum += src[iy * g.width + ix]
                            count += 1
                        }
                    }
                    if countIncludePad {
                        // The window clipped to the padded extent (ceil_mode windows may run past it).
                        let yEnd = Swift.min(y0 + (g.kernelH - 1) * g.dilationH + 1, g.height + g.padBottom)
                        let xEnd = Swift.min(x0 + (g.kernelW - 1) * g.dilationW + 1, g.width + g.padRight)
                        let rows = (yEnd - y0 + g.dilationH - 1) / g.dilationH
                        let cols = (xEnd - x0 + g.dilationW - 1) / g.dilationW
                        count = rows * cols
                    }
                    dst[oy * g.outWidth + ox] = count > 0 ? sum / Float(count) : 0
                }
            }
        }
    }

    /// Mean over each plane of `size` values.
    static func globalAverage(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                              planes: Int, size: Int) {
        for plane in 0 ..< planes {
            var sum: Float = 0
            let src = input + plane * size
            for i in 0 ..< size { sum += src[i] }
            output[plane] = size > 0 ? sum / Float(size) : 0
        }
    }

    static func globalMax(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                          planes: Int, size: Int) {
        for plane in 0 ..< planes {
            var best = -Float.infinity
            let src = input + plane * size
            for i in 0 ..< size where src[i] > best || src[i].isNaN { best = src[i] }
            output[plane] = best
        }
    }
}

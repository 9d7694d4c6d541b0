/// A per-feature scaling stored with a model (scikit-learn MinMaxScaler or
/// StandardScaler in a Pipeline), so callers pass raw measurements. It is computed in
/// double precision with the scaler's own operation order, then rounded to float32 as
/// scikit-learn trees round their input.
public enum FeaturePreprocessing: Sendable {
    /// x * scale + min
    case minMax(scale: [Double], min: [Double])
    /// (x - mean) / scale
    case standard(mean: [Double], scale: [Double])
    /// LightGBM reads rows sparsely: values with |x| <= 1e-35 (its kZeroThreshold) are
    /// dropped and score as exactly 0, which matters next to thresholds of +-1e-35.
    case zeroTinyValues

    @inline(__always)
    func apply(_ row: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .minMax(let scale, let offset):
            scale.withUnsafeBufferPointer { s in
                offset.withUnsafeBufferPointer { o in
                    for j in 0..<count {
                        var v = Double(row[j]) * s[j]
                        v += o[j]
                        out[j] = Float(v)
                    }
                }
            }
        case .standard(let mean, let scale):
            mean.withUnsafeBufferPointer { m in
                scale.withUnsafeBufferPointer { s in
                    for j in 0..<count { out[j] = Float((Double(row[j]) - m[j]) / s[j]) }
                }
            }
        case .zeroTinyValues:
            for j in 0..<count {
                let x = row[j]
                out[j] = x >= -1e-35 && x <= 1e-35 ? 0 : x
            }
        }
    }
}

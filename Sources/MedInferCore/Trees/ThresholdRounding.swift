/// Split thresholds of every library expressed as MedInfer's single test, `x <= t` on
/// float32 values. The rounding below makes the test exact, not approximately equal:
/// inputs arrive as float32, so only the float32 values on either side matter.
public enum ThresholdRounding {
    /// XGBoost goes left when `x < t` in float32. For float32 x that is `x <= nextDown(t)`.
    /// `x < -inf` is never true, which a NaN threshold expresses (no value is `<= NaN`).
    public static func fromStrictLess(_ t: Float) -> Float {
        if t == -.infinity { return .nan }
        return t.nextDown
    }

    /// LightGBM and scikit-learn go left when `x <= t` with t a double. For float32 x that
    /// is `x <= t'` with t' the largest float32 not above t.
    public static func fromLessEqual(_ t: Double) -> Float {
        if t.isNaN { return .nan }
        let rounded = Float(t)
        if Double(rounded) > t { return rounded.nextDown }
        return rounded
    }
}

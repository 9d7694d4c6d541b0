/// Who the players of a sequence explanation are: every column of every static input,
/// then one player per feature channel per time window. Windows end at the last step;
/// steps before the first window are never masked.
public struct SequencePlayers: Sendable {
    /// Static inputs explained column by column (model input index, row width), model order.
    public let statics: [(input: Int, width: Int)]
    public let features: Int
    /// Step ranges of the windows within the explained sequence, earliest first.
    public let windows: [Range<Int>]

    public var staticPlayers: Int { statics.reduce(0) { $0 + $1.width } }
    public var count: Int { staticPlayers + windows.count * features }
    /// The first step any window masks.
    public var firstMaskedStep: Int { windows.first?.lowerBound ?? 0 }

    /// `windowSteps` 0 splits the last `explainedSteps` (default: all `steps`) evenly
    /// over `windowCount` windows, the earliest taking the remainder.
    public init(statics: [(input: Int, width: Int)], features: Int, steps: Int, windowCount: Int,
                windowSteps: Int, explainedSteps: Int? = nil) throws(MedInferError) {
        guard windowCount >= 1, windowCount <= 4096 else {
            throw .invalidArgument("time_windows \(windowCount) is outside 1...4096")
        }
        guard steps >= 1 else { throw .invalidArgument("the sequence has no steps to explain") }
        let span: Int
        var lengths: [Int]
        if windowSteps > 0 {
            let (total, overflow) = windowSteps.multipliedReportingOverflow(by: windowCount)
            guard !overflow, total <= steps else {
                throw .invalidArgument("\(windowCount) windows of \(windowSteps) steps need \(overflow ? "too many" : "\(total)") steps; the sequence has \(steps)")
            }
            span = total
            lengths = [Int](repeating: windowSteps, count: windowCount)
        } else {
            span = explainedSteps ?? steps
            guard span <= steps, windowCount <= span else {
                throw .invalidArgument("\(windowCount) time windows need at least \(windowCount) steps; \(min(span, steps)) are explained")
            }
            lengths = [Int](repeating: span / windowCount, count: windowCount)
            lengths[0] += span % windowCount
        }
        var start = steps - span
        var windows: [Range<Int>] = []
        for length in lengths { windows.append(start ..< start + length); start += length }
        self.statics = statics
        self.features = features
        self.windows = windows
    }

    /// The player of column 0 of static input `input`, or nil when it is not explained.
    func firstPlayer(ofStatic input: Int) -> Int? {
        var next = 0
        for (index, width) in statics {
            if index == input { return next }
            next += width
        }
        return nil
    }

    /// Player of channel `c` at step `t`, or nil when the step is before every window.
    @inline(__always)
    func player(step t: Int, channel c: Int) -> Int? {
        guard t >= firstMaskedStep else { return nil }
        var w = windows.count - 1
        while t < windows[w].lowerBound { w -= 1 }
        return staticPlayers + w * features + c
    }
}

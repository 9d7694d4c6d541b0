/// Shapley values of a model's output over "players": parts of its input (a vital-sign
/// channel, a static feature, an image segment) that are either present (the explained
/// input's values) or removed (a background's values). The explainers only see this
/// interface; the games in `Explain/Networks` know how to build and run masked inputs.
public protocol CoalitionGame: AnyObject {
    var playerCount: Int { get }
    /// Values per evaluation (the model's first output per input row).
    var outputCount: Int { get }
    /// Coalitions per `evaluate` call that keep the model busy without a huge batch.
    var preferredBatch: Int { get }
    /// Evaluates `count` coalitions, each `playerCount` bytes in `members` (nonzero =
    /// present), writing `count * outputCount` values.
    func evaluate(members: UnsafePointer<UInt8>, count: Int, values: UnsafeMutablePointer<Double>) throws(MedInferError)
    /// Players in the order exact enumeration should vary them, fastest first: a game that
    /// shares work between coalitions agreeing on some players (a sequence game's early
    /// windows) lists those last, so one batch holds many coalitions that agree on them.
    var enumerationOrder: [Int] { get }
}

extension CoalitionGame {
    public var enumerationOrder: [Int] { Array(0 ..< playerCount) }
}

/// How to compute the values, and the limits that keep an explanation's cost bounded.
public enum ShapleyMethod: Equatable, Sendable {
    /// Every coalition: 2^players evaluations, exact.
    case exact
    /// Random permutations in antithetic pairs, `budget` evaluations at most.
    case permutation(budget: Int, seed: UInt64)

    public static let maxExactPlayers = 20
    /// Model evaluations (coalitions x background rows) one explanation may cost.
    public static let maxEvaluations = 1 << 20
    /// `automatic` picks exact values up to this many players.
    public static let automaticExactPlayers = 16

    public static func automatic(players: Int, budget: Int, seed: UInt64) -> ShapleyMethod {
        players <= automaticExactPlayers ? .exact : .permutation(budget: budget, seed: seed)
    }

    /// Model evaluations this method costs for `players` players and `rows` background
    /// rows, or an error naming the limit it breaks (checked before any work).
    public func checkedCost(players: Int, rows: Int) throws(MedInferError) -> Int {
        guard players >= 1 else { throw .invalidArgument("an explanation needs at least one player") }
        let coalitions: Int
        switch self {
        case .exact:
            guard players <= Self.maxExactPlayers else {
                throw .invalidArgument("exact Shapley values over \(players) players would take 2^\(players) coalitions; the limit is \(Self.maxExactPlayers) players (MEDINFER_SHAPLEY_MAX_EXACT_PLAYERS): use fewer players or permutation sampling")
            }
            coalitions = 1 << players
        case .permutation(let budget, _):
            guard budget >= 2 * players else {
                throw .invalidArgument("a budget of \(budget) evaluations is below 2 x \(players) players (one antithetic pair of permutations)")
            }
            coalitions = min(budget, Self.permutationEvaluations(players: players, budget: budget))
        }
        let (total, overflow) = coalitions.multipliedReportingOverflow(by: rows)
        guard !overflow, total <= Self.maxEvaluations else {
            throw .invalidArgument("\(coalitions) coalitions x \(rows) background rows = \(overflow ? "too many" : "\(total)") model evaluations; the limit is \(Self.maxEvaluations) (MEDINFER_SHAPLEY_MAX_EVALUATIONS): use fewer players, background rows or a smaller budget")
        }
        return total
    }

    /// Evaluations permutation sampling spends: the empty and full coalitions once, then
    /// `players - 1` per whole permutation that fits the budget.
    static func permutationEvaluations(players: Int, budget: Int) -> Int {
        players == 1 ? 2 : 2 + (budget - 2) / (players - 1) * (players - 1)
    }
}

/// Shapley values of every player for every output value, and the base value (the empty
/// coalition's value). `values[p * outputCount + k]`.
public struct ShapleyValues: Sendable {
    public let playerCount: Int
    public let outputCount: Int
    public var values: [Double]
    public var base: [Double]

    /// (players + 1) rows of outputCount: the players, then the base value (the C layout).
    public func write(to out: UnsafeMutablePointer<Double>) {
        values.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: $0.count) }
        base.withUnsafeBufferPointer { (out + values.count).update(from: $0.baseAddress!, count: $0.count) }
    }
}

extension CoalitionGame {
    /// `evaluate` in runs of at most `preferredBatch` coalitions (some models take one
    /// input at a time).
    func evaluateInBatches(members: UnsafePointer<UInt8>, count: Int, values: UnsafeMutablePointer<Double>) throws(MedInferError) {
        let batch = max(1, preferredBatch)
        var start = 0
        while start < count {
            let n = min(batch, count - start)
            try evaluate(members: members + start * playerCount, count: n, values: values + start * outputCount)
            start += n
        }
    }

    public func shapleyValues(_ method: ShapleyMethod) throws(MedInferError) -> ShapleyValues {
        switch method {
        case .exact: return try ExactShapley.values(of: self)
        case .permutation(let budget, let seed):
            return try PermutationShapley.values(of: self, budget: budget, seed: seed)
        }
    }
}

import Testing
@testable import MedInferCore

/// The Shapley explainers on games whose values are known in closed form, without a
/// network: what the network games add is masking, checked by the parity tests.
@Suite struct ShapleyTests {
    /// v(S) = sum of weights in S + a bonus when players 0 and 1 are both in S, two outputs
    /// (the second is the first times -2). Shapley: weight_i, plus bonus/2 for players 0 and 1.
    final class PairBonusGame: CoalitionGame {
        let playerCount: Int
        let outputCount = 2
        let preferredBatch: Int
        let weights: [Double]
        let bonus = 0.75
        private(set) var evaluations = 0

        init(players: Int, batch: Int = 7) {
            playerCount = players
            preferredBatch = batch
            weights = (0 ..< players).map { Double($0 % 5) - 1.5 + Double($0) * 0.1 }
        }

        func evaluate(members: UnsafePointer<UInt8>, count: Int, values: UnsafeMutablePointer<Double>) throws(MedInferError) {
            #expect(count <= preferredBatch)
            for n in 0 ..< count {
                let member = members + n * playerCount
                var v = 0.0
                for i in 0 ..< playerCount where member[i] != 0 { v += weights[i] }
                if member[0] != 0 && member[1] != 0 { v += bonus }
                values[n * 2] = v
                values[n * 2 + 1] = -2 * v
            }
            evaluations += count
        }

        func expected(_ i: Int) -> Double { weights[i] + (i < 2 ? bonus / 2 : 0) }
    }

    @Test func exactValuesMatchTheClosedForm() throws {
        for players in [1, 2, 5, 11] {
            let game = PairBonusGame(players: players >= 2 ? players : 2)
            let result = try game.shapleyValues(.exact)
            #expect(game.evaluations == 1 << game.playerCount)
            for i in 0 ..< game.playerCount {
                #expect(abs(result.values[i * 2] - game.expected(i)) < 1e-12)
                #expect(abs(result.values[i * 2 + 1] + 2 * game.expected(i)) < 1e-12)
            }
            #expect(result.base == [0, 0])
        }
    }

    @Test func permutationValuesAreAdditiveAndExactForThisGame() throws {
        // Each ordering credits player i with weight_i, and the bonus to whichever of
        // players 0 and 1 joins second; antithetic pairs split it exactly in half.
        let game = PairBonusGame(players: 9)
        let result = try game.shapleyValues(.permutation(budget: 2 + 8 * 6, seed: 42))
        #expect(game.evaluations == 2 + 8 * 6)
        var total = 0.0
        for i in 0 ..< 9 {
            total += result.values[i * 2]
            #expect(abs(result.values[i * 2] - game.expected(i)) < 1e-12)
        }
        let full = game.weights.reduce(0, +) + game.bonus
        #expect(abs(total + result.base[0] - full) < 1e-12)
    }

    @Test func sameSeedSameValuesOtherSeedOtherOrderings() throws {
        let a = try PairBonusGame(players: 6).shapleyValues(.permutation(budget: 17, seed: 7))
        let b = try PairBonusGame(players: 6).shapleyValues(.permutation(budget: 17, seed: 7))
        #expect(a.values == b.values)
        var g1 = SplitMix64(seed: 1), g2 = SplitMix64(seed: 2)
        var o1 = Array(0 ..< 20), o2 = Array(0 ..< 20)
        g1.shuffle(&o1); g2.shuffle(&o2)
        #expect(o1 != o2)
        #expect(o1.sorted() == Array(0 ..< 20))
    }

    @Test func costLimitsAreCheckedBeforeAnyWork() {
        #expect(throws: MedInferError.self) { try ShapleyMethod.exact.checkedCost(players: 21, rows: 1) }
        #expect(throws: MedInferError.self) { try ShapleyMethod.exact.checkedCost(players: 16, rows: 17) }
        #expect(throws: MedInferError.self) { try ShapleyMethod.permutation(budget: 9, seed: 0).checkedCost(players: 5, rows: 1) }
        #expect((try? ShapleyMethod.exact.checkedCost(players: 16, rows: 16)) == 1 << 20)
        #expect((try? ShapleyMethod.permutation(budget: 1000, seed: 0).checkedCost(players: 64, rows: 1)) == 2 + 15 * 63)
    }

    @Test func sequencePlayersSplitWindowsFromTheEnd() throws {
        let even = try SequencePlayers(statics: [(0, 4)], features: 8, steps: 48, windowCount: 3, windowSteps: 0)
        #expect(even.windows == [0 ..< 16, 16 ..< 32, 32 ..< 48])
        #expect(even.count == 4 + 24)
        let remainder = try SequencePlayers(statics: [], features: 8, steps: 10, windowCount: 3, windowSteps: 0)
        #expect(remainder.windows == [0 ..< 4, 4 ..< 7, 7 ..< 10])
        let tail = try SequencePlayers(statics: [], features: 2, steps: 48, windowCount: 2, windowSteps: 6)
        #expect(tail.windows == [36 ..< 42, 42 ..< 48])
        #expect(tail.player(step: 35, channel: 0) == nil)
        #expect(tail.player(step: 43, channel: 1) == 3)
        #expect(throws: MedInferError.self) { try SequencePlayers(statics: [], features: 2, steps: 10, windowCount: 2, windowSteps: 6) }
    }
}

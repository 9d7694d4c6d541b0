/// Explaining a stream's latest output: which channels, over which recent windows, moved
/// it away from what a reference sample would give. The stream is only read: its own
/// state, history and step count are untouched, so the next push is as if no
/// explanation had been asked for.
extension SequenceStream {
    /// The players of an explanation of the latest output: every channel per window, the
    /// windows ending at the latest step (as `SequencePlayers`), within the steps kept.
    public func explanationPlayers(windowCount: Int, windowSteps: Int) throws(MedInferError) -> SequencePlayers {
        guard explainSteps > 0 else {
            throw .invalidArgument("this stream keeps no history to explain: create it with explain_steps > 0")
        }
        let kept = explainableSteps
        guard kept >= 1 else { throw .invalidArgument("the stream has consumed no steps yet: nothing to explain") }
        let (product, overflow) = windowSteps.multipliedReportingOverflow(by: windowCount)
        let span = windowSteps > 0 ? product : kept
        guard !overflow, span <= kept, windowCount <= span else {
            throw .invalidArgument("\(windowCount) windows of \(windowSteps == 0 ? "?" : "\(windowSteps)") steps do not fit the \(kept) steps this stream can explain now (explain_steps \(explainSteps), \(steps) consumed)")
        }
        // An exact stream replays only the explained steps from the state before them; a
        // window stream reruns its whole window, as its pushes do.
        return try SequencePlayers(statics: [], features: features, steps: historySteps(explained: span),
                                   windowCount: windowCount, windowSteps: windowSteps, explainedSteps: span)
    }

    /// Steps of history an explanation over `explained` steps runs.
    private func historySteps(explained: Int) -> Int {
        window.map { min($0, Int(clamping: steps)) } ?? explained
    }

    /// - reference: one value per feature, what a removed channel takes at every step.
    /// - players: from `explanationPlayers`.
    public func explain(reference: UnsafeBufferPointer<Float>, players: SequencePlayers,
                        method: ShapleyMethod) throws(MedInferError) -> ShapleyValues {
        guard reference.count == features else {
            throw .shapeMismatch("the reference sample has \(reference.count) values; the model takes \(features) features")
        }
        guard staticsComplete else { throw .invalidArgument("the stream's static inputs are not all set") }
        let explained = players.windows.last!.upperBound - players.firstMaskedStep
        let (samples, state) = history(steps: historySteps(explained: explained))
        let sequenceSteps = samples.count / features
        guard sequenceSteps == players.windows.last!.upperBound else {
            throw .invalidArgument("the players were made for \(players.windows.last!.upperBound) steps of history, the stream has \(sequenceSteps)")
        }
        _ = try method.checkedCost(players: players.count, rows: 1)
        var statics: [Int: [Float]] = [:]
        for index in model.staticInputs { statics[index] = staticRow(index) }
        return try model.withPooledSession { (session) throws(MedInferError) in
            let game = try samples.withUnsafeBufferPointer { (values) throws(MedInferError) in
                try SequenceGame(session: session, players: players, sequence: values, steps: sequenceSteps,
                                 statics: statics, background: reference, backgroundRows: 1, backgroundSteps: 1,
                                 backgroundStatics: statics, state: state)
            }
            return try game.shapleyValues(method)
        }
    }
}

/// Layer weights in the form kernels want (packed GEMM panels, Winograd transforms),
/// made on first use and then shared by every plan of every session of one model.
/// The objects are immutable; the lock guards only the lookup table.
final class WeightCache: @unchecked Sendable {
    private let table = Locked<[String: any AnyObject & Sendable]>([:])
    /// Where weights packed by their maker live (Winograd's transforms): huge pages
    /// shared by all layers, released with the model.
    let memory = MemoryRegion()
    private let firstPlanClaimed = Locked(false)

    /// `memory`, once, for the model's first plan: its buffers then continue the model's
    /// huge pages instead of starting their own (a model that sees one image size, the
    /// usual case, fills one page fewer). Later plans get nil and a region of their own.
    /// The first plan's buffers stay until the model goes, even if the plan is dropped.
    func memoryForFirstPlan() -> MemoryRegion? {
        firstPlanClaimed.withLock { claimed in
            defer { claimed = true }
            return claimed ? nil : memory
        }
    }

    func value<T: AnyObject & Sendable, E: Error>(_ key: String, make: () throws(E) -> T) throws(E) -> T {
        if let found = table.withLock({ $0[key] }) as? T { return found }
        // Built outside the lock (it may take milliseconds); a racing thread's copy is
        // equal, and the first one stored wins.
        let made = try make()
        return table.withLock { entries in
            if let existing = entries[key] as? T { return existing }
            entries[key] = made
            return made
        }
    }
}

/// A direct convolution's packed weights, one GEMM operand per group.
final class PackedWeights: @unchecked Sendable {
    let groups: [PrepackedA]
    init(_ groups: [PrepackedA]) { self.groups = groups }
}

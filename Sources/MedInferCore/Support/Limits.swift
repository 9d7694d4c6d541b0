/// Caps on what a model file may declare. They keep a hostile or corrupt file from
/// asking for unbounded memory; real models are far below them.
public enum Limits {
    /// Model files larger than this are refused before reading (2 GiB).
    public static let maxModelFileBytes = 1 << 31
    /// Features a model may declare.
    public static let maxFeatures = 1 << 20
    /// Output columns (classes) a model may declare.
    public static let maxOutputs = 1 << 14
    /// Trees in one ensemble.
    public static let maxTrees = 1 << 20
    /// Nodes in all trees together.
    public static let maxTotalNodes = 1 << 28
    /// Depth of one tree. Deeper trees are refused rather than risking slow or
    /// pathological traversal; real boosted trees stay far below this.
    public static let maxTreeDepth = 512
}

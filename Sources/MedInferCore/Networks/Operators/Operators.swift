/// The operator registry: which ONNX op_types are supported, and the function that
/// plans one node of each. Each planner checks its attributes and input shapes, then
/// either folds the node to a constant or emits a runtime step. Operators live one
/// family per file in this folder (ConvolutionOps, LinearOps, NormalizationOps,
/// ElementwiseOps, ShapeOps, ResizeOps, RecurrentOps).
enum Operators {
    static let supported: Set<String> = [
        "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "BatchNormalization",
        "Softmax", "LogSoftmax", "Add", "Sub", "Mul", "Div", "Pow", "Max",
        "Min", "Sum", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "Exp",
        "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Erf",
        "Equal", "Less", "Greater", "Not", "Where", "Shape", "Size", "Reshape",
        "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
        "Expand", "Cast", "Identity", "Dropout", "Constant", "ConstantOfShape", "Range", "ReduceProd",
        "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "Resize", "Upsample", "LSTM", "GRU",
    ]

    static func plan(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        switch c.node.opType {
        case "Conv": return try conv(c)
        case "MaxPool": return try maxPool(c)
        case "AveragePool": return try averagePool(c)
        case "GlobalAveragePool": return try globalAveragePool(c)
        case "GlobalMaxPool": return try globalMaxPool(c)
        case "Gemm": return try gemm(c)
        case "MatMul": return try matMul(c)
        case "BatchNormalization": return try batchNormalization(c)
        case "Softmax": return try softmax(c, log: false)
        case "LogSoftmax": return try softmax(c, log: true)
        case "Add": return try binary(c, .add)
        case "Sub": return try binary(c, .sub)
        case "Mul": return try binary(c, .mul)
        case "Div": return try binary(c, .div)
        case "Pow": return try binary(c, .pow)
        case "Max": return try variadic(c, .max)
        case "Min": return try variadic(c, .min)
        case "Sum": return try variadic(c, .add)
        case "Relu": return try unary(c, .activation(.relu))
        case "Sigmoid": return try unary(c, .activation(.sigmoid))
        case "Tanh": return try unary(c, .activation(.tanh))
        case "LeakyRelu": return try unary(c, .activation(.leakyRelu(alpha: c.float("alpha", 0.01))))
        case "Clip": return try clip(c)
        case "Exp": return try unary(c, .exp)
        case "Log": return try unary(c, .log)
        case "Sqrt": return try unary(c, .sqrt)
        case "Abs": return try unary(c, .abs)
        case "Neg": return try unary(c, .neg)
        case "Reciprocal": return try unary(c, .reciprocal)
        case "Floor": return try unary(c, .floor)
        case "Ceil": return try unary(c, .ceil)
        case "Erf": return try unary(c, .erf)
        case "Equal": return try comparison(c) { $0 == $1 }
        case "Less": return try comparison(c) { $0 < $1 }
        case "Greater": return try comparison(c) { $0 > $1 }
        case "Not": return try logicalNot(c)
        case "Where": return try whereOp(c)
        case "Shape": return try shape(c)
        case "Size": return try size(c)
        case "Reshape": return try reshape(c)
        case "Flatten": return try flatten(c)
        case "Squeeze": return try squeeze(c)
        case "Unsqueeze": return try unsqueeze(c)
        case "Transpose": return try transpose(c)
        case "Concat": return try concat(c)
        case "Split": return try split(c)
        case "Slice": return try slice(c)
        case "Gather": return try gather(c)
        case "Expand": return try expand(c)
        case "Cast": return try cast(c)
        case "Identity": return try passThrough(c)
        case "Dropout": return try passThrough(c)
        case "Constant": return try constant(c)
        case "ConstantOfShape": return try constantOfShape(c)
        case "Range": return try range(c)
        case "ReduceProd": return try reduce(c, .prod)
        case "ReduceSum": return try reduce(c, .sum)
        case "ReduceMean": return try reduce(c, .mean)
        case "ReduceMax": return try reduce(c, .max)
        case "ReduceMin": return try reduce(c, .min)
        case "Resize": return try resize(c)
        case "Upsample": return try resize(c)
        case "LSTM": return try lstm(c)
        case "GRU": return try gru(c)
        default: throw .unsupported("operator '\(c.node.opType)' is not supported")
        }
    }
}

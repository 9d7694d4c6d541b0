/// A heap buffer of floats with a stable address, for building model inputs that several
/// pointers refer to at once (Swift arrays only lend their storage inside a closure).
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    convenience init<C: Collection>(_ values: C) where C.Element == Float {
        self.init(count: values.count)
        var p = pointer
        for v in values { p.pointee = v; p += 1 }
    }

    var readOnly: UnsafePointer<Float> { UnsafePointer(pointer) }
    var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
    var array: [Float] { Array(buffer) }

    subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    deinit { pointer.deallocate() }
}

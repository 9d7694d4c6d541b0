/// Numbers fixed-width keys of 64-bit words in the order they are first seen (0, 1, 2,
/// ...), so rows that share a key can share one computation. Open addressing over flat
/// arrays that are kept between uses: a sequence explanation keys thousands of rows per
/// stage, and a Dictionary of word arrays spent more time allocating, hashing and
/// freeing its keys than the network spent on the rows it saved.
struct DistinctKeys {
    private(set) var width = 1
    /// The distinct keys so far, `width` words each, in index order.
    private var keys: [UInt64] = []
    /// Per hash slot, the index of the key stored there, or -1.
    private var slots: [Int32] = []
    private(set) var count = 0

    /// Forgets every key and prepares for up to `expected` distinct keys of `width` words.
    mutating func reset(width: Int, expected: Int) {
        self.width = max(1, width)
        count = 0
        var capacity = 16
        while capacity < 2 * expected { capacity *= 2 }
        if slots.count != capacity {
            slots = [Int32](repeating: -1, count: capacity)
        } else {
            slots.withUnsafeMutableBufferPointer { $0.update(repeating: -1) }
        }
        let words = self.width * max(expected, 1)
        if keys.count < words { keys = [UInt64](repeating: 0, count: words) }
    }

    /// The index of `key` (`width` words), numbering it next if it is new.
    mutating func index(of key: UnsafePointer<UInt64>) -> (index: Int, isNew: Bool) {
        let width = self.width
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        for w in 0 ..< width {
            hash = (hash ^ key[w]) &* 0x9E37_79B9_7F4A_7C15
            hash ^= hash >> 29
        }
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let found = slots[slot]
            if found < 0 { break }
            let stored = Int(found) &* width
            var same = true
            for w in 0 ..< width where keys[stored &+ w] != key[w] { same = false; break }
            if same { return (Int(found), false) }
            slot = (slot &+ 1) & mask
        }
        if count * 2 >= slots.count { grow() ; return index(of: key) }
        if (count + 1) * width > keys.count { keys += [UInt64](repeating: 0, count: max(keys.count, width)) }
        for w in 0 ..< width { keys[count &* width &+ w] = key[w] }
        slots[slot] = Int32(count)
        count += 1
        return (count - 1, true)
    }

    /// Doubles the slot table when more keys arrive than `reset` was told to expect.
    private mutating func grow() {
        let kept = count
        let words = Array(keys[0 ..< kept * width])
        reset(width: width, expected: slots.count)
        words.withUnsafeBufferPointer { p in
            for i in 0 ..< kept { _ = index(of: p.baseAddress! + i * width) }
        }
    }
}

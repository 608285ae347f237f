/// A dictionary key that compares strings byte for byte. Swift's `String` equality is canonical
/// equivalence ("é" == "e\u{301}"), which the Rust library does not use for vocabulary lookups.
struct VocabKey: Hashable, Sendable {
    let string: String

    init(_ s: String) {
        var s = s
        s.makeContiguousUTF8()
        string = s
    }

    static func == (a: VocabKey, b: VocabKey) -> Bool {
        let ua = a.string.utf8, ub = b.string.utf8
        guard ua.count == ub.count else { return false }
        if let r = ua.withContiguousStorageIfAvailable({ pa in
            ub.withContiguousStorageIfAvailable { pb in
                pa.count == 0 || memcmpBytes(pa, pb)
            }
        }), let r {
            return r
        }
        return ua.elementsEqual(ub)
    }

    func hash(into h: inout Hasher) {
        let u = string.utf8
        if u.withContiguousStorageIfAvailable({ h.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            for b in u { h.combine(b) }
        }
    }
}

@inline(__always)
private func memcmpBytes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    var k = 0
    let n = a.count
    while k < n {
        if a[k] != b[k] { return false }
        k += 1
    }
    return true
}

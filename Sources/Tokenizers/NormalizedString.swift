import Wire

/// Original-text span of one normalized scalar, in Unicode scalar offsets of the whole input.
struct Span: Sendable, Equatable {
    var start: Int32
    var end: Int32
}

/// A piece of text being normalized, with the alignment of every normalized scalar back to the
/// original input (mirrors the library's `NormalizedString`, in scalar instead of byte units).
struct NormalizedString: Sendable {
    var scalars: [UInt32]
    var align: [Span]
    /// Original offset this piece starts at (used when it is empty or for `offsets_original`).
    var origStart: Int32

    init(scalars: [UInt32], origStart: Int = 0) {
        self.scalars = scalars
        self.origStart = Int32(origStart)
        var a = [Span]()
        a.reserveCapacity(scalars.count)
        for k in 0..<scalars.count { a.append(Span(start: Int32(origStart + k), end: Int32(origStart + k + 1))) }
        self.align = a
    }

    init(scalars: [UInt32], align: [Span], origStart: Int32) {
        self.scalars = scalars
        self.align = align
        self.origStart = origStart
    }

    var isEmpty: Bool { scalars.isEmpty }
    var count: Int { scalars.count }

    var string: String {
        var s = String()
        s.unicodeScalars.reserveCapacity(scalars.count)
        for v in scalars { if let u = Unicode.Scalar(v) { s.unicodeScalars.append(u) } }
        return s
    }

    /// Original range for the normalized range `[a, b)`.
    func originalRange(_ a: Int, _ b: Int) -> (Int, Int) {
        if a >= b || a >= align.count {
            let p = a < align.count ? Int(align[a].start) : (align.last.map { Int($0.end) } ?? Int(origStart))
            return (p, p)
        }
        return (Int(align[a].start), Int(align[b - 1].end))
    }

    func slice(_ a: Int, _ b: Int) -> NormalizedString {
        let st = a < align.count ? align[a].start : (align.last?.end ?? origStart)
        return NormalizedString(scalars: Array(scalars[a..<b]), align: Array(align[a..<b]), origStart: st)
    }

    /// The library's `transform_range` over the whole string: each output scalar comes with a change
    /// (0 replaces one scalar, +1 inserts, -n replaces one and removes n more).
    mutating func transform(_ dest: [(UInt32, Int)], initialOffset: Int = 0) {
        var newScalars = [UInt32]()
        var newAlign = [Span]()
        newScalars.reserveCapacity(dest.count)
        newAlign.reserveCapacity(dest.count)
        var offset = initialOffset
        let n = align.count
        for (c, change) in dest {
            let a: Span
            if change > 0 {
                a = offset >= 1 && n > 0 ? align[min(offset - 1, n - 1)] : Span(start: origStart, end: origStart)
            } else {
                a = offset < n ? align[offset] : (align.last ?? Span(start: origStart, end: origStart))
                offset += 1
                if change < 0 { offset += -change }
            }
            newScalars.append(c)
            newAlign.append(a)
        }
        scalars = newScalars
        align = newAlign
    }

    /// Maps every scalar to zero or more scalars (first keeps the alignment, others are inserted).
    mutating func mapExpanding(_ f: (UInt32) -> [UInt32]?) {
        var newScalars = [UInt32]()
        var newAlign = [Span]()
        newScalars.reserveCapacity(scalars.count)
        newAlign.reserveCapacity(scalars.count)
        for k in 0..<scalars.count {
            if let rep = f(scalars[k]) {
                for r in rep {
                    newScalars.append(r)
                    newAlign.append(align[k])
                }
                if rep.isEmpty { continue }
            } else {
                newScalars.append(scalars[k])
                newAlign.append(align[k])
            }
        }
        scalars = newScalars
        align = newAlign
    }

    mutating func filter(_ keep: (UInt32) -> Bool) {
        var w = 0
        for k in 0..<scalars.count where keep(scalars[k]) {
            scalars[w] = scalars[k]
            align[w] = align[k]
            w += 1
        }
        scalars.removeSubrange(w...)
        align.removeSubrange(w...)
    }

    mutating func map(_ f: (UInt32) -> UInt32) {
        for k in 0..<scalars.count { scalars[k] = f(scalars[k]) }
    }

    mutating func prepend(_ s: [UInt32]) {
        guard let first = align.first, !s.isEmpty else { return }
        scalars.insert(contentsOf: s, at: 0)
        align.insert(contentsOf: [Span](repeating: first, count: s.count), at: 0)
    }

    mutating func append(_ s: [UInt32]) {
        guard let last = align.last, !s.isEmpty else { return }
        scalars.append(contentsOf: s)
        align.append(contentsOf: [Span](repeating: last, count: s.count))
    }

    /// Replaces every match of `pattern` with `content`; inserted scalars take the alignment of the
    /// last replaced scalar, as the library does.
    mutating func replace(_ pattern: SplitPattern, with content: [UInt32]) throws(TokenizerError) {
        let matches = try pattern.findMatches(scalars)
        guard matches.contains(where: { $0.isMatch }) else { return }
        var newScalars = [UInt32]()
        var newAlign = [Span]()
        newScalars.reserveCapacity(scalars.count + content.count)
        newAlign.reserveCapacity(scalars.count + content.count)
        for m in matches {
            if !m.isMatch {
                newScalars.append(contentsOf: scalars[m.start..<m.end])
                newAlign.append(contentsOf: align[m.start..<m.end])
                continue
            }
            let a: Span
            if m.end > m.start {
                a = align[m.end - 1]
            } else {
                a = newAlign.last ?? Span(start: origStart, end: origStart)
            }
            for c in content {
                newScalars.append(c)
                newAlign.append(a)
            }
        }
        scalars = newScalars
        align = newAlign
    }

    mutating func lstrip() {
        var k = 0
        while k < scalars.count && UnicodeTables.isWhitespace(scalars[k]) { k += 1 }
        if k > 0 {
            scalars.removeFirst(k)
            align.removeFirst(k)
        }
    }

    mutating func rstrip() {
        var k = scalars.count
        while k > 0 && UnicodeTables.isWhitespace(scalars[k - 1]) { k -= 1 }
        if k < scalars.count {
            scalars.removeSubrange(k...)
            align.removeSubrange(k...)
        }
    }

    /// Splits by the pattern's matches according to `behavior` (the library's `NormalizedString::split`).
    /// Throws `tooManyTokens(limit: maxPieces)` before slicing when more pieces than `maxPieces`
    /// would be kept.
    func split(
        _ pattern: SplitPattern, _ behavior: SplitBehavior, invert: Bool = false, maxPieces: Int = .max
    ) throws(TokenizerError) -> [NormalizedString] {
        var matches = try pattern.findMatches(scalars)
        if invert { for k in matches.indices { matches[k].isMatch.toggle() } }
        var pieces: [(Int, Int, Bool)] = []  // start, end, remove
        pieces.reserveCapacity(matches.count)
        switch behavior {
        case .isolated:
            for m in matches { pieces.append((m.start, m.end, false)) }
        case .removed:
            for m in matches { pieces.append((m.start, m.end, m.isMatch)) }
        case .contiguous:
            var prev = false
            for m in matches {
                if m.isMatch == prev, !pieces.isEmpty { pieces[pieces.count - 1].1 = m.end } else { pieces.append((m.start, m.end, false)) }
                prev = m.isMatch
            }
        case .mergedWithPrevious:
            var prev = false
            for m in matches {
                if m.isMatch && !prev, !pieces.isEmpty {
                    pieces[pieces.count - 1].1 = m.end
                } else {
                    pieces.append((m.start, m.end, false))
                }
                prev = m.isMatch
            }
        case .mergedWithNext:
            var prev = false
            for m in matches.reversed() {
                if m.isMatch && !prev, !pieces.isEmpty {
                    pieces[pieces.count - 1].0 = m.start
                } else {
                    pieces.append((m.start, m.end, false))
                }
                prev = m.isMatch
            }
            pieces.reverse()
        }
        if maxPieces < pieces.count, pieces.lazy.filter({ !$0.2 && $0.1 > $0.0 }).count > maxPieces {
            throw .tooManyTokens(limit: maxPieces)
        }
        var out: [NormalizedString] = []
        out.reserveCapacity(pieces.count)
        for p in pieces where !p.2 && p.1 > p.0 { out.append(slice(p.0, p.1)) }
        return out
    }
}

public enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

struct PatternMatch {
    var start: Int
    var end: Int
    var isMatch: Bool
}

/// What a Split / Replace looks for: a literal string, a regex, or a per-scalar predicate.
enum SplitPattern: Sendable {
    case literal([UInt32])
    case regex(Regex)
    case predicate(@Sendable (UInt32) -> Bool)

    static func fromJSON(_ json: JSONValue, component: String) throws(TokenizerError) -> SplitPattern {
        if let s = json["String"]?.stringValue { return .literal(s.unicodeScalars.map { $0.value }) }
        if let r = json["Regex"]?.stringValue { return .regex(try Regex(r)) }
        throw .invalidField(component: component, field: "pattern", expected: "{\"String\": …} or {\"Regex\": …}")
    }

    func findMatches(_ s: [UInt32]) throws(TokenizerError) -> [PatternMatch] {
        switch self {
        case .literal(let lit):
            if lit.isEmpty { return [PatternMatch(start: 0, end: s.count, isMatch: false)] }
            if s.isEmpty { return [PatternMatch(start: 0, end: 0, isMatch: false)] }
            var out: [PatternMatch] = []
            var prev = 0, k = 0
            let m = lit.count
            while k + m <= s.count {
                if s[k] == lit[0] && s[k..<(k + m)].elementsEqual(lit) {
                    if prev != k { out.append(PatternMatch(start: prev, end: k, isMatch: false)) }
                    out.append(PatternMatch(start: k, end: k + m, isMatch: true))
                    k += m
                    prev = k
                } else {
                    k += 1
                }
            }
            if prev != s.count { out.append(PatternMatch(start: prev, end: s.count, isMatch: false)) }
            return out
        case .regex(let re):
            if s.isEmpty { return [PatternMatch(start: 0, end: 0, isMatch: false)] }
            let found = try s.withUnsafeBufferPointer { (b: UnsafeBufferPointer<UInt32>) throws(TokenizerError) in try re.findAll(b) }
            var out: [PatternMatch] = []
            out.reserveCapacity(found.count * 2 + 1)
            var prev = 0
            for (a, b) in found {
                if prev != a { out.append(PatternMatch(start: prev, end: a, isMatch: false)) }
                out.append(PatternMatch(start: a, end: b, isMatch: true))
                prev = b
            }
            if prev != s.count { out.append(PatternMatch(start: prev, end: s.count, isMatch: false)) }
            return out
        case .predicate(let f):
            if s.isEmpty { return [PatternMatch(start: 0, end: 0, isMatch: false)] }
            var out: [PatternMatch] = []
            var last = 0
            for k in 0..<s.count where f(s[k]) {
                if last < k { out.append(PatternMatch(start: last, end: k, isMatch: false)) }
                out.append(PatternMatch(start: k, end: k + 1, isMatch: true))
                last = k + 1
            }
            if s.count > last { out.append(PatternMatch(start: last, end: s.count, isMatch: false)) }
            return out
        }
    }
}

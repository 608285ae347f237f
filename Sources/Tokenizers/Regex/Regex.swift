/// A compiled regular expression with Oniguruma (Ruby syntax) semantics: leftmost-first,
/// backtracking, Unicode classes. Operates on arrays of Unicode scalar values and returns
/// scalar offsets.
///
/// Two engines share the semantics (docs in Regex+Search.swift): a plain backtracker, fast on
/// ordinary text, and a memoizing backtracker whose work is bounded by (program size × text
/// length) for the patterns tokenizers use. A search starts on the first and moves to the second
/// once its work outgrows the text; a search that exhausts its step budget throws
/// `TokenizerError.regexBudgetExceeded` instead of reporting "no match".
public struct Regex: Sendable {
    enum Inst: Sendable {
        case cls(Int32)  // one scalar in class
        case rep(cls: Int32, min: Int32, max: Int32, mode: UInt8)  // 0 greedy, 1 lazy, 2 possessive
        case split(Int32, Int32)  // try first, backtrack to second
        case jmp(Int32)
        case look(sub: Int32, ahead: Bool, negate: Bool, length: Int32)
        case atomic(sub: Int32)
        case assert(RegexAssertion)
        case match
    }

    public let pattern: String
    /// Program of the plain backtracker (single-class repeats are one `rep` instruction).
    let insts: [Inst]
    /// Program of the memoizing engine: the same with every repeat expanded into a loop.
    let memoInsts: [Inst]
    /// Number of `memoInsts` that belong to the main program (sub-programs follow).
    let memoMainCount: Int
    let classes: [CharClass]
    /// All classes' BMP bitmaps, 1024 words each, so the matcher never copies a `CharClass`.
    let bitmaps: [UInt64]
    /// BMP scalars a match can start with (1024 words; scalars past the BMP are always tried), or
    /// empty when the pattern can match the empty string or starts with an atomic group: start
    /// positions whose scalar is not in it are skipped without running the program.
    let firstScalars: [UInt64]

    public init(_ pattern: String) throws(TokenizerError) {
        if pattern.utf8.count > 1 << 20 {
            throw .inputTooLarge(what: "regex pattern", size: pattern.utf8.count, limit: 1 << 20)
        }
        var parser = RegexParser(pattern)
        let node = try parser.parse()
        var c = RegexCompiler(pattern: pattern)
        try c.compileProgram(node)
        var e = RegexCompiler(pattern: pattern, expandRepeats: true)
        try e.compileProgram(node)
        guard e.classes.count == c.classes.count else {
            throw .invalidRegex(pattern: pattern, reason: "internal error: the two programs disagree on classes")
        }
        self.pattern = pattern
        self.insts = c.insts
        self.memoInsts = e.insts
        self.memoMainCount = e.mainCount
        var cls = c.classes
        var flat: [UInt64] = []
        flat.reserveCapacity(cls.count * 1024)
        for k in cls.indices {
            cls[k].finalize()
            flat.append(contentsOf: cls[k].bitmap)
        }
        self.classes = cls
        self.bitmaps = flat
        self.firstScalars = Regex.firstScalars(c.insts, bitmaps: flat)
    }

    /// The union of the classes that can consume the first scalar of a match (lookarounds and
    /// assertions are passed over, which can only make the set larger); empty when the program can
    /// reach `match` without consuming anything or starts with an atomic group.
    static func firstScalars(_ insts: [Inst], bitmaps: [UInt64]) -> [UInt64] {
        var set = [UInt64](repeating: 0, count: 1024)
        var seen = Set<Int>()
        var todo = [0]
        while let pc = todo.popLast() {
            guard pc < insts.count, seen.insert(pc).inserted else { continue }
            switch insts[pc] {
            case .cls(let c):
                for w in 0..<1024 { set[w] |= bitmaps[Int(c) << 10 | w] }
            case .rep(let c, let minC, _, _):
                for w in 0..<1024 { set[w] |= bitmaps[Int(c) << 10 | w] }
                if minC == 0 { todo.append(pc + 1) }
            case .split(let a, let b):
                todo.append(Int(a))
                todo.append(Int(b))
            case .jmp(let a): todo.append(Int(a))
            case .look, .assert: todo.append(pc + 1)
            case .atomic, .match: return []
            }
        }
        return set
    }

    /// Escapes a literal string as a pattern.
    public static func escaped(_ s: String) throws(TokenizerError) -> Regex {
        var out = ""
        for u in s.unicodeScalars {
            if "\\^$.|?*+()[]{}-".unicodeScalars.contains(u) { out.append("\\") }
            if u == "\n" {
                out += "\\n"
                continue
            }
            out.unicodeScalars.append(u)
        }
        return try Regex(out)
    }

    /// All non-overlapping matches, as Rust's `onig` `find_iter` reports them.
    func findAll(_ s: UnsafeBufferPointer<UInt32>) throws(TokenizerError) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        var ctx = SearchContext(regex: self, length: s.count)
        defer { Regex.stepCounter?.add(ctx.work) }
        if Regex.memoizeFromStart { try handOver(&ctx) }
        var lastEnd = 0
        var lastMatchEnd = -1
        while lastEnd <= s.count {
            guard let (ms, me) = try search(s, from: lastEnd, &ctx) else { break }
            if ms == me && lastMatchEnd == me {
                lastEnd += 1
                continue
            }
            lastEnd = me
            lastMatchEnd = me
            out.append((ms, me))
        }
        return out
    }

    @inline(__always)
    func hit(_ bm: UnsafeBufferPointer<UInt64>, _ c: Int32, _ v: UInt32) -> Bool {
        if v < 0x10000 { return bm[Int(c) << 10 | Int(v >> 6)] & (1 << UInt64(v & 63)) != 0 }
        return classes[Int(c)].slowMatches(v)
    }

    static func check(_ a: RegexAssertion, _ pos: Int, _ s: UnsafeBufferPointer<UInt32>) -> Bool {
        let n = s.count
        switch a {
        case .lineStart: return pos == 0 || s[pos - 1] == 0x0A
        case .lineEnd: return pos == n || s[pos] == 0x0A
        case .textStart: return pos == 0
        case .textEnd: return pos == n
        case .textEndNewline: return pos == n || (pos == n - 1 && s[pos] == 0x0A)
        case .wordBoundary, .notWordBoundary:
            let before = pos > 0 && UnicodeTables.isWord(s[pos - 1])
            let after = pos < n && UnicodeTables.isWord(s[pos])
            return (before != after) == (a == .wordBoundary)
        }
    }
}

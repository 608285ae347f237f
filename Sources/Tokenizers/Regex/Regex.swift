/// A compiled regular expression with Oniguruma (Ruby syntax) semantics: leftmost-first,
/// backtracking, Unicode classes. Operates on arrays of Unicode scalar values and returns
/// scalar offsets.
public struct Regex: Sendable {
    enum Inst: Sendable {
        case cls(Int32)                                   // one scalar in class
        case rep(cls: Int32, min: Int32, max: Int32, mode: UInt8)  // 0 greedy, 1 lazy, 2 possessive
        case split(Int32, Int32)                          // try first, backtrack to second
        case jmp(Int32)
        case look(sub: Int32, ahead: Bool, negate: Bool, length: Int32)
        case atomic(sub: Int32)
        case assert(RegexAssertion)
        case match
    }

    public let pattern: String
    let insts: [Inst]
    let classes: [CharClass]
    /// All classes' BMP bitmaps, 1024 words each, so the matcher never copies a `CharClass`.
    let bitmaps: [UInt64]
    /// Maximum backtracking steps per match attempt (like Oniguruma's retry limit).
    static let stepLimit = 20_000_000

    public init(_ pattern: String) throws(TokenizerError) {
        if pattern.utf8.count > 1 << 20 {
            throw .inputTooLarge(what: "regex pattern", size: pattern.utf8.count, limit: 1 << 20)
        }
        var parser = RegexParser(pattern)
        let node = try parser.parse()
        var c = RegexCompiler(pattern: pattern)
        try c.compileProgram(node)
        self.pattern = pattern
        self.insts = c.insts
        var cls = c.classes
        var flat: [UInt64] = []
        flat.reserveCapacity(cls.count * 1024)
        for k in cls.indices {
            cls[k].finalize()
            flat.append(contentsOf: cls[k].bitmap)
        }
        self.classes = cls
        self.bitmaps = flat
    }

    /// Escapes a literal string as a pattern.
    public static func escaped(_ s: String) throws(TokenizerError) -> Regex {
        var out = ""
        for u in s.unicodeScalars {
            if "\\^$.|?*+()[]{}-".unicodeScalars.contains(u) { out.append("\\") }
            if u == "\n" { out += "\\n"; continue }
            out.unicodeScalars.append(u)
        }
        return try Regex(out)
    }

    /// All non-overlapping matches, as Rust's `onig` `find_iter` reports them.
    func findAll(_ s: UnsafeBufferPointer<UInt32>) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        var stack: [Frame] = []
        stack.reserveCapacity(64)
        var lastEnd = 0
        var lastMatchEnd = -1
        while lastEnd <= s.count {
            guard let (ms, me) = search(s, from: lastEnd, stack: &stack) else { break }
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

    func search(_ s: UnsafeBufferPointer<UInt32>, from: Int, stack: inout [Frame]) -> (Int, Int)? {
        var start = from
        while start <= s.count {
            if let end = run(pc: 0, pos: start, s, stack: &stack) { return (start, end) }
            start += 1
        }
        return nil
    }

    struct Frame {
        var pc: Int32
        var pos: Int32
        var aux: Int32
        var kind: UInt8  // 0 alternative, 1 greedy repeat retry, 2 lazy repeat extend
    }

    /// Runs the program from `pc` at `pos`; returns the end position of the first match found.
    func run(pc startPC: Int, pos startPos: Int, _ s: UnsafeBufferPointer<UInt32>, stack: inout [Frame]) -> Int? {
        let base = stack.count
        defer { stack.removeSubrange(base...) }
        var pc = startPC
        var pos = startPos
        let n = s.count
        var steps = 0
        return insts.withUnsafeBufferPointer { prog -> Int? in
            bitmaps.withUnsafeBufferPointer { bm -> Int? in
                @inline(__always) func hit(_ c: Int32, _ v: UInt32) -> Bool {
                    if v < 0x10000 { return bm[Int(c) << 10 | Int(v >> 6)] & (1 << UInt64(v & 63)) != 0 }
                    return classes[Int(c)].slowMatches(v)
                }
                while true {
                    var ok = true
                    switch prog[pc] {
                    case .cls(let c):
                        if pos < n && hit(c, s[pos]) { pos += 1; pc += 1 } else { ok = false }
                    case .rep(let c, let minC, let maxC, let mode):
                        let limit = maxC < 0 ? n : min(n, pos + Int(maxC))
                        let minEnd = pos + Int(minC)
                        if minEnd > n { ok = false; break }
                        if mode == 1 {
                            var p = pos
                            while p < minEnd { if !hit(c, s[p]) { break }; p += 1 }
                            if p < minEnd { ok = false; break }
                            if p < limit { stack.append(Frame(pc: Int32(pc), pos: Int32(p), aux: Int32(limit), kind: 2)) }
                            pos = p; pc += 1
                        } else {
                            var p = pos
                            while p < limit && hit(c, s[p]) { p += 1 }
                            if p < minEnd { ok = false; break }
                            if mode == 0 && p > minEnd { stack.append(Frame(pc: Int32(pc), pos: Int32(p), aux: Int32(minEnd), kind: 1)) }
                            pos = p; pc += 1
                        }
                    case .split(let a, let b):
                        stack.append(Frame(pc: b, pos: Int32(pos), aux: 0, kind: 0))
                        pc = Int(a)
                    case .jmp(let a):
                        pc = Int(a)
                    case .look(let sub, let ahead, let negate, let length):
                        var found: Bool
                        if ahead {
                            found = run(pc: Int(sub), pos: pos, s, stack: &stack) != nil
                        } else {
                            let st = pos - Int(length)
                            found = st >= 0 && run(pc: Int(sub), pos: st, s, stack: &stack) == pos
                        }
                        if found == negate { ok = false } else { pc += 1 }
                    case .atomic(let sub):
                        if let e = run(pc: Int(sub), pos: pos, s, stack: &stack) { pos = e; pc += 1 } else { ok = false }
                    case .assert(let a):
                        if Regex.check(a, pos, s) { pc += 1 } else { ok = false }
                    case .match:
                        return pos
                    }
                    if ok { continue }
                    // backtrack
                    steps += 1
                    if steps > Regex.stepLimit { return nil }
                    var resumed = false
                    while stack.count > base, !resumed {
                        let f = stack.removeLast()
                        switch f.kind {
                        case 0:
                            pc = Int(f.pc); pos = Int(f.pos); resumed = true
                        case 1:
                            let p = Int(f.pos) - 1
                            if p > Int(f.aux) { stack.append(Frame(pc: f.pc, pos: Int32(p), aux: f.aux, kind: 1)) }
                            pc = Int(f.pc) + 1; pos = p; resumed = true
                        default:
                            let p = Int(f.pos)
                            guard case .rep(let c, _, _, _) = prog[Int(f.pc)], p < Int(f.aux), hit(c, s[p]) else { continue }
                            if p + 1 < Int(f.aux) { stack.append(Frame(pc: f.pc, pos: Int32(p + 1), aux: f.aux, kind: 2)) }
                            pc = Int(f.pc) + 1; pos = p + 1; resumed = true
                        }
                    }
                    if !resumed { return nil }
                }
            }
        }
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

struct RegexCompiler {
    let pattern: String
    var insts: [Regex.Inst] = []
    var classes: [CharClass] = []
    var pending: [(Int, RegexNode)] = []  // (inst index to patch, sub-program)
    static let maxInsts = 200_000

    init(pattern: String) { self.pattern = pattern }

    mutating func emit(_ i: Regex.Inst) throws(TokenizerError) -> Int {
        if insts.count >= RegexCompiler.maxInsts {
            throw .invalidRegex(pattern: pattern, reason: "pattern too large after expansion")
        }
        insts.append(i)
        return insts.count - 1
    }

    mutating func addClass(_ c: CharClass) -> Int32 {
        classes.append(c)
        return Int32(classes.count - 1)
    }

    mutating func compileProgram(_ node: RegexNode) throws(TokenizerError) {
        try compile(node)
        _ = try emit(.match)
        while let (at, sub) = pending.popLast() {
            let start = Int32(insts.count)
            try compile(sub)
            _ = try emit(.match)
            switch insts[at] {
            case .look(_, let ahead, let negate, let length):
                insts[at] = .look(sub: start, ahead: ahead, negate: negate, length: length)
            case .atomic: insts[at] = .atomic(sub: start)
            default: break
            }
        }
    }

    mutating func compile(_ node: RegexNode) throws(TokenizerError) {
        switch node {
        case .empty: break
        case .cls(let c): _ = try emit(.cls(addClass(c)))
        case .concat(let xs): for x in xs { try compile(x) }
        case .alt(let xs):
            var jumps: [Int] = []
            for (k, x) in xs.enumerated() {
                if k == xs.count - 1 {
                    try compile(x)
                } else {
                    let sp = try emit(.split(0, 0))
                    try compile(x)
                    jumps.append(try emit(.jmp(0)))
                    insts[sp] = .split(Int32(sp + 1), Int32(insts.count))
                }
            }
            for j in jumps { insts[j] = .jmp(Int32(insts.count)) }
        case .look(let sub, let ahead, let negate):
            let at = try emit(.look(sub: 0, ahead: ahead, negate: negate, length: Int32(sub.fixedLength ?? 0)))
            pending.append((at, sub))
        case .atomic(let sub):
            let at = try emit(.atomic(sub: 0))
            pending.append((at, sub))
        case .assert(let a): _ = try emit(.assert(a))
        case .rep(let sub, let minC, let maxC, let greedy, let possessive):
            if case .cls(let c) = sub {
                _ = try emit(.rep(cls: addClass(c), min: Int32(minC), max: Int32(maxC), mode: possessive ? 2 : (greedy ? 0 : 1)))
                return
            }
            if possessive {
                try compile(.atomic(.rep(sub, min: minC, max: maxC, greedy: true, possessive: false)))
                return
            }
            for _ in 0..<minC { try compile(sub) }
            if maxC < 0 {
                if sub.nullable {
                    // Oniguruma stops an iteration that matched empty; approximate with one optional pass.
                    try compileOptional(sub, greedy: greedy)
                    return
                }
                let loop = try emit(.split(0, 0))
                try compile(sub)
                _ = try emit(.jmp(Int32(loop)))
                let out = Int32(insts.count)
                insts[loop] = greedy ? .split(Int32(loop + 1), out) : .split(out, Int32(loop + 1))
            } else if maxC > minC {
                var splits: [Int] = []
                for _ in minC..<maxC {
                    splits.append(try emit(.split(0, 0)))
                    try compile(sub)
                }
                let out = Int32(insts.count)
                for sp in splits { insts[sp] = greedy ? .split(Int32(sp + 1), out) : .split(out, Int32(sp + 1)) }
            }
        }
    }

    mutating func compileOptional(_ sub: RegexNode, greedy: Bool) throws(TokenizerError) {
        let sp = try emit(.split(0, 0))
        try compile(sub)
        let out = Int32(insts.count)
        insts[sp] = greedy ? .split(Int32(sp + 1), out) : .split(out, Int32(sp + 1))
    }
}

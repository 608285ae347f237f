/// Compiles a parsed pattern to a program. With `expandRepeats` a repeated single-character class
/// becomes a plain loop of `cls`/`split` instructions instead of one `rep` instruction, so that
/// every backtracking choice is a (pc, position) state the memoizing engine can record. Classes
/// are added in the same order in both modes, so both programs share one class table.
struct RegexCompiler {
    let pattern: String
    let expandRepeats: Bool
    var insts: [Regex.Inst] = []
    /// Instructions of the main program (sub-programs of lookarounds and atomic groups follow).
    var mainCount = 0
    var classes: [CharClass] = []
    var pending: [(Int, RegexNode)] = []  // (inst index to patch, sub-program)
    static let maxInsts = 200_000

    init(pattern: String, expandRepeats: Bool = false) {
        self.pattern = pattern
        self.expandRepeats = expandRepeats
    }

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
        mainCount = insts.count
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
        case .clsRef(let k): _ = try emit(.cls(Int32(k)))
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
                let k = addClass(c)
                if !expandRepeats {
                    _ = try emit(.rep(cls: k, min: Int32(minC), max: Int32(maxC), mode: possessive ? 2 : (greedy ? 0 : 1)))
                } else if possessive {
                    let at = try emit(.atomic(sub: 0))
                    pending.append((at, .rep(.clsRef(Int(k)), min: minC, max: maxC, greedy: true, possessive: false)))
                } else {
                    try compileRepeat(.clsRef(Int(k)), minC, maxC, greedy: greedy)
                }
                return
            }
            if possessive {
                try compile(.atomic(.rep(sub, min: minC, max: maxC, greedy: true, possessive: false)))
                return
            }
            try compileRepeat(sub, minC, maxC, greedy: greedy)
        }
    }

    /// `sub{minC,maxC}` as copies and loops (maxC < 0: unbounded).
    mutating func compileRepeat(_ sub: RegexNode, _ minC: Int, _ maxC: Int, greedy: Bool) throws(TokenizerError) {
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

    mutating func compileOptional(_ sub: RegexNode, greedy: Bool) throws(TokenizerError) {
        let sp = try emit(.split(0, 0))
        try compile(sub)
        let out = Int32(insts.count)
        insts[sp] = greedy ? .split(Int32(sp + 1), out) : .split(out, Int32(sp + 1))
    }
}

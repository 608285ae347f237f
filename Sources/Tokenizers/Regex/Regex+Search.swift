import Foundation

/// How a search spends its work.
///
/// Both engines explore the same tree of choices in the same order (leftmost-first, as
/// Oniguruma does), so they report the same matches; they differ only in cost:
/// - the plain backtracker (`runFast`) re-explores a state (instruction, position) every time a
///   path reaches it. On ordinary text that is cheap, but across start positions it can be
///   quadratic (` *\n` on a run of spaces) and within one attempt exponential (`(x+x+)+y`).
/// - the memoizing backtracker (`runMemo`) records every state it has explored in a bit table.
///   Whatever follows a state depends only on the state, and the first exploration of a state has
///   the highest priority; so when a state comes up again, its first exploration failed (a match
///   would have ended the search) and it is skipped. Every state of the main program is explored
///   at most once per `findAll`, i.e. at most (instructions × (length + 1)) steps in all.
/// A `findAll` starts with the plain engine and hands over to the memoizing one (re-running the
/// current attempt, which has no side effects) as soon as its work passes `fastLimit`, a small
/// multiple of the text length. The memoizing engine counts its steps against `budget`, also
/// proportional to the text length; only sub-programs (lookarounds, atomic groups) that succeed
/// from many positions after long explorations can exhaust it, and then the search throws
/// `TokenizerError.regexBudgetExceeded` instead of reporting a wrong "no match".
struct SearchContext {
    let length: Int
    /// Steps done so far (instructions, characters scanned by repeats, backtracks).
    var work = 0
    /// Work after which the plain engine stops (handover to the memoizing engine, or the budget).
    var fastLimit: Int
    /// Work after which the search fails with `regexBudgetExceeded`.
    let budget: Int
    var stack: [Regex.Frame] = []
    /// The memoizing engine's state, once handed over.
    var memo: MemoTable?
    /// Nesting of `runMemo` (0: not running; 1: main program; more: inside a sub-program).
    var depth = 0
    /// States marked inside sub-programs (cleared again when the sub-program succeeds).
    var log: [Int] = []

    /// Plain-engine work allowed per text position before the handover.
    static let fastStepsPerPosition = 64
    /// Memoizing-engine steps allowed per (instruction, text position).
    static let memoStepsPerState = 16
    /// Fixed allowances on top (small: a text split into many short pieces runs one search per
    /// piece, and the sum over the pieces must stay proportional to the text).
    static let fastBaseSteps = 256
    static let budgetBaseSteps = 4_096
    /// Largest memo table (bits) a search may allocate.
    static let maxMemoBits = 1 << 29

    init(regex: Regex, length n: Int) {
        length = n
        let positions = n + 1
        let fast = Self.fastStepsPerPosition * positions + Self.fastBaseSteps
        let memoBits = regex.memoInsts.count.multipliedReportingOverflow(by: positions)
        let memoPossible = !memoBits.overflow && memoBits.partialValue <= Self.maxMemoBits
        let memoSteps = Self.memoStepsPerState * (regex.memoInsts.count + 1) * positions
        budget = fast + memoSteps + Self.budgetBaseSteps
        fastLimit = memoPossible ? fast : budget
        stack.reserveCapacity(64)
    }
}

extension Regex {
    struct Frame {
        var pc: Int32
        var pos: Int32
        var aux: Int32
        var kind: UInt8  // 0 alternative, 1 greedy repeat retry, 2 lazy repeat extend
    }

    /// Result codes of the engines besides a match end (≥ 0).
    static let noMatch = -1
    static let outOfSteps = -2

    /// The leftmost match starting at or after `from`.
    func search(_ s: UnsafeBufferPointer<UInt32>, from: Int, _ ctx: inout SearchContext) throws(TokenizerError) -> (Int, Int)? {
        var start = from
        let n = s.count
        let prefilter = !firstScalars.isEmpty
        while start <= n {
            if prefilter {
                let first = start
                while start < n {
                    let v = s[start]
                    if v >= 0x10000 || firstScalars[Int(v >> 6)] & (1 << UInt64(v & 63)) != 0 { break }
                    start += 1
                }
                ctx.work += start - first
                // A match consumes at least one scalar: none can start at the end.
                if start == n { return nil }
            }
            let end: Int
            if ctx.memo == nil {
                end = runFast(pc: 0, pos: start, s, &ctx)
                if end == Regex.outOfSteps {
                    try handOver(&ctx)
                    continue  // the same start again, memoized
                }
            } else {
                end = runMemo(pc: 0, pos: start, s, &ctx)
                if end == Regex.outOfSteps { throw budgetError(ctx) }
                if end >= 0 { ctx.memo?.clearColumn(end) }
            }
            if end >= 0 { return (start, end) }
            start += 1
        }
        return nil
    }

    func budgetError(_ ctx: SearchContext) -> TokenizerError {
        .regexBudgetExceeded(pattern: pattern, length: ctx.length, steps: ctx.work)
    }

    /// Switches the search to the memoizing engine, or throws when it cannot help.
    func handOver(_ ctx: inout SearchContext) throws(TokenizerError) {
        guard ctx.memo == nil, ctx.fastLimit < ctx.budget,
            let table = MemoTable(width: memoInsts.count, positions: ctx.length + 1)
        else { throw budgetError(ctx) }
        ctx.memo = table
        ctx.stack.removeAll(keepingCapacity: true)
    }

    /// The plain backtracker: runs the program from `pc` at `pos`; returns the end of the first
    /// match found, `noMatch`, or `outOfSteps` once the search's work passes `fastLimit`.
    func runFast(pc startPC: Int, pos startPos: Int, _ s: UnsafeBufferPointer<UInt32>, _ ctx: inout SearchContext) -> Int {
        let base = ctx.stack.count
        defer { ctx.stack.removeSubrange(base...) }
        var pc = startPC
        var pos = startPos
        let n = s.count
        return insts.withUnsafeBufferPointer { prog -> Int in
            bitmaps.withUnsafeBufferPointer { bm -> Int in
                while true {
                    var ok = true
                    ctx.work += 1
                    switch prog[pc] {
                    case .cls(let c):
                        if pos < n && hit(bm, c, s[pos]) {
                            pos += 1
                            pc += 1
                        } else {
                            ok = false
                        }
                    case .rep(let c, let minC, let maxC, let mode):
                        let limit = maxC < 0 ? n : min(n, pos + Int(maxC))
                        let minEnd = pos + Int(minC)
                        if minEnd > n {
                            ok = false
                            break
                        }
                        if mode == 1 {
                            var p = pos
                            while p < minEnd {
                                if !hit(bm, c, s[p]) { break }
                                p += 1
                            }
                            ctx.work += p - pos
                            if p < minEnd {
                                ok = false
                                break
                            }
                            if p < limit { ctx.stack.append(Frame(pc: Int32(pc), pos: Int32(p), aux: Int32(limit), kind: 2)) }
                            pos = p
                            pc += 1
                        } else {
                            var p = pos
                            while p < limit && hit(bm, c, s[p]) { p += 1 }
                            ctx.work += p - pos
                            if p < minEnd {
                                ok = false
                                break
                            }
                            if mode == 0 && p > minEnd {
                                ctx.stack.append(Frame(pc: Int32(pc), pos: Int32(p), aux: Int32(minEnd), kind: 1))
                            }
                            pos = p
                            pc += 1
                        }
                    case .split(let a, let b):
                        ctx.stack.append(Frame(pc: b, pos: Int32(pos), aux: 0, kind: 0))
                        pc = Int(a)
                    case .jmp(let a):
                        pc = Int(a)
                    case .look(let sub, let ahead, let negate, let length):
                        var found: Bool
                        if ahead {
                            let r = runFast(pc: Int(sub), pos: pos, s, &ctx)
                            if r == Regex.outOfSteps { return r }
                            found = r >= 0
                        } else {
                            let st = pos - Int(length)
                            let r = st >= 0 ? runFast(pc: Int(sub), pos: st, s, &ctx) : Regex.noMatch
                            if r == Regex.outOfSteps { return r }
                            found = r == pos
                        }
                        if found == negate { ok = false } else { pc += 1 }
                    case .atomic(let sub):
                        let r = runFast(pc: Int(sub), pos: pos, s, &ctx)
                        if r == Regex.outOfSteps { return r }
                        if r >= 0 {
                            pos = r
                            pc += 1
                        } else {
                            ok = false
                        }
                    case .assert(let a):
                        if Regex.check(a, pos, s) { pc += 1 } else { ok = false }
                    case .match:
                        return pos
                    }
                    if ok { continue }
                    // backtrack
                    ctx.work += 1
                    if ctx.work > ctx.fastLimit { return Regex.outOfSteps }
                    var resumed = false
                    while ctx.stack.count > base, !resumed {
                        let f = ctx.stack.removeLast()
                        switch f.kind {
                        case 0:
                            pc = Int(f.pc)
                            pos = Int(f.pos)
                            resumed = true
                        case 1:
                            let p = Int(f.pos) - 1
                            if p > Int(f.aux) { ctx.stack.append(Frame(pc: f.pc, pos: Int32(p), aux: f.aux, kind: 1)) }
                            pc = Int(f.pc) + 1
                            pos = p
                            resumed = true
                        default:
                            let p = Int(f.pos)
                            guard case .rep(let c, _, _, _) = prog[Int(f.pc)], p < Int(f.aux), hit(bm, c, s[p]) else { continue }
                            if p + 1 < Int(f.aux) { ctx.stack.append(Frame(pc: f.pc, pos: Int32(p + 1), aux: f.aux, kind: 2)) }
                            pc = Int(f.pc) + 1
                            pos = p + 1
                            resumed = true
                        }
                    }
                    if !resumed { return Regex.noMatch }
                }
            }
        }
    }
}

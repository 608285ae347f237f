import Foundation

/// One bit per (instruction of the memo program, text position): set once the state has been
/// explored. Zero-filled lazily by the allocator, so untouched pages cost nothing.
final class MemoTable {
    let width: Int
    let bits: UnsafeMutablePointer<UInt64>

    /// nil when the table cannot be allocated.
    init?(width: Int, positions: Int) {
        let words = (width * positions + 63) >> 6 + 1
        guard let raw = calloc(words, MemoryLayout<UInt64>.stride) else { return nil }
        self.width = width
        bits = raw.bindMemory(to: UInt64.self, capacity: words)
    }

    deinit { free(bits) }

    /// Forgets the states at `pos` (the end of a match: the states of the matching path there did
    /// not fail, and the next search starts at this position).
    func clearColumn(_ pos: Int) {
        for idx in (pos * width)..<(pos * width + width) { bits[idx >> 6] &= ~(1 << UInt64(idx & 63)) }
    }
}

extension Regex {
    /// The memoizing backtracker over `memoInsts` (whose repeats are loops): returns the end of the
    /// first match from `pc` at `pos`, `noMatch`, or `outOfSteps` once the search's budget is spent.
    ///
    /// Main-program states stay marked for the whole `findAll` (see `SearchContext`). A sub-program
    /// (lookaround, atomic group) is run to its first match and then abandoned, so the states of a
    /// successful sub-run did not all fail: they are logged and unmarked when it succeeds. States of a
    /// failed sub-run did fail and stay marked.
    func runMemo(pc startPC: Int, pos startPos: Int, _ s: UnsafeBufferPointer<UInt32>, _ ctx: inout SearchContext) -> Int {
        guard let table = ctx.memo else { return Regex.outOfSteps }
        let bits = table.bits
        let width = table.width
        let n = s.count
        let base = ctx.stack.count
        let logBase = ctx.log.count
        let inSub = ctx.depth > 0
        ctx.depth += 1
        defer {
            ctx.depth -= 1
            ctx.stack.removeSubrange(base...)
        }
        ctx.stack.append(Frame(pc: Int32(startPC), pos: Int32(startPos), aux: 0, kind: 0))
        var result = Regex.noMatch
        memoInsts.withUnsafeBufferPointer { prog in
            bitmaps.withUnsafeBufferPointer { bm in
                threads: while ctx.stack.count > base {
                    let f = ctx.stack.removeLast()
                    var pc = Int(f.pc), pos = Int(f.pos)
                    step: while true {
                        let idx = pos &* width &+ pc
                        let mask: UInt64 = 1 << UInt64(idx & 63)
                        if bits[idx >> 6] & mask != 0 { break step }
                        bits[idx >> 6] |= mask
                        if inSub { ctx.log.append(idx) }
                        ctx.work += 1
                        if ctx.work > ctx.budget {
                            result = Regex.outOfSteps
                            break threads
                        }
                        switch prog[pc] {
                        case .cls(let c):
                            guard pos < n, hit(bm, c, s[pos]) else { break step }
                            pos += 1
                            pc += 1
                        case .split(let a, let b):
                            ctx.stack.append(Frame(pc: b, pos: Int32(pos), aux: 0, kind: 0))
                            pc = Int(a)
                        case .jmp(let a):
                            pc = Int(a)
                        case .look(let sub, let ahead, let negate, let length):
                            let r: Int
                            if ahead {
                                r = runMemo(pc: Int(sub), pos: pos, s, &ctx)
                            } else {
                                let st = pos - Int(length)
                                r = st >= 0 ? runMemo(pc: Int(sub), pos: st, s, &ctx) : Regex.noMatch
                            }
                            if r == Regex.outOfSteps {
                                result = r
                                break threads
                            }
                            let found = ahead ? r >= 0 : r == pos
                            if found == negate { break step }
                            pc += 1
                        case .atomic(let sub):
                            let r = runMemo(pc: Int(sub), pos: pos, s, &ctx)
                            if r == Regex.outOfSteps {
                                result = r
                                break threads
                            }
                            guard r >= 0 else { break step }
                            pos = r
                            pc += 1
                        case .assert(let a):
                            guard Regex.check(a, pos, s) else { break step }
                            pc += 1
                        case .match:
                            result = pos
                            break threads
                        case .rep:
                            // Not emitted into memo programs (the compiler expands repeats).
                            result = Regex.outOfSteps
                            break threads
                        }
                    }
                }
            }
        }
        if inSub {
            if result >= 0 {
                for k in logBase..<ctx.log.count {
                    let idx = ctx.log[k]
                    bits[idx >> 6] &= ~(1 << UInt64(idx & 63))
                }
            }
            ctx.log.removeSubrange(logBase...)
        }
        return result
    }
}

/// A token produced by a model or an added-token match. Offsets are scalar offsets within the
/// piece's normalized text. `value` overrides the vocabulary string when it differs.
struct Token: Sendable {
    var id: Int32
    var start: Int32
    var end: Int32
    var value: String?
}

struct PreSplit: Sendable {
    var normalized: NormalizedString
    var tokens: [Token]?
}

/// The library's `PreTokenizedString`: pieces of normalized text, some already turned into tokens.
struct PreTokenizedString: Sendable {
    var splits: [PreSplit]
    /// When set, more pieces than this throw `tooManyTokens(limit:)` as soon as a split makes them
    /// (set only when the model gives every non-empty piece at least one token, so the count of
    /// pieces is a lower bound of the count of tokens): a hostile input is rejected before all of
    /// its pieces are made.
    var pieceLimit: Int? = nil

    /// Replaces every untokenized piece by the pieces `f` returns; empty pieces are dropped. `f`
    /// gets the piece's index, the piece and how many pieces it may still make (for
    /// `NormalizedString.split(maxPieces:)`).
    mutating func split(_ f: (Int, NormalizedString, Int) throws(TokenizerError) -> [NormalizedString]) throws(TokenizerError) {
        var out: [PreSplit] = []
        out.reserveCapacity(splits.count * 2)
        let limit = pieceLimit ?? .max
        for (i, sp) in splits.enumerated() {
            if sp.tokens != nil {
                out.append(sp)
            } else {
                let pieces: [NormalizedString]
                do {
                    pieces = try f(i, sp.normalized, max(0, limit - out.count))
                } catch .tooManyTokens {
                    throw .tooManyTokens(limit: limit)
                }
                for piece in pieces where !piece.isEmpty {
                    out.append(PreSplit(normalized: piece, tokens: nil))
                }
            }
            if out.count > limit { throw .tooManyTokens(limit: limit) }
        }
        splits = out
    }

    mutating func normalize(_ f: (inout NormalizedString) -> Void) {
        for k in splits.indices where splits[k].tokens == nil {
            f(&splits[k].normalized)
        }
    }
}

/// GPT-2's byte ↔ printable-character table.
enum ByteLevelTable {
    static let byteToChar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// Inverse table indexed by scalar (0..<324); -1 when not a byte symbol.
    static let charToByte: [Int16] = {
        var inv = [Int16](repeating: -1, count: 324)
        for (b, c) in byteToChar.enumerated() { inv[Int(c)] = Int16(b) }
        return inv
    }()

    @inline(__always)
    static func byte(for c: UInt32) -> UInt8? {
        if c < 324, charToByte[Int(c)] >= 0 { return UInt8(charToByte[Int(c)]) }
        return nil
    }

    /// Maps a normalized piece to byte-level symbols; every symbol keeps the alignment of its scalar.
    static func transform(_ ns: inout NormalizedString) {
        var out = [UInt32]()
        var al = [Span]()
        out.reserveCapacity(ns.count + 4)
        al.reserveCapacity(ns.count + 4)
        for k in 0..<ns.scalars.count {
            let v = ns.scalars[k]
            let a = ns.align[k]
            if v < 0x80 {
                out.append(byteToChar[Int(v)])
                al.append(a)
            } else if v < 0x800 {
                out.append(byteToChar[Int(0xC0 | (v >> 6))])
                out.append(byteToChar[Int(0x80 | (v & 0x3F))])
                al.append(a)
                al.append(a)
            } else if v < 0x10000 {
                out.append(byteToChar[Int(0xE0 | (v >> 12))])
                out.append(byteToChar[Int(0x80 | ((v >> 6) & 0x3F))])
                out.append(byteToChar[Int(0x80 | (v & 0x3F))])
                al.append(a)
                al.append(a)
                al.append(a)
            } else {
                out.append(byteToChar[Int(0xF0 | (v >> 18))])
                out.append(byteToChar[Int(0x80 | ((v >> 12) & 0x3F))])
                out.append(byteToChar[Int(0x80 | ((v >> 6) & 0x3F))])
                out.append(byteToChar[Int(0x80 | (v & 0x3F))])
                al.append(a)
                al.append(a)
                al.append(a)
                al.append(a)
            }
        }
        ns.scalars = out
        ns.align = al
    }
}

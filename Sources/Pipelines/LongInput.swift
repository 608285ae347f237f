import Tokenizers
import Wire

/// Splitting of an over-long classification input into windows. The special tokens the template
/// puts before and after the text (`<s>` … for NorBERT) are repeated in every window; the text
/// tokens are cut into runs of `maxTokens - specials` tokens, consecutive runs sharing `stride`
/// tokens. An input within the maximum is one window.
struct LongInput {
    /// What an `input_too_long` error of a classification input adds.
    static let windowHint = " (set option \"overflow\": \"window\" to classify it in windows)"

    /// Token ids of each window (special tokens included).
    var sequences: [[Int]]
    /// Index in the full encoding of the first text token of each window.
    var starts: [Int]
    /// Special tokens before / after the text in every window.
    var prefix: Int
    var suffix: Int

    var tokenCount: Int { sequences.reduce(0) { $0 + $1.count } }

    /// Callers price the windows first (``WindowExtent/classification``, checked against the
    /// limits); `built` counts the windows as they are made.
    static func split(_ e: Encoding, maxTokens: Int, policy: OverflowPolicy, stride: Int, what: String, built: inout Int)
        throws(PipelineError) -> LongInput
    {
        let n = e.count
        var prefix = 0
        while prefix < n && e.specialTokensMask[prefix] == 1 { prefix += 1 }
        var suffix = 0
        while suffix < n - prefix && e.specialTokensMask[n - 1 - suffix] == 1 { suffix += 1 }
        if n <= maxTokens {
            built += 1
            return LongInput(sequences: [e.ids], starts: [prefix], prefix: prefix, suffix: suffix)
        }
        guard policy == .window else {
            throw PipelineError(
                .inputTooLong,
                """
                \(what) is \(n) tokens, more than the maximum of \(maxTokens)\(windowHint)
                """
            )
        }
        let room = maxTokens - prefix - suffix
        guard room > stride, room > 0 else {
            throw PipelineError(.invalidValue, "option 'stride' (\(stride)) must be smaller than the window's \(max(room, 0)) text tokens")
        }
        let head = Array(e.ids[0..<prefix]), tail = Array(e.ids[(n - suffix)..<n])
        let contentEnd = n - suffix
        var sequences: [[Int]] = [], starts: [Int] = []
        var a = prefix
        while true {
            let b = min(a + room, contentEnd)
            sequences.append(head + Array(e.ids[a..<b]) + tail)
            starts.append(a)
            built += 1
            if b == contentEnd { break }
            a += room - stride
        }
        return LongInput(sequences: sequences, starts: starts, prefix: prefix, suffix: suffix)
    }

    /// For text token `t` of the full encoding: the window and the position inside it that sees
    /// it farthest from a window edge (the earlier window on ties).
    func bestPosition(ofToken t: Int) -> (window: Int, position: Int)? {
        var best: (window: Int, position: Int, margin: Int)? = nil
        for (w, s) in starts.enumerated() {
            let length = sequences[w].count - prefix - suffix
            let j = t - s
            guard j >= 0 && j < length else { continue }
            let margin = min(j, length - 1 - j)
            if best == nil || margin > (best?.margin ?? 0) { best = (w, prefix + j, margin) }
        }
        return best.map { ($0.window, $0.position) }
    }
}

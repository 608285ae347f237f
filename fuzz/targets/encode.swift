// libFuzzer target: the NorBERT tokenizer (Tests/Fixtures/tokenizer, or $FUZZ_TOKENIZER_DIR) on
// arbitrary input, decoded as UTF-8 with replacement; a NUL byte splits it into text and pair.
// Built by scripts/fuzz.sh, not by SwiftPM.
import Foundation
import Tokenizers

#if canImport(Glibc)
    import Glibc
#endif

/// Calls the LeakSanitizer interface function `name` (`__lsan_disable`, `__lsan_enable`) when linked in.
private func leakSanitizer(_ name: String) {
    guard let symbol = dlsym(nil, name) else { return }
    unsafeBitCast(symbol, to: (@convention(c) () -> Void).self)()
}

/// Built with LeakSanitizer off (its allocations are never reported): LSan cannot follow a
/// reference whose Swift enum case tag sits in the pointer's spare bits (`SplitPattern.regex`'s
/// `Regex` arrays), so this tokenizer, live in a global, would be reported as a "direct leak".
private let tokenizer: Tokenizer = {
    let directory = ProcessInfo.processInfo.environment["FUZZ_TOKENIZER_DIR"] ?? "Tests/Fixtures/tokenizer"
    leakSanitizer("__lsan_disable")
    defer { leakSanitizer("__lsan_enable") }
    do {
        return try Tokenizer(directory: directory)
    } catch {
        fputs("encode fuzzer: cannot load the tokenizer in \(directory): \(error)\n", stderr)
        exit(2)
    }
}()

private let vocabSize = tokenizer.vocabSize

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEncode(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { UnsafeBufferPointer(start: $0, count: size) } ?? UnsafeBufferPointer(start: nil, count: 0)
    var text = String(decoding: bytes, as: UTF8.self)
    var pair: String? = nil
    if let nul = bytes.firstIndex(of: 0) {
        text = String(decoding: bytes[..<nul], as: UTF8.self)
        pair = String(decoding: bytes[(nul + 1)...], as: UTF8.self)
    }
    let encoding: Encoding
    do {
        encoding = try tokenizer.encode(text, pair: pair)
    } catch {
        return 0
    }
    let n = encoding.ids.count
    precondition(
        encoding.tokens.count == n && encoding.offsets.count == n && encoding.typeIds.count == n
            && encoding.attentionMask.count == n && encoding.specialTokensMask.count == n && encoding.wordIds.count == n,
        "encoding fields differ in length")
    let lengths = [text.unicodeScalars.count, pair?.unicodeScalars.count ?? 0]
    let sequenceIds = encoding.sequenceIds
    for (k, id) in encoding.ids.enumerated() {
        precondition(id >= 0 && id < vocabSize, "id \(id) outside the vocabulary")
        let offset = encoding.offsets[k]
        let sequence = sequenceIds[k] ?? 0
        precondition(
            offset.start >= 0 && offset.start <= offset.end && offset.end <= lengths[sequence],
            "token \(k) offset \(offset) outside sequence \(sequence) of \(lengths[sequence]) scalars")
    }
    _ = encoding.utf8Offsets(text: text, pair: pair)
    _ = tokenizer.decode(encoding.ids, skipSpecialTokens: false)
    return 0
}

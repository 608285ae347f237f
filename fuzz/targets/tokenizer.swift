// libFuzzer target: building a `Tokenizer` from arbitrary tokenizer.json bytes; a tokenizer that
// loads then encodes and decodes one short fixed text. Built by scripts/fuzz.sh, not by SwiftPM.
import Foundation
import Tokenizers

private let sample = "Hei, Kari! Ærlig talt: 12 <mask> ord\u{301}.\n  ok"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Data(bytes: $0, count: size) } ?? Data()
    guard let tokenizer = try? Tokenizer(tokenizerJSON: bytes) else { return 0 }
    _ = tokenizer.vocabSize
    if let encoding = try? tokenizer.encode(sample, pair: "ja") {
        precondition(
            encoding.tokens.count == encoding.ids.count && encoding.offsets.count == encoding.ids.count,
            "encoding fields differ in length")
        _ = tokenizer.decode(encoding.ids)
        _ = encoding.utf16Offsets(text: sample, pair: "ja")
    }
    return 0
}

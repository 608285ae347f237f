// libFuzzer target: `PipelineRequest.decode` on arbitrary bytes (one request line), plus the
// JSON parser/writer round trip underneath it. Built by scripts/fuzz.sh, not by SwiftPM.
import Pipelines
import Wire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch PipelineRequest.decode(bytes) {
    case .success(let request):
        precondition(request.task != nil || request.heads != nil, "decoded a request without task or heads")
    case .failure(let failure):
        precondition(!failure.error.message.isEmpty, "empty error message")
    }
    // Whatever parses must print to JSON that parses back to the same text.
    if let value = try? JSONValue.parse(bytes) {
        let text = value.jsonText
        guard let again = try? JSONValue.parse(Array(text.utf8)) else {
            preconditionFailure("printed JSON does not parse: \(text.prefix(200))")
        }
        precondition(again.jsonText == text, "round trip changed the document: \(text.prefix(200))")
    }
    return 0
}

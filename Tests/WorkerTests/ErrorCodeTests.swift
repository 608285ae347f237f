import Foundation
import Pipelines
import TestSupport
import Testing
import Tokenizers
import Wire

@testable import Worker

/// One list of error codes: every code `infer` and `serve` can emit (the pipelines' and the
/// worker's own) is in schemas/error.schema.json, and the schema names no other.
@Suite("Error codes")
struct ErrorCodeTests {
    @Test("schemas/error.schema.json lists exactly ErrorCode (the pipelines' codes and the worker's own)")
    func schemaAgreesWithTheEnums() throws {
        let url = NorbertBinary.packageRoot.appendingPathComponent("schemas/error.schema.json")
        let schema = try JSONValue.parse(Array(try Data(contentsOf: url)), context: "error.schema.json")
        let listed = schema["properties"]?["error"]?["properties"]?["code"]?["enum"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let declared = ErrorCode.allCases.map(\.rawValue)
        #expect(
            Set(listed) == Set(declared),
            "schema only: \(Set(listed).subtracting(declared)); code only: \(Set(declared).subtracting(listed))")
        #expect(Set(declared).count == declared.count, "a code is declared twice")
    }

    @Test("the worker's own error responses validate, with and without the request's id")
    func workerErrorResponsesValidate() throws {
        let engine = try #require(WorkerFixtures.engine)
        let backend = PipelinesBackend(engine: engine, lanes: 1)
        let lines = ErrorCode.allCases.filter { $0.origin == .message }.flatMap { code in
            [nil, "req-1"].map {
                String(decoding: backend.errorResponse(code: code.rawValue, message: "why \"quoted\"", id: $0), as: UTF8.self)
            }
        }
        let failures = SchemaCheck.failures("response", lines)
        #expect(failures.isEmpty, "\(failures)")
    }
}

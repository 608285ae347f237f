import Foundation
import NorBERT
import TestSupport
import Tokenizers
import Wire

@testable import Pipelines

/// Fixture locations (inside the repository, found from this file) and one shared engine.
enum PipelineFixtures {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static func tiny(_ name: String) -> String { root.appendingPathComponent("norbert4-tiny/\(name)").path }
    static let tokenizerDirectory = root.appendingPathComponent("tokenizer").path

    static let headSpecs: [HeadSpec] = TinyHeads.folders.map { HeadSpec(name: $0.name, directory: tiny($0.folder)) }

    /// Every head of the tiny fixture, sharing one encoder.
    static let engine: PipelineEngine? = try? PipelineEngine(heads: headSpecs, tokenizerDirectory: tokenizerDirectory)

    /// The lines of Fixtures/pipelines/<task>/cases.jsonl, parsed.
    static func cases(_ task: String) throws -> [JSONValue] {
        let url = root.appendingPathComponent("pipelines/\(task)/cases.jsonl")
        let data = try Data(contentsOf: url)
        return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map { try JSONValue.parse(Array($0), context: task) }
    }
}

/// Structural comparison of a result with an expected JSON value: objects by key set, arrays in
/// order, strings by Unicode scalars, integers exactly, other numbers with `close`.
func mismatch(
    _ actual: JSONValue, _ expected: JSONValue, path: String = "$",
    close: (Double, Double) -> Bool
) -> String? {
    switch (actual, expected) {
    case (.object(let a), .object(let e)):
        let ak = Set(a.map(\.0)), ek = Set(e.map(\.0))
        guard ak == ek else { return "\(path): keys \(ak.sorted()) != \(ek.sorted())" }
        for (k, ev) in e {
            guard let av = actual[k] else { return "\(path).\(k) missing" }
            if let m = mismatch(av, ev, path: "\(path).\(k)", close: close) { return m }
        }
        return nil
    case (.array(let a), .array(let e)):
        guard a.count == e.count else { return "\(path): \(a.count) items, expected \(e.count)" }
        for i in a.indices {
            if let m = mismatch(a[i], e[i], path: "\(path)[\(i)]", close: close) { return m }
        }
        return nil
    case (.string(let a), .string(let e)):
        return Array(a.unicodeScalars) == Array(e.unicodeScalars) ? nil : "\(path): \(a.debugDescription) != \(e.debugDescription)"
    case (.bool(let a), .bool(let e)):
        return a == e ? nil : "\(path): \(a) != \(e)"
    case (.null, .null):
        return nil
    case (.int(let a), .int(let e)):
        return a == e ? nil : "\(path): \(a) != \(e)"
    default:
        if let a = actual.doubleValue, let e = expected.doubleValue {
            if case .int = expected, actual.intValue != expected.intValue { return "\(path): \(a) != \(e)" }
            return close(a, e) ? nil : "\(path): \(a) != \(e) (outside tolerance)"
        }
        return "\(path): \(actual.jsonText.prefix(200)) != \(expected.jsonText.prefix(200))"
    }
}

func absolute(_ tol: Double) -> (Double, Double) -> Bool { { abs($0 - $1) <= tol } }
func relative(_ tol: Double) -> (Double, Double) -> Bool { { abs($0 - $1) <= tol * abs($1) } }

extension JSONValue {
    var intArray: [Int]? { arrayValue?.compactMap(\.intValue) }
}

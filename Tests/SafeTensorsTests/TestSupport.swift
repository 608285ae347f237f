import Foundation
import Testing

@testable import SafeTensors

/// Tests/Fixtures/norbert4-tiny, found from this file's location.
let fixtures: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // SafeTensorsTests
    .deletingLastPathComponent()  // Tests
    .appendingPathComponent("Fixtures/norbert4-tiny").path

func fixture(_ relative: String) -> String { fixtures + "/" + relative }

/// A fresh temporary folder, removed when the value is deinitialized.
final class TempDir {
    let path: String

    init() throws {
        path =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("SafeTensorsTests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    @discardableResult
    func write(_ name: String, text: String) throws -> String {
        try write(name, Array(text.utf8))
    }
}

/// Raw safetensors bytes: u64 LE length (declared, or the header's length), header, data.
func rawFile(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    rawFile(headerBytes: Array(header.utf8), data: data, declaredLength: declaredLength)
}

func rawFile(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let length = declaredLength ?? UInt64(headerBytes.count)
    var bytes = withUnsafeBytes(of: length.littleEndian) { Array($0) }
    bytes += headerBytes
    bytes += data
    return bytes
}

func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    littleEndianBytes(values.map(\.bitPattern))
}

/// Runs `body`, which must throw a `SafeTensorsError` of `kind` about `file` (matched by its
/// last path component) and `tensor`; the description must name both. Returns the error.
@discardableResult
func expectError(
    _ kind: SafeTensorsError.Kind, file: String, tensor: String?,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> SafeTensorsError? {
    do {
        try body()
        Issue.record("expected a .\(kind) error, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as SafeTensorsError {
        let name = URL(fileURLWithPath: file).lastPathComponent
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.file.hasSuffix(name), "\(error)", sourceLocation: sourceLocation)
        #expect(error.tensor == tensor, "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.contains(name), "\(error)", sourceLocation: sourceLocation)
        if let tensor {
            #expect(error.description.contains("tensor '\(tensor)'"), "\(error)", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected SafeTensorsError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

func bitPatterns(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

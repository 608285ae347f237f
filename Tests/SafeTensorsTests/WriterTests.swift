import Foundation
import Tensors
import Testing

@testable import SafeTensors

@Suite("Writer")
struct WriterTests {
    @Test func roundTripFloat32AndInt64() throws {
        let dir = try TempDir()
        let path = dir.file("out.safetensors")
        let weights = Tensor(shape: [2, 3], storage: [1, -2.5, .infinity, -0.0, .leastNonzeroMagnitude, 1e-3])
        let odd = Tensor(shape: [3], storage: [0.1, 0.2, 0.3])
        let ids: [Int64] = [.min, -1, 0, 1, .max]
        try SafeTensorsWriter.write(
            [
                ("weights", .float32(weights)),
                ("ids", .int64(shape: [5], values: ids)),
                ("odd \"name\"\n", .float32(odd)),
                ("scalar", .float32(Tensor(shape: [], storage: [42]))),
                ("empty", .int64(shape: [0, 4], values: [])),
            ], to: path, metadata: ["format": "pt", "ünï": "\"quoted\"\t"])

        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["weights", "ids", "odd \"name\"\n", "scalar", "empty"])
        #expect(file.metadata == ["format": "pt", "ünï": "\"quoted\"\t"])
        #expect(file.headerByteCount % 8 == 0)
        #expect(try file.tensor("weights").shape == [2, 3])
        #expect(bitPatterns(try file.floats("weights")) == bitPatterns(weights.storage))
        #expect(try file.int64s("ids") == ids)
        #expect(file.info("ids")?.dtype == .I64)
        #expect(try file.tensor("odd \"name\"\n") == odd)
        #expect(try file.tensor("scalar") == Tensor(shape: [], storage: [42]))
        #expect(file.info("empty")?.shape == [0, 4])
        #expect(try file.int64s("empty").isEmpty)
        #expect(file.dataSectionByteCount == 24 + 40 + 12 + 4)

        // Header bytes: spaces pad the JSON, data starts right after.
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        #expect(headerLength == file.headerByteCount)
        let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{\"__metadata__\":{"))
        #expect(header.trimmingCharacters(in: .whitespaces).hasSuffix("}"))
        #expect(bytes.count == 8 + headerLength + file.dataSectionByteCount)

        // Only the target file remains: the temporary file was renamed into place.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.safetensors"])
    }

    @Test func rewriteReplacesAtomically() throws {
        let dir = try TempDir()
        let path = dir.file("model.safetensors")
        try SafeTensorsWriter.write([("a", .float32(Tensor(shape: [1], storage: [1])))], to: path)
        let before = try SafeTensorsFile(path: path)  // stays mapped across the replacement
        try SafeTensorsWriter.write([("b", .float32(Tensor(shape: [2], storage: [2, 3])))], to: path)
        #expect(try before.floats("a") == [1])
        let after = try SafeTensorsFile(path: path)
        #expect(after.names == ["b"])
        #expect(after.metadata.isEmpty)
        #expect(try after.floats("b") == [2, 3])
    }

    @Test func rejectsInvalidInput() throws {
        let dir = try TempDir()
        let path = dir.file("bad.safetensors")
        let t = Tensor(shape: [1], storage: [1])
        expectError(.invalidHeader, file: path, tensor: "a") {
            try SafeTensorsWriter.write([("a", .float32(t)), ("a", .float32(t))], to: path)
        }
        expectError(.invalidHeader, file: path, tensor: "__metadata__") {
            try SafeTensorsWriter.write([("__metadata__", .float32(t))], to: path)
        }
        expectError(.shapeMismatch, file: path, tensor: "ids") {
            try SafeTensorsWriter.write([("ids", .int64(shape: [2, 2], values: [1, 2, 3]))], to: path)
        }
        expectError(.shapeMismatch, file: path, tensor: "neg") {
            try SafeTensorsWriter.write([("neg", .int64(shape: [-1, -1], values: [1]))], to: path)
        }
        var inconsistent = t
        inconsistent.shape = [3]
        expectError(.shapeMismatch, file: path, tensor: "w") {
            try SafeTensorsWriter.write([("w", .float32(inconsistent))], to: path)
        }
        expectError(.io, file: dir.file("no/such/dir/x.safetensors"), tensor: nil) {
            try SafeTensorsWriter.write([("a", .float32(t))], to: dir.file("no/such/dir/x.safetensors"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    /// Re-writing a real file (tensors in file order, same metadata) reproduces what
    /// safetensors/save_pretrained wrote, byte for byte.
    @Test(arguments: ["question-answering/model.safetensors", "cases/single_token.safetensors"])
    func realFileRoundTripIsByteIdentical(_ relative: String) throws {
        let source = try SafeTensorsFile(path: fixture(relative))
        let dir = try TempDir()
        let path = dir.file("copy.safetensors")
        let tensors: [(name: String, value: SafeTensorsWriter.Value)] = try source.infos.map { info in
            switch info.dtype {
            case .I64: return (info.name, .int64(shape: info.shape, values: try source.int64s(info.name)))
            default: return (info.name, .float32(try source.tensor(info.name)))
            }
        }
        try SafeTensorsWriter.write(tensors, to: path, metadata: source.metadata)
        let copy = try SafeTensorsFile(path: path)
        #expect(copy.names == source.names)
        #expect(copy.infos == source.infos)
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        let original = try Data(contentsOf: URL(fileURLWithPath: fixture(relative)))
        #expect(written == original)
    }
}

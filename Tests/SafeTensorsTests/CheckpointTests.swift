import Foundation
import Tensors
import Testing

@testable import SafeTensors

@Suite("Checkpoint folders")
struct CheckpointTests {
    /// A sharded folder: a.safetensors holds "x" [2] and "extra" [1], b.safetensors holds "y" [2, 2].
    func makeSharded(_ dir: TempDir, index: String? = nil) throws {
        try SafeTensorsWriter.write(
            [
                ("x", .float32(Tensor(shape: [2], storage: [1, 2]))),
                ("extra", .float32(Tensor(shape: [1], storage: [9]))),
            ],
            to: dir.file("a.safetensors"))
        try SafeTensorsWriter.write(
            [("y", .float32(Tensor(shape: [2, 2], storage: [3, 4, 5, 6])))],
            to: dir.file("b.safetensors"))
        try dir.write(
            Checkpoint.indexFileName,
            text: index ?? """
                {"metadata": {"total_size": 28, "note": "hi", "nested": {"a": 1}},
                 "weight_map": {"y": "b.safetensors", "x": "a.safetensors"}}
                """)
    }

    @Test func shardedFolderLoadsIndexedTensors() throws {
        let dir = try TempDir()
        try makeSharded(dir)
        let checkpoint = try Checkpoint.open(directory: dir.path)
        #expect(checkpoint.names == ["x", "y"])
        // Shard tensors missing from the index are ignored.
        #expect(!checkpoint.contains("extra"))
        #expect(checkpoint.info("extra") == nil)
        #expect(checkpoint.metadata == ["total_size": "28", "note": "hi"])
        #expect(checkpoint.fileName(of: "y") == "b.safetensors")
        #expect(try checkpoint.floats("x") == [1, 2])
        #expect(try checkpoint.tensor("y") == Tensor(shape: [2, 2], storage: [3, 4, 5, 6]))
        #expect(try checkpoint.withRawBytes("x") { Array($0) } == floatBytes([1, 2]))
        #expect(checkpoint.info("y")?.shape == [2, 2])
        expectError(.missingTensor, file: dir.path, tensor: "extra") { _ = try checkpoint.floats("extra") }
    }

    @Test func expectedShape() throws {
        let checkpoint = try Checkpoint.open(directory: fixture("base"))
        let name = "encoder.layers.0.attention.q_scale"
        let error = expectError(.shapeMismatch, file: fixture("base/model.safetensors"), tensor: name) {
            _ = try checkpoint.tensor(name, shape: [64])
        }
        #expect(error?.message.contains("[64]") == true)
        #expect(error?.message.contains("[4, 16]") == true)
        expectError(.missingTensor, file: fixture("base"), tensor: "encoder.layers.9.lambdas") {
            _ = try checkpoint.tensor("encoder.layers.9.lambdas", shape: [6])
        }
        #expect(try checkpoint.tensor("encoder.layers.0.lambdas", shape: [6]).shape == [6])
    }

    @Test func folderWithoutWeights() throws {
        let dir = try TempDir()
        let error = expectError(.io, file: dir.path, tensor: nil) { _ = try Checkpoint.open(directory: dir.path) }
        #expect(error?.file == dir.path)
        expectError(.io, file: dir.file("nope"), tensor: nil) { _ = try Checkpoint.open(directory: dir.file("nope")) }
    }

    @Test func singleFileWinsOverIndex() throws {
        let dir = try TempDir()
        try makeSharded(dir)
        try SafeTensorsWriter.write([("only", .int64(shape: [1], values: [5]))], to: dir.file(Checkpoint.singleFileName))
        let checkpoint = try Checkpoint.open(directory: dir.path)
        #expect(checkpoint.names == ["only"])
        #expect(try checkpoint.int64s("only") == [5])
    }

    @Test func indexPointsToMissingShard() throws {
        let dir = try TempDir()
        try makeSharded(dir, index: #"{"weight_map": {"x": "a.safetensors", "z": "gone.safetensors"}}"#)
        let error = expectError(.io, file: dir.file("gone.safetensors"), tensor: "z") {
            _ = try Checkpoint.open(directory: dir.path)
        }
        #expect(error?.message.contains(Checkpoint.indexFileName) == true)
    }

    @Test func indexedTensorMissingFromShard() throws {
        let dir = try TempDir()
        try makeSharded(dir, index: #"{"weight_map": {"x": "a.safetensors", "y": "a.safetensors"}}"#)
        expectError(.missingTensor, file: dir.file("a.safetensors"), tensor: "y") {
            _ = try Checkpoint.open(directory: dir.path)
        }
    }

    @Test(
        arguments: [
            ("", nil), ("{", nil), ("[]", nil), ("{\"weight_map\": []}", nil), ("{\"metadata\": {}}", nil),
            ("{\"weight_map\": {}}", nil), ("{\"weight_map\": {\"x\": 3}}", "x"),
            ("{\"weight_map\": {\"x\": \"a.safetensors\"}, \"metadata\": 5}", nil),
            ("{\"weight_map\": {\"x\": \"a.safetensors\", \"x\": \"b.safetensors\"}}", nil),
            ("{\"weight_map\": {\"x\": \"a.safetensors\"}} trailing", nil),
        ] as [(String, String?)])
    func malformedIndex(_ index: String, _ tensor: String?) throws {
        let dir = try TempDir()
        try makeSharded(dir, index: index)
        expectError(.invalidIndex, file: dir.file(Checkpoint.indexFileName), tensor: tensor) {
            _ = try Checkpoint.open(directory: dir.path)
        }
    }

    @Test(arguments: ["../a.safetensors", "/etc/passwd", "sub/a.safetensors", "..", ".", "", "a\\b.safetensors"])
    func shardNameEscapesFolder(_ shard: String) throws {
        let dir = try TempDir()
        let escaped = shard.replacingOccurrences(of: "\\", with: "\\\\")
        try makeSharded(dir, index: "{\"weight_map\": {\"x\": \"a.safetensors\", \"evil\": \"\(escaped)\"}}")
        expectError(.invalidIndex, file: dir.file(Checkpoint.indexFileName), tensor: "evil") {
            _ = try Checkpoint.open(directory: dir.path)
        }
    }

    @Test func brokenShardReportsShard() throws {
        let dir = try TempDir()
        try makeSharded(dir)
        try dir.write("b.safetensors", rawFile(header: "{\"y\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"))
        expectError(.offsetsOutOfBounds, file: dir.file("b.safetensors"), tensor: "y") {
            _ = try Checkpoint.open(directory: dir.path)
        }
    }

    @Test func checkpointIsSendable() async throws {
        let checkpoint = try Checkpoint.open(directory: fixture("base"))
        let sums = try await withThrowingTaskGroup(of: Float.self) { group in
            for name in checkpoint.names.prefix(8) {
                group.addTask { try checkpoint.floats(name).reduce(0, +) }
            }
            return try await group.reduce(into: [Float]()) { $0.append($1) }
        }
        #expect(sums.count == 8)
    }
}

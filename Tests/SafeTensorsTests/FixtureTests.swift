import Foundation
import Tensors
import Testing

@testable import SafeTensors

@Suite("Real norbert4-tiny checkpoints")
struct FixtureTests {
    @Test func baseModelOpens() throws {
        let file = try SafeTensorsFile(path: fixture("base/model.safetensors"))
        #expect(file.names.count == 66)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.names.first == "embedding.word_embedding.weight")
        #expect(file.fileSize == 1_195_000)
        #expect(file.headerByteCount % 8 == 0)

        let embedding = try #require(file.info("embedding.word_embedding.weight"))
        #expect(embedding.dtype == .F32)
        #expect(embedding.shape == [2048, 64])
        #expect(embedding.byteCount == 2048 * 64 * 4)
        #expect(embedding.dataOffsets == 0..<524_288)
        #expect(file.info("embedding.word_scale")?.shape == [64])
        #expect(file.info("encoder.layers.3.lambdas")?.shape == [6])
        #expect(file.info("encoder.layers.0.attention.lambdas")?.shape == [1])
        #expect(file.info("encoder.layers.2.attention.q_scale")?.shape == [4, 16])
        #expect(file.info("encoder.layers.1.mlp.up_proj.weights.1")?.shape == [128, 64])
        #expect(file.info("encoder.layers.1.mlp.down_proj.weight")?.shape == [64, 128])
        #expect(file.info("classifier.projection.weight") == nil)

        // File order is offset order, contiguous from 0 to the end of the file.
        let infos = file.infos
        #expect(infos.map(\.name) == file.names)
        for (a, b) in zip(infos, infos.dropFirst()) {
            #expect(a.dataOffsets.upperBound == b.dataOffsets.lowerBound)
        }
        #expect(infos.last?.dataOffsets.upperBound == file.dataSectionByteCount)

        let tensor = try file.tensor("embedding.word_embedding.weight")
        #expect(tensor.shape == [2048, 64])
        #expect(tensor.storage.count == 2048 * 64)
        #expect(tensor.storage.allSatisfy { $0.isFinite })
        // Raw bytes and converted floats agree.
        let raw = try file.withRawBytes("embedding.word_scale") { Array($0) }
        #expect(raw.count == 256)
        #expect(floatBytes(try file.floats("embedding.word_scale")) == raw)

        let lambdas = try file.floats("encoder.layers.0.lambdas")
        #expect(lambdas.allSatisfy { $0 >= -0.3 && $0 <= 0.8 })
    }

    @Test func baseCheckpointFolder() throws {
        let checkpoint = try Checkpoint.open(directory: fixture("base"))
        #expect(checkpoint.names.count == 66)
        #expect(checkpoint.names == checkpoint.names.sorted())
        #expect(checkpoint.contains("encoder.layers.3.mlp.down_proj.scale"))
        #expect(!checkpoint.contains("classifier.projection.weight"))
        #expect(checkpoint.fileName(of: "embedding.word_scale") == "model.safetensors")
        #expect(checkpoint.fileName(of: "nope") == nil)
        #expect(checkpoint.metadata == ["format": "pt"])
        let t = try checkpoint.tensor("encoder.layers.0.attention.q_scale", shape: [4, 16])
        #expect(t.storage.count == 64)
    }

    /// mlm-bf16 holds torch's round-to-nearest-even bfloat16 of mlm's float32 values.
    @Test func bf16CheckpointIsRoundedFloat32Checkpoint() throws {
        let f32 = try SafeTensorsFile(path: fixture("mlm/model.safetensors"))
        let bf16 = try SafeTensorsFile(path: fixture("mlm-bf16/model.safetensors"))
        #expect(f32.names.count == 71)
        #expect(Set(f32.names) == Set(bf16.names))
        var truncationDiffers = 0
        for name in f32.names {
            let a = try f32.floats(name)
            let b = try bf16.floats(name)
            #expect(bf16.info(name)?.dtype == .BF16)
            #expect(bf16.info(name)?.shape == f32.info(name)?.shape)
            let rounded = a.map { UInt32(FloatBits.bfloat16Bits(roundingToNearestEven: $0)) << 16 }
            #expect(bitPatterns(b) == rounded, "\(name)")
            truncationDiffers += zip(a, b).filter { UInt32(FloatBits.bfloat16Bits(truncating: $0.0)) << 16 != $0.1.bitPattern }.count
            // Raw BF16 bytes are exactly the upper halves.
            let raw = try bf16.withRawBytes(name) { Array($0) }
            #expect(raw == littleEndianBytes(b.map { UInt16($0.bitPattern >> 16) }))
        }
        // Rounding, not truncation, reproduces the file (about half the values differ).
        #expect(truncationDiffers > 100_000)
        let t = try bf16.tensor("classifier.emb2vocab.weight")
        #expect(t.shape == [2048, 64])
    }

    @Test func shardedEqualsSequenceClassification() throws {
        let sharded = try Checkpoint.open(directory: fixture("sharded"))
        let single = try Checkpoint.open(directory: fixture("sequence-classification"))
        #expect(sharded.files.count == 3)
        #expect(sharded.names == single.names)
        #expect(sharded.names.count == 71)
        #expect(sharded.metadata["total_size"] == "1205884")
        #expect(sharded.metadata["total_parameters"] == "301471")
        #expect(sharded.fileName(of: "embedding.word_embedding.weight") == "model-00001-of-00003.safetensors")
        #expect(sharded.fileName(of: "classifier.output_projection.bias") == "model-00003-of-00003.safetensors")
        for name in single.names {
            #expect(sharded.info(name)?.shape == single.info(name)?.shape)
            #expect(sharded.info(name)?.dtype == single.info(name)?.dtype)
            #expect(bitPatterns(try sharded.floats(name)) == bitPatterns(try single.floats(name)), "\(name)")
        }
        #expect(try sharded.tensor("classifier.output_projection.weight", shape: [3, 64]).shape == [3, 64])
    }

    @Test func headsShareEncoderWithBase() throws {
        let base = try SafeTensorsFile(path: fixture("base/model.safetensors"))
        for head in ["mlm", "token-classification", "question-answering", "multiple-choice"] {
            let file = try SafeTensorsFile(path: fixture("\(head)/model.safetensors"))
            for name in base.names {
                let equal = try base.withRawBytes(name) { a in try file.withRawBytes(name) { b in a.elementsEqual(b) } }
                #expect(equal, "\(head): \(name)")
            }
        }
    }

    @Test func caseFileInt64s() throws {
        let file = try SafeTensorsFile(path: fixture("cases/padded_batch.safetensors"))
        let mask = try file.int64s("attention_mask")
        #expect(file.info("attention_mask")?.shape == [4, 40])
        #expect(file.info("attention_mask")?.dtype == .I64)
        let valid: Int64 = 40 + 17 + 5 + 1
        #expect(mask.reduce(0, +) == valid)
        let ids = try file.int64s("input_ids")
        #expect(ids[0] == 1)  // <s>
        #expect(ids.allSatisfy { $0 >= 0 && $0 < 2048 })
        // Int tensors are not floats, and float tensors are not ints.
        expectError(.unsupportedDType, file: file.path, tensor: "input_ids") { _ = try file.floats("input_ids") }
        expectError(.unsupportedDType, file: file.path, tensor: "base.last_hidden_state") {
            _ = try file.int64s("base.last_hidden_state")
        }
        expectError(.missingTensor, file: file.path, tensor: "nope") { _ = try file.floats("nope") }
        #expect(try file.tensor("base.last_hidden_state").shape == [4, 40, 64])
    }
}

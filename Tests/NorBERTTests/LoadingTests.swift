import Foundation
import NorBERT
import SafeTensors
import Tensors
import Testing

/// Loading real and hostile checkpoints: every failure is a typed error naming what is wrong.
@Suite final class LoadingTests {
    /// This test's scratch folders, removed when it ends (each test has its own instance).
    private var scratch: [URL] = []
    deinit { for dir in scratch { try? FileManager.default.removeItem(at: dir) } }

    /// A scratch checkpoint folder: config.json (as JSON object) and the given weight file bytes.
    func folder(config: [String: Any]? = nil, weights: Data? = nil, copyWeightsFrom source: String = "base") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("norbert-load-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        scratch.append(dir)
        let src = URL(fileURLWithPath: Fixtures.folder(source))
        var json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("config.json"))) as? [String: Any])
        if let config { for (k, v) in config { json[k] = v is NSNull ? nil : v } }
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("config.json"))
        let data = try weights ?? Data(contentsOf: src.appendingPathComponent("model.safetensors"))
        try data.write(to: dir.appendingPathComponent("model.safetensors"))
        return dir.path
    }

    func loadError(_ path: String, kind: HeadKind? = nil) -> String? {
        do {
            _ = try NorBERTModel(directory: path, kind: kind)
            return nil
        } catch let error as NorBERTError {
            return error.description
        } catch {
            return "untyped: \(error)"
        }
    }

    @Test func configFromEveryFixtureFolder() throws {
        for name in [
            "base", "mlm", "causal-lm", "mlm-bf16", "sequence-classification", "token-classification", "question-answering",
            "multiple-choice", "sharded",
        ] {
            let c = try NorBERTConfig.load(directory: Fixtures.folder(name))
            #expect(c.hiddenSize == 64 && c.numLayers == 4 && c.queryKeyHeadSize == 16 && c.vocabSize == 2048)
            #expect(c.localGlobalRatio == 2 && c.localWindowLength == 4 && c.globalWindowLength == 16)
            #expect([1, 3].allSatisfy(c.isGlobalLayer) && ![0, 2].contains(where: c.isGlobalLayer))
        }
        let seq = try NorBERTConfig.load(directory: Fixtures.folder("sequence-classification"))
        #expect(seq.labels == ["negativ", "nøytral", "positiv"])
        #expect(seq.label2id?["nøytral"] == 1)
        #expect(try NorBERTModel.kind(from: seq) == .sequenceClassification)
        let causal = try NorBERTConfig.load(directory: Fixtures.folder("causal-lm"))
        #expect(causal.isDecoder == true && causal.bosTokenId == 1 && causal.eosTokenId == 2 && causal.maskTokenId == 4)
    }

    @Test func encoderSharingIsByteExact() throws {
        let base = try NorBERTModel.openCheckpoint(directory: Fixtures.folder("base"))
        for name in ["token-classification", "sequence-classification", "sharded", "mlm"] {
            #expect(
                NorBERTModel.encoderTensorsIdentical(base, try NorBERTModel.openCheckpoint(directory: Fixtures.folder(name))), "\(name)")
        }
        #expect(!NorBERTModel.encoderTensorsIdentical(base, try NorBERTModel.openCheckpoint(directory: Fixtures.folder("mlm-bf16"))))
        // A head on a shared encoder computes exactly what the standalone model computes.
        let shared = try NorBERTModel(directory: Fixtures.folder("base"))
        let tokConfig = try NorBERTConfig.load(directory: Fixtures.folder("token-classification"))
        let tok = try NorBERTModel(
            config: tokConfig, sharing: shared.encoder,
            weights: try NorBERTModel.openCheckpoint(directory: Fixtures.folder("token-classification")))
        #expect(tok.encoder === shared.encoder)
        let alone = try NorBERTModel(directory: Fixtures.folder("token-classification"))
        let batch = PackedBatch([[1, 50, 60, 70, 2], [1, 9, 2]])
        #expect(try tok.run(batch, workspace: EncoderWorkspace())["logits"] == alone.run(batch, workspace: EncoderWorkspace())["logits"])
    }

    @Test func missingAndAbsurdConfigFields() throws {
        let cases: [([String: Any], String)] = [
            (["hidden_size": NSNull()], "missing field 'hidden_size'"),
            (["num_layers": NSNull()], "missing field 'num_layers'"),
            (["query_key_head_size": NSNull()], "missing field 'query_key_head_size'"),
            (["hidden_size": -64], "hidden_size"),
            (["num_layers": 0], "num_layers"),
            (["num_layers": 1_000_000], "num_layers"),
            (["query_key_head_size": 15], "query_key_head_size"),
            (["vocab_size": 1 << 40], "vocab_size"),
            (["layer_norm_eps": 0], "layer_norm_eps"),
            (["local_global_ratio": 0], "local_global_ratio"),
            (["local_window_length": -1], "local_window_length"),
            (["hidden_size": "64"], "wrong type"),
            (["mask_token_id": 5000], "mask_token_id"),
            (["id2label": ["0": "a", "7": "b"]], "id2label"),
        ]
        for (patch, message) in cases {
            let error = loadError(try folder(config: patch))
            #expect(error?.contains("config.json") == true && error?.contains(message) == true, "\(patch): \(error ?? "loaded")")
        }
        let dir = try folder()
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect(loadError(dir)?.contains("not a valid JSON object") == true)
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        #expect(loadError(dir)?.contains("cannot read") == true)
    }

    @Test func shapeThatContradictsConfig() throws {
        // config says 8 heads of 16 (q/k projection [128, 64]) but the weights hold [64, 64].
        let error = loadError(try folder(config: ["num_attention_heads": 8]))
        #expect(error?.contains("encoder.layers.0.attention") == true && error?.contains("shape") == true, "\(error ?? "loaded")")
        let vocab = loadError(try folder(config: ["vocab_size": 4096]))
        #expect(vocab?.contains("embedding.word_embedding.weight") == true, "\(vocab ?? "loaded")")
    }

    @Test func hostileWeightFiles() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixtures.folder("base") + "/model.safetensors"))
        // Truncated inside the data section: the last tensors' offsets run past the end.
        let truncated = loadError(try folder(weights: good.prefix(good.count / 2)))
        #expect(truncated?.contains("model.safetensors") == true && truncated?.contains("tensor '") == true, "\(truncated ?? "loaded")")
        // Header surgery: parse, patch one entry, re-serialise.
        func patched(_ edit: (inout [String: Any]) -> Void) throws -> Data {
            let n = Int(good.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            var header = try #require(try JSONSerialization.jsonObject(with: good.subdata(in: 8..<(8 + n))) as? [String: Any])
            edit(&header)
            var json = try JSONSerialization.data(withJSONObject: header)
            while json.count % 8 != 0 { json.append(0x20) }
            var length = UInt64(json.count).littleEndian
            return Data(bytes: &length, count: 8) + json + good.suffix(from: 8 + n)
        }
        let name = "encoder.layers.2.attention.lambdas"
        let past = loadError(
            try folder(
                weights: try patched { h in
                    var e = h[name] as? [String: Any] ?? [:]
                    e["data_offsets"] = [1_195_000_000, 1_195_000_004]
                    h[name] = e
                }))
        #expect(past?.contains(name) == true, "\(past ?? "loaded")")
        let overlap = loadError(
            try folder(
                weights: try patched { h in
                    let other = (h["encoder.layers.2.lambdas"] as? [String: Any])?["data_offsets"] as? [Int] ?? [0, 24]
                    var e = h[name] as? [String: Any] ?? [:]
                    e["data_offsets"] = [other[0], other[0] + 4]
                    h[name] = e
                }))
        #expect(overlap?.contains("overlap") == true, "\(overlap ?? "loaded")")
        let dtype = loadError(
            try folder(
                weights: try patched { h in
                    var e = h[name] as? [String: Any] ?? [:]
                    e["dtype"] = "Q4"
                    h[name] = e
                }))
        #expect(dtype?.contains("Q4") == true && dtype?.contains(name) == true, "\(dtype ?? "loaded")")
        let missing = loadError(
            try folder(
                weights: try patched { h in
                    var e = h[name] as? [String: Any] ?? [:]
                    h[name] = nil
                    h["renamed"] = e
                    e = [:]
                }))
        #expect(missing?.contains(name) == true, "\(missing ?? "loaded")")
        // A classification head asked of the base checkpoint, which has none.
        let head = loadError(Fixtures.folder("base"), kind: .sequenceClassification)
        #expect(head?.contains("classifier.") == true, "\(head ?? "loaded")")
    }
}

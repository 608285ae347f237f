import Foundation
import NorBERT
import SafeTensors
import Tensors
import Testing

/// Every stored output of the reference fixtures, reproduced within the tolerances of cases.json.
@Suite struct GoldenTests {
    static let cases = ["padded_batch", "long_300", "single_token"]

    @Test(arguments: cases)
    func baseHiddenStates(caseName: String) throws {
        let file = try Fixtures.caseFile(caseName)
        let (batch, _, t) = try Fixtures.batch(file)
        let model = try NorBERTModel(directory: Fixtures.folder("base"))
        #expect(model.kind == .base)
        let out = try model.run(batch, hiddenStates: true, workspace: EncoderWorkspace())
        let h = model.config.hiddenSize
        let last = Comparison.padded(
            try file.floats("base.last_hidden_state"), cols: t, features: h,
            packed: try #require(out["last_hidden_state"]).storage, batch: batch)
        print("\(caseName) base.last_hidden_state: \(last)")
        #expect(last.ok(Fixtures.tolerance("base.last_hidden_state")), "\(last)")
        let all = try file.floats("base.hidden_states")
        let b = batch.count
        for layer in 0...model.config.numLayers {
            let expected = Array(all[(layer * b * t * h)..<((layer + 1) * b * t * h)])
            let c = Comparison.padded(
                expected, cols: t, features: h,
                packed: try #require(out["hidden_states.\(layer)"]).storage, batch: batch)
            print("\(caseName) base.hidden_states.\(layer): \(c)")
            #expect(c.ok(Fixtures.tolerance("base.hidden_states")), "layer \(layer): \(c)")
        }
    }

    @Test(arguments: cases)
    func languageModelLogits(caseName: String) throws {
        let file = try Fixtures.caseFile(caseName)
        let (batch, _, t) = try Fixtures.batch(file)
        for folder in ["mlm", "causal-lm", "mlm-bf16"] {
            let model = try NorBERTModel(directory: Fixtures.folder(folder))
            let out = try model.run(batch, workspace: EncoderWorkspace())
            let logits = try #require(out["logits"]).storage
            let v = model.config.vocabSize
            let tol = Fixtures.tolerance("\(folder).logits")
            let full = Comparison.padded(try file.floats("\(folder).logits"), cols: t, features: v, packed: logits, batch: batch)
            print("\(caseName) \(folder).logits: \(full)")
            #expect(full.ok(tol), "\(folder): \(full)")
            // Summaries over the whole vocabulary at every valid position.
            var maxes: [Float] = [], lse: [Float] = [], argmax: [Float] = []
            for r in 0..<batch.totalTokens {
                let row = logits[(r * v)..<((r + 1) * v)]
                let m = row.max() ?? 0
                maxes.append(m)
                lse.append(m + Float(log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })))
                argmax.append(Float(row.firstIndex(of: m).map { $0 - r * v } ?? -1))
            }
            let cmax = Comparison.padded(try file.floats("\(folder).logits_max"), cols: t, features: 1, packed: maxes, batch: batch)
            let clse = Comparison.padded(try file.floats("\(folder).logits_logsumexp"), cols: t, features: 1, packed: lse, batch: batch)
            #expect(cmax.ok(tol), "\(folder) max: \(cmax)")
            #expect(clse.ok(tol), "\(folder) logsumexp: \(clse)")
            let expectedArgmax = try file.int64s("\(folder).logits_argmax")
            let margins = try file.floats("\(folder).logits_top2_margin")
            var checked = 0
            for s in 0..<batch.count {
                for p in 0..<batch.length(s) where margins[s * t + p] > 2 * tol {
                    #expect(Int64(argmax[batch.offsets[s] + p]) == expectedArgmax[s * t + p], "\(folder) argmax at \(s),\(p)")
                    checked += 1
                }
            }
            #expect(checked > 0)
        }
    }

    @Test(arguments: cases)
    func classifierHeads(caseName: String) throws {
        let file = try Fixtures.caseFile(caseName)
        let (batch, _, t) = try Fixtures.batch(file)
        for folder in ["sequence-classification", "sharded"] {
            let model = try NorBERTModel(directory: Fixtures.folder(folder))
            #expect(model.kind == .sequenceClassification)
            let out = try model.run(batch, workspace: EncoderWorkspace())
            let c = Comparison.flat(try file.floats("sequence-classification.logits"), try #require(out["logits"]).storage)
            print("\(caseName) \(folder) logits: \(c)")
            #expect(c.ok(Fixtures.tolerance("sequence-classification.logits")), "\(folder): \(c)")
        }
        let tok = try NorBERTModel(directory: Fixtures.folder("token-classification"))
        let tokOut = try tok.run(batch, workspace: EncoderWorkspace())
        let ct = Comparison.padded(
            try file.floats("token-classification.logits"), cols: t, features: 5,
            packed: try #require(tokOut["logits"]).storage, batch: batch)
        print("\(caseName) token-classification.logits: \(ct)")
        #expect(ct.ok(Fixtures.tolerance("token-classification.logits")), "\(ct)")
        let qa = try NorBERTModel(directory: Fixtures.folder("question-answering"))
        let qaOut = try qa.run(batch, workspace: EncoderWorkspace())
        for name in ["start_logits", "end_logits"] {
            let c = Comparison.padded(
                try file.floats("question-answering.\(name)"), cols: t, features: 1,
                packed: try #require(qaOut[name]).storage, batch: batch)
            print("\(caseName) question-answering.\(name): \(c)")
            #expect(c.ok(Fixtures.tolerance("question-answering.\(name)")), "\(name): \(c)")
        }
    }

    @Test func multipleChoiceFirstToken() throws {
        let file = try Fixtures.caseFile("multiple_choice")
        let (batch, _, t) = try Fixtures.batch(file)
        #expect(batch.count == 6)
        #expect(batch.lengths == [12, 9, 6, 12, 12, 4])
        let model = try NorBERTModel(directory: Fixtures.folder("multiple-choice"))
        let out = try model.run(batch, workspace: EncoderWorkspace())
        let hidden = Comparison.padded(
            try file.floats("multiple-choice.last_hidden_state"), cols: t, features: 64,
            packed: try #require(out["last_hidden_state"]).storage, batch: batch)
        print("multiple-choice.last_hidden_state: \(hidden)")
        #expect(hidden.ok(Fixtures.tolerance("multiple-choice.last_hidden_state")), "\(hidden)")
        let logits = Comparison.flat(try file.floats("multiple-choice.logits_first_token"), try #require(out["logits"]).storage)
        print("multiple-choice.logits_first_token: \(logits)")
        #expect(logits.ok(Fixtures.tolerance("multiple-choice.logits_first_token")), "\(logits)")
    }

    @Test func greedyGenerationWithCache() throws {
        let file = try Fixtures.caseFile("greedy_generation")
        let model = try NorBERTModel(directory: Fixtures.folder("causal-lm"))
        let ws = EncoderWorkspace()
        for i in 0..<3 {
            let prompt = try file.int64s("prompt_\(i)").map(Int.init)
            let expected = try file.int64s("generated_\(i)").map(Int.init)
            let got = try model.generateGreedy(prompt: prompt, maxNewTokens: expected.count, workspace: ws)
            #expect(got == expected, "prompt \(i)")
        }
    }

    /// The cache must give the same logits as re-running the whole sequence (beyond every window).
    @Test func cachedDecodingMatchesFullForward() throws {
        let model = try NorBERTModel(directory: Fixtures.folder("causal-lm"))
        let ws = EncoderWorkspace()
        let ids = (0..<40).map { 5 + ($0 * 37) % 2000 }
        let full = try model.run(PackedBatch([ids]), workspace: ws)["logits"]
        let cache = KVCache(config: model.config)
        var maxDiff: Float = 0
        _ = try model.nextTokenLogits(Array(ids[0..<7]), cache: cache, workspace: ws)
        for p in 7..<ids.count {
            let step = try model.nextTokenLogits([ids[p]], cache: cache, workspace: ws)
            let v = model.config.vocabSize
            for j in 0..<v { maxDiff = max(maxDiff, abs(step[j] - (full?.storage[p * v + j] ?? .nan))) }
        }
        print("cached vs full causal logits: max |Δ| = \(maxDiff)")
        #expect(maxDiff < 1e-4)
    }

    /// Packing is exact: each sequence of a large packed batch (more rows than one MLP block, lengths
    /// past every window) gives what it gives alone; long_300 rows keep matching the reference.
    @Test func packedBatchEqualsSequencesAlone() throws {
        let file = try Fixtures.caseFile("long_300")
        let ids = try file.int64s("input_ids").map(Int.init)
        let sequences = (0..<9).map { k in Array(ids[(k * 7)..<(300 - k * 3)]) } + [ids]
        let model = try NorBERTModel(directory: Fixtures.folder("base"))
        let batch = PackedBatch(sequences)
        #expect(batch.totalTokens > 2048)
        let packed = try model.run(batch, workspace: EncoderWorkspace())["last_hidden_state"]
        var worst: Float = 0
        for (s, seq) in sequences.enumerated() {
            let alone = try model.run(PackedBatch([seq]), workspace: EncoderWorkspace())["last_hidden_state"]
            for i in 0..<(seq.count * 64) {
                worst = max(worst, abs((packed?.storage[batch.offsets[s] * 64 + i] ?? .nan) - (alone?.storage[i] ?? .nan)))
            }
        }
        print("packed vs alone: max |Δ| = \(worst)")
        #expect(worst < 1e-5)
        let expected = try file.floats("base.last_hidden_state")
        let last = batch.offsets[sequences.count - 1]
        var ref: Float = 0
        for i in 0..<(300 * 64) { ref = max(ref, abs(expected[i] - (packed?.storage[last * 64 + i] ?? .nan))) }
        #expect(ref <= Fixtures.tolerance("base.last_hidden_state"), "\(ref)")
    }
}

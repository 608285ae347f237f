import Foundation
import NorBERT
import Tensors
import Testing
import Tokenizers
import Wire

@testable import Pipelines

/// Batching, several heads on one encoder pass, long-input windows, generation and features.
@Suite("Pipelines: engine")
struct EngineTests {
    static let text = "Kari Nordmann bor i Tromsø og jobber på UiT."

    func request(_ json: String) throws -> PipelineRequest { try PipelineRequest.decode(json).get() }

    @Test func headsShareOneEncoderPass() throws {
        let engine = try #require(PipelineFixtures.engine)
        #expect(Set(engine.heads.map(\.encoderGroup)) == [0], "all tiny checkpoints have byte-identical encoders")
        let two = try request(#"{"id": "t", "heads": ["sentiment", "ner"], "text": "\#(Self.text)"}"#)
        let both = engine.run([two], workspace: EncoderWorkspace())
        #expect(both.stats.encoderPasses == 1 && both.stats.encodedSequences == 1 && both.stats.requestedSequences == 2)
        #expect(both.stats.headApplications == 2)
        let responses = try #require(both.responses.first)
        #expect(responses.map(\.head) == ["sentiment", "ner"])
        #expect(responses.map(\.task) == [.textClassification, .tokenClassification])
        #expect(responses.allSatisfy { $0.id == "t" })
        let alone = engine.run(
            [
                try request(#"{"id": "s", "task": "text-classification", "text": "\#(Self.text)"}"#),
                try request(#"{"id": "n", "task": "token-classification", "text": "\#(Self.text)"}"#),
            ],
            workspace: EncoderWorkspace())
        #expect(alone.stats.encodedSequences == 1, "the same text of two requests is encoded once too")
        for (a, b) in zip(responses, alone.flat) {
            #expect(a.result.map(\.jsonText) == b.result.map(\.jsonText))
        }
    }

    @Test func manyRequestsPackIntoFewPasses() throws {
        let engine = try PipelineEngine(
            heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
            configuration: EngineConfiguration(maxTokensPerPass: 64))
        let requests = try (0..<20).map {
            try request(#"{"id": "\#($0)", "task": "text-classification", "text": "Tekst nummer \#($0) er her."}"#)
        }
        let batched = engine.run(requests, workspace: EncoderWorkspace())
        #expect(batched.stats.encodedSequences == 20 && batched.stats.encoderPasses < 20 && batched.stats.encoderPasses > 1)
        for (k, r) in requests.enumerated() {
            let single = engine.run([r], workspace: EncoderWorkspace()).flat[0]
            let a = try #require(batched.flat[k].result?.arrayValue?.first?["score"]?.doubleValue)
            let b = try #require(single.result?.arrayValue?.first?["score"]?.doubleValue)
            #expect(abs(a - b) < 1e-5)
        }
    }

    @Test func windowedTokenClassificationMatchesOnePass() throws {
        // Outputs depend on tokens t-40...t+40 only, so windows that keep 40 tokens on both sides
        // of the token they report give the one-pass result.
        let long = (0..<12).map { _ in Self.text }.joined(separator: " ")
        let full = try #require(PipelineFixtures.engine)
        let small = try PipelineEngine(
            heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
            configuration: EngineConfiguration(maxInputTokens: 120))
        for strategy in ["none", "simple", "max"] {
            let json =
                #"""
                {"id": "w", "task": "token-classification", "text": "\#(long)", "options": {"aggregation_strategy": "\#(strategy)", \#
                "overflow": "window", "stride": 100}}
                """#
            let one = full.run([try request(json)], workspace: EncoderWorkspace()).flat[0]
            let windowed = small.run([try request(json)], workspace: EncoderWorkspace()).flat[0]
            let usage = try #require(windowed.usage)
            #expect(usage.windows > 2 && !usage.truncated)
            #expect(one.usage?.windows == 1)
            let a = try #require(one.result), b = try #require(windowed.result)
            #expect(mismatch(b, a, close: absolute(1e-4)) == nil, "\(strategy): \(mismatch(b, a, close: absolute(1e-4)) ?? "")")
        }
    }

    @Test func windowedTextClassificationAveragesWindows() throws {
        let long = (0..<8).map { _ in Self.text }.joined(separator: " ")
        let small = try PipelineEngine(
            heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
            configuration: EngineConfiguration(maxInputTokens: 50))
        let r = try request(
            #"""
            {"id": "w", "task": "text-classification", "text": "\#(long)", "options": {"overflow": "window", "stride": 10, \#
            "function_to_apply": "none", "top_k": null}}
            """#
        )
        let head = try #require(small.head(named: "sentiment"))
        var stats = RunStats()
        let plan = try TextClassificationPlan(r, head: head, engine: small, stats: &stats)
        #expect(plan.sequences.count > 2 && plan.sequences.allSatisfy { $0.count <= 50 && $0.first == 1 })
        let logits = try #require(head.model.run(PackedBatch(plan.sequences), workspace: EncoderWorkspace())["logits"])
        let n = plan.sequences.count
        let mean = (0..<3).map { j in (0..<n).map { logits.storage[$0 * 3 + j] }.reduce(0, +) / Float(n) }
        let result = try #require(small.run([r], workspace: EncoderWorkspace()).flat[0].result?.arrayValue)
        for entry in result {
            let label = try #require(entry["label"]?.stringValue)
            let j = try #require(head.model.config.labels.firstIndex(of: label))
            #expect(abs((entry["score"]?.doubleValue ?? 0) - Double(mean[j])) < 1e-5)
        }
        let joined = plan.sequences.flatMap { $0.dropFirst() }
        #expect(joined.count > (try small.tokenizer.encode(long).ids.count) - 1, "windows overlap")
    }

    func generate(_ engine: PipelineEngine, _ jsons: [String]) throws -> (texts: [String], ids: [String: [Int]], deltas: [String: String]) {
        final class Box {
            var ids: [String: [Int]] = [:]
            var deltas: [String: String] = [:]
        }
        let box = Box()
        // Streamed, so every token also reaches the handler as a partial response.
        let streamed = jsons.map { #"{"stream": true, "# + $0.dropFirst() }
        let result = engine.run(try streamed.map(request), workspace: EncoderWorkspace()) { _, partial in
            box.ids[partial.id ?? "", default: []].append(partial.result?["token"]?.intValue ?? -1)
            box.deltas[partial.id ?? "", default: ""] += partial.result?["text"]?.stringValue ?? ""
        }
        let texts = try result.flat.map { r in
            try #require(r.result?.arrayValue?.first?["generated_text"]?.stringValue, "\(r.error?.description ?? "")")
        }
        return (texts, box.ids, box.deltas)
    }

    @Test func greedyGenerationEqualsGenerateGreedy() throws {
        let engine = try #require(PipelineFixtures.engine)
        let prompts = ["Det var en gang", "Hei", "Kari bor i Tromsø og"]
        for head in ["causal", "mlm"] {
            let jsons = prompts.enumerated().map { k, p in
                #"""
                {"id": "\#(k)", "task": "text-generation", "head": "\#(head)", "text": "\#(p)", "options": {"max_new_tokens": 10, \#
                "return_full_text": false}}
                """#
            }
            let (texts, ids, deltas) = try generate(engine, jsons)
            let model = try #require(engine.head(named: head)).model
            for (k, p) in prompts.enumerated() {
                let prompt = try engine.tokenizer.encode(p).ids
                let expected = try model.generateGreedy(prompt: prompt, maxNewTokens: 10, stopTokens: [2], workspace: EncoderWorkspace())
                #expect(ids["\(k)"] == expected, "\(head) prompt \(k)")
                #expect(deltas["\(k)"] == texts[k], "streamed text adds up to the result")
            }
        }
    }

    @Test func samplingIsSeededAndTopK1IsGreedy() throws {
        let engine = try #require(PipelineFixtures.engine)
        func line(_ options: String, maxNewTokens: Int = 12) -> String {
            #"""
            {"id": "g", "task": "text-generation", "head": "causal", "text": "Det var en gang", "options": {"max_new_tokens": \#
            \#(maxNewTokens), \#(options)}}
            """#
        }
        let a = try generate(engine, [line(#""do_sample": true, "seed": 7, "top_p": 0.95"#)]).texts
        let b = try generate(engine, [line(#""do_sample": true, "seed": 7, "top_p": 0.95"#)]).texts
        let c = try generate(
            engine, [line(#""do_sample": true, "seed": 8, "top_p": 0.95"#), line(#""do_sample": true, "seed": 9, "temperature": 1.5"#)]
        ).texts
        #expect(a == b)
        #expect(c[0] != a[0] || c[1] != a[0])
        let greedy = try generate(engine, [line(#""do_sample": false"#)]).texts
        let topOne = try generate(engine, [line(#""do_sample": true, "top_k": 1, "seed": 3"#)]).texts
        #expect(greedy == topOne)
        #expect(greedy[0].hasPrefix("Det var en gang"))
        let stopped = try generate(engine, [line(#""stop_at_newline": true"#, maxNewTokens: 40)]).texts
        #expect(!stopped[0].contains("\n"))
        let none = try generate(engine, [line(#""do_sample": false"#, maxNewTokens: 0)]).texts
        #expect(none == ["Det var en gang"])
    }

    @Test func featureExtraction() throws {
        let engine = try #require(PipelineFixtures.engine)
        let base = try #require(engine.head(named: "base")).model
        let ids = try engine.tokenizer.encode(Self.text).ids
        let hidden = try #require(base.run(PackedBatch([ids]), workspace: EncoderWorkspace())["last_hidden_state"])
        let h = 64, n = ids.count
        let results = engine.run(
            [
                try request(#"{"id": "m", "task": "feature-extraction", "text": "\#(Self.text)"}"#),
                try request(
                    #"""
                    {"id": "f", "task": "feature-extraction", "text": "\#(Self.text)", "options": {"pooling": "first", "normalize": \#
                    true}}
                    """#
                ),
                try request(#"{"id": "n", "task": "feature-extraction", "text": "\#(Self.text)", "options": {"pooling": "none"}}"#),
            ], workspace: EncoderWorkspace()
        ).flat
        let mean = (results[0].result?.arrayValue ?? []).compactMap { $0.doubleValue }
        #expect(mean.count == h)
        for j in 0..<h {
            let expected = (0..<n).map { hidden.storage[$0 * h + j] }.reduce(0, +) / Float(n)
            #expect(abs(mean[j] - Double(expected)) < 1e-5)
        }
        let first = (results[1].result?.arrayValue ?? []).compactMap { $0.doubleValue }
        #expect(abs(first.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        let all = try #require(results[2].result?.arrayValue)
        #expect(all.count == 1 && all[0].arrayValue?.count == n && all[0].arrayValue?.first?.arrayValue?.count == h)
    }

    @Test func fillMaskTargets() throws {
        let engine = try #require(PipelineFixtures.engine)
        let r = engine.run(
            [
                try request(
                    #"""
                    {"id": "t", "task": "fill-mask", "text": "Jeg bor i <mask>.", "options": {"targets": ["og", "i", "Ġtil", "og"], \#
                    "top_k": 10}}
                    """#
                )
            ],
            workspace: EncoderWorkspace()
        ).flat[0]
        let list = try #require(r.result?.arrayValue)
        let tokens = Set(list.compactMap { $0["token"]?.intValue })
        let expected = Set(["og", "i", "Ġtil"].compactMap { engine.tokenizer.tokenToId($0) })
        #expect(list.count == 3 && tokens == expected)
        let scores = list.compactMap { $0["score"]?.doubleValue }
        #expect(scores == scores.sorted(by: >))
    }
}

import Foundation
import NorBERT
import Tensors
import TestSupport
import Testing
import Tokenizers
import Wire

@testable import Pipelines

/// The per-request cost model with the DEFAULT limits: hostile requests are rejected with a
/// precise error before any work (no window built, nothing encoded), ordinary ones are priced
/// without tokenizing and pass.
@Suite("Pipelines: request cost")
struct CostTests {
    func request(_ json: String) throws -> PipelineRequest { try PipelineRequest.decode(json).get() }

    @Test("the hostile requests are rejected before any window is built or token encoded", arguments: HostileRequests.cases.map(\.name))
    func hostileRequestsRejectedBeforeWork(name: String) throws {
        let engine = try #require(PipelineFixtures.engine)
        let c = try #require(HostileRequests.cases.first { $0.name == name })
        #expect(engine.configuration.limits == CostLimits(), "default limits")
        let r = try request(c.line)
        let priced = engine.cost(of: r)
        if c.rejectedWhenPriced {
            guard case .failure(let error) = priced else {
                Issue.record("\(name): priced \(priced)")
                return
            }
            #expect(error.code.rawValue == c.code, "\(name): \(error)")
        } else {
            guard case .success(let cost) = priced else {
                Issue.record("\(name): \(priced)")
                return
            }
            #expect(!cost.isExact, "the bytes looked harmless: not tokenized when priced")
        }
        let ran = engine.run([r], workspace: EncoderWorkspace())
        let error = try #require(ran.flat.first?.error, "\(name): answered")
        #expect(error.code.rawValue == c.code, "\(name): \(error)")
        #expect(ran.flat.count == 1 && ran.partials.allSatisfy(\.isEmpty))
        #expect(ran.stats.builtSequences == 0, "\(name): windows or choices built before the rejection")
        #expect(ran.stats.encodedTokens == 0 && ran.stats.encoderPasses == 0 && ran.stats.requestedSequences == 0)
    }

    @Test func errorsNameTheLimitTheCostAndTheSetting() throws {
        let engine = try #require(PipelineFixtures.engine)
        func message(_ name: String) throws -> String {
            let c = try #require(HostileRequests.cases.first { $0.name.hasPrefix(name) })
            guard case .failure(let e) = engine.cost(of: try request(c.line)) else {
                Issue.record("\(name)")
                return ""
            }
            return e.message
        }
        let window = try message("window stride")
        #expect(window.contains("setting max-windows") && window.contains("limit of 256") && window.contains("stride 16382"), "\(window)")
        #expect(try message("QA doc_stride just under the window within").contains("setting max-windows"))
        #expect(try message("fill-mask with 350").contains("350 mask tokens, more than the limit of 32 (setting max-masks)"))
        #expect(try message("fill-mask response").contains("setting max-response-bytes"))
        let digits = try message("300 KB of digits in windows")
        #expect(
            digits.contains("more than 262144 tokens (tokenizing stopped there)") && digits.contains("setting max-request-tokens"),
            "\(digits)")
        let unwindowed = try #require(HostileRequests.cases.first { $0.name == "300 KB of digits without windows" })
        let refused = engine.run([try request(unwindowed.line)], workspace: EncoderWorkspace()).flat.first?.error?.message ?? ""
        #expect(
            refused.contains("the text is more than 16384 tokens (tokenizing stopped there), more than the maximum of 16384 (set option"),
            "\(refused)")
        #expect(try message("fill-mask top_k").contains("must be at most 100 (setting max-top-k), got 2048"))
        #expect(try message("1,000 choices").contains("1000 choices, more than the limit of 16 (setting max-choices)"))
        #expect(try message("streamed generation").contains("102400 bytes, more than the limit of 256 (setting max-id-bytes)"))
        #expect(try message("max_new_tokens").contains("must be at most 1024 (setting max-new-tokens), got 1000000"))
        #expect(try message("feature-extraction").contains("setting max-response-bytes"))
        // Aggregate encoder tokens (windows within their limit).
        let tokens = try request(
            #"""
            {"id": "t", "task": "text-classification", "text": "\#(HostileRequests.text(bytes: 800_000))", "options": {"overflow": \#
            "window"}}
            """#
        )
        guard case .failure(let e) = engine.cost(of: tokens) else {
            Issue.record("800 KB in windows")
            return
        }
        #expect(
            e.code == .requestTooCostly && e.message.contains("encoder tokens")
                && e.message.contains("limit of 262144 (setting max-request-tokens)"), "\(e)")
    }

    @Test func theQuestionAnsweringCaseIsJustUnderTheWindow() throws {
        let engine = try #require(PipelineFixtures.engine)
        let q = try engine.tokenizer.encode(HostileRequests.question, pair: nil, addSpecialTokens: false, truncation: nil, padding: nil)
            .count
        #expect(384 - engine.pairSpecials - q == HostileRequests.contextPerWindow)
        let tooLong = try engine.tokenizer.encode(HostileRequests.text(bytes: 48 * 1024)).count
        #expect(tooLong > engine.maxInputTokens, "the 48 KB text needs windows")
    }

    /// Every example request and fixture call is within the limits, priced from its bytes alone.
    @Test func ordinaryRequestsPassWithoutTokenizing() throws {
        let engine = try #require(PipelineFixtures.engine)
        var lines = try String(
            contentsOf: PipelineFixtures.root.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("schemas/examples/requests.jsonl"), encoding: .utf8
        ).split(separator: "\n").map(String.init)
        for (task, fields) in [
            ("text-classification", ["text"]), ("token-classification", ["text"]), ("fill-mask", ["text"]),
            ("question-answering", ["question", "context"]),
        ] {
            for c in try PipelineFixtures.cases(task) {
                for call in c["calls"]?.arrayValue ?? [] {
                    var pairs: [(String, JSONValue)] = [("id", .string("f")), ("task", .string(task))]
                    for f in fields { pairs.append((f, c[f] ?? .null)) }
                    if let kwargs = call["kwargs"], kwargs.objectPairs?.isEmpty == false { pairs.append(("options", kwargs)) }
                    lines.append(JSONValue.object(pairs).jsonText)
                }
            }
        }
        for c in try PipelineFixtures.cases("multiple-choice") {
            lines.append(
                JSONValue.object([
                    ("id", .string("m")), ("task", .string("multiple-choice")), ("question", c["question"] ?? .null),
                    ("choices", c["choices"] ?? .null),
                ]).jsonText)
        }
        #expect(lines.count > 400)
        for line in lines {
            guard case .success(let r) = PipelineRequest.decode(line) else { continue }
            switch engine.cost(of: r) {
            case .success(let cost): #expect(!cost.isExact && cost.encoderTokens > 0, "\(line.prefix(200))")
            case .failure(let e): Issue.record("\(e): \(line.prefix(300))")
            }
        }
    }

    @Test func generationCountsItsNewTokensInTheBatchCost() throws {
        let engine = try #require(PipelineFixtures.engine)
        let short = try engine.cost(
            of: request(#"{"id": "g", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"max_new_tokens": 1}}"#)
        ).get()
        let long = try engine.cost(
            of: request(#"{"id": "g", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"max_new_tokens": 1000}}"#)
        ).get()
        #expect(short.generatedTokens == 1 && long.generatedTokens == 1000)
        #expect(long.encoderTokens == short.encoderTokens)
        #expect(long.batchTokens == long.encoderTokens + 1000 * RequestCost.generatedTokenWeight)
        let defaults = try engine.cost(of: request(#"{"id": "g", "task": "text-generation", "head": "causal", "text": "Hei"}"#)).get()
        #expect(defaults.generatedTokens == 20)
    }

    @Test func costCountsWindowsChoicesAndHeads() throws {
        let engine = try #require(PipelineFixtures.engine)
        let one = try engine.cost(of: request(#"{"id": "a", "task": "text-classification", "text": "Hei på deg."}"#)).get()
        let two = try engine.cost(of: request(#"{"id": "a", "heads": ["sentiment", "ner"], "text": "Hei på deg."}"#)).get()
        #expect(two.encoderTokens == 2 * one.encoderTokens)
        let choices = try engine.cost(
            of: request(#"{"id": "a", "task": "multiple-choice", "question": "Hva?", "choices": ["Ja", "Nei", "Kanskje"]}"#)
        ).get()
        #expect(choices.windows == 1 && choices.encoderTokens >= 3 * 4 && choices.encoderTokens < 3 * 16)
        // A long text in windows: the estimate (3 bytes a token; this small tokenizer averages 2.8)
        // counts every window's tokens.
        let long = HostileRequests.text(bytes: 120_000)
        let windowed = try engine.cost(
            of: request(#"{"id": "a", "task": "text-classification", "text": "\#(long)", "options": {"overflow": "window"}}"#)
        ).get()
        let exact = try engine.tokenizer.encode(long).count
        #expect(windowed.windows >= 2 && windowed.encoderTokens >= exact * 9 / 10 && windowed.encoderTokens <= exact * 2)
    }

    /// The window counts priced without building windows are the ones built.
    @Test func pricedWindowsAreTheBuiltWindows() throws {
        let engine = try #require(PipelineFixtures.engine)
        let qa = try #require(engine.head(named: "qa"))
        var stats = RunStats()
        let context = Array(repeating: HostileRequests.sentence, count: 12).joined()
        for (seqLen, stride) in [(384, 128), (48, 16), (40, 30), (30, 0), (64, 40), (20, 5)] {
            let r = try request(
                #"""
                {"id": "w", "task": "question-answering", "question": "Hvor?", "context": "\#(context)", "options": {"max_seq_len": \#
                \#(seqLen), "doc_stride": \#(stride)}}
                """#
            )
            let plan = try QuestionAnsweringPlan(r, head: qa, engine: engine, stats: &stats)
            let price = try engine.taskCost(r, head: qa, task: .questionAnswering, measure: .exact)
            #expect(price.windows == plan.windows.count, "max_seq_len \(seqLen) doc_stride \(stride)")
            #expect(price.encoderTokens == plan.sequences.reduce(0) { $0 + $1.count })
        }
        let small = try PipelineEngine(
            heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
            configuration: EngineConfiguration(maxInputTokens: 50))
        let sentiment = try #require(small.head(named: "sentiment"))
        for stride in [0, 10, 25, 30] {
            let r = try request(
                #"""
                {"id": "w", "task": "text-classification", "text": "\#(context)", "options": {"overflow": "window", "stride": \#
                \#(stride)}}
                """#
            )
            let plan = try TextClassificationPlan(r, head: sentiment, engine: small, stats: &stats)
            let price = try small.taskCost(r, head: sentiment, task: .textClassification, measure: .exact)
            #expect(price.windows == plan.sequences.count && price.encoderTokens == plan.input.tokenCount, "stride \(stride)")
        }
    }

    @Test func limitsAreConfigurable() throws {
        var limits = CostLimits()
        limits.apply(["max-choices": 2000, "max-top-k": 3000, "max-new-tokens": 10])
        let engine = try PipelineEngine(
            heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
            configuration: EngineConfiguration(limits: limits))
        #expect(engine.maxRequestTokens == 16 * 16384)
        let choices = try #require(HostileRequests.cases.first { $0.name == "1,000 choices" })
        #expect(try engine.cost(of: request(choices.line)).get().encoderTokens > 1000)
        let topK = try #require(HostileRequests.cases.first { $0.name == "fill-mask top_k = vocabulary size" })
        #expect(engine.run([try request(topK.line)], workspace: EncoderWorkspace()).flat[0].result?.arrayValue?.count == 2048)
        // A default over the limit is clamped to it.
        let gen = try engine.cost(of: request(#"{"id": "g", "task": "text-generation", "head": "causal", "text": "Hei"}"#)).get()
        #expect(gen.generatedTokens == 10)
        var bad = CostLimits()
        bad.maxWindows = 0
        #expect(throws: EngineError.self) {
            try PipelineEngine(
                heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
                configuration: EngineConfiguration(limits: bad))
        }
    }

    @Test func samplingWithTopKOfTheVocabularyIsAnswered() throws {
        let engine = try #require(PipelineFixtures.engine)
        for line in HostileRequests.nowCheap {
            let response = engine.run([try request(line)], workspace: EncoderWorkspace()).flat[0]
            #expect(response.error == nil, "\(response.error?.description ?? "")")
        }
    }
}

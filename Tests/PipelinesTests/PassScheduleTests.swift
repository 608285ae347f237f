import Foundation
import NorBERT
import Testing
import Tokenizers
import Wire

@testable import Pipelines

/// The encoder passes `run` makes for a few mixed workloads, recorded before the scheduler became
/// `EncoderPassPlanner` and checked since: the same passes (encoder, sequences, heads and their
/// rows), the same `between` calls and streamed partials in the same order, the same counters.
@Suite("Pipelines: pass schedule")
struct PassScheduleTests {
    static let text = "Kari Nordmann bor i Tromsø og jobber på UiT."
    static let longContext = Array(repeating: "Kari Nordmann bor i Tromsø og jobber på UiT, men Per bor i Bergen.", count: 6)
        .joined(separator: " ")
    static let veryLong = longContext + " " + longContext

    /// Every task, heads sharing a text, a duplicate, windows, choices, a streamed QA, a generation
    /// and two requests that fail before planning.
    static let mixed: [String] = [
        #"{"id": "a", "heads": ["sentiment", "ner"], "text": "\#(text)"}"#,
        #"{"id": "b", "task": "text-classification", "text": "\#(text)"}"#,
        #"{"id": "c", "task": "fill-mask", "text": "Kari bor i <mask>."}"#,
        #"""
        {"id": "d", "task": "question-answering", "question": "Hvor bor Kari?", "context": "\#(longContext)", "options": \#
        {"max_seq_len": 48, "doc_stride": 16}, "stream": true}
        """#,
        #"""
        {"id": "e", "task": "multiple-choice", "question": "Kari bor i", "choices": ["Tromsø.", "Bergen.", "Tromsø.", "en båt på \#
        havet."]}
        """#,
        #"{"id": "f", "task": "feature-extraction", "text": "Hei på deg"}"#,
        #"{"id": "g", "task": "text-generation", "head": "causal", "text": "Det var en gang", "options": {"max_new_tokens": 3}}"#,
        #"{"id": "h", "task": "text-classification", "head": "nobody", "text": "x"}"#,
        #"{"id": "i", "task": "token-classification", "text": "\#(veryLong)", "options": {"overflow": "window", "stride": 10}}"#,
        #"{"id": "j", "task": "text-classification", "text": ""}"#,
        #"""
        {"id": "k", "task": "text-classification", "text": "\#(veryLong)", "options": {"overflow": "window", "stride": 20}, \#
        "stream": true}
        """#,
        #"{"id": "l", "task": "text-classification", "text": "Hei på deg"}"#,
    ]

    static func engine(maxInputTokens: Int? = 160, maxTokensPerPass: Int) throws -> PipelineEngine {
        try PipelineEngine(
            heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
            configuration: EngineConfiguration(maxInputTokens: maxInputTokens, maxTokensPerPass: maxTokensPerPass))
    }

    /// The run's log: passes, `between` calls and partials in the order they happened, then the
    /// counters and each response's head and outcome.
    static func log(_ engine: PipelineEngine, _ lines: [String], label: String) throws -> [String] {
        let requests = try lines.map { try PipelineRequest.decode($0).get() }
        let events = EventLog()
        let observer: @Sendable (EncoderPassRecord) -> Void = { pass in for line in describe(pass) { events.append(line) } }
        let result = EncoderPassRecord.$observer.withValue(observer) {
            engine.run(
                requests, workspace: EncoderWorkspace(),
                onPartial: { request, partial in
                    events.append("partial \(request) \(partial.head ?? "-") w=\(partial.usage?.windows ?? -1)")
                }, between: { events.append("between") })
        }
        var out = events.lines
        let s = result.stats
        out.append(
            "stats passes=\(s.encoderPasses) sequences=\(s.encodedSequences) tokens=\(s.encodedTokens) "
                + "requested=\(s.requestedSequences) heads=\(s.headApplications) built=\(s.builtSequences)")
        for (k, responses) in result.responses.enumerated() {
            out.append("response \(k) " + responses.map { "\($0.head ?? "-"):\($0.error?.code.rawValue ?? "ok")" }.joined(separator: " "))
        }
        // Not part of the recording (float text may differ between machines): the exact output,
        // compared by hand before and after the change on one machine.
        let text = result.responses.flatMap { $0.map(\.jsonLine) }.joined(separator: "\n")
        print("pass-schedule \(label) output digest: \(fnv(Array(text.utf8).map(Int.init))) (\(text.utf8.count) bytes)")
        return out
    }

    /// A pass: encoder, sequence lengths, a digest of the token ids; then per head, the number of
    /// rows and a digest of them.
    static func describe(_ pass: EncoderPassRecord) -> [String] {
        let lengths = pass.sequences.map { String($0.count) }.joined(separator: ",")
        return ["pass g\(pass.encoderGroup)\(pass.causal ? "c" : "") [\(lengths)] ids=\(fnv(pass.sequences.flatMap { $0 + [-1] }))"]
            + pass.heads.map { "  head \($0.head) rows=\($0.rows.count) \(fnv($0.rows))" }
    }

    /// FNV-1a over the values (stable across runs and machines, unlike `Hasher`).
    static func fnv(_ values: [Int]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in values {
            for byte in withUnsafeBytes(of: Int64(v).littleEndian, Array.init) {
                h = (h ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        return String(h, radix: 16)
    }

    /// Runs `lines` and compares the log with the recording (printed, marked with `label`, when it differs).
    static func check(_ engine: PipelineEngine, _ lines: [String], _ recorded: String, label: String) throws {
        let actual = try log(engine, lines, label: label)
        let expected = recorded.split(separator: "\n").map(String.init)
        #expect(actual == expected, "\(label)")
        if actual != expected { print(actual.map { "pass-schedule \(label) | \($0)" }.joined(separator: "\n")) }
    }

    @Test func mixedWorkloadInOnePass() throws {
        try Self.check(Self.engine(maxTokensPerPass: 8192), Self.mixed, Self.onePass, label: "onePass")
    }

    @Test func mixedWorkloadInSmallPasses() throws {
        try Self.check(Self.engine(maxTokensPerPass: 200), Self.mixed, Self.smallPasses, label: "smallPasses")
    }

    @Test func everySequenceOverTheBudget() throws {
        try Self.check(Self.engine(maxTokensPerPass: 4), Self.mixed, Self.overBudget, label: "overBudget")
    }

    /// Heads on two encoders (loaded separately): passes per encoder, in the order requests name them.
    @Test func twoEncoders() throws {
        let tokenizer = try Tokenizer(directory: PipelineFixtures.tokenizerDirectory)
        let models = try [("ner", "token-classification"), ("sentiment", "sequence-classification"), ("mc", "multiple-choice")]
            .map { (name: $0.0, model: try NorBERTModel(directory: PipelineFixtures.tiny($0.1))) }
        let engine = try PipelineEngine(
            models: models, tokenizer: tokenizer,
            configuration: EngineConfiguration(maxInputTokens: 64, maxTokensPerPass: 48))
        let lines = [
            #"{"id": "a", "task": "text-classification", "text": "\#(Self.text)"}"#,
            #"{"id": "b", "task": "token-classification", "text": "\#(Self.text)"}"#,
            #"{"id": "c", "task": "multiple-choice", "question": "Kari bor i", "choices": ["Tromsø.", "Bergen."]}"#,
            #"{"id": "d", "heads": ["ner", "sentiment"], "text": "Hei på deg"}"#,
            #"""
            {"id": "e", "task": "text-classification", "text": "\#(Self.longContext)", "options": {"overflow": "window", "stride": \#
            20}, "stream": true}
            """#,
        ]
        try Self.check(engine, lines, Self.twoEncoderPasses, label: "twoEncoderPasses")
    }

    static let onePass = """
        pass g0 [17,8,48,48,48,48,48,26,9,9,13,4,160,128,138] ids=570732fb2f8fe8ff
          head sentiment rows=5 995fb7b45822c0f9
          head ner rows=305 d13085c4bb33d911
          head mlm rows=1 5a7edab0c1304793
          head qa rows=266 8054b7582a75b05
          head mc rows=4 fe5b128f6aabba48
        partial 3 qa w=1
        partial 3 qa w=2
        partial 3 qa w=3
        partial 3 qa w=4
        partial 3 qa w=5
        between
        between
        between
        between
        stats passes=1 sequences=15 tokens=752 requested=20 heads=5 built=18
        response 0 sentiment:ok ner:ok
        response 1 sentiment:ok
        response 2 mlm:ok
        response 3 qa:ok
        response 4 mc:ok
        response 5 base:ok
        response 6 causal:ok
        response 7 nobody:unknown_head
        response 8 ner:ok
        response 9 sentiment:empty_input
        response 10 sentiment:ok
        response 11 sentiment:ok
        """
    static let smallPasses = """
        pass g0 [17,8,48,48,48] ids=67709732eb685676
          head sentiment rows=2 88201fb960ff6465
          head ner rows=17 812ae344170637d5
          head mlm rows=1 5a7edab0c1304793
          head qa rows=144 d746eba229c01655
        partial 3 qa w=1
        partial 3 qa w=2
        partial 3 qa w=3
        between
        pass g0 [48,48,26,9,9,13,4] ids=6ee8e9061434c415
          head qa rows=122 778bf33ebdeadd84
          head mc rows=4 f3ca6287d5bc41ea
          head sentiment rows=1 eeb35e879b3ef33c
        partial 3 qa w=4
        partial 3 qa w=5
        between
        pass g0 [160] ids=2823f7513b97ae27
          head ner rows=160 a33f7e8fd6f40f25
          head sentiment rows=1 a8c7f832281a39c5
        between
        pass g0 [128] ids=4fa01597075bc42e
          head ner rows=128 daae756b97d6bf25
        between
        pass g0 [138] ids=694a2926518e96cd
          head sentiment rows=1 a8c7f832281a39c5
        between
        between
        between
        between
        stats passes=5 sequences=15 tokens=752 requested=20 heads=11 built=18
        response 0 sentiment:ok ner:ok
        response 1 sentiment:ok
        response 2 mlm:ok
        response 3 qa:ok
        response 4 mc:ok
        response 5 base:ok
        response 6 causal:ok
        response 7 nobody:unknown_head
        response 8 ner:ok
        response 9 sentiment:empty_input
        response 10 sentiment:ok
        response 11 sentiment:ok
        """
    static let overBudget = """
        pass g0 [17] ids=a37a64db9ce8b76
          head sentiment rows=2 88201fb960ff6465
          head ner rows=17 812ae344170637d5
        between
        pass g0 [8] ids=b3c38ac9514bc636
          head mlm rows=1 de21504f16dc720
        between
        pass g0 [48] ids=b97a0e1710eb3a10
          head qa rows=48 b3b77ea82cd3a625
        partial 3 qa w=1
        between
        pass g0 [48] ids=2a2f6d39ac154668
          head qa rows=48 b3b77ea82cd3a625
        partial 3 qa w=2
        between
        pass g0 [48] ids=a97b3c02c4796ea2
          head qa rows=48 b3b77ea82cd3a625
        partial 3 qa w=3
        between
        pass g0 [48] ids=5b2646d9cf57213a
          head qa rows=48 b3b77ea82cd3a625
        partial 3 qa w=4
        between
        pass g0 [48] ids=cd1cfd42e3b92adc
          head qa rows=48 b3b77ea82cd3a625
        partial 3 qa w=5
        between
        pass g0 [26] ids=c0398ddae64d0e04
          head qa rows=26 f4f3badd12a01d44
        between
        pass g0 [9] ids=5f8065daa4c5ba03
          head mc rows=2 88201fb960ff6465
        between
        pass g0 [9] ids=ec2f5753b31ed713
          head mc rows=1 a8c7f832281a39c5
        between
        pass g0 [13] ids=10309c79b42d2a9f
          head mc rows=1 a8c7f832281a39c5
        between
        pass g0 [4] ids=8b61e73200b90bc0
          head sentiment rows=1 a8c7f832281a39c5
        between
        pass g0 [160] ids=2823f7513b97ae27
          head ner rows=160 a33f7e8fd6f40f25
          head sentiment rows=1 a8c7f832281a39c5
        between
        pass g0 [128] ids=4fa01597075bc42e
          head ner rows=128 daae756b97d6bf25
        between
        pass g0 [138] ids=694a2926518e96cd
          head sentiment rows=1 a8c7f832281a39c5
        between
        between
        between
        between
        stats passes=15 sequences=15 tokens=752 requested=20 heads=17 built=18
        response 0 sentiment:ok ner:ok
        response 1 sentiment:ok
        response 2 mlm:ok
        response 3 qa:ok
        response 4 mc:ok
        response 5 base:ok
        response 6 causal:ok
        response 7 nobody:unknown_head
        response 8 ner:ok
        response 9 sentiment:empty_input
        response 10 sentiment:ok
        response 11 sentiment:ok
        """
    static let twoEncoderPasses = """
        pass g1 [17,4] ids=f637e83bb719822b
          head sentiment rows=2 58d1c9410504bc54
        between
        pass g1 [64] ids=161043ea2bd6cd06
          head sentiment rows=1 a8c7f832281a39c5
        between
        pass g1 [64] ids=f4cff15e31bf6149
          head sentiment rows=1 a8c7f832281a39c5
        between
        pass g1 [53] ids=c42df7c5633a7d7a
          head sentiment rows=1 a8c7f832281a39c5
        between
        pass g0 [17,4] ids=f637e83bb719822b
          head ner rows=21 37d5c4c356ae71d1
        between
        pass g2 [9,9] ids=71cef22d12d7feed
          head mc rows=2 60fb90f8ad8a6b4c
        between
        stats passes=6 sequences=9 tokens=241 requested=9 heads=6 built=9
        response 0 sentiment:ok
        response 1 ner:ok
        response 2 mc:ok
        response 3 ner:ok sentiment:ok
        response 4 sentiment:ok
        """
}

/// Lines appended from the engine's thread (the observer is `@Sendable`).
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

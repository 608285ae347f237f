import Foundation
import NorBERT
import Tensors
import Testing
import Tokenizers
import Wire

@testable import Pipelines

/// `"stream": true`: partial responses (QA per window, generation per token) before the final one.
@Suite("Pipelines: streaming")
struct StreamingTests {
    func request(_ json: String) throws -> PipelineRequest { try PipelineRequest.decode(json).get() }

    static let longContext = Array(repeating: "Kari Nordmann bor i Tromsø og jobber på UiT, men Per bor i Bergen.", count: 6).joined(
        separator: " ")

    @Test func decodesStream() throws {
        #expect(try request(#"{"id": "a", "task": "text-classification", "text": "x"}"#).stream == false)
        #expect(try request(#"{"id": "a", "task": "text-classification", "text": "x", "stream": true}"#).stream == true)
        #expect(try request(#"{"id": "a", "task": "text-classification", "text": "x", "stream": null}"#).stream == false)
        guard case .failure(let f) = PipelineRequest.decode(#"{"id": "a", "task": "text-classification", "text": "x", "stream": "yes"}"#)
        else {
            Issue.record("a non-boolean stream must be rejected")
            return
        }
        #expect(f.error.code == .wrongType)
    }

    @Test func questionAnsweringStreamsEachWindowsBestAnswers() throws {
        let engine = try #require(PipelineFixtures.engine)
        let body =
            #"""
            "task": "question-answering", "question": "Hvor bor Kari?", "context": "\#(Self.longContext)", "options": \#
            {"max_seq_len": 48, "doc_stride": 16, "top_k": 2}
            """#
        let streamed = engine.run([try request(#"{"id": "s", \#(body), "stream": true}"#)], workspace: EncoderWorkspace())
        let plain = engine.run([try request(#"{"id": "s", \#(body)}"#)], workspace: EncoderWorkspace())
        let final = try #require(streamed.responses.first?.first)
        let windows = try #require(final.usage?.windows)
        #expect(windows > 2, "the context needs several windows")
        let partials = streamed.partials[0]
        #expect(partials.count == windows - 1, "one partial per window but the last")
        for (k, partial) in partials.enumerated() {
            #expect(partial.isPartial && partial.id == "s" && partial.head == "qa" && partial.task == .questionAnswering)
            #expect(partial.usage?.windows == k + 1)
            #expect(partial.json["partial"]?.boolValue == true)
            #expect(partial.result?.arrayValue?.count == 2, "top_k answers so far")
        }
        // The final response is exactly the unstreamed one, and comes last.
        #expect(final.jsonLine == plain.responses[0][0].jsonLine)
        #expect(!final.isPartial && final.json["partial"] == nil)
        let order = streamed.stream(0)
        #expect(order.count == windows && order.last?.jsonLine == final.jsonLine && order.dropLast().allSatisfy(\.isPartial))
        // Unstreamed: no partials.
        #expect(plain.partials[0].isEmpty)
    }

    @Test func generationStreamsTokenChunks() throws {
        let engine = try #require(PipelineFixtures.engine)
        let body = #""task": "text-generation", "head": "causal", "text": "Det var en gang", "options": {"max_new_tokens": 6}"#
        let lines = [
            #"{"id": "g", \#(body), "stream": true}"#, #"{"id": "h", \#(body)}"#,
            #"{"id": "q", "task": "text-classification", "text": "Hei", "stream": true}"#,
        ]
        let result = engine.respond(toLines: lines.map { Array($0.utf8) }, workspace: EncoderWorkspace())
        let final = try #require(result.responses[0].first)
        let generated = try #require(final.usage?.generatedTokens)
        let chunks = result.partials[0]
        #expect(chunks.count == generated && generated > 0, "one chunk per new token")
        var text = ""
        for (k, chunk) in chunks.enumerated() {
            #expect(chunk.isPartial && chunk.task == .textGeneration && chunk.head == "causal")
            #expect(chunk.usage?.generatedTokens == k + 1)
            #expect(chunk.result?["token"]?.intValue != nil)
            text += chunk.result?["text"]?.stringValue ?? ""
        }
        let full = try #require(final.result?.arrayValue?.first?["generated_text"]?.stringValue)
        #expect("Det var en gang" + text == full, "the chunks add up to the generated text")
        // Same final as without stream; a task without partials answers with the final only.
        #expect(result.responses[0][0].jsonLine.replacingOccurrences(of: #""g""#, with: #""h""#) == result.responses[1][0].jsonLine)
        #expect(result.partials[1].isEmpty && result.partials[2].isEmpty)
        #expect(result.stream(2).count == 1)
    }

    @Test func headsStreamPerHead() throws {
        let engine = try #require(PipelineFixtures.engine)
        let line = #"{"id": "m", "heads": ["sentiment", "causal"], "text": "Hei på deg", "options": {"max_new_tokens": 3}, "stream": true}"#
        let result = engine.respond(toLines: [Array(line.utf8)], workspace: EncoderWorkspace())
        let order = result.stream(0)
        #expect(order.filter { !$0.isPartial }.map(\.head) == ["sentiment", "causal"], "one final per head, in order")
        #expect(order.last?.isPartial == false && order.last?.head == "causal")
        #expect(order.first?.head == "sentiment" && order.first?.isPartial == false)
    }

    /// With a handler, partials leave the engine as they are computed: two streamed generations
    /// of one batch advance step by step together, so their chunks arrive interleaved (collected
    /// at the end they would come one request after the other). QA partials arrive too, equal to
    /// the collected ones, and nothing is left in `partials`.
    @Test func handlerGetsPartialsAsTheyAreComputed() throws {
        let engine = try #require(PipelineFixtures.engine)
        let qa =
            #"""
            {"id": "q", "task": "question-answering", "question": "Hvor bor Kari?", "context": "\#(Self.longContext)", "options": \#
            {"max_seq_len": 48, "doc_stride": 16}, "stream": true}
            """#
        let requests = try [
            request(
                #"""
                {"id": "a", "task": "text-generation", "head": "causal", "text": "Det var en gang", "options": {"max_new_tokens": \#
                4}, "stream": true}
                """#
            ),
            request(
                #"""
                {"id": "b", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"max_new_tokens": 4}, "stream": \#
                true}
                """#
            ),
            request(qa),
            request(#"{"id": "c", "task": "text-classification", "text": "Hei", "stream": true}"#),
        ]
        var live: [(request: Int, response: PipelineResponse)] = []
        let result = engine.run(requests, workspace: EncoderWorkspace()) { live.append(($0, $1)) }
        let collected = engine.run(requests, workspace: EncoderWorkspace())
        #expect(result.partials.allSatisfy { $0.isEmpty }, "the handler took every partial")
        for r in requests.indices {
            #expect(
                live.filter { $0.request == r }.map(\.response.jsonLine) == collected.partials[r].map(\.jsonLine),
                "request \(r): the same partials")
        }
        #expect(result.responses.map { $0.map(\.jsonLine) } == collected.responses.map { $0.map(\.jsonLine) }, "the same finals")
        let generation = live.filter { $0.request < 2 }.map(\.request)
        #expect(generation == [0, 1, 0, 1, 0, 1, 0, 1], "chunks interleave token by token: \(generation)")
        // QA partials come from the encoder passes, before any generation step.
        #expect(
            live.first?.request == 2 && live.filter { $0.request == 2 }.count == (collected.responses[2].first?.usage?.windows ?? 0) - 1)
    }
}

import Testing

@testable import Worker

@Suite("worker metrics")
struct WorkerMetricsTests {
    static func text(_ metrics: WorkerMetrics) -> String { String(decoding: metrics.render(), as: UTF8.self) }

    @Test("labels taken from requests stay in bounded sets: 300 garbage values add a handful of series")
    func garbageLabelsBounded() {
        let metrics = WorkerMetrics(heads: ["sentiment", "ner"])
        metrics.request(task: "text-classification", head: "sentiment", outcome: "ok")
        metrics.request(task: "unknown", head: "none", outcome: "invalid_json")
        metrics.deadLetter(code: "invalid_json")
        let before = metrics.render().count
        for i in 0..<300 {
            let garbage = "garbage\(i)-" + String(repeating: "x", count: i)
            metrics.request(task: garbage, head: "none", outcome: "invalid_json")
            metrics.request(task: "fill-mask", head: garbage, outcome: "ok")
            metrics.request(task: "heads", head: "sentiment+\(garbage)", outcome: garbage)
            metrics.deadLetter(code: garbage)
        }
        let text = Self.text(metrics)
        #expect(!text.contains("garbage"))
        #expect(metrics.render().count < before + 1500, "/metrics grew from \(before) to \(metrics.render().count) bytes")
        #expect(text.contains(#"task="unknown",head="none",outcome="invalid_json"} 301"#))
        #expect(text.contains(#"task="fill-mask",head="other",outcome="ok"} 300"#))
        #expect(text.contains(#"norbert_worker_dead_letters_total{code="other"} 300"#))
    }

    @Test("known values pass; head combinations are configured heads, deduplicated, in configured order")
    func knownValues() {
        let metrics = WorkerMetrics(heads: ["sentiment", "ner", "qa"])
        metrics.request(task: "question-answering", head: "qa+sentiment", outcome: "ok")
        metrics.request(task: "heads", head: "sentiment+qa+qa", outcome: "input_too_long")
        metrics.request(task: "token-classification", head: "ner+ner", outcome: "undeliverable_response")
        for code in ["invalid_reply_to", "empty_message", "message_too_large", "internal_error", "unknown_head"] {
            metrics.deadLetter(code: code)
        }
        let text = Self.text(metrics)
        #expect(text.contains(#"task="question-answering",head="sentiment+qa",outcome="ok"} 1"#))
        #expect(text.contains(#"task="heads",head="sentiment+qa",outcome="input_too_long"} 1"#))
        #expect(text.contains(#"task="token-classification",head="ner",outcome="undeliverable_response"} 1"#))
        for code in ["invalid_reply_to", "empty_message", "message_too_large", "internal_error", "unknown_head"] {
            #expect(text.contains(#"norbert_worker_dead_letters_total{code="\#(code)"} 1"#))
        }
    }

    @Test("without configured heads the head label takes at most 32 distinct values")
    func unconfiguredHeadsCapped() {
        let metrics = WorkerMetrics()
        for i in 0..<300 { metrics.request(task: "fill-mask", head: "h\(i)", outcome: "ok") }
        let text = Self.text(metrics)
        #expect(text.contains(#"head="h31""#) && !text.contains(#"head="h32""#))
        #expect(text.contains(#"task="fill-mask",head="other",outcome="ok"} 268"#))
    }
}

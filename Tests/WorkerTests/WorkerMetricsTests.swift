import Kafka
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

    static func statistics(_ partitions: [(Int, Int64, String)]) throws -> KafkaStatistics {
        let entries = partitions.map { #""\#($0.0)":{"partition":\#($0.0),"consumer_lag":\#($0.1),"fetch_state":"\#($0.2)"}"# }
        let json = #"{"name":"c","type":"consumer","topics":{"req":{"partitions":{\#(entries.joined(separator: ","))}}}}"#
        return try #require(KafkaStatistics(json: json))
    }

    @Test("consumer_lag: one series per partition being consumed; a revoked or vanished partition's series is removed")
    func lagSeriesFollowAssignment() throws {
        let metrics = WorkerMetrics()
        metrics.record(try Self.statistics([(0, 5, "active"), (1, 7, "offset-query"), (2, 9, "active")]))
        var text = Self.text(metrics)
        #expect(text.contains(#"norbert_worker_consumer_lag{topic="req",partition="0"} 5"#))
        #expect(text.contains(#"norbert_worker_consumer_lag{topic="req",partition="1"} 7"#))
        #expect(text.contains(#"norbert_worker_consumer_lag{topic="req",partition="2"} 9"#))
        // Partition 1 revoked (librdkafka still reports it, fetch state none, last lag kept);
        // partition 2 no longer in the report at all.
        metrics.record(try Self.statistics([(0, 3, "active"), (1, 7, "none")]))
        text = Self.text(metrics)
        #expect(text.contains(#"norbert_worker_consumer_lag{topic="req",partition="0"} 3"#))
        #expect(!text.contains(#"partition="1""#), "\(text)")
        #expect(!text.contains(#"partition="2""#), "\(text)")
        // Assigned again: the series comes back.
        metrics.record(try Self.statistics([(1, 2, "active")]))
        text = Self.text(metrics)
        #expect(text.contains(#"norbert_worker_consumer_lag{topic="req",partition="1"} 2"#))
        #expect(!text.contains(#"partition="0""#), "\(text)")
    }
}

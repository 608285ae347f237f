import ArgumentParser
import Foundation
import Kafka
import Synchronization
import Wire

/// `norbert-worker serve bench` (hidden): the client side of scripts/bench-worker.sh. Produces
/// the requests of a JSON-lines file (ids made unique, send time in the echoed correlation-id header) and reads the
/// answers until every request has its final one; prints requests/s, tokens/s and latency.
struct ServeBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure a running worker through the broker.", shouldDisplay: false)

    // Names differ from serve's own options (a parent's option names would capture them).
    @Option(name: .customLong("broker")) var bootstrapServers: String
    @Option(name: .customLong("file"), help: "JSON-lines requests, cycled to --count.") var input: String
    @Option var count: Int = 5000
    @Option(name: .customLong("to")) var requests: String = "norbert-requests"
    @Option(name: .customLong("from")) var results: String = "norbert-results"
    @Option(name: .customLong("within"), help: "Seconds the whole run may take.") var timeout: Int = 600

    func run() async throws {
        let lines = try String(contentsOfFile: input, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        guard !lines.isEmpty, count > 0 else { throw CLIError("bench: no requests") }
        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: "bench-\(UUID().uuidString)")
        consumerConfiguration.autoOffsetReset = .latest
        // The dev broker holds a fetch for the full fetch.wait.max.ms (default 500 ms) even when data
        // arrives meanwhile: answers would reach the client in 500 ms steps.
        consumerConfiguration.properties["fetch.wait.max.ms"] = "10"
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        try consumer.subscribe(topics: [results])
        let collected = BenchState()
        let expected = count
        let reader = Task { () throws -> Void in
            for try await event in consumer.events {
                guard case .message(let m) = event else {
                    if case .assigned = event { collected.assigned() }
                    continue
                }
                guard m.headerValues("norbert-final").first == .some(Array("true".utf8)) else { continue }
                if m.key == Array("bench-warm-up".utf8) {
                    collected.warmedUp()
                    continue
                }
                guard
                    let sentBytes = m.headerValues("correlation-id").first ?? nil,
                    let sent = UInt64(String(decoding: sentBytes, as: UTF8.self))
                else { continue }
                let tokens = (try? JSONValue.parse(m.value ?? []))?["usage"]?["input_tokens"]?.intValue ?? 0
                if collected.add(latencyNs: DispatchTime.now().uptimeNanoseconds - sent, tokens: tokens) >= expected { return }
            }
        }
        let deadline = ContinuousClock.now + .seconds(timeout)
        while !collected.isAssigned, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .seconds(1))
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: bootstrapServers))
        // One request round trip before the timing: the first produce to a topic waits for its
        // metadata (about a second on the dev broker), on the client's producer and the worker's.
        // The run measures the warm path.
        var warmUp = lines[0]
        if case .object(var pairs)? = try? JSONValue.parse(Array(warmUp.utf8)) {
            pairs = pairs.map { $0.0 == "id" ? ("id", .string("bench-warm-up")) : $0 }
            warmUp = JSONValue.object(pairs).jsonText
        }
        _ = try await producer.send(KafkaProducerMessage(topic: requests, key: "bench-warm-up", value: warmUp))
        let warmUpSent = ContinuousClock.now
        while !collected.isWarmedUp, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        let firstAnswer = ContinuousClock.now - warmUpSent
        let started = DispatchTime.now().uptimeNanoseconds
        for index in 0..<count {
            var line = lines[index % lines.count]
            if case .object(var pairs)? = try? JSONValue.parse(Array(line.utf8)) {
                pairs = pairs.map { $0.0 == "id" ? ("id", .string("b\(index)")) : $0 }
                line = JSONValue.object(pairs).jsonText
            }
            _ = try await producer.enqueue(
                KafkaProducerMessage(
                    topic: requests, key: "b\(index)", value: line,
                    headers: [KafkaHeader(name: "correlation-id", string: String(DispatchTime.now().uptimeNanoseconds))]))
        }
        try await producer.flush(timeout: .seconds(60))
        let watchdog = Task {
            try await Task.sleep(until: deadline)
            reader.cancel()
            try? await consumer.close()
        }
        try await reader.value
        watchdog.cancel()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        try? await consumer.close()
        try? await producer.close(timeout: .seconds(5))
        let (latencies, tokens) = collected.snapshot()
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6 }
        let firstMs = Double(firstAnswer.components.seconds) * 1e3 + Double(firstAnswer.components.attoseconds) / 1e15
        print(
            String(
                format: "requests %d  seconds %.2f  requests/s %.1f  tokens/s %.0f  p50 %.1f ms  p99 %.1f ms  first answer %.0f ms",
                sorted.count, seconds, Double(sorted.count) / seconds, Double(tokens) / seconds, percentile(0.5), percentile(0.99), firstMs)
        )
    }
}

final class BenchState: Sendable {
    private let state = Mutex<(latencies: [UInt64], tokens: Int, assigned: Bool, warm: Bool)>(([], 0, false, false))
    func warmedUp() { state.withLock { $0.warm = true } }
    var isWarmedUp: Bool { state.withLock { $0.warm } }
    func add(latencyNs: UInt64, tokens: Int) -> Int {
        state.withLock {
            $0.latencies.append(latencyNs)
            $0.tokens += tokens
            return $0.latencies.count
        }
    }
    func assigned() { state.withLock { $0.assigned = true } }
    var isAssigned: Bool { state.withLock { $0.assigned } }
    func snapshot() -> ([UInt64], Int) { state.withLock { ($0.latencies, $0.tokens) } }
}

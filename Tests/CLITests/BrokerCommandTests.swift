import Foundation
import TestSupport
import Testing

/// End to end: `norbert-worker broker` as a separate process. Starts it, reads
/// bootstrap.servers from its stdout, round-trips messages through it (with the hidden
/// `broker check` client, since this test target does not link the Kafka library), then
/// SIGTERMs it and expects a prompt exit 0.
@Suite("norbert-worker broker", .timeLimit(.minutes(3)))
struct BrokerCommandTests {
    @Test("serves, round-trips messages, exits 0 promptly on SIGTERM")
    func serveRoundTripAndTerminate() async throws {
        let bootstrapFile = FileManager.default.temporaryDirectory.appendingPathComponent("broker-bootstrap-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: bootstrapFile) }

        let broker = try ChildProcess([
            "broker", "--brokers", "3", "--topic", "e2e:4", "--topic", "other:1", "--bootstrap-file", bootstrapFile.path,
        ])
        defer { broker.kill9() }
        let line = try await broker.firstStdoutLine(timeout: .seconds(20))
        let bootstrap = line.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(bootstrap.split(separator: ",").count == 3)
        #expect(bootstrap.split(separator: ",").allSatisfy { $0.hasPrefix("127.0.0.1:") || $0.hasPrefix("localhost:") })
        let written = try String(contentsOf: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(written == bootstrap)

        let check = try ChildProcess([
            "broker", "check", "--bootstrap-servers", bootstrap, "--topic", "e2e", "--messages", "1000", "--timeout", "60",
        ])
        defer { check.kill9() }
        let checkStatus = try await check.waitForExit(timeout: .seconds(90))
        let checkOutput = check.stdout
        #expect(checkStatus == 0, "broker check failed: \(checkOutput) \(check.stderr.suffix(2000))")
        #expect(checkOutput.contains("ok: 1000 messages"))

        let started = ContinuousClock.now
        broker.signal(SIGTERM)
        let status = try await broker.waitForExit(timeout: .seconds(10))
        let elapsed = ContinuousClock.now - started
        #expect(status == 0)
        #expect(broker.exitedNormally)
        #expect(elapsed < .seconds(5), "broker took \(elapsed) to exit")
    }

    @Test("SIGINT also stops it with exit 0")
    func sigint() async throws {
        let broker = try ChildProcess(["broker", "--brokers", "1"])
        defer { broker.kill9() }
        _ = try await broker.firstStdoutLine(timeout: .seconds(20))
        broker.signal(SIGINT)
        #expect(try await broker.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test("a malformed --topic is rejected")
    func badTopic() async throws {
        let broker = try ChildProcess(["broker", "--topic", "t:zero"])
        defer { broker.kill9() }
        let status = try await broker.waitForExit(timeout: .seconds(20))
        #expect(status != 0)
        #expect(broker.stderr.contains("PARTITIONS"))
    }

    @Test("--faults injects seeded faults, logged on stderr, while messages still round-trip; SIGUSR1 stops them; exit 0")
    func faults() async throws {
        let broker = try ChildProcess(["broker", "--brokers", "3", "--topic", "f:3", "--faults", "7", "--fault-interval-ms", "1000-2000"])
        defer { broker.kill9() }
        let bootstrap = try await broker.firstStdoutLine(timeout: .seconds(20)).trimmingCharacters(in: .whitespacesAndNewlines)
        try await broker.waitFor("broker: fault 3:", inStderr: true, timeout: .seconds(30))
        // A fault every 1-2 s (a broker down 1-3 s, request errors, latency, a leader moved): the
        // check's consumer must join a group whose coordinator keeps failing, which takes long
        // on a busy machine (with a fault every 0.1-0.8 s it read nothing in 60 s now and then).
        let check = try ChildProcess([
            "broker", "check", "--bootstrap-servers", bootstrap, "--topic", "f", "--messages", "200", "--timeout", "90",
        ])
        defer { check.kill9() }
        #expect(try await check.waitForExit(timeout: .seconds(120)) == 0, "\(check.stderr.suffix(2000))")
        broker.signal(SIGUSR1)
        try await broker.waitFor("faults stopped after", inStderr: true, timeout: .seconds(10))
        broker.signal(SIGTERM)
        #expect(try await broker.waitForExit(timeout: .seconds(10)) == 0)
        let faults = broker.stderr.split(separator: "\n").filter { $0.contains(": fault ") }
        #expect(faults.count >= 3)
        #expect(!broker.stderr.contains("injection failed"), "\(broker.stderr.suffix(2000))")
    }

    @Test("a malformed --fault-interval-ms is rejected")
    func badFaultInterval() async throws {
        let broker = try ChildProcess(["broker", "--faults", "1", "--fault-interval-ms", "500-100"])
        defer { broker.kill9() }
        #expect(try await broker.waitForExit(timeout: .seconds(20)) != 0)
        #expect(broker.stderr.contains("--fault-interval-ms"))
    }
}

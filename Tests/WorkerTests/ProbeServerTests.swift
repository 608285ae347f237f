import Foundation
import Logging
import TestSupport
import Testing

@testable import Worker

#if canImport(Glibc)
    import Glibc
#endif

/// The probe port (`/metrics`, `/livez`, `/readyz`) against clients that connect and stall,
/// flood it, or send too much; talked to with plain sockets.
@Suite("probe server", .timeLimit(.minutes(2)))
struct ProbeServerTests {
    static let halfRequest = "GET /livez HTTP/1.1\r\nHost: probe\r\n"  // the head's blank line never comes
    static let livez = "GET /livez HTTP/1.1\r\nHost: probe\r\n\r\n"

    @Test("GET /livez is answered and the connection closed; HEAD gets no body; one request per connection")
    func answers() async throws {
        try await RunningProbe.with { probe in
            let socket = try TestSocket(port: probe.port)
            socket.send(Self.livez)
            let reply = socket.readUntilClosed(timeout: .seconds(20))
            #expect(reply.closed)
            #expect(reply.text.hasPrefix("HTTP/1.1 200 OK"))
            #expect(reply.text.hasSuffix("\r\n\r\nok\n"))

            let head = try TestSocket(port: probe.port)
            head.send("HEAD /livez HTTP/1.1\r\nHost: probe\r\n\r\n")
            let headReply = head.readUntilClosed(timeout: .seconds(20))
            #expect(headReply.text.hasPrefix("HTTP/1.1 200 OK") && headReply.text.hasSuffix("\r\n\r\n"))

            let pipelined = try TestSocket(port: probe.port)
            pipelined.send(Self.livez + "GET /readyz HTTP/1.1\r\nHost: probe\r\n\r\n")
            let both = pipelined.readUntilClosed(timeout: .seconds(20))
            #expect(both.closed)
            #expect(both.text.components(separatedBy: "HTTP/1.1 ").count == 2, "one response, got: \(both.text)")
        }
    }

    @Test("/metrics reports readiness as norbert_worker_ready, the same as /readyz")
    func readyGauge() async throws {
        let status = WorkerStatus()
        let server = ProbeServer(host: "127.0.0.1", port: 0, metrics: WorkerMetrics(), status: status, logger: Logger(label: "test"))
        try await RunningProbe.with(server) { probe in
            let port = probe.port
            @Sendable func get(_ path: String) throws -> String {
                let socket = try TestSocket(port: port)
                socket.send("GET \(path) HTTP/1.1\r\nHost: probe\r\n\r\n")
                return socket.readUntilClosed(timeout: .seconds(20)).text
            }
            let notReady = try get("/readyz"), zero = try get("/metrics")
            #expect(notReady.hasPrefix("HTTP/1.1 503"))
            #expect(zero.contains("\nnorbert_worker_ready 0"), "\(zero)")
            status.setWarmed()
            status.setAssigned(3)
            let ready = try get("/readyz"), one = try get("/metrics")
            #expect(ready.hasPrefix("HTTP/1.1 200"))
            #expect(one.contains("\nnorbert_worker_ready 1"))
            status.setStopping()
            let stopping = try get("/metrics")
            #expect(stopping.contains("\nnorbert_worker_ready 0"))
        }
    }

    @Test("a connection without a complete request is closed after the connection timeout, even if it trickles bytes")
    func stalledConnectionClosed() async throws {
        try await RunningProbe.with(connectionTimeout: .milliseconds(300)) { probe in
            let stalled = try TestSocket(port: probe.port)
            stalled.send(Self.halfRequest)
            let reply = stalled.readUntilClosed(timeout: .seconds(15))
            #expect(reply.closed, "the server kept a half-sent request open")
            #expect(reply.text.isEmpty)

            // One byte every 100 ms keeps a read-idle timer happy; the deadline is per connection.
            let trickle = try TestSocket(port: probe.port)
            var closed = false
            for byte in Self.halfRequest.utf8.map({ String(UnicodeScalar($0)) }) + Array(repeating: "x", count: 150) {
                trickle.send(byte)
                if trickle.readUntilClosed(timeout: .milliseconds(100)).closed {
                    closed = true
                    break
                }
            }
            #expect(closed, "a trickling client kept its connection")
            let text = String(decoding: probe.metrics.render(), as: UTF8.self)
            #expect(text.contains(#"norbert_worker_probe_connections_closed_total{reason="timeout"} 2"#))
        }
    }

    @Test("500 half-sent connections: at most the cap is held open and a new probe is still answered")
    func connectionFlood() async throws {
        // A long timeout: the cap alone has to bound the flood.
        try await RunningProbe.with(connectionTimeout: .seconds(60)) { probe in
            var flood: [TestSocket] = []
            for _ in 0..<500 {
                let socket = try TestSocket(port: probe.port)
                socket.send(Self.halfRequest)
                flood.append(socket)
            }
            // Every flood connection has been accepted once the server has refused or evicted 436.
            let cap = ProbeServer.defaultMaxConnections
            try await eventually(.seconds(30), "the server dropped the connections above the cap") {
                let text = String(decoding: probe.metrics.render(), as: UTF8.self)
                return text.contains(#"norbert_worker_probe_connections_closed_total{reason="limit"} \#(500 - cap)"#)
            }
            let counts = probe.server.connectionCounts
            #expect(counts.peak <= cap && counts.open <= cap, "open \(counts.open), peak \(counts.peak), cap \(cap)")

            let probeSocket = try TestSocket(port: probe.port)
            probeSocket.send(Self.livez)
            let reply = probeSocket.readUntilClosed(timeout: .seconds(20))
            #expect(reply.text.hasPrefix("HTTP/1.1 200 OK"), "no answer during the flood: \(reply.text)")
            #expect(probe.server.connectionCounts.peak <= cap)

            flood.removeAll()  // the clients close: the server forgets them
            try await eventually(.seconds(20), "the server's connections closed") { probe.server.connectionCounts.open == 0 }
        }
    }

    @Test("a request larger than the byte limit is closed unanswered")
    func oversizedRequest() async throws {
        try await RunningProbe.with { probe in
            let socket = try TestSocket(port: probe.port)
            socket.send("GET /livez HTTP/1.1\r\nHost: probe\r\nX-Padding: " + String(repeating: "a", count: 20_000) + "\r\n\r\n")
            let reply = socket.readUntilClosed(timeout: .seconds(20))
            #expect(reply.closed)
            #expect(!reply.text.contains("200 OK"), "answered a \(20_000)-byte request head")
            let text = String(decoding: probe.metrics.render(), as: UTF8.self)
            #expect(text.contains(#"norbert_worker_probe_connections_closed_total{reason="too_large"} 1"#))
        }
    }

    @Test("the defaults are the documented ones: 5 s per connection, 64 connections, 8 KiB per request")
    func documentedDefaults() throws {
        let server = ProbeServer(port: 0, metrics: WorkerMetrics(), status: WorkerStatus(), logger: Logger(label: "test"))
        #expect(server.connectionTimeout == .seconds(5) && server.connectionTimeout == ProbeServer.defaultConnectionTimeout)
        #expect(server.maxConnections == 64 && server.maxRequestBytes == 8192 && server.host == "0.0.0.0")
        let readme = try String(contentsOf: NorbertBinary.packageRoot.appendingPathComponent("docs/worker.md"), encoding: .utf8)
        let section = try #require(
            readme.components(separatedBy: "## Metrics and probes").dropFirst().first?.components(separatedBy: "\n## ").first)
        #expect(section.contains("within 5 s"), "docs/worker.md's probe section does not state the 5 s connection timeout")
        #expect(section.contains("64 connections"))
        #expect(section.contains("8 KiB"))
    }

    @Test("metrics-host binds the given address")
    func bindsConfiguredHost() async throws {
        let settings = try ServeSettings.resolve(
            flags: ["metrics-port": ["0"]], environment: ["NORBERT_WORKER_METRICS_HOST": "127.0.0.1"], file: [:], defaultLanes: 1)
        #expect(settings.metricsHost == "127.0.0.1")
        let server = settings.probeServer(metrics: WorkerMetrics(), status: WorkerStatus(), logger: Logger(label: "test"))
        try await RunningProbe.with(server) { probe in
            #expect(probe.server.boundAddress == "127.0.0.1")
            let socket = try TestSocket(port: probe.port)
            socket.send(Self.livez)
            #expect(socket.readUntilClosed(timeout: .seconds(20)).text.hasPrefix("HTTP/1.1 200 OK"))
        }
        let everywhere = try ServeSettings.resolve(flags: ["metrics-port": ["0"]], environment: [:], file: [:], defaultLanes: 1)
        #expect(everywhere.metricsHost == "0.0.0.0")
        try await RunningProbe.with(everywhere.probeServer(metrics: WorkerMetrics(), status: WorkerStatus(), logger: Logger(label: "test")))
        { probe in
            #expect(probe.server.boundAddress == "0.0.0.0")
        }
    }
}

/// A probe server running in a task for the length of a test.
struct RunningProbe {
    let server: ProbeServer
    let port: Int
    var metrics: WorkerMetrics { server.metrics }

    static func with(connectionTimeout: Duration = ProbeServer.defaultConnectionTimeout, _ body: (RunningProbe) async throws -> Void)
        async throws
    {
        let server = ProbeServer(
            host: "127.0.0.1", port: 0, metrics: WorkerMetrics(), status: WorkerStatus(),
            logger: Logger(label: "test"), connectionTimeout: connectionTimeout)
        try await with(server, body)
    }

    static func with(_ server: ProbeServer, _ body: (RunningProbe) async throws -> Void) async throws {
        let task = Task { try await server.run() }
        defer { task.cancel() }
        try await eventually(.seconds(20), "the probe server listening") { server.boundPort != nil }
        try await body(RunningProbe(server: server, port: server.boundPort ?? 0))
        task.cancel()
        _ = await task.result
    }
}

/// A blocking TCP client socket to 127.0.0.1 (closed when released).
final class TestSocket {
    struct Failure: Error, CustomStringConvertible { let description: String }
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = errno
            close(fd)
            throw Failure(description: "connect: errno \(error)")
        }
    }

    deinit { close(fd) }

    /// Sends `text`, ignoring a peer that has closed.
    func send(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return }
            bytes = bytes.dropFirst(sent)
        }
    }

    /// Reads until the peer closes (or resets) the connection or `timeout` passes.
    func readUntilClosed(timeout: Duration) -> (text: String, closed: Bool) {
        var data: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let left = deadline - .now
            guard left > .zero else { return (String(decoding: data, as: UTF8.self), false) }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            guard ready > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                data += buffer[0..<count]
            } else {
                return (String(decoding: data, as: UTF8.self), true)  // 0: closed; < 0: reset
            }
        }
    }
}

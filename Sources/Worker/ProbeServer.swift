import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The HTTP port: `GET /metrics` (Prometheus text), `/livez` (200 while the process serves),
/// `/readyz` (200 once heads are warmed and partitions assigned, 503 otherwise). Binds with
/// SO_REUSEADDR so a restarted worker gets its port back at once. Closes on shutdown.
///
/// Bounded against clients that connect and stall: one request per connection (answered with
/// `Connection: close`), a connection lives at most `connectionTimeout`, at most
/// `maxRequestBytes` are read from it (request head and any body), and at most `maxConnections`
/// are open — a connection beyond that closes the oldest one still waiting for its request (so a
/// flood of stalled connections cannot lock out the kubelet's probes), or itself when none is.
public final class ProbeServer: Service {
    /// How long a connection may take to send its request and receive the answer.
    public static let defaultConnectionTimeout: Duration = .seconds(5)
    public static let defaultMaxConnections = 64
    /// Bytes read from one connection at most: a probe's or scrape's request is a few hundred.
    public static let defaultMaxRequestBytes = 8192

    /// Why the server closed a connection before answering (the `reason` of
    /// `norbert_worker_probe_connections_closed_total`).
    public enum CloseReason: String, Sendable, CaseIterable {
        /// More than `maxConnections` were open.
        case limit
        /// No complete request within `connectionTimeout`.
        case timeout
        /// More than `maxRequestBytes` sent.
        case tooLarge = "too_large"
    }

    public let host: String
    public let port: Int
    public let connectionTimeout: Duration
    public let maxConnections: Int
    public let maxRequestBytes: Int
    let metrics: WorkerMetrics
    let status: WorkerStatus
    let logger: Logger
    private let bound = Mutex<SocketAddress?>(nil)
    let connections: ProbeConnections

    public init(
        host: String = "0.0.0.0", port: Int, metrics: WorkerMetrics, status: WorkerStatus, logger: Logger,
        connectionTimeout: Duration = defaultConnectionTimeout, maxConnections: Int = defaultMaxConnections,
        maxRequestBytes: Int = defaultMaxRequestBytes
    ) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.status = status
        self.logger = logger
        self.connectionTimeout = max(connectionTimeout, .milliseconds(1))
        self.maxConnections = max(1, maxConnections)
        self.maxRequestBytes = max(64, maxRequestBytes)
        connections = ProbeConnections(limit: self.maxConnections)
    }

    /// The port actually bound (useful with port 0), once listening.
    public var boundPort: Int? { bound.withLock { $0?.port } }
    /// The address actually bound (e.g. `127.0.0.1`), once listening.
    public var boundAddress: String? { bound.withLock { $0?.ipAddress } }
    /// Connections open now, and the most ever open at once.
    public var connectionCounts: (open: Int, peak: Int) { connections.counts }

    public func run() async throws {
        let metrics = self.metrics, status = self.status, connections = self.connections
        let timeout = TimeAmount.nanoseconds(
            min(connectionTimeout.components.seconds, 1_000_000) * 1_000_000_000
                + connectionTimeout.components.attoseconds / 1_000_000_000)
        let maxBytes = maxRequestBytes
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                guard connections.admit(channel, dropped: { metrics.probeConnectionsClosed[.limit]?.increment() }) else {
                    return channel.eventLoop.makeFailedFuture(ProbeConnections.Refused())  // the bootstrap closes it
                }
                channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                let deadline = channel.eventLoop.scheduleTask(in: timeout) {
                    metrics.probeConnectionsClosed[.timeout]?.increment()
                    channel.close(promise: nil)
                }
                channel.closeFuture.whenComplete { _ in deadline.cancel() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(InboundByteLimit(limit: maxBytes, metrics: metrics))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false)
                    try channel.pipeline.syncOperations.addHandler(ProbeHandler(metrics: metrics, status: status, connections: connections))
                }
            }
            .bind(host: host, port: port).get()
        bound.withLock { $0 = channel.localAddress }
        logger.info(
            "metrics and probes listening",
            metadata: [
                "address": "\(channel.localAddress?.ipAddress ?? host)", "port": "\(channel.localAddress?.port ?? port)",
            ])
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await channel.closeFuture.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

/// The probe port's open connections, oldest first, and which of them still wait for their
/// request (those may be closed to make room for a new one).
final class ProbeConnections: Sendable {
    private struct State {
        var open: [ObjectIdentifier: (order: UInt64, channel: any Channel, waiting: Bool)] = [:]
        var next: UInt64 = 0
        var peak = 0
    }
    struct Refused: Error {}
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    var counts: (open: Int, peak: Int) { state.withLock { ($0.open.count, $0.peak) } }

    /// Registers a new connection. At the limit the oldest connection still waiting for its
    /// request is closed (and forgotten at once) to make room; when every open connection is
    /// being answered, the new one is refused (false). `dropped` runs once per closed connection.
    func admit(_ channel: any Channel, dropped: () -> Void) -> Bool {
        let (admitted, evicted): (Bool, (any Channel)?) = state.withLock { state in
            var evicted: (any Channel)?
            if state.open.count >= limit {
                guard let oldest = state.open.filter({ $0.value.waiting }).min(by: { $0.value.order < $1.value.order }) else {
                    return (false, nil)
                }
                evicted = oldest.value.channel
                state.open[oldest.key] = nil
            }
            state.next += 1
            state.open[ObjectIdentifier(channel)] = (state.next, channel, true)
            state.peak = max(state.peak, state.open.count)
            return (true, evicted)
        }
        if let evicted {
            dropped()
            evicted.close(promise: nil)
        }
        if !admitted { dropped() }
        return admitted
    }

    /// The connection's request is complete: it is being answered and no longer evictable.
    func answering(_ channel: any Channel) {
        state.withLock { state in state.open[ObjectIdentifier(channel)]?.waiting = false }
    }

    func remove(_ channel: any Channel) {
        state.withLock { state in _ = state.open.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// Closes the connection once more than `limit` bytes arrived (before HTTP decoding: bounds the
/// request head and any body together; the server reads one request per connection).
final class InboundByteLimit: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let limit: Int
    let metrics: WorkerMetrics
    private var received = 0
    private var closed = false

    init(limit: Int, metrics: WorkerMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        received += unwrapInboundIn(data).readableBytes
        guard received <= limit else {
            closed = true
            metrics.probeConnectionsClosed[.tooLarge]?.increment()
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}

final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: WorkerMetrics
    let status: WorkerStatus
    let connections: ProbeConnections
    private var request: (path: String, head: Bool)?
    private var answered = false

    init(metrics: WorkerMetrics, status: WorkerStatus, connections: ProbeConnections) {
        self.metrics = metrics
        self.status = status
        self.connections = connections
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }  // one request per connection; anything after it is ignored
        switch unwrapInboundIn(data) {
        case .head(let head):
            let path = head.method == .GET || head.method == .HEAD ? String(head.uri.split(separator: "?").first ?? "") : ""
            request = (path, head.method == .HEAD)
        case .body:
            break  // probes send none; the byte limit bounds what is read
        case .end:
            answered = true
            connections.answering(context.channel)
            respond(context: context, path: request?.path ?? "", headOnly: request?.head ?? false)
        }
    }

    private func respond(context: ChannelHandlerContext, path: String, headOnly: Bool) {
        let (code, type, body): (HTTPResponseStatus, String, [UInt8])
        switch path {
        case "/metrics":
            if let progress = status.laneProgress { metrics.record(progress.snapshot()) }
            metrics.ready.set(Double(status.isReady ? 1 : 0))
            (code, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        case "/livez":
            if let failure = status.livenessFailure {
                (code, type, body) = (.serviceUnavailable, "text/plain", Array("not live: \(failure)\n".utf8))
            } else {
                (code, type, body) = (.ok, "text/plain", Array("ok\n".utf8))
            }
        case "/readyz":
            if let reason = status.notReadyReason {
                (code, type, body) = (.serviceUnavailable, "text/plain", Array("not ready: \(reason)\n".utf8))
            } else {
                (code, type, body) = (.ok, "text/plain", Array("ready\n".utf8))
            }
        case "": (code, type, body) = (.methodNotAllowed, "text/plain", Array("GET only\n".utf8))
        default: (code, type, body) = (.notFound, "text/plain", Array("not found: /metrics /livez /readyz\n".utf8))
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: code, headers: headers))), promise: nil)
        if !headOnly {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

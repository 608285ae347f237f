import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The HTTP port: `GET /metrics` (Prometheus text), `/livez` (200 while the process serves),
/// `/readyz` (200 once heads are warmed and partitions assigned, 503 otherwise). Binds with
/// SO_REUSEADDR so a restarted worker gets its port back at once. Closes on shutdown.
public final class ProbeServer: Service {
    let host: String
    let port: Int
    let metrics: WorkerMetrics
    let status: WorkerStatus
    let logger: Logger
    private let bound = Mutex<Int?>(nil)

    public init(host: String = "0.0.0.0", port: Int, metrics: WorkerMetrics, status: WorkerStatus, logger: Logger) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.status = status
        self.logger = logger
    }

    /// The port actually bound (useful with port 0), once listening.
    public var boundPort: Int? { bound.withLock { $0 } }

    public func run() async throws {
        let metrics = self.metrics, status = self.status
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ProbeHandler(metrics: metrics, status: status))
                }
            }
            .bind(host: host, port: port).get()
        let actual = channel.localAddress?.port ?? port
        bound.withLock { $0 = actual }
        logger.info("metrics and probes listening", metadata: ["port": "\(actual)"])
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

final class ProbeHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: WorkerMetrics
    let status: WorkerStatus
    private let path = Mutex<String?>(nil)

    init(metrics: WorkerMetrics, status: WorkerStatus) {
        self.metrics = metrics
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path.withLock { $0 = head.method == .GET || head.method == .HEAD ? String(head.uri.split(separator: "?").first ?? "") : "" }
        case .body:
            break
        case .end:
            let requested = path.withLock { $0 } ?? ""
            let (code, type, body): (HTTPResponseStatus, String, [UInt8])
            switch requested {
            case "/metrics": (code, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
            case "/livez": (code, type, body) = (.ok, "text/plain", Array("ok\n".utf8))
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
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

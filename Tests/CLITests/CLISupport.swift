import Foundation
import Testing

/// Runs the built `norbert-worker` binary as a separate process (shared by the CLI tests).
enum CLI {
    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }

    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: Data
        var out: String { String(decoding: stdout, as: UTF8.self) }
        var err: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// Runs `norbert-worker <arguments>` with `stdin`, draining both pipes concurrently.
    static func run(_ arguments: [String], stdin: Data = Data()) throws -> Result {
        let executable = try #require(CLI.binary(), "norbert-worker binary not found; build it first (swift build)")
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        let outBox = OutputBox(), errBox = OutputBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outBox.set(outPipe.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        group.enter()
        DispatchQueue.global().async { errBox.set(errPipe.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        inPipe.fileHandleForWriting.write(stdin)
        try inPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        return Result(status: process.terminationStatus, stdout: outBox.get(), stderr: errBox.get())
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("norbert-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Finds the built `norbert-worker`: `NORBERT_WORKER_BIN`, else the build products directory the
    /// test bundle runs from (any scratch path), else `.build*/debug` under the package root.
    static func binary() -> URL? {
        let fm = FileManager.default
        func ok(_ u: URL) -> Bool {
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: u.path, isDirectory: &isDir) && !isDir.boolValue && fm.isExecutableFile(atPath: u.path)
        }
        if let env = ProcessInfo.processInfo.environment["NORBERT_WORKER_BIN"], ok(URL(fileURLWithPath: env)) {
            return URL(fileURLWithPath: env)
        }
        var starts: [URL] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(URL(fileURLWithPath: exe)) }
        starts.append(URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL)
        starts.append(Bundle.main.bundleURL)
        starts += Bundle.allBundles.map(\.bundleURL).filter { $0.pathExtension == "xctest" }
        for start in starts {
            var dir = start.deletingLastPathComponent()
            for _ in 0..<5 {
                let candidate = dir.appendingPathComponent("norbert-worker")
                if ok(candidate) { return candidate }
                dir = dir.deletingLastPathComponent()
            }
        }
        let root = fixtures.deletingLastPathComponent().deletingLastPathComponent()
        let entries = (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        for name in [".build"] + entries.filter({ $0.hasPrefix(".build") }).sorted() {
            for config in ["debug", "release"] {
                let candidate = root.appendingPathComponent(name).appendingPathComponent(config).appendingPathComponent("norbert-worker")
                if ok(candidate) { return candidate }
            }
        }
        return nil
    }

    /// Thread-safe holder for data read on another thread.
    final class OutputBox: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
        func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
    }
}

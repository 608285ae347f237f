import Foundation
import Synchronization

/// The built `norbert-worker` binary: `NORBERT_WORKER_BIN`, else the build products directory the
/// test bundle runs from (any scratch path), else `.build*/debug` or `release` under the package root.
public enum NorbertBinary {
    public static func locate() -> URL? {
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
        let root = packageRoot
        let entries = (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        for name in [".build"] + entries.filter({ $0.hasPrefix(".build") }).sorted() {
            for config in ["debug", "release"] {
                let candidate = root.appendingPathComponent(name).appendingPathComponent(config).appendingPathComponent("norbert-worker")
                if ok(candidate) { return candidate }
            }
        }
        return nil
    }

    /// The package root (this file is Tests/TestSupport/ChildProcess.swift).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Tests/Fixtures.
    public static var fixtures: URL { packageRoot.appendingPathComponent("Tests/Fixtures") }
}

public struct ChildError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// A `norbert-worker` child process with stdout/stderr collected and bounded waits.
///
/// Output is read by two plain threads doing blocking reads until end of file: no dispatch
/// sources (`readabilityHandler`), whose teardown races have crashed libdispatch on Linux.
public final class ChildProcess: Sendable {
    private let process: Process
    private let output = Collected()

    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        guard let binary = NorbertBinary.locate() else { throw ChildError("norbert-worker binary not found; build it first (swift build)") }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        self.process = process
        try process.run()
        Self.drain(out.fileHandleForReading, into: output, stdout: true)
        Self.drain(err.fileHandleForReading, into: output, stdout: false)
    }

    private static func drain(_ handle: FileHandle, into output: Collected, stdout: Bool) {
        let thread = Thread {
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                output.state.withLock { if stdout { $0.out.append(data) } else { $0.err.append(data) } }
            }
        }
        thread.start()
    }

    /// The child's peak resident set (VmHWM, bytes) so far, or nil once it has exited.
    public var peakResidentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kb * 1024
    }

    public var stdout: String { output.state.withLock { String(decoding: $0.out, as: UTF8.self) } }
    public var stderr: String { output.state.withLock { String(decoding: $0.err, as: UTF8.self) } }
    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var exitedNormally: Bool { !process.isRunning && process.terminationReason == .exit }

    /// Waits until stdout (or stderr) contains `text`.
    public func waitFor(_ text: String, inStderr: Bool = false, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (inStderr ? stderr : stdout).contains(text) { return }
            if !process.isRunning {
                try await Task.sleep(for: .milliseconds(50))  // let the readers catch up
                if (inStderr ? stderr : stdout).contains(text) { return }
                throw ChildError("process exited (\(process.terminationStatus)) before printing '\(text)': \(stderr.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ChildError("no '\(text)' within \(timeout): \(stderr.suffix(2000))")
    }

    /// The first complete stdout line.
    public func firstStdoutLine(timeout: Duration) async throws -> String {
        try await waitFor("\n", timeout: timeout)
        return String(stdout.prefix { $0 != "\n" })
    }

    public func signal(_ number: Int32) { if process.isRunning { kill(process.processIdentifier, number) } }

    /// The exit status; throws if `timeout` passes first.
    public func waitForExit(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw ChildError("still running after \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// SIGKILL and reap.
    public func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// Runs `norbert-worker <arguments>` to completion with `stdin`, collecting both outputs.
public enum CLIRun {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: Data
        public var out: String { String(decoding: stdout, as: UTF8.self) }
        public var err: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// `environment`: nil inherits the test's; else the test's without `NORBERT_WORKER_…`
    /// variables, plus these.
    public static func run(_ arguments: [String], stdin: Data = Data(), environment: [String: String]? = nil) throws -> Result {
        guard let binary = NorbertBinary.locate() else { throw ChildError("norbert-worker binary not found; build it first (swift build)") }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("NORBERT_WORKER_") }
                .merging(environment) { _, given in given }
        }
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        let collected = Collected()
        let group = DispatchGroup()
        for (handle, isOut) in [(outPipe.fileHandleForReading, true), (errPipe.fileHandleForReading, false)] {
            group.enter()
            Thread {
                let data = handle.readDataToEndOfFile()
                collected.state.withLock { if isOut { $0.out = data } else { $0.err = data } }
                group.leave()
            }.start()
        }
        inPipe.fileHandleForWriting.write(stdin)
        try inPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        return collected.state.withLock { Result(status: process.terminationStatus, stdout: $0.out, stderr: $0.err) }
    }
}

/// stdout and stderr bytes gathered by reader threads.
final class Collected: Sendable {
    let state = Mutex<(out: Data, err: Data)>((Data(), Data()))
}

/// The tiny fixture checkpoints served as named heads by the pipeline and worker tests.
public enum TinyHeads {
    /// (head name, fixture folder under Tests/Fixtures/norbert4-tiny).
    public static let folders: [(name: String, folder: String)] = [
        ("sentiment", "sequence-classification"), ("ner", "token-classification"), ("qa", "question-answering"),
        ("mlm", "mlm"), ("mc", "multiple-choice"), ("causal", "causal-lm"), ("base", "base"),
    ]
    public static func path(_ folder: String) -> String {
        NorbertBinary.fixtures.appendingPathComponent("norbert4-tiny/\(folder)").path
    }
}

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
        let binary = try #require(TokenizeCLIBinary.locate(), "norbert-worker binary not found; build it first (swift build)")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        let outBox = TokenizeOutputBox(), errBox = TokenizeOutputBox()
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
}

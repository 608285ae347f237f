import Foundation
import TestSupport

/// Runs the built `norbert-worker` binary as a separate process (shared by the CLI tests).
enum CLI {
    static var fixtures: URL { NorbertBinary.fixtures }
    static func binary() -> URL? { NorbertBinary.locate() }
    static func run(_ arguments: [String], stdin: Data = Data()) throws -> CLIRun.Result { try CLIRun.run(arguments, stdin: stdin) }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("norbert-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

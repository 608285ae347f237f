import Foundation
import Synchronization

/// Validates JSON lines against `schemas/<kind>.schema.json` through
/// `scripts/validate-schemas.py --check KIND` (Python's jsonschema, which CI installs).
public enum SchemaCheck {
    /// The failures the validator reported ([] when every line is valid). A missing Python or
    /// jsonschema is a failure too: the check must not pass by not running.
    public static func failures(_ kind: String, _ lines: [String]) -> [String] {
        guard !lines.isEmpty else { return ["no \(kind) lines to validate"] }
        signal(SIGPIPE, SIG_IGN)  // a validator that dies early must fail the check, not the test process
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", NorbertBinary.packageRoot.appendingPathComponent("scripts/validate-schemas.py").path, "--check", kind,
        ]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { return ["cannot run python3: \(error)"] }
        // Read on a thread while writing: a large input must not deadlock on full pipes.
        let collected = OutputBox()
        let done = DispatchSemaphore(value: 0)
        let reader = Thread {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            collected.data.withLock { $0 = data }
            done.signal()
        }
        reader.start()
        try? input.fileHandleForWriting.write(contentsOf: Data(lines.joined(separator: "\n").utf8 + [0x0A]))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        done.wait()
        let text = String(decoding: collected.data.withLock { $0 }, as: UTF8.self)
        let failed = text.split(separator: "\n").filter { $0.hasPrefix("FAIL") || $0.contains("Error") }.map(String.init)
        if process.terminationStatus != 0 {
            return failed.isEmpty ? ["validator exited \(process.terminationStatus): \(text.suffix(2000))"] : failed
        }
        return []
    }

    /// One JSON object line of a message's `norbert-…` headers (the dead-letter schema's form).
    public static func headerObject(_ headers: [(name: String, value: [UInt8]?)]) -> String {
        var pairs: [String] = []
        for (name, value) in headers where name.hasPrefix("norbert-") {
            pairs.append("\(quoted(name)): \(quoted(String(decoding: value ?? [], as: UTF8.self)))")
        }
        return "{" + pairs.joined(separator: ", ") + "}"
    }

    static func quoted(_ s: String) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes]),
            let text = String(data: data, encoding: .utf8)
        else { return "\"\"" }
        return String(text.dropFirst().dropLast())
    }
}

final class OutputBox: Sendable {
    let data = Mutex(Data())
}

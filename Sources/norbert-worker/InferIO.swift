import Foundation
import Pipelines
import Wire

/// Reads request lines on a background thread so that the lines already waiting can be answered
/// as one batch while a slow producer keeps the pipe open (no waiting for a full batch). Reads
/// at most `capacity` lines (and `capacityBytes`) ahead of the batches: memory stays bounded
/// whatever the input's size.
final class InferLineReader: @unchecked Sendable {
    private let handle: FileHandle
    private let condition = NSCondition()
    private let capacity: Int
    private let capacityBytes: Int
    // Guarded by `condition`.
    private var queue: [[UInt8]] = []
    private var queuedBytes = 0
    private var ended = false
    private var error: String?

    init(path: String?, capacity: Int = 256, capacityBytes: Int = 32 << 20) throws {
        self.capacity = max(1, capacity)
        self.capacityBytes = max(1, capacityBytes)
        if let path {
            guard let h = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(path)") }
            handle = h
        } else {
            handle = FileHandle.standardInput
        }
    }

    var failure: String? {
        condition.lock()
        defer { condition.unlock() }
        return error
    }

    func start() {
        let thread = Thread { [self] in self.readAll() }
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func readAll() {
        var pending: [UInt8] = []
        var skipping = false
        let limit = PipelineRequest.maxLineBytes
        func emit(_ line: ArraySlice<UInt8>) {
            var l = line
            if l.last == 0x0D { l = l.dropLast() }
            if l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
            condition.lock()
            while !queue.isEmpty && (queue.count >= capacity || queuedBytes >= capacityBytes) { condition.wait() }
            queue.append(Array(l))
            queuedBytes += l.count
            condition.broadcast()
            condition.unlock()
        }
        while true {
            let chunk: Data
            do {
                guard let c = try handle.read(upToCount: 1 << 16), !c.isEmpty else { break }
                chunk = c
            } catch {
                condition.lock()
                self.error = "\(error)"
                condition.unlock()
                break
            }
            var bytes = chunk[...]
            if skipping {
                // Rest of an over-long line (already answered with an error): drop it.
                guard let nl = bytes.firstIndex(of: 0x0A) else { continue }
                bytes = bytes[(nl + 1)...]
                skipping = false
            }
            // Only the new bytes are searched for line ends.
            var scanFrom = pending.count
            pending.append(contentsOf: bytes)
            var start = 0
            while let nl = pending[scanFrom...].firstIndex(of: 0x0A) {
                emit(pending[start..<nl])
                start = nl + 1
                scanFrom = start
            }
            pending.removeFirst(start)
            if pending.count > limit {
                // Bounded memory: the request decoder rejects a line this long.
                emit(pending.prefix(limit + 1))
                pending.removeAll(keepingCapacity: false)
                skipping = true
            }
        }
        if !pending.isEmpty { emit(pending[...]) }
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    /// The lines waiting (at most `max`), blocking until at least one arrives; nil at the end.
    func next(max: Int) -> [[UInt8]]? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !ended { condition.wait() }
        if queue.isEmpty { return nil }
        let n = min(max, queue.count)
        let lines = Array(queue.prefix(n))
        queue.removeFirst(n)
        queuedBytes -= lines.reduce(0) { $0 + $1.count }
        condition.broadcast()
        return lines
    }

    /// Non-blank lines of a file (for the progress bar's total).
    static func countLines(path: String) -> Int {
        guard let h = FileHandle(forReadingAtPath: path) else { return 0 }
        defer { try? h.close() }
        var count = 0, blank = true
        while let chunk = try? h.read(upToCount: 1 << 20), !chunk.isEmpty {
            for b in chunk {
                if b == 0x0A {
                    if !blank { count += 1 }
                    blank = true
                } else if b != 0x20 && b != 0x09 && b != 0x0D {
                    blank = false
                }
            }
        }
        return blank ? count : count + 1
    }
}

/// Buffered response writer (stdout or a file).
final class InferOutput {
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw CLIError("cannot write \(path)")
            }
            handle = h
        } else {
            handle = FileHandle.standardOutput
        }
    }

    func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Progress on stderr: requests done of total, requests/s and tokens/s.
final class InferProgress {
    let total: Int
    let started = Date()
    var done = 0
    var tokens = 0
    var lastDraw = Date.distantPast

    init(total: Int) { self.total = total }

    func advance(requests: Int, tokens t: Int) {
        done += requests
        tokens += t
        if Date().timeIntervalSince(lastDraw) > 0.2 || done >= total { draw() }
    }

    func draw() {
        lastDraw = Date()
        let elapsed = max(Date().timeIntervalSince(started), 1e-6)
        let width = 30
        let filled = total > 0 ? min(width, done * width / total) : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line =
            "\r[" + bar + "] "
            + String(
                format: "%d/%d requests  %.1f req/s  %.0f tok/s", done, total,
                Double(done) / elapsed, Double(tokens) / elapsed)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

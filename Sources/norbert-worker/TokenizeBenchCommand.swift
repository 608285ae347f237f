import ArgumentParser
import Foundation
import Tokenizers

struct TokenizeBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize-bench",
        abstract: "Benchmark the Swift tokenizer against the Python `tokenizers` package on the same text.",
        discussion: """
            Generates a deterministic Norwegian-like corpus (--size-mb, default 10): the texts of \
            DIR/cases.jsonl when present plus a built-in Bokmål/Nynorsk word list, shuffled and mixed \
            with a fixed-seed SplitMix64 generator, one paragraph per line. Encodes every line \
            single-threaded with this implementation, then (with --python) runs the Hugging Face \
            `tokenizers` package on the same file with RAYON_NUM_THREADS=1 and \
            TOKENIZERS_PARALLELISM=false (`encode_batch`, so the loop runs in Rust), checks that both \
            produced the same ids, and prints MB/s and tokens/s side by side.
            """)

    @Option(name: .long, help: "Folder holding tokenizer.json.")
    var tokenizer: String

    @Option(name: .long, help: "Corpus size in MB (10^6 bytes of UTF-8).")
    var sizeMb: Double = 10

    @Option(name: .long, help: "Seed for the corpus generator.")
    var seed: UInt64 = 20_250_101

    @Option(name: .long, help: "Python interpreter with `tokenizers` installed (e.g. /tmp/venv-tok/bin/python); omit to skip.")
    var python: String?

    @Option(name: .long, help: "Where to write the corpus (default: a temporary file).")
    var corpus: String?

    @Option(name: .long, help: "Timed repetitions; the best is reported.")
    var repeats: Int = 3

    @Flag(
        name: .long,
        help: "Instead: time single long texts (runs of spaces, the 1 MiB start of the corpus as one text); median of --repeats.")
    var adversarial = false

    func run() async throws {
        let tok = try Tokenizer(directory: tokenizer)
        if adversarial { return try runAdversarial(tok) }
        let lines = BenchCorpus.generate(
            casesFile: URL(fileURLWithPath: tokenizer).appendingPathComponent("cases.jsonl").path,
            bytes: Int(sizeMb * 1_000_000), seed: seed)
        let text = lines.joined(separator: "\n") + "\n"
        let corpusPath = corpus ?? (NSTemporaryDirectory() + "/tokenize-bench-\(seed).txt")
        try Data(text.utf8).write(to: URL(fileURLWithPath: corpusPath))
        let mb = Double(text.utf8.count) / 1_000_000
        print(String(format: "corpus: %@ — %.2f MB, %d lines (seed %llu)", corpusPath, mb, lines.count, seed))

        // Warm-up on a slice (fills caches and lazy Unicode tables), then timed runs.
        for l in lines.prefix(2000) { _ = try tok.encode(l) }
        var best = Double.infinity
        var tokens = 0
        var checksum: UInt64 = 0
        for _ in 0..<max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            var n = 0
            var h: UInt64 = 1_469_598_103_934_665_603
            for l in lines {
                let e = try tok.encode(l)
                n += e.ids.count
                for id in e.ids { h = (h ^ UInt64(id)) &* 1_099_511_628_211 }
            }
            let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = min(best, secs)
            tokens = n
            checksum = h
        }
        var rows: [(String, Double, Int)] = [("swift (this package)", best, tokens)]
        if let python {
            let (secs, pyTokens, pyChecksum) = try runPython(python, corpusPath: corpusPath)
            rows.append(("python tokenizers (Rust, 1 thread)", secs, pyTokens))
            print(
                pyChecksum == checksum && pyTokens == tokens
                    ? "ids identical: \(tokens) tokens, checksum \(String(checksum, radix: 16))"
                    : """
                    WARNING: ids differ (swift \(tokens) tokens / \(String(checksum, radix: 16)), python \(pyTokens) / \
                    \(String(pyChecksum, radix: 16)))
                    """
            )
        }
        print("implementation                        seconds      MB/s    tokens/s")
        for (name, secs, n) in rows {
            let padded = name.padding(toLength: 36, withPad: " ", startingAt: 0)
            print(padded + String(format: " %8.3f %9.2f %11.0f", secs, mb / secs, Double(n) / secs))
        }
        if rows.count == 2 {
            print(String(format: "speed-up swift / python: %.2fx", rows[1].1 / rows[0].1))
        }
    }

    /// Seconds (median of `repeats`) to encode each long text in one `encode` call.
    func runAdversarial(_ tok: Tokenizer) throws {
        var cases: [(String, String)] = []
        for n in [10_000, 20_000, 40_000, 80_000] {
            let spaces = String(repeating: " ", count: n)
            cases += [("\(n) spaces", spaces), ("\(n) spaces + \"\\n\"", spaces + "\n"), ("\(n) spaces + \"x\\n\"", spaces + "x\n")]
        }
        var corpus = ""
        for l in BenchCorpus.generate(
            casesFile: URL(fileURLWithPath: tokenizer).appendingPathComponent("cases.jsonl").path, bytes: 1 << 21, seed: seed)
        {
            corpus += l + "\n"
            if corpus.utf8.count >= 1 << 20 { break }
        }
        cases.append(("1 MiB Norwegian text", String(corpus.utf8.prefix(1 << 20)) ?? corpus))
        print("text                          seconds (median of \(max(1, repeats)))   tokens")
        for (name, text) in cases {
            var times: [Double] = []
            var count = 0
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds
                count = try tok.encode(text).count
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            times.sort()
            print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%10.4f %18d", times[times.count / 2], count))
        }
    }

    func runPython(_ python: String, corpusPath: String) throws -> (Double, Int, UInt64) {
        let script = """
            import sys, time, tokenizers
            tok = tokenizers.Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
            lines = open(sys.argv[2], encoding="utf-8").read().split("\\n")[:-1]
            tok.encode_batch(lines[:2000])
            best = None
            for _ in range(int(sys.argv[3])):
                t = time.perf_counter()
                encs = tok.encode_batch(lines)
                s = time.perf_counter() - t
                best = s if best is None else min(best, s)
            n = 0
            h = 1469598103934665603
            for e in encs:
                for i in e.ids:
                    h = ((h ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
                n += len(e.ids)
            print(best, n, h)
            """
        let scriptPath = NSTemporaryDirectory() + "/tokenize-bench.py"
        try Data(script.utf8).write(to: URL(fileURLWithPath: scriptPath))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [scriptPath, tokenizer, corpusPath, String(max(1, repeats))]
        var env = ProcessInfo.processInfo.environment
        env["RAYON_NUM_THREADS"] = "1"
        env["RAYON_RS_NUM_CPUS"] = "1"
        env["TOKENIZERS_PARALLELISM"] = "false"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let parts = String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard p.terminationStatus == 0, parts.count >= 3, let secs = Double(parts[0]), let n = Int(parts[1]), let h = UInt64(parts[2])
        else {
            throw ValidationError("python benchmark failed (status \(p.terminationStatus)); is `tokenizers` installed for \(python)?")
        }
        return (secs, n, h)
    }
}

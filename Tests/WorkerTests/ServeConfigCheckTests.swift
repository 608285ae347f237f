import Foundation
import TestSupport
import Testing

@testable import Worker

/// `serve --check-config`, as the deploy manifests run it: the binary with flags, environment
/// and a config file; exit 0 with the effective settings, or 1 with every problem named.
@Suite("serve --check-config")
struct ServeConfigCheckTests {
    static let tokenizer = NorbertBinary.fixtures.appendingPathComponent("tokenizer").path

    /// A temporary folder, removed after `body`.
    static func withFolder<T>(_ body: (URL) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("check-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url)
    }

    /// The row of `setting` in the report (columns are separated by two spaces or more), as
    /// "value | origin".
    static func row(_ out: String, _ setting: String, containing: String = "") -> String? {
        for line in out.split(separator: "\n") {
            let columns = line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if columns.count == 3, columns[0] == setting, containing.isEmpty || columns[1].contains(containing) {
                return "\(columns[1]) | \(columns[2])"
            }
        }
        return nil
    }

    @Test("valid: exit 0, every value with its origin, secrets from every source redacted")
    func valid() throws {
        try Self.withFolder { folder in
            let config = folder.appendingPathComponent("serve.json")
            try Data(#"{"lanes": 2, "results": "answers", "kafka": {"ssl.key.pem": "FILE-KEY-PEM-s3cret", "linger.ms": 4}}"#.utf8).write(
                to: config)
            let secrets = ["FLAG-PASSWORD-s3cret", "ENV-CLIENT-SECRET-s3cret", "ENV-KEY-PASSWORD-s3cret", "FILE-KEY-PEM-s3cret"]
            let run = try CLIRun.run(
                [
                    "serve", "--check-config", "--config", config.path, "--head", "sentiment=\(TinyHeads.path("sequence-classification"))",
                    "--head", "ner=\(TinyHeads.path("token-classification"))", "--tokenizer", Self.tokenizer,
                    "--max-batch-tokens", "4096", "--kafka", "sasl.password=\(secrets[0])", "--kafka", "sasl.username=worker",
                ],
                environment: [
                    "NORBERT_WORKER_GROUP": "env-group",
                    "NORBERT_WORKER_KAFKA_SSL_KEYSTORE_PASSWORD": secrets[1],
                    "NORBERT_WORKER_KAFKA": "ssl.key.password=\(secrets[2]),security.protocol=SASL_SSL",
                ])
            #expect(run.status == 0, "\(run.err)")
            let out = run.out
            #expect(out.hasPrefix("serve --check-config: OK"))
            for secret in secrets { #expect(!out.contains(secret) && !run.err.contains(secret), "\(secret) shown") }
            #expect(Self.row(out, "max-batch-tokens") == "4096 | --max-batch-tokens", "\(out)")
            #expect(Self.row(out, "group") == "env-group | NORBERT_WORKER_GROUP")
            #expect(Self.row(out, "lanes") == "2 | config file \(config.path) 'lanes'")
            #expect(Self.row(out, "results") == "answers | config file \(config.path) 'results'")
            #expect(Self.row(out, "max-wait-ms") == "5 | default", "\(out)")
            #expect(Self.row(out, "config") == "\(config.path) | --config")
            #expect(Self.row(out, "bootstrap-servers") == "(embedded dev broker) | default")
            #expect(Self.row(out, "kafka", containing: "sasl.password=[redacted]")?.hasSuffix("--kafka") == true, "\(out)")
            #expect(Self.row(out, "kafka", containing: "sasl.username=worker")?.hasSuffix("--kafka") == true)
            #expect(
                Self.row(out, "kafka", containing: "ssl.keystore.password=[redacted]")?.hasSuffix(
                    "NORBERT_WORKER_KAFKA_SSL_KEYSTORE_PASSWORD") == true)
            #expect(Self.row(out, "kafka", containing: "ssl.key.password=[redacted]")?.hasSuffix("NORBERT_WORKER_KAFKA") == true)
            #expect(Self.row(out, "kafka", containing: "ssl.key.pem=[redacted]")?.hasSuffix("'kafka'") == true)
            #expect(Self.row(out, "kafka", containing: "linger.ms=4") != nil)
            #expect(out.contains("head sentiment: ") && out.contains("sequence-classification (text-classification)"))
            #expect(out.contains("head ner: ") && out.contains("tokenizer: \(Self.tokenizer): tokenizer.json loaded"))
            // Nothing started: no dev broker address printed.
            #expect(!out.contains("bootstrap.servers="))
        }
    }

    @Test("every secret kafka property is redacted in the report, whatever its source")
    func secretKafkaProperties() {
        let secret = [
            "sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem", "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config", "sasl.jaas.config", "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.assertion.private.key.pem",
        ]
        let pairs = secret.enumerated().map { "\($1)=value-\($0)-s3cret" }
        for (flags, environment, file) in [
            (["kafka": pairs], [String: String](), [String: [String]]()),
            ([:], ["NORBERT_WORKER_KAFKA": pairs.joined(separator: ",")], [:]),
            ([:], [:], ["kafka": pairs]),
        ] {
            let resolution = ServeSettings.resolution(flags: flags, environment: environment, file: file, configFile: nil, defaultLanes: 1)
            #expect(resolution.problems.isEmpty)
            let report = ServeConfigCheck.render(resolution, files: [])
            #expect(!report.contains("s3cret"), "\(report)")
            for name in secret { #expect(report.contains("\(name)=[redacted]"), "\(name)") }
        }
    }

    /// Runs a check expected to fail: exit 1, and every `expected` text named on stderr.
    func failing(_ args: [String], environment: [String: String] = [:], expected: [String], count: Int? = nil) throws {
        let run = try CLIRun.run(["serve", "--check-config"] + args, environment: environment)
        #expect(run.status == 1, "exit \(run.status): \(run.out) \(run.err)")
        for text in expected { #expect(run.err.contains(text), "\(text) not in: \(run.err)") }
        if let count { #expect(run.err.hasPrefix("serve --check-config: \(count) problem"), "\(run.err)") }
        #expect(!run.out.contains("OK"))
    }

    /// A valid head (the tiny heads' tokenizer is in Tests/Fixtures/tokenizer).
    var head: [String] { ["--head", "mlm=\(TinyHeads.path("mlm"))", "--tokenizer", Self.tokenizer] }

    @Test("a bad flag value is named by its flag")
    func badFlag() throws {
        try failing(head + ["--lanes", "0"], expected: ["--lanes: '0' is not a whole number in 1...256"], count: 1)
        try failing(head + ["--max-windows", "many"], expected: ["--max-windows: 'many' is not a whole number in 1...1048576"], count: 1)
    }

    @Test("a bad environment variable is named")
    func badEnvironment() throws {
        try failing(
            head, environment: ["NORBERT_WORKER_MAX_WAIT_MS": "soon"],
            expected: ["NORBERT_WORKER_MAX_WAIT_MS: 'soon' is not a whole number in 0...60000"], count: 1)
        try failing(
            head, environment: ["NORBERT_WORKER_MAX_BATCH_TOKEN": "1"],
            expected: ["unknown environment variable NORBERT_WORKER_MAX_BATCH_TOKEN"], count: 1)
    }

    @Test("a bad config-file key or value is named")
    func badConfigFile() throws {
        try Self.withFolder { folder in
            let config = folder.appendingPathComponent("serve.json")
            try Data(#"{"max-batch-tokenz": 1, "lanes": "all"}"#.utf8).write(to: config)
            try failing(
                head + ["--config", config.path],
                expected: ["config file: unknown setting 'max-batch-tokenz'", "config file 'lanes': 'all' is not a whole number"], count: 2)
            try failing(
                head, environment: ["NORBERT_WORKER_CONFIG": folder.appendingPathComponent("absent.json").path],
                expected: ["cannot read config file \(folder.path)/absent.json"], count: 1)
        }
    }

    @Test("a missing head folder, a bad config.json, a missing tokenizer, an unknown kafka property are named")
    func badModelFiles() throws {
        try Self.withFolder { folder in
            let broken = folder.appendingPathComponent("broken")
            try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
            try Data("{\"hidden_size\": ".utf8).write(to: broken.appendingPathComponent("config.json"))
            try failing(
                [
                    "--head", "gone=/nonexistent/norbert4", "--head", "broken=\(broken.path)", "--head", "mlm=\(TinyHeads.path("mlm"))",
                    "--tokenizer", folder.path,
                ],
                expected: [
                    "head 'gone': /nonexistent/norbert4 is not a folder", "head 'broken' (\(broken.path)): ",
                    "config.json", "tokenizer in \(folder.path)",
                ], count: 3)
            // Weights missing: the header is read, so this is caught without loading anything.
            let noWeights = folder.appendingPathComponent("no-weights")
            try FileManager.default.createDirectory(at: noWeights, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: TinyHeads.path("mlm") + "/config.json", toPath: noWeights.appendingPathComponent("config.json").path)
            try failing(
                ["--head", "w=\(noWeights.path)", "--tokenizer", Self.tokenizer],
                expected: ["head 'w' (\(noWeights.path))", "model.safetensors"], count: 1)
        }
        try failing(head + ["--kafka", "no.such.property=1"], expected: ["kafka: ", "no.such.property"], count: 1)
        try failing([], expected: ["give at least one --head NAME=DIR"], count: 1)
    }

    @Test("problems from every source are reported together")
    func allProblems() throws {
        try Self.withFolder { folder in
            let config = folder.appendingPathComponent("serve.json")
            try Data(#"{"nope": true}"#.utf8).write(to: config)
            try failing(
                ["--head", "gone=/nonexistent/x", "--lanes", "0", "--config", config.path, "--results", "norbert-requests"],
                environment: ["NORBERT_WORKER_MAX_WAIT_MS": "soon"],
                expected: ["--lanes", "NORBERT_WORKER_MAX_WAIT_MS", "unknown setting 'nope'", "head 'gone'", "topics must differ"], count: 5
            )
        }
    }

    @Test("--skip-model-files: heads whose folders are not on this machine pass; form is still checked")
    func skipModelFiles() throws {
        let run = try CLIRun.run(["serve", "--check-config", "--skip-model-files", "--head", "qa=/models/norbert4-qa"], environment: [:])
        #expect(run.status == 0, "\(run.err)")
        #expect(
            run.out.contains("not checked (--skip-model-files)") && Self.row(run.out, "head")?.contains("qa=/models/norbert4-qa") == true)
        try failing(["--skip-model-files", "--head", "qa"], expected: ["head 'qa' is not NAME=DIR"], count: 1)
        try failing(["--head", "qa=/models/norbert4-qa"], expected: ["head 'qa': /models/norbert4-qa is not a folder"], count: 1)
        let alone = try CLIRun.run(["serve", "--skip-model-files", "--head", "qa=/models/norbert4-qa"], environment: [:])
        #expect(alone.status != 0 && alone.err.contains("--skip-model-files only goes with --check-config"))
    }
}

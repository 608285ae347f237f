import Foundation
import Pipelines
import TestSupport
import Testing

@testable import Worker

/// The `serve` settings are declared once (`ServeSettings.options`); these check that every
/// place that shows or reads them agrees with the declarations: the flags, `--help`, the
/// environment, the config file, the defaults, and docs/worker.md's option table.
@Suite("serve settings: one declaration each")
struct ServeOptionsTests {
    /// A valid value for a setting, different from its default where it can be.
    static func sample(_ option: ServeOption) -> String {
        if let range = option.range {
            let defaultValue = option.show(ServeSettings.defaults).flatMap { Int($0) }
            return "\(range.lowerBound == defaultValue ? range.lowerBound + 1 : range.lowerBound)"
        }
        switch option.name {
        case "head": return "sample=/nowhere/sample"
        case "kafka": return "linger.ms=3"
        case "requests": return "sample-requests"
        case "reply-to-allow": return "sample-replies-*"
        case "log-format": return "json"
        case "log-level": return "debug"
        case "metrics-host": return "127.0.0.1"
        case "precision": return "bf16"
        default: return "sample-\(option.name)"
        }
    }

    static func temporaryFile(_ contents: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("serve-options-\(UUID().uuidString).json")
        try Data(contents.utf8).write(to: url)
        return url
    }

    @Test("names, variables and help texts are unique and complete; shown defaults are the real ones")
    func declarations() throws {
        let options = ServeSettings.options
        #expect(Set(options.map(\.name)).count == options.count)
        #expect(Set(options.map(\.environmentName)).count == options.count)
        #expect(ServeSettings.names == options.filter(\.isFileKey).map(\.name))
        for setting in CostLimits.settings { #expect(ServeSettings.option(named: setting.name) != nil, "\(setting.name)") }
        for option in options {
            #expect(!option.help.isEmpty && !option.help.contains("{default}") && !option.meaning.isEmpty, "\(option.name)")
            #expect(option.environmentName == "NORBERT_WORKER_" + option.name.uppercased().replacingOccurrences(of: "-", with: "_"))
            // The default shown in --help and the docs is the value the settings start with
            // (lanes: one per core; the defaults are built with one).
            if let shown = option.show(ServeSettings.defaults), option.name != "lanes" {
                #expect(
                    option.defaultText.replacingOccurrences(of: "`", with: "") == shown,
                    "\(option.name): shown default \(option.defaultText), real \(shown)")
            }
        }
        #expect(ServeSettings.option(named: "drain-timeout-ms")?.help.contains("(default 15000)") == true)
        let config = WorkerConfiguration(bootstrapServers: "b:1"),
            defaults = ServeSettings.defaults.workerConfiguration(bootstrapServers: "b:1")
        #expect(
            config.groupID == defaults.groupID && config.maxBatchTokens == defaults.maxBatchTokens && config.maxWait == defaults.maxWait
                && config.maxQueuedTokens == defaults.maxQueuedTokens && config.drainTimeout == defaults.drainTimeout
                && config.commitInterval == defaults.commitInterval && config.maxInFlight == defaults.maxInFlight
                && config.maxInFlightBytes == defaults.maxInFlightBytes && config.laneStallTimeout == defaults.laneStallTimeout
                && config.requestTopics == defaults.requestTopics && config.resultsTopic == defaults.resultsTopic
                && config.deadLetterTopic == defaults.deadLetterTopic && config.maxMessageBytes == defaults.maxMessageBytes)
    }

    @Test("every setting comes from its NORBERT_WORKER_ variable and its config-file key, origin recorded")
    func environmentAndFile() throws {
        for option in ServeSettings.options where option.isFileKey {
            let value = Self.sample(option)
            let fromEnv = ServeSettings.resolution(
                flags: [:], environment: [option.environmentName: value], file: [:], configFile: nil, defaultLanes: 1)
            let fromFile = ServeSettings.resolution(
                flags: [:], environment: [:], file: [option.name: [value]], configFile: "/c.json", defaultLanes: 1)
            #expect(fromEnv.problems.isEmpty && fromFile.problems.isEmpty, "\(option.name): \(fromEnv.problems) \(fromFile.problems)")
            if option.shape == .kafka {
                #expect(
                    fromEnv.kafkaOrigins["linger.ms"] == .environment("NORBERT_WORKER_KAFKA")
                        && fromEnv.settings.kafka == ["linger.ms": "3"])
                #expect(
                    fromFile.kafkaOrigins["linger.ms"] == .file(path: "/c.json", key: "kafka")
                        && fromFile.settings.kafka == ["linger.ms": "3"])
                continue
            }
            #expect(fromEnv.origin(of: option.name) == .environment(option.environmentName), "\(option.name)")
            #expect(fromFile.origin(of: option.name) == .file(path: "/c.json", key: option.name), "\(option.name)")
            #expect(
                fromEnv.settings == fromFile.settings && fromEnv.settings != ServeSettings(defaultLanes: 1),
                "\(option.name) changed nothing")
            #expect(option.show(fromEnv.settings) != option.show(ServeSettings(defaultLanes: 1)), "\(option.name)")
        }
        // --config is not a file key, and a file cannot name its own config.
        let nested = ServeSettings.resolution(flags: [:], environment: [:], file: ["config": ["/x"]], configFile: nil, defaultLanes: 1)
        #expect(
            nested.problems.map(\.description) == [
                "config file: unknown setting 'config' (known: \(ServeSettings.names.joined(separator: ", ")))"
            ])
    }

    @Test("every setting is a flag of serve, read from the flag: --check-config shows each from its flag")
    func everyFlagReadFromItsFlag() throws {
        let configFile = try Self.temporaryFile("{}")
        defer { try? FileManager.default.removeItem(at: configFile) }
        var args = ["serve", "--check-config", "--skip-model-files"]
        for option in ServeSettings.options {
            args += [option.flag, option.shape == .configPath ? configFile.path : Self.sample(option)]
        }
        let run = try CLIRun.run(args, environment: [:])
        #expect(run.status == 0, "\(run.err)")
        let rows = run.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        for option in ServeSettings.options {
            let row = rows.first { $0.first == option.name }
            #expect(row?.last == option.flag, "\(option.name): \(row ?? []) in\n\(run.out)")
            if option.shape != .configPath {
                #expect(row?.dropFirst().first == Self.sample(option), "\(option.name): \(row ?? [])")
            }
        }
    }

    @Test("serve --help shows each declaration's help and value name, and no undeclared option")
    func help() throws {
        func normalized(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let serve = try CLIRun.run(["serve", "--help"])
        #expect(serve.status == 0)
        let text = normalized(serve.out)
        for option in ServeSettings.options {
            #expect(text.contains("\(option.flag) <\(option.valueName)>"), "serve --help lacks \(option.flag) <\(option.valueName)>")
            #expect(
                text.contains(normalized(option.help)), "serve --help's text of \(option.flag) is not its declaration's: \(option.help)")
        }
        let declared = Set(ServeSettings.options.map(\.flag) + ["--check-config", "--skip-model-files", "--help"])
        let listed = Set(
            serve.out.split(whereSeparator: { $0.isWhitespace || $0 == "[" || $0 == "]" || $0 == "," || $0 == "/" })
                .filter { $0.hasPrefix("--") && $0.count > 2 && $0.allSatisfy { $0.isLowercase || $0 == "-" } }.map(String.init))
        #expect(listed.subtracting(declared).isEmpty, "serve --help lists undeclared options \(listed.subtracting(declared).sorted())")
        // infer shares the cost limits' flags and their declarations.
        let infer = normalized(try CLIRun.run(["infer", "--help"]).out)
        for setting in CostLimits.settings {
            let option = try #require(ServeSettings.option(named: setting.name))
            #expect(infer.contains("\(option.flag) <n>") && infer.contains(normalized(option.help)), "infer --help: \(option.flag)")
        }
    }

    @Test("docs/worker.md's option table is the declarations' (serve --help-markdown)")
    func docsTable() throws {
        let table = ServeOption.markdownTable()
        let docs = try String(contentsOf: NorbertBinary.packageRoot.appendingPathComponent("docs/worker.md"), encoding: .utf8)
        let begin = "<!-- options: the output of `norbert-worker serve --help-markdown` (scripts/update-options-doc.sh); do not edit -->\n"
        let end = "<!-- end of options -->"
        let committed = try #require(
            docs.components(separatedBy: begin).dropFirst().first?.components(separatedBy: end).first,
            "docs/worker.md has no generated option table")
        #expect(committed == table, "docs/worker.md's option table is stale: run scripts/update-options-doc.sh")
        for option in ServeSettings.options {
            #expect(table.contains("| `\(option.flag) \(option.valueName.uppercased().replacingOccurrences(of: "|", with: "\\|"))` |"))
        }
        let printed = try CLIRun.run(["serve", "--help-markdown"])
        #expect(printed.status == 0 && printed.out == table)
    }
}

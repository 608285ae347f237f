import Foundation
import Kafka
import Pipelines
import Wire

/// `serve --check-config`: every setting from every source checked as `serve` would (all
/// problems, not just the first), the librdkafka properties checked by librdkafka itself, and
/// (unless told not to) each head's folder: `config.json` parsed and its head class known, the
/// weights' safetensors header(s) opened, the tokenizer loaded. No broker is contacted, no dev
/// broker started, no port bound, no weights read.
public struct ServeConfigCheck: Sendable {
    /// What is wrong, one line each; empty: the configuration is valid.
    public var problems: [String]
    /// The effective configuration, one line per setting with its origin (secrets redacted), and
    /// what was checked of the model files.
    public var report: String

    public var passed: Bool { problems.isEmpty }

    /// `modelFiles`: look into the head and tokenizer folders (false: their paths are checked
    /// for form only, for machines without the models).
    public static func run(flags: [String: [String]], environment: [String: String], defaultLanes: Int, modelFiles: Bool)
        -> ServeConfigCheck
    {
        let resolution = ServeSettings.load(flags: flags, environment: environment, defaultLanes: defaultLanes)
        let settings = resolution.settings
        var problems = resolution.problems.map(\.description)
        if settings.heads.isEmpty, !problems.contains(where: { $0.hasPrefix("head '") }) {
            problems.append("give at least one --head NAME=DIR (or 'head' in the config file)")
        }
        var seen: Set<String> = []
        for head in settings.heads where !seen.insert(head.name).inserted { problems.append("head name '\(head.name)' is used twice") }
        problems += KafkaProperties(settings.kafka).rejections().map { "kafka: \($0)" }
        var files: [String] = []
        if modelFiles {
            let (lines, fileProblems) = checkModelFiles(settings)
            files = lines
            problems += fileProblems
        } else {
            files = ["not checked (--skip-model-files): head and tokenizer folders are taken as given"]
        }
        return ServeConfigCheck(problems: problems, report: render(resolution, files: files))
    }

    /// Each head's config.json and weights header, then the tokenizer.
    static func checkModelFiles(_ settings: ServeSettings) -> (lines: [String], problems: [String]) {
        var lines: [String] = []
        var problems: [String] = []
        var missing: Set<String> = []
        for head in settings.heads {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: head.directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                problems.append("head '\(head.name)': \(head.directory) is not a folder")
                missing.insert(head.directory)
                continue
            }
            do {
                let (kind, served) = try ModelFilesCheck.head(directory: head.directory)
                let tasks = served.map(\.rawValue).joined(separator: ", ")
                lines.append("head \(head.name): \(head.directory): \(kind) (\(tasks)); config.json and weights header read")
            } catch {
                problems.append("head '\(head.name)' (\(head.directory)): \(error)")
            }
        }
        // The tokenizer (by default in the first head's folder, then not reported twice).
        if let directory = settings.tokenizer ?? settings.heads.first?.directory, !missing.contains(directory) {
            do {
                try ModelFilesCheck.tokenizer(directory: directory)
                lines.append("tokenizer: \(directory): tokenizer.json loaded")
            } catch {
                problems.append("tokenizer in \(directory): \(error)")
            }
        }
        return (lines, problems)
    }

    /// `setting  value  origin` lines in declaration order (kafka: one line per property), then the model files.
    static func render(_ resolution: ServeSettings.Resolution, files: [String]) -> String {
        var rows: [(String, String, String)] = []
        for option in ServeSettings.options {
            switch option.shape {
            case .kafka:
                let kafka = resolution.settings.kafka
                if kafka.isEmpty { rows.append((option.name, "(none)", "default")) }
                for key in kafka.keys.sorted() {
                    let value = option.secret ? "[redacted]" : KafkaProperties.displayValue(name: key, value: kafka[key] ?? "")
                    rows.append((option.name, "\(key)=\(value)", (resolution.kafkaOrigins[key] ?? .default).description))
                }
            case .configPath:
                rows.append((option.name, resolution.configFile ?? "(none)", resolution.configOrigin.description))
            default:
                let shown = option.show(resolution.settings).map { option.secret ? "[redacted]" : $0 }
                let unset = option.defaultText.isEmpty ? "(none)" : "(\(option.defaultText.replacingOccurrences(of: "`", with: "")))"
                rows.append((option.name, shown ?? unset, resolution.origin(of: option.name).description))
            }
        }
        let nameWidth = rows.map(\.0.count).max() ?? 0
        let valueWidth = min(60, rows.map(\.1.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
        var out = ["settings (value, then where it came from: flag, environment variable, config file or default):"]
        for (name, value, origin) in rows { out.append("  \(pad(name, nameWidth))  \(pad(value, valueWidth))  \(origin)") }
        out.append("model files:")
        out += files.map { "  " + $0 }
        return out.joined(separator: "\n") + "\n"
    }
}

import Foundation
import Pipelines

/// One `serve` setting, declared once in ``ServeSettings/options``. Everything else is derived
/// from the declaration: the flag (`--name`), the environment variable (`NORBERT_WORKER_NAME`),
/// the config-file key (`name`), the `--help` text, the row of docs/worker.md's option table
/// (`serve --help-markdown`), the default shown in both (read from a default ``ServeSettings``),
/// the parsing and checking of a value, and its line in `serve --check-config`.
public struct ServeOption: Sendable {
    /// How the sources give the value.
    public enum Shape: Sendable, Equatable {
        /// One value (the last one wins when a file lists several).
        case single
        /// A list: comma-separated in the flag and the environment, a JSON list (or a string) in the file.
        case commaList
        /// A list: the flag is repeated, comma-separated in the environment, a JSON list in the file.
        case repeated
        /// librdkafka properties `KEY=VALUE`: repeated flag, merged per property across sources.
        case kafka
        /// The config file's path: flag and environment only (not a file key).
        case configPath

        /// Whether the flag may be given more than once (`[String]` in the command).
        public var flagRepeats: Bool { self == .repeated || self == .kafka }
        /// Whether the environment's value is a comma-separated list.
        var environmentIsList: Bool { self != .single && self != .configPath }
    }

    /// The flag without `--`; also the config-file key, and the variable's name after the prefix.
    public let name: String
    public let shape: Shape
    /// The flag's value placeholder (`n`, `name=dir`), in `--help` (lower case) and the docs (upper case).
    public let valueName: String
    /// The `serve --help` text.
    public let help: String
    /// docs/worker.md's "meaning" column (Markdown; `{range}` is replaced by the accepted range).
    public let meaning: String
    /// docs/worker.md's "default" column (Markdown).
    public let defaultText: String
    /// A secret: its value is never shown (`--check-config`, error messages).
    public let secret: Bool
    /// The accepted range of a whole number.
    public let range: ClosedRange<Int>?
    /// Stores a value given by `source` (`--name`, `NORBERT_WORKER_NAME`, `config file 'name'`).
    let apply: @Sendable (inout ServeSettings, _ values: [String], _ source: String) throws(ServeSettings.Failure) -> Void
    /// The effective value as text, nil when unset (`--check-config`).
    let show: @Sendable (ServeSettings) -> String?

    public var flag: String { "--" + name }
    public var environmentName: String { ServeSettings.environmentName(name) }
    /// Whether the config file may set it.
    public var isFileKey: Bool { shape != .configPath }

    init(
        _ name: String, _ shape: Shape, valueName: String, help: String, meaning: String, defaultText: String, secret: Bool = false,
        range: ClosedRange<Int>? = nil,
        apply: @escaping @Sendable (inout ServeSettings, [String], String) throws(ServeSettings.Failure) -> Void,
        show: @escaping @Sendable (ServeSettings) -> String?
    ) {
        self.name = name
        self.shape = shape
        self.valueName = valueName
        self.help = help.replacingOccurrences(of: "{default}", with: defaultText.replacingOccurrences(of: "`", with: ""))
        self.meaning = meaning.replacingOccurrences(of: "{range}", with: range.map { "\($0.lowerBound) … \($0.upperBound)" } ?? "")
        self.defaultText = defaultText
        self.secret = secret
        self.range = range
        self.apply = apply
        self.show = show
    }

    /// `text` as an error message may show it: not at all for a secret, else its first 100 characters.
    func quoted(_ text: String) -> String { secret ? "(a secret: not shown)" : "'\(text.prefix(100))'" }
}

// MARK: - Declaring settings by kind

extension ServeOption {
    /// A whole number in `range`, stored at `path`; the default is the default settings' value.
    static func whole(
        _ name: String, _ path: WritableKeyPath<ServeSettings, Int> & Sendable, _ range: ClosedRange<Int>,
        defaultText: String? = nil, help: String, meaning: String
    ) -> ServeOption {
        ServeOption(
            name, .single, valueName: "n", help: help, meaning: meaning,
            defaultText: defaultText ?? "\(ServeSettings.defaults[keyPath: path])", range: range,
            apply: { (s, values, source) throws(ServeSettings.Failure) in
                if let value = try wholeNumber(values, range, source) { s[keyPath: path] = value }
            },
            show: { "\($0[keyPath: path])" })
    }

    /// A whole number in `range` without a fixed default (nil: `defaultText` says what applies).
    static func optionalWhole(
        _ name: String, _ path: WritableKeyPath<ServeSettings, Int?> & Sendable, _ range: ClosedRange<Int>,
        defaultText: String, help: String, meaning: String
    ) -> ServeOption {
        ServeOption(
            name, .single, valueName: "n", help: help, meaning: meaning, defaultText: defaultText, range: range,
            apply: { (s, values, source) throws(ServeSettings.Failure) in s[keyPath: path] = try wholeNumber(values, range, source) },
            show: { $0[keyPath: path].map(String.init) })
    }

    /// Text stored at `path` (the last value given), after `check`.
    static func text(
        _ name: String, _ path: WritableKeyPath<ServeSettings, String> & Sendable, valueName: String,
        help: String, meaning: String,
        check: @escaping @Sendable (String, String) throws(ServeSettings.Failure) -> Void = { _, _ in }
    ) -> ServeOption {
        ServeOption(
            name, .single, valueName: valueName, help: help, meaning: meaning, defaultText: "`\(ServeSettings.defaults[keyPath: path])`",
            apply: { (s, values, source) throws(ServeSettings.Failure) in
                guard let value = values.last else { return }
                try check(value, source)
                s[keyPath: path] = value
            },
            show: { $0[keyPath: path] })
    }

    /// Optional text stored at `path`; an empty value is the same as none.
    static func optionalText(
        _ name: String, _ path: WritableKeyPath<ServeSettings, String?> & Sendable, valueName: String,
        defaultText: String, help: String, meaning: String, emptyIsNone: Bool = true
    ) -> ServeOption {
        ServeOption(
            name, .single, valueName: valueName, help: help, meaning: meaning, defaultText: defaultText,
            apply: { s, values, _ in
                guard let value = values.last else { return }
                s[keyPath: path] = emptyIsNone && value.isEmpty ? nil : value
            },
            show: { $0[keyPath: path] })
    }

    /// One of the cost limits (``CostLimits/settings``): the engine declares name, range, default and help.
    static func costLimit(_ setting: CostLimits.Setting) -> ServeOption {
        let meaning = setting.help.prefix(1).lowercased() + setting.help.dropFirst().dropLast(setting.help.hasSuffix(".") ? 1 : 0)
        return ServeOption(
            setting.name, .single, valueName: "n", help: "\(setting.help) Default {default}.", meaning: meaning,
            defaultText: setting.defaultText, range: setting.range,
            apply: { (s, values, source) throws(ServeSettings.Failure) in
                if let v = try wholeNumber(values, setting.range, source) { setting.set(&s.limits, v) }
            },
            show: { setting.get($0.limits).map(String.init) })
    }

    /// The last value as a whole number in `range`; nil when none is given.
    static func wholeNumber(_ values: [String], _ range: ClosedRange<Int>, _ source: String) throws(ServeSettings.Failure) -> Int? {
        guard let text = values.last else { return nil }
        guard let number = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
            throw ServeSettings.Failure("\(source): '\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}

// MARK: - Rendering

extension ServeOption {
    /// docs/worker.md's option table (`serve --help-markdown`): one row per setting, in declaration order.
    public static func markdownTable(_ options: [ServeOption] = ServeSettings.options) -> String {
        var lines = ["| flag | default | meaning |", "| --- | --- | --- |"]
        for option in options {
            let value = option.valueName.uppercased().replacingOccurrences(of: "|", with: "\\|")
            lines.append("| `\(option.flag) \(value)` | \(option.defaultText) | \(option.meaning) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

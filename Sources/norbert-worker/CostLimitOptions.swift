import ArgumentParser
import Pipelines
import Worker

/// The per-request cost limits (``CostLimits``) as flags, shared by `serve` and `infer`. Their
/// declarations are ``CostLimits/settings`` (as `serve` settings: ``ServeSettings/options``);
/// each property's name is the flag's. The values are text: `serve` checks them with its other
/// settings (all problems at once under `--check-config`), `infer` with ``checkedLimits()``.
struct CostLimitOptions: ParsableArguments {
    @Option(help: .serve("max-request-tokens")) var maxRequestTokens: String?
    @Option(help: .serve("max-windows")) var maxWindows: String?
    @Option(help: .serve("max-choices")) var maxChoices: String?
    @Option(help: .serve("max-masks")) var maxMasks: String?
    @Option(help: .serve("max-top-k")) var maxTopK: String?
    @Option(help: .serve("max-new-tokens")) var maxNewTokens: String?
    @Option(help: .serve("max-id-bytes")) var maxIdBytes: String?
    @Option(help: .serve("max-response-bytes")) var maxResponseBytes: String?

    /// The default limits with the flags given applied, each checked against its range.
    func checkedLimits() throws -> CostLimits {
        let given = GivenOptions.values(of: self)
        var limits = CostLimits()
        for setting in CostLimits.settings {
            guard let text = given[setting.name]?.last else { continue }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), setting.range.contains(value) else {
                throw ValidationError("--\(setting.name) must be in \(setting.range.lowerBound)...\(setting.range.upperBound)")
            }
            setting.set(&limits, value)
        }
        return limits
    }
}

/// What a parsed command's text `@Option`s hold, by flag name: ArgumentParser names a property's
/// flag after it (`maxBatchTokens` is `--max-batch-tokens`), and so does this; `@OptionGroup`s
/// of ``CostLimitOptions`` are descended into. Read through `Mirror`, so a setting's `@Option`
/// is its only mention in a command (WorkerTests check every one against its declaration).
enum GivenOptions {
    static func values(of command: Any) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for child in Mirror(reflecting: command).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            let name = flagName(label.dropFirst())
            switch child.value {
            case let option as Option<String?>:
                if let value = option.wrappedValue { out[name] = [value] }
            case let option as Option<[String]>:
                if !option.wrappedValue.isEmpty { out[name] = option.wrappedValue }
            case let group as OptionGroup<CostLimitOptions>:
                out.merge(values(of: group.wrappedValue)) { given, _ in given }
            default:
                continue
            }
        }
        return out
    }

    /// `maxTopK` → `max-top-k` (ArgumentParser's long name of a property).
    static func flagName(_ property: Substring) -> String {
        var out = ""
        for character in property {
            if character.isUppercase { out += "-" + character.lowercased() } else { out.append(character) }
        }
        return out
    }
}

extension ArgumentHelp {
    /// The `--help` text and value name of a `serve` setting, from its declaration.
    static func serve(_ name: String) -> ArgumentHelp {
        guard let option = ServeSettings.option(named: name) else {
            return ArgumentHelp("(no declaration in ServeSettings.options: WorkerTests fail)")
        }
        return ArgumentHelp(option.help, valueName: option.valueName)
    }
}

import ArgumentParser
import Pipelines

/// The per-request cost limits (``CostLimits``) as flags, shared by `serve` and `infer`.
struct CostLimitOptions: ParsableArguments {
    static func help(_ name: String) -> ArgumentHelp {
        let setting = CostLimits.settings.first { $0.name == name }
        return ArgumentHelp("\(setting?.help ?? name) Default \(setting?.defaultText ?? "-").", valueName: "n")
    }

    @Option(help: help("max-request-tokens")) var maxRequestTokens: Int?
    @Option(help: help("max-windows")) var maxWindows: Int?
    @Option(help: help("max-choices")) var maxChoices: Int?
    @Option(help: help("max-masks")) var maxMasks: Int?
    @Option(help: help("max-top-k")) var maxTopK: Int?
    @Option(help: help("max-new-tokens")) var maxNewTokens: Int?
    @Option(help: help("max-id-bytes")) var maxIdBytes: Int?
    @Option(help: help("max-response-bytes")) var maxResponseBytes: Int?

    /// The limits given, by setting name.
    var values: [String: Int] {
        let given: [(String, Int?)] = [
            ("max-request-tokens", maxRequestTokens), ("max-windows", maxWindows), ("max-choices", maxChoices),
            ("max-masks", maxMasks), ("max-top-k", maxTopK), ("max-new-tokens", maxNewTokens),
            ("max-id-bytes", maxIdBytes), ("max-response-bytes", maxResponseBytes),
        ]
        var out: [String: Int] = [:]
        for (name, value) in given { if let value { out[name] = value } }
        return out
    }

    func validate() throws {
        for setting in CostLimits.settings {
            if let v = values[setting.name], !setting.range.contains(v) {
                throw ValidationError("--\(setting.name) must be in \(setting.range.lowerBound)...\(setting.range.upperBound)")
            }
        }
    }
}

extension CostLimitOptions {
    /// The default limits with the flags given applied.
    var limits: CostLimits {
        var limits = CostLimits()
        limits.apply(values)
        return limits
    }
}

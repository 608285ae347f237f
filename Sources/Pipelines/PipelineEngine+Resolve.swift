import Wire

extension PipelineEngine {
    /// The engine's bounds of request options (maximum input, `max-top-k`, `max-new-tokens`).
    public var optionBounds: OptionBounds {
        OptionBounds(maxInputTokens: maxInputTokens, maxTopK: configuration.limits.maxTopK,
                     maxNewTokens: configuration.limits.maxNewTokens)
    }
}

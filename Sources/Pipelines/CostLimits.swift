/// Per-request cost limits: every request is priced (``RequestCost``) before any work, and one
/// over a limit is rejected — `invalid_value` for an option over its limit (`top_k`,
/// `max_new_tokens`) or an over-long `id`, `request_too_costly` for the aggregate costs.
///
/// The defaults admit every request the fixtures, examples and tests send, and any request with
/// default options whose inputs fit the maximum input length (`--max-input-tokens`): see
/// ``settings`` for each one's reason.
public struct CostLimits: Sendable, Equatable {
    /// Encoder tokens of one request: all windows, choices and heads, special tokens included
    /// (text generation: the prompt). nil: 16 × the maximum input length (262,144 for NorBERT 4).
    public var maxRequestTokens: Int?
    /// Windows of one head (windowed classification, question answering).
    public var maxWindows = 256
    /// Choices of a multiple-choice request.
    public var maxChoices = 16
    /// Mask tokens in a fill-mask text (each costs a vocabulary-wide row of logits).
    public var maxMasks = 32
    /// Largest `top_k` of fill-mask and question-answering (answers returned per mask / request).
    public var maxTopK = 100
    /// Largest `max_new_tokens` of text-generation.
    public var maxNewTokens = 1024
    /// Longest `id`, in UTF-8 bytes (it is repeated in every response and streamed partial).
    public var maxIDBytes = 256
    /// Estimated bytes of all responses of a request (every head, streamed partials included).
    public var maxResponseBytes = 16 << 20

    public init() {}

    /// One limit as a setting: its name (`serve`/`infer` flag without `--`, config-file key,
    /// `NORBERT_WORKER_…` variable), help text, default as written, and accessors.
    public struct Setting: Sendable {
        public let name: String
        public let help: String
        public let defaultText: String
        public let range: ClosedRange<Int>
        public let get: @Sendable (CostLimits) -> Int?
        public let set: @Sendable (inout CostLimits, Int) -> Void
    }

    /// Every limit, in the order `--help` and docs/pipelines.md list them.
    ///
    /// Why these defaults: 16 full-length inputs is what 16 choices of maximal length cost, and
    /// about a 1 MiB message of text in windows; 256 windows hold a maximal context in
    /// question-answering's default windows (≤ 86) and in the fixture's 128-token windows (≤ 200);
    /// the fixtures use at most 3 choices, 2 masks, top_k 10, 40 new tokens and 8-byte ids; 16 MiB
    /// is 16 of Kafka's default 1 MB messages.
    public static let settings: [Setting] = [
        Setting(
            name: "max-request-tokens", help: "Most encoder tokens one request may cost (all windows, choices and heads).",
            defaultText: "16 × max input", range: 1...(1 << 30), get: { $0.maxRequestTokens }, set: { $0.maxRequestTokens = $1 }),
        Setting(
            name: "max-windows", help: "Most windows of one head (windowed classification, question answering).",
            defaultText: "256", range: 1...(1 << 20), get: { $0.maxWindows }, set: { $0.maxWindows = $1 }),
        Setting(
            name: "max-choices", help: "Most choices of a multiple-choice request.",
            defaultText: "16", range: 1...(1 << 20), get: { $0.maxChoices }, set: { $0.maxChoices = $1 }),
        Setting(
            name: "max-masks", help: "Most mask tokens in a fill-mask text.",
            defaultText: "32", range: 1...(1 << 20), get: { $0.maxMasks }, set: { $0.maxMasks = $1 }),
        Setting(
            name: "max-top-k", help: "Largest top_k of fill-mask and question-answering.",
            defaultText: "100", range: 1...(1 << 20), get: { $0.maxTopK }, set: { $0.maxTopK = $1 }),
        Setting(
            name: "max-new-tokens", help: "Largest max_new_tokens of text-generation.",
            defaultText: "1024", range: 0...(1 << 24), get: { $0.maxNewTokens }, set: { $0.maxNewTokens = $1 }),
        Setting(
            name: "max-id-bytes", help: "Longest request id, UTF-8 bytes.",
            defaultText: "256", range: 1...(1 << 20), get: { $0.maxIDBytes }, set: { $0.maxIDBytes = $1 }),
        Setting(
            name: "max-response-bytes", help: "Most estimated bytes of all responses of one request (streamed partials included).",
            defaultText: "16777216", range: 1024...(1 << 40), get: { $0.maxResponseBytes }, set: { $0.maxResponseBytes = $1 }),
    ]

    /// Sets limits by setting name (unknown names ignored; values are checked by the caller).
    public mutating func apply(_ values: [String: Int]) {
        for setting in Self.settings { if let v = values[setting.name] { setting.set(&self, v) } }
    }
}

/// Requests that cost far more than their size (the hardening issue's list), each with the error
/// code the default limits reject it with, for the tiny fixture heads and tokenizer (maximum input
/// 16,384 tokens; a (question, context) pair adds 2 special tokens, a text 1 before it).
public enum HostileRequests {
    public struct Case: Sendable {
        public let name: String
        public let line: String
        public let code: String
        /// Rejected when priced (the worker's `prepare`); false: only once tokenized in the lane
        /// (still before any window is built).
        public let rejectedWhenPriced: Bool
    }

    /// 47 bytes, 16 tokens of the fixture tokenizer when repeated.
    public static let sentence = "Kari Nordmann bor i Tromsø og jobber på UiT. "
    public static func text(bytes: Int) -> String { String(repeating: sentence, count: bytes / sentence.utf8.count + 1) }
    /// 6 tokens: windows of max_seq_len 384 hold 384 − 2 − 6 = 376 context tokens.
    public static let question = "Hvor bor Kari?"
    public static let contextPerWindow = 376

    public static let cases: [Case] = [
        // 48 KiB (~16,700 tokens) in windows advancing one token: ~350 windows of 16,384 tokens.
        Case(
            name: "window stride = room - 1 on 48 KB",
            line:
                #"""
                {"id": "h-window", "task": "text-classification", "text": "\#(text(bytes: 48 * 1024))", "options": {"overflow": \#
                "window", "stride": 16382}}
                """#,
            code: "request_too_costly", rejectedWhenPriced: true),
        // 96 KiB of context (~33,500 tokens) is over the maximum: rejected before its windows are built.
        Case(
            name: "QA doc_stride just under the window on 96 KB",
            line:
                #"""
                {"id": "h-qa-96k", "task": "question-answering", "question": "\#(question)", "context": \#
                "\#(text(bytes: 96 * 1024))", "options": {"doc_stride": \#(contextPerWindow - 1)}}
                """#,
            code: "input_too_long", rejectedWhenPriced: true),
        // Within the maximum (~10,900 tokens), but ~10,500 windows of 384 tokens.
        Case(
            name: "QA doc_stride just under the window within the maximum",
            line:
                #"""
                {"id": "h-qa-stride", "task": "question-answering", "question": "\#(question)", "context": \#
                "\#(text(bytes: 32_000))", "options": {"doc_stride": \#(contextPerWindow - 1)}}
                """#,
            code: "request_too_costly", rejectedWhenPriced: true),
        // 2.5 KB: 350 masks × top_k 100 results, each repeating the whole text.
        Case(
            name: "fill-mask with 350 masks and top_k 100",
            line:
                #"""
                {"id": "h-masks", "task": "fill-mask", "text": "\#(String(repeating: "<mask> ", count: 350))", "options": {"top_k": \#
                100}}
                """#,
            code: "request_too_costly", rejectedWhenPriced: true),
        // 30 masks (within the limit) in 29 KB (~9,900 tokens) × top_k 100: ~90 MB of response.
        Case(
            name: "fill-mask response of masks × top_k × text",
            line:
                #"""
                {"id": "h-fill-bytes", "task": "fill-mask", "text": \#
                "\#(text(bytes: 29_000))\#(String(repeating: " <mask>", count: 30))", "options": {"top_k": 100}}
                """#,
            code: "request_too_costly", rejectedWhenPriced: true),
        Case(
            name: "fill-mask top_k = vocabulary size",
            line: #"{"id": "h-fill-k", "task": "fill-mask", "text": "Jeg bor i <mask>.", "options": {"top_k": 2048}}"#,
            code: "invalid_value", rejectedWhenPriced: true),
        Case(
            name: "1,000 choices",
            line:
                #"""
                {"id": "h-choices", "task": "multiple-choice", "question": "Hva er riktig?", "choices": \#
                [\#((0..<1000).map { "\"svar \($0)\"" }.joined(separator: ", "))]}
                """#,
            code: "request_too_costly", rejectedWhenPriced: true),
        // Repeated in each of 500 streamed partials: 50 MB.
        Case(
            name: "streamed generation with a 100 KB id",
            line:
                #"""
                {"id": "\#(String(repeating: "i", count: 100 * 1024))", "task": "text-generation", "head": "causal", "text": "Hei", \#
                "options": {"max_new_tokens": 500}, "stream": true}
                """#,
            code: "invalid_value", rejectedWhenPriced: true),
        Case(
            name: "max_new_tokens huge",
            line: #"{"id": "h-new", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"max_new_tokens": 1000000}}"#,
            code: "invalid_value", rejectedWhenPriced: true),
        // ~13,300 vectors of 64 numbers: ~20 MB.
        Case(
            name: "feature-extraction pooling none on 39 KB",
            line: #"{"id": "h-features", "task": "feature-extraction", "text": "\#(text(bytes: 39_000))", "options": {"pooling": "none"}}"#,
            code: "request_too_costly", rejectedWhenPriced: true),
        // 8 KB that NFKC expands ~8× (U+FDFA is 18 letters): the bytes do not bound the tokens, so
        // pricing lets it through; the plan counts ~66,000 tokens and refuses ~600 windows.
        Case(
            name: "normalization-expanded text in windows",
            line:
                #"""
                {"id": "h-nfkc", "task": "text-classification", "text": "\#(String(repeating: "\u{FDFA} ", count: 2000))", \#
                "options": {"overflow": "window", "stride": 16300}}
                """#,
            code: "request_too_costly", rejectedWhenPriced: false),
        // 300 KB of digits: 300,000 tokens (one per digit). Without windows, tokenizing stops past
        // the maximum input (16,384: input_too_long); with windows, past what a request may cost
        // (262,144: request_too_costly, when priced). Either way saying no costs at most the limit.
        Case(
            name: "300 KB of digits without windows",
            line: #"{"id": "h-digits", "task": "text-classification", "text": "\#(String(repeating: "7", count: 300_000))"}"#,
            code: "input_too_long", rejectedWhenPriced: false),
        Case(
            name: "300 KB of digits in windows",
            line:
                #"""
                {"id": "h-digits-window", "task": "token-classification", "text": "\#(String(repeating: "7", count: 300_000))", \#
                "options": {"overflow": "window"}}
                """#,
            code: "request_too_costly", rejectedWhenPriced: true),
    ]

    /// Requests that were expensive before and are cheap now, answered normally.
    public static let nowCheap: [String] = [
        // Sampling with top_k = the vocabulary: O(V) per token now, not O(V·k).
        #"""
        {"id": "c-sample", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"do_sample": true, "top_k": 2048, \#
        "seed": 3, "max_new_tokens": 3}}
        """#
    ]
}

import ArgumentParser
import Foundation
import Pipelines
import Wire

struct InferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Answer JSON-lines pipeline requests (classification, NER, QA, fill-mask, multiple choice, generation, features).",
        discussion: """
            Reads one JSON request per line (stdin, or --input FILE) and writes one JSON response line \
            per request and head (stdout, or --output FILE), in input order. A line that is not a valid \
            request gets an error response ({"id": ..., "error": {"code": ..., "message": ...}}) and the \
            run goes on; blank lines are skipped. A request with "stream": true also gets partial lines \
            ("partial": true) before its final line. Requests waiting in the input are batched: their \
            sequences share packed encoder passes. Formats: schemas/request.schema.json, \
            schemas/response.schema.json, schemas/error.schema.json (docs/wire-protocol.md, docs/pipelines.md).

              {"id": "1", "task": "text-classification", "text": "Dette var bra!", "options": {"top_k": null}}
              {"id": "2", "heads": ["sentiment", "ner"], "text": "Kari bor i Tromsø."}
            """)

    @Option(
        name: .customLong("head"),
        help: ArgumentHelp(
            "A head: NAME=DIR, a checkpoint folder (repeatable). Its config.json architectures say which tasks it serves.",
            valueName: "name=dir"))
    var heads: [String] = []

    @Option(name: .long, help: "Tokenizer folder (tokenizer.json …). Default: the first head's folder.")
    var tokenizer: String?

    @Option(name: .long, help: "Read requests from FILE instead of stdin (shows a progress bar on stderr).")
    var input: String?

    @Option(name: .long, help: "Write responses to FILE instead of stdout.")
    var output: String?

    @Option(name: .long, help: "Longest input in tokens (default: the tokenizer's model_max_length, else the model's max_sequence_length).")
    var maxTokens: Int?

    @Option(name: .long, help: "Most requests answered together in one batch.")
    var batchSize: Int = 64

    @Option(
        name: .long,
        help: "Precision of the weight GEMMs: float32 (exact to the reference) or bf16 (our AVX512-BF16 GEMM; needs AVX512-BF16).")
    var precision: String = "float32"

    @Option(name: .long, help: "OpenBLAS threads.")
    var threads: Int = 1

    @OptionGroup(title: "Per-request cost limits") var costLimits: CostLimitOptions

    /// Prints docs/wire-protocol.md's request option table from the declarations and exits
    /// (scripts/update-options-doc.sh).
    @Flag(help: .hidden) var optionsMarkdown = false

    func validate() throws {
        if optionsMarkdown { return }
        guard !heads.isEmpty else { throw ValidationError("give at least one --head NAME=DIR") }
        for h in heads where HeadSpec.parse(h) == nil { throw ValidationError("--head '\(h)' is not NAME=DIR") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let m = maxTokens, m < 2 { throw ValidationError("--max-tokens must be at least 2") }
        _ = try costLimits.checkedLimits()
    }

    func run() async throws {
        if optionsMarkdown {
            FileHandle.standardOutput.write(Data(OptionDeclaration.markdownTable().utf8))
            return
        }
        PipelineEngine.setBLASThreads(threads)
        let limits = try costLimits.checkedLimits()
        try KernelStartup.check("infer")
        let bf16 = try KernelStartup.bf16GEMM("infer", precision: precision)
        let engine: PipelineEngine
        do {
            engine = try PipelineEngine(
                heads: heads.compactMap(HeadSpec.parse), tokenizerDirectory: tokenizer,
                configuration: EngineConfiguration(maxInputTokens: maxTokens, limits: limits, bf16: bf16))
        } catch {
            throw CLIError("infer: \(error.description)")
        }
        let reader: InferLineReader
        let writer: InferOutput
        do {
            reader = try InferLineReader(path: input, capacity: max(256, 4 * batchSize))
            writer = try InferOutput(path: output)
        } catch {
            throw CLIError("infer: \(error)")
        }
        let progress = input.map { InferProgress(total: InferLineReader.countLines(path: $0)) }
        reader.start()
        let workspace = PipelineWorkspace()
        while let lines = reader.next(max: batchSize) {
            let result = engine.respond(toLines: lines, workspace: workspace)
            var tokens = 0
            // A request with "stream": true also gets its partial lines, before each head's final line.
            for index in result.responses.indices {
                for response in result.stream(index) {
                    writer.write(response.jsonLine)
                    if !response.isPartial, let usage = response.usage { tokens += usage.inputTokens + (usage.generatedTokens ?? 0) }
                }
            }
            writer.flush()
            progress?.advance(requests: lines.count, tokens: tokens)
        }
        progress?.finish()
        if let failure = reader.failure { throw CLIError("infer: \(failure)") }
    }
}

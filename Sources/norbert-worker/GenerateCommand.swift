import ArgumentParser
import Foundation
import NorBERT
import Tensors
import Tokenizers

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Greedy decoding with a causal (or masked) LM checkpoint and the key/value cache.",
        discussion: """
            With --prompt TEXT the prompt is tokenized (tokenizer.json of --tokenizer, default the model \
            folder; special tokens added as the tokenizer's post-processor says, e.g. <s> first) and the \
            generated text is printed. With --prompt-ids the generated token ids are printed, \
            comma-separated, on one line.
            """)

    @Option(name: .long, help: "Checkpoint folder of a language-model head (GptBertForCausalLM or GptBertForMaskedLM).")
    var model: String

    @Option(name: .long, help: "Prompt token ids, comma-separated (e.g. 1,55,300).")
    var promptIds: String?

    @Option(name: .long, help: "Prompt text (tokenized with --tokenizer).")
    var prompt: String?

    @Option(name: .long, help: "Folder with tokenizer.json for --prompt (default: the model folder).")
    var tokenizer: String?

    @Option(name: .long, help: "Number of tokens to generate.")
    var maxNewTokens: Int = 20

    @Flag(name: .long, help: "Stop after generating eos_token_id.")
    var stopAtEos = false

    @Option(name: .long, help: "OpenBLAS threads (default: 1; decoding is latency-bound).")
    var threads: Int = 1

    func validate() throws {
        guard maxNewTokens >= 0 else { throw ValidationError("--max-new-tokens must not be negative") }
        guard (prompt == nil) != (promptIds == nil) else { throw ValidationError("give exactly one of --prompt and --prompt-ids") }
    }

    func run() async throws {
        BLAS.setThreads(threads)
        var ids: [Int] = []
        var textTokenizer: Tokenizer? = nil
        if let promptIds {
            for part in promptIds.split(separator: ",") {
                guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--prompt-ids: '\(part)' is not an integer")
                }
                ids.append(id)
            }
        } else if let prompt {
            let tok = try Self.loadTokenizer(tokenizer ?? model)
            ids = try Self.encode(prompt, tok)
            textTokenizer = tok
        }
        do {
            let loaded = try NorBERTModel(directory: model, kind: nil)
            let stop: Set<Int> = stopAtEos ? Set([loaded.config.eosTokenId].compactMap { $0 }) : []
            let generated = try loaded.generateGreedy(
                prompt: ids, maxNewTokens: maxNewTokens, stopTokens: stop, workspace: EncoderWorkspace())
            if let textTokenizer {
                print(textTokenizer.decode(generated, skipSpecialTokens: true))
            } else {
                print(generated.map(String.init).joined(separator: ","))
            }
        } catch let error as NorBERTError {
            throw CLIError(error.description)
        }
    }

    static func loadTokenizer(_ directory: String) throws(CLIError) -> Tokenizer {
        do { return try Tokenizer(directory: directory) } catch { throw CLIError(error.description) }
    }

    static func encode(_ text: String, _ tokenizer: Tokenizer) throws(CLIError) -> [Int] {
        do { return try tokenizer.encode(text).ids } catch { throw CLIError(error.description) }
    }
}

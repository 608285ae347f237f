import ArgumentParser
import Foundation
import NorBERT
import Tensors

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Greedy decoding with a causal (or masked) LM checkpoint and the key/value cache.",
        discussion: "Prints the generated token ids, comma-separated, on one line.")

    @Option(name: .long, help: "Checkpoint folder of a language-model head (GptBertForCausalLM or GptBertForMaskedLM).")
    var model: String

    @Option(name: .long, help: "Prompt token ids, comma-separated (e.g. 1,55,300).")
    var promptIds: String

    @Option(name: .long, help: "Number of tokens to generate.")
    var maxNewTokens: Int = 20

    @Flag(name: .long, help: "Stop after generating eos_token_id.")
    var stopAtEos = false

    @Option(name: .long, help: "OpenBLAS threads (default: 1; decoding is latency-bound).")
    var threads: Int = 1

    func validate() throws {
        guard maxNewTokens >= 0 else { throw ValidationError("--max-new-tokens must not be negative") }
    }

    func run() async throws {
        BLAS.setThreads(threads)
        var prompt: [Int] = []
        for part in promptIds.split(separator: ",") {
            guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--prompt-ids: '\(part)' is not an integer")
            }
            prompt.append(id)
        }
        do {
            let loaded = try NorBERTModel(directory: model, kind: nil)
            let stop: Set<Int> = stopAtEos ? Set([loaded.config.eosTokenId].compactMap { $0 }) : []
            let ids = try loaded.generateGreedy(prompt: prompt, maxNewTokens: maxNewTokens, stopTokens: stop, workspace: EncoderWorkspace())
            print(ids.map(String.init).joined(separator: ","))
        } catch let error as NorBERTError {
            throw CLIError(error.description)
        }
    }
}

import ArgumentParser
import Foundation
import NorBERT
import Tensors

struct ForwardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run a checkpoint on token ids from a safetensors file and write its outputs (also how to export embeddings).",
        discussion: """
            IN.safetensors holds `input_ids` (int64 [B, T], or [B, C, T] for multiple choice) and \
            optionally `attention_mask` (same shape, right padding). OUT.safetensors receives float32 \
            tensors named as the reference names them: `last_hidden_state` [B, T, H], \
            `hidden_states.0` … `hidden_states.<num_layers>` (with --hidden-states), `logits` \
            (LM [B, T, vocab]; sequence classification [B, labels]; token classification [B, T, labels]; \
            multiple choice [B, C], pooled on each choice's first token), `start_logits` and \
            `end_logits` [B, T] (question answering). Values at padded positions are 0 (unspecified).
            """)

    @Option(name: .long, help: "Checkpoint folder (config.json, model.safetensors or model.safetensors.index.json).")
    var model: String

    @Option(name: .long, help: "Input safetensors file with input_ids [and attention_mask].")
    var inputs: String

    @Option(name: .long, help: "Output safetensors file to write.")
    var output: String

    @Flag(name: .long, help: "Also write the embedding output and every layer's output.")
    var hiddenStates = false

    @Option(
        name: .long,
        help: "Head to run: \(HeadKind.allCases.map(\.rawValue).joined(separator: "|")) (default: from config.json architectures).")
    var head: HeadKind?

    @Option(name: .long, help: "OpenBLAS threads (default: all cores).")
    var threads: Int?

    func run() async throws {
        BLAS.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        do {
            let loaded = try NorBERTModel(directory: model, kind: head)
            let input = try ForwardFile.readInputs(path: inputs, kind: loaded.kind)
            try ForwardFile.run(model: loaded, inputs: input, hiddenStates: hiddenStates, output: output)
        } catch let error as NorBERTError {
            throw CLIError(error.description)
        }
    }
}

extension HeadKind: ExpressibleByArgument {}

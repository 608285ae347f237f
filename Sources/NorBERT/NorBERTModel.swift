import Foundation
import SafeTensors
import Tensors

/// A loaded checkpoint: config, shared encoder and (optionally) a head.
public final class NorBERTModel: Sendable {
    public let config: NorBERTConfig
    public let encoder: Encoder
    public let kind: HeadKind
    public let head: ClassifierHead?

    /// Builds a model from any weight source. `kind` defaults to config.json `architectures`.
    /// `bf16`: the encoder's weight GEMMs in bfloat16 through it (nil: float32).
    public convenience init(config: NorBERTConfig, weights: any WeightSource, kind: HeadKind? = nil, bf16: BF16GEMM? = nil) throws {
        try self.init(config: config, encoder: Encoder(weights, config: config, bf16: bf16), weights: weights, kind: kind)
    }

    init(config: NorBERTConfig, encoder: Encoder, weights: any WeightSource, kind: HeadKind?) throws {
        self.config = config
        let resolved = try kind ?? NorBERTModel.kind(from: config)
        self.kind = resolved
        self.encoder = encoder
        switch resolved {
        case .base: head = nil
        case .maskedLM, .causalLM: head = try ClassifierHead(weights, config: config, languageModel: true)
        default: head = try ClassifierHead(weights, config: config, languageModel: false)
        }
    }

    /// Loads a Hugging Face checkpoint folder (config.json + model.safetensors or a sharded index).
    public convenience init(directory: String, kind: HeadKind? = nil, bf16: BF16GEMM? = nil) throws {
        let config = try NorBERTConfig.load(directory: directory)
        try self.init(config: config, weights: try NorBERTModel.openCheckpoint(directory: directory), kind: kind, bf16: bf16)
    }

    /// Opens a checkpoint folder's weights, with errors as `NorBERTError.checkpoint`.
    public static func openCheckpoint(directory: String) throws -> Checkpoint {
        do {
            return try Checkpoint.open(directory: directory)
        } catch let error as SafeTensorsError {
            throw NorBERTError.checkpoint(message: error.description)
        }
    }

    /// The head named by config.json `architectures` (the first one the reference defines).
    public static func kind(from config: NorBERTConfig) throws -> HeadKind {
        for name in config.architectures ?? [] {
            if let kind = HeadKind(architecture: name) { return kind }
        }
        let names = (config.architectures ?? []).joined(separator: ", ")
        throw NorBERTError.unsupportedHead(
            """
            config.json architectures [\(names)] names no NorBERT 4 class; pass a head explicitly (one of \
            \(HeadKind.allCases.map(\.rawValue).joined(separator: ", ")))
            """
        )
    }

    public var isCausal: Bool { kind == .causalLM }

    /// Bytes of float32 weights held in memory.
    public var byteCount: Int { encoder.byteCount + (head?.byteCount ?? 0) }
}

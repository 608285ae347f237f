import Foundation
import NorBERT
import SafeTensors
import Tensors
import Tokenizers
import Wire

/// A head to load: a name requests use and a checkpoint folder.
public struct HeadSpec: Sendable, Equatable {
    public var name: String
    public var directory: String
    /// The head class; nil: config.json `architectures`.
    public var kind: HeadKind?
    public init(name: String, directory: String, kind: HeadKind? = nil) {
        self.name = name
        self.directory = directory
        self.kind = kind
    }

    /// Parses `NAME=DIR` (the `infer --head` syntax).
    public static func parse(_ argument: String) -> HeadSpec? {
        guard let eq = argument.firstIndex(of: "=") else { return nil }
        let name = String(argument[..<eq]), dir = String(argument[argument.index(after: eq)...])
        guard !name.isEmpty, !dir.isEmpty else { return nil }
        return HeadSpec(name: name, directory: dir)
    }
}

/// A configured head: its model (whose encoder may be shared with other heads) and its tasks.
public final class LoadedHead: Sendable {
    public let name: String
    public let model: NorBERTModel
    public let tasks: [PipelineTask]
    /// Heads with the same `encoderGroup` hold the same `Encoder` object (one pass serves all).
    public let encoderGroup: Int

    init(name: String, model: NorBERTModel, encoderGroup: Int) {
        self.name = name
        self.model = model
        self.tasks = PipelineTask.served(by: model.kind)
        self.encoderGroup = encoderGroup
    }

    public func serves(_ task: PipelineTask) -> Bool { tasks.contains(task) }
}

/// A setup failure (loading heads or the tokenizer): not a request error.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Engine settings.
public struct EngineConfiguration: Sendable {
    /// Longest input accepted, in tokens (special tokens included). nil: the tokenizer's
    /// `model_max_length` when it is a real number, else the model's `max_sequence_length`.
    public var maxInputTokens: Int?
    /// Token budget of one packed encoder pass (sequences of many requests are packed up to it).
    public var maxTokensPerPass: Int
    /// Per-request cost limits (see ``CostLimits`` and ``PipelineEngine/cost(of:)``).
    public var limits: CostLimits
    /// The encoders' weight GEMMs in bfloat16 through this (``BF16GEMM/own(cpu:)``); nil: float32.
    public var bf16: BF16GEMM?
    public init(maxInputTokens: Int? = nil, maxTokensPerPass: Int = 8192, limits: CostLimits = CostLimits(), bf16: BF16GEMM? = nil) {
        self.maxInputTokens = maxInputTokens
        self.maxTokensPerPass = maxTokensPerPass
        self.limits = limits
        self.bf16 = bf16
    }
}

/// Text in, answers out: runs batches of requests over the configured heads. Thread-safe (all
/// state is immutable); each concurrent caller passes its own `EncoderWorkspace`.
public final class PipelineEngine: Sendable {
    /// Heads in configuration order.
    public let heads: [LoadedHead]
    public let tokenizer: Tokenizer
    public let maxInputTokens: Int
    public let configuration: EngineConfiguration
    /// The encoder-token limit of one request (``CostLimits/maxRequestTokens``, resolved).
    public let maxRequestTokens: Int
    /// Special tokens the tokenizer's template adds around one text (before, after) and to a pair.
    let singleSpecials: (prefix: Int, suffix: Int)
    let pairSpecials: Int
    let byName: [String: LoadedHead]

    /// Builds an engine over already loaded models (names must be unique). Models whose
    /// `encoder` is the same object share encoder passes.
    public init(
        models: [(name: String, model: NorBERTModel)], tokenizer: Tokenizer,
        configuration: EngineConfiguration = EngineConfiguration()
    ) throws(EngineError) {
        guard !models.isEmpty else { throw EngineError("no heads configured") }
        var groups: [ObjectIdentifier: Int] = [:]
        var loaded: [LoadedHead] = []
        var names: [String: LoadedHead] = [:]
        for (name, model) in models {
            guard names[name] == nil else { throw EngineError("head name '\(name)' is used twice") }
            let key = ObjectIdentifier(model.encoder)
            let group = groups[key] ?? groups.count
            groups[key] = group
            let head = LoadedHead(name: name, model: model, encoderGroup: group)
            loaded.append(head)
            names[name] = head
        }
        heads = loaded
        byName = names
        self.tokenizer = tokenizer
        self.configuration = configuration
        if let m = configuration.maxInputTokens {
            guard m >= 2 else { throw EngineError("the maximum input length must be at least 2 tokens, got \(m)") }
            maxInputTokens = m
        } else if let t = tokenizer.specialTokens.modelMaxLength, t >= 2, t <= 1 << 24 {
            maxInputTokens = t
        } else {
            maxInputTokens = max(2, loaded[0].model.config.maxSequenceLength)
        }
        for setting in CostLimits.settings {
            if let v = setting.get(configuration.limits), !setting.range.contains(v) {
                throw EngineError("\(setting.name) must be in \(setting.range.lowerBound)...\(setting.range.upperBound), got \(v)")
            }
        }
        maxRequestTokens = configuration.limits.maxRequestTokens ?? Cost.mul(16, maxInputTokens)
        let probe = try? tokenizer.encode("a", pair: nil, addSpecialTokens: true, truncation: nil, padding: nil)
        let mask = probe?.specialTokensMask ?? []
        let prefix = mask.prefix { $0 == 1 }.count
        singleSpecials = (prefix, mask.count == prefix ? 0 : mask.reversed().prefix { $0 == 1 }.count)
        let pair = try? tokenizer.encode("a", pair: "b", addSpecialTokens: true, truncation: nil, padding: nil)
        pairSpecials = pair?.specialTokensMask.filter { $0 == 1 }.count ?? 0
    }

    /// Loads checkpoint folders; heads whose encoder tensors are byte-identical share one
    /// loaded `Encoder` (and so one encoder pass per text). The tokenizer defaults to the one in
    /// the first head's folder.
    public convenience init(
        heads specs: [HeadSpec], tokenizerDirectory: String? = nil,
        configuration: EngineConfiguration = EngineConfiguration()
    ) throws(EngineError) {
        guard let first = specs.first else { throw EngineError("no heads configured") }
        let tokenizer: Tokenizer
        let tokDir = tokenizerDirectory ?? first.directory
        do { tokenizer = try Tokenizer(directory: tokDir) } catch {
            throw EngineError("tokenizer in \(tokDir): \(error.description)")
        }
        var models: [(name: String, model: NorBERTModel)] = []
        var encoders: [(checkpoint: Checkpoint, encoder: Encoder)] = []
        for spec in specs {
            do {
                let config = try NorBERTConfig.load(directory: spec.directory)
                let checkpoint = try NorBERTModel.openCheckpoint(directory: spec.directory)
                var model: NorBERTModel? = nil
                for (other, encoder) in encoders where NorBERTModel.encoderTensorsIdentical(other, checkpoint) {
                    model = try NorBERTModel(config: config, sharing: encoder, weights: checkpoint, kind: spec.kind)
                    break
                }
                let m = try model ?? NorBERTModel(config: config, weights: checkpoint, kind: spec.kind, bf16: configuration.bf16)
                if model == nil { encoders.append((checkpoint, m.encoder)) }
                models.append((spec.name, m))
            } catch let e as NorBERTError {
                throw EngineError("head '\(spec.name)' (\(spec.directory)): \(e.description)")
            } catch {
                throw EngineError("head '\(spec.name)' (\(spec.directory)): \(error)")
            }
        }
        try self.init(models: models, tokenizer: tokenizer, configuration: configuration)
    }

    public func head(named name: String) -> LoadedHead? { byName[name] }

    /// The (head, task) pairs a request asks for, or the error that stops it.
    func resolve(_ r: PipelineRequest) throws(PipelineError) -> [(LoadedHead, PipelineTask)] {
        func lookup(_ name: String) throws(PipelineError) -> LoadedHead {
            guard let h = byName[name] else {
                throw PipelineError(
                    .unknownHead, "unknown head '\(name.prefix(100))' (configured: \(heads.map(\.name).joined(separator: ", ")))")
            }
            return h
        }
        func check(_ h: LoadedHead, _ task: PipelineTask) throws(PipelineError) {
            guard h.serves(task) else {
                throw PipelineError(
                    .unsupportedTask,
                    """
                    head '\(h.name)' (\(h.model.kind.rawValue)) does not serve \(task.rawValue); it serves \
                    \(h.tasks.map(\.rawValue).joined(separator: ", "))
                    """
                )
            }
        }
        if let names = r.heads {
            var out: [(LoadedHead, PipelineTask)] = []
            for name in names {
                let h = try lookup(name)
                let task = r.task ?? h.tasks[0]
                try check(h, task)
                out.append((h, task))
            }
            return out
        }
        guard let task = r.task else { throw PipelineError(.missingField, "missing field 'task'") }
        if let name = r.head {
            let h = try lookup(name)
            try check(h, task)
            return [(h, task)]
        }
        let serving = heads.filter { $0.serves(task) }
        guard serving.count == 1 else {
            if serving.isEmpty { throw PipelineError(.unsupportedTask, "no configured head serves \(task.rawValue)") }
            throw PipelineError(
                .invalidRequest,
                "several heads serve \(task.rawValue) (\(serving.map(\.name).joined(separator: ", "))); name one with 'head'")
        }
        return [(serving[0], task)]
    }
}

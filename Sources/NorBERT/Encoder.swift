import Foundation
import Tensors

/// Lane-local buffers of the encoder, reused across calls (grown, never shrunk).
public final class EncoderWorkspace {
    /// The residual stream [tokens, hidden] and the embeddings it mixes with in every layer.
    var hidden = Scratch(), embedded = Scratch()
    /// Two [block rows, hidden] buffers that change role within a row block, each dead before its
    /// next use: the value input, then the MLP input; the q/k input, then the MLP output.
    var valueThenMLPInput = Scratch(), qkInputThenMLPOutput = Scratch()
    /// For every row: queries and keys [tokens, 2·heads·dqk], values [tokens, heads·dv] and the
    /// attention output [tokens, heads·dv]; per row block: its projection [block rows, hidden].
    var qk = Scratch(), v = Scratch(), attn = Scratch(), proj = Scratch()
    /// Layer 0's values (the reference's `v1`), mixed into the values of every later layer.
    var firstLayerValues = Scratch()
    var up = Scratch(), act = Scratch()
    var attention = AttentionScratch()
    var x16 = BF16Scratch()
    var longRotary: [Double: RotaryTable] = [:]
    public init() {}
}

/// The output of an encoder pass: rows of the packed batch.
public struct EncoderOutput: Sendable {
    /// [total tokens, hidden] last layer output (the reference's `last_hidden_state`, unpadded).
    public var lastHiddenState: Tensor
    /// hidden_states.0 (embedding output) … hidden_states.<num_layers>, each [total tokens, hidden], when asked for.
    public var hiddenStates: [Tensor]?
}

/// The NorBERT 4 encoder: embedding and layers, weights shared read-only by every lane.
/// Ported from the reference `Embedding`, `Layer`, `SelfAttention` and `FeedForward` (eager path)
/// of LTG's modeling_gptbert.py; see Tests/Fixtures/norbert4-tiny/README.md for the semantics.
public final class Encoder: Sendable {
    public let config: NorBERTConfig
    /// LayerNorm(word_embedding[v]) × (word_scale + 1) for every token id v: the whole embedding
    /// module depends on weights only, so it is a table lookup at run time.
    let embeddingTable: FloatBuffer
    public let layers: [LayerWeights]
    let rotaryLocal: RotaryTable
    let rotaryGlobal: RotaryTable
    let eps: Float
    /// The bf16 GEMM of the projections and the MLP, or nil: float32.
    public let bf16: BF16GEMM?
    public var precision: Precision { bf16 == nil ? .float32 : .bf16 }
    /// The GEMM of the float32 weight GEMMs (weights packed for it once here; unused in bf16).
    public let weightGEMM: WeightGEMM

    /// `bf16`: run the weight GEMMs with bfloat16 inputs through it (weights converted once here).
    /// `gemm`: our packed GEMM or OpenBLAS for float32 (default: `WeightGEMM.preferred()`).
    public init(_ source: any WeightSource, config c: NorBERTConfig, bf16: BF16GEMM? = nil, gemm: WeightGEMM? = nil) throws {
        config = c
        self.bf16 = bf16
        let gemm = gemm ?? WeightGEMM.preferred()
        weightGEMM = gemm
        eps = Float(c.layerNormEps)
        let h = c.hiddenSize
        let words = try source.floats("embedding.word_embedding.weight", shape: [c.vocabSize, h])
        let gain = try source.floats("embedding.word_scale", shape: [h]).map { $0 + 1 }
        let table = FloatBuffer(count: c.vocabSize * h)
        table.pointer.update(from: words, count: words.count)
        gain.withUnsafeBufferPointer { g in
            Vector.layerNorm(
                table.pointer, ldo: h, table.pointer, ldx: h, rows: c.vocabSize, cols: h, eps: Float(c.layerNormEps), gain: g.baseAddress)
        }
        embeddingTable = table
        layers = try (0..<c.numLayers).map {
            try LayerWeights(source, config: c, index: $0, bf16: bf16, gemm: gemm)
        }
        let positions = min(max(c.maxSequenceLength, 1), 1 << 16)
        rotaryLocal = RotaryTable(theta: NorBERTConfig.localRopeTheta, headDim: c.queryKeyHeadSize, positions: positions)
        rotaryGlobal = RotaryTable(theta: NorBERTConfig.globalRopeTheta, headDim: c.queryKeyHeadSize, positions: positions)
    }

    /// Bytes of weights held (shared by all lanes): float32, or bf16 for the weight GEMMs in bf16.
    public var byteCount: Int { embeddingTable.byteCount + layers.reduce(0) { $0 + $1.byteCount } }

    /// Checks every id is inside the vocabulary.
    public func validate(_ batch: PackedBatch) throws {
        let v = Int32(config.vocabSize)
        if let bad = batch.unrepresentableId {
            throw NorBERTError.invalidInput("token id \(bad) is outside the vocabulary (0..<\(v))")
        }
        if let bad = batch.tokens.first(where: { $0 < 0 || $0 >= v }) {
            throw NorBERTError.invalidInput("token id \(bad) is outside the vocabulary (0..<\(v))")
        }
        for s in 0..<batch.count where batch.length(s) == 0 {
            throw NorBERTError.invalidInput("sequence \(s) is empty")
        }
    }

    /// Tokens per sub-pass: without key/value caches, a batch of more tokens runs as consecutive
    /// sub-passes of whole sequences (`PackedBatch.groups`), each through every layer. Attention
    /// never crosses a sequence and every other step is per row, so the result is the same row
    /// for row; but a sub-pass's activations stay in the caches between layers, where a whole
    /// batch's (~5 KB per token at xsmall) spill to memory: measured +2–14% tokens/s on two lanes
    /// at xsmall (docs/performance.md, "Sub-passes"). `NORBERT_SUB_PASS_TOKENS` overrides it (for
    /// measuring; 0 or less = one pass; unset or not a number = 512).
    public static let subPassTokens: Int = ProcessInfo.processInfo.environment["NORBERT_SUB_PASS_TOKENS"].flatMap { Int($0) } ?? 512

    /// Runs the encoder over a packed batch. `causal` selects the causal LM's window rule;
    /// `caches` (one per sequence) continues sequences whose earlier tokens were already run (in
    /// one pass); without, the batch runs in sub-passes of at most `subPassTokens` tokens (0 or
    /// less: one pass).
    public func forward(
        _ batch: PackedBatch, causal: Bool = false, hiddenStates: Bool = false,
        caches: [KVCache]? = nil, workspace ws: EncoderWorkspace, subPassTokens: Int = Encoder.subPassTokens
    ) throws -> EncoderOutput {
        try validate(batch)
        if let caches, caches.count != batch.count {
            throw NorBERTError.invalidInput("\(caches.count) caches for \(batch.count) sequences")
        }
        let n = batch.totalTokens, h = config.hiddenSize
        let groups = caches == nil && subPassTokens > 0 ? batch.groups(ofAtMost: subPassTokens) : [0..<batch.count]
        // The last hidden state and (when asked) the state before each layer and after the last.
        var last = [Float](repeating: 0, count: n * h)
        var states: [[Float]]? = hiddenStates ? Array(repeating: last, count: layers.count + 1) : nil
        for group in groups {
            let sub = groups.count == 1 ? batch : batch.slice(group)
            let row0 = batch.offsets[group.lowerBound], rows = sub.totalTokens
            func keep(_ source: UnsafePointer<Float>, _ into: inout [Float]) {
                into.withUnsafeMutableBufferPointer { ($0.baseAddress! + row0 * h).update(from: source, count: rows * h) }
            }
            pass(sub, causal: causal, caches: caches, ws: ws) { index, state in
                if states != nil { keep(state, &states![index]) }
            }
            keep(ws.hidden.pointer, &last)
        }
        if let caches { for (s, cache) in caches.enumerated() { cache.length += batch.length(s) } }
        return EncoderOutput(
            lastHiddenState: Tensor(shape: [n, h], storage: last),
            hiddenStates: states?.map { Tensor(shape: [n, h], storage: $0) })
    }

    /// One pass of every layer over `batch`, in place on ws.hidden; `state(i, hidden)` sees the
    /// residual stream before layer i and (i = layers.count) after the last.
    private func pass(
        _ batch: PackedBatch, causal: Bool, caches: [KVCache]?, ws: EncoderWorkspace,
        state: (Int, UnsafePointer<Float>) -> Void
    ) {
        let n = batch.totalTokens, h = config.hiddenSize
        let hid = ws.hidden.reserve(n * h), emb = ws.embedded.reserve(n * h)
        for (row, id) in batch.tokens.enumerated() {
            (emb + row * h).update(from: embeddingTable.pointer + Int(id) * h, count: h)
        }
        hid.update(from: emb, count: n * h)
        state(0, hid)
        for (index, layer) in layers.enumerated() {
            runLayer(layer, batch: batch, causal: causal, caches: caches, ws: ws)
            state(index + 1, ws.hidden.pointer)
        }
    }

    /// The rotary table covering `positions`. Past the shared table a lane-local one is built, and
    /// it grows geometrically (at least doubling), so decoding one token at a time past it rebuilds
    /// it O(log n) times instead of at every step.
    func rotary(for layer: LayerWeights, positions: Int, ws: EncoderWorkspace) -> RotaryTable {
        let table = layer.isGlobal ? rotaryGlobal : rotaryLocal
        if positions <= table.count { return table }
        let previous = ws.longRotary[table.theta]
        if let long = previous, long.count >= positions { return long }
        let grown = 2 * max(previous?.count ?? 0, table.count)
        let long = RotaryTable(theta: table.theta, headDim: config.queryKeyHeadSize, positions: max(positions, grown))
        ws.longRotary[table.theta] = long
        return long
    }
}

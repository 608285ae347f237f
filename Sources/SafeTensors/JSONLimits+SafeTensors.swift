import Wire

extension JSONLimits {
    /// safetensors headers and index files: tensors and metadata are looked up by `String`, so two
    /// keys it could not tell apart (NFC and NFD spellings) are duplicates; no byte order mark
    /// (the Rust reader refuses one too); strings bounded by the header size limit only.
    static let safeTensors = JSONLimits(
        maxDepth: 64, maxStringBytes: Int.max, allowsByteOrderMark: false,
        keyIdentity: .canonical)
}

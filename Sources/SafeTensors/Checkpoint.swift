import Tensors
import Wire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A checkpoint folder in Hugging Face layout: either one `model.safetensors`, or shards listed
/// by `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor: shard}}`).
///
/// - If both files exist, `model.safetensors` wins (as in transformers).
/// - Shard names are file names relative to the folder: names that are empty, contain "/",
///   "\\", ".." or NUL are rejected (`.invalidIndex`).
/// - A tensor listed in the index but absent from its shard is an error (`.missingTensor`).
/// - Tensors present in a shard but not listed in the index are ignored: `names`, `contains`
///   and every accessor only see the index's tensors.
public struct Checkpoint: Sendable {
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"
    /// Largest accepted index file.
    public static let maximumIndexSize = 100_000_000

    /// The folder as given to `open`.
    public let directory: String
    /// The opened weight files (one, or every distinct shard in name order).
    public let files: [SafeTensorsFile]
    /// Index metadata (scalars rendered as text, e.g. "total_size": "1205884"), or the single
    /// file's `__metadata__`.
    public let metadata: [String: String]
    /// All tensor names, sorted.
    public let names: [String]
    private let location: [String: Int]  // tensor name -> index into files

    public static func open(directory: String) throws -> Checkpoint {
        let single = join(directory, singleFileName)
        let index = join(directory, indexFileName)
        if isRegularFile(single) {
            let file = try SafeTensorsFile(path: single)
            var location: [String: Int] = [:]
            for name in file.names { location[name] = 0 }
            return Checkpoint(
                directory: directory, files: [file], metadata: file.metadata,
                names: file.names.sorted(), location: location)
        }
        if isRegularFile(index) {
            return try openSharded(directory: directory, indexPath: index)
        }
        throw SafeTensorsError(
            .io, file: directory,
            "no \(singleFileName) or \(indexFileName) in this folder")
    }

    private static func openSharded(directory: String, indexPath: String) throws -> Checkpoint {
        func invalid(_ message: String, tensor: String? = nil) -> SafeTensorsError {
            SafeTensorsError(.invalidIndex, file: indexPath, tensor: tensor, message)
        }
        let bytes = try readWholeFile(indexPath, limit: maximumIndexSize)
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes, limits: .safeTensors)
        } catch {
            throw invalid("not valid JSON: \(error.message) at byte \(error.offset)")
        }
        guard case let .object(top) = json else {
            throw invalid("index is \(json.typeName), not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let meta = top.first(where: { $0.0 == "metadata" })?.1 {
            switch meta {
            case let .object(pairs):
                for (key, value) in pairs {
                    if let text = value.scalarText { metadata[key] = text }
                }
            case .null: break
            default: throw invalid("\"metadata\" is \(meta.typeName), not an object")
            }
        }
        guard let weightMapValue = top.first(where: { $0.0 == "weight_map" })?.1 else {
            throw invalid("index has no \"weight_map\"")
        }
        guard case let .object(weightMap) = weightMapValue else {
            throw invalid("\"weight_map\" is \(weightMapValue.typeName), not an object")
        }
        guard !weightMap.isEmpty else { throw invalid("\"weight_map\" is empty") }

        var shardOfTensor: [(tensor: String, shard: String)] = []
        var firstTensorOfShard: [String: String] = [:]
        for (tensor, value) in weightMap {
            guard case let .string(shard) = value else {
                throw invalid("shard is \(value.typeName), not a file name", tensor: tensor)
            }
            guard isSafeShardName(shard) else {
                throw invalid("shard name \"\(shard)\" is not a plain file name in the checkpoint folder", tensor: tensor)
            }
            shardOfTensor.append((tensor, shard))
            if firstTensorOfShard[shard] == nil { firstTensorOfShard[shard] = tensor }
        }

        let shardNames = firstTensorOfShard.keys.sorted()
        var files: [SafeTensorsFile] = []
        var shardIndex: [String: Int] = [:]
        for shard in shardNames {
            let path = join(directory, shard)
            do {
                files.append(try SafeTensorsFile(path: path))
            } catch let error as SafeTensorsError where error.kind == .io {
                throw SafeTensorsError(
                    .io, file: path, tensor: firstTensorOfShard[shard],
                    "shard listed in \(indexFileName): \(error.message)")
            }
            shardIndex[shard] = files.count - 1
        }

        var location: [String: Int] = [:]
        location.reserveCapacity(shardOfTensor.count)
        for (tensor, shard) in shardOfTensor {
            guard let i = shardIndex[shard] else { continue }
            guard files[i].contains(tensor) else {
                throw SafeTensorsError(
                    .missingTensor, file: files[i].path, tensor: tensor,
                    "listed in \(indexFileName) but not in this shard")
            }
            location[tensor] = i
        }
        return Checkpoint(
            directory: directory, files: files, metadata: metadata,
            names: location.keys.sorted(), location: location)
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    public func info(_ name: String) -> SafeTensorInfo? {
        guard let i = location[name] else { return nil }
        return files[i].info(name)
    }

    /// The name (not path) of the file that holds the tensor, e.g. "model-00001-of-00003.safetensors".
    public func fileName(of name: String) -> String? {
        guard let i = location[name] else { return nil }
        return lastPathComponent(files[i].path)
    }

    /// The opened file that holds the tensor.
    public func file(of name: String) -> SafeTensorsFile? {
        guard let i = location[name] else { return nil }
        return files[i]
    }

    private func holder(_ name: String) throws(SafeTensorsError) -> SafeTensorsFile {
        guard let i = location[name] else {
            throw SafeTensorsError(.missingTensor, file: directory, tensor: name, "no such tensor in this checkpoint")
        }
        return files[i]
    }

    public func floats(_ name: String) throws -> [Float] {
        try holder(name).floats(name)
    }

    public func int64s(_ name: String) throws -> [Int64] {
        try holder(name).int64s(name)
    }

    public func tensor(_ name: String) throws -> Tensor {
        try holder(name).tensor(name)
    }

    /// The tensor, which must have exactly the `expected` shape (`.shapeMismatch` naming the
    /// file, the tensor and both shapes otherwise; `.missingTensor` if absent).
    public func tensor(_ name: String, shape expected: [Int]) throws -> Tensor {
        let file = try holder(name)
        if let actual = file.info(name)?.shape, actual != expected {
            throw SafeTensorsError(
                .shapeMismatch, file: file.path, tensor: name,
                "expected shape \(shapeText(expected)), file has \(shapeText(actual))")
        }
        return try file.tensor(name)
    }

    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try holder(name).withRawBytes(name, body)
    }
}

// MARK: - Paths and small file helpers

func join(_ directory: String, _ name: String) -> String {
    if directory.isEmpty { return name }
    return directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

func lastPathComponent(_ path: String) -> String {
    path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
}

func isSafeShardName(_ name: String) -> Bool {
    !name.isEmpty && !name.contains("/") && !name.contains("\\") && !name.contains("..")
        && !name.utf8.contains(0) && name != "."
}

func isRegularFile(_ path: String) -> Bool {
    var status = stat()
    guard stat(path, &status) == 0 else { return false }
    return (Int(status.st_mode) & Int(S_IFMT)) == Int(S_IFREG)
}

/// Reads a whole (small) file; `.io` on failure, `.invalidIndex` if larger than `limit`.
func readWholeFile(_ path: String, limit: Int) throws(SafeTensorsError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // O_NONBLOCK: a FIFO must not hang us
    guard fd >= 0 else { throw SafeTensorsError(.io, file: path, "cannot open: \(errnoText())") }
    defer { close(fd) }
    var status = stat()
    guard fstat(fd, &status) == 0 else { throw SafeTensorsError(.io, file: path, "cannot stat: \(errnoText())") }
    let size = Int(status.st_size)
    guard size <= limit else {
        throw SafeTensorsError(.invalidIndex, file: path, "file is \(size) bytes, more than the \(limit)-byte limit")
    }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { buffer in
            read(fd, buffer.baseAddress.map { $0 + done }, size - done)
        }
        if n < 0 {
            if errno == EINTR { continue }
            throw SafeTensorsError(.io, file: path, "read failed: \(errnoText())")
        }
        if n == 0 { break }
        done += n
    }
    return Array(bytes[0..<done])
}

import Foundation
import Tensors
import Testing

@testable import SafeTensors

/// Every malformed file must produce a precise error (never a crash or an out-of-bounds read).
@Suite("Hostile files")
struct HostileFileTests {
    /// Writes `bytes` as hostile.safetensors in a fresh folder and expects `SafeTensorsFile(path:)` to fail.
    @discardableResult
    func expectOpenFails(
        _ bytes: [UInt8], _ kind: SafeTensorsError.Kind, tensor: String?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> SafeTensorsError? {
        let dir = try TempDir()
        let path = try dir.write("hostile.safetensors", bytes)
        return expectError(kind, file: path, tensor: tensor, sourceLocation: sourceLocation) {
            _ = try SafeTensorsFile(path: path)
        }
    }

    func entry(_ name: String = "t", dtype: String = "\"F32\"", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        "\"\(name)\":{\"dtype\":\(dtype),\"shape\":\(shape),\"data_offsets\":\(offsets)}"
    }

    @Test func emptyFile() throws {
        try expectOpenFails([], .truncated, tensor: nil)
    }

    @Test func shorterThanLengthPrefix() throws {
        try expectOpenFails([1, 0, 0, 0, 0], .truncated, tensor: nil)
    }

    @Test func headerLengthBeyondFile() throws {
        let error = try expectOpenFails(rawFile(header: "{}", declaredLength: 64), .truncated, tensor: nil)
        #expect(error?.message.contains("64") == true)
    }

    @Test(arguments: [UInt64(100_000_001), 1 << 40, UInt64.max])
    func absurdHeaderLength(_ length: UInt64) throws {
        try expectOpenFails(rawFile(header: "{}", declaredLength: length), .invalidHeader, tensor: nil)
    }

    @Test(arguments: ["", "{", "not json", "{\"t\":}", "{\"a\":1,}", "{} x", "{\"a\":01}", "{'a':1}", "\u{FEFF}{}"])
    func headerNotJSON(_ header: String) throws {
        try expectOpenFails(rawFile(header: header), .invalidHeader, tensor: nil)
    }

    @Test func headerNotUTF8() throws {
        let bytes = Array("{\"".utf8) + [0xFF, 0xFE] + Array("\":{}}".utf8)
        try expectOpenFails(rawFile(headerBytes: bytes), .invalidHeader, tensor: nil)
        // A lone surrogate escape cannot be UTF-8 either.
        try expectOpenFails(rawFile(header: "{\"__metadata__\":{\"a\":\"\\ud800\"}}"), .invalidHeader, tensor: nil)
    }

    @Test(arguments: ["[]", "\"x\"", "3", "null", "true"])
    func headerNotObject(_ header: String) throws {
        try expectOpenFails(rawFile(header: header), .invalidHeader, tensor: nil)
    }

    @Test func deeplyNestedHeader() throws {
        let header = "{\"__metadata__\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        try expectOpenFails(rawFile(header: header), .invalidHeader, tensor: nil)
    }

    @Test func duplicateTensorName() throws {
        let header = "{" + entry() + "," + entry(offsets: "[8,16]") + "}"
        try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 16)), .invalidHeader, tensor: nil)
    }

    /// Duplicate keys are refused wherever they are (a reader keeping the first value and one keeping
    /// the last would see different files), compared after unescaping, named in the error (cut at 100
    /// Unicode scalars).
    @Test func duplicateKeysNamedInTheError() throws {
        func message(_ header: String, data: Int = 0) throws -> String {
            let error = try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: data)), .invalidHeader, tensor: nil)
            return error?.message ?? ""
        }
        // "\u0074" is "t".
        var m = try message("{" + entry() + "," + entry("\\u0074", offsets: "[8,16]") + "}", data: 16)
        #expect(m.contains(#"duplicate key "t""#), "\(m)")
        m = try message(#"{"__metadata__":{"format":"pt","format":"np"}}"#)
        #expect(m.contains(#"duplicate key "format""#), "\(m)")
        // Keys the module's String lookups cannot tell apart (NFC "é" and NFD "e\u{301}").
        m = try message(#"{"__metadata__":{"\u00e9":"1","e\u0301":"2"}}"#)
        #expect(m.contains("duplicate key"), "\(m)")
        // A long key is cut at 100 scalars: an 8 KB key, or one Character of 5,000 combining marks.
        let long = "k" + String(repeating: "x", count: 8_000)
        m = try message("{\"__metadata__\":{\"\(long)\":\"1\",\"\(long)\":\"2\"}}")
        #expect(m.contains("duplicate key \"k" + String(repeating: "x", count: 99) + "\"…"), "\(m.prefix(300))")
        #expect(m.utf8.count < 300, "\(m.prefix(300))")
        let zalgo = "a" + String(repeating: "\u{301}", count: 5_000)
        m = try message("{\"__metadata__\":{\"\(zalgo)\":\"1\",\"\(zalgo)\":\"2\"}}")
        #expect(m.contains("duplicate key") && m.utf8.count < 400, "\(m.prefix(400))")
        // Escapes in the key are shown escaped.
        m = try message(#"{"__metadata__":{"a\nb":"1","a\nb":"2"}}"#)
        #expect(m.contains(#"duplicate key "a\nb""#), "\(m)")
    }

    /// 200,000 keys (a hash set, not a scan per key): a duplicate at the end is found quickly.
    @Test func duplicateAfterManyKeys() throws {
        var header = "{\"__metadata__\":{"
        for k in 0..<200_000 { header += "\"k\(k)\":\"\"," }
        header += "\"k123456\":\"\"}}"
        let started = ContinuousClock.now
        let error = try expectOpenFails(rawFile(header: header), .invalidHeader, tensor: nil)
        #expect(error?.message.contains(#"duplicate key "k123456""#) == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func metadataNotStrings() throws {
        let header = "{\"__metadata__\":{\"format\":1}," + entry() + "}"
        try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .invalidHeader, tensor: nil)
        try expectOpenFails(rawFile(header: "{\"__metadata__\":[]}"), .invalidHeader, tensor: nil)
    }

    @Test func entryNotObject() throws {
        try expectOpenFails(rawFile(header: "{\"weights\":[1,2]}"), .invalidHeader, tensor: "weights")
    }

    @Test(arguments: ["dtype", "shape", "data_offsets"])
    func entryMissingField(_ field: String) throws {
        var fields = ["\"dtype\":\"F32\"", "\"shape\":[2]", "\"data_offsets\":[0,8]"]
        fields.removeAll { $0.hasPrefix("\"\(field)\"") }
        let header = "{\"enc.w\":{" + fields.joined(separator: ",") + "}}"
        let error = try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .invalidHeader, tensor: "enc.w")
        #expect(error?.message.contains(field) == true)
    }

    @Test(arguments: [
        ("1", "[2]", "[0,8]"),  // dtype not a string
        ("\"F32\"", "\"2\"", "[0,8]"),  // shape not an array
        ("\"F32\"", "[\"2\"]", "[0,8]"),  // shape element not a number
        ("\"F32\"", "[2.0]", "[0,8]"),  // shape element not an integer
        ("\"F32\"", "[2e0]", "[0,8]"),  // exponent form is not an integer literal
        ("\"F32\"", "[2]", "{}"),  // data_offsets not an array
        ("\"F32\"", "[2]", "[0,8,16]"),  // three offsets
        ("\"F32\"", "[2]", "[8]"),  // one offset
        ("\"F32\"", "[2]", "[-8,0]"),  // negative offset
        ("\"F32\"", "[2]", "[0,8.5]"),  // fractional offset
        ("\"F32\"", "[2]", "[0,99999999999999999999999]"),  // offset beyond Int
        ("\"F32\"", "[null]", "[0,8]"),
    ])
    func entryWrongTypes(_ dtype: String, _ shape: String, _ offsets: String) throws {
        let header = "{" + entry("layer.0.w", dtype: dtype, shape: shape, offsets: offsets) + "}"
        try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 16)), .invalidHeader, tensor: "layer.0.w")
    }

    @Test func negativeDimension() throws {
        let header = "{" + entry("w", shape: "[-2,-1]", offsets: "[0,8]") + "}"
        let error = try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .invalidHeader, tensor: "w")
        #expect(error?.message.contains("-2") == true)
    }

    @Test func dimensionBeyondInt() throws {
        let header = "{" + entry("w", shape: "[99999999999999999999]", offsets: "[0,8]") + "}"
        try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .invalidHeader, tensor: "w")
    }

    @Test func elementCountOverflows() throws {
        let header = "{" + entry("w", shape: "[4294967296,4294967296]", offsets: "[0,8]") + "}"
        try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .invalidHeader, tensor: "w")
        // Element count fits, byte count does not.
        let bytes = "{" + entry("w", shape: "[2305843009213693952,2]", offsets: "[0,8]") + "}"
        try expectOpenFails(rawFile(header: bytes, data: .init(repeating: 0, count: 8)), .invalidHeader, tensor: "w")
    }

    @Test func unknownDType() throws {
        let header = "{" + entry("w", dtype: "\"F128\"") + "}"
        let error = try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .unknownDType, tensor: "w")
        #expect(error?.message.contains("F128") == true)
        #expect(error?.description.contains("F128") == true)
        // Case matters.
        try expectOpenFails(
            rawFile(header: "{" + entry("w", dtype: "\"f32\"") + "}", data: .init(repeating: 0, count: 8)),
            .unknownDType, tensor: "w")
    }

    @Test func invertedOffsets() throws {
        let header = "{" + entry("w", shape: "[0]", offsets: "[8,0]") + "}"
        try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .offsetsOutOfBounds, tensor: "w")
    }

    @Test func offsetsBeyondDataSection() throws {
        let header = "{" + entry("a", offsets: "[0,8]") + "," + entry("encoder.layers.0.lambdas", offsets: "[8,16]") + "}"
        let error = try expectOpenFails(
            rawFile(header: header, data: .init(repeating: 0, count: 12)),
            .offsetsOutOfBounds, tensor: "encoder.layers.0.lambdas")
        #expect(error?.message.contains("12-byte data section") == true)
        // An end near Int.max must not overflow anything.
        let huge = "{" + entry("a", shape: "[2305843009213693951]", offsets: "[8,9223372036854775804]") + "}"
        try expectOpenFails(rawFile(header: huge, data: .init(repeating: 0, count: 12)), .offsetsOutOfBounds, tensor: "a")
    }

    @Test func byteCountDisagreesWithShape() throws {
        let header = "{" + entry("w", shape: "[3]", offsets: "[0,8]") + "}"
        let error = try expectOpenFails(rawFile(header: header, data: .init(repeating: 0, count: 8)), .shapeMismatch, tensor: "w")
        #expect(error?.message.contains("12") == true)
        // Sub-byte dtypes must fill whole bytes.
        let f4 = "{" + entry("q", dtype: "\"F4\"", shape: "[3]", offsets: "[0,2]") + "}"
        try expectOpenFails(rawFile(header: f4, data: [0, 0]), .shapeMismatch, tensor: "q")
    }

    @Test func overlappingTensors() throws {
        let header = "{" + entry("first", offsets: "[0,8]") + "," + entry("second", offsets: "[4,12]") + "}"
        let error = try expectOpenFails(
            rawFile(header: header, data: .init(repeating: 0, count: 12)),
            .overlappingTensors, tensor: "second")
        #expect(error?.description.contains("'first'") == true)
        // A tensor inside another one.
        let nested = "{" + entry("outer", shape: "[4]", offsets: "[0,16]") + "," + entry("inner", shape: "[1]", offsets: "[4,8]") + "}"
        try expectOpenFails(rawFile(header: nested, data: .init(repeating: 0, count: 16)), .overlappingTensors, tensor: "inner")
        // Identical ranges.
        let same = "{" + entry("x") + "," + entry("y") + "}"
        try expectOpenFails(rawFile(header: same, data: .init(repeating: 0, count: 8)), .overlappingTensors, tensor: "y")
    }

    @Test func notAFile() throws {
        let dir = try TempDir()
        expectError(.io, file: dir.file("missing.safetensors"), tensor: nil) {
            _ = try SafeTensorsFile(path: dir.file("missing.safetensors"))
        }
        expectError(.io, file: dir.path, tensor: nil) { _ = try SafeTensorsFile(path: dir.path) }
        // A FIFO is rejected without blocking on open.
        let fifo = dir.file("fifo.safetensors")
        #expect(mkfifo(fifo, 0o600) == 0)
        expectError(.io, file: fifo, tensor: nil) { _ = try SafeTensorsFile(path: fifo) }
    }

    /// A real checkpoint cut inside its data section names the first tensor that no longer fits.
    @Test func truncatedRealCheckpoint() throws {
        let source = fixture("base/model.safetensors")
        let original = try SafeTensorsFile(path: source)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
        let keptData = 600_000
        let expected = try #require(original.infos.first { $0.dataOffsets.upperBound > keptData })
        let error = try expectOpenFails(
            Array(bytes[0..<(8 + original.headerByteCount + keptData)]),
            .offsetsOutOfBounds, tensor: expected.name)
        #expect(error?.message.contains("\(keptData)-byte data section") == true)
        // Cut inside the header instead.
        try expectOpenFails(Array(bytes[0..<100]), .truncated, tensor: nil)
    }

    /// Valid edge cases are accepted: empty header, scalar, zero-size tensors, unaligned data,
    /// gaps and trailing bytes.
    @Test func edgeCasesAccepted() throws {
        let dir = try TempDir()
        let empty = try SafeTensorsFile(path: try dir.write("empty.safetensors", rawFile(header: "{}  ")))
        #expect(empty.names.isEmpty && empty.metadata.isEmpty)

        let header =
            "{"
            + [
                entry("byte", dtype: "\"U8\"", shape: "[1]", offsets: "[0,1]"),
                entry("scalar", shape: "[]", offsets: "[1,5]"),
                entry("nothing", shape: "[0,3]", offsets: "[5,5]"),
                entry("alsoNothing", dtype: "\"I64\"", shape: "[2,0]", offsets: "[5,5]"),
                entry("gapped", shape: "[1]", offsets: "[7,11]"),
            ].joined(separator: ",") + ",\"__metadata__\":{\"k\":\"v \\\"q\\\" \\u00f8\"}}"
        let data: [UInt8] = [9] + floatBytes([2.5]) + [0, 0] + floatBytes([-1]) + [1, 2, 3]
        let file = try SafeTensorsFile(path: try dir.write("edge.safetensors", rawFile(header: header, data: data)))
        #expect(file.names == ["byte", "scalar", "nothing", "alsoNothing", "gapped"])
        #expect(file.metadata == ["k": "v \"q\" ø"])
        #expect(try file.floats("scalar") == [2.5])
        #expect(try file.tensor("scalar").shape == [])
        #expect(try file.floats("nothing").isEmpty)
        #expect(try file.tensor("nothing").shape == [0, 3])
        #expect(try file.int64s("alsoNothing").isEmpty)
        #expect(try file.floats("gapped") == [-1])
        #expect(try file.withRawBytes("nothing") { $0.count } == 0)
    }

    /// Every truncation and many single-byte corruptions of a small valid file either open or
    /// throw SafeTensorsError; reads of whatever opens stay in bounds.
    @Test func corruptionsNeverCrash() throws {
        let header =
            "{\"__metadata__\":{\"format\":\"pt\"}," + entry("a", shape: "[2]", offsets: "[0,8]") + ","
            + entry("b", dtype: "\"BF16\"", shape: "[2,2]", offsets: "[8,16]") + ","
            + entry("c", dtype: "\"I64\"", shape: "[1]", offsets: "[16,24]") + "}"
        let valid = rawFile(header: header, data: .init(repeating: 0x3F, count: 24))
        let dir = try TempDir()
        var variants: [[UInt8]] = (0..<valid.count).map { Array(valid[0..<$0]) }
        var generator = SplitMix64(seed: 42)
        for _ in 0..<1500 {
            var bytes = valid
            let position = Int(generator.next() % UInt64(bytes.count))
            bytes[position] = UInt8(truncatingIfNeeded: generator.next())
            variants.append(bytes)
        }
        var opened = 0
        for (i, bytes) in variants.enumerated() {
            let path = try dir.write("v\(i).safetensors", bytes)
            do {
                let file = try SafeTensorsFile(path: path)
                opened += 1
                for name in file.names {
                    let info = try #require(file.info(name))
                    #expect(info.dataOffsets.upperBound <= file.dataSectionByteCount)
                    _ = try? file.floats(name)
                    _ = try? file.int64s(name)
                    #expect(try file.withRawBytes(name) { $0.count } == info.byteCount)
                }
            } catch is SafeTensorsError {
            }
            try FileManager.default.removeItem(atPath: path)
        }
        #expect(opened > 0)
    }
}

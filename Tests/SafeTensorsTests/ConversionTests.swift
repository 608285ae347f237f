import Foundation
import Testing

@testable import SafeTensors

@Suite("dtype conversion")
struct ConversionTests {
    /// All 65536 binary16 patterns agree with Swift's Float16 (NaNs: payload kept, not quieted).
    @Test func halfConversionIsExactForEveryBitPattern() {
        var mismatches: [String] = []
        for bits in 0...UInt16.max {
            let ours = FloatBits.float(fromHalf: bits)
            let reference = Float(Float16(bitPattern: bits))
            let ok: Bool
            if reference.isNaN {
                let expected = UInt32(bits & 0x8000) << 16 | 0x7F80_0000 | UInt32(bits & 0x03FF) << 13
                ok = ours.bitPattern == expected
            } else {
                ok = ours.bitPattern == reference.bitPattern
            }
            if !ok { mismatches.append("0x\(String(bits, radix: 16)): \(ours) != \(reference)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(5))")
    }

    /// A hand-written F16 file with known bit patterns, placed at an odd (unaligned) offset.
    @Test func f16FileWithSpecialValues() throws {
        let cases: [(UInt16, UInt32)] = [
            (0x0000, 0x0000_0000),  // +0
            (0x8000, 0x8000_0000),  // -0
            (0x3C00, 0x3F80_0000),  // 1
            (0xC000, 0xC000_0000),  // -2
            (0x3555, 0x3EAA_A000),  // 0.333251953125
            (0x0001, 0x3380_0000),  // smallest subnormal 2^-24
            (0x8001, 0xB380_0000),  // -2^-24
            (0x03FF, 0x387F_C000),  // largest subnormal 1023 * 2^-24
            (0x0400, 0x3880_0000),  // smallest normal 2^-14
            (0x7BFF, 0x477F_E000),  // 65504
            (0x7C00, 0x7F80_0000),  // +inf
            (0xFC00, 0xFF80_0000),  // -inf
            (0x7E00, 0x7FC0_0000),  // quiet NaN
            (0x7C01, 0x7F80_2000),  // signalling NaN, payload 1 (kept as is)
            (0xFE01, 0xFFC0_2000),  // negative NaN with payload
        ]
        let n = cases.count
        let header = """
            {"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},\
            "h":{"dtype":"F16","shape":[\(n)],"data_offsets":[1,\(1 + 2 * n)]}}
            """
        let dir = try TempDir()
        let path = try dir.write("f16.safetensors", rawFile(header: header, data: [7] + littleEndianBytes(cases.map(\.0))))
        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["pad", "h"])
        let values = try file.floats("h")
        #expect(values.map(\.bitPattern) == cases.map(\.1))
        #expect(values[5] == 0x1p-24)
        #expect(values[7] == 1023 * 0x1p-24)
        #expect(values[10] == .infinity)
        #expect(try file.tensor("h").shape == [n])
        #expect(try file.int64s("pad") == [7])
    }

    @Test func bf16AndF64Files() throws {
        let bf16: [UInt16] = [0x3F80, 0xFF80, 0x7FC1, 0x0001, 0xC049]
        let f64: [Double] = [1.5, -0.1, 1e300, 1e-50, -.infinity, 3.4028235e38]
        let header = """
            {"b":{"dtype":"BF16","shape":[5],"data_offsets":[0,10]},\
            "d":{"dtype":"F64","shape":[2,3],"data_offsets":[10,58]}}
            """
        let data = littleEndianBytes(bf16) + littleEndianBytes(f64.map(\.bitPattern))
        let dir = try TempDir()
        let file = try SafeTensorsFile(path: try dir.write("x.safetensors", rawFile(header: header, data: data)))
        #expect(try file.floats("b").map(\.bitPattern) == bf16.map { UInt32($0) << 16 })
        let d = try file.floats("d")
        #expect(d[0] == 1.5)
        #expect(d[1] == Float(-0.1))
        #expect(d[2] == .infinity)
        #expect(d[3] == 0)
        #expect(d[4] == -.infinity)
        #expect(d[5] == .greatestFiniteMagnitude)
        #expect(try file.tensor("d").shape == [2, 3])
    }

    @Test func float8Files() throws {
        let e4m3: [UInt8] = [0x38, 0x7E, 0x7F, 0x01, 0xB8, 0x00, 0x80]
        let e5m2: [UInt8] = [0x3C, 0x7C, 0x01, 0xBC, 0x7F]
        let header = """
            {"a":{"dtype":"F8_E4M3","shape":[7],"data_offsets":[0,7]},\
            "b":{"dtype":"F8_E5M2","shape":[5],"data_offsets":[7,12]}}
            """
        let dir = try TempDir()
        let file = try SafeTensorsFile(path: try dir.write("f8.safetensors", rawFile(header: header, data: e4m3 + e5m2)))
        let a = try file.floats("a")
        #expect(a[0] == 1 && a[1] == 448 && a[2].isNaN && a[3] == 0x1p-9 && a[4] == -1)
        #expect(a[5].bitPattern == 0 && a[6].bitPattern == 0x8000_0000)
        let b = try file.floats("b")
        #expect(b[0] == 1 && b[1] == .infinity && b[2] == 0x1p-16 && b[3] == -1 && b[4].isNaN)
    }

    @Test func integerWidening() throws {
        let dir = try TempDir()
        var data: [UInt8] = []
        var entries: [String] = []
        func add(_ name: String, _ dtype: String, _ bytes: [UInt8], _ count: Int) {
            entries.append(
                "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(count)],\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}")
            data += bytes
        }
        add("i32", "I32", littleEndianBytes([Int32(-1), .max, .min]), 3)
        add("i16", "I16", littleEndianBytes([Int16.min, 5]), 2)
        add("i8", "I8", [0x80, 0x7F], 2)
        add("u8", "U8", [255, 0], 2)
        add("bool", "BOOL", [0, 1, 2], 3)
        add("u16", "U16", littleEndianBytes([UInt16.max]), 1)
        add("u32", "U32", littleEndianBytes([UInt32.max]), 1)
        add("u64", "U64", littleEndianBytes([UInt64(Int64.max), 0]), 2)
        add("u64big", "U64", littleEndianBytes([UInt64(0), UInt64(Int64.max) + 1]), 2)
        add("c64", "C64", floatBytes([1, 2]), 1)
        add("f4", "F4", [0x21], 2)
        let file = try SafeTensorsFile(
            path: try dir.write(
                "ints.safetensors",
                rawFile(header: "{" + entries.joined(separator: ",") + "}", data: data)))
        #expect(try file.int64s("i32") == [-1, Int64(Int32.max), Int64(Int32.min)])
        #expect(try file.int64s("i16") == [Int64(Int16.min), 5])
        #expect(try file.int64s("i8") == [-128, 127])
        #expect(try file.int64s("u8") == [255, 0])
        #expect(try file.int64s("bool") == [0, 1, 1])
        #expect(try file.int64s("u16") == [65535])
        #expect(try file.int64s("u32") == [4_294_967_295])
        #expect(try file.int64s("u64") == [.max, 0])
        expectError(.unsupportedDType, file: file.path, tensor: "u64big") { _ = try file.int64s("u64big") }
        expectError(.unsupportedDType, file: file.path, tensor: "c64") { _ = try file.floats("c64") }
        expectError(.unsupportedDType, file: file.path, tensor: "f4") { _ = try file.floats("f4") }
        expectError(.unsupportedDType, file: file.path, tensor: "i8") { _ = try file.tensor("i8") }
        #expect(file.info("f4")?.byteCount == 1)
        #expect(try file.withRawBytes("f4") { Array($0) } == [0x21])
    }

    @Test func bfloat16Rounding() {
        func round(_ bits: UInt32) -> UInt16 { FloatBits.bfloat16Bits(roundingToNearestEven: Float(bitPattern: bits)) }
        #expect(round(0x3F80_8000) == 0x3F80)  // tie, even stays
        #expect(round(0x3F81_8000) == 0x3F82)  // tie, odd rounds up
        #expect(round(0x3F80_8001) == 0x3F81)
        #expect(round(0x3F80_7FFF) == 0x3F80)
        #expect(round(0x7F7F_FFFF) == 0x7F80)  // overflows to inf
        #expect(Float(bitPattern: UInt32(round(0x7F80_0001)) << 16).isNaN)  // NaN stays NaN
        #expect(FloatBits.bfloat16Bits(truncating: Float(bitPattern: 0x3F81_FFFF)) == 0x3F81)
        #expect(FloatBits.float(fromBFloat16: 0x3F80) == 1)
    }
}

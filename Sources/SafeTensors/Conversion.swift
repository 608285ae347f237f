#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The element types of the safetensors format (names exactly as they appear in headers).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL
    case U64, U32, U16
    /// complex64: two float32 per element.
    case C64
    /// 8-bit floats: OCP E5M2, OCP E4M3 ("FN": no infinities, NaN = S.1111.111), E8M0 (scale exponents).
    case F8_E5M2, F8_E4M3, F8_E8M0
    /// Packed sub-byte floats (MX formats); a tensor's bit count must be a whole number of bytes.
    case F6_E2M3, F6_E3M2, F4

    /// Bits per element.
    public var bitSize: Int {
        switch self {
        case .F64, .I64, .U64, .C64: return 64
        case .F32, .I32, .U32: return 32
        case .F16, .BF16, .I16, .U16: return 16
        case .I8, .U8, .BOOL, .F8_E5M2, .F8_E4M3, .F8_E8M0: return 8
        case .F6_E2M3, .F6_E3M2: return 6
        case .F4: return 4
        }
    }

    /// Whether `floats` can convert this dtype to float32.
    public var convertsToFloat: Bool {
        switch self {
        case .F64, .F32, .F16, .BF16, .F8_E5M2, .F8_E4M3: return true
        default: return false
        }
    }

    /// Whether `int64s` can widen this dtype to Int64.
    public var convertsToInt64: Bool {
        switch self {
        case .I64, .I32, .I16, .I8, .U8, .BOOL, .U64, .U32, .U16: return true
        default: return false
        }
    }
}

/// Scalar conversions between float32 and the 16/8-bit float formats, exposed for callers that
/// emulate reduced precision (and for tests).
public enum FloatBits {
    /// IEEE binary16 bits to float32, exact for every input: subnormals become normal float32
    /// values, infinities stay infinite, NaN payloads are kept (shifted left by 13, never quieted).
    @inline(__always)
    public static func float(fromHalf h: UInt16) -> Float {
        Float(bitPattern: floatBits(fromHalf: h))
    }

    @inline(__always)
    static func floatBits(fromHalf h: UInt16) -> UInt32 {
        let shiftedExponent: UInt32 = 0x7C00 << 13
        var o = UInt32(h & 0x7FFF) << 13
        let exponent = o & shiftedExponent
        o &+= (127 - 15) << 23
        if exponent == shiftedExponent {
            o &+= (128 - 16) << 23  // Inf / NaN: exponent all ones
        } else if exponent == 0 {
            // Subnormal (or zero): renormalize exactly with one float subtraction.
            o &+= 1 << 23
            o = (Float(bitPattern: o) - Float(bitPattern: 113 << 23)).bitPattern
        }
        return o | (UInt32(h & 0x8000) << 16)
    }

    /// bfloat16 bits to float32 (exact: the bits shifted left by 16).
    @inline(__always)
    public static func float(fromBFloat16 b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// float32 to bfloat16 bits with round-to-nearest-even (what torch's `.to(torch.bfloat16)`
    /// does). NaN stays NaN (quiet bit forced so truncation cannot produce an infinity).
    @inline(__always)
    public static func bfloat16Bits(roundingToNearestEven f: Float) -> UInt16 {
        let bits = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// float32 to bfloat16 bits by truncation (dropping the low 16 bits).
    @inline(__always)
    public static func bfloat16Bits(truncating f: Float) -> UInt16 {
        UInt16(truncatingIfNeeded: f.bitPattern >> 16)
    }

    /// OCP float8 E5M2 bits to float32 (the top byte of a binary16).
    @inline(__always)
    public static func float(fromE5M2 b: UInt8) -> Float {
        float(fromHalf: UInt16(b) << 8)
    }

    /// OCP float8 E4M3 ("FN") bits to float32: bias 7, no infinities, S.1111.111 is NaN.
    public static func float(fromE4M3 b: UInt8) -> Float {
        let negative = b & 0x80 != 0
        let exponent = Int((b >> 3) & 0x0F)
        let mantissa = Int(b & 0x07)
        let magnitude: Float
        if exponent == 15 && mantissa == 7 {
            magnitude = .nan
        } else if exponent == 0 {
            magnitude = Float(mantissa) * 0x1p-9
        } else {
            magnitude = Float(8 + mantissa) * Float(sign: .plus, exponent: exponent - 10, significand: 1)
        }
        return negative ? -magnitude : magnitude
    }

    static let e4m3Table: [Float] = (0...255).map { float(fromE4M3: UInt8($0)) }
}

/// Tight conversion loops from little-endian file bytes (any alignment) to native buffers.
/// `source.count` must equal `destination.count * element size`; callers guarantee it.
enum Convert {
    static func f32(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        #if _endian(little)
            if let dst = destination.baseAddress, let src = source.baseAddress, !destination.isEmpty {
                memcpy(dst, src, destination.count * 4)
            }
        #else
            for i in 0..<destination.count {
                destination[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)))
            }
        #endif
    }

    static func bf16(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<destination.count {
            let b = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            destination[i] = Float(bitPattern: UInt32(b) << 16)
        }
    }

    static func f16(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<destination.count {
            let h = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            destination[i] = Float(bitPattern: FloatBits.floatBits(fromHalf: h))
        }
    }

    static func f64(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<destination.count {
            let d = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))
            destination[i] = Float(Double(bitPattern: d))
        }
    }

    static func e5m2(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<destination.count {
            destination[i] = Float(bitPattern: FloatBits.floatBits(fromHalf: UInt16(source[i]) << 8))
        }
    }

    static func e4m3(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>) {
        FloatBits.e4m3Table.withUnsafeBufferPointer { table in
            for i in 0..<destination.count {
                destination[i] = table[Int(source[i])]
            }
        }
    }

    static func i64(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Int64>) {
        #if _endian(little)
            if let dst = destination.baseAddress, let src = source.baseAddress, !destination.isEmpty {
                memcpy(dst, src, destination.count * 8)
            }
        #else
            for i in 0..<destination.count {
                destination[i] = Int64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
            }
        #endif
    }

    /// Widens any integer dtype except I64 (handled by `i64`). Returns the index of the first
    /// U64 value that does not fit in Int64, if any.
    static func widen(
        _ dtype: SafeTensorsDType, _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableBufferPointer<Int64>
    ) -> Int? {
        let n = destination.count
        switch dtype {
        case .I32:
            for i in 0..<n { destination[i] = Int64(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))) }
        case .U32:
            for i in 0..<n { destination[i] = Int64(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))) }
        case .I16:
            for i in 0..<n { destination[i] = Int64(Int16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self))) }
        case .U16:
            for i in 0..<n { destination[i] = Int64(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))) }
        case .I8:
            for i in 0..<n { destination[i] = Int64(Int8(bitPattern: source[i])) }
        case .U8:
            for i in 0..<n { destination[i] = Int64(source[i]) }
        case .BOOL:
            for i in 0..<n { destination[i] = source[i] == 0 ? 0 : 1 }
        case .U64:
            for i in 0..<n {
                let v = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))
                guard v <= UInt64(Int64.max) else { return i }
                destination[i] = Int64(v)
            }
        default:
            break
        }
        return nil
    }
}

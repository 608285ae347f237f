import Foundation
import NorBERT
import SafeTensors
import Tensors

/// The NorBERT 4 tiny fixtures copied into the repository (Tests/Fixtures/norbert4-tiny).
enum Fixtures {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/norbert4-tiny").path
    }()

    static func folder(_ name: String) -> String { root + "/" + name }

    static func caseFile(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: root + "/cases/\(name).safetensors")
    }

    /// Tolerances from cases.json (`tolerances.<name>.suggested_max_abs_tolerance`).
    static let tolerances: [String: Float] = {
        guard let data = FileManager.default.contents(atPath: root + "/cases.json"),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let t = json["tolerances"] as? [String: [String: Any]]
        else { return [:] }
        var out: [String: Float] = [:]
        for (k, v) in t { if let x = v["suggested_max_abs_tolerance"] as? Double { out[k] = Float(x) } }
        return out
    }()

    static func tolerance(_ name: String) -> Float { tolerances[name] ?? 1e-4 }

    /// input_ids [B, T] and attention_mask → packed batch of the valid (right-padded) rows.
    static func batch(_ file: SafeTensorsFile, ids: String = "input_ids", mask: String = "attention_mask") throws -> (
        PackedBatch, rows: Int, cols: Int
    ) {
        guard let info = file.info(ids) else { throw NorBERTError.invalidInput("no \(ids)") }
        let t = info.shape.last ?? 0
        let b = info.shape.dropLast().reduce(1, *)
        let idv = try file.int64s(ids)
        let maskv = try file.int64s(mask)
        var batch = PackedBatch()
        for r in 0..<b {
            let len = (0..<t).filter { maskv[r * t + $0] != 0 }.count
            batch.append((0..<len).map { Int(idv[r * t + $0]) })
        }
        return (batch, b, t)
    }
}

/// Comparison of padded reference outputs [B, T, F] with our packed rows [N, F].
struct Comparison: CustomStringConvertible {
    var maxDiff: Float = 0
    var compared = 0
    var mismatchedNaN = 0

    mutating func add(expected: Float, actual: Float) {
        if expected.isNaN { return }  // not kept in the lean fixture: not compared
        if actual.isNaN {
            mismatchedNaN += 1
            return
        }
        maxDiff = max(maxDiff, abs(expected - actual))
        compared += 1
    }

    /// expected [B, T, F] (padded) against packed [N, F].
    static func padded(_ expected: [Float], cols t: Int, features f: Int, packed actual: [Float], batch: PackedBatch) -> Comparison {
        var c = Comparison()
        for s in 0..<batch.count {
            for p in 0..<batch.length(s) {
                for j in 0..<f {
                    c.add(expected: expected[(s * t + p) * f + j], actual: actual[(batch.offsets[s] + p) * f + j])
                }
            }
        }
        return c
    }

    static func flat(_ expected: [Float], _ actual: [Float]) -> Comparison {
        var c = Comparison()
        for (e, a) in zip(expected, actual) { c.add(expected: e, actual: a) }
        if expected.count != actual.count { c.mismatchedNaN += 1 }
        return c
    }

    func ok(_ tolerance: Float) -> Bool { compared > 0 && mismatchedNaN == 0 && maxDiff <= tolerance }
    var description: String { "max |Δ| = \(maxDiff) over \(compared) values" }
}

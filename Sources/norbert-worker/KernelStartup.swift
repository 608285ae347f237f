import Foundation
import Tensors

/// Start-up of `bench`, `serve` and `infer`: say which kernels run (and, once, what a narrower
/// forced set costs), then check OpenBLAS's GEMMs against a plain loop and refuse to go on when
/// they disagree.
enum KernelStartup {
    /// `log` receives one line each (default: stderr). Throws a CLIError naming `command` on a mismatch.
    static func check(_ command: String, log: (String) -> Void = KernelStartup.standardError) throws {
        let report = KernelReport.current()
        // Test seam: NORBERT_WORKER_SELF_CHECK_FAULT=1 makes the checked GEMMs return one wrong
        // element, so tests see the refusal without a broken BLAS.
        let faulty = ProcessInfo.processInfo.environment["NORBERT_WORKER_SELF_CHECK_FAULT"] == "1"
        let gemm = faulty ? Self.faultyGEMM : BLASSelfCheck.blas
        log(report.summary)
        if let note = report.narrowerNoteOnce() { log(note) }
        do {
            // Our packed GEMM is checked too when it runs the weight GEMMs.
            log(try BLASSelfCheck.run(gemm, packed: report.weightGEMM == .packed ? BLASSelfCheck.packed : nil))
        } catch {
            throw CLIError("\(command): \(error.description); refusing to start")
        }
    }

    /// The bf16 GEMM for `--precision` (nil for float32); a clear refusal where bf16 cannot run.
    static func bf16GEMM(_ command: String, precision: String) throws -> BF16GEMM? {
        guard let chosen = Precision(rawValue: precision) else {
            throw CLIError(
                "\(command): --precision takes \(Precision.allCases.map(\.rawValue).joined(separator: " or ")), not '\(precision)'")
        }
        guard chosen == .bf16 else { return nil }
        do {
            return try BF16GEMM.own()
        } catch {
            throw CLIError("\(command): \(error.description)")
        }
    }

    /// The real GEMM, then one element of the output off by 1 (when there are two or more).
    static let faultyGEMM: BLASSelfCheck.Call = { t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta in
        BLASSelfCheck.blas(t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta)
        if m * n > 1 { out[(m * n / 2) % ldc] += 1 }
    }

    static func standardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

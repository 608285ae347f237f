import Foundation
import Tensors
import TestSupport
import Testing

/// `infer` (and `serve`, `bench`: the same start-up) says which kernels run and refuses to start
/// when the BLAS self-check fails (a wrong GEMM result injected through the test seam).
@Suite("kernel report and BLAS self-check at start-up")
struct KernelStartupTests {
    static func inferArguments() -> [String] {
        let tiny = CLI.fixtures.appendingPathComponent("norbert4-tiny")
        return [
            "infer", "--tokenizer", CLI.fixtures.appendingPathComponent("tokenizer").path,
            "--head", "sentiment=\(tiny.appendingPathComponent("sequence-classification").path)",
        ]
    }

    @Test func reportsKernelsAndPasses() async throws {
        let child = try ChildProcess(Self.inferArguments())
        #expect(try await child.waitForExit(timeout: .seconds(60)) == 0, "\(child.stderr.suffix(2000))")
        #expect(child.stderr.contains("kernels: OpenBLAS "))
        #expect(child.stderr.contains("CPU widest: "))
        #expect(child.stderr.contains("BLAS self-check: "))
        #expect(child.stdout.isEmpty)
    }

    @Test func refusesToStartOnAWrongGEMM() async throws {
        let child = try ChildProcess(Self.inferArguments(), environment: ["NORBERT_WORKER_SELF_CHECK_FAULT": "1"])
        #expect(try await child.waitForExit(timeout: .seconds(60)) == 1)
        #expect(child.stderr.contains("BLAS self-check failed"), "\(child.stderr.suffix(2000))")
        #expect(child.stderr.contains("refusing to start"))
        #expect(child.stdout.isEmpty)
    }

    /// `--precision bf16` runs where the CPU has AVX512-BF16 (our own bf16 GEMM), and is refused
    /// with the reason elsewhere.
    @Test func bf16RunsOrIsRefusedClearly() async throws {
        let child = try ChildProcess(Self.inferArguments() + ["--precision", "bf16"])
        let status = try await child.waitForExit(timeout: .seconds(60))
        if status == 0 {
            #expect(child.stderr.contains("kernels: OpenBLAS "))
        } else {
            #expect(status == 1)
            #expect(child.stderr.contains("--precision bf16 needs"), "\(child.stderr.suffix(2000))")
        }
        let bad = try ChildProcess(Self.inferArguments() + ["--precision", "fp8"])
        #expect(try await bad.waitForExit(timeout: .seconds(60)) == 1)
        #expect(bad.stderr.contains("--precision takes float32 or bf16"))
    }

    /// `serve --precision bf16` where bf16 cannot run: refused at start-up, before any broker.
    @Test(.enabled(if: (try? BF16GEMM.own()) == nil, "bf16 runs here"))
    func serveRefusesBF16WhereUnavailable() async throws {
        let tiny = CLI.fixtures.appendingPathComponent("norbert4-tiny")
        let child = try ChildProcess([
            "serve", "--precision", "bf16", "--metrics-port", "0", "--tokenizer", CLI.fixtures.appendingPathComponent("tokenizer").path,
            "--head", "sentiment=\(tiny.appendingPathComponent("sequence-classification").path)",
        ])
        #expect(try await child.waitForExit(timeout: .seconds(60)) == 1)
        #expect(child.stderr.contains("serve: --precision bf16 needs"), "\(child.stderr.suffix(2000))")
        #expect(child.stderr.contains("kernels: OpenBLAS "))
        #expect(!child.stdout.contains("bootstrap.servers="))
    }
}

import ArgumentParser
import Dispatch
import Foundation
import NorBERT
import Tensors

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Encoder throughput on random-weight models with NorBERT 4 dimensions (a benchmark, not a test).",
        discussion: """
            Builds xsmall (hidden 192, 16 layers, 3 heads of 64, intermediate 512) and/or base \
            (hidden 640, 24 layers, 10 heads of 64, intermediate 1,664) models, vocab 51,200, \
            local_global_ratio 4, windows 256 / 8,192, and prints tokens/s and GFLOP/s for 32 × 128, \
            8 × 512, 1 × 4,096 and 32 mixed lengths 16–512 (fixed seed), in three modes: one lane \
            (single-threaded BLAS), N lanes (each single-threaded, each running its own copy of the \
            workload; throughput is the sum), and one lane with N BLAS threads. The OpenBLAS sgemm \
            rate measured in the same run is printed first. Use a release build.
            """)

    @Option(name: .long, help: "Model sizes to run: xsmall, base (comma-separated).")
    var sizes: String = "xsmall,base"

    @Option(name: .long, help: "Workloads: 32x128, 8x512, 1x4096, mixed, or any BxT such as 1x32768 (comma-separated).")
    var workloads: String = "32x128,8x512,1x4096,mixed"

    @Option(name: .long, help: "Timed repetitions per figure (the median is printed).")
    var repeats: Int = 3

    @Option(name: .long, help: "Lanes / BLAS threads for the parallel modes (default: all cores).")
    var lanes: Int?

    @Option(name: .long, help: "Modes to run: one (1 lane), lanes (N lanes), threaded (1 lane, N BLAS threads).")
    var modes: String = "one,lanes,threaded"

    @Option(name: .long, help: "Precision of the weight GEMMs: float32, or bf16 (our AVX512-BF16 GEMM; needs AVX512-BF16).")
    var precision: String = "float32"

    @Option(
        name: .long,
        help: "Clock: wall (elapsed time), or cpu (process CPU time ÷ lanes: the time with a core per lane, steadier on a loaded machine).")
    var clock: String = "wall"

    func run() async throws {
        guard clock == "wall" || clock == "cpu" else { throw ValidationError("--clock takes wall or cpu") }
        let n = lanes ?? ProcessInfo.processInfo.activeProcessorCount
        guard repeats >= 1, n >= 1 else { throw ValidationError("--repeats and --lanes must be positive") }
        print("cores: \(ProcessInfo.processInfo.activeProcessorCount), lanes: \(n), repeats: \(repeats) (median), clock: \(clock)")
        try KernelStartup.check("bench") { print($0) }
        let bf16 = try KernelStartup.bf16GEMM("bench", precision: precision)
        let modeList = Set(modes.split(separator: ",").map(String.init))
        guard !modeList.isEmpty, modeList.isSubset(of: ["one", "lanes", "threaded"]) else {
            throw ValidationError("--modes takes one, lanes, threaded")
        }
        printSgemmRates(threads: n)
        for size in sizes.split(separator: ",").map(String.init) {
            guard let config = Self.config(size) else { throw ValidationError("unknown size '\(size)' (xsmall, base)") }
            BLAS.setThreads(1)
            let model = try NorBERTModel(config: config, weights: RandomWeights(seed: 7), kind: .base, bf16: bf16)
            print(
                """
                \n\(size): hidden \(config.hiddenSize), \(config.numLayers) layers, \(config.numAttentionHeads) heads × \
                \(config.queryKeyHeadSize), intermediate \(config.intermediateSize), weights \(model.byteCount / 1_000_000) MB, \
                precision \(model.encoder.precision)
                """
            )
            print(
                pad("workload", 14) + pad("tokens", 8) + pad("1 lane tok/s", 16) + pad("GFLOP/s", 9) + pad("\(n) lanes tok/s", 16)
                    + pad("GFLOP/s", 9) + pad("\(n) BLAS thr tok/s", 19) + "GFLOP/s")
            for w in workloads.split(separator: ",").map(String.init) {
                guard let batch = Self.workload(w) else { throw ValidationError("unknown workload '\(w)'") }
                let flops = model.encoder.flops(batch)
                func row(_ mode: String, lanes: Int, threads: Int, width: Int) throws -> String {
                    guard modeList.contains(mode) else { return pad("-", width) + pad("-", 9) }
                    let seconds = try measure(model, batch, lanes: lanes, blasThreads: threads)
                    return pad(String(format: "%.0f", Double(batch.totalTokens * lanes) / seconds), width)
                        + pad(String(format: "%.1f", flops * Double(lanes) / seconds / 1e9), 9)
                }
                print(
                    pad(w, 14) + pad("\(batch.totalTokens)", 8)
                        + (try row("one", lanes: 1, threads: 1, width: 16))
                        + (try row("lanes", lanes: n, threads: 1, width: 16))
                        + (try row("threaded", lanes: 1, threads: n, width: 19)))
            }
        }
        BLAS.setThreads(1)
        if let peak = Self.peakResidentMegabytes() { print(String(format: "\npeak resident memory of this process: %.0f MB", peak)) }
    }

    /// VmHWM from /proc/self/status (Linux), in MB.
    static func peakResidentMegabytes() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first
            return kb.map { $0 / 1024 }
        }
        return nil
    }

    /// Median wall time of `lanes` concurrent copies of one encoder pass.
    func measure(_ model: NorBERTModel, _ batch: PackedBatch, lanes: Int, blasThreads: Int) throws -> Double {
        BLAS.setThreads(blasThreads)
        let workspaces = (0..<lanes).map { _ in EncoderWorkspace() }
        let box = Workspaces(workspaces)
        var times: [Double] = []
        for round in 0...repeats {
            let start = now()
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                _ = try? model.encoder.forward(batch, workspace: box.items[lane])
            }
            let seconds = (now() - start) / Double(clock == "cpu" ? lanes : 1)
            if round > 0 { times.append(seconds) }  // round 0 warms up caches and workspaces
        }
        return times.sorted()[times.count / 2]
    }

    /// Seconds on the chosen clock (process CPU time for --clock cpu).
    func now() -> Double {
        if clock == "cpu" {
            var t = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        return Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    func printSgemmRates(threads: Int) {
        let (m, k, nn) = (2048, 192, 1024)
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: nn * k), c = FloatBuffer(count: m * nn)
        for i in 0..<a.count { a.pointer[i] = Float(i % 7) * 0.01 }
        for i in 0..<b.count { b.pointer[i] = Float(i % 5) * 0.01 }
        for t in Set([1, threads]).sorted() {
            BLAS.setThreads(t)
            var times: [Double] = []
            for _ in 0..<7 {
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<10 { GEMM.nt(c.pointer, ldc: nn, a.pointer, lda: k, b.pointer, ldb: k, m: m, n: nn, k: k) }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / 10)
            }
            let median = times.sorted()[3]
            print(
                String(
                    format: "OpenBLAS sgemm %d×%d×%d (x·Wᵀ), %d thread%@: %.1f GFLOP/s", m, k, nn, t, t == 1 ? "" : "s",
                    2.0 * Double(m * k * nn) / median / 1e9))
        }
    }

    static func config(_ size: String) -> NorBERTConfig? {
        func make(_ h: Int, _ layers: Int, _ heads: Int, _ inter: Int) -> NorBERTConfig {
            NorBERTConfig(
                hiddenSize: h, numLayers: layers, numAttentionHeads: heads, queryKeyHeadSize: 64, valueHeadSize: 64,
                intermediateSize: inter, vocabSize: 51_200, layerNormEps: 1e-7, maxSequenceLength: 16_384,
                localGlobalRatio: 4, localWindowLength: 256, globalWindowLength: 8_192)
        }
        switch size {
        case "xsmall": return make(192, 16, 3, 512)
        case "base": return make(640, 24, 10, 1_664)
        default: return nil
        }
    }

    static func workload(_ name: String) -> PackedBatch? {
        // A fixed LCG: the figures in docs/performance.md were measured on exactly these sequences.
        var rng: UInt64 = 20_261_128
        func next(_ bound: Int) -> Int {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((rng >> 33) % UInt64(bound))
        }
        func seq(_ t: Int) -> [Int] { (0..<t).map { _ in 5 + next(51_000) } }
        switch name {
        case "32x128": return PackedBatch((0..<32).map { _ in seq(128) })
        case "8x512": return PackedBatch((0..<8).map { _ in seq(512) })
        case "1x4096": return PackedBatch([seq(4096)])
        case "mixed": return PackedBatch((0..<32).map { _ in seq(16 + next(497)) })
        default:
            // Any B×T, e.g. 1x16384.
            let parts = name.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] >= 1, parts[1] >= 1, parts[0] * parts[1] <= 1 << 22 else { return nil }
            return PackedBatch((0..<parts[0]).map { _ in seq(parts[1]) })
        }
    }

    func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
}

/// Lane workspaces handed to concurrent benchmark lanes (each lane touches only its own).
final class Workspaces: @unchecked Sendable {
    let items: [EncoderWorkspace]
    init(_ items: [EncoderWorkspace]) { self.items = items }
}

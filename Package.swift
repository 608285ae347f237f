// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "norbert-worker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "norbert-worker", targets: ["norbert-worker"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Worker: lifecycle, logs, metrics, the HTTP probe/metrics port.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, librdkafka-dev). Only thin wrapper folders import them.
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),

        // Element-wise kernels in C (AVX-512, AVX2+FMA or portable, chosen at run time): Tensors' hot loops.
        // No unsafeFlags (they would stop the package being a dependency): release builds compile C at -O2;
        // scripts/test.sh passes `-Xcc -O2` so that debug test builds do not run the kernels at -O0.
        .target(name: "CKernels"),
        // The contract: one strict JSON value, parser and writer; error codes; tasks and their options.
        .target(name: "Wire"),
        // float32 storage and kernels (GEMM through OpenBLAS).
        .target(name: "Tensors", dependencies: ["COpenBLAS", "CKernels"]),
        // Memory-mapped safetensors checkpoints (single file and sharded).
        .target(name: "SafeTensors", dependencies: ["Tensors", "Wire"]),
        // tokenizer.json pipelines (normalizers, pre-tokenizers, models, post-processors, decoders).
        .target(name: "Tokenizers", dependencies: ["Wire"]),
        // NorBERT 4 config, encoder, heads and generation.
        .target(name: "NorBERT", dependencies: ["Tensors", "SafeTensors"]),
        // Text in, answers out: task pipelines over Tokenizers and NorBERT (shared by `infer` and the worker).
        // Its API needs only Wire: requests are prepared (decoded, resolved, priced) and run here.
        .target(name: "Pipelines", dependencies: ["Wire", "Tokenizers", "NorBERT"]),
        // Swift over librdkafka.
        .target(name: "Kafka", dependencies: ["CRdKafka"]),
        // The Kafka worker: consume, batch, infer on lanes, publish, commit after delivery.
        .target(
            name: "Worker",
            dependencies: [
                // Models and tokenizers only through Pipelines (and Wire for the contract).
                "Wire", "Kafka", "Pipelines",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),

        .executableTarget(
            name: "norbert-worker",
            dependencies: [
                "Wire", "Tensors", "SafeTensors", "Tokenizers", "NorBERT", "Pipelines", "Kafka", "Worker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Helpers shared by the test targets (child processes of the built binary, fixture paths).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "Wire"], resources: []),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "Wire"]),
        .testTarget(name: "NorBERTTests", dependencies: ["NorBERT", "SafeTensors"]),
        .testTarget(name: "PipelinesTests", dependencies: ["Wire", "Pipelines", "NorBERT", "Tokenizers", "TestSupport"]),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "TestSupport"]),
        .testTarget(name: "WorkerTests", dependencies: ["Wire", "Worker", "Kafka", "Pipelines", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["SafeTensors", "Tensors", "TestSupport", "Wire"]),
    ],
    swiftLanguageModes: [.v6]
)

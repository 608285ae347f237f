import ArgumentParser

/// The process entry: `serve` catches SIGTERM/SIGINT before anything else runs (argument parsing
/// included), so a signal at any moment of its start-up ends it cleanly instead of killing it.
@main
enum Launch {
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "serve" { _ = EarlySignals.atLaunch }
        await NorbertWorker.main()
    }
}

/// The command-line tool: a thin `main` over the library targets. Each subcommand lives in its own file.
struct NorbertWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "norbert-worker",
        abstract: "Run NorBERT 4 on CPU (OpenBLAS) and serve it from Kafka.",
        subcommands: [
            ForwardCommand.self,
            GenerateCommand.self,
            BenchCommand.self,
            TokenizeCommand.self,
            TokenizeBenchCommand.self,
            BrokerCommand.self,
            InferCommand.self,
            ServeCommand.self,
            DemoCommand.self,
        ])
}

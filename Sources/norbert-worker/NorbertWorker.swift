import ArgumentParser

/// The command-line tool: a thin `main` over the library targets. Each subcommand lives in its own file.
@main
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

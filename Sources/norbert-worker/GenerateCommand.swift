import ArgumentParser

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "(being built)")
    func run() async throws { throw ValidationError("generate: not available yet") }
}

import ArgumentParser

struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "(being built)")
    func run() async throws { throw ValidationError("tokenize: not available yet") }
}

import ArgumentParser

struct InferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infer", abstract: "(being built)")
    func run() async throws { throw ValidationError("infer: not available yet") }
}

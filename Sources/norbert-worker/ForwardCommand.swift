import ArgumentParser

struct ForwardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forward", abstract: "(being built)")
    func run() async throws { throw ValidationError("forward: not available yet") }
}

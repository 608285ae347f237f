import ArgumentParser

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "broker", abstract: "(being built)")
    func run() async throws { throw ValidationError("broker: not available yet") }
}

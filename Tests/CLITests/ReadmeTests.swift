import Foundation
import TestSupport
import Testing

/// The README against the binary: its command table lists exactly the subcommands
/// `norbert-worker --help` prints (a command added, renamed or dropped fails here), and the
/// generated request-option table of docs/wire-protocol.md is what `infer --options-markdown`
/// prints. (The README's task list is checked against `PipelineTask` in WireTests.)
@Suite struct ReadmeTests {
    @Test func commandTableListsEverySubcommand() throws {
        let readme = try String(contentsOf: NorbertBinary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## Commands").dropFirst().first?.components(separatedBy: "\n## ").first)
        var listed: [String] = []
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let cell = line.split(separator: "|", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            listed += cell.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " `")) }
        }
        let help = try CLI.run(["--help"])
        #expect(help.status == 0)
        // The SUBCOMMANDS block runs to the first blank line; a name starts a line after two spaces.
        let block = help.out.components(separatedBy: "SUBCOMMANDS:\n").dropFirst().first?.components(separatedBy: "\n\n").first ?? ""
        let subcommands = block.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            .compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(!subcommands.isEmpty, "norbert-worker --help printed no subcommands")
        #expect(Set(listed) == Set(subcommands), "README's command table: \(listed.sorted()), --help: \(subcommands.sorted())")
    }

    @Test func requestOptionTableIsPrintedByInfer() throws {
        let printed = try CLI.run(["infer", "--options-markdown"])
        #expect(printed.status == 0)
        let docs = try String(contentsOf: NorbertBinary.packageRoot.appendingPathComponent("docs/wire-protocol.md"), encoding: .utf8)
        #expect(printed.out.hasPrefix("| task | option | default | meaning |"))
        #expect(docs.contains(printed.out), "docs/wire-protocol.md's option table is stale: run scripts/update-options-doc.sh")
    }
}

import Foundation
import TestSupport
import Testing
import Wire

/// `demo` (the README's first command, via scripts/demo.sh) end to end: the dev broker, the tiny
/// fixture heads, one request of every task (a task added to Wire and not to the demo fails
/// here), the bad request's error and dead letter, exit 0.
@Suite struct DemoCommandTests {
    @Test(.timeLimit(.minutes(2))) func answersOneRequestOfEveryTask() throws {
        let run = try CLI.run(["demo", "--fixtures", CLI.fixtures.path])
        #expect(run.status == 0, "\(run.err)")
        let answers = run.out.split(separator: "\n").filter { $0.hasPrefix("← ") }.map { $0.dropFirst(2) }
        // (The demo cuts long answers for display, so each is read by its leading fields.)
        var answered: Set<String> = []
        for answer in answers where answer.contains(#""result": "#) {
            if let task = answer.components(separatedBy: #""task": ""#).dropFirst().first?.components(separatedBy: "\"").first {
                answered.insert(task)
            }
        }
        #expect(answered == Set(PipelineTask.allCases.map(\.rawValue)), "answered: \(answered.sorted())")
        #expect(answers.contains { $0.contains(#""code": "unknown_task""#) })
        #expect(run.out.contains("✗ dead letter (unknown_task)"))
    }
}

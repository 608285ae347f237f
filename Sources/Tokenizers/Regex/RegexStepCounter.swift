import Synchronization

/// Counts the regex engine's work (instructions executed, characters scanned by repeats,
/// backtracks) of every search run while it is installed as `Regex.stepCounter`. Task-local,
/// so concurrent tests and requests do not mix their counts; used by tests and benchmarks.
public final class RegexStepCounter: Sendable {
    private let value = Atomic<Int>(0)

    public init() {}

    public var count: Int { value.load(ordering: .relaxed) }

    func add(_ n: Int) { value.add(n, ordering: .relaxed) }
}

extension Regex {
    /// Receives the step count of every `findAll` run in this task while set.
    @TaskLocal public static var stepCounter: RegexStepCounter?

    /// Runs every search on the memoizing engine from its first step (tests compare the engines).
    @TaskLocal static var memoizeFromStart = false
}

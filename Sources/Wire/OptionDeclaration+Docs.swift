extension OptionDeclaration {
    /// The default as docs/wire-protocol.md's option table shows it.
    public var defaultText: String {
        switch defaultValue {
        case .absent: return "absent"
        case .integer(let n): return "\(n)"
        case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? "\(Int(d))" : "\(d)"
        case .boolean(let b): return "\(b)"
        case .choice(let c): return "`\(c)`"
        case .strings(let list): return "`[" + list.map { "\"\($0)\"" }.joined(separator: ", ") + "]`"
        case .computed(let text): return text
        }
    }

    /// docs/wire-protocol.md's option table (`infer --options-markdown`, written there by
    /// scripts/update-options-doc.sh; a test fails while the committed table differs): task,
    /// option, default and meaning, one row per option of each task in ``PipelineTask`` order (a
    /// task without options gets a row saying so).
    public static func markdownTable() -> String {
        var lines = ["| task | option | default | meaning |", "|---|---|---|---|"]
        func cell(_ text: String) -> String { text.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|") }
        for task in PipelineTask.allCases {
            let options = task.options
            guard !options.isEmpty else {
                lines.append("| \(task.rawValue) | — | | no options |")
                continue
            }
            for (index, option) in options.enumerated() {
                var meaning = option.summary
                if let limit = option.limitSetting { meaning += "; at most `--\(limit)`" }
                let taskCell = index == 0 ? "| \(task.rawValue) |" : "| |"
                lines.append("\(taskCell) `\(option.name)` | \(cell(option.defaultText)) | \(cell(meaning)) |")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

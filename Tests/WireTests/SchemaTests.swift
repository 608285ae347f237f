import Foundation
import Testing
import Wire

/// schemas/ against the declarations: a task, request field, option or error code added to Wire
/// (or removed) and not to the schemas, or the other way round, fails here.
@Suite("Schemas agree with the declarations")
struct SchemaTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func schema(_ name: String) throws -> JSONValue {
        let url = Self.root.appendingPathComponent("schemas/\(name).schema.json")
        return try JSONValue.parse(Array(try Data(contentsOf: url)))
    }

    func strings(_ value: JSONValue?) -> [String] { value?.arrayValue?.compactMap(\.stringValue) ?? [] }

    @Test("the task enums of request, response and error are PipelineTask, in order")
    func tasks() throws {
        let declared = PipelineTask.allCases.map(\.rawValue)
        #expect(strings(try schema("request")["properties"]?["task"]?["enum"]) == declared)
        #expect(strings(try schema("response")["$defs"]?["success"]?["properties"]?["task"]?["enum"]) == declared)
        #expect(strings(try schema("error")["properties"]?["task"]?["enum"]) == declared)
    }

    @Test("error.code is ErrorCode")
    func errorCodes() throws {
        let listed = strings(try schema("error")["properties"]?["error"]?["properties"]?["code"]?["enum"])
        #expect(listed == ErrorCode.allCases.map(\.rawValue))
    }

    @Test("request fields, and each task's inputs (required, and the other inputs refused)")
    func requestFields() throws {
        let request = try schema("request")
        let properties = (request["properties"]?.objectPairs ?? []).map(\.0)
        #expect(Set(properties) == PipelineRequest.fields)
        #expect(Set(PipelineTask.inputFields).isSubset(of: PipelineRequest.fields))
        var seen: Set<PipelineTask> = []
        for rule in request["allOf"]?.arrayValue ?? [] {
            guard let name = rule["if"]?["properties"]?["task"]?["const"]?.stringValue, let task = PipelineTask(rawValue: name) else {
                Issue.record("an allOf rule without a known task: \(rule.jsonText.prefix(200))")
                continue
            }
            seen.insert(task)
            #expect(strings(rule["then"]?["required"]) == task.inputs, "\(name)")
            let refused = (rule["then"]?["not"]?["anyOf"]?.arrayValue ?? []).flatMap { strings($0["required"]) }
            #expect(Set(refused) == Set(PipelineTask.inputFields).subtracting(task.inputs), "\(name)")
        }
        #expect(seen == Set(PipelineTask.allCases))
    }

    @Test("options: every declared name and no other; type, range, choices and default as declared")
    func options() throws {
        let properties = try schema("request")["$defs"]?["options"]?["properties"]?.objectPairs ?? []
        #expect(Set(properties.map(\.0)) == PipelineTask.allOptionNames)
        for (name, property) in properties {
            let declarations = OptionDeclaration.all.filter { $0.name == name }
            let description = property["description"]?.stringValue ?? ""
            let types = Set(strings(property["type"]))
            for d in declarations {
                switch d.type {
                case .integer(let range):
                    #expect(types == ["integer", "null"], "\(name)")
                    let lowest = declarations.compactMap(\.integerRange?.lowerBound).min()
                    #expect(property["minimum"]?.intValue == lowest, "\(name): minimum")
                    #expect(range.upperBound >= Int(Int32.max), "\(name): an upper bound the schema does not state")
                case .number(let range):
                    #expect(types == ["number", "null"], "\(name)")
                    if let maximum = property["maximum"]?.doubleValue { #expect(maximum == range.upperBound, "\(name): maximum") }
                    if let minimum = property["exclusiveMinimum"]?.doubleValue { #expect(minimum < range.lowerBound, "\(name)") }
                case .boolean:
                    #expect(types == ["boolean", "null"], "\(name)")
                case .choice(let choices):
                    #expect(property["enum"] == .array(choices.map(JSONValue.string) + [.null]), "\(name)")
                case .strings:
                    let alternatives = (property["anyOf"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue }
                    #expect(Set(alternatives) == ["string", "array", "null"], "\(name): a string, a list of strings or null")
                }
                // The default is stated where it is a plain value.
                let stated: String?
                switch d.defaultValue {
                case .integer(let i): stated = String(i)
                case .boolean(let b): stated = String(b)
                case .number(let x): stated = x == x.rounded() ? String(Int(x)) : String(x)
                case .choice(let c): stated = c
                case .strings(let s): stated = JSONValue.array(s.map(JSONValue.string)).jsonText.replacingOccurrences(of: ", ", with: ",")
                case .absent, .computed: stated = nil
                }
                if let stated {
                    #expect(
                        description.contains("default \(stated)"),
                        "\(name) (\(d.tasks.map(\.rawValue))): the description should say 'default \(stated)': \(description)")
                }
                if declarations.count > 1 {
                    for task in d.tasks {
                        #expect(description.contains(task.rawValue), "\(name): the description should name \(task.rawValue)")
                    }
                }
            }
        }
    }

    @Test("every option's schema description names each task that reads it")
    func optionTasksDescribed() throws {
        let options = try schema("request")["$defs"]?["options"]?["properties"]
        for declaration in OptionDeclaration.all {
            let description = options?[declaration.name]?["description"]?.stringValue ?? ""
            for task in declaration.tasks {
                #expect(description.contains(task.rawValue), "options.\(declaration.name): the description does not name \(task.rawValue)")
            }
        }
    }

    @Test("response.schema.json shapes the result of every task; schemas/examples has a request of every task")
    func everyTaskHasAResultRuleAndAnExample() throws {
        var shaped: Set<PipelineTask> = []
        for rule in try schema("response")["$defs"]?["success"]?["allOf"]?.arrayValue ?? [] {
            guard let name = rule["if"]?["properties"]?["task"]?["const"]?.stringValue, let task = PipelineTask(rawValue: name) else {
                continue
            }
            #expect(rule["then"]?["properties"]?["result"] != nil, "the rule of \(name) does not shape result")
            shaped.insert(task)
        }
        #expect(shaped == Set(PipelineTask.allCases), "tasks without a result shape: \(Set(PipelineTask.allCases).subtracting(shaped))")
        let examples = try String(contentsOf: Self.root.appendingPathComponent("schemas/examples/requests.jsonl"), encoding: .utf8)
        var requested: Set<PipelineTask> = []
        for line in examples.split(separator: "\n") where !line.isEmpty {
            if let name = try JSONValue.parse(Array(line.utf8))["task"]?.stringValue, let task = PipelineTask(rawValue: name) {
                requested.insert(task)
            }
        }
        #expect(requested == Set(PipelineTask.allCases), "tasks without an example: \(Set(PipelineTask.allCases).subtracting(requested))")
    }

    @Test("docs/wire-protocol.md's option table is the declarations' (infer --options-markdown)")
    func optionTable() throws {
        let docs = try String(contentsOf: Self.root.appendingPathComponent("docs/wire-protocol.md"), encoding: .utf8)
        let begin =
            "<!-- options: the output of `norbert-worker infer --options-markdown` (scripts/update-options-doc.sh); do not edit -->\n"
        let committed = try #require(
            docs.components(separatedBy: begin).dropFirst().first?.components(separatedBy: "<!-- end of options -->").first,
            "docs/wire-protocol.md has no generated option table")
        #expect(
            committed == OptionDeclaration.markdownTable(),
            "docs/wire-protocol.md's option table is stale: run scripts/update-options-doc.sh")
    }

    @Test("the README names every task, in order")
    func readmeTasks() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let sentence = try #require(readme.components(separatedBy: "Tasks: ").dropFirst().first?.components(separatedBy: "Schemas:").first)
        let named = sentence.components(separatedBy: "`").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        #expect(named == PipelineTask.allCases.map(\.rawValue))
    }

    @Test("docs/wire-protocol.md names every option")
    func documented() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/wire-protocol.md"), encoding: .utf8)
        for name in PipelineTask.allOptionNames.sorted() {
            #expect(text.contains("`\(name)`"), "docs/wire-protocol.md does not name option \(name)")
        }
        for code in ErrorCode.allCases {
            #expect(text.contains("`\(code.rawValue)`"), "docs/wire-protocol.md does not name error code \(code.rawValue)")
        }
    }
}

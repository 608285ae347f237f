import Foundation

extension ServeSettings {
    /// Where a setting's value came from.
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        case flag(String)
        case environment(String)
        case file(path: String?, key: String)
        case `default`

        public var description: String {
            switch self {
            case .flag(let flag): flag
            case .environment(let variable): variable
            case .file(let path, let key): path.map { "config file \($0) '\(key)'" } ?? "config file '\(key)'"
            case .default: "default"
            }
        }
    }

    /// Settings resolved from every source, with every problem found (not just the first) and
    /// the origin of every value. A value that is refused leaves the setting at its default.
    public struct Resolution: Sendable {
        public var settings: ServeSettings
        public var problems: [Failure] = []
        /// Setting name → origin; absent: the default.
        public var origins: [String: Origin] = [:]
        /// librdkafka property → origin.
        public var kafkaOrigins: [String: Origin] = [:]
        /// The config file read, if any, and where its path came from.
        public var configFile: String?
        public var configOrigin: Origin = .default

        public func origin(of name: String) -> Origin {
            name == "config" ? configOrigin : origins[name] ?? .default
        }
    }

    /// `flags`: name → values given on the command line (absent names not given). Throws the
    /// first problem.
    public static func resolve(
        flags: [String: [String]], environment: [String: String], file: [String: [String]], defaultLanes: Int
    ) throws(Failure) -> ServeSettings {
        let result = resolution(flags: flags, environment: environment, file: file, configFile: nil, defaultLanes: defaultLanes)
        if let first = result.problems.first { throw first }
        return result.settings
    }

    /// Reads the config file that `--config` or `NORBERT_WORKER_CONFIG` names (if any), then
    /// resolves every source.
    public static func load(flags: [String: [String]], environment: [String: String], defaultLanes: Int) -> Resolution {
        let configVariable = environmentPrefix + "CONFIG"
        var path: String?
        var origin = Origin.default
        if let flag = flags["config"]?.last {
            (path, origin) = (flag, .flag("--config"))
        } else if let variable = environment[configVariable] {
            (path, origin) = (variable, .environment(configVariable))
        }
        var file: [String: [String]] = [:]
        var fileProblems: [Failure] = []
        if let path { (file, fileProblems) = parseConfigFile(path) }
        var result = resolution(flags: flags, environment: environment, file: file, configFile: path, defaultLanes: defaultLanes)
        result.problems.insert(contentsOf: fileProblems, at: 0)
        result.configOrigin = origin
        return result
    }

    /// Resolves every source, collecting problems: the environment's, the file's unknown keys,
    /// each setting's value (in declaration order), the kafka properties, then the checks that
    /// span settings.
    public static func resolution(
        flags: [String: [String]], environment: [String: String], file: [String: [String]], configFile: String?, defaultLanes: Int
    ) -> Resolution {
        var result = Resolution(settings: ServeSettings(defaultLanes: defaultLanes), configFile: configFile)
        let env = fromEnvironment(environment, problems: &result.problems)
        for name in file.keys.sorted() where !names.contains(name) {
            result.problems.append(Failure("config file: unknown setting '\(name)' (known: \(names.joined(separator: ", ")))"))
        }
        for name in flags.keys.sorted() where option(named: name) == nil {
            result.problems.append(Failure("--\(name) is not a serve setting"))
        }
        for option in options where option.shape != .kafka && option.shape != .configPath {
            let given: (origin: Origin, label: String, values: [String])?
            if let values = flags[option.name] {
                given = (.flag(option.flag), option.flag, values)
            } else if let (variable, values) = env.values[option.name] {
                given = (.environment(variable), variable, values)
            } else if let values = file[option.name] {
                given = (.file(path: configFile, key: option.name), "config file '\(option.name)'", values)
            } else {
                given = nil
            }
            guard let given else { continue }
            do {
                try option.apply(&result.settings, given.values, given.label)
                result.origins[option.name] = given.origin
            } catch {
                result.problems.append(error)
            }
        }
        // kafka: merged per property, lowest source first.
        if let kafka = option(named: "kafka") {
            var sources: [(origin: (String) -> Origin, label: String, pairs: [String])] = []
            if let pairs = file["kafka"] { sources.append(({ _ in .file(path: configFile, key: "kafka") }, "config file 'kafka'", pairs)) }
            for (variable, pairs) in env.kafka { sources.append(({ _ in .environment(variable) }, variable, pairs)) }
            if let pairs = flags["kafka"] { sources.append(({ _ in .flag("--kafka") }, "--kafka", pairs)) }
            for source in sources {
                do {
                    try kafka.apply(&result.settings, source.pairs, source.label)
                    for pair in source.pairs { if let (key, _) = kafkaProperty(pair) { result.kafkaOrigins[key] = source.origin(key) } }
                } catch {
                    result.problems.append(error)
                }
            }
        }
        result.problems += result.settings.combinationProblems()
        return result
    }

    /// The checks that span settings: the drain deadline against `max.poll.interval.ms`, and the topics.
    func combinationProblems() -> [Failure] {
        var problems: [Failure] = []
        do { try checkDrainTimeout() } catch { problems.append(error) }
        if requests.isEmpty || !requests.allSatisfy(MessageRouting.isValidTopic) {
            problems.append(Failure("requests must name valid topics"))
        }
        for topic in [results, deadLetter] where !MessageRouting.isValidTopic(topic) {
            problems.append(Failure("'\(topic.prefix(300))' is not a valid topic name"))
        }
        if results == deadLetter || requests.contains(results) || requests.contains(deadLetter) {
            problems.append(Failure("the request, results and dead-letter topics must differ"))
        }
        return problems
    }

    /// What the environment gives: settings by name (with the variable), and librdkafka
    /// properties in variable order (`NORBERT_WORKER_KAFKA` lists, `NORBERT_WORKER_KAFKA_<PROPERTY>`).
    struct EnvironmentValues {
        var values: [String: (variable: String, values: [String])] = [:]
        var kafka: [(variable: String, pairs: [String])] = []
    }

    /// `NORBERT_WORKER_<NAME>` variables as setting values (lists comma-separated), plus
    /// `NORBERT_WORKER_KAFKA_<PROPERTY>` (underscores become dots, lower-cased). Variables are
    /// read in name order, so a property's own variable overrides the same property in
    /// `NORBERT_WORKER_KAFKA`.
    /// Whether `rest` (a variable name after `NORBERT_WORKER_`) is one Kubernetes injects for a
    /// Service whose name starts with `norbert-worker` (service links: `<SVC>_SERVICE_HOST`,
    /// `<SVC>_SERVICE_PORT[_<PORT NAME>]`, `<SVC>_PORT`, `<SVC>_PORT_<N>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR]`).
    /// Those are not settings and are ignored instead of refused; a setting's own name never is.
    static func isServiceLink(_ rest: String) -> Bool {
        let parts = rest.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        guard parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) } }) else { return false }
        for start in parts.indices {
            let tail = Array(parts[start...])
            if tail.count >= 2, tail[0] == "SERVICE", tail[1] == "HOST", tail.count == 2 { return true }
            if tail.count >= 2, tail[0] == "SERVICE", tail[1] == "PORT" { return true }
            if tail == ["PORT"] { return true }
            if tail.count >= 3, tail[0] == "PORT", Int(tail[1]) != nil, ["TCP", "UDP", "SCTP"].contains(tail[2]),
                tail.count == 3 || (tail.count == 4 && ["PROTO", "PORT", "ADDR"].contains(tail[3]))
            {
                return true
            }
        }
        return false
    }

    static func fromEnvironment(_ environment: [String: String], problems: inout [Failure]) -> EnvironmentValues {
        var out = EnvironmentValues()
        for key in environment.keys.sorted() where key.hasPrefix(environmentPrefix) {
            let value = environment[key] ?? ""
            let rest = String(key.dropFirst(environmentPrefix.count))
            if rest == "CONFIG" { continue }
            if rest.hasPrefix("KAFKA_") {
                let property = rest.dropFirst("KAFKA_".count).lowercased().replacingOccurrences(of: "_", with: ".")
                guard !property.isEmpty else {
                    problems.append(Failure("\(key) names no kafka property"))
                    continue
                }
                out.kafka.append((key, ["\(property)=\(value)"]))
                continue
            }
            let name = rest.lowercased().replacingOccurrences(of: "_", with: "-")
            guard let option = option(named: name), option.isFileKey else {
                if !isServiceLink(rest) { problems.append(Failure("unknown environment variable \(key)")) }
                continue
            }
            if option.shape == .kafka {
                out.kafka.append((key, value.split(separator: ",").map(String.init)))
            } else if option.shape.environmentIsList {
                out.values[name] = (key, value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            } else {
                out.values[name] = (key, [value])
            }
        }
        return out
    }

    /// Reads a JSON config file: an object with setting names as keys; strings, numbers, lists
    /// of strings, and for `kafka` also an object of properties. Throws the first problem.
    public static func readConfigFile(_ path: String) throws(Failure) -> [String: [String]] {
        let (values, problems) = parseConfigFile(path)
        if let first = problems.first { throw first }
        return values
    }

    /// The config file's values and every problem in it.
    static func parseConfigFile(_ path: String) -> (values: [String: [String]], problems: [Failure]) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            return ([:], [Failure("cannot read config file \(path): \(error.localizedDescription)")])
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            return ([:], [Failure("config file \(path) must hold a JSON object")])
        }
        func scalar(_ v: Any) -> String? {
            if let s = v as? String { return s }
            if let n = v as? NSNumber { return n.stringValue }
            return nil
        }
        var out: [String: [String]] = [:]
        var problems: [Failure] = []
        for (key, raw) in object.sorted(by: { $0.key < $1.key }) {
            if key == "kafka", let properties = raw as? [String: Any] {
                var pairs: [String] = []
                for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
                    guard let v = scalar(value) else {
                        problems.append(Failure("config file: kafka.\(name) must be a string or number"))
                        continue
                    }
                    pairs.append("\(name)=\(v)")
                }
                out[key] = pairs
            } else if let list = raw as? [Any] {
                let items = list.compactMap(scalar)
                guard items.count == list.count else {
                    problems.append(Failure("config file: '\(key)' must list strings"))
                    continue
                }
                out[key] = items
            } else if let v = scalar(raw) {
                out[key] = [v]
            } else {
                problems.append(Failure("config file: '\(key)' has an unsupported value"))
            }
        }
        return (out, problems)
    }
}

import Foundation
import TestSupport
import Testing
@testable import Worker

@Suite("serve settings")
struct ServeSettingsTests {
    @Test("defaults")
    func defaults() throws {
        let s = try ServeSettings.resolve(flags: [:], environment: [:], file: [:], defaultLanes: 3)
        #expect(s.maxBatchTokens == 8192 && s.maxWaitMs == 5 && s.lanes == 3 && s.metricsPort == 9400)
        #expect(s.group == "norbert-worker" && s.requests == ["norbert-requests"] && s.bootstrapServers == nil)
        let c = s.workerConfiguration(bootstrapServers: "b:1").consumerConfiguration()
        #expect(c.properties["auto.offset.reset"] == "earliest")
        #expect(c.properties["enable.auto.commit"] == nil || c.properties["enable.auto.commit"] == "false")
        #expect(s.commitIntervalMs == 200 && s.workerConfiguration(bootstrapServers: "b:1").commitInterval == .milliseconds(200))
    }

    @Test("commit interval from every source, within 10 ms … 10 min")
    func commitInterval() throws {
        let fromFile = try ServeSettings.resolve(flags: [:], environment: [:], file: ["commit-interval-ms": ["1000"]], defaultLanes: 1)
        #expect(fromFile.workerConfiguration(bootstrapServers: "b:1").commitInterval == .seconds(1))
        let fromEnv = try ServeSettings.resolve(flags: [:], environment: ["NORBERT_WORKER_COMMIT_INTERVAL_MS": "50"], file: ["commit-interval-ms": ["1000"]], defaultLanes: 1)
        #expect(fromEnv.commitIntervalMs == 50)
        let fromFlag = try ServeSettings.resolve(flags: ["commit-interval-ms": ["20"]], environment: ["NORBERT_WORKER_COMMIT_INTERVAL_MS": "50"], file: [:], defaultLanes: 1)
        #expect(fromFlag.workerConfiguration(bootstrapServers: "b:1").commitInterval == .milliseconds(20))
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: ["commit-interval-ms": ["5"]], environment: [:], file: [:], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: ["commit-interval-ms": ["soon"]], environment: [:], file: [:], defaultLanes: 1) }
    }

    @Test("flags over environment over file; kafka merges per property")
    func precedence() throws {
        let file: [String: [String]] = ["group": ["from-file"], "lanes": ["2"], "max-wait-ms": ["9"], "results": ["file-res"],
                                        "kafka": ["a=file", "b=file", "c=file"], "head": ["x=/file"]]
        let env = ["NORBERT_WORKER_GROUP": "from-env", "NORBERT_WORKER_LANES": "4", "NORBERT_WORKER_KAFKA": "b=env",
                   "NORBERT_WORKER_KAFKA_SASL_PASSWORD": "pw", "NORBERT_WORKER_HEAD": "y=/env,z=/env", "UNRELATED": "1"]
        let flags: [String: [String]] = ["group": ["from-flag"], "kafka": ["c=flag"], "requests": ["a,b"], "instance-id": ["pod-1"]]
        let s = try ServeSettings.resolve(flags: flags, environment: env, file: file, defaultLanes: 1)
        #expect(s.group == "from-flag")
        #expect(s.lanes == 4)
        #expect(s.maxWaitMs == 9)
        #expect(s.results == "file-res")
        #expect(s.requests == ["a", "b"])
        #expect(s.instanceID == "pod-1")
        #expect(s.heads.map(\.name) == ["y", "z"])
        #expect(s.kafka == ["a": "file", "b": "env", "c": "flag", "sasl.password": "pw"])
        let config = s.workerConfiguration(bootstrapServers: "h:9")
        #expect(config.consumerConfiguration().properties["group.instance.id"] == "pod-1")
        #expect(config.producerConfiguration().properties["c"] == "flag")
    }

    @Test("bad values are refused with the source named")
    func failures() {
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: ["lanes": ["0"]], environment: [:], file: [:], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: [:], environment: ["NORBERT_WORKER_MAX_WAIT_MS": "x"], file: [:], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: [:], environment: ["NORBERT_WORKER_NOPE": "1"], file: [:], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: [:], environment: [:], file: ["nope": ["1"]], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: ["head": ["noequals"]], environment: [:], file: [:], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: ["kafka": ["=v"]], environment: [:], file: [:], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: ["results": ["norbert-requests"]], environment: [:], file: [:], defaultLanes: 1) }
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.resolve(flags: ["log-format": ["xml"]], environment: [:], file: [:], defaultLanes: 1) }
    }

    @Test("config file: JSON object with strings, numbers, lists and a kafka object")
    func configFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(#"{"head": ["a=/x"], "max-batch-tokens": 4096, "kafka": {"linger.ms": 3, "acks": "all"}}"#.utf8).write(to: url)
        let file = try ServeSettings.readConfigFile(url.path)
        let s = try ServeSettings.resolve(flags: [:], environment: [:], file: file, defaultLanes: 1)
        #expect(s.maxBatchTokens == 4096)
        #expect(s.kafka == ["linger.ms": "3", "acks": "all"])
        try Data("[1]".utf8).write(to: url)
        #expect(throws: ServeSettings.Failure.self) { try ServeSettings.readConfigFile(url.path) }
    }

    @Test("serve --help and the README's option table list every setting")
    func everySettingDocumented() throws {
        let help = try CLIRun.run(["serve", "--help"])
        #expect(help.status == 0)
        let readme = try String(contentsOf: NorbertBinary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        for name in ServeSettings.names {
            #expect(help.out.contains("--\(name) "), "serve --help does not list --\(name)")
            #expect(readme.contains("| `--\(name) "), "the README's option table has no --\(name)")
        }
    }
}

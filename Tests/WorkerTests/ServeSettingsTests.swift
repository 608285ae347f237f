import Foundation
import TestSupport
import Testing

@testable import Worker

@Suite("serve settings")
struct ServeSettingsTests {
    @Test("defaults")
    func defaults() throws {
        let s = try ServeSettings.resolve(flags: [:], environment: [:], file: [:], defaultLanes: 3)
        #expect(s.maxBatchTokens == 8192 && s.maxWaitMs == 5 && s.lanes == 3 && s.metricsPort == 9400 && s.metricsHost == "0.0.0.0")
        #expect(s.group == "norbert-worker" && s.requests == ["norbert-requests"] && s.bootstrapServers == nil)
        let c = s.workerConfiguration(bootstrapServers: "b:1").consumerConfiguration()
        #expect(c.properties["auto.offset.reset"] == "earliest")
        #expect(c.properties["enable.auto.commit"] == nil || c.properties["enable.auto.commit"] == "false")
        #expect(s.commitIntervalMs == 200 && s.workerConfiguration(bootstrapServers: "b:1").commitInterval == .milliseconds(200))
        // The computed default of --max-queued-tokens is the one its help and the docs print:
        // max(4 × batch, 32768).
        #expect(s.workerConfiguration(bootstrapServers: "b:1").maxQueuedTokens == 32_768)
        let big = try ServeSettings.resolve(flags: ["max-batch-tokens": ["16384"]], environment: [:], file: [:], defaultLanes: 1)
        #expect(big.workerConfiguration(bootstrapServers: "b:1").maxQueuedTokens == 65_536)
        let option = try #require(ServeSettings.options.first { $0.name == "max-queued-tokens" })
        #expect(option.defaultText == "max(4 × batch, 32768)")
    }

    @Test("commit interval from every source, within 10 ms … 10 min")
    func commitInterval() throws {
        let fromFile = try ServeSettings.resolve(flags: [:], environment: [:], file: ["commit-interval-ms": ["1000"]], defaultLanes: 1)
        #expect(fromFile.workerConfiguration(bootstrapServers: "b:1").commitInterval == .seconds(1))
        let fromEnv = try ServeSettings.resolve(
            flags: [:], environment: ["NORBERT_WORKER_COMMIT_INTERVAL_MS": "50"], file: ["commit-interval-ms": ["1000"]], defaultLanes: 1)
        #expect(fromEnv.commitIntervalMs == 50)
        let fromFlag = try ServeSettings.resolve(
            flags: ["commit-interval-ms": ["20"]], environment: ["NORBERT_WORKER_COMMIT_INTERVAL_MS": "50"], file: [:], defaultLanes: 1)
        #expect(fromFlag.workerConfiguration(bootstrapServers: "b:1").commitInterval == .milliseconds(20))
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["commit-interval-ms": ["5"]], environment: [:], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["commit-interval-ms": ["soon"]], environment: [:], file: [:], defaultLanes: 1)
        }
    }

    @Test("flags over environment over file; kafka merges per property")
    func precedence() throws {
        let file: [String: [String]] = [
            "group": ["from-file"], "lanes": ["2"], "max-wait-ms": ["9"], "results": ["file-res"],
            "kafka": ["a=file", "b=file", "c=file"], "head": ["x=/file"],
        ]
        let env = [
            "NORBERT_WORKER_GROUP": "from-env", "NORBERT_WORKER_LANES": "4", "NORBERT_WORKER_KAFKA": "b=env",
            "NORBERT_WORKER_KAFKA_SASL_PASSWORD": "pw", "NORBERT_WORKER_HEAD": "y=/env,z=/env", "UNRELATED": "1",
        ]
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
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["lanes": ["0"]], environment: [:], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: [:], environment: ["NORBERT_WORKER_MAX_WAIT_MS": "x"], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: [:], environment: ["NORBERT_WORKER_NOPE": "1"], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: [:], environment: [:], file: ["nope": ["1"]], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["head": ["noequals"]], environment: [:], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["kafka": ["=v"]], environment: [:], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["results": ["norbert-requests"]], environment: [:], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["log-format": ["xml"]], environment: [:], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["metrics-host": [""]], environment: [:], file: [:], defaultLanes: 1)
        }
        #expect(throws: ServeSettings.Failure.self) {
            try ServeSettings.resolve(flags: ["metrics-host": ["a b"]], environment: [:], file: [:], defaultLanes: 1)
        }
    }

    @Test(
        """
        Kubernetes service-link variables of a Service named norbert-worker… are ignored; other unknown NORBERT_WORKER_ variables are \
        refused
        """
    )
    func kubernetesServiceLinks() throws {
        // What Kubernetes injects (service links on) for Services `norbert-worker` and `norbert-worker-metrics`.
        let links = [
            "NORBERT_WORKER_SERVICE_HOST": "10.0.0.7", "NORBERT_WORKER_SERVICE_PORT": "9090",
            "NORBERT_WORKER_SERVICE_PORT_METRICS": "9090", "NORBERT_WORKER_PORT": "tcp://10.0.0.7:9090",
            "NORBERT_WORKER_PORT_9090_TCP": "tcp://10.0.0.7:9090", "NORBERT_WORKER_PORT_9090_TCP_PROTO": "tcp",
            "NORBERT_WORKER_PORT_9090_TCP_PORT": "9090", "NORBERT_WORKER_PORT_9090_TCP_ADDR": "10.0.0.7",
            "NORBERT_WORKER_METRICS_SERVICE_HOST": "10.0.0.8", "NORBERT_WORKER_METRICS_PORT_9090_TCP_ADDR": "10.0.0.8",
        ]
        let s = try ServeSettings.resolve(
            flags: [:], environment: links.merging(["NORBERT_WORKER_LANES": "2"]) { a, _ in a }, file: [:], defaultLanes: 1)
        #expect(s.lanes == 2)
        for unknown in ["NORBERT_WORKER_LANEZ", "NORBERT_WORKER_PORT_X_TCP", "NORBERT_WORKER_SERVICE", "NORBERT_WORKER_PORT_9090_TCP_NAME"]
        {
            #expect(throws: ServeSettings.Failure.self, "\(unknown)") {
                try ServeSettings.resolve(flags: [:], environment: links.merging([unknown: "1"]) { a, _ in a }, file: [:], defaultLanes: 1)
            }
        }
    }

    @Test("a malformed kafka entry is named by source and position, its text (maybe a secret) never shown")
    func malformedKafkaNotEchoed() throws {
        func failure(flags: [String: [String]] = [:], environment: [String: String] = [:], file: [String: [String]] = [:]) -> String {
            do {
                _ = try ServeSettings.resolve(flags: flags, environment: environment, file: file, defaultLanes: 1)
                return "accepted"
            } catch { return error.description }
        }
        let flag = failure(flags: ["kafka": ["security.protocol=SASL_SSL", "hunter2-s3cret"]])
        #expect(flag.contains("--kafka") && flag.contains("entry 2 of 2") && !flag.contains("hunter2"), "\(flag)")
        let emptyKey = failure(flags: ["kafka": ["=hunter2-s3cret"]])
        #expect(emptyKey.contains("--kafka") && !emptyKey.contains("hunter2"), "\(emptyKey)")
        // A password cut at a comma in the environment's list.
        let env = failure(environment: ["NORBERT_WORKER_KAFKA": "sasl.password=hunter2,s3cret"])
        #expect(env.contains("NORBERT_WORKER_KAFKA") && env.contains("entry 2 of 2") && !env.contains("s3cret"), "\(env)")
        let file = failure(file: ["kafka": ["hunter2-s3cret"]])
        #expect(file.contains("config file") && !file.contains("hunter2"), "\(file)")
        #expect(failure(environment: ["NORBERT_WORKER_KAFKA_": "hunter2"]).contains("names no kafka property"))
    }

    @Test("drain-timeout-ms plus the revoke's commits must stay below max.poll.interval.ms")
    func drainBelowMaxPollInterval() throws {
        func failure(_ flags: [String: [String]]) -> String? {
            do {
                _ = try ServeSettings.resolve(flags: flags, environment: [:], file: [:], defaultLanes: 1)
                return nil
            } catch { return error.description }
        }
        let overheadMs = 12_000
        #expect(WorkerConfiguration(bootstrapServers: "b:1").revokeOverhead == .milliseconds(overheadMs))
        #expect(failure([:]) == nil)
        #expect(failure(["drain-timeout-ms": ["\(300_000 - overheadMs - 1)"]]) == nil)
        let atDefault = try #require(failure(["drain-timeout-ms": ["\(300_000 - overheadMs)"]]))
        #expect(atDefault.contains("drain-timeout-ms (288000)") && atDefault.contains("max.poll.interval.ms (300000"), "\(atDefault)")
        #expect(failure(["drain-timeout-ms": ["300000"]]) != nil)
        #expect(failure(["drain-timeout-ms": ["300000"], "kafka": ["max.poll.interval.ms=600000"]]) == nil)
        let raised = try #require(failure(["kafka": ["max.poll.interval.ms=20000"]]))
        #expect(raised.contains("drain-timeout-ms (15000)") && raised.contains("max.poll.interval.ms (20000)"), "\(raised)")
        #expect(failure(["drain-timeout-ms": ["5000"], "kafka": ["max.poll.interval.ms=20000"]]) == nil)
        #expect(failure(["kafka": ["max.poll.interval.ms=soon"]]) != nil)
    }

    @Test("worst-case shutdown fits Kubernetes' default 30 s grace period, as docs/worker.md and --help say")
    func shutdownBudget() throws {
        let s = try ServeSettings.resolve(flags: [:], environment: [:], file: [:], defaultLanes: 1)
        #expect(s.drainTimeoutMs == 15_000)
        let config = s.workerConfiguration(bootstrapServers: "b:1")
        #expect(config.drainTimeout == .seconds(15))
        #expect(config.worstCaseShutdown == .seconds(25) && config.worstCaseShutdown <= .seconds(30))
        #expect(config.worstCaseShutdown - config.drainTimeout == .seconds(10))
        // The consumer's own deadlines are the ones the budget counts.
        let consumer = config.consumerConfiguration()
        #expect(consumer.rebalanceTimeout == config.rebalanceTimeout && config.rebalanceTimeout == .seconds(22))
        #expect(consumer.commitTimeout == config.commitTimeout && consumer.closeTimeout == config.consumerCloseTimeout)
        #expect(config.rebalanceTimeout >= config.drainTimeout + config.commitTimeout)
        let longer = try ServeSettings.resolve(flags: ["drain-timeout-ms": ["40000"]], environment: [:], file: [:], defaultLanes: 1)
        #expect(longer.workerConfiguration(bootstrapServers: "b:1").worstCaseShutdown == .seconds(50))
        #expect(longer.workerConfiguration(bootstrapServers: "b:1").consumerConfiguration().rebalanceTimeout == .seconds(47))

        let readme = try String(contentsOf: NorbertBinary.packageRoot.appendingPathComponent("docs/worker.md"), encoding: .utf8)
        #expect(readme.contains("| `--drain-timeout-ms N` | 15000 |"))
        #expect(readme.contains("`--drain-timeout-ms` + 10 s"), "docs/worker.md does not give the worst-case shutdown formula")
        let help = try CLIRun.run(["serve", "--help"]).out.replacingOccurrences(of: "\n", with: " ")
            .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        #expect(help.contains("(default 15000)") && help.contains("this + 10 s (25 s by default"), "\(help)")
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

    @Test("serve --help and docs/worker.md's option table list every setting")
    func everySettingDocumented() throws {
        let help = try CLIRun.run(["serve", "--help"])
        #expect(help.status == 0)
        let readme = try String(contentsOf: NorbertBinary.packageRoot.appendingPathComponent("docs/worker.md"), encoding: .utf8)
        for name in ServeSettings.names {
            #expect(help.out.contains("--\(name) "), "serve --help does not list --\(name)")
            #expect(readme.contains("| `--\(name) "), "docs/worker.md's option table has no --\(name)")
        }
    }
}

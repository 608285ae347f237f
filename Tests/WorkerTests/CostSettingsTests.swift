import Foundation
import Pipelines
import TestSupport
import Testing

@testable import Worker

/// The per-request cost limits as `serve` settings: flags, environment, config file, defaults.
@Suite("serve settings: cost limits")
struct CostSettingsTests {
    @Test("defaults are the engine's, every source sets them, bad values are refused")
    func costLimits() throws {
        let defaults = try ServeSettings.resolve(flags: [:], environment: [:], file: [:], defaultLanes: 1)
        #expect(defaults.limits == CostLimits())
        #expect(
            CostLimits().maxWindows == 256 && CostLimits().maxChoices == 16 && CostLimits().maxMasks == 32
                && CostLimits().maxTopK == 100 && CostLimits().maxNewTokens == 1024 && CostLimits().maxIDBytes == 256
                && CostLimits().maxResponseBytes == 16 << 20 && CostLimits().maxRequestTokens == nil)
        for setting in CostLimits.settings { #expect(ServeSettings.names.contains(setting.name)) }
        let s = try ServeSettings.resolve(
            flags: ["max-windows": ["10"]],
            environment: [
                "NORBERT_WORKER_MAX_WINDOWS": "20", "NORBERT_WORKER_MAX_CHOICES": "30", "NORBERT_WORKER_MAX_REQUEST_TOKENS": "5000",
            ],
            file: [
                "max-choices": ["40"], "max-top-k": ["7"], "max-response-bytes": ["2048"], "max-id-bytes": ["64"],
                "max-new-tokens": ["0"], "max-masks": ["2"],
            ],
            defaultLanes: 1)
        #expect(s.limits.maxWindows == 10 && s.limits.maxChoices == 30 && s.limits.maxRequestTokens == 5000)
        #expect(
            s.limits.maxTopK == 7 && s.limits.maxResponseBytes == 2048 && s.limits.maxIDBytes == 64
                && s.limits.maxNewTokens == 0 && s.limits.maxMasks == 2)
        #expect(s != defaults)
        for (name, value) in [("max-windows", "0"), ("max-choices", "many"), ("max-response-bytes", "10"), ("max-new-tokens", "-1")] {
            #expect(throws: ServeSettings.Failure.self, "\(name)=\(value)") {
                try ServeSettings.resolve(flags: [name: [value]], environment: [:], file: [:], defaultLanes: 1)
            }
        }
    }
}

import Testing

@testable import SafeTensors

/// safetensors headers are read by the package's one JSON parser (Wire), whose wording they share
/// since it replaced this module's own: documented here (the kinds and the duplicate-key messages
/// are as before, see HostileFileTests).
@Suite("Header JSON wording")
struct HeaderWordingTests {
    func message(_ header: String) throws -> String {
        let dir = try TempDir()
        let path = try dir.write("h.safetensors", rawFile(header: header))
        do {
            _ = try SafeTensorsFile(path: path)
            return ""
        } catch let error as SafeTensorsError {
            return error.message
        }
    }

    @Test func messages() throws {
        #expect(try message("{} x") == "header is not valid JSON: trailing characters at header byte 3")
        #expect(try message("{\"a\":01}") == "header is not valid JSON: invalid number at header byte 6")
        #expect(try message("\u{FEFF}{}") == "header is not valid JSON: unexpected character at header byte 0")
    }
}

import CRdKafka

enum RDKafkaErrorNames {
    static func name(of code: Int32) -> String {
        guard let name = rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code)) else { return "UNKNOWN" }
        return String(cString: name)
    }
    static func text(of code: Int32) -> String {
        guard let text = rd_kafka_err2str(rd_kafka_resp_err_t(rawValue: code)) else { return "unknown error" }
        return String(cString: text)
    }
}

extension KafkaError {
    /// From a bare `rd_kafka_resp_err_t`; `_FATAL` is resolved to the underlying fatal error
    /// when `handle` is given.
    init(rd code: rd_kafka_resp_err_t, message: String? = nil, handle: OpaquePointer? = nil) {
        if code == RD_KAFKA_RESP_ERR__FATAL, let handle, let fatal = KafkaError.fatalCause(of: handle) {
            self = fatal
            return
        }
        self.init(code: Code(rawValue: code.rawValue), message: message ?? RDKafkaErrorNames.text(of: code.rawValue))
        if code == RD_KAFKA_RESP_ERR__FATAL {
            isFatal = true
            isRetriable = false
        }
    }

    /// From an `rd_kafka_error_t`, which it destroys.
    init(consuming error: OpaquePointer) {
        let code = rd_kafka_error_code(error)
        let message = rd_kafka_error_string(error).map { String(cString: $0) } ?? RDKafkaErrorNames.text(of: code.rawValue)
        self.init(
            code: Code(rawValue: code.rawValue), message: message,
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            transactionRequiresAbort: rd_kafka_error_txn_requires_abort(error) != 0)
        rd_kafka_error_destroy(error)
    }

    /// The instance's fatal error, if one was raised.
    static func fatalCause(of handle: OpaquePointer) -> KafkaError? {
        var buffer = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &buffer, buffer.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        let message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return KafkaError(code: Code(rawValue: code.rawValue), message: message, isRetriable: false, isFatal: true)
    }
}

/// Throws for a non-success `rd_kafka_resp_err_t`.
@inline(__always)
func rdCheck(_ code: rd_kafka_resp_err_t, handle: OpaquePointer? = nil, _ what: String) throws(KafkaError) {
    guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
    var error = KafkaError(rd: code, handle: handle)
    error.message = "\(what): \(error.message)"
    throw error
}

/// Throws for a non-nil `rd_kafka_error_t` (destroying it).
@inline(__always)
func rdCheck(_ error: OpaquePointer?, _ what: String) throws(KafkaError) {
    guard let error else { return }
    var kafkaError = KafkaError(consuming: error)
    kafkaError.message = "\(what): \(kafkaError.message)"
    throw kafkaError
}

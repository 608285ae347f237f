// libFuzzer target: arbitrary bytes as a .safetensors file (length prefix, JSON header, data).
// The header validation (`HeaderParser`, in memory) runs on every input; a file it accepts is also
// opened by `SafeTensorsFile(path:)` through an unlinked temporary file (a syscall or five per
// input only then) and every tensor read. Built by scripts/fuzz.sh, not by SwiftPM.
@testable import SafeTensors

#if canImport(Glibc)
    import Glibc
#endif

/// One unlinked file in /dev/shm (or $TMPDIR), rewritten for every input and opened by its /proc path.
private let scratch: (fd: Int32, path: String) = {
    let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    var template = Array("\(directory)/safetensors-fuzz-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
        guard let base = buffer.baseAddress else { return -1 }
        return mkstemp(base)
    }
    if fd < 0 {
        fputs("safetensors fuzzer: cannot create a file in \(directory)\n", stderr)
        exit(2)
    }
    unlink(String(cString: template))
    return (fd, "/proc/self/fd/\(fd)")
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size >= 8, let data else { return 0 }  // SafeTensorsFile refuses these before parsing
    let header: ParsedHeader
    do {
        header = try HeaderParser.parse(UnsafeRawBufferPointer(start: data, count: size), file: "fuzz")
    } catch {
        precondition(!error.message.isEmpty, "empty error message")
        return 0
    }
    guard ftruncate(scratch.fd, 0) == 0 else { return 0 }
    var written = 0
    while written < size {
        let n = pwrite(scratch.fd, data + written, size - written, off_t(written))
        if n <= 0 { return 0 }
        written += n
    }
    let file: SafeTensorsFile
    do {
        file = try SafeTensorsFile(path: scratch.path)
    } catch {
        preconditionFailure("the header parser accepted a file that does not open: \(error)")
    }
    precondition(file.infos == header.entries, "the file's tensors differ from the parsed header's")
    for info in file.infos {
        precondition(info.dataOffsets.upperBound <= file.dataSectionByteCount, "tensor \(info.name) ends beyond the data")
        if info.dtype.convertsToInt64 {
            _ = try? file.int64s(info.name)
        } else {
            _ = try? file.floats(info.name)
        }
        _ = try? file.withRawBytes(info.name) { $0.reduce(0, &+) }
    }
    _ = file.metadata
    return 0
}

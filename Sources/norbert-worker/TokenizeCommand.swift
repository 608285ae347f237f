import ArgumentParser
import Foundation
import Tokenizers

struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Run a Hugging Face tokenizer.json on JSON-lines requests from stdin.",
        discussion: """
            Loads DIR/tokenizer.json (plus tokenizer_config.json and special_tokens_map.json when \
            present). Each stdin line is a JSON object shaped like a line of the tokenizer fixtures' \
            cases.jsonl; only `kind` and `input` are read:

              {"kind": "encode", "input": {"text": "Hei", "text_pair": null, "add_special_tokens": true,
                                           "truncation": null, "padding": null}}
              {"kind": "encode_batch", "input": {"batch": [{"text": "a", "text_pair": null}], ...}}
              {"kind": "decode", "input": {"ids": [1, 821], "skip_special_tokens": false}}

            truncation: {max_length, stride, strategy (longest_first|only_first|only_second), direction (left|right)}
            padding: {length (null = batch longest), pad_to_multiple_of, direction, pad_id, pad_type_id, pad_token}

            For each line one JSON line goes to stdout: for encode the fields ids, tokens, offsets \
            (Unicode code point [start, end) into the original text; pair tokens count into text_pair), \
            type_ids, special_tokens_mask, attention_mask, word_ids, sequence_ids and, when truncation \
            is set, overflowing; for encode_batch {"encodings": [...]}; for decode {"text": ...}. \
            Where the Hugging Face library raises, the line is {"error": "..."}. Blank lines are skipped.
            """)

    @Option(name: .long, help: "Folder holding tokenizer.json (and optionally tokenizer_config.json, special_tokens_map.json).")
    var tokenizer: String

    func run() async throws {
        let tok: Tokenizer
        do {
            tok = try Tokenizer(directory: tokenizer)
        } catch {
            throw ValidationError("tokenize: cannot load \(tokenizer): \(error.description)")
        }
        var out = FileHandleOutput()
        while let line = readLine(strippingNewline: true) {
            if line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }
            out.write(CaseRunner.run(line: line, tokenizer: tok))
        }
        out.flush()
    }
}

/// Buffered stdout writer.
struct FileHandleOutput {
    var buffer: [UInt8] = []

    mutating func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count > 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

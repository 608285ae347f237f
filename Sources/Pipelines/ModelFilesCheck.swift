import NorBERT
import Tokenizers
import Wire

/// What `serve --check-config` reads of the model files without loading any weights, so that
/// callers check a head folder or a tokenizer through Pipelines alone.
public enum ModelFilesCheck {
    /// A head folder's `config.json` parsed, its head class known and its safetensors header(s)
    /// opened. Returns the head class (`HeadKind` raw value) and the tasks it serves; throws the
    /// loader's error (NorBERTError, SafeTensorsError), whose description says what is wrong.
    public static func head(directory: String) throws -> (kind: String, tasks: [PipelineTask]) {
        let config = try NorBERTConfig.load(directory: directory)
        let kind = try NorBERTModel.kind(from: config)
        _ = try NorBERTModel.openCheckpoint(directory: directory)
        return (kind.rawValue, PipelineTask.served(by: kind))
    }

    /// `tokenizer.json` in `directory` loaded as the engine would load it.
    public static func tokenizer(directory: String) throws {
        _ = try Tokenizer(directory: directory)
    }
}

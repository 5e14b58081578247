//! The input document of a call: the file's text, its language, and any extra fields.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use super::CallArgs;
use super::failure::Failure;

/// Largest file `call` reads; the server's own limit (`agents.max_source_bytes`) is far lower
/// and says so with INVALID_ARGUMENT.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The agents' language name for a file, from its extension; `None` when the extension does
/// not say.
pub fn infer_language(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "mts" | "cts" | "tsx" => "typescript",
        "java" => "java",
        "go" => "go",
        "cs" => "csharp",
        "php" => "php",
        "rb" => "ruby",
        _ => return None,
    })
}

/// `{"source_code": <file>, "language": <language>}`, then `--options`, then each `--input`
/// (later ones win).
pub(super) fn document(args: &CallArgs) -> Result<Value, Failure> {
    let source = read_source(&args.file)?;
    let mut document = Map::new();
    document.insert("source_code".into(), Value::String(source));
    let language = args
        .language
        .clone()
        .or_else(|| infer_language(&args.file).map(str::to_owned));
    if let Some(language) = language {
        document.insert("language".into(), Value::String(language));
    }
    if let Some(options) = &args.options {
        match serde_json::from_str::<Value>(options) {
            Ok(Value::Object(fields)) => document.extend(fields),
            _ => {
                return Err(Failure::local(
                    "--options must be one JSON object, e.g. '{\"analysis_type\": \"security\"}'",
                ));
            }
        }
    }
    for pair in &args.inputs {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(Failure::local(format!(
                "--input `{pair}` is not KEY=VALUE; write e.g. --input analysis_type=security"
            )));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        document.insert(key.to_owned(), value);
    }
    if !document.contains_key("language") {
        return Err(Failure::local(format!(
            "cannot tell the language of {} from its extension; pass --language (one of rust, python, javascript, typescript, java, go, csharp, php, ruby)",
            args.file.display()
        )));
    }
    Ok(Value::Object(document))
}

fn read_source(path: &Path) -> Result<String, Failure> {
    let cannot = |e: std::io::Error| Failure::local(format!("cannot read {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Failure::local(format!(
            "{} is over {MAX_FILE_BYTES} bytes; send a smaller file",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        Failure::local(format!(
            "{} is not UTF-8 text; the agents read source code only",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_extensions() {
        assert_eq!(infer_language(Path::new("src/main.rs")), Some("rust"));
        assert_eq!(infer_language(Path::new("a/B.TSX")), Some("typescript"));
        assert_eq!(infer_language(Path::new("x.pyi")), Some("python"));
        assert_eq!(infer_language(Path::new("Makefile")), None);
        assert_eq!(infer_language(Path::new("notes.txt")), None);
        for language in agents_core::Language::ALL {
            let found = ["rs", "py", "js", "ts", "java", "go", "cs", "php", "rb"]
                .iter()
                .any(|ext| {
                    infer_language(Path::new(&format!("f.{ext}"))) == Some(language.as_str())
                });
            assert!(found, "no extension maps to {}", language.as_str());
        }
    }
}

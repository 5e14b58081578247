//! The agent input each gRPC request sends: the payload file as is, or (`--unique-sources`) with
//! a comment naming the request appended to its `source_code`, so that no two requests carry
//! the same file and the server's facts cache never answers.

use anyhow::Context as _;
use serde_json::Value;

/// What request `i` sends as `input_json`.
#[derive(Debug, Clone)]
pub enum GrpcInput {
    /// Every request sends the same document (a server may answer its facts from its cache).
    Same(String),
    /// Every request sends its own source: the document with `// load run <run> request <i>`
    /// (or `# ...`) as the source's last line. `run` differs per process, so the next rate of
    /// a benchmark (a new tool process against the same server) does not resend the sources
    /// of the one before, which the server's cache may still hold.
    Unique {
        /// The payload document.
        template: Value,
        /// The line comment of the payload's language.
        comment: &'static str,
        /// This run's tag.
        run: String,
    },
}

impl GrpcInput {
    /// The payload file's text as is.
    pub fn same(text: String) -> Self {
        Self::Same(text)
    }

    /// Unique sources from the payload document, which must have a `source_code` string.
    pub fn unique(text: &str, run: impl Into<String>) -> anyhow::Result<Self> {
        let template: Value = serde_json::from_str(text).context("the payload is not JSON")?;
        if !template.get("source_code").is_some_and(Value::is_string) {
            anyhow::bail!("--unique-sources needs a payload with a `source_code` string");
        }
        let comment = match template.get("language").and_then(Value::as_str) {
            Some("python" | "ruby") => "#",
            _ => "//",
        };
        Ok(Self::Unique {
            template,
            comment,
            run: run.into(),
        })
    }

    /// The `input_json` of request `i`.
    pub fn for_request(&self, i: u64) -> String {
        match self {
            Self::Same(text) => text.clone(),
            Self::Unique {
                template,
                comment,
                run,
            } => {
                let mut input = template.clone();
                if let Some(Value::String(source)) = input.get_mut("source_code") {
                    if !source.ends_with('\n') {
                        source.push('\n');
                    }
                    source.push_str(&format!("{comment} load run {run} request {i}\n"));
                }
                input.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn unique_sources_differ_per_request_and_keep_the_rest() {
        let text = r#"{"source_code": "fn a() {}", "language": "rust", "focus": ["x"]}"#;
        let same = GrpcInput::same(text.to_owned());
        assert_eq!(same.for_request(1), same.for_request(2));
        let unique = GrpcInput::unique(text, "r1").unwrap();
        let one: Value = serde_json::from_str(&unique.for_request(1)).unwrap();
        let two: Value = serde_json::from_str(&unique.for_request(2)).unwrap();
        assert_eq!(one["source_code"], "fn a() {}\n// load run r1 request 1\n");
        assert_ne!(one["source_code"], two["source_code"]);
        assert_eq!(one["focus"], serde_json::json!(["x"]));
        // Another run sends other sources for the same request numbers.
        let next_run = GrpcInput::unique(text, "r2").unwrap();
        assert_ne!(next_run.for_request(1), unique.for_request(1));
        let python = r#"{"source_code": "x = 1\n", "language": "python"}"#;
        let python = GrpcInput::unique(python, "r1").unwrap();
        let three: Value = serde_json::from_str(&python.for_request(3)).unwrap();
        assert_eq!(three["source_code"], "x = 1\n# load run r1 request 3\n");
        assert!(GrpcInput::unique(r#"{"language": "rust"}"#, "r1").is_err());
    }
}

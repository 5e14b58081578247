//! The result on stdout: a human-readable text per agent, or `--json`. The run's metadata
//! (provider, tokens, time, trace) goes to stderr in text mode, so the output of
//! test-generation or documentation can be piped straight into a file.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::pb;

/// `{"output": <the output document>, "metadata": {...}}`, pretty-printed.
pub(super) fn json(response: &pb::ExecuteResponse, out: &mut dyn Write) -> io::Result<()> {
    let document = json!({
        "output": output(response),
        "metadata": response.metadata.as_ref().map(metadata),
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&document)?)
}

/// The output as text for `agent`, and a summary line of the metadata on `err`.
pub(super) fn text(
    agent: &str,
    response: &pb::ExecuteResponse,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<()> {
    let output = output(response);
    match agent {
        "code-analysis" => analysis(&output, out)?,
        "documentation" => documentation(&output, out)?,
        "test-generation" => tests(&output, out)?,
        // An agent this client does not know yet: its document as it is.
        _ => writeln!(out, "{}", serde_json::to_string_pretty(&output)?)?,
    }
    if let Some(m) = &response.metadata {
        let provider = if m.provider.is_empty() {
            "no provider".to_owned()
        } else {
            format!("{} ({})", m.provider, m.model)
        };
        let fallbacks = if m.fallbacks.is_empty() {
            String::new()
        } else {
            format!(", after {}", m.fallbacks.join(", "))
        };
        let degraded = if m.degraded {
            format!(", DEGRADED: {}", m.degraded_reason)
        } else {
            String::new()
        };
        writeln!(
            err,
            "-- {provider}{fallbacks}{degraded}; {} ms ({} ms at the model); tokens {} in, {} out; trace {}",
            m.latency_ms, m.provider_latency_ms, m.prompt_tokens, m.completion_tokens, m.trace_id
        )?;
    }
    Ok(())
}

fn output(response: &pb::ExecuteResponse) -> Value {
    serde_json::from_str(&response.output_json)
        .unwrap_or_else(|_| Value::String(response.output_json.clone()))
}

fn metadata(m: &pb::ExecutionMetadata) -> Value {
    json!({
        "agent_id": m.agent_id,
        "request_id": m.request_id,
        "trace_id": m.trace_id,
        "provider": m.provider,
        "model": m.model,
        "fallbacks": m.fallbacks,
        "prompt_tokens": m.prompt_tokens,
        "completion_tokens": m.completion_tokens,
        "latency_ms": m.latency_ms,
        "provider_latency_ms": m.provider_latency_ms,
        "degraded": m.degraded,
        "degraded_reason": m.degraded_reason,
    })
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// `line 12` or `-` when the finding is not tied to a line.
fn line_of(value: &Value) -> String {
    value["line"]
        .as_u64()
        .map_or_else(|| "-".to_owned(), |line| line.to_string())
}

fn analysis(output: &Value, out: &mut dyn Write) -> io::Result<()> {
    let suggestions = items(&output["suggestions"]);
    writeln!(out, "Suggestions ({}):", suggestions.len())?;
    for s in suggestions {
        writeln!(
            out,
            "  line {:>4}  {:<8} {}/{}: {}",
            line_of(s),
            str_of(s, "severity"),
            str_of(s, "category"),
            str_of(s, "type"),
            str_of(s, "message")
        )?;
    }
    let complexity = &output["complexity"];
    if complexity.is_object() {
        let cognitive = complexity["cognitive"]
            .as_u64()
            .map_or_else(String::new, |c| format!(", cognitive {c}"));
        writeln!(
            out,
            "Complexity: cyclomatic {}{cognitive}, maintainability {}",
            complexity["cyclomatic"],
            str_of(complexity, "maintainability")
        )?;
    }
    let security = &output["security"];
    let vulnerabilities = items(&security["vulnerabilities"]);
    writeln!(
        out,
        "Security: risk {}, {} vulnerabilities",
        str_of(security, "risk_level"),
        vulnerabilities.len()
    )?;
    for v in vulnerabilities {
        let cwe = v["cwe"]
            .as_str()
            .map_or_else(String::new, |c| format!(" ({c})"));
        writeln!(
            out,
            "  line {:>4}  {:<8} {}{cwe}: {}",
            line_of(v),
            str_of(v, "severity"),
            str_of(v, "type"),
            str_of(v, "description")
        )?;
    }
    let performance = &output["performance"];
    let bottlenecks = items(&performance["bottlenecks"]);
    let mut summary = format!("Performance: {} bottlenecks", bottlenecks.len());
    for key in ["algorithmic_complexity", "memory_usage"] {
        if let Some(text) = performance[key].as_str() {
            summary.push_str(&format!(", {} {text}", key.replace('_', " ")));
        }
    }
    writeln!(out, "{summary}")?;
    for b in bottlenecks {
        writeln!(
            out,
            "  line {:>4}  {:<8} {}: {}",
            line_of(b),
            str_of(b, "impact"),
            str_of(b, "type"),
            str_of(b, "description")
        )?;
    }
    writeln!(out, "Confidence: {}", output["confidence"])
}

fn documentation(output: &Value, out: &mut dyn Write) -> io::Result<()> {
    for section in items(&output["sections"]) {
        writeln!(out, "## {}\n", str_of(section, "title"))?;
        let content = str_of(section, "content");
        if !content.is_empty() {
            writeln!(out, "{content}\n")?;
        }
        let parameters = items(&section["parameters"]);
        for p in parameters {
            let optional = if p["optional"].as_bool() == Some(true) {
                ", optional"
            } else {
                ""
            };
            writeln!(
                out,
                "- `{}` ({}{optional}): {}",
                str_of(p, "name"),
                str_of(p, "type"),
                str_of(p, "description")
            )?;
        }
        if !parameters.is_empty() {
            writeln!(out)?;
        }
        if let Some(returns) = section["return_type"].as_str() {
            writeln!(out, "Returns `{returns}`.\n")?;
        }
        for example in items(&section["examples"]) {
            writeln!(out, "```\n{}\n```\n", example.as_str().unwrap_or_default())?;
        }
    }
    Ok(())
}

fn tests(output: &Value, out: &mut dyn Write) -> io::Result<()> {
    for import in items(&output["imports"]) {
        writeln!(out, "{}", import.as_str().unwrap_or_default())?;
    }
    if !items(&output["imports"]).is_empty() {
        writeln!(out)?;
    }
    if let Some(setup) = output["setup"].as_str().filter(|s| !s.is_empty()) {
        writeln!(out, "{setup}\n")?;
    }
    for test in items(&output["tests"]) {
        writeln!(out, "{}\n", str_of(test, "code").trim_end())?;
    }
    if let Some(teardown) = output["teardown"].as_str().filter(|s| !s.is_empty()) {
        writeln!(out, "{teardown}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(output: Value) -> pb::ExecuteResponse {
        pb::ExecuteResponse {
            output_json: output.to_string(),
            metadata: Some(pb::ExecutionMetadata {
                provider: "fake".into(),
                model: "m".into(),
                trace_id: "4bf9".into(),
                ..Default::default()
            }),
        }
    }

    fn render(agent: &str, output: Value) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        text(agent, &response(output), &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn each_agent_renders_its_essentials() {
        let (out, err) = render(
            "code-analysis",
            json!({
                "suggestions": [{"line": 3, "severity": "high", "category": "security", "type": "bug", "message": "eval of input"}],
                "complexity": {"cyclomatic": 4, "maintainability": "good"},
                "security": {"risk_level": "high", "vulnerabilities": [{"type": "injection", "severity": "critical", "cwe": "CWE-95", "description": "eval"}]},
                "performance": {"bottlenecks": []},
                "confidence": 0.5
            }),
        );
        assert!(
            out.contains("line    3  high     security/bug: eval of input"),
            "{out}"
        );
        assert!(
            out.contains("Complexity: cyclomatic 4, maintainability good"),
            "{out}"
        );
        assert!(
            out.contains("line    -  critical injection (CWE-95): eval"),
            "{out}"
        );
        assert!(
            err.contains("fake (m)") && err.contains("trace 4bf9"),
            "{err}"
        );

        let (out, _) = render(
            "documentation",
            json!({"sections": [{"title": "id", "content": "Returns x.", "examples": ["id(1)"]}]}),
        );
        assert!(out.starts_with("## id\n\nReturns x.\n"), "{out}");
        assert!(out.contains("```\nid(1)\n```"), "{out}");

        let (out, _) = render(
            "test-generation",
            json!({"imports": ["use super::*;"], "tests": [{"name": "t", "code": "#[test]\nfn t() {}\n"}]}),
        );
        assert_eq!(out, "use super::*;\n\n#[test]\nfn t() {}\n\n");
    }

    #[test]
    fn json_has_the_output_and_the_metadata() {
        let mut out = Vec::new();
        json(&response(json!({"a": 1})), &mut out).unwrap();
        let document: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(document["output"]["a"], 1);
        assert_eq!(document["metadata"]["provider"], "fake");
    }
}

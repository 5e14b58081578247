//! The server's configuration: one TOML file, `AGENTS_` environment overrides, embedded
//! defaults that run on a fresh machine, and validation that names every bad key.
//!
//! Unknown keys are errors: a typo in a limit must not silently leave the default in force.

mod env;
mod facts;
mod model;
mod queue;

pub use env::apply_env_overrides;
pub use facts::{
    DEFAULT_FACTS_CACHE_BYTES, FactsConfig, MAX_FACTS_CACHE_BYTES, MIN_FACTS_CACHE_BYTES,
};
pub use model::{BusConfig, ListenConfig, ProviderEntry, ServerConfig};
pub use queue::{Dispatch, TasksConfig, WorkerConfig};

pub use crate::telemetry::{LogFormat, TelemetryConfig};

use std::path::Path;

use agents_core::ConfigError;

/// The embedded defaults, as a TOML document (also what `agents-server config defaults` prints).
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Loads a config: the file (or the embedded defaults), then `AGENTS_` overrides from `vars`,
/// then validation. Every error names its key.
pub fn load(
    file: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<ServerConfig, Vec<ConfigError>> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )]
        })?,
        None => DEFAULTS_TOML.to_owned(),
    };
    parse(&text, vars)
}

/// Parses a TOML document with overrides and validates it.
pub fn parse(
    text: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<ServerConfig, Vec<ConfigError>> {
    let mut document: toml::Table = toml::from_str(text).map_err(|e| vec![toml_error(&e)])?;
    apply_env_overrides(&mut document, vars).map_err(|e| vec![e])?;
    let config: ServerConfig = toml::Table::try_into(document).map_err(|e| vec![toml_error(&e)])?;
    let errors = config.validate();
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// A TOML error as a `ConfigError`: the key when toml names one, with the line and column.
fn toml_error(error: &toml::de::Error) -> ConfigError {
    let message = error.message().to_owned();
    // toml says "unknown field `x`, expected one of ..."; the span locates it in the file.
    let location = error
        .span()
        .map(|span| format!(" (at byte {})", span.start))
        .unwrap_or_default();
    ConfigError::new("", format!("{message}{location}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_embedded_defaults_are_valid_and_loopback() {
        let config = load(None, Vec::new()).unwrap();
        assert!(config.server.listen.ip().is_loopback());
        assert_eq!(config.providers.len(), 1);
        assert_eq!(config.chain().providers[0].provider, "local");
        assert_eq!(config.agents.max_source_bytes, 256 * 1024);
    }

    /// What a config file leaves out is off: it used to get the embedded defaults' audit log in
    /// `./data/audit` (fatal on a read-only root filesystem) and metrics port 9464, with no way
    /// to turn either off, though the docs said leaving them out did.
    #[test]
    fn a_file_without_an_audit_log_or_metrics_port_has_neither() {
        let defaults = load(None, Vec::new()).unwrap();
        assert!(defaults.bus.audit.is_some());
        assert!(defaults.server.metrics_listen.is_some());

        let bare = parse("[server]\nlisten = \"127.0.0.1:7000\"\n", Vec::new()).unwrap();
        assert!(bare.bus.audit.is_none());
        assert!(bare.server.metrics_listen.is_none());
        let empty = parse("", Vec::new()).unwrap();
        assert!(empty.bus.audit.is_none());
        assert!(empty.server.metrics_listen.is_none());

        // Named, in the file or the environment, they are on.
        let named = parse(
            "",
            vars(&[
                ("AGENTS_BUS__AUDIT__DIR", "/var/lib/agents/audit"),
                ("AGENTS_SERVER__METRICS_LISTEN", "127.0.0.1:9100"),
            ]),
        )
        .unwrap();
        assert_eq!(
            named.bus.audit.unwrap().dir,
            std::path::PathBuf::from("/var/lib/agents/audit")
        );
        assert_eq!(named.server.metrics_listen.unwrap().port(), 9100);
    }

    /// Connections are pinged by default, so a vanished client's connections and streams end;
    /// 0 turns it off, and values a client would take for abuse are refused by key.
    #[test]
    fn http2_keepalive_is_on_by_default_and_checked() {
        let config = parse("", Vec::new()).unwrap();
        assert_eq!(
            config.server.http2_keepalive(),
            Some((Duration::from_secs(60), Duration::from_secs(20)))
        );
        let off = parse("[server]\nhttp2_keepalive_interval_ms = 0\n", Vec::new()).unwrap();
        assert_eq!(off.server.http2_keepalive(), None);
        let errors = parse(
            "[server]\nhttp2_keepalive_interval_ms = 10\nhttp2_keepalive_timeout_ms = 0\n",
            Vec::new(),
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server.http2_keepalive_interval_ms",
                "server.http2_keepalive_timeout_ms"
            ],
            "{errors:?}"
        );
    }

    #[test]
    fn environment_overrides_tables_arrays_and_types() {
        let config = parse(
            DEFAULTS_TOML,
            vars(&[
                ("AGENTS_SERVER__LISTEN", "127.0.0.1:6000"),
                ("AGENTS_SERVER__SHUTDOWN_GRACE_MS", "250"),
                ("AGENTS_PROVIDERS__0__OPENAI__MODEL", "qwen2.5-coder"),
                ("AGENTS_PROVIDERS__0__POLICIES__RETRY__MAX_RETRIES", "0"),
                ("AGENTS_REQUIRE_PEERS", "1"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server.listen.port(), 6000);
        assert_eq!(config.server.shutdown_grace_ms, 250);
        assert_eq!(
            config.providers[0].openai.as_ref().unwrap().model,
            "qwen2.5-coder"
        );
        assert_eq!(config.providers[0].policies.retry.max_retries, 0);

        let errors = parse(
            DEFAULTS_TOML,
            vars(&[("AGENTS_PROVIDERS__7__OPENAI__MODEL", "x")]),
        )
        .unwrap_err();
        assert!(errors[0].message.contains("past the end"), "{errors:?}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let errors = parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 2\n",
            Vec::new(),
        )
        .unwrap_err();
        assert!(
            errors[0].message.contains("unknown field `lisen`"),
            "{errors:?}"
        );
        let errors = parse("[[providers]]\nopenai = { id = \"a\", base_url = \"http://x/v1\", model = \"m\", modle = 1 }\n", Vec::new()).unwrap_err();
        assert!(errors[0].message.contains("modle"), "{errors:?}");
    }

    #[test]
    fn every_invalid_value_is_reported_with_its_key() {
        let text = r#"
            [server]
            max_message_bytes = 10
            shutdown_grace_ms = 0
            [agents]
            max_tokens_cap = 0
            [facts]
            cache_bytes = 2147483648
            [[providers]]
            openai = { id = "a", base_url = "not a url", model = "m" }
            policies = { timeout = { request_timeout_ms = 0 } }
            [[providers]]
            [[providers]]
            openai = { id = "a", base_url = "http://127.0.0.1:1/v1", model = "m" }
            [chain]
            id = "main"
            providers = [{ provider = "zzz" }]
        "#;
        let errors = parse(text, Vec::new()).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for expected in [
            "server.max_message_bytes",
            "server.shutdown_grace_ms",
            "agents.max_source_bytes",
            "agents.max_tokens_cap",
            "facts.cache_bytes",
            "providers[0].openai.base_url",
            "providers[0].policies.timeout.request_timeout_ms",
            "providers[1]",
            "providers[2].id",
            "chain.providers[0].provider",
        ] {
            assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
        }
    }

    #[test]
    fn the_facts_cache_is_on_by_default_and_set_by_file_or_environment() {
        let config = load(None, Vec::new()).unwrap();
        assert_eq!(config.facts.cache_bytes, DEFAULT_FACTS_CACHE_BYTES);
        let config = parse("[facts]\ncache_bytes = 0\n", Vec::new()).unwrap();
        assert_eq!(config.facts.cache_bytes, 0);
        let config = load(
            None,
            vec![("AGENTS_FACTS__CACHE_BYTES".to_owned(), "65536".to_owned())],
        )
        .unwrap();
        assert_eq!(config.facts.cache_bytes, MIN_FACTS_CACHE_BYTES);
        // So small that no entry would fit: refused, with the key.
        let errors = parse("[facts]\ncache_bytes = 1024\n", Vec::new()).unwrap_err();
        assert_eq!(errors[0].path, "facts.cache_bytes", "{errors:?}");
    }

    #[test]
    fn telemetry_is_set_by_file_or_environment_and_checked_by_key() {
        let config = load(None, Vec::new()).unwrap();
        assert_eq!(config.telemetry, TelemetryConfig::default());
        let config = parse(
            DEFAULTS_TOML,
            vars(&[
                ("AGENTS_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("AGENTS_TELEMETRY__LOG_FORMAT", "text"),
                ("AGENTS_TELEMETRY__SAMPLING_RATIO", "0.25"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.telemetry.otlp_endpoint.as_deref(),
            Some("http://127.0.0.1:4317")
        );
        assert_eq!(config.telemetry.log_format, LogFormat::Text);
        assert!((config.telemetry.sampling_ratio - 0.25).abs() < f64::EPSILON);

        let errors = parse(
            DEFAULTS_TOML,
            vars(&[
                ("AGENTS_TELEMETRY__SAMPLING_RATIO", "2.5"),
                ("AGENTS_TELEMETRY__OTLP_ENDPOINT", "collector:4317"),
            ]),
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["telemetry.otlp_endpoint", "telemetry.sampling_ratio"],
            "{errors:?}"
        );
        let errors = parse("[telemetry]\nlog_format = \"xml\"\n", Vec::new()).unwrap_err();
        assert!(errors[0].message.contains("xml"), "{errors:?}");
        let errors = parse("[telemetry]\nsample = 1.0\n", Vec::new()).unwrap_err();
        assert!(
            errors[0].message.contains("unknown field `sample`"),
            "{errors:?}"
        );
    }

    #[test]
    fn unreadable_files_and_bad_toml_say_so() {
        let errors = load(Some(Path::new("/nonexistent/agents.toml")), Vec::new()).unwrap_err();
        assert!(
            errors[0]
                .message
                .contains("cannot read /nonexistent/agents.toml")
        );
        let errors = parse("[server", Vec::new()).unwrap_err();
        assert!(!errors[0].message.is_empty());
    }
}

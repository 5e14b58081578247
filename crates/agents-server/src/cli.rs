//! The `agents-server` command line.
//!
//! Every subcommand does real work with what the workspace has: serve, call a server
//! (`call`, in [`crate::client`]), list the agents, print their schemas, validate an input
//! document the way the server will, and write or check the committed schema files.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use agents_core::{Agent, AgentConfig, AgentError, builtin_agents, exported_schemas};
use clap::{Parser, Subcommand, ValueEnum};

/// Largest input document `validate` reads; far above any source the agents accept.
const MAX_INPUT_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "agents-server",
    version,
    about = "Serves code-intelligence agents over gRPC."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the agents over gRPC (with health and reflection) until SIGINT or SIGTERM.
    Serve {
        /// A TOML config file; without one, the embedded defaults (loopback, a local gateway).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Calls a running server: sends a source file to an agent and prints the result.
    ///
    /// `agents-server call code-analysis --file src/main.rs --stream`
    Call(Box<crate::client::CallArgs>),
    /// Pulls queued tasks from NATS JetStream (`[tasks]`) and runs them with the configured
    /// agents and providers (`[worker]`: concurrency, agents, grace period) until SIGINT or
    /// SIGTERM; then finishes or hands back the running tasks.
    Worker {
        /// A TOML config file; without one, the embedded defaults.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validates a config file (with `AGENTS_` overrides applied) and prints every error with
    /// its key. Exits 1 when there is one.
    CheckConfig {
        /// The TOML file; without one, the embedded defaults.
        file: Option<PathBuf>,
    },
    /// Lists the built-in agents with their capability and description.
    Agents {
        /// Print JSON (with the input and output schemas) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prints an agent's JSON Schema.
    Schema {
        /// The agent id, e.g. `code-analysis`.
        agent: String,
        /// Which schema.
        #[arg(long, value_enum, default_value_t = SchemaKind::Input)]
        kind: SchemaKind,
    },
    /// Validates an input document (a file, or `-` for stdin) against an agent's input schema
    /// and limits, exactly as the server will. Exits 1 when it is invalid.
    Validate {
        /// The agent id, e.g. `code-analysis`.
        agent: String,
        /// The JSON input document.
        file: PathBuf,
    },
    /// Works with the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Helps set up API keys (`[auth]`).
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Helps write a config file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Writes every JSON Schema (agent inputs, outputs, model replies, event payloads) under a
    /// directory, or with `--check` fails when the files there differ from the code.
    Schemas {
        /// Where the schemas live, e.g. `schemas`.
        dir: PathBuf,
        /// Compare instead of writing.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Checks an audit file's hash chain; exits 1 and names the first broken line when it is
    /// not intact.
    Verify {
        /// The audit file, e.g. `data/audit/audit-2026-11-26.jsonl`.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Reads an API key from stdin and prints the SHA-256 digest that goes into
    /// `auth.keys[].sha256`. One trailing newline is dropped (`echo "$KEY" | …` hashes the key,
    /// not the key and a newline). The key is never taken as an argument: arguments are visible
    /// to every user of the machine.
    HashKey,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints the embedded defaults, what `serve` runs with without `--config`: a starting point
    /// for a config file (a file replaces them; what it leaves out is off or its default).
    Defaults,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SchemaKind {
    Input,
    Output,
    Reply,
}

/// Runs the command line, writing results to `out` and diagnostics to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let cli = match cli.command {
        Command::Call(args) => return crate::client::call(*args, out, err),
        command => Cli { command },
    };
    match execute(cli, out) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(err, "error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn execute(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve { config } => {
            let config = load_config(config.as_deref())?;
            // `serve` installs its own subscriber (`[telemetry]`: JSON logs, spans).
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(crate::serve::run_until_signal(config))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Worker { config } => {
            let config = load_config(config.as_deref())?;
            // Like `serve`, the worker installs its subscriber from `[telemetry]`.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(crate::worker::run_until_signal(config));
            // Tasks are finished or handed back by now; nothing left may hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            result?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::CheckConfig { file } => {
            return match crate::config::load(file.as_deref(), std::env::vars()) {
                Ok(config) => {
                    let providers: Vec<&str> = config.providers.iter().map(|p| p.id()).collect();
                    writeln!(
                        out,
                        "ok: listens on {}, providers: {}",
                        config.server.listen,
                        providers.join(", ")
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for error in errors {
                        writeln!(out, "error: {error}")?;
                    }
                    Ok(ExitCode::from(1))
                }
            };
        }
        Command::Audit {
            command: AuditCommand::Verify { file },
        } => {
            let report = agents_bus::verify_audit_file(file)
                .map_err(|e| anyhow::anyhow!("cannot verify {}: {e}", file.display()))?;
            return match report.broken {
                None => {
                    let last = report.last_hash.as_deref().unwrap_or("none (empty file)");
                    writeln!(
                        out,
                        "intact: {} events, last hash {last}",
                        report.verified_lines
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Some(broken) => {
                    writeln!(
                        out,
                        "broken at {broken} ({} lines before it verify)",
                        report.verified_lines
                    )?;
                    Ok(ExitCode::from(1))
                }
            };
        }
        Command::Auth {
            command: AuthCommand::HashKey,
        } => return hash_key(&mut std::io::stdin().lock(), out),
        Command::Config {
            command: ConfigCommand::Defaults,
        } => {
            write!(out, "{}", crate::config::DEFAULTS_TOML)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let config = AgentConfig::default();
    let agents = builtin_agents(&config)?;
    match cli.command {
        Command::Agents { json } => list_agents(&agents, json, out)?,
        Command::Schema { agent, kind } => {
            let agent = find(&agents, &agent)?;
            let schema = match kind {
                SchemaKind::Input => agent.input_schema().clone(),
                SchemaKind::Output => agent.output_schema().clone(),
                SchemaKind::Reply => reply_schema(&config, agent.id())?,
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&schema)?)?;
        }
        Command::Validate { agent, file } => {
            let agent = find(&agents, &agent)?;
            let document = read_input(&file)?;
            let input: serde_json::Value = match serde_json::from_slice(&document) {
                Ok(value) => value,
                Err(e) => {
                    writeln!(
                        out,
                        "invalid: not JSON (line {}, column {}): {:?} error",
                        e.line(),
                        e.column(),
                        e.classify()
                    )?;
                    return Ok(ExitCode::from(1));
                }
            };
            match agent.validate_input(&input) {
                Ok(()) => writeln!(out, "valid: {} input", agent.id())?,
                Err(AgentError::Validation { violations, .. }) => {
                    for violation in violations {
                        writeln!(out, "invalid: {violation}")?;
                    }
                    return Ok(ExitCode::from(1));
                }
                Err(other) => return Err(other.into()),
            }
        }
        Command::Schemas { dir, check } => {
            return write_or_check_schemas(&config, &dir, check, out);
        }
        Command::Serve { .. }
        | Command::Worker { .. }
        | Command::CheckConfig { .. }
        | Command::Audit { .. }
        | Command::Auth { .. }
        | Command::Config { .. }
        | Command::Call(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `auth hash-key`: the digest of the key on `input`, without one trailing newline.
fn hash_key(input: &mut dyn Read, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut key = String::new();
    input
        .read_to_string(&mut key)
        .map_err(|e| anyhow::anyhow!("cannot read the key from stdin: {e}"))?;
    let key = key
        .strip_suffix("\r\n")
        .or_else(|| key.strip_suffix('\n'))
        .unwrap_or(&key);
    anyhow::ensure!(
        !key.is_empty(),
        "no key on stdin; pipe it in: `printf %s \"$KEY\" | agents-server auth hash-key`"
    );
    writeln!(out, "{}", crate::auth::digest_hex(key))?;
    Ok(ExitCode::SUCCESS)
}

fn load_config(file: Option<&Path>) -> anyhow::Result<crate::config::ServerConfig> {
    crate::config::load(file, std::env::vars()).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "the configuration is invalid (check it with `agents-server check-config`):\n  {}",
            lines.join("\n  ")
        )
    })
}

fn list_agents(agents: &[Arc<dyn Agent>], json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        let listing: Vec<serde_json::Value> = agents
            .iter()
            .map(|a| {
                serde_json::json!({
                    "id": a.id(),
                    "capability": a.capability(),
                    "description": a.description(),
                    "input_schema": a.input_schema(),
                    "output_schema": a.output_schema(),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&listing)?)?;
    } else {
        writeln!(out, "{:<16} {:<16} DESCRIPTION", "ID", "CAPABILITY")?;
        for agent in agents {
            writeln!(
                out,
                "{:<16} {:<16} {}",
                agent.id(),
                agent.capability().as_str(),
                agent.description()
            )?;
        }
    }
    Ok(())
}

fn find<'a>(agents: &'a [Arc<dyn Agent>], id: &str) -> anyhow::Result<&'a Arc<dyn Agent>> {
    agents.iter().find(|a| a.id() == id).ok_or_else(|| {
        let known: Vec<&str> = agents.iter().map(|a| a.id()).collect();
        anyhow::anyhow!("no agent `{id}`; the agents are: {}", known.join(", "))
    })
}

fn reply_schema(config: &AgentConfig, id: &str) -> anyhow::Result<serde_json::Value> {
    let path = format!("agents/{id}.reply.json");
    exported_schemas(config)?
        .into_iter()
        .find(|(p, _)| *p == path)
        .map(|(_, schema)| schema)
        .ok_or_else(|| anyhow::anyhow!("no reply schema for `{id}`"))
}

fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut document = Vec::new();
    if file == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_FILE_BYTES + 1)
            .read_to_end(&mut document)?;
    } else {
        let handle = std::fs::File::open(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        handle
            .take(MAX_INPUT_FILE_BYTES + 1)
            .read_to_end(&mut document)?;
    }
    if document.len() as u64 > MAX_INPUT_FILE_BYTES {
        anyhow::bail!("the input is over {MAX_INPUT_FILE_BYTES} bytes; no agent accepts that much");
    }
    Ok(document)
}

fn write_or_check_schemas(
    config: &AgentConfig,
    dir: &Path,
    check: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut drifted = Vec::new();
    for (path, schema) in exported_schemas(config)? {
        let file = dir.join(&path);
        let text = format!("{}\n", serde_json::to_string_pretty(&schema)?);
        if check {
            if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
                drifted.push(path);
            }
        } else {
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file, text)?;
            writeln!(out, "wrote {}", file.display())?;
        }
    }
    if drifted.is_empty() {
        if check {
            writeln!(out, "schemas in {} match the code", dir.display())?;
        }
        Ok(ExitCode::SUCCESS)
    } else {
        for path in &drifted {
            writeln!(out, "drift: {path}")?;
        }
        writeln!(
            out,
            "run `agents-server schemas {}` and commit the result",
            dir.display()
        )?;
        Ok(ExitCode::from(1))
    }
}

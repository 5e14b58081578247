//! `AGENTS_` environment overrides.
//!
//! `AGENTS_SERVER__LISTEN=0.0.0.0:50051` sets `server.listen`; a number segment indexes an array
//! (`AGENTS_PROVIDERS__0__OPENAI__MODEL=qwen`). Only variables with a `__` separator are
//! overrides, so unrelated `AGENTS_*` variables (`AGENTS_REQUIRE_PEERS`) are left alone. Values are
//! read as TOML (`true`, `30`, `["a"]`) and fall back to a plain string.

use agents_core::ConfigError;

const PREFIX: &str = "AGENTS_";

/// Applies every override in `vars` to the document.
pub fn apply_env_overrides(
    document: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX) && name.contains("__"))
        .collect();
    overrides.sort();
    for (name, value) in overrides {
        let path: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        set(document, &path, parse_value(&value)).map_err(|message| {
            ConfigError::new(path.join("."), format!("{message} (from {name})"))
        })?;
    }
    Ok(())
}

fn parse_value(text: &str) -> toml::Value {
    format!("value = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("value"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

fn set(document: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut root = toml::Value::Table(std::mem::take(document));
    let result = (|| {
        // Walk tables by name and arrays by index, creating tables that are missing.
        let mut node = &mut root;
        for segment in parents {
            node = step(node, segment)?;
        }
        match node {
            toml::Value::Table(table) => {
                table.insert(last.clone(), value);
                Ok(())
            }
            toml::Value::Array(items) => {
                let index: usize = last
                    .parse()
                    .map_err(|_| format!("`{last}` is not an index"))?;
                let slot = items
                    .get_mut(index)
                    .ok_or_else(|| format!("index {index} is past the end"))?;
                *slot = value;
                Ok(())
            }
            _ => Err("does not lead to a table".to_owned()),
        }
    })();
    if let toml::Value::Table(table) = root {
        *document = table;
    }
    result
}

fn step<'a>(node: &'a mut toml::Value, segment: &str) -> Result<&'a mut toml::Value, String> {
    match node {
        toml::Value::Table(table) => Ok(table
            .entry(segment.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))),
        toml::Value::Array(items) => {
            let index: usize = segment
                .parse()
                .map_err(|_| format!("`{segment}` is not an index"))?;
            items
                .get_mut(index)
                .ok_or_else(|| format!("index {index} is past the end"))
        }
        _ => Err(format!("`{segment}` is under a value, not a table")),
    }
}

//! The one error every crate's configuration reports.
//!
//! Config comes from serde structs in every crate (provider policies, the bus, secret stores,
//! the server). A value that deserializes but makes no sense (a zero timeout, a failure ratio
//! of 3) is refused at start-up with this error, which names the setting by its path in the
//! config file, so an operator can fix it without reading code.

/// A configuration value that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration at `{path}`: {message}")]
pub struct ConfigError {
    /// Dotted path of the setting, e.g. `providers.local.breaker.failure_ratio`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    /// A refused setting.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error under a parent path: `breaker.failure_ratio` inside `providers.local`
    /// becomes `providers.local.breaker.failure_ratio`.
    pub fn within(mut self, parent: &str) -> Self {
        if !parent.is_empty() {
            self.path = if self.path.is_empty() {
                parent.to_owned()
            } else {
                format!("{parent}.{}", self.path)
            };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest() {
        let error = ConfigError::new("failure_ratio", "must be in (0, 1]")
            .within("breaker")
            .within("providers.local");
        assert_eq!(error.path, "providers.local.breaker.failure_ratio");
        assert_eq!(
            error.to_string(),
            "invalid configuration at `providers.local.breaker.failure_ratio`: must be in (0, 1]"
        );
        assert_eq!(ConfigError::new("", "x").within("a").path, "a");
        assert_eq!(ConfigError::new("b", "x").within("").path, "b");
    }
}

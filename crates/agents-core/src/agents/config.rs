//! Settings every agent shares.

use serde::{Deserialize, Serialize};

use crate::facts::RuleThresholds;

/// Limits and defaults for agent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Largest `source_code` accepted, in bytes. Larger inputs are refused with a validation
    /// error, before any work is done.
    pub max_source_bytes: usize,
    /// No request asks a model for more completion tokens than this, whatever the input says.
    pub max_tokens_cap: u32,
    /// Sampling temperature sent to the model. Low: the agents want facts, not prose.
    pub temperature: f32,
    /// Where the threshold rules of the offline code analysis fire (long, complex, deeply nested
    /// functions, too many parameters).
    pub rules: RuleThresholds,
}

/// Default `max_source_bytes`: 256 KiB.
pub const DEFAULT_MAX_SOURCE_BYTES: usize = 256 * 1024;
/// Default `max_tokens_cap`.
pub const DEFAULT_MAX_TOKENS_CAP: u32 = 4096;

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            max_source_bytes: DEFAULT_MAX_SOURCE_BYTES,
            max_tokens_cap: DEFAULT_MAX_TOKENS_CAP,
            temperature: 0.2,
            rules: RuleThresholds::default(),
        }
    }
}

impl AgentConfig {
    /// Sets the source size limit.
    pub fn with_max_source_bytes(mut self, bytes: usize) -> Self {
        self.max_source_bytes = bytes;
        self
    }

    /// Sets the completion token cap.
    pub fn with_max_tokens_cap(mut self, cap: u32) -> Self {
        self.max_tokens_cap = cap;
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets the thresholds of the offline rules.
    pub fn with_rules(mut self, rules: RuleThresholds) -> Self {
        self.rules = rules;
        self
    }

    /// The completion budget for one request: what the caller asked for, else the agent's
    /// estimate, never more than the cap and never zero.
    pub(crate) fn token_budget(&self, requested: Option<u32>, estimate: u32) -> u32 {
        requested
            .unwrap_or(estimate)
            .clamp(1, self.max_tokens_cap.max(1))
    }
}

/// A rough token count for code: about four bytes a token for most tokenizers.
pub(crate) fn approx_tokens(bytes: usize) -> u32 {
    u32::try_from(bytes / 4).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_respects_the_cap_and_the_request() {
        let config = AgentConfig::default();
        assert_eq!(config.token_budget(None, 1000), 1000);
        assert_eq!(config.token_budget(None, 100_000), DEFAULT_MAX_TOKENS_CAP);
        assert_eq!(config.token_budget(Some(300), 1000), 300);
        assert_eq!(
            config.token_budget(Some(9000), 1000),
            DEFAULT_MAX_TOKENS_CAP
        );
        assert_eq!(
            config.clone().with_max_tokens_cap(0).token_budget(None, 10),
            1
        );
        assert_eq!(approx_tokens(400), 100);
        let custom = AgentConfig::default()
            .with_max_source_bytes(10)
            .with_temperature(0.0);
        assert_eq!(custom.max_source_bytes, 10);
        let json: AgentConfig =
            serde_json::from_value(serde_json::json!({"max_tokens_cap": 512})).unwrap();
        assert_eq!(json.max_tokens_cap, 512);
        assert_eq!(json.max_source_bytes, DEFAULT_MAX_SOURCE_BYTES);
        let json: AgentConfig =
            serde_json::from_value(serde_json::json!({"rules": {"max_parameters": 3}})).unwrap();
        assert_eq!(json.rules.max_parameters, 3);
        assert_eq!(
            json.rules.max_cyclomatic,
            RuleThresholds::default().max_cyclomatic
        );
        let rules = RuleThresholds {
            max_nesting: 2,
            ..RuleThresholds::default()
        };
        assert_eq!(
            AgentConfig::default().with_rules(rules).rules.max_nesting,
            2
        );
    }
}

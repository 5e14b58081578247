//! The guard's settings.

use std::time::Duration;

use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// When the host guard caps or refuses work.
///
/// ```toml
/// sample_interval_ms = 1000
/// memory_warning_percent = 85.0
/// memory_critical_percent = 95.0
/// thermal_warning_celsius = 85.0
/// thermal_critical_celsius = 95.0
/// warning_max_tokens = 512
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct GuardConfig {
    /// How often the host is sampled at most (`sample_interval_ms` in config files).
    #[serde(rename = "sample_interval_ms", with = "millis")]
    pub sample_interval: Duration,
    /// Memory used, in percent, from which generations are capped.
    pub memory_warning_percent: f64,
    /// Memory used, in percent, from which generations are refused.
    pub memory_critical_percent: f64,
    /// Temperature of the hottest zone from which generations are capped.
    pub thermal_warning_celsius: f64,
    /// Temperature of the hottest zone from which generations are refused.
    pub thermal_critical_celsius: f64,
    /// The completion token cap applied at warning level.
    pub warning_max_tokens: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            sample_interval: Duration::from_secs(1),
            memory_warning_percent: 85.0,
            memory_critical_percent: 95.0,
            thermal_warning_celsius: 85.0,
            thermal_critical_celsius: 95.0,
            warning_max_tokens: 512,
        }
    }
}

impl GuardConfig {
    /// Refuses settings that make no sense; the error names the field. Nest it under the
    /// guard's place in the config file with [`ConfigError::within`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sample_interval < Duration::from_millis(10) {
            return Err(ConfigError::new(
                "sample_interval_ms",
                "must be at least 10 ms",
            ));
        }
        for (path, value) in [
            ("memory_warning_percent", self.memory_warning_percent),
            ("memory_critical_percent", self.memory_critical_percent),
        ] {
            if !(value > 0.0 && value <= 100.0) {
                return Err(ConfigError::new(
                    path,
                    format!("must be in (0, 100], not {value}"),
                ));
            }
        }
        for (path, value) in [
            ("thermal_warning_celsius", self.thermal_warning_celsius),
            ("thermal_critical_celsius", self.thermal_critical_celsius),
        ] {
            if !value.is_finite() {
                return Err(ConfigError::new(
                    path,
                    "must be a number of degrees Celsius",
                ));
            }
        }
        for (path, warning, critical, other) in [
            (
                "memory_warning_percent",
                self.memory_warning_percent,
                self.memory_critical_percent,
                "memory_critical_percent",
            ),
            (
                "thermal_warning_celsius",
                self.thermal_warning_celsius,
                self.thermal_critical_celsius,
                "thermal_critical_celsius",
            ),
        ] {
            // Both are finite numbers by now, so `>=` is the exact negation of `<`.
            if warning >= critical {
                return Err(ConfigError::new(
                    path,
                    format!("must be below {other} ({critical}), not {warning}"),
                ));
            }
        }
        if self.warning_max_tokens == 0 {
            return Err(ConfigError::new("warning_max_tokens", "must be at least 1"));
        }
        Ok(())
    }
}

/// `Duration` as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_serde() {
        let config = GuardConfig::default();
        assert_eq!(config.validate(), Ok(()));
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["sample_interval_ms"], 1000);
        let back: GuardConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, config);
        let partial: GuardConfig =
            serde_json::from_str(r#"{"sample_interval_ms": 250, "warning_max_tokens": 64}"#)
                .unwrap();
        assert_eq!(partial.sample_interval, Duration::from_millis(250));
        assert_eq!(partial.memory_critical_percent, 95.0);
        assert!(serde_json::from_str::<GuardConfig>(r#"{"sample_interval": 5}"#).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let path_of = |change: fn(&mut GuardConfig)| {
            let mut config = GuardConfig::default();
            change(&mut config);
            config.validate().unwrap_err().path
        };
        assert_eq!(
            path_of(|c| c.sample_interval = Duration::from_millis(9)),
            "sample_interval_ms"
        );
        assert_eq!(
            path_of(|c| c.memory_warning_percent = 0.0),
            "memory_warning_percent"
        );
        assert_eq!(
            path_of(|c| c.memory_critical_percent = 100.5),
            "memory_critical_percent"
        );
        assert_eq!(
            path_of(|c| c.memory_warning_percent = 96.0),
            "memory_warning_percent"
        );
        assert_eq!(
            path_of(|c| c.thermal_warning_celsius = 95.0),
            "thermal_warning_celsius"
        );
        assert_eq!(
            path_of(|c| c.thermal_critical_celsius = f64::NAN),
            "thermal_critical_celsius"
        );
        assert_eq!(path_of(|c| c.warning_max_tokens = 0), "warning_max_tokens");
        let error = GuardConfig {
            warning_max_tokens: 0,
            ..GuardConfig::default()
        }
        .validate()
        .unwrap_err()
        .within("providers.local.guard");
        assert_eq!(error.path, "providers.local.guard.warning_max_tokens");
    }
}

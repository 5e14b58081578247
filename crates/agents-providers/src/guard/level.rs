//! From a sample to a pressure level and a verdict on the next request.

use agents_core::{HostCondition, PressureLevel};

use super::config::GuardConfig;
use super::probe::HostSample;

/// The level of a value against its thresholds: at or past `critical` is critical, at or past
/// `warning` is a warning. NaN is normal (no trustworthy reading).
fn level_of(value: f64, warning: f64, critical: f64) -> PressureLevel {
    if value >= critical {
        PressureLevel::Critical
    } else if value >= warning {
        PressureLevel::Warning
    } else {
        PressureLevel::Normal
    }
}

/// The memory level for this share of memory in use.
pub(super) fn memory_level(used_percent: f64, config: &GuardConfig) -> PressureLevel {
    level_of(
        used_percent,
        config.memory_warning_percent,
        config.memory_critical_percent,
    )
}

/// The thermal level for the hottest zone's temperature.
pub(super) fn thermal_level(celsius: f64, config: &GuardConfig) -> PressureLevel {
    level_of(
        celsius,
        config.thermal_warning_celsius,
        config.thermal_critical_celsius,
    )
}

/// Orders levels (the core enum does not): normal 0, warning 1, critical 2. A level added to
/// the core enum later counts as critical until this guard learns about it.
pub(super) fn rank(level: PressureLevel) -> u8 {
    match level {
        PressureLevel::Normal => 0,
        PressureLevel::Warning => 1,
        _ => 2,
    }
}

/// What the guard concluded from one sample.
#[derive(Debug, Clone, Default)]
pub(super) struct Assessment {
    pub(super) memory: PressureLevel,
    pub(super) thermal: PressureLevel,
    pub(super) sample: HostSample,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    Normal,
    Warning(String),
    Critical(HostCondition, String),
}

impl Assessment {
    /// Levels for each part the sample has; a missing part is normal.
    pub(super) fn of(sample: HostSample, config: &GuardConfig) -> Self {
        Self {
            memory: sample.memory.map_or(PressureLevel::Normal, |m| {
                memory_level(m.used_percent(), config)
            }),
            thermal: sample
                .thermal
                .as_ref()
                .map_or(PressureLevel::Normal, |t| thermal_level(t.celsius, config)),
            sample,
        }
    }

    /// The worse condition decides; memory first when both are equally bad.
    pub(super) fn verdict(&self) -> Verdict {
        let (condition, level) = if rank(self.thermal) > rank(self.memory) {
            (HostCondition::Thermal, self.thermal)
        } else {
            (HostCondition::Memory, self.memory)
        };
        match rank(level) {
            0 => Verdict::Normal,
            1 => Verdict::Warning(self.describe(condition)),
            _ => Verdict::Critical(condition, self.describe(condition)),
        }
    }

    /// The measured figure, e.g. `memory 97.1% used (480 MiB available)`.
    fn describe(&self, condition: HostCondition) -> String {
        match (condition, &self.sample.memory, &self.sample.thermal) {
            (HostCondition::Memory, Some(m), _) => format!(
                "memory {:.1}% used ({} MiB available)",
                m.used_percent(),
                m.available_bytes / (1024 * 1024)
            ),
            (HostCondition::Thermal, _, Some(t)) => {
                format!("thermal zone {} at {:.1} °C", t.zone, t.celsius)
            }
            _ => condition.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn thresholds_are_inclusive() {
        let config = GuardConfig::default();
        for (used, level) in [
            (0.0, PressureLevel::Normal),
            (84.99, PressureLevel::Normal),
            (85.0, PressureLevel::Warning),
            (94.99, PressureLevel::Warning),
            (95.0, PressureLevel::Critical),
            (100.0, PressureLevel::Critical),
            (f64::NAN, PressureLevel::Normal),
        ] {
            assert_eq!(memory_level(used, &config), level, "{used}");
        }
        assert_eq!(thermal_level(84.9, &config), PressureLevel::Normal);
        assert_eq!(thermal_level(85.0, &config), PressureLevel::Warning);
        assert_eq!(thermal_level(95.0, &config), PressureLevel::Critical);
    }

    #[test]
    fn the_worse_condition_decides_the_verdict() {
        let config = GuardConfig::default();
        let hot = HostSample::default()
            .with_memory(1000, 100)
            .with_thermal(96.0, "cpu");
        assert_eq!(
            Assessment::of(hot, &config).verdict(),
            Verdict::Critical(HostCondition::Thermal, "thermal zone cpu at 96.0 °C".into())
        );
        let full = HostSample::default().with_memory(1 << 30, 1 << 24);
        assert_eq!(
            Assessment::of(full, &config).verdict(),
            Verdict::Critical(
                HostCondition::Memory,
                "memory 98.4% used (16 MiB available)".into()
            )
        );
        let warm = HostSample::default().with_thermal(90.0, "cpu");
        assert!(matches!(
            Assessment::of(warm, &config).verdict(),
            Verdict::Warning(_)
        ));
        assert_eq!(Assessment::default().verdict(), Verdict::Normal);
    }

    proptest! {
        #[test]
        fn memory_level_is_monotone_in_used_percent(
            total in 1..u64::MAX,
            a in any::<u64>(),
            b in any::<u64>(),
        ) {
            let config = GuardConfig::default();
            let (a, b) = (a % total.saturating_add(1), b % total.saturating_add(1));
            let sample = |available| HostSample::default().with_memory(total, available);
            let (left, right) = (Assessment::of(sample(a), &config), Assessment::of(sample(b), &config));
            let (used_a, used_b) = (
                left.sample.memory.map(|m| m.used_percent()).unwrap_or_default(),
                right.sample.memory.map(|m| m.used_percent()).unwrap_or_default(),
            );
            prop_assert!((0.0..=100.0).contains(&used_a));
            if used_a <= used_b {
                prop_assert!(rank(left.memory) <= rank(right.memory));
            }
        }
    }
}

//! Host pressure that makes the server shed or slow down work.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How hard a host resource is pressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PressureLevel {
    /// Back within limits.
    #[default]
    Normal,
    /// Past the warning threshold; new work may be slowed.
    Warning,
    /// Past the critical threshold; new work is refused.
    Critical,
}

/// Memory use crossed a threshold (`system.memory_pressure`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct MemoryPressure {
    /// Level reached.
    pub level: PressureLevel,
    /// Memory in use, in percent of the total (0 to 100).
    pub used_percent: f64,
    /// Memory still available, in bytes.
    pub available_bytes: u64,
}

/// The host is hot enough to throttle (`system.thermal_throttle`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ThermalThrottle {
    /// Level reached.
    pub level: PressureLevel,
    /// Temperature, in degrees Celsius, when the sensor reports one.
    pub temperature_celsius: Option<f64>,
    /// Thermal zone, e.g. `cpu`, when known.
    pub zone: Option<String>,
}

//! Host resource guard: protects a model served on this very machine (mlx_lm.server,
//! llama.cpp) from pushing the host into swap or thermal throttling.
//!
//! When that happens every request gets slow for everyone, and the local model keeps being
//! chosen because it still answers. [`HostGuard`] wraps the local provider and samples memory
//! pressure and the hottest thermal zone through a [`HostProbe`], at most once per
//! `sample_interval`:
//!
//! | level    | memory used / hottest zone | what the guard does                              |
//! |----------|----------------------------|--------------------------------------------------|
//! | normal   | below `*_warning_*`        | passes the request through                       |
//! | warning  | at or past `*_warning_*`   | caps `max_tokens`; health is degraded            |
//! | critical | at or past `*_critical_*`  | refuses with `ProviderError::Unhealthy`, so the fallback chain moves on |
//!
//! The worse of memory and thermal decides. Each time a level changes, the guard emits
//! `system.memory_pressure` or `system.thermal_throttle` from `/providers/<id>/guard`; a host
//! that stays at one level emits nothing more, so a busy host does not flood the bus.
//!
//! **A broken probe fails open.** When a sample cannot be taken (an unreadable `/proc`, a
//! missing `vm_stat`) the guard logs a warning and treats the host as normal until the next
//! sample: the guard is an optimisation for a shared host, and a fault in it must not take
//! down a provider that may be perfectly able to serve. Such a sample announces no event,
//! since nothing was measured. Parts a host does not report at all (no thermal zones in a VM)
//! count as normal in the same way.

mod config;
mod level;
mod linux;
#[cfg(any(target_os = "macos", test))]
mod macos;
mod probe;
mod provider;

pub use config::GuardConfig;
pub use linux::LinuxProbe;
pub use probe::{
    HostProbe, HostSample, MemorySample, ProbeError, ScriptedProbe, SystemProbe, ThermalSample,
};
pub use provider::HostGuard;

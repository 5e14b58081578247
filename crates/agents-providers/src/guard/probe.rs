//! What the guard measures, and the trait that measures it.

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Reads the host's memory and thermal state.
///
/// Synchronous on purpose: a sample is a couple of small file reads (or two short commands on
/// macOS) and the guard takes at most one per `sample_interval`, so it is cheaper to read
/// in place than to hop to a blocking thread.
pub trait HostProbe: Send + Sync + Debug {
    /// Takes one sample. A part the host does not report is `None`, not an error.
    fn sample(&self) -> Result<HostSample, ProbeError>;
}

/// One reading of the host.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct HostSample {
    /// Memory, when the host reports it.
    pub memory: Option<MemorySample>,
    /// The hottest thermal zone, when the host reports one.
    pub thermal: Option<ThermalSample>,
}

impl HostSample {
    /// Sets the memory reading.
    pub fn with_memory(mut self, total_bytes: u64, available_bytes: u64) -> Self {
        self.memory = Some(MemorySample::new(total_bytes, available_bytes));
        self
    }

    /// Sets the thermal reading.
    pub fn with_thermal(mut self, celsius: f64, zone: impl Into<String>) -> Self {
        self.thermal = Some(ThermalSample::new(celsius, zone));
        self
    }
}

/// Physical memory and how much of it new work can still get without swapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemorySample {
    /// Physical memory.
    pub total_bytes: u64,
    /// Memory available for new allocations without swapping (Linux `MemAvailable`).
    pub available_bytes: u64,
}

impl MemorySample {
    /// A memory reading.
    pub fn new(total_bytes: u64, available_bytes: u64) -> Self {
        Self {
            total_bytes,
            available_bytes,
        }
    }

    /// Memory in use, in percent of the total: `100 * (1 - available / total)`, in `[0, 100]`.
    /// A zero total (no reading) counts as 0 % used.
    pub fn used_percent(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        let available = self.available_bytes.min(self.total_bytes);
        100.0 * (1.0 - available as f64 / self.total_bytes as f64)
    }
}

/// The temperature of one thermal zone.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ThermalSample {
    /// Degrees Celsius.
    pub celsius: f64,
    /// The zone's name, e.g. `x86_pkg_temp` or `cpu-thermal`.
    pub zone: String,
}

impl ThermalSample {
    /// A thermal reading.
    pub fn new(celsius: f64, zone: impl Into<String>) -> Self {
        Self {
            celsius,
            zone: zone.into(),
        }
    }
}

/// A probe could not read the host. The guard logs it and lets work through: it fails open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the host probe could not read {origin}: {message}")]
pub struct ProbeError {
    origin: String,
    message: String,
}

impl ProbeError {
    /// An error reading `origin` (a file path or a command).
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            message: message.into(),
        }
    }

    /// The file or command that failed.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The probe for the machine this process runs on: `/proc` and `/sys` on Linux, `sysctl` and
/// `vm_stat` on macOS, and an empty sample (always normal) elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemProbe;

impl HostProbe for SystemProbe {
    fn sample(&self) -> Result<HostSample, ProbeError> {
        #[cfg(target_os = "linux")]
        let sample = super::linux::LinuxProbe::default().sample();
        #[cfg(target_os = "macos")]
        let sample = super::macos::MacosProbe.sample();
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        let sample = Ok(HostSample::default());
        sample
    }
}

/// A probe that returns whatever it was last told to, for tests here and downstream: a test
/// can raise the pressure while a guarded provider is serving.
#[derive(Debug)]
pub struct ScriptedProbe {
    next: Mutex<Result<HostSample, ProbeError>>,
    calls: AtomicUsize,
}

impl Default for ScriptedProbe {
    fn default() -> Self {
        Self::new(HostSample::default())
    }
}

impl ScriptedProbe {
    /// A probe that returns `sample` until told otherwise.
    pub fn new(sample: HostSample) -> Self {
        Self {
            next: Mutex::new(Ok(sample)),
            calls: AtomicUsize::new(0),
        }
    }

    /// Returns `sample` from now on.
    pub fn set(&self, sample: HostSample) {
        *self.next.lock().unwrap_or_else(PoisonError::into_inner) = Ok(sample);
    }

    /// Fails with `error` from now on.
    pub fn fail(&self, error: ProbeError) {
        *self.next.lock().unwrap_or_else(PoisonError::into_inner) = Err(error);
    }

    /// How many samples have been taken.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl HostProbe for ScriptedProbe {
    fn sample(&self) -> Result<HostSample, ProbeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

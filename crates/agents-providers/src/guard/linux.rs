//! Linux: `/proc/meminfo` for memory, `/sys/class/thermal/thermal_zone*` for temperature.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::probe::{HostProbe, HostSample, MemorySample, ProbeError, ThermalSample};

/// Reads `/proc/meminfo` and `/sys/class/thermal`, or the same layout under other roots (a
/// container that mounts the host's `/proc` elsewhere, or a test's fake files).
///
/// A file or directory that does not exist leaves that part of the sample `None`. A thermal
/// zone whose `temp` cannot be read is skipped: disabled sensors answer reads with an error.
#[derive(Debug, Clone)]
pub struct LinuxProbe {
    meminfo: PathBuf,
    thermal_root: PathBuf,
}

impl Default for LinuxProbe {
    fn default() -> Self {
        Self::with_paths("/proc/meminfo", "/sys/class/thermal")
    }
}

impl LinuxProbe {
    /// A probe reading `meminfo` and the `thermal_zone*` directories under `thermal_root`.
    pub fn with_paths(meminfo: impl Into<PathBuf>, thermal_root: impl Into<PathBuf>) -> Self {
        Self {
            meminfo: meminfo.into(),
            thermal_root: thermal_root.into(),
        }
    }
}

impl HostProbe for LinuxProbe {
    fn sample(&self) -> Result<HostSample, ProbeError> {
        let origin = || self.meminfo.display().to_string();
        let memory = match fs::read_to_string(&self.meminfo) {
            Ok(text) => {
                parse_meminfo(&text).map_err(|message| ProbeError::new(origin(), message))?
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(ProbeError::new(origin(), e.to_string())),
        };
        Ok(HostSample {
            memory,
            thermal: hottest_zone(&self.thermal_root)?,
        })
    }
}

/// `MemTotal` and `MemAvailable` (kB) from `/proc/meminfo`; `None` when either is missing
/// (kernels before 3.14 have no `MemAvailable`).
fn parse_meminfo(text: &str) -> Result<Option<MemorySample>, String> {
    let (mut total, mut available) = (None, None);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("not meminfo: a line has no colon: {line:.40}"));
        };
        let slot = match key.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            _ => continue,
        };
        *slot = Some(kib_to_bytes(key.trim(), value)?);
    }
    match (total, available) {
        (Some(0), _) => Err("MemTotal is 0".to_owned()),
        (Some(total), Some(available)) => Ok(Some(MemorySample::new(total, available))),
        _ => Ok(None),
    }
}

fn kib_to_bytes(key: &str, value: &str) -> Result<u64, String> {
    match value.split_whitespace().collect::<Vec<_>>()[..] {
        [number, "kB"] => number
            .parse::<u64>()
            .map(|kib| kib.saturating_mul(1024))
            .map_err(|_| format!("{key} is not a number of kB: {number:.20}")),
        _ => Err(format!("{key} is not `<number> kB`: {:.40}", value.trim())),
    }
}

/// The hottest readable `thermal_zone*` under `root`.
fn hottest_zone(root: &Path) -> Result<Option<ThermalSample>, ProbeError> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ProbeError::new(root.display().to_string(), e.to_string())),
    };
    let mut hottest: Option<ThermalSample> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("thermal_zone") {
            continue;
        }
        let path = entry.path();
        let Some(millidegrees) = fs::read_to_string(path.join("temp"))
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
        else {
            continue;
        };
        let celsius = millidegrees as f64 / 1000.0;
        if hottest.as_ref().is_none_or(|h| celsius > h.celsius) {
            let zone = fs::read_to_string(path.join("type"))
                .map(|t| t.trim().to_owned())
                .unwrap_or(name);
            hottest = Some(ThermalSample::new(celsius, zone));
        }
    }
    Ok(hottest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       16303428 kB\nMemFree:         1234567 kB\n\
        MemAvailable:    8151714 kB\nBuffers:          204800 kB\nHugePages_Total:       0\n";

    #[test]
    fn meminfo_parses_total_and_available() {
        let memory = parse_meminfo(MEMINFO).unwrap().unwrap();
        assert_eq!(memory.total_bytes, 16_303_428 * 1024);
        assert_eq!(memory.available_bytes, 8_151_714 * 1024);
        assert!((memory.used_percent() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn meminfo_without_available_is_unknown_and_garbage_is_an_error() {
        assert_eq!(
            parse_meminfo("MemTotal: 1024 kB\nMemFree: 2 kB\n"),
            Ok(None)
        );
        assert_eq!(parse_meminfo(""), Ok(None));
        assert!(parse_meminfo("MemTotal: lots kB\nMemAvailable: 1 kB").is_err());
        assert!(parse_meminfo("MemTotal: 12\nMemAvailable: 1 kB").is_err());
        assert!(parse_meminfo("<html>not meminfo</html>").is_err());
        assert!(parse_meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB").is_err());
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("guard-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_hottest_readable_zone_wins_and_missing_files_are_none() {
        let dir = scratch_dir("thermal");
        for (zone, temp, kind) in [
            ("thermal_zone0", Some("45000\n"), Some("acpitz\n")),
            ("thermal_zone1", Some("71500\n"), Some("x86_pkg_temp\n")),
            ("thermal_zone2", Some("garbage\n"), Some("broken\n")),
            ("thermal_zone3", None, Some("disabled\n")),
            ("cooling_device0", Some("99000\n"), None),
        ] {
            let zone_dir = dir.join(zone);
            fs::create_dir_all(&zone_dir).unwrap();
            if let Some(temp) = temp {
                fs::write(zone_dir.join("temp"), temp).unwrap();
            }
            if let Some(kind) = kind {
                fs::write(zone_dir.join("type"), kind).unwrap();
            }
        }
        fs::write(dir.join("meminfo"), MEMINFO).unwrap();

        let sample = LinuxProbe::with_paths(dir.join("meminfo"), &dir)
            .sample()
            .unwrap();
        assert_eq!(
            sample.thermal,
            Some(ThermalSample::new(71.5, "x86_pkg_temp"))
        );
        assert_eq!(sample.memory.unwrap().total_bytes, 16_303_428 * 1024);

        let nothing = LinuxProbe::with_paths(dir.join("absent"), dir.join("absent"))
            .sample()
            .unwrap();
        assert_eq!(nothing, HostSample::default());

        fs::write(dir.join("meminfo"), "garbage").unwrap();
        let error = LinuxProbe::with_paths(dir.join("meminfo"), &dir)
            .sample()
            .unwrap_err();
        assert!(error.origin().ends_with("meminfo"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! macOS: total memory from `sysctl hw.memsize`, available memory from `vm_stat` (free,
//! inactive and speculative pages). No thermal reading: macOS offers no temperature without
//! private APIs, so the thermal part of the sample is `None`.
//!
//! The parser is compiled for tests on every OS; the probe only on macOS.

#[cfg(target_os = "macos")]
use super::probe::{HostProbe, HostSample, ProbeError};

#[cfg(target_os = "macos")]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MacosProbe;

#[cfg(target_os = "macos")]
impl HostProbe for MacosProbe {
    fn sample(&self) -> Result<HostSample, ProbeError> {
        const SYSCTL: &str = "/usr/sbin/sysctl";
        const VM_STAT: &str = "/usr/bin/vm_stat";
        let total = run(SYSCTL, &["-n", "hw.memsize"])?;
        let total = total
            .trim()
            .parse::<u64>()
            .map_err(|_| ProbeError::new(SYSCTL, "hw.memsize is not a number"))?;
        let available =
            parse_vm_stat(&run(VM_STAT, &[])?).map_err(|m| ProbeError::new(VM_STAT, m))?;
        Ok(HostSample::default().with_memory(total, available))
    }
}

#[cfg(target_os = "macos")]
fn run(program: &str, args: &[&str]) -> Result<String, ProbeError> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ProbeError::new(program, e.to_string()))?;
    if !output.status.success() {
        return Err(ProbeError::new(
            program,
            format!("exited with {}", output.status),
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| ProbeError::new(program, "output is not UTF-8"))
}

/// Available bytes from `vm_stat` output: (free + inactive + speculative pages) * page size.
pub(super) fn parse_vm_stat(text: &str) -> Result<u64, String> {
    let page_size = text
        .lines()
        .next()
        .and_then(|header| header.split("page size of ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|size| size.parse::<u64>().ok())
        .ok_or("no page size in the vm_stat header")?;
    let mut pages = 0u64;
    let mut found = 0;
    for line in text.lines().skip(1) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if matches!(key, "Pages free" | "Pages inactive" | "Pages speculative") {
            let count = value.trim().trim_end_matches('.').parse::<u64>();
            pages = pages.saturating_add(count.map_err(|_| format!("{key} is not a number"))?);
            found += 1;
        }
    }
    if found == 0 {
        return Err("no page counts in vm_stat output".to_owned());
    }
    Ok(pages.saturating_mul(page_size))
}

#[cfg(test)]
mod tests {
    use super::parse_vm_stat;

    #[test]
    fn vm_stat_counts_free_inactive_and_speculative_pages() {
        let text = "Mach Virtual Memory Statistics: (page size of 16384 bytes)\n\
            Pages free:                               10.\n\
            Pages active:                           9999.\n\
            Pages inactive:                           20.\n\
            Pages speculative:                         5.\n\
            \"Translation faults\":               123456.\n";
        assert_eq!(parse_vm_stat(text), Ok(35 * 16384));
        assert!(parse_vm_stat("Pages free: 10.").is_err());
        assert!(parse_vm_stat("Mach (page size of 4096 bytes)\nPages free: x.").is_err());
    }
}

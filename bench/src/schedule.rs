//! The open-loop arrival schedule.
//!
//! Request `i` is due at `t0 + i / rate`, whatever happened to the requests before it. A closed
//! loop (send, wait for the answer, send the next) slows down with the server and so never
//! measures the wait that a slow server inflicts on the requests that should have been sent
//! meanwhile: coordinated omission. Measuring each latency from its due time, not from the
//! moment the tool got round to sending, charges every delay (the server's and the tool's) to
//! the requests that suffered it.

use std::time::Duration;

/// A constant arrival rate over a warm-up and a measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    warmup: Duration,
    duration: Duration,
}

/// Why a schedule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(String);

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

impl Schedule {
    /// `rate` requests a second for `warmup` (not measured) and then `duration` (measured).
    pub fn new(rate: f64, warmup: Duration, duration: Duration) -> Result<Self, ScheduleError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ScheduleError(format!(
                "the rate must be a positive number of requests a second, not {rate}"
            )));
        }
        if duration.is_zero() {
            return Err(ScheduleError(
                "the measured duration must not be zero".into(),
            ));
        }
        Ok(Self {
            rate,
            warmup,
            duration,
        })
    }

    /// Requests a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The unmeasured lead-in.
    pub fn warmup(&self) -> Duration {
        self.warmup
    }

    /// The measured window.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// When request `i` is due, from the start of the run.
    pub fn offset(&self, i: u64) -> Duration {
        // f64 keeps 53 bits: exact to the nanosecond for any run shorter than a hundred days.
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// How many requests the whole run (warm-up and measured window) sends: every `i` whose
    /// due time is before the end.
    pub fn total(&self) -> u64 {
        Self::due_before(self.rate, self.warmup + self.duration)
    }

    /// How many requests fall in the warm-up.
    pub fn warmup_count(&self) -> u64 {
        Self::due_before(self.rate, self.warmup)
    }

    /// Whether request `i` is measured (due at or after the end of the warm-up).
    pub fn is_measured(&self, i: u64) -> bool {
        i >= self.warmup_count()
    }

    /// The number of `i >= 0` with `i / rate < span`, i.e. `ceil(span * rate)`.
    fn due_before(rate: f64, span: Duration) -> u64 {
        let exact = span.as_secs_f64() * rate;
        // Guard against 2.9999999 for 3: the due times are whole multiples of 1/rate.
        let rounded = exact.round();
        if (exact - rounded).abs() < 1e-9 {
            rounded as u64
        } else {
            exact.ceil() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn offsets_are_evenly_spaced() {
        let s = Schedule::new(1000.0, Duration::ZERO, Duration::from_secs(1)).unwrap();
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(1));
        assert_eq!(s.offset(1000), Duration::from_secs(1));
        assert_eq!(s.total(), 1000);
    }
}

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: holds at most `capacity` tokens and refills `rate` tokens per second.
///
/// Contract: over any time window of length `T`, the tokens taken never exceed
/// `capacity + rate × T` (a property test checks it). The balance may go below zero when
/// usage reported after a call exceeds its estimate; new takes then wait for the debt to refill.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, rate_per_second: f64, now: Instant) -> Self {
        Self {
            capacity,
            rate: rate_per_second,
            tokens: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// Takes `amount` tokens if the bucket holds them; otherwise says how long until it will.
    pub fn try_take(&mut self, amount: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if amount <= self.tokens {
            self.tokens -= amount;
            return Ok(());
        }
        // A take larger than the capacity never fits: report the time to a full bucket (callers
        // clamp their takes to the capacity, see `RateLimit`).
        let missing = amount.min(self.capacity) - self.tokens;
        let seconds = if self.rate > 0.0 {
            missing / self.rate
        } else {
            1e9
        };
        Err(Duration::from_secs_f64(seconds.clamp(0.0, 1e9)))
    }

    /// Adjusts the balance after the fact: positive `amount` charges more (may go negative),
    /// negative refunds (never above capacity).
    pub fn adjust(&mut self, amount: f64, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - amount).min(self.capacity);
    }

    /// The most tokens the bucket holds.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Tokens available now.
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn refills_over_time_and_reports_the_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 1.0, start);
        assert!(bucket.try_take(1.0, start).is_ok());
        assert!(bucket.try_take(1.0, start).is_ok());
        assert_eq!(bucket.try_take(1.0, start), Err(Duration::from_secs(1)));
        assert!(bucket.try_take(1.0, start + Duration::from_secs(1)).is_ok());
        assert!(bucket.available(start + Duration::from_secs(100)) <= 2.0);
    }

    #[test]
    fn debt_delays_the_next_take_and_refunds_are_capped() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 10.0, start);
        bucket.adjust(150.0, start);
        assert_eq!(bucket.available(start), -50.0);
        assert_eq!(bucket.try_take(10.0, start), Err(Duration::from_secs(6)));
        bucket.adjust(-1000.0, start);
        assert_eq!(bucket.available(start), 100.0);
        assert!(
            bucket.try_take(500.0, start).is_err(),
            "more than the capacity never fits"
        );
    }

    proptest! {
        /// Whatever the arrivals and sizes, what is admitted in any window fits the contract.
        #[test]
        fn admitted_tokens_never_exceed_the_rate_over_any_window(
            capacity in 1u32..50,
            rate in 1u32..20,
            arrivals in proptest::collection::vec((0u64..2_000, 1u32..10), 1..200),
        ) {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(f64::from(capacity), f64::from(rate), start);
            let mut at = 0u64;
            let mut admitted: Vec<(u64, u32)> = Vec::new();
            for (gap_ms, amount) in arrivals {
                at += gap_ms;
                if bucket.try_take(f64::from(amount), start + Duration::from_millis(at)).is_ok() {
                    admitted.push((at, amount));
                }
            }
            for (i, &(from, _)) in admitted.iter().enumerate() {
                let mut total = 0u64;
                for &(to, amount) in &admitted[i..] {
                    total += u64::from(amount);
                    let window = (to - from) as f64 / 1000.0;
                    let bound = f64::from(capacity) + f64::from(rate) * window;
                    prop_assert!(total as f64 <= bound + 1e-6, "{total} tokens in {window}s > {bound}");
                }
            }
        }
    }
}

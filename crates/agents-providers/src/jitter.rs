//! Capped exponential backoff with full jitter, shared by retries and MCP reconnects.

use std::time::Duration;

/// A wait drawn uniformly from `[0, min(max_ms, base_ms * 2^exponent))`.
///
/// Full jitter spreads the waits of many callers that failed together over the whole range, so
/// they do not come back as one synchronized wave (the AWS architecture blog's "full jitter").
/// The exponent saturates, so any `exponent` is safe; a zero ceiling gives a zero wait.
pub(crate) fn full_jitter(
    base_ms: u64,
    exponent: u32,
    max_ms: u64,
    rng: &mut impl rand::Rng,
) -> Duration {
    let ceiling = 1_u64
        .checked_shl(exponent)
        .map_or(u64::MAX, |factor| base_ms.saturating_mul(factor))
        .min(max_ms);
    if ceiling == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rng.random_range(0..ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_below_the_capped_exponential() {
        let mut rng = rand::rng();
        for exponent in [0, 1, 5, 63, 64, u32::MAX] {
            let ceiling = 1_u64
                .checked_shl(exponent)
                .map_or(u64::MAX, |f| 100_u64.saturating_mul(f))
                .min(5_000);
            for _ in 0..50 {
                assert!(
                    full_jitter(100, exponent, 5_000, &mut rng) < Duration::from_millis(ceiling)
                );
            }
        }
        assert_eq!(full_jitter(0, 3, 1_000, &mut rng), Duration::ZERO);
        assert_eq!(full_jitter(100, 3, 0, &mut rng), Duration::ZERO);
    }
}

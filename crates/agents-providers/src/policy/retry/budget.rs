//! A retry budget over a sliding window, in the manner of tower's `TpsBudget` and Finagle's
//! `RetryBudget`.
//!
//! Each original request deposits `ratio` tokens, each retry withdraws one; a reserve of
//! `min_per_second * window` tokens is always there. Deposits and withdrawals are kept in ten
//! slots covering the window and expire with them, so the budget forgets old traffic and the
//! reserve refills. Tokens are counted in thousandths to keep the ratio exact enough without
//! floating point in the hot path.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::BudgetConfig;

const SLOTS: usize = 10;
/// One retry, in thousandths of a token.
const RETRY_COST: i64 = 1_000;

/// Whether recent traffic can afford another retry.
#[derive(Debug)]
pub(super) struct Budget {
    /// Thousandths of a token each request deposits.
    deposit: i64,
    /// Thousandths of a token always available.
    reserve: i64,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    slots: [i64; SLOTS],
    current: usize,
    /// When the current slot began.
    since: Instant,
    slot: Duration,
}

impl Budget {
    pub(super) fn new(config: &BudgetConfig) -> Self {
        // Both are bounded by validation: ratio <= 10, window <= 60 s.
        let deposit = (config.ratio * 1_000.0).round() as i64;
        let reserve = i64::from(config.min_per_second)
            .saturating_mul(i64::try_from(config.window_ms).unwrap_or(i64::MAX));
        let window = Duration::from_millis(config.window_ms);
        Self {
            deposit,
            reserve,
            window: Mutex::new(Window {
                slots: [0; SLOTS],
                current: 0,
                since: Instant::now(),
                slot: window / SLOTS as u32,
            }),
        }
    }

    /// Records an original request.
    pub(super) fn deposit(&self) {
        let mut window = self.lock();
        let slot = window.advance(Instant::now());
        *slot = slot.saturating_add(self.deposit);
    }

    /// Takes one retry's worth from the budget; `false` (and nothing taken) when it cannot
    /// afford one.
    pub(super) fn withdraw(&self) -> bool {
        let mut window = self.lock();
        window.advance(Instant::now());
        let balance = window
            .slots
            .iter()
            .fold(self.reserve, |sum, slot| sum.saturating_add(*slot));
        if balance < RETRY_COST {
            return false;
        }
        let current = window.current;
        window.slots[current] -= RETRY_COST;
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // Each critical section is a few integer updates that cannot panic half-way.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Window {
    /// Moves to the slot for `now`, clearing the slots that expired on the way.
    fn advance(&mut self, now: Instant) -> &mut i64 {
        let elapsed = now.saturating_duration_since(self.since);
        let steps = elapsed.as_nanos() / self.slot.as_nanos().max(1);
        if steps > 0 {
            for _ in 0..steps.min(SLOTS as u128) {
                self.current = (self.current + 1) % SLOTS;
                self.slots[self.current] = 0;
            }
            self.since = match u32::try_from(steps) {
                Ok(steps) if steps <= SLOTS as u32 => self.since + self.slot * steps,
                _ => now,
            };
        }
        &mut self.slots[self.current]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn budget(ratio: f64, min_per_second: u32) -> Budget {
        Budget::new(&BudgetConfig {
            ratio,
            min_per_second,
            window_ms: 1_000,
        })
    }

    fn drain(budget: &Budget) -> usize {
        std::iter::from_fn(|| budget.withdraw().then_some(())).count()
    }

    #[tokio::test(start_paused = true)]
    async fn the_reserve_allows_min_per_second_over_the_window() {
        let budget = budget(0.0, 3);
        budget.deposit();
        assert_eq!(drain(&budget), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_deposit_their_ratio() {
        let budget = budget(0.5, 0);
        assert!(!budget.withdraw());
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!(drain(&budget), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn old_traffic_expires_and_the_reserve_refills() {
        let budget = budget(1.0, 2);
        for _ in 0..4 {
            budget.deposit();
        }
        assert_eq!(drain(&budget), 6);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            drain(&budget),
            0,
            "withdrawals are remembered for the whole window"
        );
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(
            drain(&budget),
            2,
            "only the reserve is left after the window"
        );
        tokio::time::advance(Duration::from_secs(3_600)).await;
        budget.deposit();
        assert_eq!(drain(&budget), 3);
    }
}

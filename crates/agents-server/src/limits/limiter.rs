//! The limiter and the guard an admitted call holds.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use agents_providers::TokenBucket;
use tokio::time::Instant;

use super::{LimitsConfig, Refusal};

/// Admits or refuses calls, at once. Cheap to clone: clones share the same counters.
#[derive(Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
}

struct Shared {
    config: LimitsConfig,
    /// `(capacity, refill per second)` of each tenant's bucket; `None` when the rate is off.
    bucket: Option<(f64, f64)>,
    /// Calls admitted and not yet dropped; never above `config.max_in_flight`.
    in_flight: AtomicUsize,
    /// At most `config.max_tenants` entries.
    tenants: Mutex<HashMap<Arc<str>, TenantState>>,
}

struct TenantState {
    /// The map's key, shared with this tenant's admissions so releasing allocates nothing.
    name: Arc<str>,
    active: usize,
    bucket: Option<TokenBucket>,
}

impl TenantState {
    /// Forgetting an idle tenant loses nothing: a new entry would look the same (no call in
    /// flight, a full bucket).
    fn is_idle(&mut self, now: Instant) -> bool {
        self.active == 0
            && self
                .bucket
                .as_mut()
                .is_none_or(|bucket| bucket.available(now) >= bucket.capacity())
    }
}

impl Limiter {
    /// A limiter for `config` (which should have passed [`LimitsConfig::validate`]).
    pub fn new(config: LimitsConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                bucket: config.bucket(),
                config,
                in_flight: AtomicUsize::new(0),
                tenants: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Admits a call from `tenant`, or says which limit refuses it. Never waits.
    ///
    /// Takes a global slot, then a slot of the tenant's concurrency, then a token from the
    /// tenant's rate bucket; a refusal gives back what was taken. Keep the [`Admission`] for
    /// the whole call: dropping it frees the slots.
    ///
    /// # Errors
    /// The [`Refusal`] naming the limit; `Refusal::to_status` makes it `RESOURCE_EXHAUSTED`.
    pub fn admit(&self, tenant: &str) -> Result<Admission, Refusal> {
        self.admit_at(tenant, Instant::now())
    }

    fn admit_at(&self, tenant: &str, now: Instant) -> Result<Admission, Refusal> {
        let shared = &*self.shared;
        let max = shared.config.max_in_flight;
        if shared
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(Refusal::Global { limit: max });
        }
        match self.take_tenant_slot(tenant, now) {
            Ok(name) => Ok(Admission {
                shared: Arc::clone(&self.shared),
                tenant: name,
            }),
            Err(refusal) => {
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                Err(refusal)
            }
        }
    }

    fn take_tenant_slot(&self, tenant: &str, now: Instant) -> Result<Arc<str>, Refusal> {
        let shared = &*self.shared;
        let mut tenants = shared.lock_tenants();
        if !tenants.contains_key(tenant) {
            let max_tenants = shared.config.max_tenants;
            if tenants.len() >= max_tenants {
                tenants.retain(|_, state| !state.is_idle(now));
            }
            if tenants.len() >= max_tenants {
                return Err(Refusal::TenantConcurrency {
                    limit: max_tenants,
                    tenants_full: true,
                });
            }
            let name: Arc<str> = Arc::from(tenant);
            let bucket = shared
                .bucket
                .map(|(capacity, rate)| TokenBucket::new(capacity, rate, now));
            tenants.insert(
                Arc::clone(&name),
                TenantState {
                    name,
                    active: 0,
                    bucket,
                },
            );
        }
        let Some(state) = tenants.get_mut(tenant) else {
            // Inserted above under the same lock.
            return Err(Refusal::TenantConcurrency {
                limit: shared.config.max_tenants,
                tenants_full: true,
            });
        };
        let limit = shared.config.tenant_max_concurrent;
        if state.active >= limit {
            return Err(Refusal::TenantConcurrency {
                limit,
                tenants_full: false,
            });
        }
        if let Some(bucket) = &mut state.bucket {
            bucket
                .try_take(1.0, now)
                .map_err(|retry_after| Refusal::TenantRate { retry_after })?;
        }
        state.active += 1;
        Ok(Arc::clone(&state.name))
    }

    /// Calls admitted and not yet finished, across all tenants (for metrics).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Calls of `tenant` in flight.
    pub fn tenant_in_flight(&self, tenant: &str) -> usize {
        self.shared
            .lock_tenants()
            .get(tenant)
            .map_or(0, |state| state.active)
    }

    /// Tenants currently tracked (at most `max_tenants`).
    pub fn tracked_tenants(&self) -> usize {
        self.shared.lock_tenants().len()
    }

    /// The configuration in force.
    pub fn config(&self) -> &LimitsConfig {
        &self.shared.config
    }
}

impl Shared {
    fn lock_tenants(&self) -> MutexGuard<'_, HashMap<Arc<str>, TenantState>> {
        // The map stays consistent if a holder panicked: every update is a single step.
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("in_flight", &self.in_flight())
            .field("tracked_tenants", &self.tracked_tenants())
            .field("config", &self.shared.config)
            .finish()
    }
}

/// An admitted call's slots: one global, one of its tenant's. Keep it for the whole call (for
/// a stream, move it into the stream); dropping it frees both.
#[must_use = "dropping the admission frees its slots at once"]
pub struct Admission {
    shared: Arc<Shared>,
    tenant: Arc<str>,
}

impl Admission {
    /// The tenant the call was admitted for.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(state) = self.shared.lock_tenants().get_mut(&*self.tenant) {
            state.active = state.active.saturating_sub(1);
        }
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("tenant", &self.tenant)
            .finish()
    }
}

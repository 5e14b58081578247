//! Metric families with a bounded number of series and redacted label values.
//!
//! Every series costs memory in this process and in every Prometheus that scrapes it, for as
//! long as the series is retained. Label values here come from configuration and from events,
//! which a buggy or hostile producer controls; without a bound, a stream of distinct provider
//! names would grow the registry without limit and take the monitoring system down with it.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Mutex, PoisonError, RwLock};

use prometheus_client::metrics::family::Family;

/// The label value that collects every label set beyond a family's cap.
pub(super) const OVERFLOW: &str = "other";

/// The label value used when the real one is empty (Prometheus treats an empty value as an
/// absent label, which would merge the series with a different one).
pub(super) const UNKNOWN: &str = "unknown";

/// Longest label value kept, in bytes; longer values are cut at a character boundary.
pub(super) const MAX_LABEL_BYTES: usize = 128;

/// One series' labels: each key with its value, in a fixed order.
pub(super) type Labels<const N: usize> = [(&'static str, String); N];

/// A [`Family`] that admits at most `cap` distinct label sets and records everything beyond
/// them under one overflow series whose every label is [`OVERFLOW`], so the family never has
/// more than `cap + 1` series.
pub(super) struct Bounded<const N: usize, M> {
    keys: [&'static str; N],
    family: Family<Labels<N>, M, fn() -> M>,
    /// How many label sets were admitted on their own; the lock serialises admitting, so
    /// concurrent first uses cannot overshoot the cap.
    admitted: Mutex<usize>,
    cap: usize,
    /// The series of the first [`HOT_SERIES`] raw label sets seen, keyed by the caller's
    /// values before redaction and shortening: the request path records the same few label
    /// sets over and over, and a hit here costs no redaction, no allocation and no hashing.
    hot: RwLock<Vec<([Box<str>; N], M)>>,
}

/// Raw label sets remembered per family for the fast path; a linear scan over this few short
/// strings is cheaper than hashing. Label sets beyond it take the full path (still correct).
const HOT_SERIES: usize = 32;

impl<const N: usize, M> fmt::Debug for Bounded<N, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bounded")
            .field("keys", &self.keys)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl<const N: usize, M: Clone> Bounded<N, M> {
    /// A family labelled with `keys` whose series are built by `new_metric`.
    pub(super) fn new(keys: [&'static str; N], new_metric: fn() -> M, cap: usize) -> Self {
        Self {
            keys,
            family: Family::new_with_constructor(new_metric),
            admitted: Mutex::new(0),
            cap,
            hot: RwLock::new(Vec::new()),
        }
    }

    /// A handle on the family, for registering it (clones share the series).
    pub(super) fn family(&self) -> Family<Labels<N>, M, fn() -> M> {
        self.family.clone()
    }

    /// The series for `values` (one per key, in key order), created if the cap allows, else
    /// the overflow series. Values are redacted and shortened first.
    pub(super) fn get(&self, values: [&str; N]) -> M {
        {
            let hot = self.hot.read().unwrap_or_else(PoisonError::into_inner);
            let found = hot.iter().find(|(raw, _)| {
                raw.iter()
                    .zip(values.iter())
                    .all(|(seen, value)| &**seen == *value)
            });
            if let Some((_, metric)) = found {
                return metric.clone();
            }
        }
        // A secret registered after a label set was remembered changes nothing here: its
        // series was already exported under the labels redacted at that time.
        let metric = self.resolve(values);
        let mut hot = self.hot.write().unwrap_or_else(PoisonError::into_inner);
        let known = hot.iter().any(|(raw, _)| {
            raw.iter()
                .zip(values.iter())
                .all(|(seen, value)| &**seen == *value)
        });
        if !known && hot.len() < HOT_SERIES {
            hot.push((values.map(Box::from), metric.clone()));
        }
        metric
    }

    /// The slow path of [`get`](Self::get): redact, shorten, admit under the cap.
    fn resolve(&self, values: [&str; N]) -> M {
        let labels = self.labels(values.map(label_value));
        if let Some(metric) = self.family.get(&labels) {
            return metric.clone();
        }
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have admitted the same labels since the check above.
        if let Some(metric) = self.family.get(&labels) {
            return metric.clone();
        }
        let labels = if *admitted < self.cap {
            *admitted += 1;
            labels
        } else {
            self.labels([(); N].map(|()| OVERFLOW.to_owned()))
        };
        self.family.get_or_create_owned(&labels)
    }

    fn labels(&self, values: [String; N]) -> Labels<N> {
        let mut values = values.into_iter();
        self.keys
            .map(|key| (key, values.next().unwrap_or_else(|| UNKNOWN.to_owned())))
    }
}

/// `value` as it may appear in a label: redacted, never empty, at most [`MAX_LABEL_BYTES`].
///
/// Redaction comes before shortening: cutting first could split a registered secret so that the
/// redactor no longer recognises the part that is left.
pub(super) fn label_value(value: &str) -> String {
    let redacted = agents_core::redact(value);
    let text: &str = &redacted;
    if text.is_empty() {
        return UNKNOWN.to_owned();
    }
    let mut end = text.len().min(MAX_LABEL_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match redacted {
        Cow::Owned(mut owned) => {
            owned.truncate(end);
            owned
        }
        Cow::Borrowed(borrowed) => borrowed[..end].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn label_values_are_never_empty_and_cut_at_a_character_boundary() {
        assert_eq!(label_value(""), UNKNOWN);
        assert_eq!(label_value("openai"), "openai");
        let long = "é".repeat(MAX_LABEL_BYTES);
        let cut = label_value(&long);
        assert!(cut.len() <= MAX_LABEL_BYTES && cut.len() >= MAX_LABEL_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_fast_path_finds_the_same_redacted_series() {
        let family = Bounded::<2, Counter>::new(["a", "b"], Counter::default, 1_000);
        let secret = "sk-abcdefghijklmnopqrstuvwxyz";
        for _ in 0..3 {
            family.get(["openai", "ok"]).inc();
            family.get([secret, "ok"]).inc();
        }
        assert_eq!(family.get(["openai", "ok"]).get(), 3);
        // Remembered under the raw value, exported under the redacted one only.
        assert_eq!(family.hot.read().unwrap().len(), 2);
        let exported = family.family();
        let masked = exported
            .get(&[("a", agents_core::MASK.to_owned()), ("b", "ok".to_owned())])
            .map(|c| c.get());
        assert_eq!(masked, Some(3));
        // Past the remembered sets, the full path still answers.
        for i in 0..(HOT_SERIES + 5) {
            family.get([&format!("p{i}"), "ok"]).inc();
        }
        assert_eq!(family.hot.read().unwrap().len(), HOT_SERIES);
        assert_eq!(family.get(["p36", "ok"]).get(), 1);
    }

    #[test]
    fn beyond_the_cap_everything_goes_to_one_overflow_series() {
        let family = Bounded::<2, Counter>::new(["a", "b"], Counter::default, 3);
        for i in 0..10 {
            family.get([&format!("x{i}"), "y"]).inc();
        }
        // An admitted label set keeps its own series after the cap is reached.
        family.get(["x0", "y"]).inc();
        assert_eq!(
            *family
                .admitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            3
        );
        assert_eq!(family.get(["x0", "y"]).get(), 2);
        assert_eq!(family.get(["other", "other"]).get(), 7);
    }
}

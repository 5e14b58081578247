//! Which event types a subscriber wants.
//!
//! Subscribers name types, not subjects: the same filter works in-process and over NATS.
//! Exact names, prefixes (`agent.`) and globs (`provider.circuit_*`) cover what consumers ask
//! for; the NATS transport turns a filter into a server-side subject filter where it can, so
//! uninteresting events never cross the network.

use std::fmt;

/// A filter on the CloudEvents `type` attribute.
///
/// ```
/// use agents_bus::TypeFilter;
/// assert!(TypeFilter::prefix("agent.").matches("agent.started"));
/// assert!(TypeFilter::glob("provider.circuit_*").matches("provider.circuit_opened"));
/// assert!(!TypeFilter::exact("agent.failed").matches("agent.started"));
/// assert!(TypeFilter::all().matches("anything"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeFilter {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    All,
    Exact(String),
    Prefix(String),
    /// `*` matches any run of characters (dots included), `?` exactly one character.
    Glob(String),
}

impl TypeFilter {
    /// Every type.
    pub fn all() -> Self {
        Self { kind: Kind::All }
    }

    /// Exactly `event_type`.
    pub fn exact(event_type: impl Into<String>) -> Self {
        Self {
            kind: Kind::Exact(event_type.into()),
        }
    }

    /// Types starting with `prefix`, e.g. `agent.`; the empty prefix matches everything.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Self::all();
        }
        Self {
            kind: Kind::Prefix(prefix),
        }
    }

    /// A glob: `*` matches any run of characters, `?` one character. A pattern without
    /// wildcards is an exact match; `*` alone matches everything.
    pub fn glob(pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        if pattern.is_empty() || pattern.chars().all(|c| c == '*') {
            return Self::all();
        }
        if !pattern.contains(['*', '?']) {
            return Self::exact(pattern);
        }
        match pattern.strip_suffix('*') {
            Some(prefix) if !prefix.contains(['*', '?']) => Self::prefix(prefix),
            _ => Self {
                kind: Kind::Glob(pattern),
            },
        }
    }

    /// Whether `event_type` passes.
    pub fn matches(&self, event_type: &str) -> bool {
        match &self.kind {
            Kind::All => true,
            Kind::Exact(t) => t == event_type,
            Kind::Prefix(p) => event_type.starts_with(p.as_str()),
            Kind::Glob(g) => glob_match(g.as_bytes(), event_type.as_bytes()),
        }
    }

    /// The narrowest NATS subject under `base` (e.g. `agents.events`) that holds every
    /// matching type; the bus still applies [`matches`](Self::matches) to what arrives.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn nats_subject(&self, base: &str) -> String {
        let wildcard = format!("{base}.>");
        match &self.kind {
            Kind::Exact(t) if is_subject_tail(t) => format!("{base}.{t}"),
            // `agent.` is the whole `agent` family: `base.agent.>`.
            Kind::Prefix(p) => match p.strip_suffix('.') {
                Some(family) if is_subject_tail(family) => format!("{base}.{family}.>"),
                _ => wildcard,
            },
            _ => wildcard,
        }
    }
}

impl Default for TypeFilter {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Display for TypeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::All => f.write_str("*"),
            Kind::Exact(t) | Kind::Glob(t) => f.write_str(t),
            Kind::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

impl From<&str> for TypeFilter {
    /// Same as [`TypeFilter::glob`].
    fn from(pattern: &str) -> Self {
        Self::glob(pattern)
    }
}

/// Whether `tail` can follow `base.` in a NATS subject: dot-separated non-empty tokens of
/// characters that are neither wildcards nor whitespace.
pub(crate) fn is_subject_tail(tail: &str) -> bool {
    !tail.is_empty()
        && tail.split('.').all(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && c != '*' && c != '>')
        })
}

/// Iterative glob match with single-star backtracking: linear in practice, never exponential.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                // One character: skip a whole UTF-8 sequence.
                p += 1;
                t += utf8_len(text[t]);
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + utf8_len(text[st]);
                    star = Some((sp, t));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn constructors_normalise() {
        assert_eq!(TypeFilter::glob("*"), TypeFilter::all());
        assert_eq!(TypeFilter::glob(""), TypeFilter::all());
        assert_eq!(TypeFilter::prefix(""), TypeFilter::all());
        assert_eq!(
            TypeFilter::glob("agent.started"),
            TypeFilter::exact("agent.started")
        );
        assert_eq!(TypeFilter::glob("agent.*"), TypeFilter::prefix("agent."));
        assert_eq!(TypeFilter::from("task.*"), TypeFilter::prefix("task."));
        assert_eq!(TypeFilter::default().to_string(), "*");
        assert_eq!(TypeFilter::prefix("agent.").to_string(), "agent.*");
        assert_eq!(TypeFilter::glob("a?c").to_string(), "a?c");
    }

    #[test]
    fn globs() {
        let cases = [
            ("provider.circuit_*", "provider.circuit_opened", true),
            ("provider.circuit_*", "provider.success", false),
            ("*.started", "agent.started", true),
            ("*.started", "task.started.x", false),
            ("task.?ailed", "task.failed", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("日?", "日本", true),
            ("?", "", false),
            ("a**", "a", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                TypeFilter::glob(pattern).matches(text),
                expected,
                "{pattern} {text}"
            );
        }
    }

    #[test]
    fn nats_subjects() {
        let base = "agents.events";
        assert_eq!(TypeFilter::all().nats_subject(base), "agents.events.>");
        assert_eq!(
            TypeFilter::exact("agent.started").nats_subject(base),
            "agents.events.agent.started"
        );
        assert_eq!(
            TypeFilter::prefix("agent.").nats_subject(base),
            "agents.events.agent.>"
        );
        assert_eq!(
            TypeFilter::prefix("agent").nats_subject(base),
            "agents.events.>"
        );
        assert_eq!(
            TypeFilter::glob("*.failed").nats_subject(base),
            "agents.events.>"
        );
        assert_eq!(
            TypeFilter::exact("bad type").nats_subject(base),
            "agents.events.>"
        );
        assert!(!is_subject_tail("a..b") && !is_subject_tail("a.*") && !is_subject_tail(""));
    }

    proptest! {
        #[test]
        fn star_suffix_is_starts_with(prefix in "[a-z._]{0,8}", text in "[a-z._]{0,12}") {
            let glob = TypeFilter::glob(format!("{prefix}*"));
            prop_assert_eq!(glob.matches(&text), text.starts_with(&prefix));
            let general = Kind::Glob(format!("{prefix}*"));
            let general = TypeFilter { kind: general };
            prop_assert_eq!(general.matches(&text), text.starts_with(&prefix));
        }

        #[test]
        fn literal_glob_is_equality(a in "[a-z.]{0,8}", b in "[a-z.]{0,8}") {
            prop_assert_eq!(glob_match(a.as_bytes(), b.as_bytes()), a == b);
        }

        #[test]
        fn star_in_the_middle(a in "[a-z]{0,4}", b in "[a-z]{0,4}", mid in "[a-z.]{0,6}") {
            let text = format!("{a}{mid}{b}");
            let pattern = format!("{a}*{b}");
            prop_assert!(glob_match(pattern.as_bytes(), text.as_bytes()));
        }
    }
}

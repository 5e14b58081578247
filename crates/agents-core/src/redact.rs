//! Masks secrets in every string that leaves the process.
//!
//! A secret that reaches a log line, an event, an audit record, a metric label, a trace attribute
//! or an error message is a leaked secret: those sinks are copied, shipped and retained far beyond
//! the reach of the vault it came from. So every string that leaves the process passes through a
//! [`Redactor`] first, and the error types' `Display` impls use [`Redactor::global`] themselves.
//!
//! Two kinds of secrets are masked with [`MASK`]:
//! - values registered at run time ([`Redactor::register`]): the API keys and passwords the
//!   process loaded, matched exactly wherever they occur, even overlapping or glued together;
//! - common secret shapes nobody registered: `Authorization` headers, `Bearer` tokens, JWTs,
//!   `sk-…` API keys, AWS access key ids and `password=…`-style pairs.
//!
//! The guarantee is that no registered secret occurs in the output of [`Redactor::redact`], not
//! even one that the masking itself produced (see [`Redactor::redact`] for how).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, Input, MatchKind};
use regex::{Regex, RegexSet};
use serde_json::Value;

/// What every masked span is replaced with.
pub const MASK: &str = "***";

/// The shortest secret, in bytes, that [`Redactor::register`] accepts.
///
/// Shorter values would mask ordinary text everywhere, and being longer than [`MASK`] is what
/// makes every masking of a registered secret shrink the string, so redaction terminates.
pub const MIN_SECRET_LEN: usize = 4;

/// Upper bound on redaction passes over one string. Ordinary text needs two (one that masks, one
/// that finds nothing left); only secrets built to cascade with the mask need more.
const MAX_PASSES: usize = 32;

/// A whole key name whose value is a secret: an optional prefix (`db_password`, `x-api-key`, and
/// camelCase `dbPassword`, `accessToken`, `clientSecret`), a secret word, and an optional
/// `_key`/`_access_key`/`Key` suffix (`aws_secret_access_key`, `privateKey`). Keys that merely
/// start with a secret word (`token_count`, `max_tokens`) do not match.
macro_rules! key_name {
    () => {
        r"[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api_key|apikey|api-key|access_token|refresh_token|client_secret|private_key|privatekey)(?:[_.-]?(?:access[_.-]?)?key)?"
    };
}

/// The secret shapes. Where a pattern has capture groups only the groups are masked (the key or
/// the word `Bearer` stays readable); otherwise the whole match is.
///
/// Invariants the termination argument in [`Redactor::redact`] relies on: every masked span is at
/// least 3 bytes (never shorter than [`MASK`], so masking never grows the string), and a span equal
/// to [`MASK`] is left alone, so an already masked value is not matched again. Word boundaries are
/// ASCII (`(?-u:\b)`) because Unicode ones force the regex crate off its fast DFA on non-ASCII text.
const SHAPES: [&str; 6] = [
    // `Authorization: Bearer <token>`, `"authorization": "Basic <creds>"`, in headers, JSON or
    // escaped JSON. Any value length: the header name alone says it is a credential.
    r#"(?i)(?-u:\b)(?:proxy-)?authorization(?:\\?["'])?\s*[:=]\s*\\?["']?(?:(?:bearer|basic|token)\s+)?((?:[^\s"'\\]|\\[^\s"']){3,})"#,
    // A bare `Bearer <token>`; at least 16 token characters so that prose ("Bearer tokens
    // expire") is left alone.
    r"(?-u:\b)[Bb]earer\s+([A-Za-z0-9._~+/-]{16,}=*)",
    // JWT: base64url JSON header (`{"` encodes as `eyJ`), payload, signature (empty for `none`).
    r"(?-u:\b)eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    // OpenAI-style keys, `sk-…`, `sk-proj-…`, `sk-svcacct-…`.
    r"(?-u:\b)sk-[A-Za-z0-9_-]{16,}",
    // AWS access key ids, long-lived (`AKIA`) and temporary (`ASIA`).
    r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
    // `key=value`, `key: value`, `"key": "value"`, `'key': 'value'`, escaped JSON; at least 3
    // value characters so `pwd=.` or `token: 1` stay. Quoted values honour backslash escapes so
    // `"a\"b"` is masked whole; an unquoted value runs to whitespace or a quote, masking trailing
    // punctuation rather than leaving part of a password behind.
    concat!(
        r"(?i)(?-u:\b)",
        key_name!(),
        r#"(?:\\?["'])?\s*[:=]\s*(?:"((?:[^"\\]|\\.){3,})"|'((?:[^'\\]|\\.){3,})'|\\?["']?((?:[^\s"'\\]|\\[^\s"']){3,}))"#
    ),
];

/// Literals of which every shape, and every secret key name, contains at least one (compared
/// ASCII case-insensitively, which can only add candidates). Text with none of them cannot
/// match, so one SIMD scan for them lets clean text, which is nearly all of it, skip the regex
/// engines altogether.
const SHAPE_LITERALS: [&str; 16] = [
    "authorization",
    "bearer",
    "eyj",
    "sk-",
    "akia",
    "asia",
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "private_key",
    "privatekey",
];

/// The compiled shapes, built once per process.
struct Shapes {
    /// [`SHAPE_LITERALS`]: no hit, no shape can match.
    literals: AhoCorasick,
    /// All shapes at once: one scan tells the hot path that nothing matched.
    any: RegexSet,
    /// Each shape alone, indexed like [`SHAPES`], run only when `any` says it matched.
    each: Vec<Regex>,
    /// A whole JSON object key that names a secret, for [`Redactor::redact_json`].
    secret_key: Regex,
}

impl Shapes {
    /// `false` only when no shape can match `text`. Non-ASCII text always goes to the regexes:
    /// their Unicode case folding matches `ſ` for `s` and the Kelvin sign for `k`, which an
    /// ASCII scan would miss; within ASCII text the two foldings agree.
    fn may_match(&self, text: &str) -> bool {
        !text.is_ascii() || self.literals.is_match(text)
    }

    fn build() -> Result<Self, regex::Error> {
        let literals = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(SHAPE_LITERALS)
            .map_err(|e| regex::Error::Syntax(e.to_string()))?;
        Ok(Self {
            literals,
            any: RegexSet::new(SHAPES)?,
            each: SHAPES
                .iter()
                .map(|p| Regex::new(p))
                .collect::<Result<_, _>>()?,
            secret_key: Regex::new(concat!("(?i)^", key_name!(), "$"))?,
        })
    }
}

/// The patterns are constants and a test compiles them, so `Err` cannot happen in a released
/// build; if it ever did, redaction fails closed (everything masked) instead of panicking.
static SHAPES_COMPILED: LazyLock<Result<Shapes, regex::Error>> = LazyLock::new(Shapes::build);

static GLOBAL: LazyLock<Redactor> = LazyLock::new(Redactor::new);

/// An immutable view of the registry. Redaction clones the `Arc` and scans without holding the
/// lock, so a registration never waits for a long scan and a scan never sees a half-built matcher.
#[derive(Default)]
struct Snapshot {
    secrets: Vec<String>,
    /// `None` while nothing is registered.
    matcher: Option<AhoCorasick>,
}

/// Masks registered secrets and common secret shapes in strings and JSON values.
///
/// Clones share one registry: a secret registered through any clone is masked by all of them.
/// `Debug` shows how many secrets are registered, never the secrets.
///
/// ```
/// # use agents_core::Redactor;
/// let redactor = Redactor::new();
/// redactor.register("hunter2-vault-key")?;
/// assert_eq!(redactor.redact("key is hunter2-vault-key"), "key is ***");
/// assert_eq!(redactor.redact("password=swordfish"), "password=***");
/// # Ok::<(), agents_core::RedactError>(())
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    registry: Arc<RwLock<Arc<Snapshot>>>,
}

/// Why a secret could not be registered. Never contains the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The value is too short to be masked without masking ordinary text too.
    #[error(
        "secret rejected: it has {len} bytes, the minimum is {min}; register the whole credential, not a fragment"
    )]
    SecretTooShort {
        /// Length of the rejected value, in bytes.
        len: usize,
        /// [`MIN_SECRET_LEN`].
        min: usize,
    },
    /// The matcher for the enlarged set of secrets could not be built (it would exceed the
    /// automaton's size limits); the previously registered secrets are still masked.
    #[error(
        "could not build the secret matcher for {count} secrets; the registry was left unchanged"
    )]
    MatcherBuild {
        /// How many secrets the rejected registry would have held.
        count: usize,
    },
}

impl Redactor {
    /// A redactor with no registered secrets; the secret shapes are masked from the start.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide redactor, used by error `Display` impls and by the secrets crate, which
    /// registers every secret it loads here.
    pub fn global() -> &'static Redactor {
        &GLOBAL
    }

    /// Registers `secret` so that every later redaction masks it. Registering the same value
    /// again does nothing.
    ///
    /// # Errors
    /// [`RedactError::SecretTooShort`] when `secret` is shorter than [`MIN_SECRET_LEN`] bytes;
    /// [`RedactError::MatcherBuild`] if the matcher cannot be rebuilt. Neither contains `secret`.
    pub fn register(&self, secret: &str) -> Result<(), RedactError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(RedactError::SecretTooShort {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        // The write lock is held across the rebuild so that two concurrent registrations cannot
        // each publish a matcher missing the other's secret.
        let mut guard = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if guard.secrets.iter().any(|s| s == secret) {
            return Ok(());
        }
        let mut secrets = guard.secrets.clone();
        secrets.push(secret.to_owned());
        // `Standard` is the only match kind that reports overlapping matches, which the masking
        // needs: with secret `abab`, text `ababab` must be masked whole.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&secrets)
            .map_err(|_| RedactError::MatcherBuild {
                count: secrets.len(),
            })?;
        *guard = Arc::new(Snapshot {
            secrets,
            matcher: Some(matcher),
        });
        Ok(())
    }

    /// How many distinct secrets are registered.
    pub fn registered_count(&self) -> usize {
        self.snapshot().secrets.len()
    }

    /// Returns `text` with every registered secret and every secret shape replaced by [`MASK`].
    ///
    /// Borrows `text` when nothing matched, so the common case does not allocate.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        redact_in(&self.snapshot(), text)
    }

    /// Redacts every string and every object key in `value`, in place.
    ///
    /// Also masks the whole value of a key that names a secret (`{"password": "hunter2"}`),
    /// which the string alone (`hunter2`) would not reveal as one. Should two keys of one object
    /// become equal once redacted, only the last one's value is kept.
    pub fn redact_json(&self, value: &mut Value) {
        // One snapshot for the whole value: taking the registry's lock per string cost more
        // than scanning most of them.
        let snapshot = self.snapshot();
        // An explicit stack instead of recursion: values built in code have no depth limit.
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(s) => {
                    if let Cow::Owned(redacted) = redact_in(&snapshot, s) {
                        *s = redacted;
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    if map
                        .keys()
                        .any(|k| matches!(redact_in(&snapshot, k), Cow::Owned(_)))
                    {
                        let old = std::mem::take(map);
                        for (k, v) in old {
                            map.insert(redact_in(&snapshot, &k).into_owned(), v);
                        }
                    }
                    for (key, child) in map.iter_mut() {
                        if names_secret(key) && is_secret_scalar(child) {
                            *child = Value::String(MASK.to_owned());
                        } else {
                            stack.push(child);
                        }
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: a redactor that printed its secrets would be the leak it exists to stop.
        f.debug_struct("Redactor")
            .field("registered", &self.registered_count())
            .finish_non_exhaustive()
    }
}

/// [`Redactor::redact`] against one snapshot of the registry.
fn redact_in<'a>(snapshot: &Snapshot, text: &'a str) -> Cow<'a, str> {
    // Masking can create a new occurrence of a registered secret: with secrets `**ab` and
    // `xyzw`, `xyzwab` becomes `***ab`, which contains `**ab`. So passes repeat until one
    // changes nothing; only then is the output known to be free of registered secrets.
    //
    // Termination: a pass that masks a registered secret replaces at least 4 bytes with 3,
    // and shape masks replace at least 3 bytes with 3 and skip spans already equal to MASK.
    // So every pass that changes the string either shortens it or, at equal length, turns
    // more bytes into `*`: the pair (length, non-`*` bytes) strictly decreases.
    //
    // The bound only matters for secrets designed to cascade (`***b` in `***bbbbbb…` loses
    // one `b` per pass). Reaching it returns MASK alone, which cannot leak anything: it is
    // shorter than MIN_SECRET_LEN, so no registered secret fits in it.
    let mut current = Cow::Borrowed(text);
    for _ in 0..MAX_PASSES {
        match mask_once(snapshot, &current) {
            None => return current,
            Some(next) => current = Cow::Owned(next),
        }
    }
    Cow::Borrowed(MASK)
}

/// Shorthand for [`Redactor::global`]`().redact(text)`.
pub fn redact(text: &str) -> Cow<'_, str> {
    Redactor::global().redact(text)
}

/// One masking pass over `text`: `None` when it changes nothing.
fn mask_once(snapshot: &Snapshot, text: &str) -> Option<String> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    if let Some(matcher) = &snapshot.matcher {
        match matcher.try_find_overlapping_iter(Input::new(text)) {
            Ok(found) => ranges.extend(found.map(|m| (m.start(), m.end()))),
            // Unreachable with a `Standard` matcher; fail closed rather than pass secrets on.
            Err(_) => return mask_all(text),
        }
    }
    let Ok(shapes) = &*SHAPES_COMPILED else {
        return mask_all(text);
    };
    if shapes.may_match(text) && shapes.any.is_match(text) {
        for index in shapes.any.matches(text).iter() {
            let Some(shape) = shapes.each.get(index) else {
                continue;
            };
            // Skip group 0 (the whole match) when the shape has groups of its own.
            let skip = usize::from(shape.captures_len() > 1);
            for caps in shape.captures_iter(text) {
                for m in caps.iter().skip(skip).flatten() {
                    if m.as_str() != MASK {
                        ranges.push((m.start(), m.end()));
                    }
                }
            }
        }
    }
    if ranges.is_empty() {
        return None;
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        // Matches of UTF-8 needles in UTF-8 text already lie on char boundaries; widening is a
        // no-op kept so that slicing below can never split a character.
        let (start, end) = (
            text.floor_char_boundary(start),
            text.ceil_char_boundary(end),
        );
        match merged.last_mut() {
            // Overlapping or touching spans become one mask: `abab` in `ababab` is one `***`.
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in merged {
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end;
    }
    out.push_str(&text[copied..]);
    (out != text).then_some(out)
}

/// The fail-closed result of a pass: everything masked.
fn mask_all(text: &str) -> Option<String> {
    (text != MASK).then(|| MASK.to_owned())
}

/// Whether an object key names a secret (`password`, `db_password`, `X-Api-Key`, ...).
fn names_secret(key: &str) -> bool {
    matches!(&*SHAPES_COMPILED, Ok(shapes) if shapes.may_match(key) && shapes.secret_key.is_match(key))
}

/// Whether `value`, found under a key naming a secret, is to be masked whole: a string or a
/// number of at least 3 characters, as in the `key=value` shape, not already masked.
fn is_secret_scalar(value: &Value) -> bool {
    match value {
        Value::String(s) => s != MASK && s.chars().count() >= 3,
        Value::Number(n) => n.to_string().len() >= 3,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn with(secrets: &[&str]) -> Redactor {
        let r = Redactor::new();
        for s in secrets {
            r.register(s).unwrap();
        }
        r
    }

    #[test]
    fn every_shape_contains_a_prefilter_literal() {
        // The literal scan may only skip text no shape matches: each shape's own examples
        // must be candidates, and so must their Unicode case-folded spellings.
        let shapes = SHAPES_COMPILED.as_ref().unwrap();
        for text in [
            "Authorization: Bearer abc",
            "bearer abcdefghijklmnopqrstu",
            "eyJhbGciOi.eyJzdWIi.sig",
            "sk-abcdefghijklmnopqrst",
            "AKIAABCDEFGHIJKLMNOP",
            "ASIAABCDEFGHIJKLMNOP",
            "db_password=x",
            "PASSWD: x",
            "pwd=x",
            "client_secret=x",
            "X-Api-Key: x",
            "apikey=x",
            "api_key=x",
            "refresh_token=x",
            "private_key=x",
        ] {
            assert!(shapes.may_match(text), "{text}");
        }
        assert!(!shapes.may_match("fn main() { println!(\"hello\"); }"));
        assert!(
            shapes.may_match("pa\u{17f}\u{17f}word=hunter2"),
            "non-ASCII goes to the regexes"
        );
        // What the regexes decide for the folded spelling is unchanged by the scan.
        let folded = "pa\u{17f}\u{17f}word=hunter2";
        assert_eq!(
            Redactor::new().redact(folded) == folded,
            !shapes.any.is_match(folded)
        );
    }

    /// Each case is `input => expected`, redacted by a redactor with nothing registered.
    fn assert_cases(cases: &[&str]) {
        for case in cases {
            let (input, expected) = case.split_once(" => ").unwrap();
            assert_eq!(Redactor::new().redact(input), expected, "input: {input}");
        }
    }

    fn assert_unchanged(inputs: &[&str]) {
        for input in inputs {
            let out = Redactor::new().redact(input);
            assert!(
                matches!(out, Cow::Borrowed(s) if s == *input),
                "{input} -> {out}"
            );
        }
    }

    #[test]
    fn registered_secrets_overlapping_and_adjacent() {
        let r = with(&["hunter2-key", "s3cr3t"]);
        assert_eq!(r.redact("a hunter2-key b s3cr3t"), "a *** b ***");
        assert_eq!(r.redact("s3cr3ts3cr3t xs3cr3tx"), "*** x***x");
        assert_eq!(with(&["abab"]).redact("ababab"), "***");
        assert_eq!(with(&["abcd", "cdef"]).redact("xabcdefx"), "x***x");
    }

    #[test]
    fn masking_that_creates_a_secret_is_masked_again() {
        assert_eq!(with(&["**ab", "xyzw"]).redact("xyzwab"), "****");
        let r = with(&["***b"]);
        assert_eq!(r.redact("***bbb"), "***");
        // Cascades past the pass bound: mask only.
        assert_eq!(r.redact(&format!("***{}", "b".repeat(100))), MASK);
    }

    #[test]
    fn unicode_around_and_inside_secrets() {
        let r = with(&["секрет日本", "пароль🔑"]);
        assert_eq!(r.redact("ключ=🔑секрет日本é"), "ключ=🔑***é");
        assert_eq!(r.redact("«пароль🔑»日"), "«***»日");
        assert_eq!(r.redact("日本секрет日本секрет日本"), "日本***");
        assert_eq!(r.redact("é секрет日本 ß пароль🔑"), "é *** ß ***");
    }

    #[test]
    fn too_short_secret_is_rejected_without_echoing_it() {
        let r = Redactor::new();
        let err = r.register("aé").unwrap_err();
        assert!(matches!(
            err,
            RedactError::SecretTooShort { len: 3, min: 4 }
        ));
        let msg = err.to_string();
        assert!(
            !msg.contains("aé") && msg.contains('3') && msg.contains('4'),
            "{msg}"
        );
        assert!(r.register("").is_err());
        assert_eq!(r.registered_count(), 0);
    }

    #[test]
    fn registering_twice_is_a_no_op_and_clones_share() {
        let r = Redactor::new();
        let clone = r.clone();
        r.register("same-secret").unwrap();
        clone.register("same-secret").unwrap();
        assert_eq!(r.registered_count(), 1);
        assert_eq!(clone.redact("same-secret"), "***");
    }

    #[test]
    fn debug_shows_count_not_secrets() {
        let r = with(&["do-not-print-me"]);
        let shown = format!("{r:?} {r:#?}");
        assert!(
            !shown.contains("do-not-print-me") && shown.contains("registered: 1"),
            "{shown}"
        );
    }

    #[test]
    fn nothing_matched_borrows() {
        assert!(SHAPES_COMPILED.is_ok());
        let r = with(&["some-secret"]);
        assert!(matches!(r.redact("plain text, 日本"), Cow::Borrowed(_)));
        assert_unchanged(&[
            "",
            "password=***",
            r#"{"token": "***"}"#,
            "Authorization: Bearer ***",
        ]);
    }

    #[test]
    fn poisoned_lock_is_recovered() {
        let r = with(&["before-poison"]);
        let registry = Arc::clone(&r.registry);
        let _ = std::thread::spawn(move || {
            let _guard = registry.write();
            panic!("poison the lock");
        })
        .join();
        assert!(r.registry.is_poisoned());
        r.register("after-poison").unwrap();
        assert_eq!(r.redact("before-poison after-poison"), "*** ***");
    }

    #[test]
    fn global_and_shorthand() {
        Redactor::global().register("global-only-secret-1").unwrap();
        assert_eq!(redact("x global-only-secret-1 y"), "x *** y");
    }

    #[test]
    fn bearer_jwt_openai_aws() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_cases(&[
            "Authorization: Bearer abc123 => Authorization: Bearer ***",
            "authorization:Basic dXNlcjpwYXNz => authorization:Basic ***",
            r#"{"Authorization":"Bearer tok.en-1"} => {"Authorization":"Bearer ***"}"#,
            "curl -H 'Authorization: Bearer x9z' => curl -H 'Authorization: Bearer ***'",
            "Proxy-Authorization: abcdef => Proxy-Authorization: ***",
            "sent Bearer abcdefghij0123456789== ok => sent Bearer *** ok",
            &format!("jwt {jwt} end => jwt *** end"),
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. => ***",
            "key sk-abcdefghijklmnop1234 => key ***",
            "sk-proj-AbC_dEf-123456789012345 => ***",
            "(sk-svcacct-0123456789abcdefgh) => (***)",
            "id=AKIAIOSFODNN7EXAMPLE, => id=***,",
            "ASIA0123456789ABCDEF => ***",
        ]);
        assert_unchanged(&[
            "use a Bearer token | Bearer authentication (RFC 6750) | the bearer",
            "authorization failed for user | Authorization:",
            "eyJ | eyJhbGciOi.foo | version 1.2.3 | xeyJhbGciOi.eyJzdWIi.abc",
            "sk-abc | task-management-system-overview | risk-assessment-framework-v2",
            "AKIA | AKIAshortlower | XAKIAIOSFODNN7EXAMPLE",
        ]);
    }

    #[test]
    fn key_value_pairs() {
        assert_cases(&[
            "password=hunter2 => password=***",
            "PASSWORD: hunter2 next => PASSWORD: *** next",
            r#"{"password": "hunter 2", "user": "bob"} => {"password": "***", "user": "bob"}"#,
            "{'api_key': 'abc123'} => {'api_key': '***'}",
            "DB_PASSWORD=s3cr3t! => DB_PASSWORD=***",
            "X-Api-Key: abcdef => X-Api-Key: ***",
            "GET /x?access_token=abc123&page=2 => GET /x?access_token=***",
            r#"client_secret = "a\"b c" => client_secret = "***""#,
            r#"{\"token\": \"abc\"} => {\"token\": \"***\"}"#,
            "aws_secret_access_key=wJalrXUtnFEMI => aws_secret_access_key=***",
            "refresh_token: rt-1234 => refresh_token: ***",
            "pwd=p4ss passwd=p4ss apikey=p4ss => pwd=*** passwd=*** apikey=***",
            r#"Config { secret: "xyz" } => Config { secret: "***" }"#,
            "private_key='-----BEGIN KEY-----' => private_key='***'",
            // camelCase and PascalCase names, as Java, C#, JavaScript and Go write them.
            r#"{"accessToken": "opaque-abc-123"} => {"accessToken": "***"}"#,
            r#"private String dbPassword = "correct-horse-1"; => private String dbPassword = "***";"#,
            "const clientSecret = 'cs-9876' => const clientSecret = '***'",
            r#"RefreshToken: "rt-4567" => RefreshToken: "***""#,
            "privateKey=abcdef authToken=abcdef => privateKey=*** authToken=***",
        ]);
        assert_unchanged(&[
            "token | the token expired | reset your password. | secretary: Alice",
            "password policy requires 12 characters | token == 1 | pwd=ab",
            "max_tokens=512 tokens: 1000 token_count: 1234",
            "maxTokens=512 tokenCount: 1234 secretary: Alice",
        ]);
    }

    #[test]
    fn redact_json_strings_keys_and_secret_keys() {
        let r = with(&["vault-key-1"]);
        let mut v = json!({
            "msg": "called with vault-key-1",
            "vault-key-1": 1,
            "nested": [{"password": "hunter2"}, {"api_key": 12345}, "Bearer abcdefghijklmnop1234"],
            "auth": {"X-Api-Key": "k-1", "token": true, "max_tokens": 512, "secret": "***"},
            "camel": {"accessToken": "opaque-1", "clientSecret": 7654321, "maxTokens": 512},
            "n": null
        });
        r.redact_json(&mut v);
        let expected = json!({
            "msg": "called with ***",
            "***": 1,
            "nested": [{"password": "***"}, {"api_key": "***"}, "Bearer ***"],
            "auth": {"X-Api-Key": "***", "token": true, "max_tokens": 512, "secret": "***"},
            "camel": {"accessToken": "***", "clientSecret": "***", "maxTokens": 512},
            "n": null
        });
        assert_eq!(v, expected);
    }

    /// Characters for secrets and filler: `*` (weighted up, to provoke cascades with the mask),
    /// letters, digits, punctuation, quotes, backslash and multi-byte characters.
    fn chars(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        let set: Vec<char> = "abcxyZQ019!#%&(-./:;=?@_~\"'\\ éß日🔑".chars().collect();
        let ch = prop_oneof![1 => Just('*'), 3 => proptest::sample::select(set)];
        proptest::collection::vec(ch, len).prop_map(|v| v.into_iter().collect())
    }

    /// A piece of the text: filler, a copy of the n-th secret, or bare mask characters.
    #[derive(Clone, Debug)]
    enum Seg {
        Free(String),
        Secret(usize),
        Stars(usize),
    }

    fn seg() -> impl Strategy<Value = Seg> {
        prop_oneof![
            chars(0..8).prop_map(Seg::Free),
            any::<usize>().prop_map(Seg::Secret),
            (1usize..5).prop_map(Seg::Stars),
        ]
    }

    proptest! {
        #[test]
        fn no_registered_secret_survives(
            secrets in proptest::collection::vec(chars(4..40), 1..4),
            mut segs in proptest::collection::vec(seg(), 0..12),
            forced in any::<(usize, usize)>(),
        ) {
            segs.insert(forced.0 % (segs.len() + 1), Seg::Secret(forced.1));
            let text: String = segs.iter().map(|s| match s {
                Seg::Free(f) => f.clone(),
                Seg::Secret(i) => secrets[i % secrets.len()].clone(),
                Seg::Stars(n) => "*".repeat(*n),
            }).collect();
            let r = Redactor::new();
            for s in &secrets {
                r.register(s).unwrap();
            }
            let out = r.redact(&text);
            for s in &secrets {
                prop_assert!(!out.contains(s.as_str()), "{s:?} in {out:?} from {text:?}");
            }
            prop_assert!(out.len() <= text.len().max(MASK.len()));
        }

        #[test]
        fn plain_words_are_unchanged(text in "[a-z]{1,12}( [a-z]{1,12}){0,20}") {
            let r = with(&["SECRET-123", "Zz-9999"]);
            prop_assert!(matches!(r.redact(&text), Cow::Borrowed(s) if s == text));
        }
    }
}

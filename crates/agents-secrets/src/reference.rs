//! Secret references: the strings a config holds instead of secrets.
//!
//! A config file is copied, committed, pasted into tickets and printed by `--dump-config`; a
//! secret in it is a leaked secret. So configs hold references (`env:OPENAI_API_KEY`,
//! `vault:secret/providers/openai#api_key`) and the value is loaded at the moment of use.
//!
//! Parsing is strict and happens at start-up, so a typo fails the boot with the reference named,
//! instead of failing the first request. A parse error names the reference, never a value: a
//! string with no known scheme is most likely a secret pasted where a reference belongs, so it is
//! described (its length) and not echoed.
//!
//! | syntax | meaning |
//! |--------|---------|
//! | `env:NAME` | the environment variable `NAME` |
//! | `file:/abs/path` | the file's content (one trailing newline dropped); mode must be `0600`/`0400` |
//! | `vault:mount/path#key` | key `key` of the latest version of KV v2 secret `path` in `mount` |
//! | `vault:mount/path?version=N#key` | the same, version `N` |
//! | `kms:BASE64` | the AWS KMS ciphertext `BASE64` (standard alphabet), decrypted |
//! | `kms-file:/abs/path` | a KMS ciphertext read from a file (raw bytes or base64 text), decrypted |
//! | `kms-envelope-file:/abs/path` | a KMS envelope (JSON: data key encrypted by KMS, value by AES-256-GCM) in a file, decrypted |

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SecretError;

/// Longest reference accepted: a KMS ciphertext (at most 6 KiB) in base64, and some room.
const MAX_REFERENCE_LEN: usize = 9 * 1024;
/// Longest KMS ciphertext blob AWS produces.
pub(crate) const MAX_CIPHERTEXT_BYTES: usize = 6144;
/// How much of a `kms:` ciphertext messages show.
const KMS_SHOWN_CHARS: usize = 12;

/// The kind of a reference: which backend serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheme {
    /// `env:NAME`.
    Env,
    /// `file:/path`.
    File,
    /// `vault:mount/path#key`.
    Vault,
    /// `kms:BASE64`.
    Kms,
    /// `kms-file:/path`.
    KmsFile,
    /// `kms-envelope-file:/path`: envelope encryption, the data key decrypted by KMS.
    KmsEnvelopeFile,
}

impl Scheme {
    /// Every scheme, in the order the docs list them.
    pub const ALL: [Scheme; 6] = [
        Scheme::Env,
        Scheme::File,
        Scheme::Vault,
        Scheme::Kms,
        Scheme::KmsFile,
        Scheme::KmsEnvelopeFile,
    ];

    /// The scheme as written before the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::File => "file",
            Self::Vault => "vault",
            Self::Kms => "kms",
            Self::KmsFile => "kms-file",
            Self::KmsEnvelopeFile => "kms-envelope-file",
        }
    }

    /// The crate feature that provides a store for this scheme.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Env | Self::File => "env",
            Self::Vault => "vault",
            Self::Kms | Self::KmsFile | Self::KmsEnvelopeFile => "aws-kms",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == prefix)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a `vault:` reference points.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct VaultPath {
    pub(crate) mount: String,
    pub(crate) path: String,
    pub(crate) key: String,
    pub(crate) version: Option<u64>,
}

/// What a reference points at, parsed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Env(String),
    File(PathBuf),
    Vault(VaultPath),
    Kms(Vec<u8>),
    KmsFile(PathBuf),
    KmsEnvelopeFile(PathBuf),
}

/// A parsed secret reference such as `env:OPENAI_API_KEY` or `vault:secret/app#password`.
///
/// It names a secret; it is not one. `Display` and `Debug` show the reference, with a `kms:`
/// ciphertext shortened; `Serialize` writes the full text back. See the
/// [module docs](crate#secret-references) for the syntax.
///
/// ```
/// use agents_secrets::{Scheme, SecretRef};
/// let r: SecretRef = "vault:secret/providers/openai?version=3#api_key".parse()?;
/// assert_eq!(r.scheme(), Scheme::Vault);
/// assert!("OPENAI_KEY".parse::<SecretRef>().is_err()); // no scheme: a pasted secret?
/// # Ok::<(), agents_secrets::SecretError>(())
/// ```
#[derive(Clone)]
pub struct SecretRef {
    text: String,
    target: Target,
}

impl SecretRef {
    /// Parses a reference.
    ///
    /// # Errors
    /// [`SecretError::InvalidReference`] naming the reference (or, when it has no known scheme,
    /// only its length) and what is wrong.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let target = parse_target(text)?;
        Ok(Self {
            text: text.to_owned(),
            target,
        })
    }

    /// Which backend serves it.
    pub fn scheme(&self) -> Scheme {
        match self.target {
            Target::Env(_) => Scheme::Env,
            Target::File(_) => Scheme::File,
            Target::Vault(_) => Scheme::Vault,
            Target::Kms(_) => Scheme::Kms,
            Target::KmsFile(_) => Scheme::KmsFile,
            Target::KmsEnvelopeFile(_) => Scheme::KmsEnvelopeFile,
        }
    }

    /// The reference exactly as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }
}

impl PartialEq for SecretRef {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SecretRef {}

impl Hash for SecretRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target {
            // A ciphertext is not secret, but it is long and says nothing to a reader.
            Target::Kms(ref blob) => {
                let body = &self.text[Scheme::Kms.as_str().len() + 1..];
                let shown: String = body.chars().take(KMS_SHOWN_CHARS).collect();
                write!(f, "kms:{shown}…({} bytes)", blob.len())
            }
            _ => f.write_str(&self.text),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<&str> for SecretRef {
    type Error = SecretError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        // The error's Display never echoes a value, so serde may quote it.
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::SecretRef").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A secret reference, never a secret: env:NAME, file:/path, vault:mount/path[?version=N]#key, kms:BASE64, kms-file:/path or kms-envelope-file:/path.",
            "pattern": "^(env|file|vault|kms|kms-file|kms-envelope-file):.+$"
        })
    }
}

/// How a reference is shown in a parse error: schemes we know are echoed (the text after them
/// is a name or a path), anything else is only described.
fn shown(text: &str) -> String {
    match text.split_once(':') {
        Some((prefix, body)) if Scheme::from_prefix(prefix).is_some() => {
            // An invalid ciphertext may be a plaintext pasted after `kms:`: none of it is shown.
            if prefix == Scheme::Kms.as_str() {
                format!("`kms:…` ({} characters)", body.len())
            } else {
                format!("`{text}`")
            }
        }
        _ => format!("(a string of {} bytes with no known scheme)", text.len()),
    }
}

fn invalid(text: &str, reason: impl AsRef<str>) -> SecretError {
    SecretError::invalid_reference(shown(text), reason)
}

fn parse_target(text: &str) -> Result<Target, SecretError> {
    if text.len() > MAX_REFERENCE_LEN {
        return Err(invalid(
            text,
            format!("longer than {MAX_REFERENCE_LEN} bytes"),
        ));
    }
    let Some((prefix, body)) = text.split_once(':') else {
        return Err(invalid(
            text,
            "expected `scheme:…` with scheme env, file, vault, kms, kms-file or kms-envelope-file; if this is the secret itself, move it to a store and put its reference here",
        ));
    };
    let Some(scheme) = Scheme::from_prefix(prefix) else {
        // The prefix is echoed only when it looks like a scheme typo, not like part of a value.
        let hint = if !prefix.is_empty()
            && prefix.len() <= 12
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            format!("unknown scheme `{prefix}`")
        } else {
            "unknown scheme".to_owned()
        };
        return Err(invalid(
            text,
            format!("{hint}; expected env, file, vault, kms, kms-file or kms-envelope-file"),
        ));
    };
    match scheme {
        Scheme::Env => parse_env(text, body).map(Target::Env),
        Scheme::File => parse_path(text, body).map(Target::File),
        Scheme::KmsFile => parse_path(text, body).map(Target::KmsFile),
        Scheme::KmsEnvelopeFile => parse_path(text, body).map(Target::KmsEnvelopeFile),
        Scheme::Vault => parse_vault(text, body).map(Target::Vault),
        Scheme::Kms => parse_kms(text, body).map(Target::Kms),
    }
}

fn parse_env(text: &str, name: &str) -> Result<String, SecretError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 256;
    if valid {
        Ok(name.to_owned())
    } else {
        Err(invalid(
            text,
            "an environment variable name is letters, digits and `_`, not starting with a digit",
        ))
    }
}

fn parse_path(text: &str, path: &str) -> Result<PathBuf, SecretError> {
    if path.is_empty() || path.contains('\0') || !Path::new(path).is_absolute() {
        return Err(invalid(
            text,
            "expected an absolute path (a relative one would depend on the working directory)",
        ));
    }
    Ok(PathBuf::from(path))
}

/// A path segment Vault accepts without URL escaping, and that cannot climb out of the mount.
fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-~@+=,".contains(c))
}

fn parse_vault(text: &str, body: &str) -> Result<VaultPath, SecretError> {
    const SYNTAX: &str = "expected vault:mount/path#key or vault:mount/path?version=N#key";
    let Some((location, key)) = body.split_once('#') else {
        return Err(invalid(text, format!("no `#key`; {SYNTAX}")));
    };
    if key.is_empty() || key.len() > 256 || key.chars().any(char::is_control) {
        return Err(invalid(
            text,
            "the key after `#` must be 1 to 256 printable characters",
        ));
    }
    let (location, version) = match location.split_once('?') {
        None => (location, None),
        Some((location, query)) => {
            let version = query
                .strip_prefix("version=")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| *v > 0);
            let Some(version) = version else {
                return Err(invalid(
                    text,
                    format!("the only query is `?version=N` with N ≥ 1; {SYNTAX}"),
                ));
            };
            (location, Some(version))
        }
    };
    let Some((mount, path)) = location.split_once('/') else {
        return Err(invalid(text, format!("no path after the mount; {SYNTAX}")));
    };
    if !valid_segment(mount) || !path.split('/').all(valid_segment) {
        return Err(invalid(
            text,
            "mount and path segments are non-empty, not `.` or `..`, of letters, digits and `._-~@+=,`",
        ));
    }
    Ok(VaultPath {
        mount: mount.to_owned(),
        path: path.to_owned(),
        key: key.to_owned(),
        version,
    })
}

fn parse_kms(text: &str, body: &str) -> Result<Vec<u8>, SecretError> {
    match STANDARD.decode(body) {
        Ok(blob) if !blob.is_empty() && blob.len() <= MAX_CIPHERTEXT_BYTES => Ok(blob),
        Ok(_) => Err(invalid(
            text,
            format!("a KMS ciphertext has 1 to {MAX_CIPHERTEXT_BYTES} bytes"),
        )),
        Err(_) => Err(invalid(
            text,
            "the ciphertext is not standard base64 (as `aws kms encrypt --output text --query CiphertextBlob` prints it)",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SecretErrorKind;

    fn err(text: &str) -> String {
        let e = SecretRef::parse(text).unwrap_err();
        assert_eq!(e.kind(), SecretErrorKind::InvalidReference, "{text}");
        e.to_string()
    }

    #[test]
    fn parses_every_scheme() {
        let r = SecretRef::parse("env:OPENAI_API_KEY").unwrap();
        assert_eq!(r.scheme(), Scheme::Env);
        assert!(matches!(r.target(), Target::Env(n) if n == "OPENAI_API_KEY"));
        let r = SecretRef::parse("file:/run/secrets/key").unwrap();
        assert!(matches!(r.target(), Target::File(p) if p == Path::new("/run/secrets/key")));
        let r = SecretRef::parse("vault:secret/providers/openai#api_key").unwrap();
        let Target::Vault(v) = r.target() else {
            panic!()
        };
        assert_eq!(
            (v.mount.as_str(), v.path.as_str(), v.key.as_str(), v.version),
            ("secret", "providers/openai", "api_key", None)
        );
        let r = SecretRef::parse("vault:kv/app?version=7#pass#word").unwrap();
        let Target::Vault(v) = r.target() else {
            panic!()
        };
        assert_eq!((v.key.as_str(), v.version), ("pass#word", Some(7)));
        let r = SecretRef::parse("kms:AQIDBA==").unwrap();
        assert_eq!(r.scheme(), Scheme::Kms);
        assert!(matches!(r.target(), Target::Kms(b) if b == &[1, 2, 3, 4]));
        let r = SecretRef::parse("kms-file:/etc/app/key.enc").unwrap();
        assert_eq!(r.scheme(), Scheme::KmsFile);
        let r = SecretRef::parse("kms-envelope-file:/etc/app/key.json").unwrap();
        assert_eq!(r.scheme(), Scheme::KmsEnvelopeFile);
        assert!(
            matches!(r.target(), Target::KmsEnvelopeFile(p) if p == Path::new("/etc/app/key.json"))
        );
        for scheme in Scheme::ALL {
            assert!(!scheme.feature().is_empty());
            assert_eq!(scheme.to_string(), scheme.as_str());
        }
    }

    #[test]
    fn display_debug_serde_round_trip() {
        let r: SecretRef = "vault:secret/app#password".parse().unwrap();
        assert_eq!(r.to_string(), "vault:secret/app#password");
        assert_eq!(format!("{r:?}"), "SecretRef(vault:secret/app#password)");
        assert_eq!(r.as_str(), "vault:secret/app#password");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"vault:secret/app#password\"");
        let back: SecretRef = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let kms = format!("kms:{}", STANDARD.encode([7u8; 100]));
        let r = SecretRef::try_from(kms.as_str()).unwrap();
        assert_eq!(r.to_string(), format!("kms:{}…(100 bytes)", &kms[4..16]));
        assert_eq!(r.as_str(), kms);
        let bad = serde_json::from_str::<SecretRef>("\"sk-live-abcdefghijklmnop\"").unwrap_err();
        assert!(!bad.to_string().contains("abcdefghijklmnop"), "{bad}");
        let schema = schemars::schema_for!(SecretRef);
        assert_eq!(schema.get("type").unwrap(), "string");
    }

    #[test]
    fn a_pasted_secret_is_described_not_echoed() {
        for text in [
            "hunter2hunter2",
            "sk-proj-abcdefghijklmnopqrstuvwxyz",
            "p@ss:word-with-colon",
            "Bearer:abcdef",
        ] {
            let shown = err(text);
            assert!(!shown.contains(text), "{shown}");
            assert!(shown.contains(&format!("{} bytes", text.len())), "{shown}");
        }
        let shown = err("envv:HOME");
        assert!(shown.contains("unknown scheme `envv`"), "{shown}");
        let shown = err(&"x".repeat(MAX_REFERENCE_LEN + 1));
        assert!(shown.contains("longer than"), "{shown}");
    }

    #[test]
    fn malformed_references_name_the_reference_and_the_rule() {
        for (text, expect) in [
            ("env:", "environment variable name"),
            ("env:1ABC", "environment variable name"),
            ("env:A-B", "environment variable name"),
            ("file:relative/path", "absolute path"),
            ("file:", "absolute path"),
            ("kms-file:key.enc", "absolute path"),
            ("kms-envelope-file:key.json", "absolute path"),
            ("vault:secret/app", "no `#key`"),
            ("vault:secret/app#", "key after `#`"),
            ("vault:secret#key", "no path after the mount"),
            ("vault:secret/../sys/seal#key", "not `.` or `..`"),
            ("vault:secret//app#key", "non-empty"),
            ("vault:/app#key", "non-empty"),
            ("vault:secret/a b#key", "letters, digits"),
            ("vault:secret/app?version=0#key", "version=N"),
            ("vault:secret/app?v=1#key", "version=N"),
            ("kms:not base64!", "not standard base64"),
            ("kms:", "1 to 6144 bytes"),
        ] {
            let shown = err(text);
            assert!(shown.contains(expect), "{text}: {shown}");
            if !text.starts_with("kms:") {
                assert!(shown.contains(text), "{text}: {shown}");
            }
        }
        let long = format!(
            "kms:{}",
            STANDARD.encode(vec![0u8; MAX_CIPHERTEXT_BYTES + 3])
        );
        let shown = err(&long);
        assert!(shown.contains("6144") && !shown.contains(&long), "{shown}");
    }
}

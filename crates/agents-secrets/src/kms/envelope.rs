//! The envelope format of `kms-envelope-file:`: a value encrypted locally with AES-256-GCM under
//! a data key, the data key encrypted by KMS.
//!
//! ```json
//! {"v":1,"key":"<base64 KMS ciphertext of a 256-bit data key>","nonce":"<base64 12 bytes>","data":"<base64 AES-256-GCM ciphertext+tag>"}
//! ```
//!
//! Parsing and the local cipher live here, without KMS; the store decrypts the data key.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::reference::MAX_CIPHERTEXT_BYTES;

/// The only format version.
pub(crate) const VERSION: u64 = 1;
/// AES-256 key bytes.
pub(crate) const DATA_KEY_BYTES: usize = 32;
/// AES-GCM nonce bytes.
const NONCE_BYTES: usize = 12;
/// AES-GCM tag bytes, the shortest `data`.
const TAG_BYTES: usize = 16;

/// A parsed envelope: every field decoded, none decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The data key, encrypted by KMS.
    pub(crate) key: Vec<u8>,
    pub(crate) nonce: [u8; NONCE_BYTES],
    /// AES-256-GCM ciphertext followed by the tag.
    pub(crate) data: Vec<u8>,
}

/// Why a document is not an envelope; the message names the field, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormatError(pub(crate) String);

/// Why local decryption failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// KMS returned a data key that is not 256 bits.
    KeyLength,
    /// The tag does not match: the data was tampered with, or belongs to another key.
    Mismatch,
}

fn field<'a>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, FormatError> {
    match object.get(name) {
        None => Err(FormatError(format!("field `{name}` is missing"))),
        Some(serde_json::Value::String(text)) => Ok(text),
        Some(_) => Err(FormatError(format!("field `{name}` must be a string"))),
    }
}

fn base64_field(
    object: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Vec<u8>, FormatError> {
    STANDARD
        .decode(field(object, name)?.trim())
        .map_err(|_| FormatError(format!("field `{name}` is not standard base64")))
}

impl Envelope {
    /// Parses the JSON document.
    pub(crate) fn parse(content: &[u8]) -> Result<Self, FormatError> {
        // serde_json's messages may quote the input: only the position is kept.
        let value: serde_json::Value = serde_json::from_slice(content).map_err(|e| {
            FormatError(format!(
                "not a JSON document (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let serde_json::Value::Object(object) = value else {
            return Err(FormatError(
                "not a JSON object with fields v, key, nonce and data".to_owned(),
            ));
        };
        if object
            .keys()
            .any(|k| !["v", "key", "nonce", "data"].contains(&k.as_str()))
        {
            return Err(FormatError(
                "has a field other than v, key, nonce and data".to_owned(),
            ));
        }
        match object.get("v") {
            None => return Err(FormatError("field `v` is missing".to_owned())),
            Some(v) if v.as_u64() == Some(VERSION) => {}
            Some(_) => {
                return Err(FormatError(format!(
                    "field `v` must be {VERSION} (the only version this build reads)"
                )));
            }
        }
        let key = base64_field(&object, "key")?;
        if key.is_empty() || key.len() > MAX_CIPHERTEXT_BYTES {
            return Err(FormatError(format!(
                "field `key` must be a KMS ciphertext of 1 to {MAX_CIPHERTEXT_BYTES} bytes"
            )));
        }
        let nonce = base64_field(&object, "nonce")?;
        let Ok(nonce) = <[u8; NONCE_BYTES]>::try_from(nonce.as_slice()) else {
            return Err(FormatError(format!(
                "field `nonce` must be {NONCE_BYTES} bytes"
            )));
        };
        let data = base64_field(&object, "data")?;
        if data.len() < TAG_BYTES {
            return Err(FormatError(format!(
                "field `data` must hold at least the {TAG_BYTES}-byte tag"
            )));
        }
        Ok(Self { key, nonce, data })
    }

    /// The JSON document.
    pub(crate) fn to_json(&self) -> String {
        serde_json::json!({
            "v": VERSION,
            "key": STANDARD.encode(&self.key),
            "nonce": STANDARD.encode(self.nonce),
            "data": STANDARD.encode(&self.data),
        })
        .to_string()
    }

    /// Encrypts `plaintext` under `data_key` with a fresh random nonce; `key` is the data key
    /// as KMS encrypted it.
    pub(crate) fn seal(key: Vec<u8>, data_key: &[u8], plaintext: &[u8]) -> Result<Self, OpenError> {
        let cipher = cipher(data_key)?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let data = cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| OpenError::Mismatch)?;
        Ok(Self {
            key,
            nonce: nonce.into(),
            data,
        })
    }

    /// Decrypts `data` with the plaintext `data_key`.
    pub(crate) fn open(&self, data_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let cipher = cipher(data_key)?;
        cipher
            .decrypt(Nonce::from_slice(&self.nonce), self.data.as_slice())
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Mismatch)
    }
}

fn cipher(data_key: &[u8]) -> Result<Aes256Gcm, OpenError> {
    if data_key.len() != DATA_KEY_BYTES {
        return Err(OpenError::KeyLength);
    }
    Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn message(content: &str) -> String {
        Envelope::parse(content.as_bytes()).unwrap_err().0
    }

    #[test]
    fn seals_opens_and_round_trips_the_document() {
        let data_key = [7u8; DATA_KEY_BYTES];
        let sealed = Envelope::seal(vec![1, 2, 3], &data_key, b"envelope-unit-value").unwrap();
        let parsed = Envelope::parse(sealed.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!(
            parsed.open(&data_key).unwrap().as_slice(),
            b"envelope-unit-value"
        );
        assert_eq!(parsed.open(&[8u8; 32]).unwrap_err(), OpenError::Mismatch);
        assert_eq!(parsed.open(&[7u8; 16]).unwrap_err(), OpenError::KeyLength);
        let mut tampered = parsed.clone();
        tampered.data[0] ^= 1;
        assert_eq!(tampered.open(&data_key).unwrap_err(), OpenError::Mismatch);
        // Two seals of one value differ: the nonce is fresh.
        let again = Envelope::seal(vec![1, 2, 3], &data_key, b"envelope-unit-value").unwrap();
        assert_ne!(again.nonce, sealed.nonce);
    }

    #[test]
    fn format_errors_name_the_field_never_a_value() {
        let key = STANDARD.encode([9u8; 40]);
        let nonce = STANDARD.encode([0u8; 12]);
        let data = STANDARD.encode([0u8; 20]);
        let ok = format!(r#"{{"v":1,"key":"{key}","nonce":"{nonce}","data":"{data}"}}"#);
        assert!(Envelope::parse(ok.as_bytes()).is_ok());
        for (content, expect) in [
            (r#"{"v":1,"key":"#.to_owned(), "not a JSON document"),
            ("secret-looking-garbage".to_owned(), "not a JSON document"),
            ("[1,2]".to_owned(), "not a JSON object"),
            (
                format!(r#"{{"key":"{key}","nonce":"{nonce}","data":"{data}"}}"#),
                "field `v` is missing",
            ),
            (
                format!(r#"{{"v":2,"key":"{key}","nonce":"{nonce}","data":"{data}"}}"#),
                "field `v` must be 1",
            ),
            (
                format!(r#"{{"v":1,"nonce":"{nonce}","data":"{data}"}}"#),
                "field `key` is missing",
            ),
            (
                format!(r#"{{"v":1,"key":"s3cr3t!!","nonce":"{nonce}","data":"{data}"}}"#),
                "field `key` is not standard base64",
            ),
            (
                format!(r#"{{"v":1,"key":"","nonce":"{nonce}","data":"{data}"}}"#),
                "field `key` must be a KMS ciphertext",
            ),
            (
                format!(r#"{{"v":1,"key":"{key}","nonce":7,"data":"{data}"}}"#),
                "field `nonce` must be a string",
            ),
            (
                format!(r#"{{"v":1,"key":"{key}","nonce":"AAAA","data":"{data}"}}"#),
                "field `nonce` must be 12 bytes",
            ),
            (
                format!(r#"{{"v":1,"key":"{key}","nonce":"{nonce}"}}"#),
                "field `data` is missing",
            ),
            (
                format!(r#"{{"v":1,"key":"{key}","nonce":"{nonce}","data":"AAAA"}}"#),
                "field `data` must hold at least",
            ),
            (
                format!(r#"{{"v":1,"key":"{key}","nonce":"{nonce}","data":"{data}","s3cr3t":1}}"#),
                "a field other than",
            ),
        ] {
            let shown = message(&content);
            assert!(shown.contains(expect), "{content}: {shown}");
            for value in ["secret-looking", "s3cr3t", key.as_str(), nonce.as_str()] {
                assert!(!shown.contains(value), "{content}: {shown}");
            }
        }
    }
}

//! The line format: a structured-mode CloudEvent whose last attribute is `chainhash`.
//!
//! `chainhash` = hex(SHA-256(previous line's hash ‖ this line without the attribute)). The
//! attribute is spliced in as a fixed-size suffix (`,"chainhash":"<64 hex>"}`) instead of being
//! serialized with the event, so a verifier recovers the hashed bytes by cutting the suffix
//! off, without re-encoding JSON (whose key order or number format could differ).

use sha2::{Digest, Sha256};

/// The chain's starting value for each file.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// The extension attribute holding the hash.
pub(crate) const ATTRIBUTE: &str = "chainhash";

const FIELD: &[u8] = b",\"chainhash\":\"";
const HEX_LEN: usize = 64;
/// `,"chainhash":"` + 64 hex digits + `"}`.
pub(crate) const SUFFIX_LEN: usize = FIELD.len() + HEX_LEN + 2;

/// SHA-256 of `prev` followed by `parts`.
fn link(prev: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The line (with its newline) for the encoded event `body` (a JSON object), chained to
/// `prev`, and the new chain value.
pub(crate) fn seal(prev: &[u8; 32], body: &[u8]) -> Option<(Vec<u8>, [u8; 32])> {
    let open = body.strip_suffix(b"}")?;
    let hash = link(prev, &[body]);
    let mut line = Vec::with_capacity(body.len() + SUFFIX_LEN + 1);
    line.extend_from_slice(open);
    line.extend_from_slice(FIELD);
    line.extend_from_slice(hex::encode(hash).as_bytes());
    line.extend_from_slice(b"\"}\n");
    Some((line, hash))
}

/// The hash a line (without newline) says it has, if it has the suffix.
pub(crate) fn stored_hash(line: &[u8]) -> Option<[u8; 32]> {
    let split = line.len().checked_sub(SUFFIX_LEN)?;
    let suffix = &line[split..];
    if !suffix.starts_with(FIELD) || !suffix.ends_with(b"\"}") {
        return None;
    }
    let digits = &suffix[FIELD.len()..FIELD.len() + HEX_LEN];
    // Lower case only, as written: `F` for `f` would decode to the same hash and hide an edit.
    if !digits
        .iter()
        .all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(digits, &mut hash).ok()?;
    Some(hash)
}

/// Checks a line (without newline) against `prev`: `Ok(hash)` when it links, `Err(true)` when
/// it has no chain suffix, `Err(false)` when the hash does not match.
pub(crate) fn check(prev: &[u8; 32], line: &[u8]) -> Result<[u8; 32], bool> {
    let stored = stored_hash(line).ok_or(true)?;
    let body = &line[..line.len() - SUFFIX_LEN];
    if body.len() < 2 || body[0] != b'{' {
        return Err(true);
    }
    if link(prev, &[body, b"}"]) == stored {
        Ok(stored)
    } else {
        Err(false)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn sealed_lines_check_and_parse_as_json() {
        let (line, hash) = seal(&GENESIS, br#"{"id":"1"}"#).unwrap_or_default();
        let text = std::str::from_utf8(&line).unwrap_or_default();
        assert!(text.starts_with(r#"{"id":"1","chainhash":""#) && text.ends_with("\"}\n"));
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(value[ATTRIBUTE], hex::encode(hash));
        let line = &line[..line.len() - 1];
        assert_eq!(check(&GENESIS, line), Ok(hash));
        assert_eq!(check(&hash, line), Err(false));
        assert_eq!(check(&GENESIS, b"{}"), Err(true));
        assert_eq!(stored_hash(line), Some(hash));
        assert!(seal(&GENESIS, b"[1]").is_none());
    }

    proptest! {
        #[test]
        fn any_single_byte_change_is_caught(
            body in "[a-z0-9 ]{0,40}", at in any::<usize>(), to in any::<u8>(),
        ) {
            let body = format!(r#"{{"data":"{body}"}}"#);
            let (mut line, _) = seal(&GENESIS, body.as_bytes()).unwrap_or_default();
            line.pop();
            let at = at % line.len();
            prop_assume!(line[at] != to);
            line[at] = to;
            prop_assert!(check(&GENESIS, &line).is_err());
        }
    }
}

//! System messages kept already encoded as JSON strings.
//!
//! An agent's system message is the same on every call (its role and its reply schema, a few
//! kB of JSON text full of quotes), and escaping it into the request body was the largest part
//! of serializing the body. The last few distinct system messages are kept with their encoded
//! form; a hit costs one string compare instead of the escaping.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::value::RawValue;

/// How many distinct system messages are kept: one per agent, with room to spare. A caller
/// whose system message changes on every call pays one compare per entry and the escaping.
const MAX_ENTRIES: usize = 8;

/// A message's text and that text as a JSON string literal.
#[derive(Debug)]
pub(super) struct Encoded {
    text: String,
    json: Box<RawValue>,
}

impl Encoded {
    /// The JSON string literal (quotes and escapes included).
    pub(super) fn json(&self) -> &RawValue {
        &self.json
    }
}

/// The most recently used system messages, encoded.
#[derive(Debug, Default)]
pub(super) struct EncodedMessages {
    entries: Mutex<Vec<Arc<Encoded>>>,
}

impl EncodedMessages {
    /// `text` encoded as a JSON string, from the cache or encoded now and remembered.
    pub(super) fn get(&self, text: &str) -> Option<Arc<Encoded>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = entries.iter().find(|e| e.text == text) {
            return Some(Arc::clone(found));
        }
        let json = serde_json::value::to_raw_value(text).ok()?;
        let encoded = Arc::new(Encoded {
            text: text.to_owned(),
            json,
        });
        if entries.len() >= MAX_ENTRIES {
            entries.remove(0);
        }
        entries.push(Arc::clone(&encoded));
        Some(encoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_serde_and_reuses_entries() {
        let cache = EncodedMessages::default();
        let text = "say \"hi\"\n\t\\ {\"type\":\"object\"} \u{00e9}";
        let first = cache.get(text).unwrap();
        assert_eq!(first.json().get(), serde_json::to_string(text).unwrap());
        assert!(Arc::ptr_eq(&first, &cache.get(text).unwrap()));
        for i in 0..MAX_ENTRIES {
            cache.get(&format!("other {i}")).unwrap();
        }
        let again = cache.get(text).unwrap();
        assert!(!Arc::ptr_eq(&first, &again), "the oldest entry was evicted");
        assert_eq!(again.json().get(), first.json().get());
    }
}

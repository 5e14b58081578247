//! Text from an upstream server, made fit to quote in our errors.

/// Upstream text fit to quote in an error: redacted first, then cut to `max_chars` characters
/// (cutting first could leave part of a key too short to recognise).
pub(crate) fn quote_upstream(text: &str, max_chars: usize) -> String {
    let text = agents_core::redact(text);
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_redacted_then_cut() {
        assert_eq!(quote_upstream("short", 300), "short");
        let long = "x".repeat(400);
        let quoted = quote_upstream(&long, 300);
        assert_eq!(quoted.chars().count(), 301);
        assert!(quoted.ends_with('…'));
        let key = format!("sk-{}", "a".repeat(40));
        assert!(!quote_upstream(&format!("bad key {key}"), 300).contains(&key));
    }
}

//! The hard-coded secret rule: lines where the [`Redactor`]'s secret shapes match.
//!
//! The Redactor already knows what credentials look like (Bearer tokens, JWTs, `sk-` keys, AWS
//! key ids, `password = "..."` pairs); reusing its shapes means one list to maintain. A fresh
//! Redactor is used, not the global one: the global one also holds the process's own registered
//! secrets, and whether user code contains one of those is none of this rule's business.
//!
//! A shape match alone is not enough: `password = os.environ["PW"]` matches the `key=value`
//! shape with a value that is code, not a credential. So a match counts only when the masked
//! value was a quoted literal, or looks like a key (at least 16 characters, letters and digits,
//! none of the punctuation of calls, indexing or member access).
//!
//! Findings never contain the secret, nor any part of the line.

use crate::facts::{Finding, Rule};
use crate::redact::Redactor;

/// Shortest unquoted value that can pass for a key.
const MIN_KEY_LEN: usize = 16;

/// A finding for every line that holds what looks like a hard-coded credential.
pub(crate) fn secret_findings(source: &str) -> Vec<Finding> {
    let redactor = Redactor::new();
    let mut findings = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let redacted = redactor.redact(line);
        if redacted == line || !looks_like_a_credential(line, &redacted) {
            continue;
        }
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        findings.push(Finding::new(
            Rule::HardcodedSecret,
            number,
            format!(
                "Line {number} appears to contain a hard-coded credential; move it to a secret store or an environment variable, and rotate it since it is in the source history."
            ),
        ));
    }
    findings
}

/// Whether the part of `line` the redactor masked is a literal credential rather than code.
fn looks_like_a_credential(line: &str, redacted: &str) -> bool {
    // The masked span: what lies between the common prefix and the common suffix.
    let prefix = line
        .bytes()
        .zip(redacted.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = line
        .bytes()
        .rev()
        .zip(redacted.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count()
        .min(line.len() - prefix);
    let Some(masked) = line.get(prefix..line.len() - suffix) else {
        // The span does not fall on character boundaries; trust the redactor.
        return true;
    };
    let quoted = line[..prefix]
        .chars()
        .next_back()
        .is_some_and(|c| matches!(c, '"' | '\'' | '`'));
    quoted || looks_like_a_key(masked)
}

/// Long, mixed letters and digits, no call, index or path punctuation, and not a name
/// (`settings.api_key`, `DB_PASSWORD_VAR_1`: identifiers joined by dots or underscores).
fn looks_like_a_key(value: &str) -> bool {
    let identifier = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    let name = identifier && value.contains(['.', '_']);
    value.len() >= MIN_KEY_LEN
        && value.bytes().any(|b| b.is_ascii_digit())
        && value.bytes().any(|b| b.is_ascii_alphabetic())
        && !value.contains(['(', ')', '[', ']', '{', '}', ',', ';', ' ', ':'])
        && !name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shaped_and_quoted_secrets_fire_and_are_never_echoed() {
        let key = "sk-test0FAKE0key0for0unit0tests0only";
        let password = "correct-horse-battery-staple";
        let source = format!(
            "import os\nclient = Client(api_key=\"{key}\")\nDB_PASSWORD = \"{password}\"\nprint('hi')\n"
        );
        let findings = secret_findings(&source);
        let lines: Vec<u32> = findings.iter().map(|f| f.line).collect();
        assert_eq!(lines, [2, 3]);
        for finding in &findings {
            assert_eq!(finding.rule, Rule::HardcodedSecret);
            assert!(!finding.message.contains(key) && !finding.message.contains(password));
            assert!(!finding.message.contains("sk-") && !finding.message.contains("horse"));
        }
        // A bare key in a comment is still a key.
        assert_eq!(secret_findings("// token: AKIAIOSFODNN7EXAMPLE\n").len(), 1);
    }

    /// Java, C#, JavaScript and Go name them in camelCase; the key pattern used to need a
    /// separator before the secret word, so these were missed.
    #[test]
    fn camel_case_names_fire_too() {
        for line in [
            "private String dbPassword = \"correct-horse-battery-1\";",
            "const accessToken = \"opaque-access-token-1\";",
            "var clientSecret = \"client-secret-value-1\";",
        ] {
            assert_eq!(secret_findings(line).len(), 1, "{line}");
        }
        assert!(secret_findings("int maxTokens = 1024;").is_empty());
    }

    #[test]
    fn code_that_reads_a_secret_is_not_one() {
        for line in [
            "password = os.environ[\"DB_PASSWORD\"]",
            "let token = config.auth.token;",
            "api_key = get_secret(name)",
            "secret: Secret::from_env(),",
            "const password = process.env.PASSWORD_FOR_THE_DATABASE_1;",
            "password = '***'",
            "# the password: see the vault",
            "max_tokens = 1024",
            "",
        ] {
            assert!(secret_findings(line).is_empty(), "{line}");
        }
        assert!(looks_like_a_key("abc123def456ghi789"));
        assert!(!looks_like_a_key("short1"));
        assert!(!looks_like_a_key("settings.api_key_value1"));
        assert!(!looks_like_a_key("DB_PASSWORD_VARIABLE_1"));
    }
}

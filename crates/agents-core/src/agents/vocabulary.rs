//! Words the three agents share: languages and severities.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A source language the agents accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Language {
    /// JavaScript.
    Javascript,
    /// TypeScript.
    Typescript,
    /// Python.
    Python,
    /// Java.
    Java,
    /// Go.
    Go,
    /// Rust.
    Rust,
    /// C#.
    Csharp,
    /// PHP.
    Php,
    /// Ruby.
    Ruby,
}

impl Language {
    /// Every accepted language.
    pub const ALL: [Self; 9] = [
        Self::Javascript,
        Self::Typescript,
        Self::Python,
        Self::Java,
        Self::Go,
        Self::Rust,
        Self::Csharp,
        Self::Php,
        Self::Ruby,
    ];

    /// The name used on the wire, e.g. `csharp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Javascript => "javascript",
            Self::Typescript => "typescript",
            Self::Python => "python",
            Self::Java => "java",
            Self::Go => "go",
            Self::Rust => "rust",
            Self::Csharp => "csharp",
            Self::Php => "php",
            Self::Ruby => "ruby",
        }
    }

    /// The name people write, e.g. `C#`, for prompts.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Javascript => "JavaScript",
            Self::Typescript => "TypeScript",
            Self::Python => "Python",
            Self::Java => "Java",
            Self::Go => "Go",
            Self::Rust => "Rust",
            Self::Csharp => "C#",
            Self::Php => "PHP",
            Self::Ruby => "Ruby",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious something is; also used for impact and levels.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    #[default]
    Low,
    /// Worth fixing.
    Medium,
    /// Fix it.
    High,
}

impl Severity {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_wire() {
        for language in Language::ALL {
            let wire = serde_json::to_value(language).unwrap();
            assert_eq!(wire, language.as_str());
            assert_eq!(language.to_string(), language.as_str());
            assert!(!language.display_name().is_empty());
        }
        assert!(Severity::High > Severity::Medium && Severity::Medium > Severity::Low);
        assert_eq!(
            serde_json::to_value(Severity::Medium).unwrap(),
            Severity::Medium.as_str()
        );
    }
}

//! The canned answers of [`Behavior::Answer`](crate::Behavior::Answer), and how the agent that
//! asked is recognised.
//!
//! The answers must validate against the agents' reply schemas committed under
//! `schemas/agents/<id>.reply.json`; a test in `tests/canned.rs` checks that they do, so a change
//! of schema that breaks them fails here rather than in every agent test.

use std::sync::LazyLock;

use serde_json::{Value, json};

/// An agent of the workspace, as recognised in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agent {
    CodeAnalysis,
    Documentation,
    TestGeneration,
}

impl Agent {
    /// The agent with this id (`code-analysis`) or schema name (`code_analysis`).
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "code-analysis" | "code_analysis" => Some(Self::CodeAnalysis),
            "documentation" => Some(Self::Documentation),
            "test-generation" | "test_generation" => Some(Self::TestGeneration),
            _ => None,
        }
    }

    /// The agent a system message was written for, from the reply schema's title the agents
    /// embed in it or, failing that, from the role they give the model.
    fn from_system_message(text: &str) -> Option<Self> {
        const TITLES: [(&str, Agent); 4] = [
            ("TestGenerationReply", Agent::TestGeneration),
            ("DocumentationReply", Agent::Documentation),
            ("CodeAnalysisReply", Agent::CodeAnalysis),
            ("CodeAnalysisOutput", Agent::CodeAnalysis),
        ];
        if let Some((_, agent)) = TITLES.iter().find(|(title, _)| text.contains(title)) {
            return Some(*agent);
        }
        const ROLES: [(&str, Agent); 7] = [
            ("test engineer", Agent::TestGeneration),
            ("generate tests", Agent::TestGeneration),
            ("technical writer", Agent::Documentation),
            ("documentation", Agent::Documentation),
            ("reviews code", Agent::CodeAnalysis),
            ("code review", Agent::CodeAnalysis),
            ("code analysis", Agent::CodeAnalysis),
        ];
        let lower = text.to_lowercase();
        ROLES
            .iter()
            .find(|(role, _)| lower.contains(role))
            .map(|(_, agent)| *agent)
    }

    /// The agent that sent this chat request, if it says.
    pub(crate) fn of_request(body: &Value) -> Option<Self> {
        if let Some(name) = body
            .pointer("/response_format/json_schema/name")
            .and_then(Value::as_str)
            && let Some(agent) = Self::from_name(name)
        {
            return Some(agent);
        }
        let system = body
            .get("messages")?
            .as_array()?
            .iter()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("system"))?;
        match system.get("content")? {
            Value::String(text) => Self::from_system_message(text),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .find_map(Self::from_system_message),
            _ => None,
        }
    }
}

/// A text answer prepared once: the text, its JSON string form and its token estimate.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The text.
    pub(crate) text: String,
    /// The text as a JSON string literal, quotes included.
    pub(crate) escaped: String,
    /// Its completion token estimate.
    pub(crate) tokens: u64,
}

impl Prepared {
    pub(crate) fn new(text: String) -> Self {
        let escaped = Value::String(text.clone()).to_string();
        let tokens = estimate_tokens(text.chars().count());
        Self {
            text,
            escaped,
            tokens,
        }
    }
}

/// The canned answers, serialized once for the life of the process.
#[derive(Debug)]
pub(crate) struct Canned {
    code_analysis: Prepared,
    documentation: Prepared,
    test_generation: Prepared,
    unknown: Prepared,
}

impl Canned {
    /// The prepared answer for an agent, or `{"ok":true}` for none.
    pub(crate) fn for_agent(&self, agent: Option<Agent>) -> &Prepared {
        match agent {
            Some(Agent::CodeAnalysis) => &self.code_analysis,
            Some(Agent::Documentation) => &self.documentation,
            Some(Agent::TestGeneration) => &self.test_generation,
            None => &self.unknown,
        }
    }
}

/// The process-wide canned answers.
pub(crate) static CANNED: LazyLock<Canned> = LazyLock::new(|| {
    let prepare = |agent| Prepared::new(answer_for(agent).to_string());
    Canned {
        code_analysis: prepare(Some(Agent::CodeAnalysis)),
        documentation: prepare(Some(Agent::Documentation)),
        test_generation: prepare(Some(Agent::TestGeneration)),
        unknown: prepare(None),
    }
});

/// Tokens for this many characters: about four characters a token, at least one.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64 / 4).max(1)
}

/// The canned JSON answer [`Behavior::Answer`](crate::Behavior::Answer) gives an agent.
///
/// `agent` is an agent id: `"code-analysis"`, `"documentation"` or `"test-generation"` (the
/// schema names with underscores are accepted too). Each answer validates against the agent's
/// reply schema, `schemas/agents/<id>.reply.json`. Any other id gets `{"ok": true}`, the answer
/// to a request that names no agent.
///
/// ```
/// let answer = agents_fake_model::canned_answer("documentation");
/// assert!(answer["sections"].as_array().is_some_and(|s| !s.is_empty()));
/// assert_eq!(agents_fake_model::canned_answer("chat"), serde_json::json!({"ok": true}));
/// ```
pub fn canned_answer(agent: &str) -> Value {
    answer_for(Agent::from_name(agent))
}

fn answer_for(agent: Option<Agent>) -> Value {
    match agent {
        Some(Agent::CodeAnalysis) => json!({
            "suggestions": [
                {
                    "type": "improvement",
                    "message": "Extract the repeated bounds check into a helper so it is written once.",
                    "severity": "medium",
                    "category": "maintainability",
                    "line": 3
                },
                {
                    "type": "optimization",
                    "message": "Collect into a Vec with capacity instead of growing it in the loop.",
                    "severity": "low",
                    "category": "performance",
                    "line": 5
                }
            ],
            "security": {
                "vulnerabilities": [],
                "risk_level": "none"
            },
            "performance": {
                "bottlenecks": [],
                "memory_usage": "low",
                "algorithmic_complexity": "O(n)"
            },
            "complexity": {
                "cyclomatic": 3,
                "cognitive": 2,
                "maintainability": "good"
            },
            "confidence": 0.85
        }),
        Some(Agent::Documentation) => json!({
            "sections": [
                {
                    "title": "Overview",
                    "type": "overview",
                    "content": "Adds two numbers and returns their sum."
                },
                {
                    "title": "add",
                    "type": "function",
                    "content": "Returns the sum of `a` and `b`.",
                    "parameters": [
                        {"name": "a", "type": "int", "description": "The first addend.", "optional": false},
                        {"name": "b", "type": "int", "description": "The second addend.", "optional": false}
                    ],
                    "return_type": "int",
                    "examples": ["add(2, 3)  # 5"]
                }
            ],
            "confidence": 0.9
        }),
        Some(Agent::TestGeneration) => json!({
            "tests": [
                {
                    "name": "test_add_returns_the_sum",
                    "code": "def test_add_returns_the_sum():\n    assert add(2, 3) == 5\n",
                    "type": "positive",
                    "description": "Two positive numbers add up."
                },
                {
                    "name": "test_add_with_zero",
                    "code": "def test_add_with_zero():\n    assert add(0, 7) == 7\n",
                    "type": "edge",
                    "description": "Zero is the identity."
                }
            ],
            "imports": ["from calculator import add"],
            "setup": null,
            "teardown": null,
            "coverage": {
                "estimated": 80.0,
                "branches": ["normal path"],
                "uncovered_paths": []
            },
            "confidence": 0.8
        }),
        None => json!({"ok": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_name_wins_over_the_system_message() {
        let body = json!({
            "response_format": {"type": "json_schema", "json_schema": {"name": "test_generation", "schema": {}}},
            "messages": [{"role": "system", "content": "You are a technical writer."}]
        });
        assert_eq!(Agent::of_request(&body), Some(Agent::TestGeneration));
    }

    #[test]
    fn the_system_message_names_the_agent_without_a_schema() {
        let cases = [
            (
                "You are a senior software engineer who reviews code precisely.",
                Agent::CodeAnalysis,
            ),
            (
                "You are a technical writer who documents code accurately.",
                Agent::Documentation,
            ),
            (
                "You are a test engineer who writes tests that compile and run.",
                Agent::TestGeneration,
            ),
            (
                "Answer against this schema: {\"title\":\"DocumentationReply\"}",
                Agent::Documentation,
            ),
        ];
        for (system, agent) in cases {
            let body = json!({"messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "def add(a, b): return a + b"}
            ]});
            assert_eq!(Agent::of_request(&body), Some(agent), "{system}");
        }
        let parts = json!({"messages": [
            {"role": "system", "content": [{"type": "text", "text": "You are a test engineer."}]}
        ]});
        assert_eq!(Agent::of_request(&parts), Some(Agent::TestGeneration));
    }

    #[test]
    fn a_request_naming_no_agent_gets_ok() {
        let body = json!({"messages": [{"role": "user", "content": "hello"}]});
        assert_eq!(Agent::of_request(&body), None);
        assert_eq!(CANNED.for_agent(None).text, r#"{"ok":true}"#);
        assert_eq!(canned_answer("unknown"), json!({"ok": true}));
    }

    #[test]
    fn prepared_answers_are_their_json_strings() {
        for agent in [
            Some(Agent::CodeAnalysis),
            Some(Agent::Documentation),
            Some(Agent::TestGeneration),
            None,
        ] {
            let prepared = CANNED.for_agent(agent);
            let back: Value = serde_json::from_str(&prepared.escaped).unwrap();
            assert_eq!(back, Value::String(prepared.text.clone()));
            assert_eq!(
                serde_json::from_str::<Value>(&prepared.text).unwrap(),
                answer_for(agent)
            );
            assert!(prepared.tokens >= 1);
        }
    }

    #[test]
    fn token_estimates_are_a_quarter_of_the_characters_and_at_least_one() {
        assert_eq!(estimate_tokens(0), 1);
        assert_eq!(estimate_tokens(3), 1);
        assert_eq!(estimate_tokens(400), 100);
    }
}

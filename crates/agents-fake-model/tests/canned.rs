//! The canned answers validate against the agents' committed reply schemas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

fn validator(path: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(agent: &str, path: &str) {
    let answer = agents_fake_model::canned_answer(agent);
    let errors: Vec<String> = validator(path)
        .iter_errors(&answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{agent}: {errors:?}");
}

#[test]
fn code_analysis_answer_matches_its_reply_schema() {
    assert_valid(
        "code-analysis",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/agents/code-analysis.reply.json"
        ),
    );
}

#[test]
fn documentation_answer_matches_its_reply_schema() {
    assert_valid(
        "documentation",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/agents/documentation.reply.json"
        ),
    );
}

#[test]
fn test_generation_answer_matches_its_reply_schema() {
    assert_valid(
        "test-generation",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/agents/test-generation.reply.json"
        ),
    );
}

#[test]
fn schema_names_with_underscores_give_the_same_answers() {
    for (id, name) in [
        ("code-analysis", "code_analysis"),
        ("test-generation", "test_generation"),
    ] {
        assert_eq!(
            agents_fake_model::canned_answer(id),
            agents_fake_model::canned_answer(name)
        );
    }
}

#[test]
fn answers_are_not_all_the_same() {
    let answers: Vec<Value> = ["code-analysis", "documentation", "test-generation", "other"]
        .iter()
        .map(|a| agents_fake_model::canned_answer(a))
        .collect();
    for (i, a) in answers.iter().enumerate() {
        for b in &answers[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

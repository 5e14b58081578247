//! The JSON Schemas committed under `schemas/` at the repository root are what the code
//! generates: clients and other languages read those files, so they must never drift.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use agents_core::{AgentConfig, EVENT_TYPES, exported_schemas};

const FIX: &str = "run `cargo run -p agents-server -- schemas schemas` and commit the result";

#[test]
fn committed_schemas_match_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let schemas = exported_schemas(&AgentConfig::default()).unwrap();
    let mut drifted = Vec::new();
    for (path, schema) in &schemas {
        let expected = format!("{}\n", serde_json::to_string_pretty(schema).unwrap());
        match std::fs::read_to_string(root.join(path)) {
            Ok(committed) if committed == expected => {}
            Ok(_) => drifted.push(format!("{path} differs")),
            Err(e) => drifted.push(format!("{path} unreadable: {e}")),
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas drifted from the code: {drifted:?}; {FIX}"
    );

    // No stale files either: every committed schema is still generated.
    for dir in ["agents", "events"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let name = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(
                schemas.iter().any(|(path, _)| *path == name),
                "{name} is no longer generated; delete it"
            );
        }
    }
}

#[test]
fn every_agent_and_event_has_its_schemas() {
    let schemas = exported_schemas(&AgentConfig::default()).unwrap();
    for agent in ["code-analysis", "documentation", "test-generation"] {
        for kind in ["input", "output", "reply"] {
            let path = format!("agents/{agent}.{kind}.json");
            let (_, schema) = schemas
                .iter()
                .find(|(p, _)| *p == path)
                .unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{path}"
            );
            assert!(jsonschema::validator_for(schema).is_ok(), "{path} compiles");
        }
    }
    for event_type in EVENT_TYPES {
        let path = format!("events/{event_type}.json");
        assert!(schemas.iter().any(|(p, _)| *p == path), "{path} missing");
    }
    assert_eq!(schemas.len(), 9 + EVENT_TYPES.len());
}

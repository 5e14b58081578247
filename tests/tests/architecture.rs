//! The house plan (ARCHITECTURE.md, STYLE.md) as tests: which crate may depend on which, and
//! what every published crate carries.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

use agents_tests::workspace_root;
use serde_json::Value;

const PUBLISHED: [&str; 6] = [
    "agents-core",
    "agents-providers",
    "agents-bus",
    "agents-secrets",
    "agents-facts",
    "agents-server",
];

/// `cargo metadata` of the workspace: package name -> package.
fn packages() -> BTreeMap<String, Value> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p.clone()))
        .collect()
}

/// Test-only crates: `publish = false`, never a dependency of production code.
const TEST_ONLY: [&str; 4] = [
    "agents-fake-model",
    "agents-testkit",
    "agents-tests",
    "agents-bench",
];

/// The workspace crates a package depends on, in any section (normal, dev, build).
fn workspace_dependencies(package: &Value) -> Vec<String> {
    package["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .filter(|name| name.starts_with("agents-"))
        .map(str::to_owned)
        .collect()
}

/// The workspace crates a package's own code depends on (normal and build, not dev).
fn production_dependencies(package: &Value) -> Vec<String> {
    package["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] != "dev")
        .filter_map(|d| d["name"].as_str())
        .filter(|name| name.starts_with("agents-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn dependencies_point_down_only() {
    let packages = packages();
    // agents-facts holds the tree-sitter grammars (C code): only the contract in core, so that
    // core stays light and never pulls the grammars in.
    let allowed: [(&str, &[&str]); 6] = [
        ("agents-core", &[]),
        ("agents-facts", &["agents-core"]),
        ("agents-providers", &["agents-core"]),
        ("agents-bus", &["agents-core"]),
        ("agents-secrets", &["agents-core"]),
        (
            "agents-server",
            &[
                "agents-core",
                "agents-providers",
                "agents-bus",
                "agents-secrets",
                "agents-facts",
            ],
        ),
    ];
    for (name, may_use) in allowed {
        for dependency in production_dependencies(&packages[name]) {
            assert!(
                may_use.contains(&dependency.as_str()),
                "{name} depends on {dependency}; ARCHITECTURE.md allows only {may_use:?}"
            );
        }
    }
    for name in PUBLISHED {
        for dependency in workspace_dependencies(&packages[name]) {
            assert!(
                PUBLISHED.contains(&dependency.as_str())
                    || TEST_ONLY.contains(&dependency.as_str()),
                "{name} depends on {dependency}, which is neither published nor test-only"
            );
        }
    }
    for (name, package) in &packages {
        if !PUBLISHED.contains(&name.as_str()) {
            assert!(
                TEST_ONLY.contains(&name.as_str()),
                "{name}: add it to PUBLISHED or TEST_ONLY"
            );
            assert_eq!(
                package["publish"],
                serde_json::json!([]),
                "{name} is test-only: publish = false"
            );
        }
    }
}

#[test]
fn every_published_crate_has_its_own_version_readme_changelog_and_lints() {
    let packages = packages();
    let root = workspace_root();
    for name in PUBLISHED {
        let package = &packages[name];
        assert!(
            package["version"].as_str().is_some_and(|v| !v.is_empty()),
            "{name} version"
        );
        assert_eq!(package["rust_version"], "1.95", "{name} rust-version");
        assert_eq!(package["edition"], "2024", "{name} edition");
        assert!(
            package["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{name} description"
        );
        let dir = root.join("crates").join(name);
        assert!(dir.join("README.md").is_file(), "{name} README.md");
        let changelog = std::fs::read_to_string(dir.join("CHANGELOG.md")).unwrap();
        assert!(
            changelog.contains("## [Unreleased]"),
            "{name} CHANGELOG has an Unreleased section"
        );
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{name} uses the workspace lints"
        );
        // Sibling crates come from the workspace table, which carries path and version both.
        for dependency in workspace_dependencies(package) {
            let via_workspace = manifest.contains(&format!("{dependency}.workspace = true"))
                || manifest.contains(&format!("{dependency} = {{ workspace = true"));
            assert!(via_workspace, "{name}: {dependency} via the workspace");
        }
    }
}

#[test]
fn core_stays_free_of_io_crates() {
    let packages = packages();
    let forbidden = [
        "tokio",
        "reqwest",
        "hyper",
        "tonic",
        "async-nats",
        "vaultrs",
        "rmcp",
        "std-fs",
    ];
    for dependency in packages["agents-core"]["dependencies"].as_array().unwrap() {
        let name = dependency["name"].as_str().unwrap();
        let dev = dependency["kind"] == "dev";
        assert!(
            dev || !forbidden.contains(&name),
            "agents-core must not depend on {name}: it does no I/O"
        );
    }
}

#[test]
fn only_the_server_depends_on_opentelemetry() {
    // The libraries emit `tracing` spans only; exporting them is the embedding program's choice
    // (ARCHITECTURE.md: the server wires tracing).
    let packages = packages();
    for name in PUBLISHED.iter().filter(|n| **n != "agents-server") {
        for dependency in packages[*name]["dependencies"].as_array().unwrap() {
            let dependency = dependency["name"].as_str().unwrap();
            assert!(
                !dependency.starts_with("opentelemetry") && dependency != "tracing-opentelemetry",
                "{name} depends on {dependency}: only agents-server may export spans"
            );
        }
    }
}

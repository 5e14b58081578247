//! Grounding and offline answers: agents with a code facts analyzer put the facts in the prompt,
//! take complexity and branch points from them, and answer from them alone (degraded) when every
//! provider fails and the input allows it. The analyzer here is a test double returning canned
//! facts: the real one (tree-sitter) lives in another crate, behind the `FactsAnalyzer` contract.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use agents_core::facts::{CodeFacts, FactsAnalyzer, FactsError};
use agents_core::{
    Agent, AgentCompleted, AgentConfig, AgentContext, AgentError, AgentOutput, CancellationToken,
    CodeAnalysisAgent, DocumentationAgent, Framework, GenerateRequest, Generation, Language,
    Maintainability, MemorySink, Provider, ProviderAttempt, ProviderError, ProviderHealth,
    TestGenerationAgent, builtin_agents, grounded_agents,
};
use serde_json::{Value, json};

/// Returns the same facts for any code, and records what it was asked.
#[derive(Debug)]
struct CannedFacts {
    facts: Result<CodeFacts, FactsError>,
    calls: Mutex<Vec<Language>>,
}

impl CannedFacts {
    fn new(facts: CodeFacts) -> Arc<Self> {
        Arc::new(Self {
            facts: Ok(facts),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn failing(error: FactsError) -> Arc<Self> {
        Arc::new(Self {
            facts: Err(error),
            calls: Mutex::new(Vec::new()),
        })
    }
}

impl FactsAnalyzer for CannedFacts {
    fn analyze(&self, language: Language, _source: &str) -> Result<CodeFacts, FactsError> {
        self.calls.lock().unwrap().push(language);
        self.facts.clone()
    }
}

/// The model: a scripted answer or error, every request recorded.
#[derive(Debug)]
struct Model {
    reply: Result<String, ProviderError>,
    requests: Mutex<Vec<GenerateRequest>>,
}

impl Model {
    fn answering(reply: &Value) -> Arc<Self> {
        Arc::new(Self {
            reply: Ok(reply.to_string()),
            requests: Mutex::new(Vec::new()),
        })
    }

    fn failing(error: ProviderError) -> Arc<Self> {
        Arc::new(Self {
            reply: Err(error),
            requests: Mutex::new(Vec::new()),
        })
    }

    /// A fallback chain where every provider failed.
    fn down() -> Arc<Self> {
        Self::failing(ProviderError::AllFailed {
            attempts: vec![
                ProviderAttempt::new(
                    "primary",
                    ProviderError::Unavailable {
                        status: Some(503),
                        reason: "upstream said: key sk-live0LEAK0in0an0error0body".into(),
                    },
                ),
                ProviderAttempt::new("backup", ProviderError::RateLimited { retry_after: None }),
            ],
        })
    }

    fn user_message(&self) -> String {
        let requests = self.requests.lock().unwrap();
        requests.last().expect("the model was called").messages[1]
            .content
            .clone()
    }
}

#[async_trait::async_trait]
impl Provider for Model {
    fn id(&self) -> &str {
        "scripted"
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        self.requests.lock().unwrap().push(request);
        Ok(Generation::new(
            "scripted",
            "test-model",
            self.reply.clone()?,
        ))
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Healthy
    }
}

/// A fake credential, key-shaped so the Redactor's `sk-` pattern knows it.
const FAKE_KEY: &str = "sk-test0FAKE0key0for0unit0tests0only";

fn python_source() -> String {
    format!(
        "import os\n\nAPI_KEY = \"{FAKE_KEY}\"\n\ndef load(user_id, db):\n    query = \"SELECT * FROM users WHERE id = \" + user_id\n    try:\n        return db.execute(query)\n    except Exception:\n        pass\n\ndef run(cmd):\n    eval(cmd)\n    for a in items:\n        for b in items:\n            pass\n"
    )
}

/// Facts for [`python_source`], plus a long, complex, deeply nested function with many
/// parameters, and every syntax-aware rule once.
fn facts() -> CodeFacts {
    let function = |name: &str, signature: &str, lines: [u32; 2], params: Value| {
        json!({
            "name": name, "signature": signature, "parameters": params,
            "visibility": "public", "start_line": lines[0], "end_line": lines[1],
            "cyclomatic": 1, "cognitive": 0, "max_nesting": 0, "branches": []
        })
    };
    let mut load = function(
        "load",
        "def load(user_id, db)",
        [5, 10],
        json!([{"name": "user_id", "type_name": "int"}, {"name": "db"}]),
    );
    load["doc"] = json!("Loads a user <by id> & returns the row.");
    load["return_type"] = json!("Row");
    load["cyclomatic"] = json!(2);
    load["cognitive"] = json!(1);
    load["branches"] = json!([{"line": 9, "kind": "except"}]);
    let mut run = function("run", "def run(cmd)", [12, 16], json!([{"name": "cmd"}]));
    run["cyclomatic"] = json!(3);
    run["cognitive"] = json!(3);
    run["max_nesting"] = json!(2);
    run["branches"] = json!([{"line": 14, "kind": "for"}, {"line": 15, "kind": "for"}]);
    let mut process = function(
        "process",
        "def process(a, b, c, d, e, f=1, g=2)",
        [18, 90],
        json!(
            ["a", "b", "c", "d", "e", "f", "g"]
                .iter()
                .map(|n| json!({"name": n, "optional": *n == "f" || *n == "g"}))
                .collect::<Vec<_>>()
        ),
    );
    process["container"] = json!("Worker");
    process["cyclomatic"] = json!(25);
    process["cognitive"] = json!(40);
    process["max_nesting"] = json!(6);
    process["is_async"] = json!(true);
    let mut helper = function("_helper", "def _helper()", [92, 93], json!([]));
    helper["visibility"] = json!("private");
    helper["branches"] = json!([{"line": 93, "kind": "if"}]);
    helper["cyclomatic"] = json!(2);
    serde_json::from_value(json!({
        "lines": 93,
        "functions": [load, run, process, helper],
        "types": [
            {"name": "Worker", "kind": "class", "visibility": "public", "start_line": 17, "end_line": 91, "doc": "Processes jobs."},
            {"name": "_Cache", "kind": "class", "visibility": "private", "start_line": 94, "end_line": 95}
        ],
        "syntax_errors": [],
        "findings": [
            {"rule": "sql-concatenation", "line": 6, "message": "SQL built by concatenation; use a parameterised query.", "severity": "high"},
            {"rule": "empty-catch", "line": 9, "message": "The except block does nothing; handle or log the error.", "severity": "medium"},
            {"rule": "dynamic-code-execution", "line": 13, "message": "eval of a string built at run time.", "severity": "high"},
            {"rule": "nested-loops", "line": 15, "message": "A loop inside a loop over the same data.", "severity": "medium"},
            {"rule": "unsafe-code", "line": 20, "message": "An unsafe block.", "severity": "medium"},
            {"rule": "unwrap-in-library", "line": 21, "message": "unwrap() in library code.", "severity": "medium"}
        ],
        "maintainability_index": 15.24
    }))
    .unwrap()
}

fn execute(agent: &dyn Agent, model: Arc<Model>, input: Value) -> Result<AgentOutput, AgentError> {
    futures_executor::block_on(agent.execute(&AgentContext::new(model), input))
}

fn assert_valid(agent: &dyn Agent, output: &Value) {
    let validator = jsonschema::validator_for(agent.output_schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(output)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:?}\n{output:#}", agent.id());
}

fn analysis(facts: CodeFacts) -> CodeAnalysisAgent {
    CodeAnalysisAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(CannedFacts::new(facts))
}

/// rule, suggestion type, category, severity, line, CWE when it is a vulnerability, a word of
/// its message.
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    Option<&'static str>,
    &'static str,
);

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list:#}"))
}

#[test]
fn offline_code_analysis_maps_every_rule() {
    let agent = analysis(facts());
    let sink = MemorySink::new();
    let ctx = AgentContext::new(Model::down()).with_events(Arc::new(sink.clone()));
    let input = json!({"source_code": python_source(), "language": "python"});
    let done = futures_executor::block_on(agent.execute(&ctx, input)).unwrap();
    let output = &done.output;
    assert_valid(&agent, output);

    assert_eq!(output["degraded"], true);
    let reason = output["degraded_reason"].as_str().unwrap();
    assert!(
        reason.contains("primary (unavailable)") && reason.contains("backup (rate_limited)"),
        "{reason}"
    );
    assert_eq!(output["confidence"], 0.4);
    assert!(done.metadata.degraded && done.metadata.grounded);
    assert_eq!(done.metadata.degraded_reason.as_deref(), Some(reason));
    assert_eq!(done.metadata.provider, None);
    assert_eq!(done.metadata.model, None);
    assert_eq!(done.metadata.fallbacks, ["primary", "backup"]);
    let completed: AgentCompleted = sink.events()[1].payload().unwrap();
    assert!(completed.degraded);
    assert_eq!(completed.provider, None);

    // rule -> (suggestion type, category, severity, line, CWE when it is a vulnerability, a
    // word of its message)
    let suggestions = &output["suggestions"];
    #[rustfmt::skip]
    let expected: [Expected; 11] = [
        ("sql-concatenation", "warning", "security", "high", 6, Some("CWE-89"), "SQL"),
        ("empty-catch", "warning", "correctness", "medium", 9, None, "except"),
        ("dynamic-code-execution", "warning", "security", "high", 13, Some("CWE-95"), "eval"),
        ("nested-loops", "optimization", "performance", "medium", 15, None, "loop"),
        ("unsafe-code", "warning", "security", "medium", 20, Some("CWE-119"), "unsafe"),
        ("unwrap-in-library", "warning", "correctness", "medium", 21, None, "unwrap"),
        ("hardcoded-secret", "error", "security", "high", 3, Some("CWE-798"), "credential"),
        ("long-function", "improvement", "maintainability", "low", 18, None, "lines long"),
        ("complex-function", "improvement", "complexity", "high", 18, None, "cyclomatic complexity 25"),
        ("deep-nesting", "improvement", "complexity", "medium", 18, None, "6 levels deep"),
        ("too-many-parameters", "improvement", "maintainability", "low", 18, None, "7 parameters"),
    ];
    assert_eq!(suggestions.as_array().unwrap().len(), expected.len());
    let vulnerabilities = &output["security"]["vulnerabilities"];
    for (rule, kind, category, severity, line, cwe, word) in expected {
        let found = suggestions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["message"].as_str().unwrap().contains(word))
            .unwrap_or_else(|| panic!("{rule}: no suggestion in {suggestions:#}"));
        assert_eq!(found["type"], kind, "{rule}");
        assert_eq!(found["category"], category, "{rule}");
        assert_eq!(found["severity"], severity, "{rule}");
        assert_eq!(found["line"], line, "{rule}");
        match cwe {
            Some(cwe) => {
                let vulnerability = find(vulnerabilities, "type", rule);
                assert_eq!(vulnerability["cwe"], cwe);
                assert_eq!(vulnerability["line"], line);
                assert_eq!(vulnerability["severity"], severity);
            }
            None => assert!(
                vulnerabilities
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|v| v["type"] != rule),
                "{rule} is not a vulnerability"
            ),
        }
    }
    // Most severe first.
    assert_eq!(suggestions[0]["severity"], "high");
    assert_eq!(vulnerabilities.as_array().unwrap().len(), 4);
    assert_eq!(output["security"]["risk_level"], "high");

    let performance = &output["performance"];
    assert_eq!(performance["algorithmic_complexity"], "O(n^2)");
    let bottleneck = &performance["bottlenecks"][0];
    assert_eq!(bottleneck["type"], "cpu");
    assert_eq!(bottleneck["line"], 15);
    assert_eq!(bottleneck["impact"], "medium");

    // Complexity from the facts: 1 + (1 + 2 + 24 + 1) decision points; worst cognitive 40.
    let complexity = &output["complexity"];
    assert_eq!(complexity["cyclomatic"], 29);
    assert_eq!(complexity["cognitive"], 40);
    assert_eq!(complexity["maintainability"], "fair");
    assert_eq!(complexity["maintainability_index"], 15.2);
    let functions = output["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 4);
    assert_eq!(functions[2]["name"], "Worker.process");
    assert_eq!(functions[2]["parameters"], 7);

    // The secret is found, and never repeated: not in the output, the reason or the metadata.
    let everything = format!("{output} {:?}", done.metadata);
    assert!(
        !everything.contains(FAKE_KEY) && !everything.contains("sk-"),
        "{everything}"
    );
}

#[test]
fn offline_analysis_respects_the_callers_filters() {
    let agent = analysis(facts());
    let source = python_source();
    let high = execute(
        &agent,
        Model::down(),
        json!({"source_code": source, "language": "python", "severity": "high", "include_metrics": false}),
    )
    .unwrap()
    .output;
    assert_valid(&agent, &high);
    let severities: Vec<&Value> = high["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["severity"])
        .collect();
    assert_eq!(severities.len(), 4, "{high:#}");
    assert!(severities.iter().all(|s| *s == "high"));
    assert!(high.get("complexity").is_none() && high.get("functions").is_none());
    // Vulnerabilities are the security report: not filtered by the suggestion severity.
    assert_eq!(
        high["security"]["vulnerabilities"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    let none = execute(
        &agent,
        Model::down(),
        json!({"source_code": source, "language": "python", "include_suggestions": false}),
    )
    .unwrap()
    .output;
    assert_valid(&agent, &none);
    assert_eq!(none["suggestions"], json!([]));
}

#[test]
fn the_secret_rule_stays_quiet_on_code_that_reads_secrets_and_nothing_found_is_no_risk() {
    let mut quiet = facts();
    quiet.findings.clear();
    quiet.functions.truncate(2);
    quiet.syntax_errors = vec![agents_core::facts::SyntaxIssue::new(4, 7, "missing )")];
    quiet.maintainability_index = 85.0;
    let agent = analysis(quiet);
    let source =
        "import os\n\nAPI_KEY = os.environ[\"API_KEY\"]\npassword = settings.db_password\n";
    let output = execute(
        &agent,
        Model::down(),
        json!({"source_code": source, "language": "python"}),
    )
    .unwrap()
    .output;
    assert_valid(&agent, &output);
    assert_eq!(output["security"]["vulnerabilities"], json!([]));
    assert_eq!(output["security"]["risk_level"], "none");
    assert!(
        output["performance"]
            .get("algorithmic_complexity")
            .is_none()
    );
    assert_eq!(output["complexity"]["maintainability"], "excellent");
    // Only the syntax error is reported, and it lowers the confidence.
    let suggestions = output["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 1, "{output:#}");
    assert_eq!(suggestions[0]["type"], "error");
    assert_eq!(suggestions[0]["line"], 4);
    assert_eq!(output["confidence"], 0.3);
}

#[test]
fn maintainability_grades_follow_the_published_bands() {
    for (index, grade) in [
        (0.0, Maintainability::Poor),
        (9.9, Maintainability::Poor),
        (10.0, Maintainability::Fair),
        (19.9, Maintainability::Fair),
        (20.0, Maintainability::Good),
        (79.9, Maintainability::Good),
        (80.0, Maintainability::Excellent),
        (100.0, Maintainability::Excellent),
    ] {
        assert_eq!(Maintainability::from_index(index), grade, "{index}");
    }
}

#[test]
fn offline_documentation_in_every_format_and_language_is_valid() {
    let agent = DocumentationAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(CannedFacts::new(facts()));
    for format in ["markdown", "html", "rst", "docstring", "jsdoc"] {
        for language in Language::ALL {
            let input = json!({
                "source_code": "def load(user_id, db): ...", "language": language,
                "output_format": format, "documentation_type": "readme"
            });
            let done = execute(&agent, Model::down(), input).unwrap();
            let output = &done.output;
            assert_valid(&agent, output);
            assert_eq!(output["degraded"], true, "{format}");
            assert_eq!(output["confidence"], 0.5);
            assert_eq!(output["format"], format);
            let sections = output["sections"].as_array().unwrap();
            // Overview, the public class, the three public functions; never the private ones.
            let titles: Vec<&str> = sections
                .iter()
                .map(|s| s["title"].as_str().unwrap())
                .collect();
            assert_eq!(
                titles,
                ["API reference", "Worker", "load", "run", "Worker.process"],
                "{format}"
            );
            assert!(sections[0]["content"].as_str().unwrap().contains("README"));
            let load = &sections[2];
            assert_eq!(load["type"], "function");
            assert_eq!(sections[4]["type"], "method");
            assert_eq!(sections[1]["type"], "class");
            assert_eq!(load["return_type"], "Row");
            assert_eq!(load["parameters"][0]["name"], "user_id");
            assert_eq!(load["parameters"][0]["type"], "int");
            let content = load["content"].as_str().unwrap();
            assert!(
                content.contains("def load(user_id, db)"),
                "{format}: {content}"
            );
            assert!(content.contains("Loads a user"), "{format}: {content}");
            let process = sections[4]["content"].as_str().unwrap();
            assert!(process.contains("Undocumented"), "{format}: {process}");
            let metadata = &output["metadata"];
            assert_eq!(metadata["sections_count"], 5);
            assert_eq!(metadata["has_parameters"], true);
            assert_eq!(metadata["has_examples"], false);
            match format {
                "html" => {
                    assert!(content.contains("&lt;by id&gt; &amp; returns"), "{content}");
                    assert!(!content.contains("<by id>"), "{content}");
                    assert!(content.contains("<code>Row</code>"), "{content}");
                }
                "markdown" => {
                    assert!(content.contains("- `user_id`: `int`"), "{content}");
                    assert!(content.contains("**Returns** `Row`"), "{content}");
                }
                "rst" => {
                    assert!(content.starts_with(".. code-block:: "), "{content}");
                    assert!(content.contains(":type user_id: ``int``"), "{content}");
                    assert!(content.contains(":rtype: ``Row``"), "{content}");
                }
                "jsdoc" => {
                    assert!(content.starts_with("/**\n"), "{content}");
                    assert!(content.contains("@param {int} user_id"), "{content}");
                    assert!(content.contains("@returns {Row}"), "{content}");
                    assert!(process.contains("@param [f]"), "{process}");
                }
                _ => {
                    let marker = match language {
                        Language::Python => "\"\"\"",
                        Language::Rust | Language::Csharp => "/// ",
                        Language::Go => "// ",
                        Language::Ruby => "# ",
                        _ => "/**",
                    };
                    assert!(content.contains(marker), "{language}: {content}");
                }
            }
        }
    }

    // Without types: neither the parameters nor the sections state them.
    let input = json!({"source_code": "x", "language": "python", "include_types": false});
    let output = execute(&agent, Model::down(), input).unwrap().output;
    assert_valid(&agent, &output);
    assert!(output["sections"][2].get("return_type").is_none());
    assert!(output["sections"][2]["parameters"][0].get("type").is_none());
}

#[test]
fn offline_tests_are_pending_skeletons_in_every_framework() {
    let agent = TestGenerationAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(CannedFacts::new(facts()));
    let cases: [(&str, &str, &str, &str); 12] = [
        ("vitest", "typescript", "load works", "it.skip("),
        ("jest", "javascript", "load works", "it.skip("),
        ("mocha", "javascript", "load works", "it.skip("),
        ("pytest", "python", "test_load", "pytest.skip("),
        ("unittest", "python", "test_load", "@unittest.skip("),
        ("rspec", "ruby", "load works", "skip 'skeleton"),
        ("junit", "java", "testLoad", "@Disabled("),
        ("testng", "java", "testLoad", "throw new SkipException("),
        ("go-test", "go", "TestLoad", "t.Skip("),
        ("cargo-test", "rust", "load_works", "#[ignore = "),
        ("xunit", "csharp", "Load_Works", "[Fact(Skip = "),
        ("phpunit", "php", "testLoad", "markTestIncomplete("),
    ];
    for (framework, language, first_name, marker) in cases {
        let input = json!({"source_code": "x", "language": language, "framework": framework});
        let done = execute(&agent, Model::down(), input).unwrap();
        let output = &done.output;
        assert_valid(&agent, output);
        assert_eq!(output["degraded"], true);
        assert_eq!(output["framework"], framework);
        assert_eq!(output["confidence"], 0.3);
        assert_eq!(
            output["test_count"], 3,
            "{framework}: one per public function"
        );
        let tests = output["tests"].as_array().unwrap();
        assert_eq!(tests[0]["name"], first_name, "{framework}");
        for test in tests {
            let code = test["code"].as_str().unwrap();
            assert!(code.contains(marker), "{framework}: {code}");
            assert!(
                code.contains("Skeleton: complete me"),
                "{framework}: {code}"
            );
            assert!(
                test["description"].as_str().unwrap().contains("Skeleton"),
                "{framework}"
            );
        }
        let load = tests[0]["code"].as_str().unwrap();
        assert!(load.contains("user_id (int), db"), "{framework}: {load}");
        assert!(load.contains("except at line 9"), "{framework}: {load}");
        let process = tests[2]["code"].as_str().unwrap();
        assert!(process.contains("f (optional)"), "{framework}: {process}");
        assert!(process.contains("await"), "{framework}: {process}");
        assert!(
            tests
                .iter()
                .all(|t| !t["code"].as_str().unwrap().contains("_helper(")),
            "private functions get no skeleton"
        );
        assert_eq!(output["coverage"]["estimated"], 0.0);
        assert_eq!(
            output["coverage"]["branches"],
            json!([
                "load: except at line 9",
                "run: for at line 14",
                "run: for at line 15",
                "_helper: if at line 93"
            ])
        );
        assert!(
            output["coverage"]["uncovered_paths"][0]
                .as_str()
                .unwrap()
                .starts_with("_helper")
        );
    }
    let go = execute(
        &agent,
        Model::down(),
        json!({"source_code": "x", "language": "go"}),
    )
    .unwrap()
    .output;
    assert_eq!(go["tests"][2]["name"], "TestWorker_Process");
    assert_eq!(go["imports"], json!(["import \"testing\""]));
}

/// Degraded answers are built from the facts alone; `execute_json` must write the same JSON
/// for them as `execute` returns, for every agent.
#[test]
fn execute_json_is_the_json_of_execute_for_degraded_answers() {
    let agents = grounded_agents(&AgentConfig::default(), CannedFacts::new(facts())).unwrap();
    for agent in &agents {
        let input = json!({"source_code": python_source(), "language": "python"});
        let ctx = AgentContext::new(Model::down());
        let tree = futures_executor::block_on(agent.execute(&ctx, input.clone())).unwrap();
        let text = futures_executor::block_on(agent.execute_json(&ctx, input)).unwrap();
        assert!(tree.metadata.degraded && text.metadata.degraded);
        let written: Value = serde_json::from_str(&text.output_json).unwrap();
        assert_eq!(written, tree.output, "{}", agent.id());
        assert_eq!(text.metadata.degraded_reason, tree.metadata.degraded_reason);
    }
}

#[test]
fn degraded_answers_only_when_allowed_and_only_for_provider_failures() {
    let (code, docs, tests) = {
        let analyzer = CannedFacts::new(facts());
        let config = AgentConfig::default();
        (
            CodeAnalysisAgent::new(config.clone())
                .unwrap()
                .with_facts(analyzer.clone()),
            DocumentationAgent::new(config.clone())
                .unwrap()
                .with_facts(analyzer.clone()),
            TestGenerationAgent::new(config)
                .unwrap()
                .with_facts(analyzer),
        )
    };
    let agents: [&dyn Agent; 3] = [&code, &docs, &tests];
    for agent in agents {
        let refused = json!({"source_code": "x", "language": "python", "allow_degraded": false});
        let error = execute(agent, Model::down(), refused).unwrap_err();
        let AgentError::AllProvidersFailed { attempts } = &error else {
            panic!("{}: {error:?}", agent.id())
        };
        assert_eq!(attempts.len(), 2);

        let input = json!({"source_code": "x", "language": "python"});
        let error = execute(
            agent,
            Model::failing(ProviderError::Cancelled),
            input.clone(),
        )
        .unwrap_err();
        assert!(matches!(error, AgentError::Cancelled), "{error:?}");

        let cancel = CancellationToken::new();
        cancel.cancel();
        let ctx = AgentContext::new(Model::down()).with_cancel(cancel);
        let result = futures_executor::block_on(agent.execute(&ctx, input.clone()));
        assert!(matches!(result, Err(AgentError::Cancelled)), "{result:?}");

        let ctx = AgentContext::new(Model::down()).with_deadline(Some(std::time::Instant::now()));
        let result = futures_executor::block_on(agent.execute(&ctx, input.clone()));
        assert!(
            matches!(result, Err(AgentError::DeadlineExceeded)),
            "{result:?}"
        );

        // A malformed answer is the model's fault, not an outage: it stays an error.
        let result = execute(agent, Model::answering(&json!({"nonsense": true})), input);
        assert!(
            matches!(result, Err(AgentError::OutputInvalid { .. })),
            "{result:?}"
        );
    }

    // The provider gave up because the deadline passed: never degraded either.
    let ctx = AgentContext::new(Model::failing(ProviderError::Timeout {
        elapsed: std::time::Duration::from_millis(1),
    }))
    .with_deadline(std::time::Instant::now().checked_add(std::time::Duration::from_millis(1)));
    std::thread::sleep(std::time::Duration::from_millis(2));
    let result = futures_executor::block_on(
        code.execute(&ctx, json!({"source_code": "x", "language": "go"})),
    );
    assert!(
        matches!(result, Err(AgentError::DeadlineExceeded)),
        "{result:?}"
    );
}

#[test]
fn no_provider_configured_degrades_and_a_single_failure_does_too() {
    let agent = analysis(facts());
    let done = execute(
        &agent,
        Model::failing(ProviderError::AllFailed {
            attempts: Vec::new(),
        }),
        json!({"source_code": "x", "language": "python"}),
    )
    .unwrap();
    assert!(done.metadata.fallbacks.is_empty());
    assert!(
        done.output["degraded_reason"]
            .as_str()
            .unwrap()
            .starts_with("no model provider is configured")
    );

    // A plain provider (not a chain) failing counts as every provider failing.
    let done = execute(
        &agent,
        Model::failing(ProviderError::Unavailable {
            status: Some(502),
            reason: "bad gateway".into(),
        }),
        json!({"source_code": "x", "language": "python"}),
    )
    .unwrap();
    assert_eq!(done.metadata.fallbacks, ["scripted"]);
    assert!(
        done.output["degraded_reason"]
            .as_str()
            .unwrap()
            .contains("scripted (unavailable)")
    );
}

#[test]
fn without_facts_errors_stay_errors() {
    // No analyzer: behaviour as before.
    let plain = CodeAnalysisAgent::new(AgentConfig::default()).unwrap();
    let input = json!({"source_code": "x", "language": "python"});
    let error = execute(&plain, Model::down(), input.clone()).unwrap_err();
    assert!(matches!(error, AgentError::AllProvidersFailed { .. }));

    // An analyzer that fails: the run carries on ungrounded, and says why.
    let failing = CodeAnalysisAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(CannedFacts::failing(FactsError::TimedOut {
            budget_ms: 250,
        }));
    let error = execute(&failing, Model::down(), input.clone()).unwrap_err();
    assert!(matches!(error, AgentError::AllProvidersFailed { .. }));
    let done = execute(&failing, Model::answering(&analysis_reply()), input).unwrap();
    assert!(!done.metadata.grounded);
    let why = done.metadata.facts_error.as_deref().unwrap();
    assert!(why.contains("250 ms"), "{why}");
    assert!(done.output.get("complexity").is_none());
}

fn analysis_reply() -> Value {
    json!({
        "suggestions": [{"type": "warning", "message": "Check the id", "line": 6, "severity": "medium", "category": "security"}],
        "complexity": {"cyclomatic": 99, "cognitive": 99, "maintainability": "poor"},
        "security": {"vulnerabilities": [], "risk_level": "low"},
        "performance": {"bottlenecks": [], "memory_usage": "low"},
        "confidence": 0.8
    })
}

#[test]
fn grounded_code_analysis_takes_complexity_from_facts_and_gives_the_model_the_facts() {
    let analyzer = CannedFacts::new(facts());
    let agent = CodeAnalysisAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(analyzer.clone());
    let model = Model::answering(&analysis_reply());
    let done = execute(
        &agent,
        model.clone(),
        json!({"source_code": python_source(), "language": "python"}),
    )
    .unwrap();
    assert_valid(&agent, &done.output);
    assert_eq!(*analyzer.calls.lock().unwrap(), [Language::Python]);
    assert!(done.metadata.grounded && !done.metadata.degraded);
    assert_eq!(done.metadata.provider.as_deref(), Some("scripted"));
    let output = &done.output;
    assert_eq!(output["degraded"], false);
    assert!(output.get("degraded_reason").is_none());
    assert_eq!(output["confidence"], 0.8);
    // The model's complexity is ignored: these are the facts' numbers.
    assert_eq!(output["complexity"]["cyclomatic"], 29);
    assert_eq!(output["complexity"]["cognitive"], 40);
    assert_eq!(output["complexity"]["maintainability"], "fair");
    assert_eq!(output["functions"][0]["name"], "load");
    // The model's review is kept as it is.
    assert_eq!(output["suggestions"][0]["message"], "Check the id");

    let user = model.user_message();
    for expected in [
        "Code facts computed by a parser:",
        "- load [lines 5-10, public]: def load(user_id, db); cyclomatic 2, cognitive 1, nesting 0",
        "- Worker.process [lines 18-90, public, async]",
        "cyclomatic 29 (1 + every decision point), highest cognitive 40, maintainability index 15/100",
        "- line 6: sql-concatenation (high)",
    ] {
        assert!(user.contains(expected), "{expected} in\n{user}");
    }
    assert!(
        user.contains(&python_source()),
        "the code is still there, byte for byte"
    );
    let system = &model.requests.lock().unwrap()[0].messages[0].content;
    assert!(system.contains("CodeAnalysisReply") && !system.contains("\"complexity\""));
    assert!(
        agent.reply_schema()["properties"]
            .get("complexity")
            .is_none()
    );
}

#[test]
fn grounded_documentation_and_tests_get_signatures_docs_and_branches() {
    let analyzer = CannedFacts::new(facts());
    let agents = grounded_agents(&AgentConfig::default(), analyzer).unwrap();
    let ids: Vec<&str> = agents.iter().map(|a| a.id()).collect();
    assert_eq!(ids, ["code-analysis", "documentation", "test-generation"]);

    let docs_reply = json!({"sections": [{"title": "load", "type": "function", "content": "Loads."}], "confidence": 0.9});
    let model = Model::answering(&docs_reply);
    let done = execute(
        agents[1].as_ref(),
        model.clone(),
        json!({"source_code": python_source(), "language": "python"}),
    )
    .unwrap();
    assert_valid(agents[1].as_ref(), &done.output);
    assert_eq!(done.output["degraded"], false);
    let user = model.user_message();
    assert!(user.contains("def load(user_id, db)"), "{user}");
    assert!(
        user.contains("doc: Loads a user <by id> & returns the row."),
        "{user}"
    );
    assert!(
        user.contains("- class Worker (public), lines 17-91; doc: Processes jobs."),
        "{user}"
    );
    assert!(
        !user.contains("cyclomatic"),
        "documentation does not need complexity"
    );

    let tests_reply = json!({
        "tests": [{"name": "test_load", "code": "def test_load(): assert load(1, db)", "type": "positive"}],
        "coverage": {"estimated": 70, "branches": ["made up by the model"]},
        "confidence": 0.7
    });
    let model = Model::answering(&tests_reply);
    let done = execute(
        agents[2].as_ref(),
        model.clone(),
        json!({"source_code": python_source(), "language": "python"}),
    )
    .unwrap();
    assert_valid(agents[2].as_ref(), &done.output);
    assert_eq!(done.output["coverage"]["estimated"], 70.0);
    assert_eq!(
        done.output["coverage"]["branches"][0],
        "load: except at line 9"
    );
    assert_eq!(
        done.output["coverage"]["branches"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let user = model.user_message();
    assert!(user.contains("public functions:"), "{user}");
    assert!(
        user.contains("branches: for at line 14, for at line 15"),
        "{user}"
    );
    assert!(
        !user.contains("_helper"),
        "tests are written for the public functions"
    );
    assert!(format!("{:?}", agents[2]).contains("CannedFacts"));
}

/// [`facts`] plus an interface method declared without a body, with too many parameters and
/// numbers no real declaration has (so that a consumer that forgot the flag would show them).
fn facts_with_abstract_method() -> CodeFacts {
    let mut facts = serde_json::to_value(facts()).unwrap();
    facts["types"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "Store", "kind": "interface", "visibility": "public", "start_line": 96, "end_line": 99}));
    let parameters: Vec<Value> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|n| json!({"name": n}))
        .collect();
    facts["functions"].as_array_mut().unwrap().push(json!({
        "name": "save", "container": "Store",
        "signature": "def save(self, a, b, c, d, e, f) -> bool",
        "parameters": parameters,
        "return_type": "bool", "visibility": "public", "start_line": 97, "end_line": 98,
        "doc": "Saves every field.", "is_abstract": true,
        "cyclomatic": 50, "cognitive": 60, "max_nesting": 9,
        "branches": [{"line": 98, "kind": "if"}]
    }));
    // A protected one: not public, yet no path to cover either (it has no code).
    facts["functions"].as_array_mut().unwrap().push(json!({
        "name": "flush", "container": "Store", "signature": "def flush(self)",
        "parameters": [], "visibility": "protected", "start_line": 99, "end_line": 99,
        "is_abstract": true, "cyclomatic": 1, "cognitive": 0, "max_nesting": 0, "branches": []
    }));
    serde_json::from_value(facts).unwrap()
}

#[test]
fn methods_without_a_body_are_documented_but_not_measured_or_tested() {
    // Documentation, offline: the interface method is part of the API reference.
    let docs = DocumentationAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(CannedFacts::new(facts_with_abstract_method()));
    let input = json!({"source_code": "x", "language": "python"});
    let output = execute(&docs, Model::down(), input.clone()).unwrap().output;
    assert_valid(&docs, &output);
    let save = find(&output["sections"], "title", "Store.save");
    assert_eq!(save["type"], "method");
    assert_eq!(save["parameters"].as_array().unwrap().len(), 6);
    let content = save["content"].as_str().unwrap();
    assert!(
        content.contains("def save(self, a, b, c, d, e, f) -> bool"),
        "{content}"
    );
    assert!(content.contains("Saves every field."), "{content}");
    assert!(content.contains("Declared without a body"), "{content}");

    // Documentation, grounded: the prompt lists it, marked as having no body.
    let model = Model::answering(
        &json!({"sections": [{"title": "save", "type": "method", "content": "Saves."}], "confidence": 0.9}),
    );
    execute(&docs, model.clone(), input.clone()).unwrap();
    let user = model.user_message();
    assert!(
        user.contains("- Store.save [lines 97-98, public, no body: interface, trait or abstract]: def save(self, a, b, c, d, e, f) -> bool; doc: Saves every field."),
        "{user}"
    );

    // Test generation, offline: no skeleton, no uncovered path, no branch to cover.
    let tests = TestGenerationAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(CannedFacts::new(facts_with_abstract_method()));
    let output = execute(&tests, Model::down(), input.clone())
        .unwrap()
        .output;
    assert_valid(&tests, &output);
    assert_eq!(
        output["test_count"], 3,
        "the three public functions with a body"
    );
    let names: Vec<&str> = output["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("save")), "{names:?}");
    let coverage = output["coverage"].to_string();
    assert!(!coverage.contains("save"), "{coverage}");
    assert!(!coverage.contains("flush"), "{coverage}");

    // Test generation, grounded: the prompt does not ask for tests of it.
    let model = Model::answering(&json!({
        "tests": [{"name": "test_load", "code": "def test_load(): assert load(1, db)", "type": "positive"}],
        "coverage": {"estimated": 70},
        "confidence": 0.7
    }));
    execute(&tests, model.clone(), input.clone()).unwrap();
    let user = model.user_message();
    assert!(user.contains("- load [lines 5-10, public]"), "{user}");
    assert!(!user.contains("Store.save"), "{user}");

    // Code analysis: the file's numbers and the per-function metrics leave it out; the
    // parameter rule still sees it.
    let agent = analysis(facts_with_abstract_method());
    let output = execute(&agent, Model::down(), input).unwrap().output;
    assert_valid(&agent, &output);
    assert_eq!(output["complexity"]["cyclomatic"], 29, "as without it");
    assert_eq!(output["complexity"]["cognitive"], 40);
    let metrics = output["functions"].to_string();
    assert!(!metrics.contains("Store.save"), "{metrics}");
    let messages: Vec<&str> = output["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["message"].as_str().unwrap())
        .filter(|m| m.contains("Store.save"))
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("takes 6 parameters"), "{messages:?}");
}

#[test]
fn every_input_accepts_allow_degraded_and_builtin_agents_have_no_facts() {
    for agent in builtin_agents(&AgentConfig::default()).unwrap() {
        let input = json!({"source_code": "x", "language": "rust", "allow_degraded": false});
        agent.validate_input(&input).unwrap();
        let bad = json!({"source_code": "x", "language": "rust", "allow_degraded": "no"});
        assert!(agent.validate_input(&bad).is_err());
        assert!(agent.input_schema()["properties"]["allow_degraded"]["default"] == true);
        assert!(
            agent.output_schema()["properties"]
                .get("degraded")
                .is_some()
        );
        assert!(format!("{agent:?}").contains("analyzer: None"));
    }
    assert_eq!(
        Framework::for_language(Language::Rust),
        [Framework::CargoTest]
    );
}

/// Cancels the run once asked for facts, then waits (up to 20 s, so a broken test ends)
/// instead of answering, as an analyzer waiting for room elsewhere does; records the deadline
/// it was given.
#[derive(Debug)]
struct CancelsWhileWaiting {
    cancel: CancellationToken,
    deadline: Mutex<Option<Option<std::time::Instant>>>,
    waited_to_the_end: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl FactsAnalyzer for CancelsWhileWaiting {
    fn analyze(&self, _: Language, _: &str) -> Result<CodeFacts, FactsError> {
        Ok(facts())
    }

    async fn analyze_in_run(
        &self,
        _: Language,
        _: &str,
        deadline: Option<std::time::Instant>,
    ) -> Result<CodeFacts, FactsError> {
        *self.deadline.lock().unwrap() = Some(deadline);
        self.cancel.cancel();
        let (done, give_up) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(20));
            let _ = done.send(());
        });
        let _ = give_up.await;
        self.waited_to_the_end
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Err(FactsError::Failed("the run did not stop waiting".into()))
    }
}

#[test]
fn the_analyzer_gets_the_runs_deadline_and_cancelling_the_run_ends_the_wait_for_facts() {
    let cancel = CancellationToken::new();
    let analyzer = Arc::new(CancelsWhileWaiting {
        cancel: cancel.clone(),
        deadline: Mutex::new(None),
        waited_to_the_end: std::sync::atomic::AtomicBool::new(false),
    });
    let agent = CodeAnalysisAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(analyzer.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    let ctx = AgentContext::new(Model::down())
        .with_cancel(cancel)
        .with_deadline(Some(deadline));
    let input = json!({"source_code": "fn f() {}", "language": "rust"});
    let result = futures_executor::block_on(agent.execute(&ctx, input));
    assert!(matches!(result, Err(AgentError::Cancelled)), "{result:?}");
    // The run stopped waiting: it did not sit out the analyzer's 20 s.
    assert!(
        !analyzer
            .waited_to_the_end
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    assert_eq!(*analyzer.deadline.lock().unwrap(), Some(Some(deadline)));
}

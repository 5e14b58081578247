//! Prints the facts of a file as JSON: `cargo run --example dump -- python file.py`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use agents_core::facts::FactsAnalyzer;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let language: agents_core::Language =
        serde_json::from_value(serde_json::Value::String(args[1].clone())).unwrap();
    let source = std::fs::read_to_string(&args[2]).unwrap();
    let facts = agents_facts::TreeSitterAnalyzer::new().analyze(language, &source);
    match facts {
        Ok(f) => println!("{}", serde_json::to_string_pretty(&f).unwrap()),
        Err(e) => println!("error: {e}"),
    }
}

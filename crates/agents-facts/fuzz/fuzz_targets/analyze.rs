//! Any bytes, read as lossy UTF-8, in every language: facts or an error, never a panic.
#![no_main]

use std::time::Duration;

use agents_core::Language;
use agents_core::facts::FactsAnalyzer;
use agents_facts::TreeSitterAnalyzer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let analyzer = TreeSitterAnalyzer::new().with_budget(Duration::from_millis(200));
    for language in Language::ALL {
        let _ = analyzer.analyze(language, &source);
    }
});

//! Facts of one realistic file per language, checked against counts made by hand.
//!
//! Every fixture has the same shape (an inventory with `level`, `reserve`, `duplicates`), so
//! the hand counts carry over: the comment above each test says how they were made.
//!
//! - `level`: `if` + `else if` + `&&` + `else if` = 4 decisions, cyclomatic 5; cognitive
//!   `if` 1 + `else if` 1 + `&&` 1 + `else if` 1 + `else` 1 = 5; nesting 1.
//! - `reserve`: `if` + `||` + `if` + nested `if` = 4 decisions, cyclomatic 5; cognitive
//!   1 + 1 + 1 + (1 + nesting 1) = 5; nesting 2.
//! - `duplicates`: `for` + nested `for` + nested `if` = cyclomatic 4; cognitive
//!   1 + (1 + 1) + (1 + 2) = 6; nesting 3.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agents_core::Language;
use agents_core::facts::{CodeFacts, FactsAnalyzer, FunctionFacts, Rule, Visibility};
use agents_facts::TreeSitterAnalyzer;

fn facts(language: Language, file: &str) -> CodeFacts {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(path).unwrap();
    assert!(source.lines().count() >= 100, "{file} is a real file");
    let facts = TreeSitterAnalyzer::new()
        .analyze(language, &source)
        .unwrap();
    assert!(
        facts.syntax_errors.is_empty(),
        "{file}: {:?}",
        facts.syntax_errors
    );
    assert!(
        facts.maintainability_index > 0.0 && facts.maintainability_index <= 100.0,
        "{file}: {}",
        facts.maintainability_index
    );
    facts
}

fn function<'f>(facts: &'f CodeFacts, name: &str) -> &'f FunctionFacts {
    facts
        .functions
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no function {name} in {:?}", names(facts)))
}

fn names(facts: &CodeFacts) -> Vec<String> {
    facts
        .functions
        .iter()
        .map(FunctionFacts::qualified_name)
        .collect()
}

/// (cyclomatic, cognitive, nesting)
fn complexity(f: &FunctionFacts) -> (u32, u32, u32) {
    (f.cyclomatic, f.cognitive, f.max_nesting)
}

fn rules(facts: &CodeFacts) -> Vec<(Rule, u32)> {
    facts.findings.iter().map(|f| (f.rule, f.line)).collect()
}

fn param_names(f: &FunctionFacts) -> Vec<&str> {
    f.parameters.iter().map(|p| p.name.as_str()).collect()
}

/// The function called `Container.name` (or `name`).
fn qualified<'f>(facts: &'f CodeFacts, name: &str) -> &'f FunctionFacts {
    facts
        .functions
        .iter()
        .find(|f| f.qualified_name() == name)
        .unwrap_or_else(|| panic!("no function {name} in {:?}", names(facts)))
}

/// A method declared without a body: listed, flagged, with nothing to count.
fn without_body<'f>(facts: &'f CodeFacts, name: &str) -> &'f FunctionFacts {
    let f = qualified(facts, name);
    assert!(f.is_abstract, "{name} has no body");
    assert_eq!(complexity(f), (1, 0, 0), "{name}");
    assert!(f.branches.is_empty(), "{name}");
    f
}

/// The qualified names of the methods declared without a body, in source order.
fn bodiless(facts: &CodeFacts) -> Vec<String> {
    facts
        .functions
        .iter()
        .filter(|f| f.is_abstract)
        .map(FunctionFacts::qualified_name)
        .collect()
}

#[test]
fn javascript() {
    let facts = facts(Language::Javascript, "inventory.js");
    assert_eq!(
        names(&facts),
        [
            "Inventory.constructor",
            "Inventory.level",
            "Inventory.reserve",
            "Inventory.duplicates",
            "Inventory.#tagged",
            "Inventory.load",
            "report",
            "archive",
            "summarise"
        ]
    );
    let level = function(&facts, "level");
    assert_eq!((level.start_line, level.end_line), (28, 39));
    assert_eq!(complexity(level), (5, 5, 1));
    assert_eq!(level.doc.as_deref(), Some("Say how well stocked a SKU is."));
    assert_eq!(complexity(function(&facts, "reserve")), (5, 5, 2));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    // `load`: catch 1 + ternary 1 = cyclomatic 3; cognitive catch 1 + ternary 1 = 2.
    assert_eq!(complexity(function(&facts, "load")), (3, 2, 1));
    let reserve = function(&facts, "reserve");
    assert_eq!(param_names(reserve), ["sku", "amount", "{ strict }"]);
    assert!(!reserve.parameters[0].optional && reserve.parameters[1].optional);
    assert_eq!(function(&facts, "#tagged").visibility, Visibility::Private);
    assert_eq!(function(&facts, "report").visibility, Visibility::Public);
    assert!(function(&facts, "report").is_async);
    let summarise = function(&facts, "summarise");
    assert_eq!(summarise.signature, "const summarise = (items) =>");
    assert_eq!((summarise.start_line, summarise.end_line), (100, 106));
    assert_eq!(facts.types[0].name, "Inventory");
    assert!(
        facts.types[0]
            .doc
            .as_deref()
            .unwrap()
            .starts_with("Holds items")
    );
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 60),
            (Rule::EmptyCatch, 78),
            (Rule::SqlConcatenation, 89),
            (Rule::DynamicCodeExecution, 96)
        ]
    );
}

#[test]
fn typescript() {
    let facts = facts(Language::Typescript, "inventory.ts");
    let level = function(&facts, "level");
    assert_eq!(complexity(level), (5, 5, 1));
    assert_eq!(level.signature, "public level(sku: string): string");
    assert_eq!(level.return_type.as_deref(), Some("string"));
    assert_eq!(complexity(function(&facts, "reserve")), (5, 5, 2));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    let reserve = function(&facts, "reserve");
    assert_eq!(param_names(reserve), ["sku", "amount", "strict"]);
    assert_eq!(reserve.parameters[1].type_name.as_deref(), Some("number"));
    assert!(reserve.parameters[2].optional);
    assert_eq!(
        function(&facts, "duplicates").visibility,
        Visibility::Private
    );
    assert_eq!(function(&facts, "tagged").visibility, Visibility::Protected);
    assert_eq!(
        function(&facts, "report").return_type.as_deref(),
        Some("Promise<string>")
    );
    let kinds: Vec<(&str, &str)> = facts
        .types
        .iter()
        .map(|t| (t.name.as_str(), t.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Item", "interface"),
            ("Db", "interface"),
            ("Level", "type"),
            ("Inventory", "class"),
            ("Exporter", "interface"),
            ("FileExporter", "class")
        ]
    );
    assert_eq!(
        facts.types[0].doc.as_deref(),
        Some("One stock-keeping unit.")
    );
    assert_eq!(rules(&facts).len(), 4);

    // Interface members, an abstract method and two overload signatures have no body.
    assert_eq!(
        bodiless(&facts),
        [
            "Db.query",
            "Exporter.export",
            "FileExporter.path",
            "count",
            "count"
        ]
    );
    let export = without_body(&facts, "Exporter.export");
    assert_eq!(
        export.signature,
        "export(inventory: Inventory, target: string, overwrite?: boolean): Promise<number>"
    );
    assert_eq!(param_names(export), ["inventory", "target", "overwrite"]);
    assert_eq!(export.parameters[0].type_name.as_deref(), Some("Inventory"));
    assert!(export.parameters[2].optional);
    assert_eq!(export.return_type.as_deref(), Some("Promise<number>"));
    assert_eq!(export.visibility, Visibility::Public);
    assert_eq!(
        export.doc.as_deref(),
        Some("Write every item to the target.")
    );
    assert_eq!((export.start_line, export.end_line), (129, 129));
    let path = without_body(&facts, "FileExporter.path");
    assert_eq!(
        path.signature,
        "protected abstract path(target: string): string"
    );
    assert_eq!(path.visibility, Visibility::Protected);
    assert_eq!(path.doc.as_deref(), Some("The file name for a target."));
    let implemented = qualified(&facts, "FileExporter.export");
    assert!(!implemented.is_abstract && implemented.is_async);
    let counts: Vec<&FunctionFacts> = facts
        .functions
        .iter()
        .filter(|f| f.name == "count")
        .collect();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts[0].signature, "function count(sku: string): number");
    assert_eq!(
        counts[0].doc.as_deref(),
        Some("Count items by SKU or by tag.")
    );
    assert_eq!(param_names(counts[1]), ["tag", "all"]);
    assert!(!counts[2].is_abstract);
    assert_eq!(complexity(counts[2]), (2, 1, 0));
    assert!(!level.is_abstract);
}

#[test]
fn python() {
    let facts = facts(Language::Python, "inventory.py");
    let level = function(&facts, "level");
    assert_eq!((level.start_line, level.end_line), (37, 47));
    assert_eq!(complexity(level), (5, 5, 1));
    assert_eq!(complexity(function(&facts, "reserve")), (5, 5, 2));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    // `_tagged`: a comprehension's `for` and `if` clauses: cyclomatic 3, no cognitive cost.
    assert_eq!(complexity(function(&facts, "_tagged")), (3, 0, 0));
    // `load`: two `except` + the `for` in `else`: cyclomatic 4, cognitive 3.
    assert_eq!(complexity(function(&facts, "load")), (4, 3, 1));
    let reserve = function(&facts, "reserve");
    assert_eq!(param_names(reserve), ["sku", "amount", "strict"]);
    assert_eq!(reserve.parameters[0].type_name.as_deref(), Some("str"));
    assert!(reserve.parameters[1].optional);
    assert_eq!(reserve.return_type.as_deref(), Some("bool"));
    assert_eq!(reserve.container.as_deref(), Some("Inventory"));
    assert_eq!(function(&facts, "_tagged").visibility, Visibility::Private);
    assert_eq!(function(&facts, "__init__").visibility, Visibility::Public);
    assert_eq!(level.doc.as_deref(), Some("Say how well stocked a SKU is."));
    assert_eq!(function(&facts, "report").container, None);
    assert_eq!(
        facts.types[1].doc.as_deref(),
        Some("Holds items by SKU and answers questions about stock.")
    );
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 65),
            (Rule::EmptyCatch, 78),
            (Rule::SqlConcatenation, 93),
            (Rule::DynamicCodeExecution, 101)
        ]
    );
}

#[test]
fn java() {
    let facts = facts(Language::Java, "Inventory.java");
    let level = function(&facts, "level");
    assert_eq!((level.start_line, level.end_line), (37, 48));
    assert_eq!(complexity(level), (5, 5, 1));
    assert_eq!(complexity(function(&facts, "reserve")), (5, 5, 2));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    assert_eq!(
        function(&facts, "reserve").visibility,
        Visibility::Protected
    );
    assert_eq!(
        function(&facts, "duplicates").visibility,
        Visibility::Internal
    );
    assert_eq!(function(&facts, "load").visibility, Visibility::Private);
    let report = function(&facts, "report");
    assert_eq!(param_names(report), ["db", "sku"]);
    assert_eq!(
        report.parameters[0].type_name.as_deref(),
        Some("Connection")
    );
    assert_eq!(report.return_type.as_deref(), Some("String"));
    assert_eq!(
        report.doc.as_deref(),
        Some("Write a stock report line for one SKU.")
    );
    let interface = facts.types.iter().find(|t| t.name == "Report").unwrap();
    assert_eq!(
        (interface.kind.as_str(), interface.visibility),
        ("interface", Visibility::Internal)
    );

    assert_eq!(bodiless(&facts), ["Report.render", "Exporter.export"]);
    let render = without_body(&facts, "Report.render");
    assert_eq!(render.signature, "String render(Inventory inventory)");
    assert_eq!(param_names(render), ["inventory"]);
    assert_eq!(render.parameters[0].type_name.as_deref(), Some("Inventory"));
    assert_eq!(render.return_type.as_deref(), Some("String"));
    // Interface members are public without a modifier.
    assert_eq!(render.visibility, Visibility::Public);
    assert_eq!(render.doc.as_deref(), Some("Render one line per SKU."));
    assert_eq!((render.start_line, render.end_line), (117, 117));
    let export = without_body(&facts, "Exporter.export");
    assert_eq!(
        export.signature,
        "protected abstract int export(Inventory inventory, String target, boolean overwrite)"
    );
    assert_eq!(param_names(export), ["inventory", "target", "overwrite"]);
    assert_eq!(export.return_type.as_deref(), Some("int"));
    assert_eq!(export.visibility, Visibility::Protected);
    assert_eq!(
        export.doc.as_deref(),
        Some("Write every item to the target.")
    );
    assert!(!qualified(&facts, "Exporter.name").is_abstract);
    assert!(!level.is_abstract);
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 69),
            (Rule::EmptyCatch, 81),
            (Rule::SqlConcatenation, 92),
            (Rule::DynamicCodeExecution, 102)
        ]
    );
}

#[test]
fn go() {
    let facts = facts(Language::Go, "inventory.go");
    let level = function(&facts, "Level");
    assert_eq!((level.start_line, level.end_line), (41, 52));
    assert_eq!(level.container.as_deref(), Some("Inventory"));
    assert_eq!(complexity(level), (5, 5, 1));
    assert_eq!(complexity(function(&facts, "Reserve")), (5, 5, 2));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    // `Kind`: two non-default cases: cyclomatic 3; the switch once: cognitive 1.
    assert_eq!(complexity(function(&facts, "Kind")), (3, 1, 1));
    assert_eq!(
        function(&facts, "duplicates").visibility,
        Visibility::Internal
    );
    assert_eq!(level.visibility, Visibility::Public);
    assert_eq!(
        level.doc.as_deref(),
        Some("Level says how well stocked a SKU is.")
    );
    let reserve = function(&facts, "Reserve");
    assert_eq!(param_names(reserve), ["sku", "amount", "strict"]);
    assert_eq!(reserve.return_type.as_deref(), Some("(bool, error)"));
    let kinds: Vec<(&str, &str)> = facts
        .types
        .iter()
        .map(|t| (t.name.as_str(), t.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Item", "struct"),
            ("Inventory", "struct"),
            ("Store", "interface"),
            ("Auditor", "interface")
        ]
    );

    // Interface methods: no body, the interface as container.
    assert_eq!(
        bodiless(&facts),
        ["Store.Save", "Auditor.Record", "Auditor.flush"]
    );
    let save = without_body(&facts, "Store.Save");
    assert_eq!(save.signature, "Save(inv *Inventory) error");
    assert_eq!(param_names(save), ["inv"]);
    assert_eq!((save.start_line, save.end_line), (28, 28));
    let record = without_body(&facts, "Auditor.Record");
    assert_eq!(record.signature, "Record(sku string, delta int) error");
    assert_eq!(param_names(record), ["sku", "delta"]);
    assert_eq!(record.parameters[1].type_name.as_deref(), Some("int"));
    assert_eq!(record.return_type.as_deref(), Some("error"));
    assert_eq!(record.visibility, Visibility::Public);
    assert_eq!(
        record.doc.as_deref(),
        Some("Record notes that the quantity of sku changed by delta.")
    );
    let flush = without_body(&facts, "Auditor.flush");
    assert_eq!(flush.visibility, Visibility::Internal);
    assert_eq!(flush.return_type.as_deref(), Some("[]string"));
    assert_eq!(flush.doc, None);
    assert!(!level.is_abstract);
    assert_eq!(
        facts.types[0].doc.as_deref(),
        Some("Item is one stock-keeping unit.")
    );
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 73),
            (Rule::SqlConcatenation, 97),
            (Rule::SqlConcatenation, 100),
            (Rule::DynamicCodeExecution, 108)
        ]
    );
}

#[test]
fn rust() {
    let facts = facts(Language::Rust, "inventory.rs");
    let level = function(&facts, "level");
    assert_eq!((level.start_line, level.end_line), (45, 56));
    // `let … else` is not a decision point; `if` + `&&` + `else if`: cyclomatic 4;
    // cognitive `if` 1 + `&&` 1 + `else if` 1 + `else` 1 = 4.
    assert_eq!(complexity(level), (4, 4, 1));
    // `reserve`: three match arms, none `_`: cyclomatic 4; the match once: cognitive 1; `?` free.
    assert_eq!(complexity(function(&facts, "reserve")), (4, 1, 1));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    assert_eq!(function(&facts, "reserve").visibility, Visibility::Internal);
    assert_eq!(
        function(&facts, "duplicates").visibility,
        Visibility::Private
    );
    assert_eq!(function(&facts, "fmt").visibility, Visibility::Public);
    assert_eq!(level.container.as_deref(), Some("Inventory"));
    assert_eq!(
        level.doc.as_deref(),
        Some("Says how well stocked a SKU is.")
    );
    let reserve = function(&facts, "reserve");
    assert_eq!(param_names(reserve), ["sku", "amount"]);
    assert_eq!(reserve.parameters[1].type_name.as_deref(), Some("u32"));
    assert_eq!(
        reserve.return_type.as_deref(),
        Some("Result<(), ReserveError>")
    );
    // Trait methods without a default body; their visibility is the trait's.
    assert_eq!(bodiless(&facts), ["Store.save", "Compact.compact"]);
    let save = without_body(&facts, "Store.save");
    assert_eq!(
        save.signature,
        "fn save(&self, inventory: &Inventory, key: &str) -> Result<(), String>"
    );
    assert_eq!(param_names(save), ["inventory", "key"]);
    assert_eq!(save.parameters[0].type_name.as_deref(), Some("&Inventory"));
    assert_eq!(save.return_type.as_deref(), Some("Result<(), String>"));
    assert_eq!(save.visibility, Visibility::Public);
    assert_eq!(
        save.doc.as_deref(),
        Some("Saves the inventory under `key`.")
    );
    assert_eq!((save.start_line, save.end_line), (122, 122));
    let name = qualified(&facts, "Store.name");
    assert!(!name.is_abstract);
    assert_eq!(name.visibility, Visibility::Public);
    let compact = without_body(&facts, "Compact.compact");
    assert_eq!(compact.visibility, Visibility::Private);
    assert!(compact.parameters.is_empty() && compact.doc.is_none());
    assert!(!level.is_abstract);
    let item = &facts.types[0];
    assert_eq!((item.name.as_str(), item.kind.as_str()), ("Item", "struct"));
    assert_eq!(item.doc.as_deref(), Some("One stock-keeping unit."));
    // The unwrap in the test module is allowed.
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 74),
            (Rule::UnwrapInLibrary, 85),
            (Rule::UnsafeCode, 90),
            (Rule::SqlConcatenation, 96)
        ]
    );
}

#[test]
fn csharp() {
    let facts = facts(Language::Csharp, "Inventory.cs");
    let level = function(&facts, "Level");
    assert_eq!((level.start_line, level.end_line), (29, 47));
    assert_eq!(complexity(level), (5, 5, 1));
    assert_eq!(complexity(function(&facts, "Reserve")), (5, 5, 2));
    assert_eq!(complexity(function(&facts, "Duplicates")), (4, 6, 3));
    // `Kind`: a switch expression with two arms besides `_`: cyclomatic 3, cognitive 1.
    assert_eq!(complexity(function(&facts, "Kind")), (3, 1, 1));
    assert_eq!(
        function(&facts, "Duplicates").visibility,
        Visibility::Private
    );
    assert_eq!(function(&facts, "Load").visibility, Visibility::Internal);
    assert_eq!(
        function(&facts, "Reserve").visibility,
        Visibility::Protected
    );
    let reserve = function(&facts, "Reserve");
    assert_eq!(param_names(reserve), ["sku", "amount", "strict"]);
    assert!(reserve.parameters[1].optional);
    assert_eq!(
        reserve.doc.as_deref(),
        Some("Take amount units out of stock if there are enough.")
    );
    assert_eq!(
        level.doc.as_deref(),
        Some("<summary>Say how well stocked a SKU is.</summary>")
    );
    let interface = facts.types.iter().find(|t| t.name == "IReport").unwrap();
    assert_eq!(interface.visibility, Visibility::Internal);

    assert_eq!(bodiless(&facts), ["IReport.Render", "Exporter.Export"]);
    let render = without_body(&facts, "IReport.Render");
    assert_eq!(render.signature, "string Render(Inventory inventory)");
    assert_eq!(param_names(render), ["inventory"]);
    assert_eq!(render.return_type.as_deref(), Some("string"));
    // Interface members are public without a modifier.
    assert_eq!(render.visibility, Visibility::Public);
    assert_eq!(
        render.doc.as_deref(),
        Some("<summary>Render one line per SKU.</summary>")
    );
    assert_eq!((render.start_line, render.end_line), (122, 122));
    let export = without_body(&facts, "Exporter.Export");
    assert_eq!(
        export.signature,
        "protected abstract int Export(Inventory inventory, string target, bool overwrite = false)"
    );
    assert_eq!(param_names(export), ["inventory", "target", "overwrite"]);
    assert!(export.parameters[2].optional);
    assert_eq!(export.visibility, Visibility::Protected);
    assert_eq!(
        export.doc.as_deref(),
        Some("<summary>Write every item to the target.</summary>")
    );
    assert!(!qualified(&facts, "Exporter.Name").is_abstract);
    assert!(!level.is_abstract);
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 73),
            (Rule::EmptyCatch, 90),
            (Rule::SqlConcatenation, 99),
            (Rule::DynamicCodeExecution, 107)
        ]
    );
}

#[test]
fn php() {
    let facts = facts(Language::Php, "Inventory.php");
    let level = function(&facts, "level");
    assert_eq!((level.start_line, level.end_line), (47, 59));
    // The `??` in the first line is a decision too: one more than the shared count.
    assert_eq!(complexity(level), (6, 6, 1));
    assert_eq!(complexity(function(&facts, "reserve")), (6, 6, 2));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    assert_eq!(
        function(&facts, "reserve").visibility,
        Visibility::Protected
    );
    assert_eq!(
        function(&facts, "duplicates").visibility,
        Visibility::Private
    );
    assert_eq!(function(&facts, "load").visibility, Visibility::Public);
    let reserve = function(&facts, "reserve");
    assert_eq!(param_names(reserve), ["$sku", "$amount", "$strict"]);
    assert_eq!(reserve.return_type.as_deref(), Some("bool"));
    assert_eq!(level.doc.as_deref(), Some("Say how well stocked a SKU is."));
    assert_eq!(function(&facts, "archive").container, None);

    assert_eq!(bodiless(&facts), ["Store.save", "Exporter.export"]);
    let save = without_body(&facts, "Store.save");
    assert_eq!(
        save.signature,
        "public function save(Inventory $inventory, string $key): bool"
    );
    assert_eq!(param_names(save), ["$inventory", "$key"]);
    assert_eq!(save.parameters[0].type_name.as_deref(), Some("Inventory"));
    assert_eq!(save.return_type.as_deref(), Some("bool"));
    assert_eq!(save.visibility, Visibility::Public);
    assert_eq!(save.doc.as_deref(), Some("Save the inventory under a key."));
    assert_eq!((save.start_line, save.end_line), (128, 128));
    let export = without_body(&facts, "Exporter.export");
    assert_eq!(
        export.signature,
        "abstract protected function export(Inventory $inventory, string $target): int"
    );
    assert_eq!(export.visibility, Visibility::Protected);
    assert_eq!(
        export.doc.as_deref(),
        Some("Write every item to the target.")
    );
    assert!(!qualified(&facts, "Exporter.name").is_abstract);
    assert!(!level.is_abstract);
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 82),
            (Rule::EmptyCatch, 95),
            (Rule::SqlConcatenation, 105),
            (Rule::DynamicCodeExecution, 116)
        ]
    );
}

#[test]
fn ruby() {
    let facts = facts(Language::Ruby, "inventory.rb");
    let level = function(&facts, "level");
    assert_eq!((level.start_line, level.end_line), (22, 33));
    assert_eq!(complexity(level), (5, 5, 1));
    // `return … if a || b`, `if`, nested `raise … if`: as in the shared count.
    assert_eq!(complexity(function(&facts, "reserve")), (5, 5, 2));
    assert_eq!(complexity(function(&facts, "duplicates")), (4, 6, 3));
    // `summarise`: a ternary inside a block (nesting 1): cyclomatic 2, cognitive 2.
    assert_eq!(complexity(function(&facts, "summarise")), (2, 2, 0));
    assert_eq!(function(&facts, "tagged").visibility, Visibility::Private);
    assert_eq!(function(&facts, "report").visibility, Visibility::Public);
    assert_eq!(
        function(&facts, "line").container.as_deref(),
        Some("Format")
    );
    assert_eq!(
        function(&facts, "initialize").doc.as_deref(),
        Some("Start with the given items.")
    );
    let reserve = function(&facts, "reserve");
    assert_eq!(param_names(reserve), ["sku", "amount", "strict:"]);
    assert!(reserve.parameters[1].optional);
    let kinds: Vec<(&str, &str)> = facts
        .types
        .iter()
        .map(|t| (t.name.as_str(), t.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Stock", "module"),
            ("Inventory", "class"),
            ("Format", "module")
        ]
    );
    assert_eq!(
        rules(&facts),
        [
            (Rule::NestedLoops, 52),
            (Rule::EmptyCatch, 63),
            (Rule::SqlConcatenation, 68),
            (Rule::DynamicCodeExecution, 75)
        ]
    );
}

/// Body-less declarations whose body lives elsewhere (native, extern, foreign functions) or that
/// are not members of a type (a method in an inline object type) are not listed.
#[test]
fn declarations_implemented_elsewhere_are_not_listed() {
    let analyzer = TreeSitterAnalyzer::new();
    let cases: [(Language, &str, &[&str]); 5] = [
        (
            Language::Java,
            "class Clock {\n    native long now();\n    abstract static class Tick {\n        abstract void tick();\n    }\n}\n",
            &["Tick.tick"],
        ),
        (
            Language::Csharp,
            "class Native {\n    [DllImport(\"libc\")]\n    static extern int getpid();\n    partial void Changed();\n}\n",
            &[],
        ),
        (
            Language::Rust,
            "extern \"C\" {\n    fn abs(x: i32) -> i32;\n}\npub trait Tick {\n    fn tick(&self);\n}\n",
            &["Tick.tick"],
        ),
        (
            Language::Typescript,
            "function run(hooks: { before(): void }): void {\n  hooks.before();\n}\ntype Hooks = { after(): void };\n",
            &["Hooks.after"],
        ),
        (
            // Interfaces written in place: a variable's type, a field's type, constraints.
            Language::Go,
            "package p\n\nvar Hook interface{ Fire(n int) }\n\ntype S struct{ f interface{ R() } }\n\ntype Box[T interface{ Key() string }] struct{}\n\nfunc F[T interface{ Len() int }](t T) {}\n\ntype Named interface {\n\tName() string\n}\n",
            &["Named.Name"],
        ),
    ];
    for (language, source, expected) in cases {
        let facts = analyzer.analyze(language, source).unwrap();
        assert!(
            facts.syntax_errors.is_empty(),
            "{language}: {:?}",
            facts.syntax_errors
        );
        assert_eq!(
            bodiless(&facts),
            expected,
            "{language}: {:?}",
            names(&facts)
        );
    }
}

#[test]
fn bodiless_declarations_count_nothing_and_overloads_keep_their_implementation() {
    let analyzer = TreeSitterAnalyzer::new();
    // Default values in a body-less declaration's parameters are not its decision points.
    let php = "<?php\nabstract class Job {\n    abstract protected function run($a = X ? 1 : 2, $b = A && B);\n}\n";
    let facts = analyzer.analyze(Language::Php, php).unwrap();
    let run = &facts.functions[0];
    assert!(run.is_abstract, "{:?}", names(&facts));
    assert_eq!(
        (run.cyclomatic, run.cognitive, run.max_nesting),
        (1, 0, 0),
        "{run:?}"
    );
    assert!(run.branches.is_empty(), "{:?}", run.branches);

    // Class method and constructor overloads: each signature is body-less, the implementation
    // is listed once with its own complexity.
    let ts = "class Shape {\n  at(i: number): string;\n  at(s: string): string;\n  at(x: any): string {\n    if (x) {\n      return \"a\";\n    }\n    return \"b\";\n  }\n  constructor(a: number);\n  constructor(a: any) {}\n}\n";
    let facts = analyzer.analyze(Language::Typescript, ts).unwrap();
    assert!(facts.syntax_errors.is_empty(), "{:?}", facts.syntax_errors);
    assert_eq!(
        bodiless(&facts),
        ["Shape.at", "Shape.at", "Shape.constructor"],
        "{:?}",
        names(&facts)
    );
    let implemented: Vec<(String, u32)> = facts
        .functions
        .iter()
        .filter(|f| !f.is_abstract)
        .map(|f| (f.qualified_name(), f.cyclomatic))
        .collect();
    assert_eq!(
        implemented,
        [
            ("Shape.at".to_owned(), 2),
            ("Shape.constructor".to_owned(), 1)
        ]
    );
}

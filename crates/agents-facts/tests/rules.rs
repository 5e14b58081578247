//! Each syntax-aware rule fires on a positive sample and stays quiet on a negative one, in at
//! least two languages where it applies (Rust-only rules in Rust).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agents_core::Language;
use agents_core::facts::{FactsAnalyzer, Rule};
use agents_facts::TreeSitterAnalyzer;

fn lines_of(rule: Rule, language: Language, source: &str) -> Vec<u32> {
    let facts = TreeSitterAnalyzer::new().analyze(language, source).unwrap();
    facts
        .findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.line)
        .collect()
}

/// `positive` has the finding on `line`; `negative` has none.
fn check(rule: Rule, language: Language, positive: &str, line: u32, negative: &str) {
    assert_eq!(
        lines_of(rule, language, positive),
        [line],
        "{rule} in {language}: {positive}"
    );
    assert!(
        lines_of(rule, language, negative).is_empty(),
        "{rule} in {language}: {negative}"
    );
}

#[test]
fn empty_catch() {
    use Language::*;
    check(
        Rule::EmptyCatch,
        Javascript,
        "try {\n  f();\n} catch (e) {}\n",
        3,
        "try { f(); } catch (e) { log(e); }\n",
    );
    check(
        Rule::EmptyCatch,
        Typescript,
        "try { f(); }\ncatch (e) {}\n",
        2,
        "try { f(); } catch { /* expected when offline */ }\n",
    );
    check(
        Rule::EmptyCatch,
        Python,
        "try:\n    f()\nexcept Exception:\n    pass\n",
        3,
        "try:\n    f()\nexcept Exception:\n    log()\n",
    );
    check(
        Rule::EmptyCatch,
        Java,
        "class A { void m() { try { f(); } catch (Exception e) {} } }",
        1,
        "class A { void m() { try { f(); } catch (Exception e) { throw e; } } }",
    );
    check(
        Rule::EmptyCatch,
        Csharp,
        "class A { void M() { try { F(); }\n catch (Exception) { } } }",
        2,
        "class A { void M() { try { F(); } catch (Exception) { throw; } } }",
    );
    check(
        Rule::EmptyCatch,
        Php,
        "<?php\ntry { f(); } catch (Exception $e) {}\n",
        2,
        "<?php\ntry { f(); } catch (Exception $e) { log($e); }\n",
    );
    check(
        Rule::EmptyCatch,
        Ruby,
        "begin\n  f\nrescue StandardError\nend\n",
        3,
        "begin\n  f\nrescue StandardError => e\n  log(e)\nend\n",
    );
    // The message never quotes code.
    let facts = TreeSitterAnalyzer::new()
        .analyze(Javascript, "try { f('hunter2'); } catch (e) {}")
        .unwrap();
    assert!(!facts.findings[0].message.contains("hunter2"));
}

#[test]
fn dynamic_code_execution() {
    use Language::*;
    check(
        Rule::DynamicCodeExecution,
        Javascript,
        "const x = 1;\neval('f(' + x + ')');\n",
        2,
        "eval('f(1)');\n/x/.exec(text);\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Javascript,
        "new Function(body);\n",
        1,
        "new Map(entries);\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Typescript,
        "child_process.exec(`ls ${dir}`);\n",
        1,
        "child_process.exec('ls /tmp');\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Python,
        "import os\nos.system('rm ' + path)\n",
        2,
        "import os\nos.system('ls')\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Python,
        "subprocess.run(f'ls {d}', shell=True)\n",
        1,
        "subprocess.run(['ls', d])\nsubprocess.run(f'ls {d}')\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Python,
        "exec(code)\n",
        1,
        "exec('x = 1')\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Ruby,
        "system(\"ls #{dir}\")\n",
        1,
        "system('ls')\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Ruby,
        "x = `ls #{dir}`\n",
        1,
        "x = `ls`\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Php,
        "<?php\neval('$x = ' . $input . ';');\n",
        2,
        "<?php\neval('$x = 1;');\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Php,
        "<?php\nshell_exec(\"ls $dir\");\n",
        2,
        "<?php\nshell_exec('ls');\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Java,
        "class A { void m(String d) throws Exception { Runtime.getRuntime().exec(\"ls \" + d); } }",
        1,
        "class A { void m() throws Exception { Runtime.getRuntime().exec(\"ls\"); } }",
    );
    check(
        Rule::DynamicCodeExecution,
        Go,
        "package m\nfunc f(d string) { exec.Command(\"sh\", \"-c\", \"ls \"+d) }\n",
        2,
        "package m\nfunc f(d string) { exec.Command(\"ls\", d) }\n",
    );
    check(
        Rule::DynamicCodeExecution,
        Csharp,
        "class A { void M(string d) { Process.Start(\"ls \" + d); } }",
        1,
        "class A { void M() { Process.Start(\"ls\"); } }",
    );
}

#[test]
fn sql_concatenation() {
    use Language::*;
    check(
        Rule::SqlConcatenation,
        Javascript,
        "db.query('SELECT * FROM users WHERE id = ' + id);\n",
        1,
        "db.query('SELECT * FROM users WHERE id = ?', [id]);\nconst s = 'Selected: ' + n;\n",
    );
    check(
        Rule::SqlConcatenation,
        Typescript,
        "const q = `DELETE FROM t WHERE id = ${id}`;\n",
        1,
        "const q = `DELETE FROM t WHERE id = 1`;\n",
    );
    check(
        Rule::SqlConcatenation,
        Python,
        "q = f\"UPDATE t SET a = {a}\"\n",
        1,
        "q = \"UPDATE t SET a = %s\"\ncur.execute(q, (a,))\n",
    );
    check(
        Rule::SqlConcatenation,
        Python,
        "q = \"SELECT * FROM t WHERE id = %s\" % uid\n",
        1,
        "q = \"SELECT * FROM t WHERE id = %s\" % 3\n",
    );
    check(
        Rule::SqlConcatenation,
        Python,
        "q = \"SELECT * FROM t WHERE id = {}\".format(uid)\n",
        1,
        "q = \"Hello {}\".format(name)\n",
    );
    check(
        Rule::SqlConcatenation,
        Java,
        "class A { String q(String id) { return String.format(\"SELECT * FROM t WHERE id = %s\", id); } }",
        1,
        "class A { String q() { return \"SELECT * FROM t\" + \" WHERE id = 1\"; } }",
    );
    check(
        Rule::SqlConcatenation,
        Go,
        "package m\nfunc q(id string) string { return fmt.Sprintf(\"SELECT * FROM t WHERE id = %s\", id) }\n",
        2,
        "package m\nfunc q(id string) string { return fmt.Sprintf(\"hello %s\", id) }\n",
    );
    check(
        Rule::SqlConcatenation,
        Rust,
        "fn q(id: &str) -> String {\n    format!(\"SELECT * FROM t WHERE id = {id}\")\n}\n",
        2,
        "fn q() -> String {\n    format!(\"SELECT * FROM t WHERE id = {{1}}\")\n}\n",
    );
    check(
        Rule::SqlConcatenation,
        Php,
        "<?php\n$q = \"SELECT * FROM t WHERE id = $id\";\n",
        2,
        "<?php\n$q = 'SELECT * FROM t WHERE id = ?';\n",
    );
    check(
        Rule::SqlConcatenation,
        Ruby,
        "q = \"INSERT INTO t VALUES (#{v})\"\n",
        1,
        "q = 'INSERT INTO t VALUES (?)'\n",
    );
    check(
        Rule::SqlConcatenation,
        Csharp,
        "class A { string Q(int id) { return $\"SELECT * FROM t WHERE id = {id}\"; } }",
        1,
        "class A { string Q() { return \"SELECT * FROM t WHERE id = @id\"; } }",
    );
    let facts = TreeSitterAnalyzer::new()
        .analyze(
            Javascript,
            "q('SELECT password FROM users WHERE token = ' + t)",
        )
        .unwrap();
    assert!(!facts.findings[0].message.contains("password"));
}

#[test]
fn unsafe_code() {
    check(
        Rule::UnsafeCode,
        Language::Rust,
        "fn f(p: *const u8) -> u8 {\n    unsafe { *p }\n}\n",
        2,
        "fn f(p: &u8) -> u8 {\n    *p\n}\n",
    );
    assert_eq!(
        lines_of(
            Rule::UnsafeCode,
            Language::Rust,
            "pub unsafe fn f() {}\nunsafe impl Send for X {}\n"
        ),
        [1, 2]
    );
}

#[test]
fn unwrap_in_library() {
    let library = "pub fn parse(s: &str) -> u32 {\n    s.parse().unwrap()\n}\nfn g(x: Option<u8>) -> u8 {\n    x.expect(\"set\")\n}\n";
    assert_eq!(
        lines_of(Rule::UnwrapInLibrary, Language::Rust, library),
        [2, 5]
    );
    let allowed = "fn main() {\n    run().unwrap();\n}\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {\n        f().unwrap();\n    }\n}\n#[test]\nfn u() { g().expect(\"x\"); }\nfn v() -> u8 { w().unwrap_or(0) }\n";
    assert!(lines_of(Rule::UnwrapInLibrary, Language::Rust, allowed).is_empty());
}

#[test]
fn nested_loops() {
    use Language::*;
    check(
        Rule::NestedLoops,
        Javascript,
        "for (const a of xs) {\n  for (const b of ys) { f(a, b); }\n}\n",
        2,
        "for (const a of xs) { f(a); }\nfor (const b of ys) { g(b); }\n",
    );
    check(
        Rule::NestedLoops,
        Python,
        "for a in xs:\n    while b:\n        f(a)\n",
        2,
        "for a in xs:\n    f(a)\nfor b in ys:\n    g(b)\n",
    );
    check(
        Rule::NestedLoops,
        Go,
        "package m\nfunc f() {\n\tfor a := range xs {\n\t\tfor b := range ys {\n\t\t\tg(a, b)\n\t\t}\n\t}\n}\n",
        4,
        "package m\nfunc f() {\n\tfor a := range xs {\n\t\tg(a)\n\t}\n}\n",
    );
    check(
        Rule::NestedLoops,
        Rust,
        "fn f() {\n    for a in xs {\n        loop { break; }\n    }\n}\n",
        3,
        "fn f() {\n    for a in xs { g(a); }\n}\n",
    );
    let facts = TreeSitterAnalyzer::new()
        .analyze(Ruby, "for a in xs\n  for b in ys\n    f\n  end\nend\n")
        .unwrap();
    assert!(facts.findings[0].message.contains("O(n^2)"));
}

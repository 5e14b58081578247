//! Test skeletons from the public functions: what `test-generation` answers when no model does.
//!
//! One test per public function with a body (an interface, trait or abstract method has no code
//! to call until something implements it), named in the framework's convention and written in its syntax,
//! whose body lists what to arrange (the real parameters), what to call, and which branch points
//! to cover, and is marked the way the framework marks pending work, so that a skeleton never
//! passes by accident:
//!
//! | framework | pending marker |
//! |-----------|----------------|
//! | vitest, jest, mocha | `it.skip(...)` (reported as skipped / pending) |
//! | pytest | `pytest.skip(...)` |
//! | unittest | `@unittest.skip(...)` |
//! | rspec | `skip '...'` |
//! | junit | `@Disabled(...)`, and `fail(...)` in the body |
//! | testng | `throw new SkipException(...)` |
//! | go-test | `t.Skip(...)` |
//! | cargo-test | `#[ignore = "..."]`, and `todo!(...)` in the body |
//! | xunit | `[Fact(Skip = "...")]` |
//! | phpunit | `$this->markTestIncomplete(...)` |

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::agents::grounding::{clip, one_line};
use crate::agents::test_generation::{Framework, GeneratedTest, TestCaseKind};
use crate::facts::{CodeFacts, FunctionFacts, Visibility};

/// Confidence of skeletons: the names and parameters are right, the assertions are not written.
pub(crate) const CONFIDENCE: f64 = 0.3;

/// What each skeleton says it is, and the reason its pending marker gives.
const MARKER: &str = "skeleton: complete me";

/// At most this many branch points are listed in one skeleton's comments.
const MAX_BRANCHES_LISTED: usize = 16;

/// At most this many skeletons (about 1 KiB each) in one answer, and as many functions listed as
/// not called directly: a 256 KiB input of one-line functions has thousands, whose answer
/// would outgrow a gRPC message.
pub(crate) const MAX_SKELETONS: usize = 200;

/// The skeletons (the first [`MAX_SKELETONS`] public functions), the import lines they need,
/// and how many public functions got none because of the bound.
pub(crate) fn skeletons(
    framework: Framework,
    facts: &CodeFacts,
) -> (Vec<GeneratedTest>, Vec<String>, usize) {
    let mut names = UniqueNames::default();
    let callable = || facts.public_functions().filter(|f| !f.is_abstract);
    let left_out = callable().count().saturating_sub(MAX_SKELETONS);
    let tests = callable()
        .take(MAX_SKELETONS)
        .map(|function| {
            let name = names.claim(test_name(framework, function));
            let code = code(framework, &name, function);
            GeneratedTest {
                description: Some(format!(
                    "Skeleton to complete for `{}` (lines {}-{}): pending ({}) until it asserts something; remove the marker then.",
                    clip(&function.qualified_name()),
                    function.start_line,
                    function.end_line,
                    pending_marker(framework)
                )),
                name,
                code,
                kind: TestCaseKind::Positive,
            }
        })
        .collect();
    (tests, imports(framework), left_out)
}

/// Functions no skeleton calls directly, for `coverage.uncovered_paths`.
pub(crate) fn not_called_directly(facts: &CodeFacts) -> Vec<String> {
    facts
        .functions
        .iter()
        .filter(|f| !f.is_abstract && !matches!(f.visibility, Visibility::Public))
        .take(MAX_SKELETONS)
        .map(|f| {
            format!(
                "{} (lines {}-{}): not public, reached only through the public functions",
                f.qualified_name(),
                f.start_line,
                f.end_line
            )
        })
        .collect()
}

/// The name of a skeleton, as the framework shows it.
fn test_name(framework: Framework, function: &FunctionFacts) -> String {
    let parts: Vec<&str> = function
        .container
        .iter()
        .map(String::as_str)
        .chain([function.name.as_str()])
        .collect();
    let pascal: String = parts.iter().map(|p| pascal_case(p)).collect();
    let snake = parts
        .iter()
        .map(|p| snake_case(p))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let pascal = if pascal.is_empty() {
        "Function".to_owned()
    } else {
        pascal
    };
    let snake = if snake.is_empty() {
        "function".to_owned()
    } else {
        snake
    };
    match framework {
        Framework::Vitest | Framework::Jest | Framework::Mocha | Framework::Rspec => {
            format!("{} works", subject(framework, function))
        }
        Framework::Pytest | Framework::Unittest => format!("test_{snake}"),
        Framework::CargoTest => format!("{snake}_works"),
        Framework::Junit | Framework::Testng | Framework::Phpunit => format!("test{pascal}"),
        Framework::GoTest => match &function.container {
            Some(container) => format!(
                "Test{}_{}",
                pascal_case(container),
                pascal_case(&function.name)
            ),
            None => format!("Test{pascal}"),
        },
        Framework::Xunit => format!("{pascal}_Works"),
    }
}

/// What a `describe` names: `add`, `Stack#push` (Ruby), `Stack.push`.
fn subject(framework: Framework, function: &FunctionFacts) -> String {
    let name = one_line(&function.name);
    let name = if name.is_empty() {
        "function".to_owned()
    } else {
        name
    };
    match (&function.container, framework) {
        (Some(container), Framework::Rspec) => format!("{}#{name}", one_line(container)),
        (Some(container), _) => format!("{}.{name}", one_line(container)),
        (None, _) => name,
    }
}

/// Test names handed out so far. Linear in the names: a file of thousands of functions with one
/// name used to cost a scan of every name taken for every suffix tried (cubic, minutes of CPU
/// after the last await, where no deadline or cancellation reaches).
#[derive(Default)]
struct UniqueNames {
    taken: HashSet<String>,
    /// The next suffix to try for a name, so a name's k-th use does not try the k-1 before it.
    next_suffix: HashMap<String, usize>,
}

impl UniqueNames {
    /// `name` made unique among those taken, by a numeric suffix in the name's own style.
    fn claim(&mut self, name: String) -> String {
        let mut candidate = name.clone();
        let mut n = self.next_suffix.get(&name).copied().unwrap_or(2);
        while self.taken.contains(&candidate) {
            candidate = if name.contains(' ') {
                format!("{name} ({n})")
            } else {
                format!("{name}_{n}")
            };
            n += 1;
        }
        self.next_suffix.insert(name, n);
        self.taken.insert(candidate.clone());
        candidate
    }
}

/// The comment lines every skeleton carries: what to arrange, call and cover.
fn guide(function: &FunctionFacts) -> Vec<String> {
    let mut lines = vec![format!(
        "Skeleton: complete me. Tests `{}` (lines {}-{}).",
        clip(&function.signature),
        function.start_line,
        function.end_line
    )];
    if function.parameters.is_empty() {
        lines.push("Arrange: it takes no parameters.".to_owned());
    } else {
        let parameters: Vec<String> = function
            .parameters
            .iter()
            .map(|p| {
                let mut text = clip(&p.name);
                match (&p.type_name, p.optional) {
                    (Some(t), true) => {
                        let _ = write!(text, " ({}, optional)", clip(t));
                    }
                    (Some(t), false) => {
                        let _ = write!(text, " ({})", clip(t));
                    }
                    (None, true) => text.push_str(" (optional)"),
                    (None, false) => {}
                }
                text
            })
            .collect();
        lines.push(format!("Arrange: {}.", parameters.join(", ")));
    }
    let arguments: Vec<String> = function.parameters.iter().map(|p| clip(&p.name)).collect();
    lines.push(format!(
        "Act: call {}({}){}.",
        clip(&function.qualified_name()),
        arguments.join(", "),
        if function.is_async {
            " and await it"
        } else {
            ""
        }
    ));
    if let Some(returns) = &function.return_type {
        lines.push(format!("Assert: the {} it returns.", clip(returns)));
    } else {
        lines.push("Assert: the result or the effect you expect.".to_owned());
    }
    if !function.branches.is_empty() {
        let shown: Vec<String> = function
            .branches
            .iter()
            .take(MAX_BRANCHES_LISTED)
            .map(|b| format!("{} at line {}", clip(&b.kind), b.line))
            .collect();
        let more = function.branches.len().saturating_sub(MAX_BRANCHES_LISTED);
        let mut line = format!("Branches to cover: {}", shown.join(", "));
        if more > 0 {
            let _ = write!(line, " and {more} more");
        }
        line.push('.');
        lines.push(line);
    }
    lines
}

/// `lines` as line comments with `prefix` (`// ` or `# `) and `indent`.
fn comments(lines: &[String], indent: &str, prefix: &str) -> String {
    lines
        .iter()
        .map(|line| format!("{indent}{prefix}{line}\n"))
        .collect()
}

/// The skeleton's code in the framework's syntax.
fn code(framework: Framework, name: &str, function: &FunctionFacts) -> String {
    let guide = guide(function);
    match framework {
        Framework::Vitest | Framework::Jest | Framework::Mocha => format!(
            "describe('{}', () => {{\n  it.skip('works', () => {{\n{}  }});\n}});\n",
            js_string(&subject(framework, function)),
            comments(&guide, "    ", "// ")
        ),
        Framework::Pytest => format!(
            "def {name}():\n{}    pytest.skip(\"{MARKER}\")\n",
            comments(&guide, "    ", "# ")
        ),
        Framework::Unittest => format!(
            "class {}(unittest.TestCase):\n    @unittest.skip(\"{MARKER}\")\n    def {name}(self):\n{}        pass\n",
            pascal_or(name, "TestFunction"),
            comments(&guide, "        ", "# ")
        ),
        Framework::Rspec => format!(
            "RSpec.describe '{}' do\n  it 'works' do\n{}    skip '{MARKER}'\n  end\nend\n",
            ruby_string(&subject(framework, function)),
            comments(&guide, "    ", "# ")
        ),
        Framework::Junit => format!(
            "@Test\n@Disabled(\"{MARKER}\")\nvoid {name}() {{\n{}    fail(\"{MARKER}\");\n}}\n",
            comments(&guide, "    ", "// ")
        ),
        Framework::Testng => format!(
            "@Test\npublic void {name}() {{\n{}    throw new SkipException(\"{MARKER}\");\n}}\n",
            comments(&guide, "    ", "// ")
        ),
        Framework::GoTest => format!(
            "func {name}(t *testing.T) {{\n{}\tt.Skip(\"{MARKER}\")\n}}\n",
            comments(&guide, "\t", "// ")
        ),
        Framework::CargoTest => format!(
            "#[test]\n#[ignore = \"{MARKER}\"]\nfn {name}() {{\n{}    todo!(\"{MARKER}\");\n}}\n",
            comments(&guide, "    ", "// ")
        ),
        Framework::Xunit => format!(
            "[Fact(Skip = \"{MARKER}\")]\npublic void {name}()\n{{\n{}}}\n",
            comments(&guide, "    ", "// ")
        ),
        Framework::Phpunit => format!(
            "public function {name}(): void\n{{\n{}    $this->markTestIncomplete('{MARKER}');\n}}\n",
            comments(&guide, "    ", "// ")
        ),
    }
}

/// How the framework's skeletons are marked pending, for descriptions.
fn pending_marker(framework: Framework) -> &'static str {
    match framework {
        Framework::Vitest | Framework::Jest | Framework::Mocha => "it.skip",
        Framework::Pytest => "pytest.skip",
        Framework::Unittest => "@unittest.skip",
        Framework::Rspec => "skip",
        Framework::Junit => "@Disabled and fail",
        Framework::Testng => "SkipException",
        Framework::GoTest => "t.Skip",
        Framework::CargoTest => "#[ignore] and todo!",
        Framework::Xunit => "Fact(Skip)",
        Framework::Phpunit => "markTestIncomplete",
    }
}

/// The import lines the skeletons need (the code under test is left for the user to import:
/// its module path is not in the facts).
fn imports(framework: Framework) -> Vec<String> {
    let lines: &[&str] = match framework {
        Framework::Vitest => &["import { describe, it } from 'vitest';"],
        // Jest, Mocha and RSpec provide `describe` and `it` as globals.
        Framework::Jest | Framework::Mocha | Framework::Rspec => &[],
        Framework::Pytest => &["import pytest"],
        Framework::Unittest => &["import unittest"],
        Framework::Junit => &[
            "import org.junit.jupiter.api.Disabled;",
            "import org.junit.jupiter.api.Test;",
            "import static org.junit.jupiter.api.Assertions.fail;",
        ],
        Framework::Testng => &[
            "import org.testng.SkipException;",
            "import org.testng.annotations.Test;",
        ],
        Framework::GoTest => &["import \"testing\""],
        Framework::CargoTest => &["use super::*;"],
        Framework::Xunit => &["using Xunit;"],
        Framework::Phpunit => &["use PHPUnit\\Framework\\TestCase;"],
    };
    lines.iter().map(|l| (*l).to_owned()).collect()
}

/// `text` inside a single-quoted JavaScript string.
fn js_string(text: &str) -> String {
    one_line(text).replace('\\', "\\\\").replace('\'', "\\'")
}

/// `text` inside a single-quoted Ruby string.
fn ruby_string(text: &str) -> String {
    js_string(text)
}

/// `name` in PascalCase, or `fallback` when nothing of it is an identifier.
fn pascal_or(name: &str, fallback: &str) -> String {
    let pascal = pascal_case(name);
    if pascal.is_empty() {
        fallback.to_owned()
    } else {
        pascal
    }
}

/// `parse_http` and `parseHttp` become `ParseHttp`; anything not alphanumeric separates words.
fn pascal_case(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// `parseHTTPRequest` becomes `parse_http_request`; anything not alphanumeric separates words.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let previous = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            let boundary = previous.is_ascii_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out.trim_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_each_convention() {
        assert_eq!(snake_case("parseHTTPRequest"), "parse_http_request");
        assert_eq!(snake_case("__init__"), "init");
        assert_eq!(snake_case("getX2Value"), "get_x2_value");
        assert_eq!(pascal_case("parse_http"), "ParseHttp");
        assert_eq!(pascal_case("$"), "");
        assert_eq!(pascal_or("$", "Function"), "Function");
        assert_eq!(js_string("it's a \\ test\n"), "it\\'s a \\\\ test");
        let mut taken = UniqueNames::default();
        assert_eq!(taken.claim("test_a".into()), "test_a");
        assert_eq!(taken.claim("test_a".into()), "test_a_2");
        assert_eq!(taken.claim("a works".into()), "a works");
        assert_eq!(taken.claim("a works".into()), "a works (2)");
        // A suffixed name taken by a function of that name is skipped, not reused.
        assert_eq!(taken.claim("test_b_2".into()), "test_b_2");
        assert_eq!(taken.claim("test_b".into()), "test_b");
        assert_eq!(taken.claim("test_b".into()), "test_b_3");
        let anonymous = FunctionFacts::default();
        assert_eq!(test_name(Framework::Pytest, &anonymous), "test_function");
        assert_eq!(test_name(Framework::Junit, &anonymous), "testFunction");
        assert_eq!(test_name(Framework::Jest, &anonymous), "function works");
    }

    /// Thousands of public functions with one name (a 256 KiB file of `def a(): 0` lines):
    /// the answer is bounded, and naming stays linear. Each name used to be checked against
    /// every name taken for every suffix tried: about n^3/3 comparisons, minutes of CPU.
    #[test]
    fn thousands_of_same_named_functions_get_bounded_unique_skeletons() {
        let function = FunctionFacts {
            name: "a".into(),
            visibility: Visibility::Public,
            ..FunctionFacts::default()
        };
        let private = FunctionFacts {
            visibility: Visibility::Private,
            ..function.clone()
        };
        let facts = CodeFacts {
            functions: [vec![function; 5_000], vec![private; 5_000]].concat(),
            ..CodeFacts::default()
        };
        let (tests, _, left_out) = skeletons(Framework::Pytest, &facts);
        assert_eq!(
            (tests.len(), left_out),
            (MAX_SKELETONS, 5_000 - MAX_SKELETONS)
        );
        let names: HashSet<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), MAX_SKELETONS);
        assert_eq!(
            tests[MAX_SKELETONS - 1].name,
            format!("test_a_{MAX_SKELETONS}")
        );
        assert_eq!(not_called_directly(&facts).len(), MAX_SKELETONS);

        let mut taken = UniqueNames::default();
        let last = (0..20_000).map(|_| taken.claim("test_a".into())).last();
        assert_eq!(last.as_deref(), Some("test_a_20000"));
    }
}

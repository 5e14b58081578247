//! Rust-only rules: `unsafe` code, and `unwrap`/`expect` outside tests and `main`.

use agents_core::facts::{Finding, Rule};
use tree_sitter::Node;

use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{line, text};
use crate::walk::Frame;

pub(super) fn check(
    node: Node<'_>,
    frame: &Frame<'_>,
    call: Option<&Call<'_, '_>>,
    src: &str,
    findings: &mut Vec<Finding>,
) {
    let at = line(node.start_position());
    let unsafe_what = match node.kind_name() {
        "unsafe_block" => Some("An `unsafe` block"),
        "function_item" | "function_signature_item" if has_unsafe(node, src) => {
            Some("An `unsafe fn`")
        }
        "impl_item" if has_unsafe(node, src) => Some("An `unsafe impl`"),
        "trait_item" if has_unsafe(node, src) => Some("An `unsafe trait`"),
        _ => None,
    };
    if let Some(what) = unsafe_what {
        findings.push(Finding::new(
            Rule::UnsafeCode,
            at,
            format!("{what}: the compiler cannot check memory safety here; state the invariants in a `// SAFETY:` comment, or use a safe API."),
        ));
        return;
    }
    if frame.allow_unwrap {
        return;
    }
    let Some(call) = call else {
        return;
    };
    let is_method = node
        .child_by_field("function")
        .is_some_and(|f| f.kind_name() == "field_expression");
    if is_method && matches!(call.name, "unwrap" | "expect") {
        findings.push(Finding::new(
            Rule::UnwrapInLibrary,
            at,
            format!("`.{}()` panics on `None`/`Err`; in library code return the error with `?` or handle the case.", call.name),
        ));
    }
}

/// Whether the declaration itself (not its body) carries `unsafe`.
fn has_unsafe(node: Node<'_>, src: &str) -> bool {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        match child.kind_name() {
            "unsafe" => return true,
            "function_modifiers" if text(child, src).split_whitespace().any(|w| w == "unsafe") => {
                return true;
            }
            "block" | "declaration_list" | "body" => return false,
            _ => {}
        }
    }
    false
}

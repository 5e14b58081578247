//! C#.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{collapse, field_text, leading_doc, line, named_children, text};

/// C#.
pub(super) struct CSharp;

/// The modifier words of the declaration at `node` (`public`, `abstract`, ...).
fn modifiers<'s>(node: Node<'_>, src: &'s str) -> Vec<&'s str> {
    named_children(node)
        .into_iter()
        .filter(|c| c.kind_name() == "modifier")
        .map(|m| text(m, src))
        .collect()
}

const TYPES: &[(&str, &str)] = &[
    ("class_declaration", "class"),
    ("struct_declaration", "struct"),
    ("interface_declaration", "interface"),
    ("enum_declaration", "enum"),
    ("record_declaration", "record"),
    ("record_struct_declaration", "record"),
];

impl Lang for CSharp {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_c_sharp::LANGUAGE.into()
    }

    // --- declarations ---

    fn function<'t>(
        &self,
        node: Node<'t>,
        parent: Option<Node<'t>>,
        grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        match node.kind_name() {
            "method_declaration"
            | "constructor_declaration"
            | "destructor_declaration"
            | "local_function_statement"
            | "operator_declaration" => {
                let name = field_text(node, "name", src)
                    .unwrap_or("operator")
                    .to_owned();
                if self.body(node).is_some() {
                    return Some(FnDecl::plain(name, node));
                }
                // Without a body: an interface or `abstract` method. `extern` and `partial`
                // declarations have their body elsewhere and are not listed.
                let in_interface = node.kind_name() == "method_declaration"
                    && parent.is_some_and(|p| p.kind_name() == "declaration_list")
                    && grandparent.is_some_and(|g| g.kind_name() == "interface_declaration");
                let is_abstract = modifiers(node, src).contains(&"abstract");
                (in_interface || is_abstract).then(|| FnDecl::without_body(name, node))
            }
            _ => None,
        }
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        let kind = TYPES.iter().find(|(k, _)| *k == node.kind_name())?.1;
        Some((field_text(node, "name", src)?.to_owned(), kind))
    }

    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
        let Some(list) = inner.child_by_field("parameters") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut cursor = list.walk();
        let mut params_type: Option<String> = None;
        for (i, child) in list.children(&mut cursor).enumerate() {
            let field = list.field_name_for_child(u32::try_from(i).unwrap_or(u32::MAX));
            match (child.kind_name(), field) {
                ("parameter", _) => {
                    let mut inner_cursor = child.walk();
                    let optional = child
                        .children(&mut inner_cursor)
                        .any(|c| c.kind_name() == "=");
                    out.push(crate::text::parameter(
                        field_text(child, "name", src).unwrap_or_default(),
                        field_text(child, "type", src).map(collapse),
                        optional,
                    ));
                }
                // `params int[] rest` sits in the list itself.
                (_, Some("type")) => params_type = Some(collapse(text(child, src))),
                (_, Some("name")) => out.push(crate::text::parameter(
                    text(child, src),
                    params_type.take(),
                    true,
                )),
                _ => {}
            }
        }
        out
    }

    fn return_type(&self, inner: Node<'_>, src: &str) -> Option<String> {
        field_text(inner, "returns", src)
            .or_else(|| {
                (inner.kind_name() == "local_function_statement")
                    .then(|| field_text(inner, "type", src))
                    .flatten()
            })
            .map(collapse)
    }

    fn body<'t>(&self, inner: Node<'t>) -> Option<Node<'t>> {
        inner.child_by_field("body").or_else(|| {
            named_children(inner)
                .into_iter()
                .find(|c| c.kind_name() == "arrow_expression_clause")
        })
    }

    // --- doc comments ---

    fn doc(
        &self,
        decl: Node<'_>,
        _inner: Node<'_>,
        leading: &[Node<'_>],
        src: &str,
    ) -> Option<String> {
        leading_doc(
            leading,
            line(decl.start_position()),
            src,
            |c| {
                (c.starts_with("///") && !c.starts_with("////"))
                    || (c.starts_with("/**") && !c.starts_with("/**/"))
            },
            |_| false,
        )
    }

    // --- decision points ---

    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        field: Option<&str>,
        _src: &str,
    ) -> Option<Flow> {
        let in_if_else = parent.kind_name() == "if_statement" && field == Some("alternative");
        Some(match node.kind_name() {
            "if_statement" if in_if_else => Flow::ElseIf,
            "if_statement" => Flow::If,
            _ if in_if_else => Flow::Else,
            "for_statement" | "foreach_statement" => Flow::Loop("for"),
            "while_statement" => Flow::Loop("while"),
            "do_statement" => Flow::Loop("do"),
            "switch_statement" | "switch_expression" => Flow::Switch,
            "switch_section" => {
                let mut cursor = node.walk();
                if node
                    .children(&mut cursor)
                    .any(|c| c.kind_name() == "default")
                {
                    return None;
                }
                Flow::Case("case")
            }
            "switch_expression_arm" => {
                if node
                    .named_child(0)
                    .is_some_and(|p| p.kind_name() == "discard")
                {
                    return None;
                }
                Flow::Case("case")
            }
            "catch_clause" => Flow::Catch,
            "conditional_expression" => Flow::Ternary,
            "binary_expression" => {
                let op = node.child_by_field("operator")?.kind_name();
                if !matches!(op, "&&" | "||" | "??") {
                    return None;
                }
                Flow::Logical(op)
            }
            "lambda_expression" | "anonymous_method_expression" => Flow::Lambda,
            "goto_statement" => Flow::Jump,
            _ => return None,
        })
    }

    // --- visibility ---

    fn visibility(&self, node: Node<'_>, _name: &str, scope: Scope, src: &str) -> Visibility {
        if scope.in_function {
            return Visibility::Private;
        }
        let words = modifiers(node, src);
        let is_type = TYPES.iter().any(|(k, _)| *k == node.kind_name());
        if words.contains(&"public") {
            Visibility::Public
        } else if words.contains(&"protected") {
            Visibility::Protected
        } else if words.contains(&"internal") {
            Visibility::Internal
        } else if words.contains(&"private") {
            Visibility::Private
        } else if scope.container == Some("interface") {
            Visibility::Public
        } else if is_type && scope.container.is_none() {
            // Top-level types default to internal, members (nested types too) to private.
            Visibility::Internal
        } else {
            Visibility::Private
        }
    }

    // --- rules ---

    fn catch_is_empty(&self, node: Node<'_>, _src: &str) -> bool {
        node.child_by_field("body")
            .is_some_and(|b| b.named_child_count() == 0)
    }

    fn strings(&self) -> &'static [&'static str] {
        &[
            "string_literal",
            "verbatim_string_literal",
            "raw_string_literal",
            "interpolated_string_expression",
        ]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, _src: &str) -> Option<SinkArgs> {
        match (call.object, call.name) {
            (Some(o), "Start") if o.ends_with("Process") => Some(SinkArgs::First),
            (Some(o), "EvaluateAsync" | "RunAsync") if o.ends_with("CSharpScript") => {
                Some(SinkArgs::First)
            }
            _ => None,
        }
    }
}

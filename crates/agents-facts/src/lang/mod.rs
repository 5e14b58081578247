//! What differs between languages: node kinds, and the few rules that need more than a kind.
//!
//! Each language module answers four questions about a node (what it declares, which comment
//! documents it, whether it is a decision point, who may use it) plus the names of its dangerous
//! calls. Everything that is the same for all languages (walking, counting, the rules
//! themselves) lives outside this folder and asks through [`Lang`].

use agents_core::Language;
use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use crate::calls::Call;
use crate::names::NodeNames;

#[cfg(feature = "csharp")]
mod csharp;
#[cfg(feature = "go")]
mod go;
#[cfg(feature = "java")]
mod java;
#[cfg(any(feature = "javascript", feature = "typescript"))]
mod javascript;
#[cfg(feature = "php")]
mod php;
#[cfg(feature = "python")]
mod python;
#[cfg(feature = "ruby")]
mod ruby;
#[cfg(feature = "rust")]
mod rust;
#[cfg(feature = "typescript")]
mod typescript;

/// The language support for `language`, or `None` when its feature is off.
pub(crate) fn lookup(language: Language) -> Option<&'static dyn Lang> {
    match language {
        #[cfg(feature = "javascript")]
        Language::Javascript => Some(&javascript::JavaScript),
        #[cfg(feature = "typescript")]
        Language::Typescript => Some(&typescript::TypeScript),
        #[cfg(feature = "python")]
        Language::Python => Some(&python::Python),
        #[cfg(feature = "java")]
        Language::Java => Some(&java::Java),
        #[cfg(feature = "go")]
        Language::Go => Some(&go::Go),
        #[cfg(feature = "rust")]
        Language::Rust => Some(&rust::Rust),
        #[cfg(feature = "csharp")]
        Language::Csharp => Some(&csharp::CSharp),
        #[cfg(feature = "php")]
        Language::Php => Some(&php::Php),
        #[cfg(feature = "ruby")]
        Language::Ruby => Some(&ruby::Ruby),
        _ => None,
    }
}

/// How a node changes control flow, in the terms both complexity measures need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// `if`, `unless`, a statement modifier `if`: a decision that nests.
    If,
    /// `else if`/`elif`/`elsif`: a decision at the level of its `if`.
    ElseIf,
    /// A plain `else`: no decision, but a break in linear flow (cognitive +1).
    Else,
    /// `for`, `while`, `do`, `loop`, `until`: a decision that nests.
    Loop(&'static str),
    /// `switch`/`match`/`case`/`select`: one cognitive increment for the whole statement.
    Switch,
    /// A non-default `case`/arm/`when`: one cyclomatic decision each.
    Case(&'static str),
    /// `catch`/`except`/`rescue`: a decision that nests.
    Catch,
    /// `?:` and conditional expressions: a decision that nests.
    Ternary,
    /// `&&`, `||`, `??`, `and`, `or`: one decision each; cognitive +1 per run of one operator.
    Logical(&'static str),
    /// A decision counted by cyclomatic complexity only (comprehension `for`/`if` clauses).
    Decision(&'static str),
    /// `goto`, `break label`, `continue label`: cognitive +1.
    Jump,
    /// A lambda, closure or block: nesting without a decision.
    Lambda,
}

/// A function or method found at a node.
#[derive(Debug, Clone)]
pub(crate) struct FnDecl<'t> {
    /// Its name.
    pub(crate) name: String,
    /// The node its lines, signature and doc comment start from (for `const f = () => ..` the
    /// declaration, not the arrow function).
    pub(crate) outer: Node<'t>,
    /// The node with the parameters and the body.
    pub(crate) inner: Node<'t>,
    /// The container when the declaration names it itself (a Go receiver).
    pub(crate) container: Option<String>,
    /// Declared without a body: an interface, trait or abstract method (or a TypeScript
    /// overload signature). Its signature is the whole declaration.
    pub(crate) is_abstract: bool,
}

impl<'t> FnDecl<'t> {
    /// A function whose declaration is the node itself.
    pub(crate) fn plain(name: String, node: Node<'t>) -> Self {
        Self {
            name,
            outer: node,
            inner: node,
            container: None,
            is_abstract: false,
        }
    }

    /// A method declared without a body at the node itself.
    pub(crate) fn without_body(name: String, node: Node<'t>) -> Self {
        Self {
            is_abstract: true,
            ..Self::plain(name, node)
        }
    }
}

/// Where a declaration sits, for the visibility rules.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scope {
    /// The kind of the innermost container (`class`, `interface`, `trait`, `impl`,
    /// `trait impl`, `module`, ...), `None` at the top level.
    pub(crate) container: Option<&'static str>,
    /// The visibility of the innermost container when it is a type (not an `impl` block).
    pub(crate) container_visibility: Option<Visibility>,
    /// Inside a function body: not reachable from outside.
    pub(crate) in_function: bool,
    /// The visibility set by an earlier `private`/`protected`/`public` line (Ruby).
    pub(crate) section: Option<Visibility>,
}

/// Which arguments of a dangerous call must be literals for the call to be safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkArgs {
    /// The first positional argument (the code or command line).
    First,
    /// Any positional argument.
    Any,
}

/// One language's node kinds and rules. Implementations are unit structs in this folder.
pub(crate) trait Lang: Sync {
    /// The grammar; `source` lets a language pick a dialect (TSX, PHP without `<?php`).
    fn grammar(&self, source: &str) -> tree_sitter::Language;
    /// Another dialect worth a second parse when the first left syntax errors.
    fn fallback_grammar(&self, _source: &str) -> Option<tree_sitter::Language> {
        None
    }

    // --- declarations ---

    /// The function or method declared at `node`, with a body or (interface, trait and
    /// abstract methods) without one; `parent` is its parent, `grandparent` the one above.
    fn function<'t>(
        &self,
        node: Node<'t>,
        parent: Option<Node<'t>>,
        grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>>;
    /// The type declared at `node`: its name and kind (`class`, `struct`, ...).
    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)>;
    /// A container that is not a type (a Rust `impl` block): its name and kind.
    fn container(&self, _node: Node<'_>, _src: &str) -> Option<(String, &'static str)> {
        None
    }
    /// The parameters of a function's inner node, without receivers.
    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts>;
    /// The declared return type.
    fn return_type(&self, _inner: Node<'_>, _src: &str) -> Option<String> {
        None
    }
    /// The body, where the signature ends.
    fn body<'t>(&self, inner: Node<'t>) -> Option<Node<'t>> {
        inner.child_by_field("body")
    }
    /// Kinds whose first declaration inherits their leading comments (`export_statement`).
    fn wrappers(&self) -> &'static [&'static str] {
        &[]
    }

    // --- doc comments ---

    /// Whether `node` belongs to the run of comments and attributes before a declaration.
    fn is_trivia(&self, node: Node<'_>) -> bool {
        node.is_comment()
    }
    /// The doc comment of a declaration, from the comments and attributes right before it
    /// (`leading`, in source order) or from its body (docstrings).
    fn doc(
        &self,
        decl: Node<'_>,
        inner: Node<'_>,
        leading: &[Node<'_>],
        src: &str,
    ) -> Option<String>;

    // --- decision points ---

    /// How `node` changes control flow; `field` is its field name in `parent`.
    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        field: Option<&str>,
        src: &str,
    ) -> Option<Flow>;

    // --- visibility ---

    /// Who can use the declaration at `node` (a function's outer node or a type).
    fn visibility(&self, node: Node<'_>, name: &str, scope: Scope, src: &str) -> Visibility;
    /// The visibility a bare `private`/`public` line sets for the declarations after it.
    fn section_marker(&self, _node: Node<'_>, _src: &str) -> Option<Visibility> {
        None
    }

    // --- rules ---

    /// Whether a node that [`Lang::flow`] called [`Flow::Catch`] has an empty body.
    fn catch_is_empty(&self, node: Node<'_>, src: &str) -> bool;
    /// String literal kinds (with or without interpolation).
    fn strings(&self) -> &'static [&'static str];
    /// Binary operators that concatenate strings.
    fn concat_ops(&self) -> &'static [&'static str] {
        &["+"]
    }
    /// Whether `call` runs code or a shell command, and which arguments must be literals.
    fn exec_sink(&self, call: &Call<'_, '_>, src: &str) -> Option<SinkArgs>;
    /// Literal kinds that run a shell command themselves (Ruby and PHP backticks).
    fn shell_literals(&self) -> &'static [&'static str] {
        &[]
    }
    /// Whether `node` starts code where `unwrap` is fine (Rust tests and `main`).
    fn allows_unwrap(&self, _node: Node<'_>, _leading: &[Node<'_>], _src: &str) -> bool {
        false
    }
    /// Whether this is Rust (the `unsafe` and `unwrap` rules apply).
    fn is_rust(&self) -> bool {
        false
    }
}

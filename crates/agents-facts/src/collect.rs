//! The visitor that turns nodes into facts: declarations, complexity, tokens, syntax errors
//! and rule findings, each delegated to the module that owns it.

use agents_core::facts::{Finding, FunctionFacts, SyntaxIssue, TypeFacts, Visibility};
use tree_sitter::Node;

use crate::complexity;
use crate::halstead::Halstead;
use crate::lang::{Flow, Lang, Scope};
use crate::names::NodeNames;
use crate::rules;
use crate::syntax;
use crate::text::{self, line};
use crate::walk::{Frame, Visitor};

/// Everything gathered in one walk.
pub(crate) struct Collector<'s> {
    pub(crate) lang: &'static dyn Lang,
    pub(crate) src: &'s str,
    pub(crate) functions: Vec<FunctionFacts>,
    pub(crate) types: Vec<TypeFacts>,
    pub(crate) syntax_errors: Vec<SyntaxIssue>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) halstead: Halstead<'s>,
    /// Containers (types and impl blocks): name, kind, and visibility when it is a type.
    containers: Vec<(String, &'static str, Option<Visibility>)>,
}

impl<'s> Collector<'s> {
    pub(crate) fn new(lang: &'static dyn Lang, src: &'s str) -> Self {
        Self {
            lang,
            src,
            functions: Vec::new(),
            types: Vec::new(),
            syntax_errors: Vec::new(),
            findings: Vec::new(),
            halstead: Halstead::for_source(src.len()),
            containers: Vec::new(),
        }
    }

    fn scope(&self, parent: Option<&Frame<'_>>) -> Scope {
        let container = parent
            .and_then(|p| p.container)
            .and_then(|i| self.containers.get(i));
        Scope {
            container: container.map(|(_, kind, _)| *kind),
            container_visibility: container.and_then(|(_, _, visibility)| *visibility),
            in_function: parent.is_some_and(|p| p.in_function),
            section: parent.and_then(|p| p.section),
        }
    }

    fn declare_type<'t>(
        &mut self,
        frame: &mut Frame<'t>,
        ancestors: &[Frame<'t>],
        lead: &[Node<'t>],
    ) {
        let node = frame.node;
        let declared = self.lang.type_decl(node, self.src);
        let is_type = declared.is_some();
        let Some((name, kind)) = declared.or_else(|| self.lang.container(node, self.src)) else {
            return;
        };
        let mut visibility = None;
        if is_type {
            let scope = self.scope(ancestors.last());
            // The contract's structs are non-exhaustive: built field by field.
            let mut facts = TypeFacts::default();
            facts.visibility = self.lang.visibility(node, &name, scope, self.src);
            visibility = Some(facts.visibility);
            facts.name = name.clone();
            facts.kind = kind.to_owned();
            facts.start_line = line(node.start_position());
            facts.end_line = text::last_line(node);
            facts.doc = self.lang.doc(node, node, lead, self.src);
            self.types.push(facts);
        }
        self.containers.push((name, kind, visibility));
        frame.container = Some(self.containers.len() - 1);
    }

    /// Registers the function at `frame`, if there is one; true when there was.
    fn declare_function<'t>(
        &mut self,
        frame: &mut Frame<'t>,
        ancestors: &[Frame<'t>],
        trivia: &[Node<'t>],
    ) -> bool {
        let parent = ancestors.last();
        let grandparent = ancestors
            .len()
            .checked_sub(2)
            .and_then(|i| ancestors.get(i));
        let Some(decl) = self.lang.function(
            frame.node,
            parent.map(|p| p.node),
            grandparent.map(|g| g.node),
            self.src,
        ) else {
            return false;
        };
        // The outer node may be an ancestor (`const f = () => ..`): its frame has the comments,
        // and its parent decides the scope.
        let outer_index = ancestors
            .iter()
            .rposition(|a| a.node.id() == decl.outer.id());
        let lead = outer_index
            .and_then(|i| ancestors.get(i))
            .map_or(frame.lead, |a| a.lead);
        let leading = trivia.get(lead.0..lead.1).unwrap_or(&[]);
        let scope_parent = match outer_index {
            Some(i) => i.checked_sub(1).and_then(|p| ancestors.get(p)),
            None => parent,
        };
        let scope = self.scope(scope_parent);
        let container = decl.container.clone().or_else(|| {
            frame
                .container
                .and_then(|i| self.containers.get(i))
                .map(|(name, _, _)| name.clone())
        });
        let body = if decl.is_abstract {
            None
        } else {
            self.lang.body(decl.inner)
        };
        let mut signature = text::signature(decl.outer, body, self.src);
        if signature.is_empty() {
            signature = decl.name.clone();
        }
        let mut facts = FunctionFacts::default();
        facts.visibility = self
            .lang
            .visibility(decl.outer, &decl.name, scope, self.src);
        facts.container = container;
        facts.signature = signature;
        facts.parameters = self.lang.parameters(decl.inner, self.src);
        facts.return_type = self.lang.return_type(decl.inner, self.src);
        facts.is_async = text::has_keyword(decl.inner, "async", self.src);
        facts.start_line = line(decl.outer.start_position());
        facts.end_line = text::last_line(decl.outer);
        facts.doc = self.lang.doc(decl.outer, decl.inner, leading, self.src);
        facts.is_abstract = decl.is_abstract;
        // Without a body there is one path and nothing to count: cyclomatic 1 (its definition's
        // minimum), cognitive and nesting 0, no branches. Consumers leave such declarations out
        // of the file's totals by the flag, not by these numbers.
        facts.cyclomatic = 1;
        facts.name = decl.name;
        self.functions.push(facts);
        frame.func = Some(self.functions.len() - 1);
        frame.level = 0;
        frame.depth = 0;
        frame.loops = 0;
        frame.in_function = true;
        true
    }
}

impl<'t, 's> Visitor<'t> for Collector<'s> {
    fn enter(
        &mut self,
        frame: &mut Frame<'t>,
        ancestors: &[Frame<'t>],
        field: Option<&str>,
        trivia: &[Node<'t>],
    ) {
        let node = frame.node;
        let is_leaf = node.child_count() == 0;
        if is_leaf {
            self.halstead.leaf(node, self.src);
        }
        syntax::check(node, frame, &mut self.syntax_errors, self.src);
        // Keywords and punctuation, and leaves (names, numbers, single-token statements such
        // as Python's `pass`): none declares a function or type, changes control flow or is a
        // call, so the questions below (each a few kind comparisons, asked of every node) have
        // nothing to find. Leaves are about half of the named nodes.
        if is_leaf || !node.is_named() {
            return;
        }
        let lead = trivia.get(frame.lead.0..frame.lead.1).unwrap_or(&[]);
        if self.lang.allows_unwrap(node, lead, self.src) {
            frame.allow_unwrap = true;
        }
        self.declare_type(frame, ancestors, lead);
        let is_function = self.declare_function(frame, ancestors, trivia);
        let parent = ancestors.last().map(|p| p.node);
        let flow = match (is_function, parent) {
            (false, Some(parent)) => self.lang.flow(node, parent, field, self.src),
            _ => None,
        };
        if let Some(flow) = flow {
            let parent_logical = ancestors.last().and_then(|p| p.logical);
            // A declaration without a body counts nothing, not even its parameters' defaults.
            let function = frame
                .func
                .and_then(|i| self.functions.get_mut(i))
                .filter(|f| !f.is_abstract);
            complexity::count(function, frame, flow, parent_logical);
            if let Flow::Loop(_) = flow {
                rules::nested_loops(frame, &mut self.findings);
                frame.loops = frame.loops.saturating_add(1);
            }
            if flow == Flow::Catch && self.lang.catch_is_empty(node, self.src) {
                rules::empty_catch(node, &mut self.findings);
            }
        }
        let parent_node = ancestors.last().map(|p| p.node);
        rules::check(
            self.lang,
            node,
            parent_node,
            frame,
            self.src,
            &mut self.findings,
        );
    }

    fn is_trivia(&self, node: Node<'t>) -> bool {
        self.lang.is_trivia(node)
    }

    fn is_wrapper(&self, node: Node<'t>) -> bool {
        self.lang.wrappers().contains(&node.kind_name())
    }

    fn section_marker(&self, node: Node<'t>) -> Option<Visibility> {
        self.lang.section_marker(node, self.src)
    }
}

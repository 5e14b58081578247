//! One pass over the syntax tree with a cursor and an explicit stack, never recursion: ten
//! thousand nested brackets must not overflow the thread's stack.
//!
//! Each node gets a [`Frame`] computed from its parent's: which function it counts towards,
//! its nesting, whether unwraps are allowed there, and the comments and attributes right
//! before it (its doc comment candidates). The [`Visitor`] does the counting.

use std::time::Instant;

use agents_core::facts::{FactsError, Visibility};
use tree_sitter::{Node, Tree};

/// Fields of a nesting structure that stay at the structure's own level: conditions and the
/// iterated collection belong to the structure, not to its body.
const KEEP_LEVEL_FIELDS: &[&str] = &[
    "condition",
    "value",
    "subject",
    "right",
    "left",
    "pattern",
    "initializer",
    "update",
    "increment",
];

/// How often (in nodes) the walk looks at the clock.
const CLOCK_EVERY: u32 = 4096;

/// What the walk knows about one node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'t> {
    /// The node.
    pub(crate) node: Node<'t>,
    /// The listed function it counts towards.
    pub(crate) func: Option<usize>,
    /// The innermost container (index into the visitor's containers).
    pub(crate) container: Option<usize>,
    /// Cognitive nesting level of this node.
    pub(crate) level: u32,
    /// Control-structure depth of this node.
    pub(crate) depth: u32,
    /// Level and depth its condition-like children keep (set by nesting structures).
    pub(crate) keep: Option<(u32, u32)>,
    /// Loops around it (since the enclosing listed function).
    pub(crate) loops: u32,
    /// Inside a function body.
    pub(crate) in_function: bool,
    /// Inside a Rust test module, test function or `main`.
    pub(crate) allow_unwrap: bool,
    /// Inside an `ERROR` node already reported.
    pub(crate) in_error: bool,
    /// The logical operator of this node, if it is one (for runs of one operator).
    pub(crate) logical: Option<&'static str>,
    /// The visibility a `private` line set for later children.
    pub(crate) section: Option<Visibility>,
    /// Its leading comments and attributes: a range of the visitor's trivia.
    pub(crate) lead: (usize, usize),
    /// Where its children's run of trivia starts.
    pub(crate) run_start: usize,
    /// Whether a child other than trivia was seen.
    pub(crate) seen_content: bool,
}

impl<'t> Frame<'t> {
    fn root(node: Node<'t>) -> Self {
        Self {
            node,
            func: None,
            container: None,
            level: 0,
            depth: 0,
            keep: None,
            loops: 0,
            in_function: false,
            allow_unwrap: false,
            in_error: false,
            logical: None,
            section: None,
            lead: (0, 0),
            run_start: 0,
            seen_content: false,
        }
    }
}

/// Reacts to each node as the walk enters it.
pub(crate) trait Visitor<'t> {
    /// Called for each node with its fresh frame (already holding the parent's state and its
    /// leading trivia), its ancestors (root first) and the trivia list; may adjust the frame
    /// its children inherit.
    fn enter(
        &mut self,
        frame: &mut Frame<'t>,
        ancestors: &[Frame<'t>],
        field: Option<&str>,
        trivia: &[Node<'t>],
    );
    /// Whether `node` is a comment or attribute (part of the run before a declaration).
    fn is_trivia(&self, node: Node<'t>) -> bool;
    /// Whether `node` is wrapper whose first declaration inherits its leading trivia.
    fn is_wrapper(&self, node: Node<'t>) -> bool;
    /// The visibility a bare `private` line sets, if `node` is one.
    fn section_marker(&self, node: Node<'t>) -> Option<Visibility>;
}

/// Walks every node of `tree` in source order, stopping with [`FactsError::TimedOut`] after
/// `deadline`.
pub(crate) fn walk<'t, V: Visitor<'t>>(
    tree: &'t Tree,
    visitor: &mut V,
    deadline: Instant,
    budget_ms: u64,
) -> Result<(), FactsError> {
    // Every node asked about until the walk returns belongs to `tree`.
    let _scope = crate::names::WalkScope::enter();
    let mut cursor = tree.walk();
    let mut trivia: Vec<Node<'t>> = Vec::new();
    let mut stack: Vec<Frame<'t>> = Vec::with_capacity(64);
    let mut root = Frame::root(tree.root_node());
    visitor.enter(&mut root, &[], None, &trivia);
    stack.push(root);
    let mut visited: u32 = 0;
    loop {
        if cursor.goto_first_child() {
            enter(&mut cursor, &mut stack, visitor, &trivia);
        } else {
            loop {
                let Some(frame) = stack.pop() else {
                    return Ok(());
                };
                leave(frame, &mut stack, visitor, &mut trivia);
                if cursor.goto_next_sibling() {
                    enter(&mut cursor, &mut stack, visitor, &trivia);
                    break;
                }
                if !cursor.goto_parent() {
                    // Pop the root.
                    if let Some(frame) = stack.pop() {
                        leave(frame, &mut stack, visitor, &mut trivia);
                    }
                    return Ok(());
                }
            }
        }
        visited = visited.wrapping_add(1);
        if visited.is_multiple_of(CLOCK_EVERY) && Instant::now() >= deadline {
            return Err(FactsError::TimedOut { budget_ms });
        }
    }
}

fn enter<'t, V: Visitor<'t>>(
    cursor: &mut tree_sitter::TreeCursor<'t>,
    stack: &mut Vec<Frame<'t>>,
    visitor: &mut V,
    trivia: &[Node<'t>],
) {
    let node = cursor.node();
    let field = crate::names::field_name(cursor);
    let Some(parent) = stack.last().copied() else {
        return;
    };
    let own_run = (parent.run_start, trivia.len());
    let lead = if own_run.0 == own_run.1 && !parent.seen_content && visitor.is_wrapper(parent.node)
    {
        parent.lead
    } else {
        own_run
    };
    let (level, depth) = match (parent.keep, field) {
        (Some(keep), Some(f)) if KEEP_LEVEL_FIELDS.contains(&f) => keep,
        _ => (parent.level, parent.depth),
    };
    let mut frame = Frame {
        node,
        level,
        depth,
        keep: None,
        logical: None,
        section: None,
        lead,
        run_start: trivia.len(),
        seen_content: false,
        ..parent
    };
    visitor.enter(&mut frame, stack, field, trivia);
    stack.push(frame);
}

fn leave<'t, V: Visitor<'t>>(
    frame: Frame<'t>,
    stack: &mut [Frame<'t>],
    visitor: &V,
    trivia: &mut Vec<Node<'t>>,
) {
    trivia.truncate(frame.run_start);
    let Some(parent) = stack.last_mut() else {
        return;
    };
    let node = frame.node;
    if !node.is_named() {
        // Keywords and punctuation neither start nor break a run of comments.
        return;
    }
    if visitor.is_trivia(node) {
        trivia.push(node);
    } else {
        trivia.truncate(parent.run_start);
        parent.seen_content = true;
    }
    if let Some(section) = visitor.section_marker(node) {
        parent.section = Some(section);
    }
}

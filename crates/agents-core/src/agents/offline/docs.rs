//! The API reference from signatures and doc comments: what `documentation` answers when no
//! model does.
//!
//! One overview section, then one section per public type and per public function, in source
//! order, each rendered in the requested format: Markdown, HTML (every code-derived string
//! escaped), reStructuredText, the language's own doc comments (`docstring`), or JSDoc. Nothing
//! is invented: descriptions are the doc comments the code has, and an item without one says so.
//! At most [`MAX_ITEMS`] items get a section; the overview says how many more were left out.

use std::fmt::Write as _;

use crate::agents::documentation::{
    DocumentationInput, DocumentationType, OutputFormat, Parameter,
};
use crate::agents::grounding::one_line;
use crate::agents::prompt::fence_for;
use crate::agents::{Language, Section};
use crate::facts::{CodeFacts, FunctionFacts, TypeFacts, Visibility};

/// Confidence of a reference built from signatures: exact about what it says, silent about
/// everything a writer would add.
pub(crate) const CONFIDENCE: f64 = 0.5;

/// Most types and functions documented: a file of thousands of one-line functions would otherwise
/// give an answer too large for the server to send.
pub(crate) const MAX_ITEMS: usize = 200;

/// The line added to a declaration without a body.
const NO_BODY: &str =
    "Declared without a body (interface, trait or abstract member): implementations provide it.";

/// What the text says of an item without a doc comment.
const UNDOCUMENTED: &str = "Undocumented: the code has no doc comment for this item.";

/// The sections of the degraded answer.
pub(crate) fn sections(input: &DocumentationInput, facts: &CodeFacts) -> Vec<Section> {
    let functions: Vec<&FunctionFacts> = facts.public_functions().collect();
    let types: Vec<&TypeFacts> = facts
        .types
        .iter()
        .filter(|t| matches!(t.visibility, Visibility::Public))
        .collect();
    let render = Render {
        format: input.output_format,
        language: input.language,
        types: input.include_types,
    };
    let left_out = (functions.len() + types.len()).saturating_sub(MAX_ITEMS);
    let mut sections = vec![overview(
        input,
        &render,
        functions.len(),
        types.len(),
        left_out,
    )];
    // Types, then functions, each in source order, as far as the cap goes.
    let types = types.into_iter().map(|ty| render.type_section(ty));
    let functions = functions
        .into_iter()
        .map(|function| render.function_section(function));
    sections.extend(types.chain(functions).take(MAX_ITEMS));
    sections
}

fn overview(
    input: &DocumentationInput,
    render: &Render,
    functions: usize,
    types: usize,
    left_out: usize,
) -> Section {
    let mut text = format!(
        "Public API of this {} code: {functions} {}, {types} {}. Built from the signatures and doc comments in the code; no model was available, so there are no examples or explanations beyond the existing doc comments.",
        input.language.display_name(),
        plural(functions, "function", "functions"),
        plural(types, "type", "types"),
    );
    if !matches!(
        input.documentation_type,
        DocumentationType::Api | DocumentationType::Reference
    ) {
        text.push_str(
            " A README, tutorial or guide needs a model; this is the API reference only.",
        );
    }
    if left_out > 0 {
        let _ = write!(
            text,
            " Only the first {MAX_ITEMS} items, types then functions, are documented here; {left_out} more were left out."
        );
    }
    Section {
        title: "API reference".to_owned(),
        kind: "overview".to_owned(),
        content: render.prose(&text),
        examples: Vec::new(),
        parameters: Vec::new(),
        return_type: None,
    }
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// One documented item, before formatting.
struct Item<'a> {
    /// What the declaration says, e.g. `pub fn add(a: i32) -> i32` or `struct Point`.
    signature: String,
    doc: Option<&'a str>,
    /// `(name, type, optional)`.
    parameters: Vec<(String, Option<String>, bool)>,
    returns: Option<String>,
    lines: (u32, u32),
}

/// How sections are written.
struct Render {
    format: OutputFormat,
    language: Language,
    /// Whether to state parameter and return types.
    types: bool,
}

impl Render {
    fn type_section(&self, ty: &TypeFacts) -> Section {
        let kind = if ty.kind.trim().is_empty() {
            "type".to_owned()
        } else {
            one_line(&ty.kind).chars().take(64).collect()
        };
        let item = Item {
            signature: format!("{kind} {}", ty.name),
            doc: ty.doc.as_deref(),
            parameters: Vec::new(),
            returns: None,
            lines: (ty.start_line, ty.end_line),
        };
        Section {
            title: title(&ty.name),
            kind,
            content: self.item(&item),
            examples: Vec::new(),
            parameters: Vec::new(),
            return_type: None,
        }
    }

    fn function_section(&self, function: &FunctionFacts) -> Section {
        let parameters: Vec<(String, Option<String>, bool)> = function
            .parameters
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let name = if p.name.trim().is_empty() {
                    format!("arg{}", index + 1)
                } else {
                    one_line(&p.name)
                };
                let type_name = p.type_name.as_deref().map(one_line).filter(|_| self.types);
                (name, type_name, p.optional)
            })
            .collect();
        let returns = function
            .return_type
            .as_deref()
            .map(one_line)
            .filter(|_| self.types);
        let signature = if function.signature.trim().is_empty() {
            function.qualified_name()
        } else {
            one_line(&function.signature)
        };
        // A declaration without a body says so, after its own doc (or the "undocumented" line).
        let bodiless_doc = function.is_abstract.then(|| {
            format!(
                "{}\n\n{NO_BODY}",
                function.doc.as_deref().map_or(UNDOCUMENTED, str::trim)
            )
        });
        let item = Item {
            signature,
            doc: bodiless_doc.as_deref().or(function.doc.as_deref()),
            parameters: parameters.clone(),
            returns: returns.clone(),
            lines: (function.start_line, function.end_line),
        };
        Section {
            title: title(&function.qualified_name()),
            kind: if function.container.is_some() {
                "method".to_owned()
            } else {
                "function".to_owned()
            },
            content: self.item(&item),
            examples: Vec::new(),
            parameters: parameters
                .into_iter()
                .map(|(name, type_name, optional)| Parameter {
                    name,
                    type_name,
                    description: String::new(),
                    optional,
                })
                .collect(),
            return_type: returns,
        }
    }

    /// A paragraph of prose in the format.
    fn prose(&self, text: &str) -> String {
        match self.format {
            OutputFormat::Markdown | OutputFormat::Rst => text.to_owned(),
            OutputFormat::Html => format!("<p>{}</p>", html(text)),
            OutputFormat::Docstring => self.comment(&[text.to_owned()], &[]),
            OutputFormat::Jsdoc => jsdoc_block(&[text.to_owned()]),
        }
    }

    /// One item in the format.
    fn item(&self, item: &Item<'_>) -> String {
        match self.format {
            OutputFormat::Markdown => self.markdown(item),
            OutputFormat::Html => self.html(item),
            OutputFormat::Rst => self.rst(item),
            OutputFormat::Docstring => self.docstring(item),
            OutputFormat::Jsdoc => self.jsdoc(item),
        }
    }

    fn markdown(&self, item: &Item<'_>) -> String {
        let fence = fence_for(&item.signature);
        let mut out = format!(
            "{fence}{}\n{}\n{fence}\n\n{}\n",
            self.language.as_str(),
            item.signature,
            item.doc.map_or(UNDOCUMENTED, str::trim)
        );
        if !item.parameters.is_empty() {
            out.push_str("\n**Parameters**\n\n");
            for (name, type_name, optional) in &item.parameters {
                let _ = write!(out, "- {}", inline_code(name));
                if let Some(type_name) = type_name {
                    let _ = write!(out, ": {}", inline_code(type_name));
                }
                if *optional {
                    out.push_str(" (optional)");
                }
                out.push('\n');
            }
        }
        if let Some(returns) = &item.returns {
            let _ = writeln!(out, "\n**Returns** {}", inline_code(returns));
        }
        let _ = write!(out, "\n*Lines {}-{}.*", item.lines.0, item.lines.1);
        out
    }

    fn html(&self, item: &Item<'_>) -> String {
        let mut out = format!(
            "<pre><code class=\"language-{}\">{}</code></pre>\n",
            self.language.as_str(),
            html(&item.signature)
        );
        match item.doc {
            Some(doc) => {
                for paragraph in paragraphs(doc) {
                    let _ = writeln!(out, "<p>{}</p>", html(&paragraph));
                }
            }
            None => {
                let _ = writeln!(out, "<p>{}</p>", html(UNDOCUMENTED));
            }
        }
        if !item.parameters.is_empty() {
            out.push_str("<h4>Parameters</h4>\n<ul>\n");
            for (name, type_name, optional) in &item.parameters {
                let _ = write!(out, "<li><code>{}</code>", html(name));
                if let Some(type_name) = type_name {
                    let _ = write!(out, ": <code>{}</code>", html(type_name));
                }
                if *optional {
                    out.push_str(" (optional)");
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        if let Some(returns) = &item.returns {
            let _ = writeln!(
                out,
                "<p><strong>Returns</strong> <code>{}</code></p>",
                html(returns)
            );
        }
        let _ = write!(
            out,
            "<p><em>Lines {}-{}.</em></p>",
            item.lines.0, item.lines.1
        );
        out
    }

    fn rst(&self, item: &Item<'_>) -> String {
        let mut out = format!(
            ".. code-block:: {}\n\n   {}\n\n{}\n",
            self.language.as_str(),
            item.signature,
            item.doc.map_or(UNDOCUMENTED, str::trim)
        );
        if !item.parameters.is_empty() || item.returns.is_some() {
            out.push('\n');
        }
        for (name, type_name, optional) in &item.parameters {
            let _ = writeln!(
                out,
                ":param {name}:{}",
                if *optional { " optional." } else { "" }
            );
            if let Some(type_name) = type_name {
                let _ = writeln!(out, ":type {name}: ``{type_name}``");
            }
        }
        if let Some(returns) = &item.returns {
            let _ = writeln!(out, ":rtype: ``{returns}``");
        }
        let _ = write!(out, "\n*Lines {}-{}.*", item.lines.0, item.lines.1);
        out
    }

    /// The language's own doc comment, then the declaration it documents.
    fn docstring(&self, item: &Item<'_>) -> String {
        let mut lines: Vec<String> = item
            .doc
            .map_or(UNDOCUMENTED, str::trim)
            .lines()
            .map(str::to_owned)
            .collect();
        match self.language {
            Language::Python => {
                if !item.parameters.is_empty() {
                    lines.push(String::new());
                    lines.push("Args:".to_owned());
                    for (name, type_name, optional) in &item.parameters {
                        let mut line = format!("    {name}");
                        match (type_name, optional) {
                            (Some(t), true) => {
                                let _ = write!(line, " ({t}, optional)");
                            }
                            (Some(t), false) => {
                                let _ = write!(line, " ({t})");
                            }
                            (None, true) => line.push_str(" (optional)"),
                            (None, false) => {}
                        }
                        line.push(':');
                        lines.push(line);
                    }
                }
                if let Some(returns) = &item.returns {
                    lines.push(String::new());
                    lines.push("Returns:".to_owned());
                    lines.push(format!("    {returns}"));
                }
                let body = prefixed(&lines, "    ")
                    .trim_start()
                    .replace("\"\"\"", "\\\"\\\"\\\"");
                let signature = if item.signature.ends_with(':') {
                    item.signature.clone()
                } else {
                    format!("{}:", item.signature)
                };
                format!("{signature}\n    \"\"\"{body}\n    \"\"\"")
            }
            Language::Javascript | Language::Typescript => self.jsdoc(item),
            _ => {
                let mut tags: Vec<String> = item
                    .parameters
                    .iter()
                    .map(|(name, type_name, _)| self.param_tag(name, type_name.as_deref()))
                    .collect();
                if let Some(returns) = &item.returns {
                    tags.push(self.return_tag(returns));
                }
                format!("{}\n{}", self.comment(&lines, &tags), item.signature)
            }
        }
    }

    fn jsdoc(&self, item: &Item<'_>) -> String {
        let mut lines: Vec<String> = item
            .doc
            .map_or(UNDOCUMENTED, str::trim)
            .lines()
            .map(str::to_owned)
            .collect();
        for (name, type_name, optional) in &item.parameters {
            let name = if *optional {
                format!("[{name}]")
            } else {
                name.clone()
            };
            lines.push(match type_name {
                Some(t) => format!("@param {{{t}}} {name}"),
                None => format!("@param {name}"),
            });
        }
        if let Some(returns) = &item.returns {
            lines.push(format!("@returns {{{returns}}}"));
        }
        format!("{}\n{}", jsdoc_block(&lines), item.signature)
    }

    /// A `@param`-style line in the language's doc comment convention.
    fn param_tag(&self, name: &str, type_name: Option<&str>) -> String {
        match (self.language, type_name) {
            (Language::Rust, Some(t)) => format!("* `{name}` - `{t}`"),
            (Language::Rust, None) => format!("* `{name}`"),
            (Language::Csharp, _) => format!("<param name=\"{}\"></param>", html(name)),
            (Language::Go, Some(t)) => format!("{name} {t}"),
            (Language::Go, None) => name.to_owned(),
            (Language::Ruby, Some(t)) => format!("@param {name} [{t}]"),
            (Language::Php, Some(t)) => format!("@param {t} ${}", name.trim_start_matches('$')),
            (Language::Php, None) => format!("@param ${}", name.trim_start_matches('$')),
            (_, Some(t)) => format!("@param {name} {t}"),
            (_, None) => format!("@param {name}"),
        }
    }

    /// A `@return`-style line in the language's doc comment convention.
    fn return_tag(&self, returns: &str) -> String {
        match self.language {
            Language::Rust | Language::Go => format!("Returns `{returns}`."),
            Language::Csharp => format!("<returns>{}</returns>", html(returns)),
            Language::Ruby => format!("@return [{returns}]"),
            _ => format!("@return {returns}"),
        }
    }

    /// A doc comment of the language: the description, then the tags.
    fn comment(&self, doc: &[String], tags: &[String]) -> String {
        let mut lines: Vec<String> = doc
            .iter()
            .flat_map(|l| l.split('\n'))
            .map(str::to_owned)
            .collect();
        if self.language == Language::Csharp {
            let mut xml = vec!["<summary>".to_owned()];
            xml.extend(lines.iter().map(|l| html(l)));
            xml.push("</summary>".to_owned());
            xml.extend(tags.iter().cloned());
            return prefixed(&xml, "/// ");
        }
        if !tags.is_empty() {
            lines.push(String::new());
            lines.extend(tags.iter().cloned());
        }
        match self.language {
            Language::Python => format!(
                "\"\"\"{}\"\"\"",
                lines.join("\n").replace("\"\"\"", "\\\"\\\"\\\"")
            ),
            Language::Rust => prefixed(&lines, "/// "),
            Language::Go => prefixed(&lines, "// "),
            Language::Ruby => prefixed(&lines, "# "),
            _ => jsdoc_block(&lines),
        }
    }
}

/// Every line of `lines` behind `prefix` (trimmed on empty lines).
fn prefixed(lines: &[String], prefix: &str) -> String {
    lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| {
            if l.is_empty() {
                prefix.trim_end().to_owned()
            } else {
                format!("{prefix}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `/** ... */` block; `*/` inside is broken up so it cannot end the comment.
fn jsdoc_block(lines: &[String]) -> String {
    let mut out = String::from("/**\n");
    for line in lines.iter().flat_map(|l| l.split('\n')) {
        let line = line.replace("*/", "*\\/");
        if line.is_empty() {
            out.push_str(" *\n");
        } else {
            let _ = writeln!(out, " * {line}");
        }
    }
    out.push_str(" */");
    out
}

/// `text` with HTML's special characters escaped.
pub(crate) fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown inline code that survives backticks in `text`.
fn inline_code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Paragraphs of a doc comment: blank lines separate them, other line breaks do not.
fn paragraphs(doc: &str) -> Vec<String> {
    doc.split("\n\n")
        .map(one_line)
        .filter(|p| !p.is_empty())
        .collect()
}

/// A section title: the name on one line, never empty.
fn title(name: &str) -> String {
    let name = one_line(name);
    if name.is_empty() {
        "(anonymous)".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_helpers() {
        assert_eq!(
            html("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(inline_code("a`b"), "`` a`b ``");
        assert_eq!(paragraphs("one\ntwo\n\nthree\n\n\n"), ["one two", "three"]);
        assert_eq!(title(" \n"), "(anonymous)");
        assert_eq!(
            jsdoc_block(&["a */ b".to_owned(), String::new()]),
            "/**\n * a *\\/ b\n *\n */"
        );
        assert_eq!(plural(1, "type", "types"), "type");
    }
}

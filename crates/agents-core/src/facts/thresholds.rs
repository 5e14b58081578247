//! The threshold rules: findings that follow from the per-function numbers alone.

use serde::{Deserialize, Serialize};

use std::collections::HashSet;

use super::{CodeFacts, Finding, Rule};
use crate::agents::Severity;

/// Where the threshold rules start to fire. The defaults follow common linters (Sonar's
/// cognitive 15, McCabe's 10, Clean Code's short functions and few parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleThresholds {
    /// Lines above which a function is long.
    pub max_function_lines: u32,
    /// Cyclomatic complexity above which a function is complex.
    pub max_cyclomatic: u32,
    /// Cognitive complexity above which a function is complex.
    pub max_cognitive: u32,
    /// Nesting depth above which control flow is deeply nested.
    pub max_nesting: u32,
    /// Parameter count above which a function takes too many.
    pub max_parameters: u32,
}

impl Default for RuleThresholds {
    fn default() -> Self {
        Self {
            max_function_lines: 60,
            max_cyclomatic: 10,
            max_cognitive: 15,
            max_nesting: 4,
            max_parameters: 5,
        }
    }
}

/// Findings of the threshold rules for every function in `facts`, in source order.
///
/// A method declared without a body ([`FunctionFacts::is_abstract`](super::FunctionFacts))
/// is checked for its parameters only: every implementation has to take them, so too many
/// of them is a finding on the declaration; length, complexity and nesting belong to bodies.
/// Overload signatures next to their implementation (same qualified name, TypeScript) are
/// left to the implementation, so one function gets one parameter finding.
pub fn threshold_findings(facts: &CodeFacts, limits: &RuleThresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    // (container, name) of each function with a body; built only when a file has body-less
    // declarations, and borrowed, so a file without them pays nothing.
    let implemented: HashSet<(Option<&str>, &str)> =
        if facts.functions.iter().any(|f| f.is_abstract) {
            facts
                .functions_with_body()
                .map(|f| (f.container.as_deref(), f.name.as_str()))
                .collect()
        } else {
            HashSet::new()
        };
    for function in &facts.functions {
        let name = function.qualified_name();
        let line = function.start_line.max(1);
        let length = function.length();
        let has_body = !function.is_abstract;
        if has_body && length > limits.max_function_lines {
            findings.push(Finding::new(
                Rule::LongFunction,
                line,
                format!(
                    "`{name}` is {length} lines long (over {}); split it into smaller functions with one job each.",
                    limits.max_function_lines
                ),
            ));
        }
        if has_body
            && (function.cyclomatic > limits.max_cyclomatic
                || function.cognitive > limits.max_cognitive)
        {
            let severity = if function.cyclomatic > limits.max_cyclomatic.saturating_mul(2) {
                Severity::High
            } else {
                Severity::Medium
            };
            findings.push(
                Finding::new(
                    Rule::ComplexFunction,
                    line,
                    format!(
                        "`{name}` has cyclomatic complexity {} and cognitive complexity {} (limits {} and {}); extract the branches into helpers or a lookup table.",
                        function.cyclomatic,
                        function.cognitive,
                        limits.max_cyclomatic,
                        limits.max_cognitive
                    ),
                )
                .with_severity(severity),
            );
        }
        if has_body && function.max_nesting > limits.max_nesting {
            findings.push(Finding::new(
                Rule::DeepNesting,
                line,
                format!(
                    "`{name}` nests control flow {} levels deep (over {}); return early or extract the inner blocks.",
                    function.max_nesting, limits.max_nesting
                ),
            ));
        }
        let parameters = u32::try_from(function.parameters.len()).unwrap_or(u32::MAX);
        let overload_signature = !has_body
            && implemented.contains(&(function.container.as_deref(), function.name.as_str()));
        if parameters > limits.max_parameters && !overload_signature {
            findings.push(Finding::new(
                Rule::TooManyParameters,
                line,
                format!(
                    "`{name}` takes {parameters} parameters (over {}); group related ones into a struct or object.",
                    limits.max_parameters
                ),
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FunctionFacts, ParameterFacts};

    fn function(name: &str) -> FunctionFacts {
        FunctionFacts {
            name: name.to_owned(),
            start_line: 3,
            end_line: 10,
            cyclomatic: 1,
            ..FunctionFacts::default()
        }
    }

    #[test]
    fn each_threshold_rule_fires_above_its_limit_and_not_at_it() {
        let limits = RuleThresholds::default();
        let quiet = CodeFacts {
            functions: vec![FunctionFacts {
                end_line: 3 + limits.max_function_lines - 1,
                cyclomatic: limits.max_cyclomatic,
                cognitive: limits.max_cognitive,
                max_nesting: limits.max_nesting,
                parameters: vec![ParameterFacts::default(); 5],
                ..function("fine")
            }],
            ..CodeFacts::default()
        };
        assert!(threshold_findings(&quiet, &limits).is_empty());

        let loud = CodeFacts {
            functions: vec![FunctionFacts {
                container: Some("Big".to_owned()),
                end_line: 3 + limits.max_function_lines,
                cyclomatic: 25,
                cognitive: 30,
                max_nesting: 5,
                parameters: vec![ParameterFacts::default(); 6],
                ..function("messy")
            }],
            ..CodeFacts::default()
        };
        let found = threshold_findings(&loud, &limits);
        let rules: Vec<Rule> = found.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [
                Rule::LongFunction,
                Rule::ComplexFunction,
                Rule::DeepNesting,
                Rule::TooManyParameters
            ]
        );
        assert!(
            found
                .iter()
                .all(|f| f.line == 3 && f.message.contains("`Big.messy`"))
        );
        assert_eq!(found[1].severity, Severity::High);
    }

    #[test]
    fn a_declaration_without_a_body_is_checked_for_parameters_only() {
        let limits = RuleThresholds::default();
        // Numbers no real declaration has, so that a rule that forgot the flag would fire.
        let facts = CodeFacts {
            functions: vec![FunctionFacts {
                is_abstract: true,
                end_line: 3 + limits.max_function_lines,
                cyclomatic: 25,
                cognitive: 30,
                max_nesting: 5,
                parameters: vec![ParameterFacts::default(); 8],
                ..function("Repository.save")
            }],
            ..CodeFacts::default()
        };
        let rules: Vec<Rule> = threshold_findings(&facts, &limits)
            .iter()
            .map(|f| f.rule)
            .collect();
        assert_eq!(rules, [Rule::TooManyParameters]);

        // Overload signatures with their implementation: one finding, on the implementation.
        let overloaded = CodeFacts {
            functions: vec![
                FunctionFacts {
                    is_abstract: true,
                    parameters: vec![ParameterFacts::default(); 6],
                    ..function("Shape.at")
                },
                FunctionFacts {
                    is_abstract: true,
                    parameters: vec![ParameterFacts::default(); 7],
                    ..function("Shape.at")
                },
                FunctionFacts {
                    start_line: 12,
                    end_line: 14,
                    parameters: vec![ParameterFacts::default(); 7],
                    ..function("Shape.at")
                },
            ],
            ..CodeFacts::default()
        };
        let found = threshold_findings(&overloaded, &limits);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 12);
    }

    #[test]
    fn file_totals_add_decision_points() {
        let facts = CodeFacts {
            functions: vec![
                FunctionFacts {
                    cyclomatic: 3,
                    cognitive: 4,
                    ..function("a")
                },
                FunctionFacts {
                    cyclomatic: 2,
                    cognitive: 1,
                    visibility: crate::facts::Visibility::Private,
                    ..function("b")
                },
            ],
            ..CodeFacts::default()
        };
        assert_eq!(facts.total_cyclomatic(), 4);
        assert_eq!(facts.max_cognitive(), 4);
        assert_eq!(facts.public_functions().count(), 1);

        // A declaration without a body adds nothing, whatever its numbers say.
        let mut with_abstract = facts.clone();
        with_abstract.functions.push(FunctionFacts {
            is_abstract: true,
            cyclomatic: 7,
            cognitive: 9,
            ..function("c")
        });
        assert_eq!(with_abstract.total_cyclomatic(), 4);
        assert_eq!(with_abstract.max_cognitive(), 4);
        assert_eq!(with_abstract.functions_with_body().count(), 2);
        assert_eq!(with_abstract.public_functions().count(), 2);
        assert_eq!(CodeFacts::default().total_cyclomatic(), 1);
        assert_eq!(function("x").length(), 8);
        for rule in Rule::ALL {
            assert_eq!(serde_json::to_value(rule).unwrap(), rule.as_str());
            assert!(!rule.category().is_empty());
            let _ = (rule.cwe(), rule.default_severity(), rule.to_string());
        }
    }
}

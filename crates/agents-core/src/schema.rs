//! JSON Schema generation and validation at the agent boundary.
//!
//! Schemas are generated from the Rust types (schemars), so the types, the schemas clients see in
//! DescribeAgent and the committed files under `schemas/` cannot disagree. Validation (jsonschema)
//! reports every violation with its JSON Pointer, and never echoes the offending value: an input
//! is user code and may hold secrets.

use jsonschema::error::ValidationErrorKind;
use schemars::JsonSchema;
use serde_json::Value;

use crate::error::{MAX_VIOLATIONS, Violation};

/// A JSON Schema document and its compiled validator.
pub(crate) struct CompiledSchema {
    document: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("title", &self.document.get("title"))
            .finish_non_exhaustive()
    }
}

impl CompiledSchema {
    /// Generates the schema of `T` and compiles it.
    pub(crate) fn for_type<T: JsonSchema>() -> Result<Self, String> {
        let document = schema_of::<T>();
        let validator = jsonschema::validator_for(&document).map_err(|e| {
            format!(
                "the generated schema of {} does not compile: {e}",
                T::schema_name()
            )
        })?;
        Ok(Self {
            document,
            validator,
        })
    }

    /// The schema document.
    pub(crate) fn document(&self) -> &Value {
        &self.document
    }

    /// Every violation of the schema by `instance` (at most [`MAX_VIOLATIONS`]); empty when valid.
    pub(crate) fn violations(&self, instance: &Value) -> Vec<Violation> {
        // Nearly every instance is valid. `is_valid` stops at the first failure and builds no
        // error values, where collecting walks every keyword and allocates as it goes (callgrind,
        // load benchmark: the input and reply checks of one call 11.4k → 8.4k instructions).
        if self.validator.is_valid(instance) {
            return Vec::new();
        }
        self.validator
            .iter_errors(instance)
            .take(MAX_VIOLATIONS)
            .map(|error| {
                let mut path = error.instance_path().as_str().to_owned();
                // Point at the property itself, not at the object holding it: that is what a
                // client has to fix.
                match error.kind() {
                    ValidationErrorKind::AdditionalProperties { unexpected } => {
                        if let Some(name) = unexpected.first() {
                            push_pointer_token(&mut path, name);
                        }
                    }
                    ValidationErrorKind::Required { property } => {
                        if let Some(name) = property.as_str() {
                            push_pointer_token(&mut path, name);
                        }
                    }
                    _ => {}
                }
                let message = allowed_constants(error.kind())
                    .map(|allowed| format!("value must be one of: {}", allowed.join(", ")))
                    .unwrap_or_else(|| error.masked().to_string());
                Violation { path, message }
            })
            .collect()
    }
}

/// The allowed values of a documented enum, which schemars writes as `oneOf` a list of `const`s:
/// "must be one of: a, b" says more than "not valid under any of the schemas in oneOf".
fn allowed_constants(kind: &ValidationErrorKind) -> Option<Vec<String>> {
    let ValidationErrorKind::OneOfNotValid { context } = kind else {
        return None;
    };
    let mut allowed = Vec::with_capacity(context.len());
    for branch in context {
        let mut constants = branch.iter().filter_map(|e| match e.kind() {
            ValidationErrorKind::Constant { expected_value } => Some(expected_value.to_string()),
            _ => None,
        });
        allowed.push(constants.next()?);
    }
    Some(allowed)
}

/// The JSON Schema (draft 2020-12) of `T`, as committed under `schemas/`.
pub fn schema_of<T: JsonSchema>() -> Value {
    schemars::schema_for!(T).to_value()
}

/// Appends one RFC 6901 reference token to a JSON Pointer.
fn push_pointer_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    pointer.push_str(&token.replace('~', "~0").replace('/', "~1"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        #[schemars(range(min = 1, max = 10))]
        count: u32,
        tags: Vec<String>,
    }

    /// A documented enum, as schemars writes it: `oneOf` `const`s.
    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Colour {
        /// Warm.
        Red,
        /// Cold.
        Blue,
    }

    #[test]
    fn enum_violations_list_the_allowed_values() {
        let schema = CompiledSchema::for_type::<Colour>().unwrap();
        let violations = schema.violations(&json!("green"));
        assert_eq!(violations.len(), 1);
        assert_eq!(
            violations[0].message,
            r#"value must be one of: "red", "blue""#
        );
        assert!(!schema.violations(&json!(3)).is_empty());
    }

    #[test]
    fn reports_paths_of_each_violation_without_values() {
        let schema = CompiledSchema::for_type::<Sample>().unwrap();
        assert!(
            schema
                .violations(&json!({"name": "a", "count": 1, "tags": []}))
                .is_empty()
        );
        let violations =
            schema.violations(&json!({"count": 99, "tags": [7], "a/b~c": "sk-secret-value"}));
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        assert!(paths.contains(&"/name"), "{paths:?}");
        assert!(paths.contains(&"/count"), "{paths:?}");
        assert!(paths.contains(&"/tags/0"), "{paths:?}");
        assert!(paths.contains(&"/a~1b~0c"), "{paths:?}");
        for violation in &violations {
            assert!(!violation.message.contains("sk-secret-value"));
        }
        assert!(format!("{schema:?}").contains("Sample"));
    }
}

//! `fn::validate`: JSON Schema validation of evaluated values.

use crate::value::Value;

/// Validates `value` against `schema`; returns one message per violation (empty when valid).
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let schema = schema.to_serde_json(false);
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => return vec![format!("invalid schema: {e}")],
    };
    let instance = value.to_serde_json(false);
    validator
        .iter_errors(&instance)
        .map(|e| {
            let at = e.instance_path().to_string();
            let message = describe(&e);
            if at.is_empty() {
                message
            } else {
                format!(
                    "{}: {message}",
                    at.trim_start_matches('/').replace('/', ".")
                )
            }
        })
        .collect()
}

/// Describes a violation without echoing the value, which may be secret.
fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match e.kind() {
        K::Type { kind } => {
            let expected = match kind {
                jsonschema::error::TypeKind::Single(t) => t.to_string(),
                jsonschema::error::TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("expected {expected}, got {}", json_type(e.instance()))
        }
        K::Required { property } => format!("missing required property {property}"),
        K::Constant { expected_value } => format!("expected {expected_value}"),
        K::Enum { options } => format!("expected one of {options}"),
        _ => {
            let text = e.to_string();
            let shown = e.instance().to_string();
            text.replace(&shown, "value")
        }
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

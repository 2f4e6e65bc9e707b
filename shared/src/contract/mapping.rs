//! Attribute mapping: for each attribute written, where its value comes from (a column, a
//! template of columns and literal text, or a constant), and whether columns no mapping
//! renames are kept under their own names. Templates are parsed here, once, for validation
//! and for typing alike.

use serde::{Deserialize, Serialize};

/// One mapped attribute's source. In the schema: `"name": "column"` (shorthand for `from`),
/// `{"from": "column"}`, `{"template": "SENSOR#{column}"}`, or `{"value": "text"}` (a
/// string constant; `{"value": "3", "type": "number"}` for a number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawAttribute", into = "RawAttribute")]
pub enum Attribute {
    /// A column's typed value, under another name.
    From(String),
    /// A string of literal text and `{column}` placeholders.
    Template(String),
    /// The same value in every item.
    Value(Constant),
}

/// A constant attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constant {
    /// Stored as S.
    String(String),
    /// Stored as N (validated and made canonical when the schema is).
    Number(String),
}

/// Columns no mapping names as `from`: kept under their own names (the default), or dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    #[default]
    Keep,
    Drop,
}

impl Unmapped {
    pub fn is_keep(&self) -> bool {
        *self == Unmapped::Keep
    }
}

/// The schema's JSON form of an attribute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum RawAttribute {
    Shorthand(String),
    Spec(Spec),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<serde_json::Value>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<ConstantType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ConstantType {
    String,
    Number,
}

impl TryFrom<RawAttribute> for Attribute {
    type Error = String;

    fn try_from(raw: RawAttribute) -> Result<Self, String> {
        let spec = match raw {
            RawAttribute::Shorthand(column) => return Ok(Attribute::From(column)),
            RawAttribute::Spec(spec) => spec,
        };
        match (spec.from, spec.template, spec.value, spec.kind) {
            (Some(column), None, None, None) => Ok(Attribute::From(column)),
            (None, Some(template), None, None) => Ok(Attribute::Template(template)),
            (None, None, Some(value), kind) => {
                let text = match value {
                    serde_json::Value::String(s) => s,
                    // A JSON fraction would pass through f64; a string keeps its digits.
                    serde_json::Value::Number(n) if n.is_f64() => {
                        return Err(format!(
                            "give a fractional `value` as a string (\"{n}\") so its digits are kept exactly"
                        ));
                    }
                    serde_json::Value::Number(n) if kind != Some(ConstantType::Number) => {
                        return Err(format!(
                            "a number `value` needs `\"type\": \"number\"` (or \"{n}\" for a string)"
                        ));
                    }
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => return Err("`value` must be a string or a number".into()),
                };
                Ok(Attribute::Value(match kind {
                    Some(ConstantType::Number) => Constant::Number(text),
                    _ => Constant::String(text),
                }))
            }
            (None, None, None, Some(_)) => Err("`type` is for a `value`".into()),
            _ => Err("give exactly one of `from`, `template` and `value`".into()),
        }
    }
}

impl From<Attribute> for RawAttribute {
    fn from(attribute: Attribute) -> Self {
        RawAttribute::Spec(match attribute {
            Attribute::From(column) => Spec {
                from: Some(column),
                ..Spec::default()
            },
            Attribute::Template(template) => Spec {
                template: Some(template),
                ..Spec::default()
            },
            Attribute::Value(Constant::String(s)) => Spec {
                value: Some(s.into()),
                ..Spec::default()
            },
            Attribute::Value(Constant::Number(n)) => Spec {
                value: Some(n.into()),
                kind: Some(ConstantType::Number),
                ..Spec::default()
            },
        })
    }
}

impl Attribute {
    /// The columns the attribute reads (a template's in order, repeats kept).
    pub fn columns(&self) -> Vec<String> {
        match self {
            Attribute::From(column) => vec![column.clone()],
            Attribute::Template(text) => parse_template(text)
                .map(|parts| {
                    parts
                        .into_iter()
                        .filter_map(|p| match p {
                            Part::Column(c) => Some(c),
                            Part::Literal(_) => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Attribute::Value(_) => Vec::new(),
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Column(String),
}

/// The escape character inside a template's values.
pub const ESCAPE: char = '\\';

/// A template's parts. Refused: an empty template, unbalanced or nested braces, an empty
/// `{}`, `\` in the literal text, and two placeholders with no literal text between them
/// (where one value ends would be ambiguous).
pub fn parse_template(text: &str) -> Result<Vec<Part>, String> {
    if text.is_empty() {
        return Err("the template is empty".into());
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' => {
                let mut column = String::new();
                loop {
                    match chars.next() {
                        Some((_, '}')) => break,
                        Some((_, '{')) | None => {
                            return Err(format!("unbalanced `{{` at byte {at}"));
                        }
                        Some((_, c)) => column.push(c),
                    }
                }
                if column.is_empty() {
                    return Err(format!("an empty `{{}}` at byte {at}"));
                }
                if literal.is_empty() && matches!(parts.last(), Some(Part::Column(_))) {
                    return Err(format!(
                        "`{{{column}}}` follows another placeholder with no literal text between them: where one value ends would be ambiguous"
                    ));
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Column(column));
            }
            '}' => return Err(format!("unbalanced `}}` at byte {at}")),
            ESCAPE => {
                return Err(
                    "`\\` in a template's literal text is refused (it escapes the values)".into(),
                );
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

/// The characters escaped (with `\`, and `\` itself) inside every value of a template: the
/// first character of each literal that follows a placeholder, where a value ends. A value
/// holds none of them unescaped, so where it ends is never in doubt and two different rows
/// never render the same text. Empty when no literal follows a placeholder (nothing to
/// confuse: values are then as is).
pub fn terminators(parts: &[Part]) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for pair in parts.windows(2) {
        if let [Part::Column(_), Part::Literal(text)] = pair
            && let Some(first) = text.chars().next()
            && !out.contains(&first)
        {
            out.push(first);
        }
    }
    if !out.is_empty() {
        out.push(ESCAPE);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(json: serde_json::Value) -> Result<Attribute, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn each_form_parses_and_round_trips() {
        use serde_json::json;
        assert_eq!(attr(json!("ts")), Ok(Attribute::From("ts".into())));
        assert_eq!(
            attr(json!({"from": "ts"})),
            Ok(Attribute::From("ts".into()))
        );
        assert_eq!(
            attr(json!({"template": "S#{a}"})),
            Ok(Attribute::Template("S#{a}".into()))
        );
        assert_eq!(
            attr(json!({"value": "reading"})),
            Ok(Attribute::Value(Constant::String("reading".into())))
        );
        let three = Attribute::Value(Constant::Number("3".into()));
        assert_eq!(
            attr(json!({"value": 3, "type": "number"})),
            Ok(three.clone())
        );
        let back = serde_json::to_value(&three).unwrap();
        assert_eq!(attr(back), Ok(three));
        assert!(attr(json!({"from": "a", "value": "b"})).is_err());
        assert!(attr(json!({"type": "number"})).is_err());
        assert!(attr(json!({"value": true})).is_err());
        assert!(
            attr(json!({"value": 3}))
                .unwrap_err()
                .contains("needs `\"type\": \"number\"`")
        );
        let exact = attr(json!({"value": 1.5, "type": "number"})).unwrap_err();
        assert!(exact.contains("as a string"), "{exact}");
        assert_eq!(
            attr(json!({"value": "1.50", "type": "number"})),
            Ok(Attribute::Value(Constant::Number("1.50".into())))
        );
        assert!(attr(json!({"form": "a"})).is_err());
    }

    #[test]
    fn templates_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_template("SENSOR#{mp}"),
            Ok(vec![
                Part::Literal("SENSOR#".into()),
                Part::Column("mp".into())
            ])
        );
        let parts = parse_template("{ts}#{seq}").unwrap();
        assert_eq!(terminators(&parts), vec!['#', '\\']);
        assert!(terminators(&parse_template("A#{x}").unwrap()).is_empty());
        for (bad, says) in [
            ("", "empty"),
            ("{a", "unbalanced `{`"),
            ("a}", "unbalanced `}`"),
            ("{a{b}}", "unbalanced `{`"),
            ("x{}", "empty `{}`"),
            ("{a}{b}", "no literal text between"),
            ("a\\{b}", "`\\`"),
        ] {
            let err = parse_template(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}

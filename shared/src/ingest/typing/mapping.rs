//! Mapped attributes resolved against one object's header, once: a template is parsed and
//! its columns turned into header positions here, so a row costs one pass over its parts.
//!
//! A template is always a string (S); each `{column}` is the column's stored text (numbers
//! canonical, timestamps as their column stores them). Values are escaped so two different
//! rows never render the same text: inside each value, `\` and the first character of
//! every literal that follows a placeholder are preceded by `\` ([`terminators`]); with no
//! literal after a placeholder (`SENSOR#{measure_point}`, `{timestamp}`) values are as is.
//! An attribute whose column has no value in a row (empty, or NULL) is left out of the item.

use std::collections::HashMap;

use super::keys::push_escaped;
use super::numbers::parse_decimal;
use crate::contract::mapping::{Attribute, Constant, Part, parse_template, terminators};
use crate::ingest::item::Value;

/// One typed field of a row, or `None` when it stores nothing.
pub type Field = Option<(Value, usize)>;

#[derive(Debug, Clone)]
pub enum Source {
    /// The header position of the column (`None`: a nullable column the header lacks).
    From(Option<usize>),
    Template {
        pieces: Vec<Piece>,
        escaped: Vec<char>,
    },
    Value(Value),
}

#[derive(Debug, Clone)]
pub enum Piece {
    Literal(String),
    Slot(Option<usize>),
}

/// One mapped attribute, ready for rows.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub name: String,
    pub source: Source,
}

impl Mapped {
    /// Resolves `attribute` against the header `index`. The schema was validated, so a
    /// template parses; should one not, it renders its text as a literal.
    pub fn new(name: &str, attribute: &Attribute, index: &HashMap<&str, usize>) -> Self {
        let slot = |column: &str| index.get(column).copied();
        let source = match attribute {
            Attribute::From(column) => Source::From(slot(column)),
            Attribute::Template(text) => {
                let parts =
                    parse_template(text).unwrap_or_else(|_| vec![Part::Literal(text.clone())]);
                Source::Template {
                    escaped: terminators(&parts),
                    pieces: parts
                        .into_iter()
                        .map(|part| match part {
                            Part::Literal(text) => Piece::Literal(text),
                            Part::Column(column) => Piece::Slot(slot(&column)),
                        })
                        .collect(),
                }
            }
            Attribute::Value(Constant::String(text)) => Source::Value(Value::S(text.clone())),
            // Validated as a number with the schema; stored in its canonical text.
            Attribute::Value(Constant::Number(text)) => Source::Value(match parse_decimal(text) {
                Ok(number) => Value::N(number.text),
                Err(_) => Value::S(text.clone()),
            }),
        };
        Self {
            name: name.to_owned(),
            source,
        }
    }

    /// This row's value, or `None` when a column it reads has none.
    pub fn value(&self, fields: &[Field]) -> Option<Value> {
        let field = |slot: &Option<usize>| {
            slot.and_then(|i| fields.get(i))
                .and_then(Option::as_ref)
                .map(|(value, _)| value)
        };
        match &self.source {
            Source::From(slot) => field(slot).cloned(),
            Source::Value(value) => Some(value.clone()),
            Source::Template { pieces, escaped } => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => out.push_str(text),
                        Piece::Slot(slot) => {
                            push_escaped(&mut out, field(slot)?.as_text()?, escaped);
                        }
                    }
                }
                Some(Value::S(out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of up to three characters from an alphabet of literal, escape, brace
    /// and plain characters, through templates of every shape: no two value pairs render
    /// alike.
    #[test]
    fn no_two_rows_render_alike_exhaustively() {
        let alphabet = ['x', '#', '\\', '-', '}'];
        let mut values = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = values
                .iter()
                .filter(|v| v.len() == values.last().map_or(0, String::len))
                .flat_map(|v| alphabet.iter().map(move |c| format!("{v}{c}")))
                .collect();
            values.extend(longer);
        }
        let index = HashMap::from([("a", 0), ("b", 1)]);
        for template in [
            "{a}#{b}",
            "{a}-{b}#",
            "P#{a}-#{b}",
            "{a}-x{b}",
            "#{a}##{b}#",
        ] {
            let mapped = Mapped::new("K", &Attribute::Template(template.into()), &index);
            let mut seen = std::collections::HashSet::new();
            for a in &values {
                for b in &values {
                    let fields = [
                        Some((Value::S(a.clone()), 0)),
                        Some((Value::S(b.clone()), 0)),
                    ];
                    let Some(Value::S(text)) = mapped.value(&fields) else {
                        panic!("{template}: no text for ({a:?}, {b:?})");
                    };
                    assert!(
                        seen.insert(text.clone()),
                        "{template}: ({a:?}, {b:?}) gives {text:?} again"
                    );
                }
            }
        }
    }
}

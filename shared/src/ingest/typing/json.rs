//! JSON text to a DynamoDB value: string S, number N, bool BOOL, null NULL, array L, object M.
//!
//! A small parser of our own rather than `serde_json::Value`: serde_json without its
//! `arbitrary_precision` feature reads decimals through f64 (`0.1` and 39-digit numbers would
//! be rounded), and that feature cannot be turned on for this crate alone: features unify
//! across the workspace, and with it numbers inside `#[serde(untagged)]`/`flatten` types
//! (the job request's `max_write_rate`, the messages) stop deserializing. Here a number's
//! text is taken as written and checked and canonicalised by [`parse_decimal`] (exact, like a
//! `number` column); nesting is limited while parsing (DynamoDB's 32 levels, so deep input
//! cannot exhaust the stack), and an object naming a key twice is refused (a map cannot hold
//! it, and keeping either copy would silently drop the other).

use std::collections::BTreeMap;

use thiserror::Error;

use super::numbers::{NumberError, parse_decimal};
use crate::ingest::item::Value;

/// DynamoDB's limit on nested attributes: a list or map inside a list or map, 32 deep.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonError {
    /// Where parsing stopped (a byte offset: never the text).
    #[error("invalid JSON at byte {0}")]
    Syntax(usize),
    #[error("lists and maps nested more than DynamoDB's {MAX_DEPTH} levels")]
    TooDeep,
    #[error("a JSON object names one key twice (a map holds each key once)")]
    DuplicateKey,
    #[error("a number in the JSON: {0}")]
    Number(NumberError),
    #[error("expected {0}")]
    Expected(&'static str),
}

/// Any JSON value as a DynamoDB value (the top-level array or object is level 1).
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        at: 0,
        max_depth: MAX_DEPTH,
    };
    parser.space();
    let value = parser.value(0)?;
    parser.space();
    if parser.at != parser.bytes.len() {
        return Err(JsonError::Syntax(parser.at));
    }
    Ok(value)
}

/// One JSON Lines line: a JSON object whose members are the row's fields. The line's own
/// object is not a nesting level (a field holds as many as a column's JSON text would).
pub fn parse_line(text: &str) -> Result<BTreeMap<String, Value>, JsonError> {
    parse_object(text, MAX_DEPTH)
}

/// A line's JSON object, containers nested at most `max_depth` deep inside it (DynamoDB
/// JSON spends two JSON levels per DynamoDB level, and checks its own depth itself).
pub fn parse_object(text: &str, max_depth: usize) -> Result<BTreeMap<String, Value>, JsonError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        at: 0,
        max_depth,
    };
    parser.space();
    if parser.peek() != Some(b'{') {
        // Any other JSON value is still checked, so the reason says which it is.
        return Err(match parse(text) {
            Ok(_) => JsonError::Expected("a JSON object"),
            Err(error) => error,
        });
    }
    let map = parser.members(0)?;
    parser.space();
    if parser.at != parser.bytes.len() {
        return Err(JsonError::Syntax(parser.at));
    }
    Ok(map)
}

/// A JSON array's elements, as L.
pub fn parse_list(text: &str) -> Result<Vec<Value>, JsonError> {
    match parse(text)? {
        Value::L(list) => Ok(list),
        _ => Err(JsonError::Expected("a JSON array")),
    }
}

/// A JSON object's members, as M.
pub fn parse_map(text: &str) -> Result<BTreeMap<String, Value>, JsonError> {
    match parse(text)? {
        Value::M(map) => Ok(map),
        _ => Err(JsonError::Expected("a JSON object")),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn syntax(&self) -> JsonError {
        JsonError::Syntax(self.at)
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.syntax())
        }
    }

    /// One value; `depth` containers enclose it.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::S),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax()),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > self.max_depth {
            return Err(JsonError::TooDeep);
        }
        self.at += 1;
        let mut list = Vec::new();
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::L(list));
        }
        loop {
            self.space();
            list.push(self.value(depth)?);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::L(list));
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.members(depth).map(Value::M)
    }

    fn members(&mut self, depth: usize) -> Result<BTreeMap<String, Value>, JsonError> {
        if depth > self.max_depth {
            return Err(JsonError::TooDeep);
        }
        self.at += 1;
        let mut map = BTreeMap::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(map);
        }
        loop {
            self.space();
            if self.peek() != Some(b'"') {
                return Err(self.syntax());
            }
            let key = self.string()?;
            self.space();
            if self.peek() != Some(b':') {
                return Err(self.syntax());
            }
            self.at += 1;
            self.space();
            let value = self.value(depth)?;
            if map.insert(key, value).is_some() {
                return Err(JsonError::DuplicateKey);
            }
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(map);
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// JSON's number grammar, then DynamoDB's limits on the text as written.
    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.at += 1;
            }
            p.at - from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.syntax()),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(self.syntax());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.syntax());
            }
        }
        parse_decimal(&self.text[start..self.at])
            .map(|number| Value::N(number.text))
            .map_err(JsonError::Number)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let run = self.at;
            while matches!(self.peek(), Some(c) if c != b'"' && c != b'\\' && c >= 0x20) {
                self.at += 1;
            }
            // Runs end at ASCII bytes, so they are whole UTF-8 sequences.
            out.push_str(&self.text[run..self.at]);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    fn escape(&mut self) -> Result<char, JsonError> {
        let c = self.peek().ok_or_else(|| self.syntax())?;
        self.at += 1;
        Ok(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                if !(0xD800..0xDC00).contains(&high) {
                    return char::from_u32(high).ok_or_else(|| self.syntax());
                }
                // A high surrogate: its low half must follow as another escape.
                if !self.bytes[self.at..].starts_with(b"\\u") {
                    return Err(self.syntax());
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xDC00..0xE000).contains(&low) {
                    return Err(self.syntax());
                }
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                    .ok_or_else(|| self.syntax())?
            }
            _ => return Err(JsonError::Syntax(self.at - 1)),
        })
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.syntax())?;
        let mut value = 0;
        for &d in digits {
            value = value << 4 | char::from(d).to_digit(16).ok_or_else(|| self.syntax())?;
        }
        self.at += 4;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::S(text.into())
    }

    fn n(text: &str) -> Value {
        Value::N(text.into())
    }

    #[test]
    fn json_values_map_to_dynamodb_types_with_exact_numbers() {
        let value = parse(
            r#" {"a": [1, -0.10, 12345678901234567890123456789012345678, "x"],
                 "b": {"t": true, "f": false, "z": null}, "c": 1e2, "d": 0.1} "#,
        )
        .unwrap();
        let expected = Value::M(BTreeMap::from([
            (
                "a".into(),
                Value::L(vec![
                    n("1"),
                    n("-0.1"),
                    n("12345678901234567890123456789012345678"),
                    s("x"),
                ]),
            ),
            (
                "b".into(),
                Value::M(BTreeMap::from([
                    ("t".into(), Value::Bool(true)),
                    ("f".into(), Value::Bool(false)),
                    ("z".into(), Value::Null),
                ])),
            ),
            ("c".into(), n("100")),
            ("d".into(), n("0.1")),
        ]));
        assert_eq!(value, expected);
        assert_eq!(parse("[]").unwrap(), Value::L(vec![]));
        assert_eq!(parse("{}").unwrap(), Value::M(BTreeMap::new()));
        assert_eq!(parse("\"\"").unwrap(), s(""));
        assert_eq!(parse("null").unwrap(), Value::Null);
    }

    #[test]
    fn strings_unescape_including_surrogate_pairs() {
        assert_eq!(
            parse(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00é""#).unwrap(),
            s("a\"\\/\u{8}\u{c}\n\r\té😀é")
        );
        for bad in [
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\ude00""#,
            r#""\x""#,
            r#""\u12""#,
        ] {
            assert!(matches!(parse(bad), Err(JsonError::Syntax(_))), "{bad}");
        }
        assert!(matches!(parse("\"a\u{1}\""), Err(JsonError::Syntax(2))));
    }

    #[test]
    fn bad_json_names_the_byte_where_it_stopped() {
        for (bad, at) in [
            ("", 0),
            ("[1,]", 3),
            ("[1 2]", 3),
            ("{\"a\" 1}", 5),
            ("{a:1}", 1),
            ("01", 1),
            ("1.", 2),
            ("-", 1),
            ("1e", 2),
            (".5", 0),
            ("tru", 0),
            ("[1] x", 4),
            ("\"open", 5),
            ("NaN", 0),
        ] {
            assert_eq!(parse(bad), Err(JsonError::Syntax(at)), "{bad}");
        }
    }

    #[test]
    fn depth_32_is_kept_and_33_refused() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(parse(&nested(MAX_DEPTH + 1)), Err(JsonError::TooDeep));
        let maps = |depth: usize| format!("{}1{}", "{\"k\":".repeat(depth), "}".repeat(depth));
        assert!(parse(&maps(MAX_DEPTH)).is_ok());
        assert_eq!(parse(&maps(MAX_DEPTH + 1)), Err(JsonError::TooDeep));
        // Far deeper input is refused at level 33, never recursed into.
        assert_eq!(parse(&"[".repeat(1_000_000)), Err(JsonError::TooDeep));
    }

    #[test]
    fn duplicate_keys_and_numbers_past_dynamodb_s_limits_are_refused() {
        assert_eq!(parse(r#"{"a":1,"a":1}"#), Err(JsonError::DuplicateKey));
        assert_eq!(
            parse("[1e200]"),
            Err(JsonError::Number(NumberError::Overflow))
        );
        assert_eq!(
            parse(r#"{"x": 1e-131}"#),
            Err(JsonError::Number(NumberError::Underflow))
        );
        assert_eq!(
            parse("123456789012345678901234567890123456789"),
            Err(JsonError::Number(NumberError::TooManyDigits(39)))
        );
        assert_eq!(parse_list("{}"), Err(JsonError::Expected("a JSON array")));
        assert_eq!(parse_map("[]"), Err(JsonError::Expected("a JSON object")));
    }
}

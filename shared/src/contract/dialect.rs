//! A CSV object's dialect: its field delimiter, its quote character, and whether its first
//! record is a header. Part of the schema (`"csv": {"delimiter": ";", "quote": "'",
//! "header": false}`), because it is how an object's bytes become the schema's columns: so it
//! travels wherever the schema does (the job item, every batch message, an S3-triggered job's
//! options) and is validated with it, before any work starts. Without a header, the columns
//! are the schema's, in order.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a CSV object's bytes are fields and records. The default is RFC 4180's: `,`, `"`, a
/// header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvDialect {
    /// Between fields: any single ASCII byte but the quote, `\n` and `\r` (`"\t"` for TSV).
    #[serde(default = "comma", with = "ascii_byte")]
    pub delimiter: u8,
    /// Around fields that hold the delimiter, the quote or a newline; doubled inside them.
    #[serde(default = "double_quote", with = "ascii_byte")]
    pub quote: u8,
    /// Whether the first record names the columns; `false`: every record is data, its fields
    /// the schema's columns in order.
    #[serde(default = "yes")]
    pub header: bool,
}

fn comma() -> u8 {
    b','
}

fn double_quote() -> u8 {
    b'"'
}

fn yes() -> bool {
    true
}

impl Default for CsvDialect {
    fn default() -> Self {
        Self {
            delimiter: comma(),
            quote: double_quote(),
            header: true,
        }
    }
}

impl CsvDialect {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// What makes the dialect unusable, if anything.
    pub fn problem(&self) -> Option<String> {
        let name = |b: u8| format!("{:?}", b as char);
        for (what, byte) in [("delimiter", self.delimiter), ("quote", self.quote)] {
            if !byte.is_ascii() || matches!(byte, b'\n' | b'\r') {
                return Some(format!(
                    "the {what} {} must be one ASCII character other than a newline",
                    name(byte)
                ));
            }
        }
        (self.delimiter == self.quote).then(|| {
            format!(
                "the delimiter and the quote are both {}",
                name(self.delimiter)
            )
        })
    }
}

/// One ASCII character on the wire (`";"`, `"\t"`), one byte inside.
mod ascii_byte {
    use super::*;

    pub fn serialize<S: Serializer>(byte: &u8, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&(*byte as char).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(deserializer)?;
        match text.as_bytes() {
            [byte] if byte.is_ascii() => Ok(*byte),
            _ => Err(D::Error::custom(format!(
                "expected one ASCII character, got {text:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_ascii_characters_with_defaults_for_what_is_left_out() {
        let tsv: CsvDialect = serde_json::from_str(r#"{"delimiter": "\t"}"#).unwrap();
        assert_eq!((tsv.delimiter, tsv.quote, tsv.header), (b'\t', b'"', true));
        let semi: CsvDialect =
            serde_json::from_str(r#"{"delimiter": ";", "quote": "'", "header": false}"#).unwrap();
        assert_eq!(
            (semi.delimiter, semi.quote, semi.header),
            (b';', b'\'', false)
        );
        assert_eq!(
            serde_json::to_string(&semi).unwrap(),
            r#"{"delimiter":";","quote":"'","header":false}"#
        );
        assert!(CsvDialect::default().is_default() && !semi.is_default());
        for bad in [
            r#"{"delimiter": ";;"}"#,
            r#"{"delimiter": ""}"#,
            r#"{"delimiter": "é"}"#,
            r#"{"separator": ";"}"#,
        ] {
            assert!(serde_json::from_str::<CsvDialect>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn newlines_and_a_delimiter_equal_to_the_quote_are_refused() {
        let with = |delimiter, quote| CsvDialect {
            delimiter,
            quote,
            header: true,
        };
        assert_eq!(with(b'|', b'"').problem(), None);
        assert_eq!(with(b'\t', b'\'').problem(), None);
        assert!(with(b'\n', b'"').problem().unwrap().contains("delimiter"));
        assert!(with(b',', b'\r').problem().unwrap().contains("quote"));
        assert!(with(b'"', b'"').problem().unwrap().contains("both"));
    }
}

//! The formats an object's bytes can be rows in, as a request and a batch message name them
//! (`"csv"`, `"jsonl"`, `"dynamodb_json"`, `"parquet"`), and which key suffixes are loadable and in which format. The decoders
//! are in [`crate::ingest::format`].

use serde::{Deserialize, Serialize};

/// How an object's bytes are rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// RFC 4180 CSV with a header naming the columns.
    #[serde(rename = "csv")]
    Csv,
    /// One JSON object per line, its top-level fields the columns.
    #[serde(rename = "jsonl")]
    JsonLines,
    /// One item per line in DynamoDB's typed JSON, `{"Item": {...}}` or bare (what
    /// DynamoDB's S3 exports write); the schema gives only the key.
    #[serde(rename = "dynamodb_json")]
    DynamoDbJson,
    /// Apache Parquet: columns typed by the schema like JSON Lines fields, read by row
    /// group (never `.gz`/`.zst`-wrapped: its pages carry their own codecs).
    #[serde(rename = "parquet")]
    Parquet,
}

/// Every suffix a loadable key ends with (matched case-insensitively), and its format.
pub const SUFFIXES: [(&str, Format); 13] = [
    (".csv", Format::Csv),
    (".csv.gz", Format::Csv),
    (".csv.zst", Format::Csv),
    (".jsonl", Format::JsonLines),
    (".jsonl.gz", Format::JsonLines),
    (".jsonl.zst", Format::JsonLines),
    (".ndjson", Format::JsonLines),
    (".ndjson.gz", Format::JsonLines),
    (".ndjson.zst", Format::JsonLines),
    (".json", Format::DynamoDbJson),
    (".json.gz", Format::DynamoDbJson),
    (".json.zst", Format::DynamoDbJson),
    (".parquet", Format::Parquet),
];

impl Format {
    /// The format a key's suffix names; `None`: not a loadable key (a folder marker, a
    /// bare suffix such as `.csv`, any other file).
    pub fn of_key(key: &str) -> Option<Format> {
        let lower = key.to_ascii_lowercase();
        SUFFIXES
            .iter()
            .find(|(suffix, _)| lower.len() > suffix.len() && lower.ends_with(suffix))
            .map(|&(_, format)| format)
    }

    /// The format an object is read in: the job's, else its key's (CSV for a key with no
    /// known suffix, as every key was before formats).
    pub fn resolve(requested: Option<Format>, key: &str) -> Format {
        requested
            .or_else(|| Format::of_key(key))
            .unwrap_or(Format::Csv)
    }

    /// Whether a large plain object of this format may be split into byte ranges: CSV's
    /// scan finds row starts, and a JSON Lines range's first line starts after its first
    /// newline (valid JSON text holds no raw newline).
    pub fn splits(self) -> bool {
        matches!(self, Format::Csv | Format::JsonLines)
    }

    /// Whether objects are planned by row group (from the footer) rather than by bytes.
    pub fn by_row_groups(self) -> bool {
        self == Format::Parquet
    }

    /// Whether every record is one line (a plain object then resumes at a line's offset).
    pub fn is_lines(self) -> bool {
        matches!(self, Format::JsonLines | Format::DynamoDbJson)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_pick_the_format_case_insensitively_and_bare_suffixes_are_not_keys() {
        assert_eq!(Format::of_key("d/a.csv"), Some(Format::Csv));
        assert_eq!(Format::of_key("d/a.CSV.ZST"), Some(Format::Csv));
        assert_eq!(Format::of_key("d/a.jsonl"), Some(Format::JsonLines));
        assert_eq!(Format::of_key("d/a.JSONL.gz"), Some(Format::JsonLines));
        assert_eq!(Format::of_key("d/a.ndjson.zst"), Some(Format::JsonLines));
        assert_eq!(Format::of_key("d/a.json"), Some(Format::DynamoDbJson));
        assert_eq!(
            Format::of_key("x/data/0a1b.json.GZ"),
            Some(Format::DynamoDbJson)
        );
        assert_eq!(Format::of_key("d/a.json.zst"), Some(Format::DynamoDbJson));
        assert_eq!(Format::of_key("d/part-0.PARQUET"), Some(Format::Parquet));
        assert_eq!(Format::of_key("d/a.parquet.gz"), None);
        for other in [
            ".jsonl",
            ".csv.gz",
            ".json",
            "d/a.gz",
            "d/a.jsonl.bz2",
            "d/",
        ] {
            assert_eq!(Format::of_key(other), None, "{other}");
        }
    }

    #[test]
    fn the_request_format_wins_over_the_suffix_and_parses_from_its_wire_names() {
        assert_eq!(Format::resolve(None, "a.ndjson"), Format::JsonLines);
        assert_eq!(Format::resolve(Some(Format::Csv), "a.jsonl"), Format::Csv);
        assert_eq!(Format::resolve(None, "a.txt"), Format::Csv);
        let parsed: Format = serde_json::from_str("\"jsonl\"").unwrap();
        assert_eq!(parsed, Format::JsonLines);
        assert_eq!(serde_json::to_string(&Format::Csv).unwrap(), "\"csv\"");
        assert!(serde_json::from_str::<Format>("\"json\"").is_err());
        let typed: Format = serde_json::from_str("\"dynamodb_json\"").unwrap();
        assert_eq!(typed, Format::DynamoDbJson);
        assert!(typed.is_lines() && !typed.splits() && !Format::Csv.is_lines());
        assert!(Format::Csv.splits() && Format::JsonLines.splits());
        let parquet: Format = serde_json::from_str("\"parquet\"").unwrap();
        assert_eq!(parquet, Format::Parquet);
        assert!(!parquet.splits() && !parquet.is_lines() && parquet.by_row_groups());
    }
}

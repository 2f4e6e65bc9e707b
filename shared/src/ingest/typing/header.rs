//! An object's header: its column names, checked once per object in linear time. A header
//! that cannot be used rejects the whole object.

use std::collections::HashMap;

use thiserror::Error;

use super::error::cap;
use crate::ingest::csv_stream::Record;

pub use crate::contract::schema::MAX_NAME_BYTES;
/// Header names an error lists before it only counts the rest.
const NAMES_IN_REASON: usize = 10;

/// Why a header cannot be used: the whole object is rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error(
        "header lacks required column(s) {} (found {})",
        names(missing),
        names(found)
    )]
    MissingColumns {
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("header names column {:?} twice", cap(.0, 64))]
    DuplicateColumn(String),
    #[error(
        "header column #{position} has a {bytes}-byte name, over DynamoDB's {MAX_NAME_BYTES}-byte attribute name limit"
    )]
    NameTooLong { position: usize, bytes: usize },
    #[error(
        "header column {:?} has the name of the composite key attribute; its values would be overwritten by the key",
        cap(.0, 64)
    )]
    KeyAttributeClash(String),
    #[error(
        "header column {:?} has the name of a mapped attribute; its values would be overwritten by the mapping",
        cap(.0, 64)
    )]
    MappedAttributeClash(String),
}

/// A list of names for a reason: the first few, then how many more.
fn names(list: &[String]) -> String {
    let shown: Vec<String> = list
        .iter()
        .take(NAMES_IN_REASON)
        .map(|n| format!("{:?}", cap(n, 64)))
        .collect();
    match list.len().saturating_sub(NAMES_IN_REASON) {
        0 => format!("[{}]", shown.join(", ")),
        more => format!("[{}, and {more} more]", shown.join(", ")),
    }
}

/// The header's names: padding trimmed (names are matched, not stored as values), a UTF-8
/// BOM dropped, and quotes a BOM kept around the first name removed (the CSV parser only
/// sees a quote as quoting at a field's very start, so `\u{feff}"a"` arrives quoted).
pub fn names_of(header: &Record) -> Vec<String> {
    header
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let name = String::from_utf8_lossy(raw);
            if i > 0 {
                return name.trim().to_owned();
            }
            let name = name.trim_start_matches('\u{feff}').trim();
            match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => name.to_owned(),
            }
        })
        .collect()
}

/// Where each named column is; empty names (a trailing comma) are not indexed: their columns
/// are never stored. Fails on a name seen twice or one too long for DynamoDB.
pub fn index(names: &[String]) -> Result<HashMap<&str, usize>, HeaderError> {
    let mut index = HashMap::with_capacity(names.len());
    for (position, name) in names.iter().enumerate() {
        if name.len() > MAX_NAME_BYTES {
            return Err(HeaderError::NameTooLong {
                position: position + 1,
                bytes: name.len(),
            });
        }
        if name.is_empty() {
            continue;
        }
        if index.insert(name.as_str(), position).is_some() {
            return Err(HeaderError::DuplicateColumn(name.clone()));
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(fields: &[&str]) -> Vec<String> {
        names_of(&Record::from_fields(fields))
    }

    #[test]
    fn bom_padding_and_a_bom_quoted_first_name_are_dropped() {
        assert_eq!(
            names(&["\u{feff}timestamp", " temp", "humidity ", "x"]),
            ["timestamp", "temp", "humidity", "x"]
        );
        assert_eq!(
            names(&["\u{feff}\"measure_point\"", "b"]),
            ["measure_point", "b"]
        );
        assert_eq!(names(&["\u{feff}\"a\"\"b\"", "c"]), ["a\"b", "c"]);
        // Only the first name can carry a BOM's quotes.
        assert_eq!(names(&["a", "\"b\""]), ["a", "\"b\""]);
    }

    #[test]
    fn duplicates_and_long_names_are_found_empty_names_are_not_indexed() {
        let dup = names(&["a", "b", "a"]);
        assert_eq!(index(&dup), Err(HeaderError::DuplicateColumn("a".into())));
        let trailing = names(&["a", "b", "", ""]);
        let found = index(&trailing).unwrap();
        assert_eq!(found.len(), 2);
        let long = vec!["a".to_owned(), "n".repeat(MAX_NAME_BYTES + 1)];
        assert_eq!(
            index(&long),
            Err(HeaderError::NameTooLong {
                position: 2,
                bytes: MAX_NAME_BYTES + 1
            })
        );
    }

    #[test]
    fn a_header_of_200k_names_is_checked_in_linear_time() {
        let many: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
        let started = std::time::Instant::now();
        assert_eq!(index(&many).unwrap().len(), 200_000);
        let mut dup = many.clone();
        dup.push("c0".into());
        assert_eq!(index(&dup), Err(HeaderError::DuplicateColumn("c0".into())));
        // Quadratic took minutes; linear takes milliseconds (generous for a loaded CI box).
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn reasons_list_a_few_names_and_count_the_rest() {
        let err = HeaderError::MissingColumns {
            missing: vec!["humidity".into()],
            found: (0..50).map(|i| format!("c{i}")).collect(),
        };
        let text = err.to_string();
        assert!(text.contains("\"humidity\""), "{text}");
        assert!(text.contains("and 40 more"), "{text}");
        assert!(text.len() < 200, "{text}");
    }
}

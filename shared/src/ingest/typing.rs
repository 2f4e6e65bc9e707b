//! Types one CSV row into one DynamoDB item, by the job's schema. Columns are matched by header
//! name in any order; every column lands as an attribute under its header name (declared ones
//! typed, extra ones as strings); the key attributes are the key columns' values joined by
//! `#`. A row that cannot be typed yields a reason naming the column; the caller rejects it.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use thiserror::Error;

use crate::contract::schema::{ColumnType, Schema};
use crate::ingest::csv_stream::Record;
pub use crate::ingest::item::Item;
use crate::ingest::item::Value;

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Why a header cannot be used: the whole object is rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("header lacks required column(s) {missing:?} (found {found:?})")]
    MissingColumns {
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("header names column {0:?} twice")]
    DuplicateColumn(String),
}

/// One row, typed and keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedRow {
    /// (partition key, sort key or empty): identifies the item, for de-duplication.
    pub key: (String, String),
    pub item: Item,
}

/// How one header position is typed.
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    kind: ColumnType,
    nullable: bool,
    declared: bool,
}

/// A schema applied to one object's header.
#[derive(Debug, Clone)]
pub struct RowTyper {
    slots: Vec<Slot>,
    partition: Vec<usize>,
    sort: Vec<usize>,
    partition_attribute: String,
    sort_attribute: Option<String>,
}

impl RowTyper {
    pub fn new(schema: &Schema, header: &Record) -> Result<Self, HeaderError> {
        let found: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let name = String::from_utf8_lossy(raw);
                let name = if i == 0 {
                    name.trim_start_matches('\u{feff}')
                } else {
                    &name
                };
                name.trim().to_owned()
            })
            .collect();
        for (i, name) in found.iter().enumerate() {
            if found[..i].contains(name) {
                return Err(HeaderError::DuplicateColumn(name.clone()));
            }
        }
        let missing: Vec<String> = schema
            .columns
            .iter()
            .filter(|c| !c.nullable && !found.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(HeaderError::MissingColumns { missing, found });
        }
        let slots = found
            .iter()
            .map(|name| match schema.column(name) {
                Some(column) => Slot {
                    name: name.clone(),
                    kind: column.kind,
                    nullable: column.nullable,
                    declared: true,
                },
                None => Slot {
                    name: name.clone(),
                    kind: ColumnType::String,
                    nullable: true,
                    declared: false,
                },
            })
            .collect();
        // Key columns are non-nullable, so validated schemas have them in `found`.
        let positions = |names: &[String]| -> Vec<usize> {
            names
                .iter()
                .filter_map(|n| found.iter().position(|f| f == n))
                .collect()
        };
        Ok(Self {
            slots,
            partition: positions(&schema.partition_key),
            sort: positions(&schema.sort_key),
            partition_attribute: schema.partition_attribute(),
            sort_attribute: schema.sort_attribute(),
        })
    }

    /// Number of fields every row must have.
    pub fn width(&self) -> usize {
        self.slots.len()
    }

    pub fn type_row(&self, row: &Record) -> Result<TypedRow, String> {
        if row.len() != self.slots.len() {
            return Err(format!(
                "expected {} fields, found {}",
                self.slots.len(),
                row.len()
            ));
        }
        let mut item = Item::with_capacity(self.slots.len() + 2);
        let mut size = 0;
        for (i, (slot, raw)) in self.slots.iter().zip(row.iter()).enumerate() {
            let text = std::str::from_utf8(raw)
                .map_err(|_| format!("column {}: invalid UTF-8", slot.name))?;
            let trimmed = text.trim();
            if trimmed.is_empty() {
                if slot.nullable {
                    continue;
                }
                let what = if self.is_key(i) {
                    "empty key field"
                } else {
                    "empty value in a non-nullable column"
                };
                return Err(format!("column {}: {what}", slot.name));
            }
            let value = typed(slot.kind, if slot.declared { trimmed } else { text })
                .map_err(|e| format!("column {}: {e}", slot.name))?;
            size += slot.name.len() + value_size(&value);
            item.insert(slot.name.clone(), value);
        }
        let partition = self.key_text(&item, &self.partition);
        let sort = self.key_text(&item, &self.sort);
        size += insert_key(&mut item, &self.partition_attribute, &partition);
        if let Some(attribute) = &self.sort_attribute {
            size += insert_key(&mut item, attribute, &sort);
        }
        if size > MAX_ITEM_BYTES {
            return Err(format!(
                "item is about {size} bytes, over DynamoDB's 400 KB item limit"
            ));
        }
        Ok(TypedRow {
            key: (partition, sort),
            item,
        })
    }

    /// The key columns' canonical texts joined by `#` (key columns are never null).
    fn key_text(&self, item: &Item, positions: &[usize]) -> String {
        let text = |&i: &usize| match item.get(&self.slots[i].name) {
            Some(Value::S(s) | Value::N(s)) => s.as_str(),
            _ => "",
        };
        match positions {
            [single] => text(single).to_owned(),
            _ => positions.iter().map(text).collect::<Vec<_>>().join("#"),
        }
    }

    fn is_key(&self, position: usize) -> bool {
        self.partition.contains(&position) || self.sort.contains(&position)
    }
}

/// A field's attribute value. Key columns are strings, numbers or timestamps, whose S or N
/// text is also what the key holds.
fn typed(kind: ColumnType, text: &str) -> Result<Value, String> {
    Ok(match kind {
        ColumnType::String => Value::S(text.to_owned()),
        ColumnType::Number => Value::N(parse_decimal(text)?),
        ColumnType::Integer => {
            let n: i64 = text
                .parse()
                .map_err(|_| format!("invalid integer {text:?}"))?;
            Value::N(n.to_string())
        }
        ColumnType::Bool => Value::Bool(match text.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("invalid bool {text:?} (true/false/1/0)")),
        }),
        ColumnType::Timestamp => Value::S(normalise_timestamp(text)?),
    })
}

/// Sets a key attribute unless the column of the same name already holds that very string
/// (the common single-column key); returns the bytes it added.
fn insert_key(item: &mut Item, attribute: &str, text: &str) -> usize {
    match item.get(attribute) {
        Some(Value::S(existing)) if existing == text => 0,
        _ => {
            item.insert(attribute.to_owned(), Value::S(text.to_owned()));
            attribute.len() + text.len()
        }
    }
}

/// Bytes a value adds to DynamoDB's item size.
fn value_size(value: &Value) -> usize {
    match value {
        Value::S(s) | Value::N(s) => s.len(),
        _ => 1,
    }
}

/// Accepts the seed's `YYYY-MM-DD HH:MM:SS UTC` and RFC 3339; returns RFC 3339 UTC.
pub fn normalise_timestamp(raw: &str) -> Result<String, String> {
    if let Some(fast) = seed_timestamp(raw) {
        return Ok(fast);
    }
    let parsed = if let Some(naive) = raw.strip_suffix(" UTC") {
        NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
    } else {
        DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc))
    };
    parsed
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .map_err(|e| format!("invalid timestamp {raw:?}: {e}"))
}

/// The seed's exact form, `2025-11-26 02:56:13 UTC`, validated and rewritten without a
/// general parser: it is most of the timestamps this pipeline sees.
fn seed_timestamp(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let shape_ok = b.len() == 23
        && raw.ends_with(" UTC")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':';
    if !shape_ok {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?.and_hms_opt(
        number(11, 13)?,
        number(14, 16)?,
        number(17, 19)?,
    )?;
    let mut out = String::with_capacity(20);
    out.push_str(&raw[..10]);
    out.push('T');
    out.push_str(&raw[11..19]);
    out.push('Z');
    Some(out)
}

/// A finite decimal DynamoDB accepts as N: `[+-]digits[.digits][e[+-]digits]`, at most 38
/// significant digits. Returned as written (minus a leading `+`), so no precision is lost.
pub fn parse_decimal(raw: &str) -> Result<String, String> {
    let invalid = || format!("invalid number {raw:?}");
    let unsigned = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(invalid());
    }
    if let Some(exponent) = exponent {
        let e = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if e.is_empty() || !digits(e) || e.len() > 3 {
            return Err(invalid());
        }
    }
    let significant = format!("{whole}{fraction}");
    if significant
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        > 38
    {
        return Err(format!(
            "number {raw:?} has more than 38 significant digits"
        ));
    }
    Ok(raw.strip_prefix('+').unwrap_or(raw).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::schema::Column;

    fn record(fields: &[&str]) -> Record {
        Record::from_fields(fields)
    }

    fn sensor(header: &[&str]) -> RowTyper {
        RowTyper::new(&Schema::sensor(), &record(header)).unwrap()
    }

    const HEADER: [&str; 4] = ["timestamp", "temp", "humidity", "measure_point"];

    #[test]
    fn a_seed_row_becomes_a_typed_keyed_item() {
        let row = sensor(&HEADER)
            .type_row(&record(&[
                "2025-11-26 02:56:13 UTC",
                "19.8",
                "59.1",
                "Kyiv_18",
            ]))
            .unwrap();
        assert_eq!(row.key, ("Kyiv_18".into(), "2025-11-26T02:56:13Z".into()));
        assert_eq!(row.item["temp"], Value::N("19.8".into()));
        assert_eq!(row.item["humidity"], Value::N("59.1".into()));
        assert_eq!(
            row.item["timestamp"],
            Value::S("2025-11-26T02:56:13Z".into())
        );
        assert_eq!(row.item["measure_point"], Value::S("Kyiv_18".into()));
        assert_eq!(row.item.len(), 4);
    }

    #[test]
    fn extra_columns_are_kept_as_strings_and_order_does_not_matter() {
        let typer = sensor(&["note", "measure_point", "humidity", "timestamp", "temp"]);
        let row = typer
            .type_row(&record(&[
                "  spaced ",
                "Lviv",
                "60",
                "2025-01-02T03:04:05+02:00",
                "-3e2",
            ]))
            .unwrap();
        assert_eq!(row.item["note"], Value::S("  spaced ".into()));
        assert_eq!(
            row.item["timestamp"],
            Value::S("2025-01-02T01:04:05Z".into())
        );
        assert_eq!(row.item["temp"], Value::N("-3e2".into()));
        let empty_extra = typer
            .type_row(&record(&["", "Lviv", "60", "2025-01-02T03:04:05Z", "1"]))
            .unwrap();
        assert!(!empty_extra.item.contains_key("note"));
    }

    #[test]
    fn bad_fields_are_named() {
        let typer = sensor(&HEADER);
        let reason = |fields: [&str; 4]| typer.type_row(&record(&fields)).unwrap_err();
        assert_eq!(
            reason(["2025-11-26 02:56:13 UTC", "hot", "1", "K"]),
            "column temp: invalid number \"hot\""
        );
        assert!(
            reason(["yesterday", "1", "1", "K"]).starts_with("column timestamp: invalid timestamp")
        );
        assert_eq!(
            reason(["2025-11-26 02:56:13 UTC", "1", "NaN", "K"]),
            "column humidity: invalid number \"NaN\""
        );
        assert_eq!(
            reason(["2025-11-26 02:56:13 UTC", "1", "1", " "]),
            "column measure_point: empty key field"
        );
        assert_eq!(
            reason(["2025-11-26 02:56:13 UTC", "", "1", "K"]),
            "column temp: empty value in a non-nullable column"
        );
        assert_eq!(
            typer.type_row(&record(&["a", "b"])).unwrap_err(),
            "expected 4 fields, found 2"
        );
        let bad_utf8 =
            Record::from_fields(&[&b"2025-11-26 02:56:13 UTC"[..], b"1", b"1", &[b'K', 0xff]]);
        assert_eq!(
            typer.type_row(&bad_utf8).unwrap_err(),
            "column measure_point: invalid UTF-8"
        );
    }

    #[test]
    fn an_item_over_400_kb_is_rejected() {
        let typer = sensor(&["timestamp", "temp", "humidity", "measure_point", "blob"]);
        let blob = "x".repeat(MAX_ITEM_BYTES);
        let reason = typer
            .type_row(&record(&["2025-11-26 02:56:13 UTC", "1", "1", "K", &blob]))
            .unwrap_err();
        assert!(reason.contains("400 KB"), "{reason}");
    }

    #[test]
    fn header_problems_reject_the_file() {
        let err = RowTyper::new(
            &Schema::sensor(),
            &record(&["timestamp", "temp", "measure_point"]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            HeaderError::MissingColumns {
                missing: vec!["humidity".into()],
                found: vec!["timestamp".into(), "temp".into(), "measure_point".into()],
            }
        );
        let err = RowTyper::new(&Schema::sensor(), &record(&["temp", "temp"])).unwrap_err();
        assert_eq!(err, HeaderError::DuplicateColumn("temp".into()));
        // A BOM and padding around header names are ignored.
        assert!(
            RowTyper::new(
                &Schema::sensor(),
                &record(&["\u{feff}timestamp", " temp", "humidity ", "measure_point"])
            )
            .is_ok()
        );
    }

    #[test]
    fn user_schema_types_nullables_and_composite_keys() {
        let schema = Schema {
            columns: vec![
                Column {
                    name: "site".into(),
                    kind: ColumnType::String,
                    nullable: false,
                },
                Column {
                    name: "day".into(),
                    kind: ColumnType::Timestamp,
                    nullable: false,
                },
                Column {
                    name: "seq".into(),
                    kind: ColumnType::Integer,
                    nullable: false,
                },
                Column {
                    name: "ok".into(),
                    kind: ColumnType::Bool,
                    nullable: true,
                },
                Column {
                    name: "reading".into(),
                    kind: ColumnType::Number,
                    nullable: true,
                },
            ],
            partition_key: vec!["site".into()],
            sort_key: vec!["day".into(), "seq".into()],
        };
        let typer = RowTyper::new(&schema, &record(&["seq", "site", "day", "ok"])).unwrap();
        let row = typer
            .type_row(&record(&["7", "A", "2025-11-26 00:00:00 UTC", "TRUE"]))
            .unwrap();
        assert_eq!(row.key, ("A".into(), "2025-11-26T00:00:00Z#7".into()));
        assert_eq!(
            row.item["day#seq"],
            Value::S("2025-11-26T00:00:00Z#7".into())
        );
        assert_eq!(row.item["seq"], Value::N("7".into()));
        assert_eq!(row.item["ok"], Value::Bool(true));
        assert!(
            !row.item.contains_key("reading"),
            "nullable and absent from the header"
        );
        let no_ok = typer
            .type_row(&record(&["8", "A", "2025-11-26 00:00:00 UTC", ""]))
            .unwrap();
        assert!(!no_ok.item.contains_key("ok"));
        assert_eq!(
            typer
                .type_row(&record(&["x", "A", "2025-11-26 00:00:00 UTC", ""]))
                .unwrap_err(),
            "column seq: invalid integer \"x\""
        );
        assert_eq!(
            typer
                .type_row(&record(&["1", "A", "2025-11-26 00:00:00 UTC", "maybe"]))
                .unwrap_err(),
            "column ok: invalid bool \"maybe\" (true/false/1/0)"
        );
    }

    #[test]
    fn decimals_are_validated_and_kept_as_written() {
        for ok in [
            "0",
            "19.8",
            "-3",
            "+4.5",
            ".5",
            "5.",
            "1e10",
            "1.5E-3",
            "000123.4500",
        ] {
            assert!(parse_decimal(ok).is_ok(), "{ok}");
        }
        assert_eq!(parse_decimal("+4.5").unwrap(), "4.5");
        assert_eq!(
            parse_decimal("12345678901234567890.123456789012345678")
                .unwrap()
                .len(),
            39
        );
        for bad in [
            "", ".", "-", "1.2.3", "1e", "e5", "inf", "NaN", "0x10", "1_000", "1e1000", " 1",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad}");
        }
        assert!(parse_decimal("1234567890123456789012345678901234567890").is_err());
        // Leading and trailing zeros are not significant.
        assert!(parse_decimal(&format!("0.000{}", "1".repeat(38))).is_ok());
        assert!(parse_decimal(&format!("{}000000", "1".repeat(38))).is_ok());
        assert!(parse_decimal(&format!("{}.5", "1".repeat(38))).is_err());
    }

    #[test]
    fn timestamps_normalise_to_rfc3339_utc() {
        assert_eq!(
            normalise_timestamp("2025-11-26 02:56:13 UTC").unwrap(),
            "2025-11-26T02:56:13Z"
        );
        assert_eq!(
            normalise_timestamp("2025-11-26T02:56:13.250-01:00").unwrap(),
            "2025-11-26T03:56:13.250Z"
        );
        assert!(normalise_timestamp("2025-13-26 02:56:13 UTC").is_err());
        assert!(normalise_timestamp("2025-02-30 02:56:13 UTC").is_err());
        assert!(normalise_timestamp("2025-11-26 24:56:13 UTC").is_err());
        assert!(normalise_timestamp("2025-11-2x 02:56:13 UTC").is_err());
        assert_eq!(
            normalise_timestamp("2024-02-29 23:59:59 UTC").unwrap(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(
            normalise_timestamp("2025-11-26 02:56:13.5 UTC").unwrap(),
            "2025-11-26T02:56:13.500Z"
        );
        assert!(normalise_timestamp("").is_err());
    }
}

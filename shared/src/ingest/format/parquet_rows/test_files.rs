//! Parquet files for tests, written by the parquet crate's own writer: every type the
//! decoder maps, nulls, a nested list and struct, in row groups of chosen sizes and a
//! chosen codec; and what each row must read back as (the schema declaring them, the item).
//! Built for the crate's tests and, with the `contract` feature, the emulator tier's.

use std::collections::BTreeMap;
use std::sync::Arc;

use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use ::parquet::schema::parser::parse_message_type;

use crate::contract::schema::Schema;
use crate::ingest::item::Value;

/// Every leaf in file order: id, n64, n32, price, ratio, cents, big, name, blob, flag,
/// day, at, tags.list.element, address.city, address.zip.
pub const EVERY_TYPE: &str = "
message row {
  required binary id (STRING);
  required int64 n64;
  optional int32 n32;
  optional double price;
  optional float ratio;
  optional int64 cents (DECIMAL(18,2));
  optional binary big (DECIMAL(30,3));
  optional binary name (STRING);
  optional binary blob;
  optional boolean flag;
  optional int32 day (DATE);
  optional int64 at (TIMESTAMP(MILLIS,true));
  optional group tags (LIST) {
    repeated group list {
      optional binary element (STRING);
    }
  }
  optional group address {
    optional binary city (STRING);
    optional int32 zip;
  }
}";

/// Row `i`'s id.
pub fn id(i: usize) -> String {
    format!("r{i:05}")
}

/// Beyond f64's exact integers, so a float round trip would show.
pub fn n64(i: usize) -> i64 {
    9_007_199_254_740_993 + i as i64
}

/// The unscaled value of `big` (scale 3): 27 digits.
pub fn big(i: usize) -> i128 {
    123_456_789_012_345_678_901_234_567 + i as i128
}

/// Rows `i % 5 == 0` have every optional column null.
pub fn is_null_row(i: usize) -> bool {
    i.is_multiple_of(5)
}

/// Row `bad_row` (if any) has a NaN price, row `infinite_row` an infinite ratio: rejects.
pub struct Spec {
    pub groups: Vec<usize>,
    pub codec: Compression,
    pub bad_row: Option<usize>,
    pub infinite_row: Option<usize>,
    /// The number of the file's first row (files of one job number apart).
    pub first_row: usize,
}

impl Spec {
    pub fn new(groups: &[usize], codec: Compression) -> Self {
        Self {
            groups: groups.to_vec(),
            codec,
            bad_row: None,
            infinite_row: None,
            first_row: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.groups.iter().sum()
    }
}

pub fn snappy() -> Compression {
    Compression::SNAPPY
}

pub fn zstd() -> Compression {
    Compression::ZSTD(ZstdLevel::default())
}

/// A file of `spec.groups` row groups (rows numbered on across groups).
pub fn every_type_file(spec: &Spec) -> Vec<u8> {
    let schema = Arc::new(parse_message_type(EVERY_TYPE).expect("schema parses"));
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(spec.codec)
            .build(),
    );
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, props).expect("writer");
    let mut first = spec.first_row;
    for &count in &spec.groups {
        let rows: Vec<usize> = (first..first + count).collect();
        first += count;
        let mut group = writer.next_row_group().expect("row group");
        let mut leaf = 0;
        while let Some(mut column) = group.next_column().expect("column") {
            write_leaf(&mut column, leaf, &rows, spec);
            column.close().expect("column closes");
            leaf += 1;
        }
        group.close().expect("row group closes");
    }
    writer.close().expect("file closes");
    out
}

/// Definition levels of an optional leaf: 1 where present, 0 in a null row.
fn defs(rows: &[usize]) -> Vec<i16> {
    rows.iter().map(|&i| i16::from(!is_null_row(i))).collect()
}

fn present(rows: &[usize]) -> impl Iterator<Item = usize> + '_ {
    rows.iter().copied().filter(|&i| !is_null_row(i))
}

fn text(s: String) -> ByteArray {
    ByteArray::from(s.into_bytes())
}

fn write_leaf(column: &mut SerializedColumnWriter<'_>, leaf: usize, rows: &[usize], spec: &Spec) {
    let bad = spec.bad_row;
    let d = defs(rows);
    let result = match leaf {
        0 => column.typed::<ByteArrayType>().write_batch(
            &rows.iter().map(|&i| text(id(i))).collect::<Vec<_>>(),
            None,
            None,
        ),
        1 => column.typed::<Int64Type>().write_batch(
            &rows.iter().map(|&i| n64(i)).collect::<Vec<_>>(),
            None,
            None,
        ),
        2 => column.typed::<Int32Type>().write_batch(
            &present(rows).map(|i| -(i as i32)).collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        3 => column.typed::<DoubleType>().write_batch(
            &present(rows)
                .map(|i| {
                    if Some(i) == bad {
                        f64::NAN
                    } else {
                        i as f64 + 0.25
                    }
                })
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        4 => column.typed::<FloatType>().write_batch(
            &present(rows)
                .map(|i| {
                    if Some(i) == spec.infinite_row {
                        f32::INFINITY
                    } else {
                        0.1f32
                    }
                })
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        5 => column.typed::<Int64Type>().write_batch(
            &present(rows)
                .map(|i| i as i64 * 100 + 7)
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        6 => column.typed::<ByteArrayType>().write_batch(
            &present(rows)
                .map(|i| ByteArray::from(big(i).to_be_bytes().to_vec()))
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        7 => column.typed::<ByteArrayType>().write_batch(
            &present(rows)
                .map(|i| text(format!("name {i}")))
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        8 => column.typed::<ByteArrayType>().write_batch(
            &present(rows)
                .map(|i| ByteArray::from(vec![i as u8, 0xff, 0]))
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        9 => column.typed::<BoolType>().write_batch(
            &present(rows)
                .map(|i| i.is_multiple_of(2))
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        10 => column.typed::<Int32Type>().write_batch(
            &present(rows).map(|i| 19_000 + i as i32).collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        11 => column.typed::<Int64Type>().write_batch(
            &present(rows)
                .map(|i| 1_700_000_000_000 + i as i64)
                .collect::<Vec<_>>(),
            Some(&d),
            None,
        ),
        12 => {
            // Two elements, the second null, in a present list; a null list in a null row.
            let mut values = Vec::new();
            let (mut def, mut rep) = (Vec::new(), Vec::new());
            for &i in rows {
                if is_null_row(i) {
                    def.push(0);
                    rep.push(0);
                } else {
                    values.push(text(format!("t{i}")));
                    def.extend([3, 2]);
                    rep.extend([0, 1]);
                }
            }
            column
                .typed::<ByteArrayType>()
                .write_batch(&values, Some(&def), Some(&rep))
        }
        13 => {
            // The struct is present in every row, its city null in null rows.
            let def: Vec<i16> = rows
                .iter()
                .map(|&i| 1 + i16::from(!is_null_row(i)))
                .collect();
            column.typed::<ByteArrayType>().write_batch(
                &present(rows)
                    .map(|i| text(format!("c{i}")))
                    .collect::<Vec<_>>(),
                Some(&def),
                None,
            )
        }
        14 => column.typed::<Int32Type>().write_batch(
            &rows.iter().map(|&i| 10_000 + i as i32).collect::<Vec<_>>(),
            Some(&vec![2; rows.len()]),
            None,
        ),
        other => panic!("no leaf {other}"),
    };
    result.expect("column written");
}

/// The every-type file's columns, declared.
pub fn every_type_schema() -> Schema {
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "n64", "type": "integer"},
            {"name": "n32", "type": "integer", "nullable": true},
            {"name": "price", "type": "number", "nullable": true},
            {"name": "ratio", "type": "number", "nullable": true},
            {"name": "cents", "type": "number", "nullable": true},
            {"name": "big", "type": "number", "nullable": true},
            {"name": "name", "type": "string", "nullable": true},
            {"name": "blob", "type": "binary", "nullable": true},
            {"name": "flag", "type": "bool", "nullable": true},
            {"name": "day", "type": "string", "nullable": true},
            {"name": "at", "type": "timestamp", "nullable": true},
            {"name": "tags", "type": "list", "nullable": true},
            {"name": "address", "type": "map", "nullable": true},
        ],
    }))
    .expect("the every-type schema parses");
    schema.validate().expect("the every-type schema is valid");
    schema
}

fn n(text: &str) -> Value {
    Value::N(text.into())
}

fn s(text: &str) -> Value {
    Value::S(text.into())
}

/// The every-type file's nullable top-level columns.
pub const NULLABLE: [&str; 12] = [
    "n32", "price", "ratio", "cents", "big", "name", "blob", "flag", "day", "at", "tags", "address",
];

/// What row `i` must be under a schema storing empty values as NULL (`empty_values: null`):
/// a null row's columns are NULL attributes, not absent ones.
pub fn expected_item_with_nulls(i: usize) -> BTreeMap<String, Value> {
    let mut item = expected_item(i);
    for name in NULLABLE {
        item.entry(name.to_owned()).or_insert(Value::Null);
    }
    item
}

/// What row `i` of the every-type file must be, as an item.
pub fn expected_item(i: usize) -> BTreeMap<String, Value> {
    let mut item = BTreeMap::from([
        ("id".to_owned(), s(&id(i))),
        ("n64".to_owned(), n(&n64(i).to_string())),
    ]);
    let mut address = BTreeMap::from([("zip".to_owned(), n(&(10_000 + i).to_string()))]);
    if is_null_row(i) {
        address.insert("city".into(), Value::Null);
    } else {
        let big = big(i).to_string();
        let (whole, fraction) = big.split_at(big.len() - 3);
        item.extend([
            ("n32".to_owned(), n(&format!("-{i}"))),
            ("price".to_owned(), n(&format!("{i}.25"))),
            ("ratio".to_owned(), n("0.1")),
            ("cents".to_owned(), n(&format!("{i}.07"))),
            // Canonical: no trailing zeros.
            (
                "big".to_owned(),
                n(format!("{whole}.{fraction}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')),
            ),
            ("name".to_owned(), s(&format!("name {i}"))),
            ("blob".to_owned(), Value::B(vec![i as u8, 0xff, 0])),
            ("flag".to_owned(), Value::Bool(i.is_multiple_of(2))),
            (
                "tags".to_owned(),
                Value::L(vec![s(&format!("t{i}")), Value::Null]),
            ),
        ]);
        let day = chrono::NaiveDate::from_ymd_opt(2022, 1, 8).unwrap()
            + chrono::TimeDelta::days(i as i64);
        item.insert("day".into(), s(&day.format("%Y-%m-%d").to_string()));
        let at = chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + i as i64).unwrap();
        item.insert(
            "at".into(),
            s(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        );
        address.insert("city".into(), s(&format!("c{i}")));
    }
    item.insert("address".into(), Value::M(address));
    item
}

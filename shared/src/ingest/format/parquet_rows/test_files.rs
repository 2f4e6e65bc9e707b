//! Parquet files for tests, written by the parquet crate's own writer: every type the
//! decoder maps, nulls, a nested list and struct, in row groups of chosen sizes and a
//! chosen codec.

use std::sync::Arc;

use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use ::parquet::schema::parser::parse_message_type;

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

/// Row `bad_row` (if any) has a NaN price, for a reject.
pub struct Spec {
    pub groups: Vec<usize>,
    pub codec: Compression,
    pub bad_row: Option<usize>,
    /// The number of the file's first row (files of one job number apart).
    pub first_row: usize,
}

impl Spec {
    pub fn new(groups: &[usize], codec: Compression) -> Self {
        Self {
            groups: groups.to_vec(),
            codec,
            bad_row: None,
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
            write_leaf(&mut column, leaf, &rows, spec.bad_row);
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

fn write_leaf(
    column: &mut SerializedColumnWriter<'_>,
    leaf: usize,
    rows: &[usize],
    bad: Option<usize>,
) {
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
            &present(rows).map(|_| 0.1f32).collect::<Vec<_>>(),
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

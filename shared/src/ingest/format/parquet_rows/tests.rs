//! The Parquet decoder: every type lands as the schema declares, exactly; nulls by the
//! policy; nested list and struct; a bad value rejects its row alone; a corrupt footer
//! rejects the object; chosen row groups only, numbered as in the file; skip for resumes.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::footer::{self, FooterError};
use super::test_files::{Spec, every_type_file, snappy, zstd};
pub use super::test_files::{every_type_schema, expected_item};
use super::{ParquetDecoder, ParquetOpenError, Sparse};
use crate::ingest::decode::{Decoded, DecodedObject};
use crate::ingest::item::Value;

fn drain(decoder: &mut ParquetDecoder) -> DecodedObject {
    let mut out = DecodedObject::default();
    while let Some(decoded) = decoder.next_decoded() {
        match decoded {
            Decoded::Row(row) => out.rows.push(row),
            Decoded::Reject(reject) => out.rejects.push(reject),
        }
    }
    out
}

fn open(file: Vec<u8>) -> Result<ParquetDecoder, ParquetOpenError> {
    ParquetDecoder::open(Sparse::whole(Bytes::from(file)), None, &every_type_schema())
}

#[test]
fn every_type_lands_as_declared_exactly_with_nulls_and_nesting_in_snappy_and_zstd() {
    for codec in [
        snappy(),
        zstd(),
        ::parquet::basic::Compression::GZIP(Default::default()),
    ] {
        let spec = Spec::new(&[7, 5, 9], codec);
        let decoded = drain(&mut open(every_type_file(&spec)).unwrap());
        assert!(
            decoded.rejects.is_empty(),
            "{codec:?}: {:?}",
            decoded.rejects
        );
        assert_eq!(decoded.rows.len(), spec.rows(), "{codec:?}");
        for (i, row) in decoded.rows.iter().enumerate() {
            assert_eq!(row.line, i as u64 + 1);
            let item: BTreeMap<String, Value> = row
                .item
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(item, expected_item(i), "{codec:?} row {i}");
        }
    }
}

#[test]
fn a_nan_rejects_its_row_alone_with_its_row_number_and_reason() {
    let mut spec = Spec::new(&[4, 4], snappy());
    spec.bad_row = Some(6);
    let decoded = drain(&mut open(every_type_file(&spec)).unwrap());
    assert_eq!(decoded.rows.len(), 7);
    assert_eq!(decoded.rejects.len(), 1);
    let reject = &decoded.rejects[0];
    assert_eq!(reject.line, 7);
    assert!(
        reject.reason.contains("price") && reject.reason.contains("NaN"),
        "{reject:?}"
    );
    assert!(reject.raw.contains("r00006"), "{reject:?}");
}

#[test]
fn chosen_row_groups_only_numbered_as_in_the_file_and_skip_resumes_mid_group() {
    let file = Bytes::from(every_type_file(&Spec::new(&[3, 4, 5], zstd())));
    let schema = every_type_schema();
    let mut decoder =
        ParquetDecoder::open(Sparse::whole(file.clone()), Some(1..2), &schema).unwrap();
    let rows = drain(&mut decoder).rows;
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    let mut resumed = ParquetDecoder::open(Sparse::whole(file), Some(1..3), &schema).unwrap();
    assert_eq!(resumed.skip(6), 6);
    let rest = drain(&mut resumed).rows;
    assert_eq!(
        rest.iter().map(|r| r.line).collect::<Vec<_>>(),
        [10, 11, 12]
    );
    assert_eq!(resumed.records(), 9);
}

#[test]
fn only_the_footer_and_the_chosen_groups_chunks_are_needed() {
    let file = every_type_file(&Spec::new(&[3, 4, 5], snappy()));
    let size = file.len() as u64;
    let length = footer::metadata_length(&file[file.len() - 8..], size).unwrap();
    let start = footer::footer_start(size, length);
    let meta = footer::decode(&file[start as usize..file.len() - 8]).unwrap();
    let spans = footer::row_groups(&meta, size, None).unwrap();
    assert_eq!(spans.iter().map(|g| g.rows).collect::<Vec<_>>(), [3, 4, 5]);
    let mut sparse = Sparse::new(size);
    sparse.insert(start, Bytes::copy_from_slice(&file[start as usize..]));
    let g = spans[2];
    sparse.insert(
        g.start,
        Bytes::copy_from_slice(&file[g.start as usize..g.end as usize]),
    );
    let rows =
        drain(&mut ParquetDecoder::open(sparse, Some(2..3), &every_type_schema()).unwrap()).rows;
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].line, 8);
}

#[test]
fn a_corrupt_footer_is_refused_with_its_reason() {
    let good = every_type_file(&Spec::new(&[2], snappy()));
    let mut magic = good.clone();
    let end = magic.len();
    magic[end - 1] = b'X';
    let mut length = good.clone();
    length[end - 8..end - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut garbage = good.clone();
    let meta_len = footer::metadata_length(&good[end - 8..], end as u64).unwrap() as usize;
    for b in &mut garbage[end - 8 - meta_len..end - 8] {
        *b = 0xee;
    }
    type Expected = fn(&FooterError) -> bool;
    let cases: [(Vec<u8>, Expected); 4] = [
        (magic, |e| *e == FooterError::BadMagic),
        (length, |e| matches!(e, FooterError::BadLength { .. })),
        (garbage, |e| matches!(e, FooterError::Metadata(_))),
        (b"PAR1".to_vec(), |e| {
            matches!(e, FooterError::TooSmall { .. })
        }),
    ];
    for (file, expected) in cases {
        match open(file) {
            Err(ParquetOpenError::Footer(error)) => {
                assert!(expected(&error), "{error}");
                assert!(error.to_string().contains("Parquet"), "{error}");
            }
            Err(other) => panic!("not a footer error: {other}"),
            Ok(_) => panic!("a corrupt footer opened"),
        }
    }
}

#[test]
fn a_corrupt_page_rejects_the_rest_of_its_row_group_row_by_row_and_the_next_groups_load() {
    let mut file = every_type_file(&Spec::new(&[5, 6, 7], snappy()));
    let size = file.len() as u64;
    let length = footer::metadata_length(&file[file.len() - 8..], size).unwrap();
    let start = footer::footer_start(size, length) as usize;
    let meta = footer::decode(&file[start..file.len() - 8]).unwrap();
    // Group 1's `name` column chunk (its one page, header and data) overwritten.
    let (from, length) = meta.row_group(1).column(7).byte_range();
    for b in &mut file[from as usize..(from + length) as usize] {
        *b = 0xff;
    }
    let file = Bytes::from(file);
    let decoded = drain(&mut open(file.to_vec()).unwrap());
    let lines = |rows: &[crate::ingest::typing::TypedRow]| -> Vec<u64> {
        rows.iter().map(|r| r.line).collect()
    };
    assert_eq!(
        lines(&decoded.rows),
        [1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18]
    );
    let rejected: Vec<u64> = decoded.rejects.iter().map(|r| r.line).collect();
    assert_eq!(
        rejected,
        [6, 7, 8, 9, 10, 11],
        "each row of the group, once"
    );
    for (reject, row) in decoded.rejects.iter().zip(0..) {
        assert!(
            reject.reason.starts_with(&format!(
                "row group 1, row {row}: the row group's data does not decode"
            )),
            "{reject:?}"
        );
    }
    for row in &decoded.rows {
        let i = row.line as usize - 1;
        let item: BTreeMap<String, Value> = row.item.clone().into_iter().collect();
        assert_eq!(item, expected_item(i), "row {i}");
    }
    // Resumed after 8 rows (three of them rejected by the earlier part): only the rest.
    let schema = every_type_schema();
    let mut resumed = ParquetDecoder::open(Sparse::whole(file), Some(1..3), &schema).unwrap();
    assert_eq!(resumed.skip(8), 8);
    let rest = drain(&mut resumed);
    assert!(rest.rejects.is_empty(), "{:?}", rest.rejects);
    assert_eq!(lines(&rest.rows), [14, 15, 16, 17, 18]);
}

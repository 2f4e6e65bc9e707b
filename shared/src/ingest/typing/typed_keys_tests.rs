//! Typed keys (`"key_types": "typed"`): N and B key attributes, binary keys held to the key
//! limits by their bytes, and the key columns a schema refuses.

use super::types_tests::{column, n, record, s, with};
use super::*;
use crate::contract::schema::{Column, ColumnType, KeyTypes, SchemaError, TimestampStore};

/// A schema keyed by `key` alone (the only column besides `v`).
fn keyed(key: Column, key_types: KeyTypes) -> Result<RowTyper, SchemaError> {
    let name = key.name.clone();
    let schema = Schema {
        columns: vec![key, column("v", ColumnType::String)],
        partition_key: vec![name.clone()],
        sort_key: vec![],
        key_types,
        ..Schema::sensor()
    };
    schema.validate()?;
    Ok(RowTyper::new(&schema, &record(&[&name, "v"])).unwrap())
}

#[test]
fn typed_keys_are_n_or_b_and_text_keys_stay_strings() {
    let number = column("n", ColumnType::Integer);
    let text = keyed(number.clone(), KeyTypes::Text).unwrap();
    let row = text.type_row(&record(&["007", "x"])).unwrap();
    assert_eq!(
        row.item["n"],
        s("7"),
        "today's keys: the canonical text, as S"
    );
    let typed = keyed(number, KeyTypes::Typed).unwrap();
    let row = typed.type_row(&record(&["007", "x"])).unwrap();
    assert_eq!(row.item["n"], n("7"));
    assert_eq!(row.key, ("7".into(), String::new()));
    let epoch = with(column("t", ColumnType::Timestamp), |c| {
        c.store = Some(TimestampStore::EpochSeconds)
    });
    let row = keyed(epoch, KeyTypes::Typed)
        .unwrap()
        .type_row(&record(&["1970-01-01T00:01:00Z", "x"]))
        .unwrap();
    assert_eq!(row.item["t"], n("60"));
    let binary = keyed(column("b", ColumnType::Binary), KeyTypes::Typed).unwrap();
    let row = binary.type_row(&record(&["AAH/", "x"])).unwrap();
    assert_eq!(row.item["b"], Value::B(vec![0, 1, 255]));
    assert_eq!(row.key.0, "0001ff", "rows are told apart by the bytes' hex");
    assert_eq!(row.item.len(), 2);
}

#[test]
fn binary_keys_are_held_to_the_key_limits_by_their_bytes() {
    let typer = keyed(column("b", ColumnType::Binary), KeyTypes::Typed).unwrap();
    let key = |len: usize| binary::encode_base64(&vec![1u8; len]);
    assert!(typer.type_row(&record(&[&key(2048), "x"])).is_ok());
    assert_eq!(
        typer.type_row(&record(&[&key(2049), "x"])).unwrap_err(),
        RowError::PartitionKeyTooLong { bytes: 2049 }
    );
    let schema = Schema {
        columns: vec![
            column("p", ColumnType::String),
            column("b", ColumnType::Binary),
        ],
        partition_key: vec!["p".into()],
        sort_key: vec!["b".into()],
        key_types: KeyTypes::Typed,
        ..Schema::sensor()
    };
    schema.validate().unwrap();
    let typer = RowTyper::new(&schema, &record(&["p", "b"])).unwrap();
    assert!(typer.type_row(&record(&["p", &key(1024)])).is_ok());
    assert_eq!(
        typer.type_row(&record(&["p", &key(1025)])).unwrap_err(),
        RowError::SortKeyTooLong { bytes: 1025 }
    );
}

#[test]
fn the_schema_refuses_keys_no_dynamodb_key_can_be_and_misplaced_options() {
    for kind in [
        ColumnType::StringSet,
        ColumnType::List,
        ColumnType::Map,
        ColumnType::Json,
    ] {
        assert!(matches!(
            keyed(column("k", kind), KeyTypes::Typed),
            Err(SchemaError::UnkeyableType { .. })
        ));
    }
    assert_eq!(
        keyed(column("b", ColumnType::Binary), KeyTypes::Text).err(),
        Some(SchemaError::BinaryKeyNotTyped("b".into()))
    );
    let composite = Schema {
        columns: vec![
            column("a", ColumnType::String),
            column("b", ColumnType::Binary),
        ],
        partition_key: vec!["a".into(), "b".into()],
        key_types: KeyTypes::Typed,
        ..Schema::sensor()
    };
    assert_eq!(
        composite.validate(),
        Err(SchemaError::BinaryKeyNotTyped("b".into()))
    );
    let bad_option = with(column("v", ColumnType::String), |c| {
        c.separator = Some("|".into())
    });
    let err = Schema {
        columns: vec![column("k", ColumnType::String), bad_option],
        partition_key: vec!["k".into()],
        ..Schema::sensor()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "column \"v\": `separator` is for set columns, not string"
    );
}

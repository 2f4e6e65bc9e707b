//! Attribute mapping, row by row: a single-table design, renames, dropped columns, templates
//! that never collide, and the limits mapped attributes are held to.

use std::collections::HashSet;

use serde_json::json;

use super::*;
use crate::contract::schema::SchemaError;

fn record(fields: &[&str]) -> Record {
    Record::from_fields(fields)
}

fn schema(value: serde_json::Value) -> Schema {
    let schema: Schema = serde_json::from_value(value).unwrap();
    assert_eq!(schema.validate(), Ok(()));
    schema
}

/// Sensor columns in a single-table design: `PK` = `SENSOR#{measure_point}`, `SK` =
/// `{timestamp}`, a constant `entity`, `temp` renamed `temperature`.
fn single_table(unmapped: &str) -> Schema {
    schema(json!({
        "columns": [
            {"name": "timestamp", "type": "timestamp"},
            {"name": "temp", "type": "number"},
            {"name": "humidity", "type": "number"},
            {"name": "measure_point", "type": "string"},
        ],
        "attributes": {
            "PK": {"template": "SENSOR#{measure_point}"},
            "SK": {"template": "{timestamp}"},
            "entity": {"value": "reading"},
            "temperature": "temp",
        },
        "partition_key": ["PK"],
        "sort_key": ["SK"],
        "unmapped": unmapped,
    }))
}

const HEADER: [&str; 5] = ["timestamp", "temp", "humidity", "measure_point", "extra"];

fn s(text: &str) -> Value {
    Value::S(text.into())
}

#[test]
fn a_single_table_design_writes_each_mapped_attribute_and_keeps_the_unmapped_columns() {
    let typer = RowTyper::new(&single_table("keep"), &record(&HEADER)).unwrap();
    let row = typer
        .type_row(&record(&[
            "2025-11-26 02:56:13 UTC",
            "19.80",
            "41",
            "m-1",
            "x",
        ]))
        .unwrap();
    assert_eq!(
        row.key,
        ("SENSOR#m-1".into(), "2025-11-26T02:56:13Z".into())
    );
    let item = &row.item;
    assert_eq!(item["PK"], s("SENSOR#m-1"));
    assert_eq!(item["SK"], s("2025-11-26T02:56:13Z"));
    assert_eq!(item["entity"], s("reading"));
    assert_eq!(
        item["temperature"],
        Value::N("19.8".into()),
        "a rename keeps N"
    );
    assert!(
        !item.contains_key("temp"),
        "a renamed column is not also under its name"
    );
    // Unmapped columns are kept (template sources too: a template reads, it does not move).
    assert_eq!(item["humidity"], Value::N("41".into()));
    assert_eq!(item["measure_point"], s("m-1"));
    assert_eq!(item["timestamp"], s("2025-11-26T02:56:13Z"));
    assert_eq!(item["extra"], s("x"));
    assert_eq!(item.len(), 8);
}

#[test]
fn dropping_unmapped_columns_leaves_the_mapped_attributes_alone() {
    let typer = RowTyper::new(&single_table("drop"), &record(&HEADER)).unwrap();
    let row = typer
        .type_row(&record(&["2025-11-26T02:56:13Z", "7", "41", "m-1", "x"]))
        .unwrap();
    let mut names: Vec<&str> = row.item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["PK", "SK", "entity", "temperature"]);
}

#[test]
fn a_column_key_is_kept_under_drop_and_a_rename_moves_a_column() {
    let schema = schema(json!({
        "columns": [
            {"name": "id", "type": "integer"},
            {"name": "v", "type": "string"},
            {"name": "w", "type": "string", "nullable": true},
        ],
        "attributes": {"value": "v", "again": {"from": "v"}, "maybe": "w"},
        "partition_key": ["id"],
        "key_types": "typed",
        "unmapped": "drop",
    }));
    let typer = RowTyper::new(&schema, &record(&["id", "v", "w"])).unwrap();
    let row = typer.type_row(&record(&["007", "a", ""])).unwrap();
    assert_eq!(
        row.item["id"],
        Value::N("7".into()),
        "the key column is its key"
    );
    assert_eq!(row.item["value"], s("a"));
    assert_eq!(
        row.item["again"],
        s("a"),
        "one column may feed two attributes"
    );
    assert!(!row.item.contains_key("maybe"), "an empty field: omitted");
    assert_eq!(row.item.len(), 3);
}

#[test]
fn a_renamed_key_follows_the_key_types_rule() {
    let keyed = |key_types: &str| {
        schema(json!({
            "columns": [{"name": "n", "type": "number"}],
            "attributes": {"id": "n"},
            "partition_key": ["id"],
            "key_types": key_types,
        }))
    };
    let row = |schema: &Schema| {
        RowTyper::new(schema, &record(&["n"]))
            .unwrap()
            .type_row(&record(&["1.50"]))
            .unwrap()
    };
    let text = row(&keyed("text"));
    assert_eq!(
        text.item["id"],
        s("1.5"),
        "text keys: the canonical text as S"
    );
    assert_eq!(text.key.0, "1.5");
    assert_eq!(row(&keyed("typed")).item["id"], Value::N("1.5".into()));
}

/// `{a}#{b}` over tricky values: every pair of different rows renders a different key.
#[test]
fn templated_keys_of_different_rows_never_collide() {
    let values = [
        "", "x", "#", "\\", "{", "}", "\\#", "#\\", "a#b", "{a}", "x-y", "-",
    ];
    for template in ["{a}#{b}", "{a}-{b}#", "P#{a}-#{b}", "<{a}>{b}", "{a}}x{b}"] {
        let parsed = serde_json::from_value::<Schema>(json!({
            "columns": [
                {"name": "a", "type": "string"},
                {"name": "b", "type": "string"},
            ],
            "attributes": {"PK": {"template": template}},
            "partition_key": ["PK"],
        }))
        .unwrap();
        if parsed.validate().is_err() {
            assert_eq!(template, "{a}}x{b}", "only the unbalanced one is refused");
            continue;
        }
        let schema = parsed;
        let typer = RowTyper::new(&schema, &record(&["a", "b"])).unwrap();
        let mut seen = HashSet::new();
        for a in values.iter().filter(|v| !v.is_empty()) {
            for b in values.iter().filter(|v| !v.is_empty()) {
                let row = typer.type_row(&record(&[a, b])).unwrap();
                assert_eq!(row.item["PK"], s(&row.key.0));
                assert!(
                    seen.insert(row.key.0.clone()),
                    "{template}: ({a:?}, {b:?}) collides: {}",
                    row.key.0
                );
            }
        }
    }
    // The escaping is the composite keys': `\` and `#` inside values, nothing else.
    let schema = schema(json!({
        "columns": [{"name": "a", "type": "string"}, {"name": "b", "type": "string"}],
        "attributes": {"K": {"template": "{a}#{b}"}, "P": {"template": "S#{a}"}},
        "partition_key": ["K"],
        "sort_key": ["P"],
    }));
    let typer = RowTyper::new(&schema, &record(&["a", "b"])).unwrap();
    let row = typer.type_row(&record(&["x#y", "{z}\\"])).unwrap();
    assert_eq!(row.key.0, "x\\#y#{z}\\\\");
    assert_eq!(row.key.0, keys::join_parts(["x#y", "{z}\\"].into_iter()));
    assert_eq!(keys::split_parts(&row.key.0), ["x#y", "{z}\\"]);
    assert_eq!(
        row.key.1, "S#x#y",
        "no literal after the value: nothing to escape"
    );
}

#[test]
fn mapped_attributes_are_held_to_the_key_and_item_limits() {
    let schema = single_table("keep");
    let typer = RowTyper::new(&schema, &record(&HEADER)).unwrap();
    let long = "m".repeat(2048 - "SENSOR#".len());
    assert!(
        typer
            .type_row(&record(&["2025-11-26T02:56:13Z", "1", "1", &long, ""]))
            .is_ok()
    );
    let over = format!("{long}m");
    assert_eq!(
        typer.type_row(&record(&["2025-11-26T02:56:13Z", "1", "1", &over, ""])),
        Err(RowError::PartitionKeyTooLong { bytes: 2049 })
    );
    // The item counts PK and the kept measure_point: 2 x 200 KB is over 400 KB (keyed on the
    // timestamp, so the long value is no key).
    let big = "m".repeat(200 * 1024);
    let wide = Schema {
        partition_key: vec!["timestamp".into()],
        sort_key: vec![],
        ..schema
    };
    let typer = RowTyper::new(&wide, &record(&HEADER)).unwrap();
    assert!(matches!(
        typer.type_row(&record(&["2025-11-26T02:56:13Z", "1", "1", &big, ""])),
        Err(RowError::ItemTooLarge { .. })
    ));
}

#[test]
fn an_empty_key_source_is_an_empty_key_and_an_extra_column_named_like_an_attribute_is_refused() {
    let typer = RowTyper::new(&single_table("keep"), &record(&HEADER)).unwrap();
    let err = typer
        .type_row(&record(&["2025-11-26T02:56:13Z", "1", "1", "", ""]))
        .unwrap_err();
    assert_eq!(err.to_string(), "column measure_point: empty key field");
    let header = ["timestamp", "temp", "humidity", "measure_point", "entity"];
    assert_eq!(
        RowTyper::new(&single_table("keep"), &record(&header)).unwrap_err(),
        HeaderError::MappedAttributeClash("entity".into())
    );
    // Dropped, an extra column cannot clash.
    assert!(RowTyper::new(&single_table("drop"), &record(&header)).is_ok());
}

#[test]
fn invalid_mappings_name_the_attribute() {
    let check = |attributes: serde_json::Value, pk: &str| {
        serde_json::from_value::<Schema>(json!({
            "columns": [
                {"name": "a", "type": "string"},
                {"name": "n", "type": "string", "nullable": true},
                {"name": "tags", "type": "string_set"},
                {"name": "ok", "type": "bool"},
            ],
            "attributes": attributes,
            "partition_key": [pk],
        }))
        .unwrap()
        .validate()
        .map_err(|e| e.to_string())
    };
    let err = |attributes, pk| check(attributes, pk).unwrap_err();
    for (attributes, pk, says) in [
        (
            json!({"K": {"template": "{nope}"}}),
            "K",
            "attribute \"K\": column \"nope\" is not a declared column",
        ),
        (
            json!({"K": "nope"}),
            "K",
            "attribute \"K\": column \"nope\" is not a declared column",
        ),
        (
            json!({"K": {"template": ""}}),
            "K",
            "attribute \"K\": the template is empty",
        ),
        (
            json!({"K": {"template": "x{a"}}),
            "K",
            "attribute \"K\": unbalanced `{`",
        ),
        (
            json!({"K": {"template": "x}{a}"}}),
            "K",
            "attribute \"K\": unbalanced `}`",
        ),
        (
            json!({"K": "tags"}),
            "K",
            "attribute \"K\": as a key: key column \"tags\" cannot be a string_set",
        ),
        (
            json!({"K": "ok"}),
            "K",
            "attribute \"K\": as a key: key column \"ok\" cannot be a bool",
        ),
        (
            json!({"K": "n"}),
            "K",
            "attribute \"K\": as a key: key column \"n\" cannot be nullable",
        ),
        (
            json!({"K": {"template": "x#{n}"}}),
            "K",
            "attribute \"K\": column \"n\" is nullable",
        ),
        (
            json!({"T": {"template": "x#{tags}"}}),
            "a",
            "attribute \"T\": column \"tags\" is a string_set",
        ),
        (
            json!({"a": "n"}),
            "a",
            "attribute \"a\": is also a declared column",
        ),
        (
            json!({"K": {"value": ""}}),
            "K",
            "attribute \"K\": a key constant cannot be empty",
        ),
        (
            json!({"C": {"value": "x", "type": "number"}}),
            "a",
            "attribute \"C\": the constant is not a number",
        ),
        (json!({"": "a"}), "a", "attribute \"\": the name is empty"),
    ] {
        let got = err(attributes.clone(), pk);
        assert!(got.contains(says), "{attributes}: {got}");
    }
    let long = "K".repeat(256);
    assert_eq!(
        check(json!({long.clone(): {"template": "x#{a}"}}), &long),
        Err(SchemaError::KeyNameTooLong(long).to_string())
    );
    // A mapped attribute cannot be part of a composite key; a constant key is allowed.
    let composite = serde_json::from_value::<Schema>(json!({
        "columns": [{"name": "a", "type": "string"}],
        "attributes": {"K": {"value": "x"}},
        "partition_key": ["K", "a"],
    }))
    .unwrap();
    assert!(
        composite
            .validate()
            .unwrap_err()
            .to_string()
            .contains("its key alone")
    );
    assert_eq!(check(json!({"K": {"value": "all"}}), "K"), Ok(()));
    assert_eq!(
        check(json!({"a": "a", "renamed": {"from": "n"}}), "a"),
        Ok(()),
        "identity"
    );
}

#[test]
fn a_delete_keeps_the_columns_its_mapped_key_reads() {
    let keys = single_table("keep").keys_only();
    let mut columns: Vec<&str> = keys.columns.iter().map(|c| c.name.as_str()).collect();
    columns.sort_unstable();
    assert_eq!(columns, ["measure_point", "timestamp"]);
    let names: Vec<&str> = keys.attributes.keys().map(String::as_str).collect();
    assert_eq!(names, ["PK", "SK"]);
    assert_eq!(keys.validate(), Ok(()));
}

#[test]
fn the_single_table_sample_event_parses_and_validates() {
    let request: crate::contract::messages::JobRequest = serde_json::from_str(include_str!(
        "../../../../events/prefix-job-single-table.json"
    ))
    .unwrap();
    let schema = request.schema.unwrap();
    assert_eq!(schema.validate(), Ok(()));
    assert_eq!(schema.partition_attribute(), "PK");
    assert_eq!(schema.sort_attribute().as_deref(), Some("SK"));
}

#[test]
fn a_mapped_schema_survives_the_trip_through_a_batch_message() {
    let schema = single_table("drop");
    let json = serde_json::to_string(&schema).unwrap();
    assert_eq!(serde_json::from_str::<Schema>(&json).unwrap(), schema);
    // The default schema serializes as before: no mapping fields.
    let sensor = serde_json::to_value(Schema::sensor()).unwrap();
    assert!(sensor.get("attributes").is_none() && sensor.get("unmapped").is_none());
}

#[test]
fn a_constant_partition_key_and_a_delete_s_key_only_csv() {
    let schema = schema(json!({
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "v", "type": "number"},
        ],
        "attributes": {"PK": {"value": "all"}, "SK": {"template": "ID#{id}"}},
        "partition_key": ["PK"],
        "sort_key": ["SK"],
    }));
    let typer = RowTyper::new(&schema, &record(&["id", "v"])).unwrap();
    let row = typer.type_row(&record(&["7", "1"])).unwrap();
    assert_eq!(row.key, ("all".into(), "ID#7".into()));
    assert_eq!(row.item["PK"], s("all"));
    // A delete reads only the key's columns, and writes the same key.
    let keys = RowTyper::new(&schema.keys_only(), &record(&["id"])).unwrap();
    let deleted = keys.type_row(&record(&["7"])).unwrap();
    assert_eq!(deleted.key, row.key);
}

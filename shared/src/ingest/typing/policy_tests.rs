//! Typing under the schema's write-control options: empty values per job and per column,
//! and the TTL attribute from a column or a duration after the load.

use super::*;
use crate::ingest::csv_stream::Record;

fn record(fields: &[&str]) -> Record {
    Record::from_fields(fields)
}

/// id (key), note (string), reading (number), until (timestamp): the last three nullable.
fn expiring(empty_values: &str, ttl: serde_json::Value) -> Schema {
    serde_json::from_value(serde_json::json!({
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string", "nullable": true, "empty": "empty_string"},
            {"name": "reading", "type": "number", "nullable": true},
            {"name": "until", "type": "timestamp", "nullable": true},
        ],
        "partition_key": ["id"],
        "empty_values": empty_values,
        "ttl": ttl,
    }))
    .unwrap()
}

#[test]
fn empty_fields_are_stored_as_the_column_or_the_job_says() {
    let header = record(&["id", "note", "reading", "until", "extra"]);
    let typed = |empty_values: &str| {
        let schema = expiring(empty_values, serde_json::Value::Null);
        schema.validate().unwrap();
        let typer = RowTyper::new(&schema, &header).unwrap();
        typer
            .type_row(&record(&["a", "", " ", "", ""]))
            .unwrap()
            .item
    };
    let omitted = typed("omit");
    assert_eq!(
        omitted.get("note"),
        Some(&Value::S(String::new())),
        "the column's own"
    );
    assert!(!omitted.contains_key("reading") && !omitted.contains_key("extra"));
    let nulls = typed("null");
    assert_eq!(nulls["reading"], Value::Null, "a blank number is empty");
    assert_eq!(nulls["until"], Value::Null);
    assert_eq!(
        nulls["extra"],
        Value::Null,
        "undeclared columns follow the job"
    );
    assert_eq!(nulls["note"], Value::S(String::new()));
    let strings = typed("empty_string");
    assert_eq!(strings["reading"], Value::S(String::new()));
    // A required column's empty field is still rejected, whatever the policy.
    let schema = expiring("null", serde_json::Value::Null);
    let typer = RowTyper::new(&schema, &header).unwrap();
    assert_eq!(
        typer.type_row(&record(&["", "", "", "", ""])).unwrap_err(),
        RowError::column("id", 0, ValueError::EmptyKey)
    );
}

#[test]
fn the_expiry_comes_from_a_column_or_a_duration_after_the_load() {
    let header = record(&["id", "note", "reading", "until"]);
    let from_column = expiring(
        "null",
        serde_json::json!({"attribute": "expires_at", "column": "until"}),
    );
    from_column.validate().unwrap();
    let typer = RowTyper::new(&from_column, &header).unwrap();
    let row = typer
        .type_row(&record(&["a", "", "", "2025-11-26 02:56:13 UTC"]))
        .unwrap();
    assert_eq!(row.item["expires_at"], Value::N("1764125773".into()));
    assert_eq!(row.item["until"], Value::S("2025-11-26T02:56:13Z".into()));
    let no_expiry = typer.type_row(&record(&["b", "", "", ""])).unwrap();
    assert!(
        !no_expiry.item.contains_key("expires_at"),
        "an empty TTL field: no expiry"
    );

    let seconds = expiring(
        "omit",
        serde_json::json!({"attribute": "reading", "column": "reading"}),
    );
    seconds.validate().unwrap();
    let typer = RowTyper::new(&seconds, &header).unwrap();
    let row = typer
        .type_row(&record(&["a", "", "1764125773", ""]))
        .unwrap();
    assert_eq!(
        row.item["reading"],
        Value::N("1764125773".into()),
        "in place"
    );
    let err = typer
        .type_row(&record(&["a", "", "1764125773000", ""]))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("column reading: invalid expiry for TTL: past the year 9999"),
        "{err}"
    );

    let after = expiring(
        "omit",
        serde_json::json!({"attribute": "exp", "after_seconds": 3600}),
    );
    after.validate().unwrap();
    let typer = RowTyper::new(&after, &header).unwrap().loaded_at(1_000_000);
    let row = typer.type_row(&record(&["a", "", "", ""])).unwrap();
    assert_eq!(row.item["exp"], Value::N("1003600".into()));
    let now = crate::clock::now_ms() / 1000;
    let typer = RowTyper::new(&after, &header).unwrap();
    let Value::N(exp) = &typer.type_row(&record(&["a", "", "", ""])).unwrap().item["exp"] else {
        panic!("a number");
    };
    let exp: u64 = exp.parse().unwrap();
    assert!((now + 3600..=now + 3602).contains(&exp), "{exp} vs {now}");
}

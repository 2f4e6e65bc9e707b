//! The schema's own tests: parsing and validation of columns, keys, empty values and TTL.

use super::*;

fn schema(json: &str) -> Result<(), SchemaError> {
    serde_json::from_str::<Schema>(json).unwrap().validate()
}

#[test]
fn the_sensor_schema_is_valid() {
    assert_eq!(Schema::sensor().validate(), Ok(()));
    assert_eq!(Schema::sensor().partition_attribute(), "measure_point");
    assert_eq!(
        Schema::sensor().sort_attribute().as_deref(),
        Some("timestamp")
    );
}

#[test]
fn a_user_schema_with_a_composite_sort_key_parses_and_validates() {
    let json = r#"{
        "columns": [
            {"name": "site", "type": "string"},
            {"name": "day", "type": "timestamp"},
            {"name": "seq", "type": "integer"},
            {"name": "ok", "type": "bool", "nullable": true},
            {"name": "reading", "type": "number", "nullable": true}
        ],
        "partition_key": ["site"],
        "sort_key": ["day", "seq"]
    }"#;
    let schema: Schema = serde_json::from_str(json).unwrap();
    assert_eq!(schema.validate(), Ok(()));
    assert_eq!(schema.sort_attribute().as_deref(), Some("day#seq"));
}

#[test]
fn empty_values_and_ttl_parse_and_validate() {
    let json = r#"{
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string", "nullable": true, "empty": "empty_string"},
            {"name": "reading", "type": "number", "nullable": true},
            {"name": "until", "type": "timestamp", "nullable": true}
        ],
        "partition_key": ["id"],
        "empty_values": "null",
        "ttl": {"attribute": "expires_at", "column": "until"}
    }"#;
    let schema: Schema = serde_json::from_str(json).unwrap();
    assert_eq!(schema.validate(), Ok(()));
    assert_eq!(schema.empty_value_of("note"), EmptyValue::EmptyString);
    assert_eq!(schema.empty_value_of("reading"), EmptyValue::Null);
    assert_eq!(schema.empty_value_of("undeclared"), EmptyValue::Null);
    assert_eq!(schema.recomputed_attribute(), None);
    let ttl = |attribute: &str, column: Option<&str>, after_seconds| {
        let mut s = schema.clone();
        s.ttl = Some(Ttl {
            attribute: attribute.into(),
            column: column.map(str::to_owned),
            after_seconds,
        });
        s.validate().map_err(|e| e.to_string())
    };
    assert_eq!(ttl("exp", None, Some(60)), Ok(()));
    assert_eq!(ttl("until", Some("until"), None), Ok(()), "in place");
    let err = |r: Result<(), String>| r.unwrap_err();
    assert!(err(ttl("exp", Some("until"), Some(60))).contains("exactly one"));
    assert!(err(ttl("exp", None, None)).contains("exactly one"));
    assert!(err(ttl("exp", None, Some(0))).contains("not within"));
    assert!(err(ttl("exp", None, Some(MAX_TTL_AFTER_SECONDS + 1))).contains("not within"));
    assert!(err(ttl("id", None, Some(60))).contains("key attribute"));
    assert!(err(ttl("note", None, Some(60))).contains("declared column"));
    assert!(err(ttl("note", Some("until"), None)).contains("another declared column"));
    assert!(err(ttl("exp", Some("note"), None)).contains("integer or number"));
    assert!(err(ttl("exp", Some("nope"), None)).contains("not a declared column"));
    assert!(err(ttl("", None, Some(1))).contains("empty"));
    let mut after = schema.clone();
    after.ttl = Some(Ttl {
        attribute: "exp".into(),
        column: None,
        after_seconds: Some(60),
    });
    assert_eq!(after.recomputed_attribute(), Some("exp"));
}

#[test]
fn invalid_schemas_name_the_problem() {
    let col = |n: &str, t: &str, nullable: bool| {
        format!(r#"{{"name":"{n}","type":"{t}","nullable":{nullable}}}"#)
    };
    let s = |cols: Vec<String>, pk: &str, sk: &str| {
        format!(
            r#"{{"columns":[{}],"partition_key":[{pk}],"sort_key":[{sk}]}}"#,
            cols.join(",")
        )
    };
    assert_eq!(
        schema(&s(vec![], r#""a""#, "")),
        Err(SchemaError::NoColumns)
    );
    assert_eq!(
        schema(&s(
            vec![col("a", "string", false), col("a", "number", false)],
            r#""a""#,
            ""
        )),
        Err(SchemaError::DuplicateColumn("a".into()))
    );
    assert_eq!(
        schema(&s(vec![col("a", "string", false)], "", "")),
        Err(SchemaError::NoPartitionKey)
    );
    assert_eq!(
        schema(&s(vec![col("a", "string", false)], r#""b""#, "")),
        Err(SchemaError::UnknownKeyColumn("b".into()))
    );
    assert_eq!(
        schema(&s(vec![col("a", "string", true)], r#""a""#, "")),
        Err(SchemaError::NullableKey("a".into()))
    );
    assert_eq!(
        schema(&s(vec![col("a", "bool", false)], r#""a""#, "")),
        Err(SchemaError::BoolKey("a".into()))
    );
    assert_eq!(
        schema(&s(vec![col("a", "string", false)], r#""a""#, r#""a""#)),
        Err(SchemaError::KeyInBoth("a".into()))
    );
    assert_eq!(
        schema(&s(vec![col(" ", "string", false)], r#"" ""#, "")),
        Err(SchemaError::EmptyName)
    );
    let ab = vec![col("a", "string", false), col("b#c", "string", false)];
    assert_eq!(
        schema(&s(ab.clone(), r#""a","b#c""#, "")),
        Err(SchemaError::SeparatorInKeyName("b#c".into()))
    );
    // A single-column key may have `#` in its name: nothing is joined.
    assert_eq!(schema(&s(ab, r#""b#c""#, "")), Ok(()));
    assert_eq!(
        schema(&s(
            vec![
                col("a", "string", false),
                col("b", "string", false),
                col("a#b", "string", true)
            ],
            r#""a","b""#,
            ""
        )),
        Err(SchemaError::KeyAttributeIsAColumn("a#b".into()))
    );
    let long = "k".repeat(256);
    assert_eq!(
        schema(&s(
            vec![col(&long, "string", false)],
            &format!("\"{long}\""),
            ""
        )),
        Err(SchemaError::KeyNameTooLong(long))
    );
    let nullable_empty = r#"{"name":"b","type":"number","empty":"null"}"#;
    assert_eq!(
        schema(&s(
            vec![col("a", "string", false), nullable_empty.into()],
            r#""a""#,
            ""
        )),
        Err(SchemaError::EmptyOnRequiredColumn("b".into()))
    );
    // An unknown type is a parse error that names the variants.
    let err = serde_json::from_str::<Schema>(&s(vec![col("a", "float", false)], r#""a""#, ""))
        .unwrap_err();
    assert!(err.to_string().contains("float"), "{err}");
}

#[test]
fn a_schema_carries_its_csv_dialect_and_refuses_a_bad_one() {
    let mut schema: Schema = serde_json::from_value(serde_json::json!({
        "columns": [{"name": "a", "type": "string"}],
        "partition_key": ["a"],
        "csv": {"delimiter": "|", "header": false},
    }))
    .unwrap();
    assert_eq!((schema.csv.delimiter, schema.csv.header), (b'|', false));
    assert_eq!(schema.validate(), Ok(()));
    schema.csv.quote = b'|';
    assert_eq!(
        schema.validate(),
        Err(SchemaError::Dialect(
            "the delimiter and the quote are both '|'".into()
        ))
    );
    // The default dialect is not written out: older readers see the same schema.
    let json = serde_json::to_value(Schema::sensor()).unwrap();
    assert!(json.get("csv").is_none());
}

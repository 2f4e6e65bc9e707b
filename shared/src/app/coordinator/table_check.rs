//! The table's key schema is the truth. Before a job writes anything, the key its schema
//! produces (attribute names and types) is checked against the target table's, read once per
//! job: a job whose every write the table would refuse, or whose items would overwrite each
//! other under a sort key the table lacks, is refused at the request, before any job item or
//! batch exists.

use crate::contract::columns::{Column, ColumnType};
use crate::contract::format::Format;
use crate::contract::schema::{Attribute, Constant, Schema};
use crate::ingest::typing::item_key::ItemKey;
use crate::port::table::{KeyAttribute, KeyType, TableKey};

/// The schema a DynamoDB JSON job without one reads by: the table's own key, each key
/// attribute declared with the table's type (the items' other attributes are the data's).
pub fn schema_of_table_key(key: &TableKey) -> Schema {
    let column = |attribute: &KeyAttribute| {
        let kind = match attribute.kind {
            KeyType::S => ColumnType::String,
            KeyType::N => ColumnType::Number,
            KeyType::B => ColumnType::Binary,
        };
        Column::new(&attribute.name, kind)
    };
    let mut schema = Schema::sensor();
    schema.columns = std::iter::once(&key.partition)
        .chain(key.sort.as_ref())
        .map(column)
        .collect();
    schema.partition_key = vec![key.partition.name.clone()];
    schema.sort_key = key.sort.iter().map(|s| s.name.clone()).collect();
    schema.key_types = crate::contract::columns::KeyTypes::Typed;
    schema
}

/// What a DynamoDB JSON job's schema may say: its key, one attribute each (items land as
/// they are, so a mapping, a composite key or a TTL rule would have nothing to apply to).
pub fn check_item_schema(schema: &Schema) -> Result<(), String> {
    if schema.partition_key.len() > 1 || schema.sort_key.len() > 1 {
        return Err("a DynamoDB JSON job's key names one attribute each (items carry their own key; nothing is joined)".into());
    }
    if !schema.attributes.is_empty() || schema.ttl.is_some() {
        return Err("a DynamoDB JSON job's schema gives only its key: items land as they are, without `attributes` or `ttl`".into());
    }
    Ok(())
}

/// The key a job writes in its format: DynamoDB JSON items carry their own typed key,
/// named by the schema's key and typed by its key columns ([`ItemKey`]); other formats
/// build it from columns ([`produced_key`]).
pub fn produced_key_in(schema: &Schema, format: Option<Format>) -> TableKey {
    if format != Some(Format::DynamoDbJson) {
        return produced_key(schema);
    }
    let key = ItemKey::of_schema(schema);
    TableKey {
        partition: KeyAttribute::new(&key.partition.name, key.partition.kind),
        sort: key.sort.map(|s| KeyAttribute::new(&s.name, s.kind)),
    }
}

/// The key attributes a job's schema writes: with text keys (the default) the key columns'
/// texts, joined when composite, so strings; with typed keys a single column's own type. A
/// key naming a mapped attribute: a template is S, a constant its own type (S or N), a
/// `from` follows its column as a single key column would.
pub fn produced_key(schema: &Schema) -> TableKey {
    let column_type = |name: &str| match schema.column(name) {
        Some(column) if !schema.key_types.is_text() => column.key_type(),
        _ => KeyType::S,
    };
    let kind = |key: &[String]| match (schema.mapped_key(key), key) {
        (Some(Attribute::From(column)), _) => column_type(column),
        (Some(Attribute::Template(_)), _) => KeyType::S,
        (Some(Attribute::Value(Constant::String(_))), _) => KeyType::S,
        (Some(Attribute::Value(Constant::Number(_))), _) => KeyType::N,
        (None, [one]) => column_type(one),
        (None, _) => KeyType::S,
    };
    TableKey {
        partition: KeyAttribute::new(&schema.partition_attribute(), kind(&schema.partition_key)),
        sort: schema
            .sort_attribute()
            .map(|sort| KeyAttribute::new(&sort, kind(&schema.sort_key))),
    }
}

/// Every way the schema's key differs from `table`'s, as one reason naming each attribute,
/// the table's type and what the schema produces; `Ok` when they agree.
pub fn check_keys(
    table: &str,
    schema: &Schema,
    format: Option<Format>,
    key: &TableKey,
) -> Result<(), String> {
    let produced = produced_key_in(schema, format);
    let mut findings = Vec::new();
    findings.extend(compare(
        table,
        "partition",
        Some(&key.partition),
        Some(&produced.partition),
    ));
    findings.extend(compare(
        table,
        "sort",
        key.sort.as_ref(),
        produced.sort.as_ref(),
    ));
    if findings.is_empty() {
        Ok(())
    } else {
        Err(findings.join("; "))
    }
}

fn compare(
    table: &str,
    role: &str,
    wanted: Option<&KeyAttribute>,
    produced: Option<&KeyAttribute>,
) -> Option<String> {
    match (wanted, produced) {
        (None, None) => None,
        (Some(wanted), None) => Some(format!(
            "table {table} has the {role} key {:?} of type {}, and the job's schema has no {role} key (the table would refuse every write)",
            wanted.name, wanted.kind
        )),
        (None, Some(produced)) => Some(format!(
            "table {table} has no {role} key, and the job's schema writes {:?} as one (rows sharing a partition key would overwrite each other)",
            produced.name
        )),
        (Some(wanted), Some(produced)) if wanted.name != produced.name => Some(format!(
            "table {table}'s {role} key is {:?} of type {}, and the job's schema writes its {role} key as {:?}",
            wanted.name, wanted.kind, produced.name
        )),
        (Some(wanted), Some(produced)) if wanted.kind != produced.kind => Some(format!(
            "table {table}'s {role} key {:?} is of type {}, and the job's schema produces {} for it",
            wanted.name, wanted.kind, produced.kind
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(partition: (&str, KeyType), sort: Option<(&str, KeyType)>) -> TableKey {
        TableKey {
            partition: KeyAttribute::new(partition.0, partition.1),
            sort: sort.map(|(name, kind)| KeyAttribute::new(name, kind)),
        }
    }

    #[test]
    fn the_sensor_schema_fits_a_table_keyed_like_it() {
        let table = key(
            ("measure_point", KeyType::S),
            Some(("timestamp", KeyType::S)),
        );
        assert_eq!(check_keys("t", &Schema::sensor(), None, &table), Ok(()));
    }

    #[test]
    fn typed_keys_produce_their_column_s_type() {
        let schema: Schema = serde_json::from_value(serde_json::json!({
            "columns": [
                {"name": "id", "type": "binary"},
                {"name": "at", "type": "timestamp", "store": "epoch_seconds"},
            ],
            "partition_key": ["id"],
            "sort_key": ["at"],
            "key_types": "typed",
        }))
        .unwrap();
        let table = key(("id", KeyType::B), Some(("at", KeyType::N)));
        assert_eq!(check_keys("t", &schema, None, &table), Ok(()));
        // The same columns as text keys are strings, which this table refuses.
        let text = Schema {
            key_types: Default::default(),
            ..schema
        };
        let reason = check_keys("t", &text, None, &table).unwrap_err();
        assert!(reason.contains("partition key \"id\" is of type B (binary), and the job's schema produces S (string)"), "{reason}");
    }

    #[test]
    fn a_dynamodb_json_key_is_named_by_the_schema_and_typed_by_its_key_columns_or_the_table() {
        let table = key(("id", KeyType::N), Some(("at", KeyType::B)));
        let from_table = schema_of_table_key(&table);
        assert_eq!(from_table.validate(), Ok(()));
        assert_eq!(check_item_schema(&from_table), Ok(()));
        let json = Some(Format::DynamoDbJson);
        assert_eq!(check_keys("t", &from_table, json, &table), Ok(()));
        // Text key types do not matter: the items' own values are the key.
        let text = Schema {
            key_types: Default::default(),
            ..from_table.clone()
        };
        assert_eq!(check_keys("t", &text, json, &table), Ok(()));
        assert!(check_keys("t", &text, None, &table).is_err());
        let declared_string: Schema = serde_json::from_value(serde_json::json!({
            "columns": [{"name": "id", "type": "string"}, {"name": "at", "type": "binary"}],
            "partition_key": ["id"], "sort_key": ["at"],
        }))
        .unwrap();
        let reason = check_keys("t", &declared_string, json, &table).unwrap_err();
        assert!(reason.contains("partition key \"id\" is of type N (number), and the job's schema produces S (string)"), "{reason}");
        let composite = Schema {
            partition_key: vec!["id".into(), "at".into()],
            sort_key: vec![],
            ..from_table
        };
        assert!(
            check_item_schema(&composite)
                .unwrap_err()
                .contains("one attribute")
        );
    }

    fn mapped(key_types: &str) -> Schema {
        serde_json::from_value(serde_json::json!({
            "columns": [
                {"name": "measure_point", "type": "string"},
                {"name": "timestamp", "type": "timestamp", "store": "epoch_seconds"},
                {"name": "seq", "type": "integer"},
            ],
            "attributes": {
                "PK": {"template": "SENSOR#{measure_point}"},
                "SK": "timestamp",
                "GSI": {"value": "all"},
                "N": {"value": 7, "type": "number"},
            },
            "partition_key": ["PK"],
            "sort_key": ["SK"],
            "key_types": key_types,
        }))
        .unwrap()
    }

    #[test]
    fn mapped_keys_produce_templates_as_strings_renames_by_their_column_and_constants_by_theirs() {
        let text = mapped("text");
        assert_eq!(text.validate(), Ok(()));
        assert_eq!(
            produced_key(&text),
            key(("PK", KeyType::S), Some(("SK", KeyType::S)))
        );
        let typed = mapped("typed");
        assert_eq!(
            produced_key(&typed),
            key(("PK", KeyType::S), Some(("SK", KeyType::N))),
            "a renamed epoch timestamp keeps N with typed keys"
        );
        let constant = |sort: &str| Schema {
            sort_key: vec![sort.into()],
            ..typed.clone()
        };
        assert_eq!(
            produced_key(&constant("GSI")).sort,
            Some(KeyAttribute::new("GSI", KeyType::S))
        );
        assert_eq!(
            produced_key(&constant("N")).sort,
            Some(KeyAttribute::new("N", KeyType::N))
        );
        // The columns' own key form is unchanged beside a mapping.
        assert_eq!(
            produced_key(&constant("seq")).sort,
            Some(KeyAttribute::new("seq", KeyType::N))
        );
        let reason = check_keys(
            "t",
            &text,
            None,
            &key(("PK", KeyType::S), Some(("SK", KeyType::N))),
        )
        .unwrap_err();
        assert!(
            reason.contains(
                "sort key \"SK\" is of type N (number), and the job's schema produces S (string)"
            ),
            "{reason}"
        );
    }

    #[test]
    fn each_mismatch_names_the_attribute_the_table_s_type_and_what_the_schema_produces() {
        let sensor = Schema::sensor();
        let numeric_sort = key(
            ("measure_point", KeyType::S),
            Some(("timestamp", KeyType::N)),
        );
        assert_eq!(
            check_keys("readings", &sensor, None, &numeric_sort),
            Err("table readings's sort key \"timestamp\" is of type N (number), and the job's schema produces S (string) for it".into())
        );
        let binary_partition = key(("measure_point", KeyType::B), None);
        let reason = check_keys("t", &sensor, None, &binary_partition).unwrap_err();
        assert!(
            reason.contains("partition key \"measure_point\" is of type B (binary)"),
            "{reason}"
        );
        assert!(
            reason.contains("has no sort key, and the job's schema writes \"timestamp\""),
            "{reason}"
        );
        let renamed = key(("PK", KeyType::S), Some(("SK", KeyType::S)));
        let reason = check_keys("t", &sensor, None, &renamed).unwrap_err();
        assert!(
            reason.contains("partition key is \"PK\" of type S (string), and the job's schema writes its partition key as \"measure_point\""),
            "{reason}"
        );
        assert!(reason.contains("sort key is \"SK\""), "{reason}");
        let no_sort_in_schema = Schema {
            sort_key: vec![],
            ..Schema::sensor()
        };
        let reason = check_keys("t", &no_sort_in_schema, None, &numeric_sort).unwrap_err();
        assert!(
            reason.contains("has the sort key \"timestamp\" of type N (number), and the job's schema has no sort key"),
            "{reason}"
        );
    }
}

//! The record table on DynamoDB: BatchWriteItem of puts or deletes (unprocessed requests
//! handed back), a conditional PutItem for inserts (the existing item read back with a
//! strongly consistent GetItem when the condition fails), UpdateItem for merges, and
//! DescribeTable for the key schema a job is checked against and the capacity a rate cap can
//! be a fraction of. A ValidationException is
//! told apart from other failures (the request can be split to find the offending item), and
//! so is throttling the SDK's retries did not outlast (the caller backs off and retries).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, DeleteRequest, KeyType as KeyRole, PutRequest,
    ScalarAttributeType, TableDescription as TableDescription_, WriteRequest,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;

use super::attribute_values::{attribute, from_sdk, to_sdk, to_sdk_copied};
use super::errors::{is_condition_failure, validation_message};
use crate::ingest::item::Item;
use crate::port::table::{
    Capacity, Inserted, KeyAttribute, KeyNames, KeyType, RecordTable, TableDescription, TableKey,
    WriteError,
};

/// SET clauses per UpdateItem. DynamoDB refuses an expression string over 4 KB and caps the
/// operators in one; 100 clauses of two-digit placeholders are ~1.3 KB. A wider row is merged
/// by several calls on the same key: each SET is idempotent, so a retried row converges (a
/// reader may see it half-merged in between, and each call is billed on the whole item).
pub const MAX_SET_CLAUSES: usize = 100;

/// `SET #a0 = :v0, ...` for `clauses` attributes.
fn set_expression(clauses: usize) -> String {
    let sets: Vec<String> = (0..clauses).map(|i| format!("#a{i} = :v{i}")).collect();
    format!("SET {}", sets.join(", "))
}

#[derive(Debug, Clone)]
pub struct DynamoTable {
    ddb: Client,
}

impl DynamoTable {
    pub fn new(ddb: Client) -> Self {
        Self { ddb }
    }

    async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, WriteError> {
        let output = self
            .ddb
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| classify(table, "BatchWriteItem", e))?;
        Ok(output
            .unprocessed_items
            .unwrap_or_default()
            .remove(table)
            .unwrap_or_default())
    }

    /// The item at `key`, read strongly consistent (after a lost insert condition).
    async fn get(
        &self,
        table: &str,
        key: HashMap<String, AttributeValue>,
    ) -> Result<Option<Item>, WriteError> {
        let output = self
            .ddb
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(table, "GetItem", e))?;
        Ok(output.item.map(from_sdk))
    }
}

#[async_trait]
impl RecordTable for DynamoTable {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        let requests = items
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(to_sdk_copied(item)))
                    .build()
                    .map_err(|e| build_failed(table, "BatchWriteItem", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, WriteError>>()?;
        Ok(self
            .batch_write(table, requests)
            .await?
            .into_iter()
            .filter_map(|request| request.put_request.map(|put| from_sdk(put.item)))
            .collect())
    }

    async fn batch_delete(
        &self,
        table: &str,
        key: &KeyNames,
        keys: &[&Item],
    ) -> Result<Vec<Item>, WriteError> {
        let requests = keys
            .iter()
            .map(|item| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(to_sdk(key.key_of(item))))
                    .build()
                    .map_err(|e| build_failed(table, "BatchWriteItem", e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, WriteError>>()?;
        Ok(self
            .batch_write(table, requests)
            .await?
            .into_iter()
            .filter_map(|request| request.delete_request.map(|delete| from_sdk(delete.key)))
            .collect())
    }

    async fn put_if_absent(
        &self,
        table: &str,
        key: &KeyNames,
        item: Item,
    ) -> Result<Inserted, WriteError> {
        let key_attributes = to_sdk(key.key_of(&item));
        let result = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(to_sdk(item)))
            // The partition key is in every stored item: absent means no item.
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", &key.partition)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Inserted::Written),
            Err(e) if is_condition_failure(&e) => {
                Ok(Inserted::Exists(self.get(table, key_attributes).await?))
            }
            Err(e) => Err(classify(table, "PutItem", e)),
        }
    }

    async fn update(&self, table: &str, key: &KeyNames, item: Item) -> Result<(), WriteError> {
        let (keys, rest): (Vec<_>, Vec<_>) =
            item.into_iter().partition(|(name, _)| key.contains(name));
        let keys = to_sdk(keys.into_iter().collect());
        let mut rest = rest.into_iter().peekable();
        // A row of no attributes but its key still creates the item: one call, no SET.
        let mut first = true;
        while first || rest.peek().is_some() {
            first = false;
            let mut request = self
                .ddb
                .update_item()
                .table_name(table)
                .set_key(Some(keys.clone()));
            let group: Vec<_> = rest.by_ref().take(MAX_SET_CLAUSES).collect();
            if !group.is_empty() {
                request = request.update_expression(set_expression(group.len()));
            }
            // Placeholders by position: column names need not be valid expression tokens.
            for (i, (name, value)) in group.into_iter().enumerate() {
                request = request
                    .expression_attribute_names(format!("#a{i}"), name)
                    .expression_attribute_values(format!(":v{i}"), attribute(value));
            }
            request
                .send()
                .await
                .map_err(|e| classify(table, "UpdateItem", e))?;
        }
        Ok(())
    }

    async fn describe(&self, table: &str) -> Result<TableDescription, WriteError> {
        let output = self
            .ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| classify(table, "DescribeTable", e))?;
        let Some(description) = output.table else {
            return Err(described_badly(table, "the reply has no table description"));
        };
        let key = table_key(&description)
            .ok_or_else(|| described_badly(table, "the reply has no usable key schema"))?;
        let on_demand = description
            .billing_mode_summary
            .as_ref()
            .and_then(|s| s.billing_mode.as_ref())
            == Some(&BillingMode::PayPerRequest);
        let provisioned = description
            .provisioned_throughput
            .as_ref()
            .and_then(|p| p.write_capacity_units)
            .filter(|units| *units > 0);
        let capacity = match provisioned {
            Some(units) if !on_demand => Capacity::Provisioned {
                write_units: units as f64,
            },
            _ => Capacity::OnDemand {
                max_write_units: description
                    .on_demand_throughput
                    .and_then(|t| t.max_write_request_units)
                    .filter(|units| *units > 0)
                    .map(|units| units as f64),
            },
        };
        Ok(TableDescription { key, capacity })
    }
}

/// The key schema (`KeySchema` names the keys, `AttributeDefinitions` types them).
fn table_key(description: &TableDescription_) -> Option<TableKey> {
    let attribute = |role: KeyRole| -> Option<KeyAttribute> {
        let name = description
            .key_schema()
            .iter()
            .find(|k| k.key_type == role)?
            .attribute_name();
        let kind = match description
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == name)?
            .attribute_type()
        {
            ScalarAttributeType::S => KeyType::S,
            ScalarAttributeType::N => KeyType::N,
            ScalarAttributeType::B => KeyType::B,
            _ => return None,
        };
        Some(KeyAttribute::new(name, kind))
    };
    let has_sort = description
        .key_schema()
        .iter()
        .any(|k| k.key_type == KeyRole::Range);
    let sort = if has_sort {
        Some(attribute(KeyRole::Range)?)
    } else {
        None
    };
    Some(TableKey {
        partition: attribute(KeyRole::Hash)?,
        sort,
    })
}

fn described_badly(table: &str, what: &str) -> WriteError {
    WriteError::Call {
        operation: "DescribeTable",
        table: table.to_owned(),
        source: what.to_owned().into(),
    }
}

fn build_failed(
    table: &str,
    operation: &'static str,
    error: impl std::error::Error + Send + Sync + 'static,
) -> WriteError {
    WriteError::Call {
        operation,
        table: table.to_owned(),
        source: error.into(),
    }
}

/// What a failed call means: the table refused the request (its key schema or a value), it
/// throttled past the SDK's retries, or something to retry with the batch.
fn classify<E>(table: &str, operation: &'static str, error: SdkError<E, Response>) -> WriteError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(message) = validation_message(&error) {
        return if names_the_key_schema(&message) {
            WriteError::KeySchema {
                table: table.to_owned(),
                message,
            }
        } else {
            WriteError::Refused {
                table: table.to_owned(),
                message,
            }
        };
    }
    let throttled = error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| {
            matches!(
                code,
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
            )
        });
    if throttled {
        return WriteError::Throttled {
            operation,
            table: table.to_owned(),
        };
    }
    build_failed(table, operation, error)
}

/// Whether a ValidationException is about the table's key schema rather than one item's
/// values: typing gives every row the job's key attributes, so these refuse every row alike.
fn names_the_key_schema(message: &str) -> bool {
    [
        "Missing the key",
        "Type mismatch for key",
        "does not match the schema",
    ]
    .iter()
    .any(|sign| message.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_schema_refusals_are_told_from_bad_values() {
        for message in [
            "One or more parameter values were invalid: Missing the key pk in the item",
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
            "The provided key element does not match the schema",
        ] {
            assert!(names_the_key_schema(message), "{message}");
        }
        assert!(!names_the_key_schema(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        ));
    }

    #[test]
    fn the_widest_set_expression_stays_within_dynamodb_s_4_kb() {
        let widest = set_expression(MAX_SET_CLAUSES);
        assert!(widest.len() < 4096, "{} bytes", widest.len());
        assert_eq!(widest.matches(" = ").count(), MAX_SET_CLAUSES);
        assert!(widest.ends_with(&format!("#a{0} = :v{0}", MAX_SET_CLAUSES - 1)));
    }
}

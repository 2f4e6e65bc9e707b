//! The record table on DynamoDB: BatchWriteItem of puts, unprocessed items handed back, a
//! ValidationException told apart from other failures (the request can be split to find the
//! offending item; anything else is retried with the batch).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::errors::validation_message;
use super::item::{from_sdk, to_sdk};
use crate::ingest::item::Item;
use crate::port::table::{RecordTable, WriteError};

#[derive(Debug, Clone)]
pub struct DynamoTable {
    ddb: Client,
}

impl DynamoTable {
    pub fn new(ddb: Client) -> Self {
        Self { ddb }
    }
}

#[async_trait]
impl RecordTable for DynamoTable {
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<Vec<Item>, WriteError> {
        let call_failed = |source: crate::BoxError| WriteError::Call {
            table: table.to_owned(),
            source,
        };
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(to_sdk(item)))
                    .build()
                    .map_err(|e| call_failed(e.into()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, WriteError>>()?;
        let output = self
            .ddb
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| match validation_message(&e) {
                Some(message) if names_the_key_schema(&message) => WriteError::KeySchema {
                    table: table.to_owned(),
                    message,
                },
                Some(message) => WriteError::Refused {
                    table: table.to_owned(),
                    message,
                },
                None => call_failed(e.into()),
            })?;
        Ok(output
            .unprocessed_items
            .unwrap_or_default()
            .remove(table)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|request| request.put_request.map(|put| from_sdk(put.item)))
            .collect())
    }
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
}

//! UpdateItem on one key, built clause by clause: every `#name` and `:value` is registered
//! once by the clause that uses it, and a lost condition is a typed outcome, not an error.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;

use super::errors::is_condition_failure;

/// What a conditional update did.
#[derive(Debug)]
pub enum Updated {
    /// Applied; with the item as it now is when asked for.
    Applied(HashMap<String, AttributeValue>),
    ConditionFailed,
}

#[derive(Debug)]
pub struct Update {
    key: (String, AttributeValue),
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    delete: Vec<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

pub fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

pub fn string(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_owned())
}

impl Update {
    /// An update of the item whose key attribute `name` is `value`.
    pub fn of(name: &str, value: &str) -> Self {
        Self {
            key: (name.to_owned(), string(value)),
            set: Vec::new(),
            add: Vec::new(),
            remove: Vec::new(),
            delete: Vec::new(),
            conditions: Vec::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// `#name` for an attribute, registered.
    pub fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// A fresh `:vN` for a value, registered.
    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    pub fn set(mut self, attribute: &str, value: AttributeValue) -> Self {
        let clause = format!("{} = {}", self.name(attribute), self.value(value));
        self.set.push(clause);
        self
    }

    pub fn add(mut self, attribute: &str, value: AttributeValue) -> Self {
        let clause = format!("{} {}", self.name(attribute), self.value(value));
        self.add.push(clause);
        self
    }

    pub fn remove(mut self, attribute: &str) -> Self {
        let clause = self.name(attribute);
        self.remove.push(clause);
        self
    }

    /// Removes `value`'s elements from a set attribute.
    pub fn delete(mut self, attribute: &str, value: AttributeValue) -> Self {
        let clause = format!("{} {}", self.name(attribute), self.value(value));
        self.delete.push(clause);
        self
    }

    /// Adds a condition clause built with this update's names and values; clauses AND.
    pub fn when(mut self, clause: impl FnOnce(&mut Self) -> String) -> Self {
        let clause = clause(&mut self);
        self.conditions.push(clause);
        self
    }

    pub fn when_equals(self, attribute: &str, value: AttributeValue) -> Self {
        self.when(|u| format!("{} = {}", u.name(attribute), u.value(value)))
    }

    pub fn when_exists(self, attribute: &str) -> Self {
        self.when(|u| format!("attribute_exists({})", u.name(attribute)))
    }

    fn expression(&self) -> String {
        let mut parts = Vec::new();
        for (keyword, clauses) in [
            ("SET", &self.set),
            ("ADD", &self.add),
            ("REMOVE", &self.remove),
            ("DELETE", &self.delete),
        ] {
            if !clauses.is_empty() {
                parts.push(format!("{keyword} {}", clauses.join(", ")));
            }
        }
        parts.join(" ")
    }

    /// Sends the update; `returning` asks for the whole item as it now is. The write units
    /// it consumed (as the server reports them; a lost condition still costs a write) are
    /// added to `meter`.
    pub async fn send(
        self,
        client: &Client,
        table: &str,
        returning: bool,
        meter: &WriteMeter,
    ) -> Result<Updated, SdkError<UpdateItemError, Response>> {
        let expression = self.expression();
        let condition = (!self.conditions.is_empty()).then(|| self.conditions.join(" AND "));
        let result = client
            .update_item()
            .table_name(table)
            .key(self.key.0, self.key.1)
            .update_expression(expression)
            .set_condition_expression(condition)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values((!self.values.is_empty()).then_some(self.values))
            .return_values(if returning {
                ReturnValue::AllNew
            } else {
                ReturnValue::None
            })
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                meter.add(output.consumed_capacity.and_then(|c| c.capacity_units));
                Ok(Updated::Applied(output.attributes.unwrap_or_default()))
            }
            Err(e) if is_condition_failure(&e) => Ok(Updated::ConditionFailed),
            Err(e) => Err(e),
        }
    }
}

/// Write units consumed, summed over calls (in thousandths), and the calls that reported
/// them: the ledger's cost as the server bills it (dynalite reports it as DynamoDB does).
#[derive(Debug, Default)]
pub struct WriteMeter {
    milli_units: std::sync::atomic::AtomicU64,
    calls: std::sync::atomic::AtomicU64,
}

impl WriteMeter {
    pub fn add(&self, units: Option<f64>) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(units) = units {
            self.milli_units
                .fetch_add((units * 1000.0).round() as u64, Relaxed);
            self.calls.fetch_add(1, Relaxed);
        }
    }

    /// (write units, calls that reported them) so far.
    pub fn total(&self) -> (f64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.milli_units.load(Relaxed) as f64 / 1000.0,
            self.calls.load(Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_register_their_names_and_values_once_each() {
        let update = Update::of("job_id", "j")
            .set("sealed", AttributeValue::Bool(true))
            .add("batches_done", number(1))
            .remove("listing_owner")
            .when_exists("job_id")
            .when_equals("sealed", AttributeValue::Bool(false));
        assert_eq!(
            update.expression(),
            "SET #sealed = :v0 ADD #batches_done :v1 REMOVE #listing_owner"
        );
        assert_eq!(
            update.conditions.join(" AND "),
            "attribute_exists(#job_id) AND #sealed = :v2"
        );
        assert_eq!(update.names.len(), 4);
        assert_eq!(update.values.len(), 3);
    }
}

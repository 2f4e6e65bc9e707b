//! How a job writes: what each row does to the item with its key (the write mode), and how
//! fast it may write (a cap in write units per second, or a share of the table's capacity,
//! resolved to units per second by the coordinator when the job starts).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a row does to the item with its key.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Overwrite the whole item (BatchWriteItem puts).
    #[default]
    Put,
    /// Write only keys that hold no item yet (a conditional PutItem per row); rows whose key
    /// holds an item are counted in `rows_existing`, not rejected.
    Insert,
    /// Merge the row's attributes into the item, keeping its others (an UpdateItem per row;
    /// creates the item when there is none).
    Update,
    /// Delete the item with the row's key (BatchWriteItem deletes); only key columns are
    /// needed in the CSV.
    Delete,
}

impl WriteMode {
    pub fn is_put(&self) -> bool {
        *self == WriteMode::Put
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Put => "put",
            WriteMode::Insert => "insert",
            WriteMode::Update => "update",
            WriteMode::Delete => "delete",
        }
    }
}

/// A job's write rate cap: `400` (write units per second) or `{"fraction": 0.25}` of the
/// table's capacity (provisioned: its write capacity units; on-demand: its
/// `MaxWriteRequestUnits` when set, else `on_demand_units` from the request, else the
/// stack's `ON_DEMAND_WRITE_UNITS`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WriteRate {
    Units(f64),
    Share {
        fraction: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_demand_units: Option<f64>,
    },
}

/// A job's write settings, flattened into the request, the job item and each batch message.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteOptions {
    #[serde(default, skip_serializing_if = "WriteMode::is_put")]
    pub write_mode: WriteMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_write_rate: Option<WriteRate>,
    /// The cap for the whole job in write units per second, as the coordinator resolved
    /// `max_write_rate` when the job started (set by the coordinator, not by callers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_units_per_second: Option<f64>,
}

#[derive(Debug, Error, PartialEq)]
pub enum WriteOptionsError {
    #[error("max_write_rate {0} is not a positive number of write units per second")]
    Units(f64),
    #[error("max_write_rate fraction {0} is not within (0, 1]")]
    Fraction(f64),
    #[error("max_write_rate on_demand_units {0} is not a positive number")]
    OnDemandUnits(f64),
}

impl WriteOptions {
    pub fn validate(&self) -> Result<(), WriteOptionsError> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        match self.max_write_rate {
            None => Ok(()),
            Some(WriteRate::Units(units)) if !positive(units) => {
                Err(WriteOptionsError::Units(units))
            }
            Some(WriteRate::Share { fraction, .. }) if !(positive(fraction) && fraction <= 1.0) => {
                Err(WriteOptionsError::Fraction(fraction))
            }
            Some(WriteRate::Share {
                on_demand_units: Some(units),
                ..
            }) if !positive(units) => Err(WriteOptionsError::OnDemandUnits(units)),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_in_both_rate_forms_and_default_to_put_without_a_cap() {
        let parsed: WriteOptions =
            serde_json::from_str(r#"{"write_mode": "insert", "max_write_rate": 400}"#).unwrap();
        assert_eq!(parsed.write_mode, WriteMode::Insert);
        assert_eq!(parsed.max_write_rate, Some(WriteRate::Units(400.0)));
        let share: WriteOptions =
            serde_json::from_str(r#"{"max_write_rate": {"fraction": 0.25}}"#).unwrap();
        assert_eq!(
            share.max_write_rate,
            Some(WriteRate::Share {
                fraction: 0.25,
                on_demand_units: None
            })
        );
        let none: WriteOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(none, WriteOptions::default());
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
        let err = serde_json::from_str::<WriteOptions>(r#"{"write_mode": "upsert"}"#).unwrap_err();
        assert!(err.to_string().contains("upsert"), "{err}");
    }

    #[test]
    fn rates_out_of_range_are_named() {
        let with = |rate| WriteOptions {
            max_write_rate: Some(rate),
            ..WriteOptions::default()
        };
        assert_eq!(
            with(WriteRate::Units(0.0)).validate(),
            Err(WriteOptionsError::Units(0.0))
        );
        assert_eq!(
            with(WriteRate::Units(f64::INFINITY)).validate(),
            Err(WriteOptionsError::Units(f64::INFINITY))
        );
        let share = |fraction, on_demand_units| WriteRate::Share {
            fraction,
            on_demand_units,
        };
        assert_eq!(
            with(share(1.5, None)).validate(),
            Err(WriteOptionsError::Fraction(1.5))
        );
        assert_eq!(
            with(share(0.0, None)).validate(),
            Err(WriteOptionsError::Fraction(0.0))
        );
        assert_eq!(
            with(share(0.5, Some(-1.0))).validate(),
            Err(WriteOptionsError::OnDemandUnits(-1.0))
        );
        assert_eq!(with(share(1.0, Some(100.0))).validate(), Ok(()));
        assert_eq!(with(WriteRate::Units(0.5)).validate(), Ok(()));
    }
}

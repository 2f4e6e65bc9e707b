//! The item's expiry for DynamoDB TTL: a Number of epoch seconds, from a column (epoch
//! seconds, or a timestamp) or a fixed duration after the load. Values are validated: TTL
//! takes whole non-negative seconds, and a figure past the year 9999 is milliseconds by
//! mistake (it would never expire), so it is rejected with the row instead of stored.

use chrono::DateTime;

use super::error::ValueError;
use super::fields::Typing;
use crate::contract::schema::{ColumnType, TimestampStore};
use crate::ingest::item::Value;

/// 9999-12-31T23:59:59Z: the last second an expiry may name.
pub const MAX_EXPIRY: u64 = 253_402_300_799;

/// Where one job's expiry comes from, resolved against a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtlRule {
    /// From the column at this header position.
    Column { slot: usize, attribute: String },
    /// The same expiry for every row of an object: when its load started, plus `after`.
    Fixed {
        loaded_at: u64,
        after: u64,
        attribute: String,
    },
}

impl TtlRule {
    pub fn attribute(&self) -> &str {
        match self {
            TtlRule::Column { attribute, .. } | TtlRule::Fixed { attribute, .. } => attribute,
        }
    }
}

/// The expiry a typed value names, in epoch seconds; `None` for a stored empty value (NULL
/// or an empty string: no expiry).
pub fn expiry_of(typing: &Typing, value: &Value) -> Result<Option<u64>, ValueError> {
    let seconds = match (typing.kind, value) {
        (_, Value::Null) => return Ok(None),
        (_, Value::S(text)) if text.is_empty() => return Ok(None),
        (ColumnType::Timestamp, Value::S(text)) => {
            let parsed = DateTime::parse_from_rfc3339(text)
                .map_err(|e| ValueError::Expiry(format!("not a timestamp: {e}")))?;
            u64::try_from(parsed.timestamp())
                .map_err(|_| ValueError::Expiry("before 1970".into()))?
        }
        // A timestamp stored as an epoch Number: its whole seconds, as for RFC 3339 text.
        (ColumnType::Timestamp, Value::N(text)) => {
            if text.starts_with('-') {
                return Err(ValueError::Expiry("before 1970".into()));
            }
            let whole = text.split('.').next().unwrap_or(text);
            let units: u64 = whole
                .parse()
                .map_err(|_| ValueError::Expiry("not epoch seconds".into()))?;
            match typing.store {
                TimestampStore::EpochMillis => units / 1000,
                _ => units,
            }
        }
        (_, Value::N(text)) => text
            .parse::<u64>()
            .map_err(|_| ValueError::Expiry("not whole, non-negative epoch seconds".into()))?,
        _ => {
            return Err(ValueError::Expiry(
                "not epoch seconds or a timestamp".into(),
            ));
        }
    };
    if seconds > MAX_EXPIRY {
        return Err(ValueError::Expiry(format!(
            "past the year 9999 (over {MAX_EXPIRY} epoch seconds): milliseconds?"
        )));
    }
    Ok(Some(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typing(kind: ColumnType) -> Typing {
        Typing::of(&crate::contract::schema::Column::new("c", kind))
    }

    #[test]
    fn epoch_timestamps_expire_at_their_whole_seconds() {
        let stored = |store| {
            let mut column = crate::contract::schema::Column::new("c", ColumnType::Timestamp);
            column.store = Some(store);
            Typing::of(&column)
        };
        let n = |t: &str| Value::N(t.into());
        let seconds = stored(TimestampStore::EpochSeconds);
        let millis = stored(TimestampStore::EpochMillis);
        assert_eq!(
            expiry_of(&seconds, &n("1764125773.75")),
            Ok(Some(1_764_125_773))
        );
        assert_eq!(
            expiry_of(&millis, &n("1764125773999")),
            Ok(Some(1_764_125_773))
        );
        assert_eq!(
            expiry_of(&millis, &n("1764125773000.5")),
            Ok(Some(1_764_125_773))
        );
        assert!(
            expiry_of(&seconds, &n("-1.5"))
                .unwrap_err()
                .to_string()
                .contains("1970")
        );
    }

    #[test]
    fn expiries_come_from_seconds_or_timestamps_and_bad_ones_are_named() {
        let n = |t: &str| Value::N(t.into());
        assert_eq!(
            expiry_of(&typing(ColumnType::Integer), &n("1764123373")),
            Ok(Some(1_764_123_373))
        );
        assert_eq!(
            expiry_of(
                &typing(ColumnType::Timestamp),
                &Value::S("2025-11-26T02:56:13Z".into())
            ),
            Ok(Some(1_764_125_773))
        );
        assert_eq!(
            expiry_of(&typing(ColumnType::Number), &Value::Null),
            Ok(None)
        );
        assert_eq!(
            expiry_of(&typing(ColumnType::Number), &Value::S(String::new())),
            Ok(None)
        );
        for bad in ["1.5", "-3"] {
            let err = expiry_of(&typing(ColumnType::Number), &n(bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains("whole, non-negative"), "{err}");
        }
        let millis = expiry_of(&typing(ColumnType::Integer), &n("1764123373000")).unwrap_err();
        assert!(millis.to_string().contains("milliseconds?"), "{millis}");
        assert_eq!(
            expiry_of(&typing(ColumnType::Integer), &n(&MAX_EXPIRY.to_string())),
            Ok(Some(MAX_EXPIRY))
        );
        let early = Value::S("1969-12-31T23:59:59Z".into());
        assert!(
            expiry_of(&typing(ColumnType::Timestamp), &early)
                .unwrap_err()
                .to_string()
                .contains("1970")
        );
    }
}

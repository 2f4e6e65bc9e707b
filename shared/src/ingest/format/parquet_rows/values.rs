//! A Parquet field as the value a JSON Lines field would be ([`Value`]), for the same typer:
//! integers and decimals as exact decimal text (never through `f64`), floats as their
//! shortest exact text (NaN and infinities refused), strings S, binary B, dates and
//! timestamps as ISO text the schema's column type then parses, lists L, groups and maps M.

use std::collections::BTreeMap;

use ::parquet::data_type::Decimal;
use ::parquet::record::{Field, Row};
use chrono::{DateTime, NaiveDate, SecondsFormat};

use crate::ingest::item::Value;

/// Why a field has no value DynamoDB can hold.
pub type ValueProblem = String;

/// A row's top-level fields by name.
pub fn row_object(row: &Row) -> Result<BTreeMap<String, Value>, ValueProblem> {
    let mut object = BTreeMap::new();
    for (name, field) in row.get_column_iter() {
        let value = value(field).map_err(|problem| format!("column {name:?}: {problem}"))?;
        object.insert(name.clone(), value);
    }
    Ok(object)
}

/// One field's value.
pub fn value(field: &Field) -> Result<Value, ValueProblem> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::N(n.to_string()),
        Field::Short(n) => Value::N(n.to_string()),
        Field::Int(n) => Value::N(n.to_string()),
        Field::Long(n) => Value::N(n.to_string()),
        Field::UByte(n) => Value::N(n.to_string()),
        Field::UShort(n) => Value::N(n.to_string()),
        Field::UInt(n) => Value::N(n.to_string()),
        Field::ULong(n) => Value::N(n.to_string()),
        Field::Float16(f) => float(f64::from(*f))?,
        // f32's own shortest text: widening first would print digits it never had.
        Field::Float(f) if f.is_finite() => Value::N(f.to_string()),
        Field::Float(_) => return Err(not_finite()),
        Field::Double(f) => float(*f)?,
        Field::Decimal(d) => Value::N(decimal_text(d)?),
        Field::Str(s) => Value::S(s.clone()),
        Field::Bytes(b) => Value::B(b.data().to_vec()),
        Field::Date(days) => Value::S(date_text(*days)?),
        Field::TimeMillis(ms) => Value::S(time_text(i64::from(*ms) * 1_000)?),
        Field::TimeMicros(us) => Value::S(time_text(*us)?),
        Field::TimestampMillis(ms) => Value::S(timestamp_text(
            DateTime::from_timestamp_millis(*ms),
            SecondsFormat::Millis,
        )?),
        Field::TimestampMicros(us) => Value::S(timestamp_text(
            DateTime::from_timestamp_micros(*us),
            SecondsFormat::Micros,
        )?),
        Field::Group(row) => Value::M(row_object(row)?),
        Field::ListInternal(list) => Value::L(
            list.elements()
                .iter()
                .map(value)
                .collect::<Result<_, _>>()?,
        ),
        Field::MapInternal(map) => {
            let mut object = BTreeMap::new();
            for (key, item) in map.entries() {
                let name = match value(key)? {
                    Value::S(s) | Value::N(s) => s,
                    Value::Bool(b) => b.to_string(),
                    _ => return Err("a map key that is not a string or a number".into()),
                };
                object.insert(name, value(item)?);
            }
            Value::M(object)
        }
    })
}

/// A date as midnight UTC, the text a timestamp column parses (a string column keeps the
/// day alone, [`date_text`]).
pub fn date_as_timestamp(days: i32) -> Result<String, ValueProblem> {
    Ok(format!("{}T00:00:00Z", date_text(days)?))
}

fn not_finite() -> ValueProblem {
    "NaN and infinities are not numbers DynamoDB can store".into()
}

fn float(f: f64) -> Result<Value, ValueProblem> {
    if f.is_finite() {
        Ok(Value::N(f.to_string()))
    } else {
        Err(not_finite())
    }
}

fn date_text(days: i32) -> Result<String, ValueProblem> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::try_days(days.into())?))
        .map(|date| date.format("%Y-%m-%d").to_string())
        .ok_or_else(|| format!("date {days} days from 1970 is out of range"))
}

fn time_text(micros: i64) -> Result<String, ValueProblem> {
    let secs = micros.div_euclid(1_000_000);
    let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
    chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs as u32, nanos)
        .filter(|_| (0..86_400).contains(&secs))
        .map(|t| t.format("%H:%M:%S%.f").to_string())
        .ok_or_else(|| format!("time of day {micros} µs is out of range"))
}

fn timestamp_text(
    at: Option<DateTime<chrono::Utc>>,
    precision: SecondsFormat,
) -> Result<String, ValueProblem> {
    at.map(|t| t.to_rfc3339_opts(precision, true))
        .ok_or_else(|| "a timestamp out of range".into())
}

/// A decimal's exact text: its unscaled big-endian two's-complement integer, the point
/// placed by its scale (DynamoDB holds 38 digits, so 16 bytes is enough).
pub fn decimal_text(decimal: &Decimal) -> Result<String, ValueProblem> {
    let bytes = decimal.data();
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(format!(
            "a decimal of {} bytes (DynamoDB numbers hold at most 38 digits)",
            bytes.len()
        ));
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    let unscaled = i128::from_be_bytes(wide);
    Ok(place_point(unscaled, decimal.scale()))
}

fn place_point(unscaled: i128, scale: i32) -> String {
    let sign = if unscaled < 0 { "-" } else { "" };
    let digits = unscaled.unsigned_abs().to_string();
    if scale <= 0 {
        let zeros = if digits == "0" {
            0
        } else {
            scale.unsigned_abs() as usize
        };
        return format!("{sign}{digits}{}", "0".repeat(zeros));
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        format!("{sign}{whole}.{fraction}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_place_their_point_exactly_and_negatives_keep_their_sign() {
        assert_eq!(place_point(12345, 2), "123.45");
        assert_eq!(place_point(-5, 3), "-0.005");
        assert_eq!(place_point(7, 0), "7");
        assert_eq!(place_point(7, -2), "700");
        assert_eq!(place_point(0, -2), "0");
        let big = Decimal::from_bytes(
            ::parquet::data_type::ByteArray::from(vec![0xffu8, 0xff, 0xff, 0xfe]),
            9,
            1,
        );
        assert_eq!(decimal_text(&big).unwrap(), "-0.2");
        let long = Decimal::from_i64(9_007_199_254_740_993, 18, 0);
        assert_eq!(decimal_text(&long).unwrap(), "9007199254740993");
    }

    #[test]
    fn floats_are_exact_text_and_nan_is_refused() {
        assert_eq!(value(&Field::Double(0.1)).unwrap(), Value::N("0.1".into()));
        assert_eq!(value(&Field::Float(1.5)).unwrap(), Value::N("1.5".into()));
        assert!(value(&Field::Double(f64::NAN)).is_err());
        assert!(value(&Field::Float(f32::INFINITY)).is_err());
        assert_eq!(
            value(&Field::Long(i64::MAX)).unwrap(),
            Value::N("9223372036854775807".into())
        );
        assert_eq!(
            value(&Field::Date(19_000)).unwrap(),
            Value::S("2022-01-08".into())
        );
        assert_eq!(
            value(&Field::TimestampMillis(1_700_000_000_123)).unwrap(),
            Value::S("2023-11-14T22:13:20.123Z".into())
        );
    }
}

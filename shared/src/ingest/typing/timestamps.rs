//! Timestamps: the seed's `YYYY-MM-DD HH:MM:SS[.f] UTC` and RFC 3339, stored as RFC 3339 UTC
//! or, when the column says so, as a Number of epoch seconds or milliseconds (a fraction of
//! the unit kept exactly, never rounded).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

use super::error::ValueError;
use super::numbers::{Decimal, parse_decimal};
use crate::contract::schema::TimestampStore;

/// The timestamp as epoch seconds or milliseconds (`store` an epoch form), canonical.
pub fn epoch_number(raw: &str, store: TimestampStore) -> Result<Decimal, ValueError> {
    let text = normalise_timestamp(raw)?;
    let parsed =
        DateTime::parse_from_rfc3339(&text).map_err(|e| ValueError::Timestamp(e.to_string()))?;
    let nanos = i128::from(parsed.timestamp()) * 1_000_000_000
        + i128::from(parsed.timestamp_subsec_nanos());
    let (unit, places) = match store {
        TimestampStore::EpochMillis => (1_000_000, 6),
        _ => (1_000_000_000, 9),
    };
    let sign = if nanos < 0 { "-" } else { "" };
    let (whole, fraction) = (nanos.abs() / unit, nanos.abs() % unit);
    // Within chrono's years (under 300,000) this is far inside DynamoDB's number limits.
    parse_decimal(&format!("{sign}{whole}.{fraction:0places$}"))
        .map_err(|e| ValueError::Timestamp(e.to_string()))
}

/// Accepts the seed's `YYYY-MM-DD HH:MM:SS UTC` and RFC 3339; returns RFC 3339 UTC. The
/// error says what was expected and why parsing stopped, never the text itself.
pub fn normalise_timestamp(raw: &str) -> Result<String, ValueError> {
    if let Some(fast) = seed_timestamp(raw) {
        return Ok(fast);
    }
    let parsed = if let Some(naive) = raw.strip_suffix(" UTC") {
        NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
    } else {
        DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc))
    };
    parsed
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .map_err(|e| ValueError::Timestamp(e.to_string()))
}

/// The seed's exact form, `2025-11-26 02:56:13 UTC`, validated and rewritten without a
/// general parser: it is most of the timestamps this pipeline sees.
fn seed_timestamp(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let shape_ok = b.len() == 23
        && raw.ends_with(" UTC")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':';
    if !shape_ok {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?.and_hms_opt(
        number(11, 13)?,
        number(14, 16)?,
        number(17, 19)?,
    )?;
    let mut out = String::with_capacity(20);
    out.push_str(&raw[..10]);
    out.push('T');
    out.push_str(&raw[11..19]);
    out.push('Z');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_normalise_to_rfc3339_utc() {
        assert_eq!(
            normalise_timestamp("2025-11-26 02:56:13 UTC").unwrap(),
            "2025-11-26T02:56:13Z"
        );
        assert_eq!(
            normalise_timestamp("2025-11-26T02:56:13.250-01:00").unwrap(),
            "2025-11-26T03:56:13.250Z"
        );
        assert_eq!(
            normalise_timestamp("2024-02-29 23:59:59 UTC").unwrap(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(
            normalise_timestamp("2025-11-26 02:56:13.5 UTC").unwrap(),
            "2025-11-26T02:56:13.500Z"
        );
    }

    #[test]
    fn epoch_forms_are_exact() {
        let at = |raw, store| epoch_number(raw, store).unwrap().text;
        let seconds = TimestampStore::EpochSeconds;
        let millis = TimestampStore::EpochMillis;
        assert_eq!(at("2025-11-26 02:56:13 UTC", seconds), "1764125773");
        assert_eq!(at("2025-11-26 02:56:13 UTC", millis), "1764125773000");
        assert_eq!(at("2025-11-26T02:56:13.25Z", seconds), "1764125773.25");
        assert_eq!(
            at("2025-11-26T02:56:13.123456789Z", millis),
            "1764125773123.456789"
        );
        assert_eq!(at("1969-12-31T23:59:58.5Z", seconds), "-1.5");
        assert_eq!(at("1970-01-01T00:00:00Z", millis), "0");
        assert!(epoch_number("yesterday", seconds).is_err());
    }

    #[test]
    fn impossible_dates_and_times_are_refused_without_echoing_the_text() {
        for bad in [
            "2025-13-26 02:56:13 UTC",
            "2025-02-30 02:56:13 UTC",
            "2025-11-26 24:56:13 UTC",
            "2025-11-2x 02:56:13 UTC",
            "yesterday",
            "",
        ] {
            let err = normalise_timestamp(bad).unwrap_err();
            assert!(matches!(err, ValueError::Timestamp(_)), "{bad}");
            assert!(bad.is_empty() || !err.to_string().contains(bad), "{err}");
        }
    }
}

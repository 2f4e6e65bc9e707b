//! Timestamps: the seed's `YYYY-MM-DD HH:MM:SS[.f] UTC` and RFC 3339, stored as RFC 3339 UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

use super::error::ValueError;

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

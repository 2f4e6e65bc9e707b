//! DynamoDB numbers (N): at most 38 significant digits, magnitude from 1E-130 to
//! 9.9999999999999999999999999999999999999E+125, or zero. A number is checked against those
//! limits while typing (the server would refuse the whole BatchWriteItem holding it) and
//! rewritten in one canonical text per value, so `7`, `007`, `7.0` and `+7` are one key.

use thiserror::Error;

/// DynamoDB's precision.
pub const MAX_SIGNIFICANT_DIGITS: usize = 38;
/// Exponent of the leading digit (scientific notation) of the largest magnitude.
pub const MAX_EXPONENT: i64 = 125;
/// Exponent of the leading digit of the smallest non-zero magnitude.
pub const MIN_EXPONENT: i64 = -130;
/// Canonical texts use plain notation while the leading digit's exponent is in this range.
const PLAIN_EXPONENTS: std::ops::Range<i64> = -20..40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NumberError {
    #[error("invalid number (expected [+-]digits[.digits][e[+-]digits])")]
    Syntax,
    #[error("number has {0} significant digits, more than DynamoDB's 38")]
    TooManyDigits(usize),
    #[error(
        "number overflow: magnitude above DynamoDB's largest, 9.9999999999999999999999999999999999999E+125"
    )]
    Overflow,
    #[error("number underflow: magnitude below DynamoDB's smallest non-zero, 1E-130")]
    Underflow,
    #[error("invalid integer (expected a 64-bit integer)")]
    Integer,
}

/// A number DynamoDB accepts, in canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    /// No `+`, no leading or trailing zeros, `0` for every zero (negative zero included);
    /// plain notation for exponents in -20..40, `d.dddE±x` beyond.
    pub text: String,
    /// Significant digits (1 for zero): what DynamoDB's stored size depends on.
    pub significant: usize,
}

/// Validates `[+-]digits[.digits][e[+-]digits]` against DynamoDB's limits; returns its
/// canonical text. Exact: no float is involved, so no digit is lost or invented.
pub fn parse_decimal(raw: &str) -> Result<Decimal, NumberError> {
    match already_canonical(raw) {
        Some(decimal) => Ok(decimal),
        None => parse_general(raw),
    }
}

/// Any decimal text, canonicalised digit by digit.
fn parse_general(raw: &str) -> Result<Decimal, NumberError> {
    let (negative, unsigned) = match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(NumberError::Syntax);
    }
    let exponent = match exponent {
        Some(text) => parse_exponent(text)?,
        None => 0,
    };
    let digits = || whole.bytes().chain(fraction.bytes());
    let Some(first) = digits().position(|d| d != b'0') else {
        return Ok(Decimal {
            text: "0".to_owned(),
            significant: 1,
        });
    };
    let last =
        whole.len() + fraction.len() - 1 - digits().rev().position(|d| d != b'0').unwrap_or(0);
    let significant = last - first + 1;
    if significant > MAX_SIGNIFICANT_DIGITS {
        return Err(NumberError::TooManyDigits(significant));
    }
    // The leading digit's place value: 10^(whole.len() - 1 - first) times 10^exponent.
    let leading = (whole.len() as i64 - 1 - first as i64).saturating_add(exponent);
    if leading > MAX_EXPONENT {
        return Err(NumberError::Overflow);
    }
    if leading < MIN_EXPONENT {
        return Err(NumberError::Underflow);
    }
    let coefficient: String = digits()
        .skip(first)
        .take(significant)
        .map(char::from)
        .collect();
    Ok(Decimal {
        text: canonical(negative, &coefficient, leading),
        significant,
    })
}

/// `raw` itself when it is already its canonical text, as most input numbers are (`21.5`,
/// `-3`, `0.25`): plain digits, no sign but `-`, no exponent, no leading or trailing zero
/// that canonical text drops, within the plain-notation range. The hot path of typing:
/// it skips building the coefficient and the canonical text (one allocation, not three).
/// Anything else goes through the general parse, which gives the same text.
fn already_canonical(raw: &str) -> Option<Decimal> {
    let unsigned = raw.strip_prefix('-').unwrap_or(raw);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((_, "")) => return None, // `5.` is `5`
        Some(parts) => parts,
        None => (unsigned, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.ends_with('0') {
        return None;
    }
    let significant = if whole == "0" {
        // `0.0012`: canonical while the leading digit is within plain notation.
        let zeros = fraction.bytes().take_while(|&b| b == b'0').count();
        if fraction.len() == zeros || zeros + 1 > -PLAIN_EXPONENTS.start as usize {
            return None;
        }
        fraction.len() - zeros
    } else if whole.starts_with('0') || whole.len() > PLAIN_EXPONENTS.end as usize {
        return None;
    } else if fraction.is_empty() {
        whole.len() - whole.bytes().rev().take_while(|&b| b == b'0').count()
    } else {
        whole.len() + fraction.len()
    };
    (significant <= MAX_SIGNIFICANT_DIGITS).then(|| Decimal {
        text: raw.to_owned(),
        significant,
    })
}

/// An exponent's value, saturated far beyond DynamoDB's range (so `1e99999999999999999999`
/// is an overflow, not a parse error).
fn parse_exponent(text: &str) -> Result<i64, NumberError> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(NumberError::Syntax);
    }
    let mut value: i64 = 0;
    for d in digits.bytes() {
        if !d.is_ascii_digit() {
            return Err(NumberError::Syntax);
        }
        value = (value * 10 + i64::from(d - b'0')).min(1 << 40);
    }
    Ok(if negative { -value } else { value })
}

/// One text per value: `coefficient` (no leading or trailing zeros) times 10^`leading`
/// for its first digit.
fn canonical(negative: bool, coefficient: &str, leading: i64) -> String {
    let n = coefficient.len() as i64;
    let mut out = String::with_capacity(coefficient.len() + 24);
    if negative {
        out.push('-');
    }
    if !PLAIN_EXPONENTS.contains(&leading) {
        out.push_str(&coefficient[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&coefficient[1..]);
        }
        out.push_str(&format!(
            "E{}{}",
            if leading < 0 { '-' } else { '+' },
            leading.abs()
        ));
    } else if leading < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-leading - 1) as usize));
        out.push_str(coefficient);
    } else if leading + 1 >= n {
        out.push_str(coefficient);
        out.extend(std::iter::repeat_n('0', (leading + 1 - n) as usize));
    } else {
        let point = (leading + 1) as usize;
        out.push_str(&coefficient[..point]);
        out.push('.');
        out.push_str(&coefficient[point..]);
    }
    out
}

/// A 64-bit integer in canonical text (no `+`, no leading zeros, `-0` is `0`).
pub fn parse_integer(raw: &str) -> Result<Decimal, NumberError> {
    let n: i64 = raw.parse().map_err(|_| NumberError::Integer)?;
    let text = n.to_string();
    let significant = significant_digits(&text);
    Ok(Decimal { text, significant })
}

/// Significant digits of a valid number's text (1 for zero): for DynamoDB's size rule.
pub fn significant_digits(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits = mantissa.as_bytes().iter().filter(|b| b.is_ascii_digit());
    let first = digits.clone().position(|&d| d != b'0');
    let last = digits.clone().rev().position(|&d| d != b'0');
    match (first, last) {
        (Some(first), Some(last)) => digits.count() - first - last,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path is only a shortcut: wherever it answers, the general parse gives
        /// the same text and digit count.
        #[test]
        fn the_canonical_shortcut_agrees_with_the_general_parse(
            raw in r"[-+]?[0-9]{0,44}(\.[0-9]{0,24})?",
        ) {
            if let Some(fast) = already_canonical(&raw) {
                prop_assert_eq!(Ok(fast), parse_general(&raw));
            }
        }
    }

    #[test]
    fn common_numbers_take_the_shortcut_and_others_do_not() {
        for raw in [
            "21.5",
            "-3",
            "0.25",
            "100",
            "-0.001",
            "12345678901234567890",
        ] {
            assert!(already_canonical(raw).is_some(), "{raw}");
        }
        for raw in [
            "5.",
            ".5",
            "+1",
            "007",
            "7.0",
            "-0",
            "0",
            "0.0",
            "1e3",
            "0.000000000000000000001",
        ] {
            assert!(already_canonical(raw).is_none(), "{raw}");
        }
    }

    fn text(raw: &str) -> String {
        parse_decimal(raw).unwrap().text
    }

    #[test]
    fn valid_numbers_get_one_canonical_text_per_value() {
        assert_eq!(text("19.8"), "19.8");
        assert_eq!(text("+4.5"), "4.5");
        assert_eq!(text(".5"), "0.5");
        assert_eq!(text("5."), "5");
        assert_eq!(text("-3e2"), "-300");
        assert_eq!(text("1.5E-3"), "0.0015");
        assert_eq!(text("000123.4500"), "123.45");
        for seven in ["7", "007", "7.0", "+7", "0.7e1", "70e-1", "7e0000"] {
            assert_eq!(text(seven), "7", "{seven}");
        }
        assert_eq!(text("1e125"), "1E+125");
        assert_eq!(text("-1.25e-100"), "-1.25E-100");
        assert_eq!(text("123e38"), "1.23E+40");
        assert_eq!(text("1e39"), "1000000000000000000000000000000000000000");
    }

    #[test]
    fn negative_zero_and_every_zero_are_zero() {
        for zero in ["0", "-0", "+0", "0.000", "-0e999", "000", ".0", "0e-999"] {
            assert_eq!(
                parse_decimal(zero).unwrap(),
                Decimal {
                    text: "0".into(),
                    significant: 1
                },
                "{zero}"
            );
        }
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "", ".", "-", "+", "1.2.3", "1e", "e5", "1e+", "inf", "Infinity", "NaN", "0x10",
            "1_000", " 1", "1 ", "--1", "1e1.5", "1,5",
        ] {
            assert_eq!(parse_decimal(bad), Err(NumberError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn more_than_38_significant_digits_is_refused_but_zeros_around_them_are_not() {
        assert_eq!(
            parse_decimal("1234567890123456789012345678901234567890"),
            Err(NumberError::TooManyDigits(39))
        );
        assert_eq!(
            parse_decimal(&format!("{}.5", "1".repeat(38))),
            Err(NumberError::TooManyDigits(39))
        );
        assert!(parse_decimal(&format!("0.000{}", "1".repeat(38))).is_ok());
        assert!(parse_decimal(&format!("{}000000", "1".repeat(38))).is_ok());
        assert_eq!(parse_decimal(&"9".repeat(38)).unwrap().significant, 38);
    }

    #[test]
    fn magnitude_limits_are_dynamodb_s() {
        let largest = format!("9.{}E+125", "9".repeat(37));
        assert_eq!(parse_decimal(&largest).unwrap().text, largest);
        assert_eq!(
            parse_decimal(&format!("-{largest}")).unwrap().text,
            format!("-{largest}")
        );
        assert_eq!(parse_decimal("1E-130").unwrap().text, "1E-130");
        for overflow in [
            "1e200",
            "9e999",
            "1e126",
            "10e125",
            "-1e126",
            "1e99999999999999999999",
        ] {
            assert_eq!(
                parse_decimal(overflow),
                Err(NumberError::Overflow),
                "{overflow}"
            );
        }
        for underflow in [
            "1e-200",
            "1e-131",
            "0.1e-130",
            "-9e-131",
            "1e-99999999999999999999",
        ] {
            assert_eq!(
                parse_decimal(underflow),
                Err(NumberError::Underflow),
                "{underflow}"
            );
        }
        // Plain digits count too: 127 digits before the point is an overflow.
        assert_eq!(
            parse_decimal(&format!("1{}", "0".repeat(126))),
            Err(NumberError::Overflow)
        );
    }

    #[test]
    fn integers_are_64_bit_and_canonical() {
        assert_eq!(parse_integer("-0").unwrap().text, "0");
        assert_eq!(parse_integer("+0042").unwrap().text, "42");
        assert_eq!(
            parse_integer("9223372036854775807").unwrap().significant,
            19
        );
        for bad in ["9223372036854775808", "1.0", "x", "", "1e3"] {
            assert_eq!(parse_integer(bad), Err(NumberError::Integer), "{bad}");
        }
    }

    #[test]
    fn significant_digits_ignore_sign_point_exponent_and_zeros() {
        assert_eq!(significant_digits("0"), 1);
        assert_eq!(significant_digits("-0.00120"), 2);
        assert_eq!(significant_digits("1.25E-100"), 3);
        assert_eq!(significant_digits("1200"), 2);
    }
}

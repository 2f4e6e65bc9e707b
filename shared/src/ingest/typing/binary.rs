//! Binary (B) values from text: base64 (RFC 4648, standard alphabet, `=` padding optional)
//! or hex. Decoding is strict, so one text means one byte string: stray characters, a
//! misplaced `=` and non-zero bits past the last byte are refused, not skipped.

use thiserror::Error;

use crate::contract::schema::BinaryEncoding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BinaryError {
    #[error("invalid base64 (RFC 4648 standard alphabet, `=` padding optional)")]
    Base64,
    #[error("invalid hex (two hex digits per byte)")]
    Hex,
}

pub fn decode(encoding: BinaryEncoding, text: &str) -> Result<Vec<u8>, BinaryError> {
    match encoding {
        BinaryEncoding::Base64 => decode_base64(text),
        BinaryEncoding::Hex => decode_hex(text),
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, BinaryError> {
    let bytes = text.as_bytes();
    // Padding, if any, completes the last quantum: 4-byte groups only.
    let data = match bytes.iter().position(|&b| b == b'=') {
        Some(at) => {
            let pad = bytes.len() - at;
            if !bytes.len().is_multiple_of(4) || pad > 2 || bytes[at..].iter().any(|&b| b != b'=') {
                return Err(BinaryError::Base64);
            }
            &bytes[..at]
        }
        None => bytes,
    };
    if data.len() % 4 == 1 {
        return Err(BinaryError::Base64);
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut group = 0u32;
        for &c in chunk {
            group = group << 6 | sextet(c).ok_or(BinaryError::Base64)?;
        }
        let bits = chunk.len() * 6;
        let whole = bits / 8;
        let spare = bits - whole * 8;
        if group & ((1 << spare) - 1) != 0 {
            return Err(BinaryError::Base64);
        }
        group >>= spare;
        for i in (0..whole).rev() {
            out.push((group >> (8 * i)) as u8);
        }
    }
    Ok(out)
}

pub fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group =
            chunk.iter().fold(0u32, |g, &b| g << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(group >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn decode_hex(text: &str) -> Result<Vec<u8>, BinaryError> {
    let digit = |c: u8| char::from(c).to_digit(16).ok_or(BinaryError::Hex);
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(BinaryError::Hex);
    }
    bytes
        .chunks(2)
        .map(|pair| Ok((digit(pair[0])? << 4 | digit(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_exactly_with_or_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("AAEC/w==").unwrap(), [0, 1, 2, 255]);
        assert_eq!(decode_base64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(decode_base64("").unwrap(), b"");
        for bad in [
            "a",
            "aGk=x",
            "aG=k",
            "aGVsbG8==",
            "aGj=",
            "a-b_",
            "aGk===",
            "=",
            "aG k",
        ] {
            assert_eq!(decode_base64(bad), Err(BinaryError::Base64), "{bad}");
        }
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", &[0, 255, 128, 7, 9]] {
            assert_eq!(decode_base64(&encode_base64(bytes)).unwrap(), bytes);
        }
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn hex_takes_either_case_and_whole_bytes() {
        assert_eq!(decode_hex("00aBfF").unwrap(), [0, 0xab, 0xff]);
        for bad in ["0", "0g", "abc", " 00", "+1"] {
            assert_eq!(decode_hex(bad), Err(BinaryError::Hex), "{bad}");
        }
        assert_eq!(
            decode(BinaryEncoding::Hex, "ff").unwrap(),
            decode(BinaryEncoding::Base64, "/w==").unwrap()
        );
    }
}

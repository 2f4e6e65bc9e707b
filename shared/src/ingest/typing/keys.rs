//! Key attributes: a composite key's parts joined by `#` in a form that cannot collide, and
//! DynamoDB's key size limits.
//!
//! Encoding (the data contract): a single-column key is the column's text as is. A
//! composite key escapes each part (`\` as `\\`, `#` as `\#`) and joins the parts with `#`,
//! so `("a#b", "c")` is `a\#b#c` and `("a", "b#c")` is `a#b\#c`: different rows never share a
//! key, and [`split_parts`] gives the parts back. Parts without `#` or `\` (the usual case)
//! read exactly as before the escaping existed.

/// DynamoDB's limit on a partition key value.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// DynamoDB's limit on a sort key value.
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// DynamoDB's limit on the name of a table's key attribute.
pub const MAX_KEY_NAME_BYTES: usize = 255;

const SEPARATOR: char = '#';
const ESCAPE: char = '\\';

/// A key's text from its parts' texts (see the module docs).
pub fn join_parts<'a>(parts: impl ExactSizeIterator<Item = &'a str>) -> String {
    let composite = parts.len() > 1;
    let mut out = String::new();
    for (i, part) in parts.enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        if composite {
            push_escaped(&mut out, part, &[SEPARATOR, ESCAPE]);
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Appends `part` with each of `special` (which holds `\` itself) preceded by `\`: the
/// escaping of composite keys and of templates' values.
pub fn push_escaped(out: &mut String, part: &str, special: &[char]) {
    if !part.contains(special) {
        out.push_str(part);
        return;
    }
    for c in part.chars() {
        if special.contains(&c) {
            out.push(ESCAPE);
        }
        out.push(c);
    }
}

/// A composite key's parts back from its text: the inverse of [`join_parts`] for two or
/// more parts.
pub fn split_parts(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ESCAPE => parts.last_mut().expect("never empty").extend(chars.next()),
            SEPARATOR => parts.push(String::new()),
            c => parts.last_mut().expect("never empty").push(c),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(parts: &[&str]) -> String {
        join_parts(parts.iter().copied())
    }

    #[test]
    fn composite_parts_holding_the_separator_never_collide() {
        assert_eq!(join(&["a#b", "c"]), "a\\#b#c");
        assert_eq!(join(&["a", "b#c"]), "a#b\\#c");
        assert_ne!(join(&["a#b", "c"]), join(&["a", "b#c"]));
        assert_ne!(join(&["a\\", "#b"]), join(&["a\\#", "b"]));
        assert_eq!(
            join(&["2025-11-26T00:00:00Z", "7"]),
            "2025-11-26T00:00:00Z#7"
        );
        // A single column is its text as is, separator and all.
        assert_eq!(join(&["a#b\\c"]), "a#b\\c");
    }

    #[test]
    fn the_encoding_is_reversible() {
        for parts in [
            vec!["a#b", "c"],
            vec!["a", "b#c"],
            vec!["\\", "#", ""],
            vec!["x\\#y", "\\\\", "##"],
            vec!["plain", "7"],
        ] {
            assert_eq!(split_parts(&join(&parts)), parts, "{parts:?}");
        }
    }
}

//! Which column of an inventory row holds what: by name, from the CSV manifest's
//! `fileSchema` (AWS lists optional columns in the order it chose, so positions are never
//! assumed), or from a Parquet file's own schema.

/// Positions of the columns the load needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvColumns {
    pub count: usize,
    pub bucket: Option<usize>,
    pub key: usize,
    pub size: Option<usize>,
    pub is_latest: Option<usize>,
    pub is_delete_marker: Option<usize>,
}

impl CsvColumns {
    /// From `fileSchema` ("Bucket, Key, Size, ..."), names compared without case.
    pub fn of_schema(schema: &str) -> Result<Self, String> {
        let names: Vec<String> = schema
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        let find = |name: &str| names.iter().position(|n| n == name);
        let key = find("key").ok_or_else(|| {
            format!(
                "the fileSchema has no Key column: {}",
                crate::ingest::typing::error::cap(schema, 200)
            )
        })?;
        Ok(Self {
            count: names.len(),
            bucket: find("bucket"),
            key,
            size: find("size"),
            is_latest: find("islatest"),
            is_delete_marker: find("isdeletemarker"),
        })
    }
}

/// The Parquet column names AWS writes (snake case).
pub mod parquet_names {
    pub const BUCKET: &str = "bucket";
    pub const KEY: &str = "key";
    pub const SIZE: &str = "size";
    pub const IS_LATEST: &str = "is_latest";
    pub const IS_DELETE_MARKER: &str = "is_delete_marker";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let columns = CsvColumns::of_schema("Size, ETag, key,IsDeleteMarker , Bucket").unwrap();
        assert_eq!(
            columns,
            CsvColumns {
                count: 5,
                bucket: Some(4),
                key: 2,
                size: Some(0),
                is_latest: None,
                is_delete_marker: Some(3),
            }
        );
        assert!(CsvColumns::of_schema("Bucket, Size").is_err());
    }
}

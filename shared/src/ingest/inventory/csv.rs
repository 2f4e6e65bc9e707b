//! Rows of a CSV inventory data file (decompressed; no header row), read one record at a
//! time by the pipeline's own CSV reader (quoted fields, doubled quotes). Keys are
//! URL-encoded in this form only (`+` for a space, `%XX` for the rest), so they are decoded
//! here; Size is empty for a delete marker.

use tokio::io::AsyncBufRead;

use super::columns::CsvColumns;
use super::{InventoryError, Listed};
use crate::ingest::csv_stream::{Record, RecordReader};

/// An inventory line is a few hundred bytes; far more is a corrupt file.
const MAX_LINE_BYTES: usize = 64 << 10;

pub struct CsvInventory<R> {
    records: RecordReader<R>,
    record: Record,
    columns: CsvColumns,
    file: String,
}

impl<R: AsyncBufRead + Unpin> CsvInventory<R> {
    /// Rows of `file` (named in errors) from its decompressed bytes.
    pub fn new(source: R, columns: CsvColumns, file: &str) -> Self {
        Self {
            records: RecordReader::new(source).with_max_record_bytes(MAX_LINE_BYTES),
            record: Record::default(),
            columns,
            file: file.to_owned(),
        }
    }

    /// The next row; `None` at the end. A row that does not read is an error of the file
    /// (its MD5 matched, so the report itself is not what this loader reads).
    pub async fn next(&mut self) -> Result<Option<Listed>, InventoryError> {
        let read = self.records.read(&mut self.record).await;
        let more = read.map_err(|e| InventoryError::Read {
            file: self.file.clone(),
            reason: e.to_string(),
        })?;
        if !more {
            return Ok(None);
        }
        listed_of_record(&self.record, &self.columns)
            .map(Some)
            .map_err(|reason| InventoryError::Row {
                file: self.file.clone(),
                line: self.record.line(),
                reason,
            })
    }
}

fn listed_of_record(record: &Record, columns: &CsvColumns) -> Result<Listed, String> {
    if record.is_oversized() {
        return Err(format!("the line is over {MAX_LINE_BYTES} bytes"));
    }
    if record.len() != columns.count {
        return Err(format!(
            "{} fields where the fileSchema names {}",
            record.len(),
            columns.count
        ));
    }
    let text = |i: usize| -> Result<&str, String> {
        let field = record.get(i).unwrap_or_default();
        std::str::from_utf8(field).map_err(|_| format!("field {} is not UTF-8", i + 1))
    };
    let key = url_decode(text(columns.key)?)?;
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    let size = match columns.size {
        None => None,
        Some(i) => match text(i)?.trim() {
            "" => None,
            digits => Some(
                digits
                    .parse()
                    .map_err(|_| format!("Size {digits:?} is not a byte count"))?,
            ),
        },
    };
    let flag = |column: Option<usize>, absent: bool| -> Result<bool, String> {
        let Some(i) = column else { return Ok(absent) };
        match text(i)?.trim() {
            "" => Ok(absent),
            v if v.eq_ignore_ascii_case("true") => Ok(true),
            v if v.eq_ignore_ascii_case("false") => Ok(false),
            v => Err(format!("{v:?} is not true or false")),
        }
    };
    Ok(Listed {
        bucket: columns.bucket.map(text).transpose()?.map(str::to_owned),
        key,
        size,
        latest: flag(columns.is_latest, true)?,
        delete_marker: flag(columns.is_delete_marker, false)?,
    })
}

/// A key as S3 Inventory's CSV writes it: form-URL-encoded (`+` is a space, `%2B` a plus).
pub fn url_decode(encoded: &str) -> Result<String, String> {
    if !encoded.contains(['+', '%']) {
        return Ok(encoded.to_owned());
    }
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("the key {encoded:?} does not URL-decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn rows(schema: &str, text: &str) -> Result<Vec<Listed>, InventoryError> {
        let columns = CsvColumns::of_schema(schema).unwrap();
        let mut reader = CsvInventory::new(text.as_bytes(), columns, "f.csv.gz");
        let mut out = Vec::new();
        while let Some(row) = reader.next().await? {
            out.push(row);
        }
        Ok(out)
    }

    #[test]
    fn keys_are_form_url_decoded() {
        assert_eq!(url_decode("data/a+b%2Bc.csv").unwrap(), "data/a b+c.csv");
        assert_eq!(
            url_decode("d%C3%A9j%C3%A0%2C%22q%22.csv").unwrap(),
            "déjà,\"q\".csv"
        );
        assert_eq!(url_decode("plain/key.csv").unwrap(), "plain/key.csv");
        assert!(url_decode("bad%FF.csv").is_err());
    }

    #[tokio::test]
    async fn quoted_fields_any_column_order_delete_markers_and_versions() {
        let schema =
            "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag";
        let text = concat!(
            "\"src\",\"data/a+file%2B1.csv\",\"v1\",\"true\",\"false\",\"120\",\"2026-11-01T00:00:00.000Z\",\"e1\"\n",
            "\"src\",\"data/gone.csv\",\"v2\",\"true\",\"true\",\"\",\"2026-11-01T00:00:00.000Z\",\"\"\n",
            "\"src\",\"data/old.csv\",\"v0\",\"false\",\"false\",\"7\",\"2026-10-01T00:00:00.000Z\",\"e0\"\n",
        );
        let listed = rows(schema, text).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0].key, "data/a file+1.csv");
        assert_eq!(
            (listed[0].size, listed[0].latest, listed[0].delete_marker),
            (Some(120), true, false)
        );
        assert_eq!(listed[0].bucket.as_deref(), Some("src"));
        assert_eq!((listed[1].size, listed[1].delete_marker), (None, true));
        assert!(!listed[2].latest);
        assert!(listed[0].is_current() && !listed[1].is_current() && !listed[2].is_current());
        // Columns in another order, unquoted, CRLF line ends.
        let other = rows("Size, Key", "5,k%20one.csv\r\n6,k2.jsonl\r\n")
            .await
            .unwrap();
        assert_eq!(
            other
                .iter()
                .map(|l| (l.key.as_str(), l.size))
                .collect::<Vec<_>>(),
            [("k one.csv", Some(5)), ("k2.jsonl", Some(6))]
        );
    }

    #[tokio::test]
    async fn a_row_that_does_not_read_names_its_file_and_line() {
        let error = rows("Bucket, Key, Size", "b,k1,1\nb,k2\n")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "f.csv.gz line 2: 2 fields where the fileSchema names 3"
        );
        let error = rows("Bucket, Key, Size", "b,k1,x1\n").await.unwrap_err();
        assert!(error.to_string().contains("not a byte count"), "{error}");
    }
}

//! Rows of a Parquet inventory data file, read from its bytes in memory with only the
//! columns the load needs projected (bucket, key, size, is_latest, is_delete_marker; AWS's
//! snake-case names). Keys are not URL-encoded in this form.

use ::parquet::file::reader::FileReader;
use ::parquet::file::serialized_reader::SerializedFileReader;
use ::parquet::record::reader::RowIter;
use ::parquet::record::{Field, Row};
use ::parquet::schema::types::Type;

use super::columns::parquet_names as names;
use super::{InventoryError, Listed};

/// The rows of one Parquet data file.
pub struct ParquetInventory {
    rows: RowIter<'static>,
    /// Positions in a projected row.
    bucket: Option<usize>,
    key: usize,
    size: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
    file: String,
    row: u64,
}

impl ParquetInventory {
    /// Opens `bytes` (the whole file) and projects the columns it needs.
    pub fn open(bytes: bytes::Bytes, file: &str) -> Result<Self, InventoryError> {
        let fail = |reason: String| InventoryError::Read {
            file: file.to_owned(),
            reason,
        };
        let reader = SerializedFileReader::new(bytes)
            .map_err(|e| fail(format!("the Parquet file does not open: {e}")))?;
        let root = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .root_schema();
        let wanted = [
            names::BUCKET,
            names::KEY,
            names::SIZE,
            names::IS_LATEST,
            names::IS_DELETE_MARKER,
        ];
        let fields: Vec<_> = (root.get_fields().iter())
            .filter(|f| wanted.contains(&f.name().to_ascii_lowercase().as_str()))
            .cloned()
            .collect();
        let position = |name: &str| {
            fields
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name))
        };
        let key = position(names::KEY).ok_or_else(|| fail("it has no key column".into()))?;
        let (bucket, size) = (position(names::BUCKET), position(names::SIZE));
        let (is_latest, is_delete_marker) = (
            position(names::IS_LATEST),
            position(names::IS_DELETE_MARKER),
        );
        let projection = Type::group_type_builder(root.name())
            .with_fields(fields)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let rows = RowIter::from_file_into(Box::new(reader))
            .project(Some(projection))
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            rows,
            bucket,
            key,
            size,
            is_latest,
            is_delete_marker,
            file: file.to_owned(),
            row: 0,
        })
    }

    /// The next row; `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<Listed>, InventoryError> {
        let Some(row) = self.rows.next() else {
            return Ok(None);
        };
        self.row += 1;
        let row = row.map_err(|e| InventoryError::Read {
            file: self.file.clone(),
            reason: format!("row {} does not decode: {e}", self.row),
        })?;
        self.listed(&row)
            .map(Some)
            .map_err(|reason| InventoryError::Row {
                file: self.file.clone(),
                line: self.row,
                reason,
            })
    }

    fn listed(&self, row: &Row) -> Result<Listed, String> {
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let at = |i: Option<usize>| i.and_then(|i| fields.get(i).copied());
        let text = |i: Option<usize>| -> Result<Option<String>, String> {
            match at(i) {
                None | Some(Field::Null) => Ok(None),
                Some(Field::Str(s)) => Ok(Some(s.clone())),
                Some(Field::Bytes(b)) => (b.as_utf8().map(|s| Some(s.to_owned())))
                    .map_err(|_| "a text column is not UTF-8".to_owned()),
                Some(other) => Err(format!("{other} is not text")),
            }
        };
        let flag = |i: Option<usize>, absent: bool| -> Result<bool, String> {
            match at(i) {
                None | Some(Field::Null) => Ok(absent),
                Some(Field::Bool(b)) => Ok(*b),
                Some(other) => Err(format!("{other} is not a boolean")),
            }
        };
        let size = match at(self.size) {
            None | Some(Field::Null) => None,
            Some(Field::Long(n)) => Some(u64::try_from(*n).map_err(|_| format!("size {n}"))?),
            Some(Field::Int(n)) => Some(u64::try_from(*n).map_err(|_| format!("size {n}"))?),
            Some(Field::ULong(n)) => Some(*n),
            Some(other) => return Err(format!("size {other} is not a byte count")),
        };
        let key = text(Some(self.key))?.filter(|k| !k.is_empty());
        Ok(Listed {
            bucket: text(self.bucket)?,
            key: key.ok_or("the key is empty")?,
            size,
            latest: flag(self.is_latest, true)?,
            delete_marker: flag(self.is_delete_marker, false)?,
        })
    }
}

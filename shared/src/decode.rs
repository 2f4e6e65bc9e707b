//! CSV bytes to typed sensor readings. Columns are matched by header name, in any order; a
//! row that cannot be typed is rejected with its line and reason while the rest of the file
//! goes on. A file whose header lacks a required column is rejected whole.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use csv::{ByteRecord, ReaderBuilder};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The default schema's row, typed: numbers are numbers, the timestamp is normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    /// Partition key.
    pub measure_point: String,
    /// Sort key: RFC 3339 UTC, so a redelivered row overwrites itself.
    pub timestamp: String,
    pub temp: f64,
    pub humidity: f64,
}

impl SensorReading {
    /// The DynamoDB primary key, for de-duplicating a write batch.
    pub fn key(&self) -> (&str, &str) {
        (&self.measure_point, &self.timestamp)
    }
}

const COLUMNS: [&str; 4] = ["timestamp", "temp", "humidity", "measure_point"];

/// Why a whole object could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FileError {
    #[error("header lacks required column(s) {missing:?} (found {found:?})")]
    MissingColumns {
        missing: Vec<&'static str>,
        found: Vec<String>,
    },
    #[error("header is not valid CSV: {0}")]
    BadHeader(String),
}

/// One rejected row: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowReject {
    pub line: u64,
    pub reason: String,
}

/// Everything decoded from one object.
#[derive(Debug, Default, PartialEq)]
pub struct DecodedFile {
    pub readings: Vec<SensorReading>,
    pub rejects: Vec<RowReject>,
}

/// Column positions of the sensor schema in one file's header.
struct ColumnMap {
    timestamp: usize,
    temp: usize,
    humidity: usize,
    measure_point: usize,
    width: usize,
}

impl ColumnMap {
    fn from_header(header: &ByteRecord) -> Result<Self, FileError> {
        let found: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let field = String::from_utf8_lossy(field);
                let field = if i == 0 {
                    field.trim_start_matches('\u{feff}')
                } else {
                    &field
                };
                field.trim().to_owned()
            })
            .collect();
        let position = |name: &str| found.iter().position(|f| f == name);
        let missing: Vec<&'static str> = COLUMNS
            .into_iter()
            .filter(|c| position(c).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(FileError::MissingColumns { missing, found });
        }
        Ok(Self {
            timestamp: position("timestamp").unwrap_or_default(),
            temp: position("temp").unwrap_or_default(),
            humidity: position("humidity").unwrap_or_default(),
            measure_point: position("measure_point").unwrap_or_default(),
            width: found.len(),
        })
    }

    fn type_row(&self, row: &ByteRecord) -> Result<SensorReading, String> {
        if row.len() != self.width {
            return Err(format!(
                "expected {} fields, found {}",
                self.width,
                row.len()
            ));
        }
        let text = |index: usize, name: &str| -> Result<&str, String> {
            std::str::from_utf8(&row[index])
                .map(str::trim)
                .map_err(|_| format!("column {name}: invalid UTF-8"))
        };
        let measure_point = text(self.measure_point, "measure_point")?;
        if measure_point.is_empty() {
            return Err("column measure_point: empty key field".into());
        }
        Ok(SensorReading {
            measure_point: measure_point.to_owned(),
            timestamp: normalise_timestamp(text(self.timestamp, "timestamp")?)
                .map_err(|e| format!("column timestamp: {e}"))?,
            temp: parse_number(text(self.temp, "temp")?)
                .map_err(|e| format!("column temp: {e}"))?,
            humidity: parse_number(text(self.humidity, "humidity")?)
                .map_err(|e| format!("column humidity: {e}"))?,
        })
    }
}

/// Decodes one object's bytes. Row errors are collected; only a bad header fails the file.
pub fn decode_sensor_csv(bytes: &[u8]) -> Result<DecodedFile, FileError> {
    let mut reader = ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| FileError::BadHeader(e.to_string()))?
        .clone();
    if header.is_empty() {
        // An empty object has no header and no rows: nothing to load, nothing wrong.
        return Ok(DecodedFile::default());
    }
    let columns = ColumnMap::from_header(&header)?;
    let mut decoded = DecodedFile::default();
    let mut row = ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line());
                match columns.type_row(&row) {
                    Ok(reading) => decoded.readings.push(reading),
                    Err(reason) => decoded.rejects.push(RowReject { line, reason }),
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                decoded.rejects.push(RowReject {
                    line,
                    reason: format!("malformed CSV: {e}"),
                });
            }
        }
    }
    Ok(decoded)
}

/// Accepts the seed's `YYYY-MM-DD HH:MM:SS UTC` and RFC 3339; returns RFC 3339 UTC.
pub fn normalise_timestamp(raw: &str) -> Result<String, String> {
    let parsed = if let Some(naive) = raw.strip_suffix(" UTC") {
        NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
    } else {
        DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc))
    };
    parsed
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .map_err(|e| format!("invalid timestamp {raw:?}: {e}"))
}

/// A finite number (DynamoDB numbers have no NaN or infinity).
pub fn parse_number(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(format!("invalid number {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "timestamp,temp,humidity,measure_point\n\
        2025-11-26 02:56:13 UTC,19.8,59.1,Kyiv_18\n\
        2025-11-26 02:56:20 UTC,22.4,58.2,Kyiv_18\n";

    #[test]
    fn seed_rows_are_typed() {
        let decoded = decode_sensor_csv(SEED.as_bytes()).unwrap();
        assert!(decoded.rejects.is_empty());
        assert_eq!(
            decoded.readings[0],
            SensorReading {
                measure_point: "Kyiv_18".into(),
                timestamp: "2025-11-26T02:56:13Z".into(),
                temp: 19.8,
                humidity: 59.1,
            }
        );
        assert_eq!(decoded.readings.len(), 2);
    }

    #[test]
    fn columns_are_matched_by_name_in_any_order() {
        let csv =
            "measure_point,humidity,timestamp,temp\r\nLviv_1,60.5,2025-01-02T03:04:05+02:00,-3\r\n";
        let decoded = decode_sensor_csv(csv.as_bytes()).unwrap();
        assert_eq!(decoded.rejects, vec![]);
        let r = &decoded.readings[0];
        assert_eq!(r.measure_point, "Lviv_1");
        assert_eq!(r.timestamp, "2025-01-02T01:04:05Z");
        assert_eq!((r.temp, r.humidity), (-3.0, 60.5));
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_reason_and_the_rest_continue() {
        let csv = "timestamp,temp,humidity,measure_point\n\
            2025-11-26 02:56:13 UTC,hot,59.1,Kyiv_18\n\
            2025-11-26 02:56:20 UTC,22.4,58.2\n\
            yesterday,22.4,58.2,Kyiv_18\n\
            2025-11-26 02:56:34 UTC,23.1,NaN,Kyiv_18\n\
            2025-11-26 02:56:41 UTC,20.3,62.9,\n\
            \n\
            2025-11-26 02:56:48 UTC,23.3,63.2,Kyiv_18\n";
        let decoded = decode_sensor_csv(csv.as_bytes()).unwrap();
        assert_eq!(decoded.readings.len(), 1);
        assert_eq!(decoded.readings[0].temp, 23.3);
        let lines: Vec<u64> = decoded.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        let reasons: Vec<&str> = decoded.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert!(
            reasons[0].contains("column temp: invalid number \"hot\""),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("expected 4 fields, found 3"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("column timestamp"), "{reasons:?}");
        assert!(reasons[3].contains("column humidity"), "{reasons:?}");
        assert!(reasons[4].contains("empty key field"), "{reasons:?}");
    }

    #[test]
    fn invalid_utf8_is_a_row_reject() {
        let mut csv =
            b"timestamp,temp,humidity,measure_point\n2025-11-26 02:56:13 UTC,1,2,Ky".to_vec();
        csv.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let decoded = decode_sensor_csv(&csv).unwrap();
        assert_eq!(decoded.readings, vec![]);
        assert_eq!(decoded.rejects[0].line, 2);
        assert!(decoded.rejects[0].reason.contains("invalid UTF-8"));
    }

    #[test]
    fn missing_column_rejects_the_file() {
        let err = decode_sensor_csv(b"timestamp,temp,measure_point\n").unwrap_err();
        assert_eq!(
            err,
            FileError::MissingColumns {
                missing: vec!["humidity"],
                found: vec!["timestamp".into(), "temp".into(), "measure_point".into()],
            }
        );
        assert!(err.to_string().contains("humidity"));
    }

    #[test]
    fn bom_quotes_and_empty_files_are_fine() {
        let csv = "\u{feff}timestamp,temp,humidity,\"measure_point\"\n\
            2025-11-26 02:56:13 UTC,1.5,2,\"Kyiv, \"\"centre\"\"\"\n";
        let decoded = decode_sensor_csv(csv.as_bytes()).unwrap();
        assert_eq!(decoded.readings[0].measure_point, "Kyiv, \"centre\"");
        assert_eq!(decode_sensor_csv(b"").unwrap(), DecodedFile::default());
        let header_only = decode_sensor_csv(b"timestamp,temp,humidity,measure_point\n").unwrap();
        assert_eq!(header_only, DecodedFile::default());
    }

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
        assert!(normalise_timestamp("2025-13-26 02:56:13 UTC").is_err());
        assert!(normalise_timestamp("").is_err());
    }
}

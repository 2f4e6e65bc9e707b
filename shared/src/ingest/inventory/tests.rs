//! The data-file readers against the generator's files (AWS's layout), and the batcher's
//! determinism.

use proptest::prelude::*;

use super::columns::CsvColumns;
use super::*;
use crate::ingest::inventory_writer::{InventorySpec, WrittenFormat, row, write_inventory};

fn spec(format: WrittenFormat, files: Vec<Vec<Listed>>) -> InventorySpec {
    InventorySpec {
        source_bucket: "src".into(),
        destination_bucket: "dest".into(),
        prefix: Some("inventories".into()),
        config_id: "daily".into(),
        timestamp: "2026-12-01T00-00Z".into(),
        format,
        files,
    }
}

fn rows() -> Vec<Listed> {
    let mut rows: Vec<Listed> = (0..40)
        .map(|i| row("src", &format!("data/f {i:03}+x,\"q\"é.csv"), 100 + i))
        .collect();
    rows.push(Listed {
        size: None,
        delete_marker: true,
        ..row("src", "data/deleted.csv", 0)
    });
    rows.push(Listed {
        latest: false,
        ..row("src", "data/old-version.csv", 5)
    });
    rows.push(row("src", "data/notes.txt", 9));
    rows.push(row("src", "other/x.csv", 9));
    rows
}

/// Every row of the generated report's data files, read back as the worker reads them.
async fn read_back(spec: &InventorySpec) -> Vec<Vec<Listed>> {
    let objects = write_inventory(spec).await;
    let (_, manifest_bytes) = objects
        .iter()
        .find(|(k, _)| k.ends_with("manifest.json"))
        .unwrap();
    let (_, checksum) = objects
        .iter()
        .find(|(k, _)| k.ends_with("manifest.checksum"))
        .unwrap();
    manifest::check_checksum("m", manifest_bytes, checksum).unwrap();
    let manifest = manifest::parse_manifest("m", manifest_bytes).unwrap();
    assert_eq!(manifest.source_bucket_name(), "src");
    let mut out = Vec::new();
    for file in &manifest.files {
        let (_, bytes) = objects.iter().find(|(k, _)| *k == file.key).unwrap();
        let mut read = Vec::new();
        match manifest.format {
            FileFormat::Csv => {
                let columns = CsvColumns::of_schema(&manifest.schema).unwrap();
                let (mut data, digest) =
                    DataRows::csv(std::io::Cursor::new(bytes.clone()), columns, &file.key);
                while let Some(row) = data.next().await.unwrap() {
                    read.push(row);
                }
                super::check_digest(&digest, &file.key, &file.md5, file.size).unwrap();
            }
            FileFormat::Parquet => {
                let opened = parquet::ParquetInventory::open(bytes.clone().into(), &file.key);
                let mut data = DataRows::Parquet(opened.unwrap());
                while let Some(row) = data.next().await.unwrap() {
                    read.push(row);
                }
            }
        }
        out.push(read);
    }
    out
}

#[tokio::test]
async fn gzip_csv_files_read_back_every_row_with_decoded_keys() {
    let written = vec![rows(), rows()[..3].to_vec()];
    let read = read_back(&spec(WrittenFormat::Csv, written.clone())).await;
    assert_eq!(read, written);
}

#[tokio::test]
async fn a_parquet_inventory_file_reads_back_every_row() {
    let written = vec![rows()];
    let read = read_back(&spec(WrittenFormat::Parquet, written.clone())).await;
    assert_eq!(read, written);
}

#[tokio::test]
async fn a_data_file_that_is_not_its_manifest_s_is_refused() {
    let objects = write_inventory(&spec(WrittenFormat::Csv, vec![rows()])).await;
    let (_, manifest) = objects
        .iter()
        .find(|(k, _)| k.ends_with("manifest.json"))
        .unwrap();
    let manifest = manifest::parse_manifest("m", manifest).unwrap();
    let file = &manifest.files[0];
    let (_, bytes) = objects.iter().find(|(k, _)| *k == file.key).unwrap();
    let columns = CsvColumns::of_schema(&manifest.schema).unwrap();
    // Another file's bytes under this name: it reads, but its MD5 is not the manifest's.
    let other = write_inventory(&spec(WrittenFormat::Csv, vec![rows()[..5].to_vec()])).await;
    let (_, swapped) = other.iter().find(|(k, _)| k.ends_with(".csv.gz")).unwrap();
    let (mut data, digest) =
        DataRows::csv(std::io::Cursor::new(swapped.clone()), columns, &file.key);
    while data.next().await.unwrap().is_some() {}
    let error = super::check_digest(&digest, &file.key, &file.md5, file.size).unwrap_err();
    assert!(
        error.to_string().contains("does not match its manifest"),
        "{error}"
    );
    assert!(bytes.len() as u64 == file.size);
}

/// The batches of `rows` in one pass, and the file's count.
fn batches_of(
    rows: &[Listed],
    filter: &KeyFilter,
    keys: usize,
    bytes: u64,
) -> (Vec<(u64, Vec<String>)>, FileCount) {
    let mut batcher = InventoryBatcher::new(filter.clone(), "src", keys, bytes);
    let mut out = Vec::new();
    for row in rows {
        out.extend(batcher.push(row.clone(), "f").unwrap());
    }
    let (last, count) = batcher.finish();
    out.extend(last);
    (out, count)
}

#[test]
fn only_current_live_loadable_filtered_objects_are_batched_and_counted() {
    let filter = KeyFilter {
        prefix: Some("data/".into()),
        suffix: None,
    };
    let (batches, count) = batches_of(&rows(), &filter, 16, u64::MAX);
    let keys: Vec<String> = batches.iter().flat_map(|(_, k)| k.clone()).collect();
    assert_eq!(keys.len(), 40);
    assert!(
        keys.iter()
            .all(|k| k.ends_with(".csv") && k.starts_with("data/f "))
    );
    assert_eq!(
        count,
        FileCount {
            batches: 3,
            objects: 40,
            bytes: (100..140).sum(),
            rows: 44,
            listed: 41,
            skipped: 1,
        }
    );
    let mut other = InventoryBatcher::new(KeyFilter::default(), "src", 10, 10);
    let error = other
        .push(row("elsewhere", "data/a.csv", 1), "f.csv.gz")
        .unwrap_err();
    assert!(error.to_string().contains("sourceBucket"), "{error}");
}

proptest! {
    /// Determinism: a second read of the same rows makes the same numbered batches; the
    /// batches hold exactly the selected keys in file order, each within both bounds (a
    /// single object above the byte bound alone), numbered 0..K.
    #[test]
    fn the_batcher_is_deterministic_and_bounded(
        sizes in proptest::collection::vec((0u64..300, any::<bool>()), 0..200),
        keys in 1usize..12,
        bytes in 1u64..1000,
    ) {
        let rows: Vec<Listed> = sizes.iter().enumerate().map(|(i, (size, live))| Listed {
            latest: *live,
            ..row("src", &format!("k{i}.csv"), *size)
        }).collect();
        let filter = KeyFilter::default();
        let (first, count) = batches_of(&rows, &filter, keys, bytes);
        let (second, again) = batches_of(&rows, &filter, keys, bytes);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(&count, &again);
        let numbers: Vec<u64> = first.iter().map(|(n, _)| *n).collect();
        prop_assert_eq!(numbers, (0..count.batches).collect::<Vec<_>>());
        let flat: Vec<String> = first.iter().flat_map(|(_, k)| k.clone()).collect();
        let live: Vec<String> = rows.iter().filter(|r| r.latest).map(|r| r.key.clone()).collect();
        prop_assert_eq!(flat, live);
        let size_of = |k: &String| rows.iter().find(|r| &r.key == k).and_then(|r| r.size).unwrap_or(0);
        for (_, batch) in &first {
            prop_assert!(batch.len() <= keys);
            let total: u64 = batch.iter().map(size_of).sum();
            prop_assert!(total <= bytes || batch.len() == 1);
        }
    }
}

/// The read rate the `plan` model's `inventory_rows_per_worker_second` comes from:
/// `cargo test --release -p s3fanout-shared --lib -- --ignored inventory_read_rate --nocapture`.
#[tokio::test]
#[ignore = "a measurement; run in release"]
async fn inventory_read_rate() {
    let rows: Vec<Listed> = (0..500_000)
        .map(|i| row("src", &format!("data/2026/12/01/part-{i:08}.csv"), 4_500))
        .collect();
    let objects = write_inventory(&spec(WrittenFormat::Csv, vec![rows])).await;
    let (_, manifest) = objects
        .iter()
        .find(|(k, _)| k.ends_with("manifest.json"))
        .unwrap();
    let manifest = manifest::parse_manifest("m", manifest).unwrap();
    let file = &manifest.files[0];
    let (_, bytes) = objects.iter().find(|(k, _)| *k == file.key).unwrap();
    // CPU time of this thread (the test's current-thread runtime), not wall time: the
    // machine is shared.
    let cpu_ns = || -> f64 {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    let (started, cpu_started) = (std::time::Instant::now(), cpu_ns());
    let columns = CsvColumns::of_schema(&manifest.schema).unwrap();
    let (mut data, digest) = DataRows::csv(std::io::Cursor::new(bytes.clone()), columns, &file.key);
    let batcher = InventoryBatcher::new(KeyFilter::default(), "src", 100, 16 << 20);
    let count = batch_file(&mut data, batcher, &file.key, |_, _| {})
        .await
        .unwrap();
    super::check_digest(&digest, &file.key, &file.md5, file.size).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = (cpu_ns() - cpu_started) / 1e9;
    assert_eq!(count.objects, 500_000);
    println!(
        "inventory CSV: {} rows ({} bytes gzip) in {seconds:.3} s wall, {cpu:.3} s CPU: {:.0} rows per CPU-second",
        count.rows,
        bytes.len(),
        count.rows as f64 / cpu
    );
}

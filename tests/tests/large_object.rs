//! Large-object mode against real local servers: one big CSV split into byte ranges lands
//! every row exactly once (a scan batch per range, composed by the coordinator through the
//! control queue, then a parse batch per range); quoted newlines across range ends read
//! exactly with at most twice the object's bytes read; ranged GETs are pinned to the planned
//! ETag (on moto, which honours If-Match); compressed objects are decoded as a stream.

use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
use aws_sdk_dynamodb::types::AttributeValue;
use devkit::provision::ensure_table;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers, moto_servers, notes_csv};
use shared::contract::messages::JobRequest;
use shared::contract::schema::Schema;
use shared::job::model::JobStatus;
use tokio::io::AsyncWriteExt;

const RANGE: u64 = 64 << 10;

fn one_object(env: &TestEnv, key: &str) -> JobRequest {
    JobRequest {
        key: Some(key.to_owned()),
        ..JobRequest::new(&env.resources.bucket, "")
    }
}

#[tokio::test]
async fn a_2_mb_object_in_64_kib_ranges_lands_every_row_exactly_once() {
    // Small enough for the test command (dynalite slows as its store grows: 50 MB took ~480 s
    // here), big enough for 26 ranges, each with rows cut at both ends. Sizes that matter for
    // speed and memory are in `bash scripts/bench.sh` (1 GiB objects).
    let env = TestEnv::unhurried(default_servers(), "large-object").await;
    // One measure point with a timestamp per row: every row has its own key.
    let spec = SampleSpec::new("big/", 1, 40_000);
    let body = spec.body(0);
    let size = body.len() as u64;
    assert!(size > 15 * RANGE, "{size} bytes");
    env.put(&spec.key(0), &body).await;
    drop(body);

    let mut pipeline = env.pipeline();
    pipeline.coordinator.range_chunk_bytes = RANGE;
    pipeline.pollers = 4;
    let job = pipeline
        .run(one_object(&env, &spec.key(0)), |_| {})
        .await
        .unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(
        job.total_batches,
        2 * size.div_ceil(RANGE),
        "a scan and a parse batch per 64 KiB range"
    );
    // Planning read the header's window; the workers the rest, at most twice.
    assert_eq!(job.planning_bytes_read, (64 << 10).min(size));
    let workers = job.totals.bytes_read - job.planning_bytes_read;
    assert!(
        workers <= 2 * size && workers >= size,
        "{workers} bytes read of {size}"
    );
    assert_eq!(job.totals.rows_written, spec.total_rows());
    assert_eq!(job.totals.rows_rejected, 0);
    assert_eq!(
        job.totals.rows_duplicate, 0,
        "no row was read by two ranges"
    );
    assert_eq!(env.record_count().await, spec.total_rows());
    // Spot checks: the first and last rows, and rows every ~1/7 of the way.
    let expected = spec.expected(0);
    for index in (0..expected.len())
        .step_by(expected.len() / 7)
        .chain([expected.len() - 1])
    {
        let want = &expected[index];
        let item = env.item(&want.measure_point, &want.timestamp).await;
        assert_eq!(
            item["temp"],
            AttributeValue::N(format!("{}", want.temp)),
            "row {index}"
        );
        assert_eq!(
            item["humidity"],
            AttributeValue::N(format!("{}", want.humidity)),
            "row {index}"
        );
    }
}

#[tokio::test]
async fn quoted_newlines_across_range_ends_still_land_every_row_once() {
    let env = TestEnv::unhurried(default_servers(), "large-quoted").await;
    let table = format!("{}-notes", env.resources.bucket);
    ensure_table(&env.clients.dynamodb, &table, "id", None)
        .await
        .unwrap();
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string", "nullable": true},
        ],
    }))
    .unwrap();
    let mut body = String::from("id,note\r\n");
    for i in 0..2_000 {
        // Every third note spans lines and holds quotes and a comma.
        let note = match i % 3 {
            0 => format!("\"line one of {i}\r\nline two, \"\"quoted\"\"\nline three\""),
            1 => format!("plain {i}"),
            _ => String::new(),
        };
        body.push_str(&format!("row-{i:05},{note}\r\n"));
    }
    env.put("big/notes.csv", &body).await;

    let mut pipeline = env.pipeline();
    pipeline.coordinator.range_chunk_bytes = 4096;
    pipeline.records_table(&table);
    let request = JobRequest {
        schema: Some(schema),
        ..one_object(&env, "big/notes.csv")
    };
    let job = pipeline.run(request, |_| {}).await.unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert!(job.total_batches > 10, "{} ranges", job.total_batches);
    assert_eq!(job.totals.rows_written, 2_000);
    // Planning read the header's window; the workers the rest, at most twice.
    let size = body.len() as u64;
    assert_eq!(job.planning_bytes_read, (64 << 10).min(size));
    assert!(
        job.totals.bytes_read - job.planning_bytes_read <= 2 * size,
        "{} bytes read of {}",
        job.totals.bytes_read,
        body.len()
    );
    assert_eq!(job.totals.rows_rejected, 0);
    assert_eq!(job.totals.rows_duplicate, 0);
    assert_eq!(env.count_items(&table).await, 2_000);
    let spot_checks = [
        ("row-01012".to_owned(), "plain 1012".to_owned()),
        (
            "row-01500".to_owned(),
            "line one of 1500\r\nline two, \"quoted\"\nline three".to_owned(),
        ),
    ];
    env.assert_notes(&table, &spot_checks).await;
}

#[tokio::test]
async fn two_quoted_csvs_in_64_kib_ranges_load_every_row_once_reading_at_most_2_1x() {
    let env = TestEnv::unhurried(default_servers(), "large-two-quoted").await;
    let table = format!("{}-notes", env.resources.bucket);
    ensure_table(&env.clients.dynamodb, &table, "id", None)
        .await
        .unwrap();
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string", "nullable": true},
        ],
    }))
    .unwrap();
    let mut pipeline = env.pipeline();
    pipeline.coordinator.range_chunk_bytes = 64 << 10;
    pipeline.records_table(&table);
    pipeline.pollers = 4;
    let mut all_rows = 0;
    for seed in 0..2 {
        let (body, rows) = notes_csv(&format!("f{seed}"), 3 << 20, true);
        let key = format!("big/quoted-{seed}.csv");
        env.put(&key, &body).await;
        let request = JobRequest {
            schema: Some(schema.clone()),
            ..one_object(&env, &key)
        };
        let job = pipeline.run(request, |_| {}).await.unwrap();
        let size = body.len() as u64;
        let ranges = (size - "id,note\r\n".len() as u64).div_ceil(64 << 10);
        assert_eq!(job.status, JobStatus::Complete, "{job:?}");
        assert_eq!(
            job.total_batches,
            2 * ranges,
            "a scan and a parse per range"
        );
        assert_eq!(job.totals.rows_written, rows.len() as u64);
        assert_eq!(job.totals.rows_rejected, 0);
        assert_eq!(job.totals.rows_duplicate, 0, "no row read by two ranges");
        let ratio = job.totals.bytes_read as f64 / size as f64;
        assert!(ratio <= 2.1, "{ratio:.3}x the input read");
        assert!(
            job.totals.bytes_read >= size - 16,
            "every byte read at least once"
        );
        all_rows += rows.len() as u64;
        // Spot checks across the object, quoted newlines included.
        env.assert_notes(
            &table,
            rows.iter().step_by(rows.len() / 9).chain(rows.last()),
        )
        .await;
    }
    assert_eq!(env.count_items(&table).await, all_rows, "every row once");
}

#[tokio::test]
async fn an_object_replaced_mid_job_is_one_rejected_object_instead_of_mixed_versions() {
    // moto answers a stale If-Match with 412; s3s-fs 0.14.1 ignores If-Match.
    let env = TestEnv::new(moto_servers(), "large-replaced").await;
    let spec = SampleSpec::new("big/", 1, 200);
    env.put(&spec.key(0), &spec.body(0)).await;
    let mut config = env.pipeline().coordinator;
    config.range_chunk_bytes = 2048;
    let coordinator = env.coordinator(config);
    let started = coordinator
        .start_job(one_object(&env, &spec.key(0)), None)
        .await
        .unwrap();
    assert!(started.listing.batches >= 8, "{started:?}");

    // Replaced after planning, before any range is read.
    let replacement = SampleSpec {
        seed: 7,
        ..spec.clone()
    };
    env.put(&spec.key(0), &replacement.body(0)).await;
    let worker = env.worker(env.pipeline().worker);
    let job = env
        .deliver_with_control_until_final(&worker, &coordinator, &started.job_id)
        .await;

    // The scans find the change: the object is one rejected object, like a small one, and no
    // parse runs (the default tolerance is unlimited, so the job completes with the reject).
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.files_failed, job.batches_failed), (1, 0));
    assert_eq!(
        job.totals.rows_written, 0,
        "no row of either version was loaded"
    );
    assert_eq!(env.record_count().await, 0);
    let rejects = env.reject_records(&job).await;
    let [reject] = rejects.as_slice() else {
        panic!("one rejected object: {rejects:?}")
    };
    assert_eq!(
        (reject.key.as_str(), reject.line),
        (spec.key(0).as_str(), 0)
    );
    assert!(
        reject
            .reason
            .contains("the object changed after the job was planned")
            && reject.reason.contains("PreconditionFailed"),
        "{}",
        reject.reason
    );
}

async fn compressed(bytes: &[u8], zstd: bool) -> Vec<u8> {
    if zstd {
        let mut encoder = ZstdEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    } else {
        let mut encoder = GzipEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    }
}

#[tokio::test]
async fn gzip_and_zstd_objects_are_decoded_as_streams_and_a_corrupt_one_is_rejected() {
    let env = TestEnv::unhurried(default_servers(), "compressed").await;
    let spec = SampleSpec::new("z/", 4, 500);
    env.put_bytes(
        "z/a.csv.gz",
        compressed(spec.body(0).as_bytes(), false).await,
    )
    .await;
    env.put_bytes(
        "z/b.csv.zst",
        compressed(spec.body(1).as_bytes(), true).await,
    )
    .await;
    env.put(&spec.key(2), &spec.body(2)).await;
    // Three zstd frames, as `zstd -c >>` appends them: the first two end inside a row.
    let body = spec.body(3);
    let (third, two_thirds) = (body.len() / 3, 2 * body.len() / 3);
    let mut frames = Vec::new();
    for part in [
        &body[..third],
        &body[third..two_thirds],
        &body[two_thirds..],
    ] {
        frames.extend(compressed(part.as_bytes(), true).await);
    }
    env.put_bytes("z/d.csv.zst", frames).await;
    // Cut streams: a gzip member cut in half, and a zstd frame missing its last bytes. Their
    // rows share keys with a and b, so they add no records whatever they load.
    for (key, zstd, body) in [
        ("z/corrupt.csv.gz", false, spec.body(0)),
        ("z/cut.csv.zst", true, spec.body(1)),
    ] {
        let mut cut = compressed(body.as_bytes(), zstd).await;
        cut.truncate(cut.len() * 2 / 3);
        env.put_bytes(key, cut).await;
    }

    let job = env
        .pipeline()
        .run(JobRequest::new(&env.resources.bucket, "z/"), |_| {})
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.files, job.totals.files_failed), (4, 2));
    assert_eq!(env.record_count().await, 2_000);
    for file in [1, 3] {
        let readings = env.readings_of(&spec.expected(file)[0].measure_point).await;
        assert_eq!(readings, spec.expected(file), "file {file}");
    }
    let rejected: Vec<_> = env
        .reject_records(&job)
        .await
        .into_iter()
        .map(|record| (record.key, record.line, record.reason))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    for ((key, line, reason), want) in rejected.iter().zip(["z/corrupt.csv.gz", "z/cut.csv.zst"]) {
        assert_eq!((key.as_str(), *line), (want, 0), "{rejected:?}");
        assert!(reason.starts_with("decompressing failed"), "{reason}");
    }

    // A compressed object is never split into byte ranges: above the chunk size it is
    // inflated into plain parts (docs/compressed.md), all under its one batch number.
    let mut pipeline = env.pipeline();
    pipeline.coordinator.range_chunk_bytes = 1024;
    let one = pipeline
        .run(one_object(&env, "z/d.csv.zst"), |_| {})
        .await
        .unwrap();
    assert_eq!(one.total_batches, 1);
    assert_eq!(one.totals.rows_written, 500, "every row of every frame");
}

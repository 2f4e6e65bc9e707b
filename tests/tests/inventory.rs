//! S3 Inventory reports as a job's listing, on s3s-fs, moto's SQS and dynalite: ~1,500 tiny
//! CSV objects (three under keys with a space, a plus and an accent, URL-encoded in the
//! report) listed by a report of three gzip CSV data files and by one of a Parquet data file,
//! written in AWS's layout by the test's generator (no local server writes inventories). One
//! object listed by the report is deleted before the job runs: every object that exists
//! lands exactly once, the missing one is counted and reported; a manifest that no longer
//! matches its manifest.checksum is refused before anything is written.

use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::contract::inventory::InventoryOptions;
use shared::contract::messages::JobRequest;
use shared::fan_in::Ledger as _;
use shared::ingest::inventory::Listed;
use shared::ingest::inventory_writer::{
    InventorySpec, WrittenFormat, manifest_key, row, write_inventory,
};
use shared::job::model::JobStatus;

fn report(
    env: &TestEnv,
    config_id: &str,
    format: WrittenFormat,
    files: Vec<Vec<Listed>>,
) -> InventorySpec {
    InventorySpec {
        source_bucket: env.resources.bucket.clone(),
        destination_bucket: env.resources.bucket.clone(),
        prefix: Some("inventories".into()),
        config_id: config_id.into(),
        timestamp: "2026-12-01T00-00Z".into(),
        format,
        files,
    }
}

async fn upload(env: &TestEnv, spec: &InventorySpec) {
    for (key, bytes) in write_inventory(spec).await {
        env.put_bytes(&key, bytes).await;
    }
}

fn request(env: &TestEnv, name: &str, spec: &InventorySpec) -> JobRequest {
    JobRequest {
        job_id: Some(name.into()),
        inventory: InventoryOptions {
            inventory: Some(manifest_key(spec)),
            inventory_key_prefix: Some("data/".into()),
            ..InventoryOptions::default()
        },
        ..JobRequest::new(&env.resources.bucket, "")
    }
}

#[tokio::test]
async fn every_listed_object_that_exists_lands_once_and_the_deleted_one_is_reported() {
    let env = TestEnv::new(default_servers(), "inventory").await;
    let bucket = env.resources.bucket.clone();
    let objects = SampleSpec::new("data/", 1500, 2);
    objects
        .upload(&env.clients.s3, &bucket, 64, || {})
        .await
        .unwrap();
    let odd = SampleSpec {
        seed: 7,
        ..SampleSpec::new("data/odd dir+x é/", 3, 2)
    };
    odd.upload(&env.clients.s3, &bucket, 8, || {})
        .await
        .unwrap();
    let listed =
        |spec: &SampleSpec, i: usize| row(&bucket, &spec.key(i), spec.body(i).len() as u64);

    // Three gzip CSV data files of 400 objects (the odd keys in the second), and a Parquet
    // report of the last 300.
    let mut csv_files: Vec<Vec<Listed>> = (0..3)
        .map(|f| {
            (f * 400..(f + 1) * 400)
                .map(|i| listed(&objects, i))
                .collect()
        })
        .collect();
    csv_files[1].extend((0..3).map(|i| listed(&odd, i)));
    csv_files[2].push(Listed {
        size: None,
        delete_marker: true,
        ..row(&bucket, "data/removed-before-the-report.csv", 0)
    });
    let csv = report(&env, "daily-csv", WrittenFormat::Csv, csv_files);
    upload(&env, &csv).await;
    let parquet_files = vec![(1200..1500).map(|i| listed(&objects, i)).collect()];
    let parquet = report(&env, "daily-parquet", WrittenFormat::Parquet, parquet_files);
    upload(&env, &parquet).await;
    // Deleted after the report was written.
    let gone = objects.key(7);
    (env.clients.s3.delete_object())
        .bucket(&bucket)
        .key(&gone)
        .send()
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let pipeline = env.pipeline();
    let job = pipeline
        .run(request(&env, "from-csv", &csv), |_| {})
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    // 3 counts, 3 emits, 12 + 1 + 1 key batches of at most 100 keys (file 2: 403 objects).
    assert_eq!(job.total_batches, 6 + 4 + 5 + 4, "{job:?}");
    assert_eq!((job.files_listed, job.files_skipped), (1203, 0));
    assert_eq!(
        (
            job.totals.files,
            job.totals.files_missing,
            job.totals.files_failed
        ),
        (1202, 1, 0)
    );
    assert_eq!(job.totals.rows_written, 1202 * 2);
    let rejects = env.reject_records(&job).await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].key, gone);
    assert!(rejects[0].reason.contains("gone since"), "{rejects:?}");
    assert_eq!(job.completion_event().totals.files_missing, 1);

    let job = pipeline
        .run(request(&env, "from-parquet", &parquet), |_| {})
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.files, job.totals.files_missing), (300, 0));
    let seconds = started.elapsed().as_secs_f64();

    // Every object that exists, exactly once: the item count is every row, and objects
    // from each data file (and the odd keys) read back as generated.
    assert_eq!(env.record_count().await, (1499 + 3) * 2);
    // (The odd objects share measure points with objects 0..3, at other timestamps.)
    for i in [3, 399, 400, 799, 800, 1199, 1200, 1499] {
        let expected = objects.expected(i);
        let stored = env.readings_of(&expected[0].measure_point).await;
        assert_eq!(stored, expected, "object {i}");
    }
    let deleted = env.readings_of(&objects.expected(7)[0].measure_point).await;
    assert!(deleted.is_empty(), "{deleted:?}");
    for i in 0..3 {
        let mut expected = [objects.expected(i), odd.expected(i)].concat();
        expected.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        let stored = env.readings_of(&expected[0].measure_point).await;
        assert_eq!(stored, expected, "object {i} and odd object {i}");
    }
    println!("two inventory jobs over 1,502 objects in {seconds:.1} s");
}

#[tokio::test]
async fn a_tampered_manifest_is_refused_before_anything_is_written() {
    let env = TestEnv::new(default_servers(), "inventory-tampered").await;
    let bucket = env.resources.bucket.clone();
    let objects = SampleSpec::new("data/", 3, 2);
    objects
        .upload(&env.clients.s3, &bucket, 3, || {})
        .await
        .unwrap();
    // The report as `s3-fanout gen --inventory` writes it; untouched, it loads.
    let key = devkit::inventory::upload_inventory(
        &env.clients.s3,
        &bucket,
        &objects,
        2,
        WrittenFormat::Csv,
    )
    .await
    .unwrap();
    let inventory = |name: &str| JobRequest {
        job_id: Some(name.into()),
        inventory: InventoryOptions {
            inventory: Some(key.clone()),
            ..InventoryOptions::default()
        },
        ..JobRequest::new(&bucket, "")
    };
    let manifest = env.get(&key).await;
    env.put(&key, &manifest.replace("data/", "data/../")).await;
    let error = env
        .pipeline()
        .run(inventory("tampered"), |_| {})
        .await
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.contains(&key) && text.contains("manifest.checksum"),
        "{text}"
    );
    assert!(
        env.ledger()
            .get(&"tampered".into())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(env.record_count().await, 0);
    env.put(&key, &manifest).await;
    let job = env
        .pipeline()
        .run(inventory("intact"), |_| {})
        .await
        .unwrap();
    assert_eq!((job.status, job.totals.files), (JobStatus::Complete, 3));
    assert_eq!(env.record_count().await, 6);
}

//! A synthetic job of many batches counted against the local DynamoDB server (counts only,
//! no rows): exact totals, exactly one final transition, constant write units per count and
//! a bounded largest item, whatever the job's size. The 100,000-batch run is in the bench
//! (`s3-fanout bench`, ledger section); this test counts 2,000 in well under a minute.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, stream};
use integration_tests::{TestEnv, default_servers};
use shared::aws::item_size;
use shared::contract::ids::{BatchNo, JobId};
use shared::fan_in::LedgerStore as _;
use shared::fan_in::{Ledger as _, ListingProgress};
use shared::job::model::{BatchStats, Job, JobStatus, Recorded};
use shared::job::shards::SHARDS;

// Enough for every shard to take ~60 counts; the 10k/100k runs are in the bench.
const BATCHES: u64 = 2_000;
const IN_FLIGHT: usize = 32;

fn stats(batch: u64) -> BatchStats {
    BatchStats {
        files: 100,
        rows_written: batch % 7 + 1,
        ..BatchStats::default()
    }
}

/// Every item of the jobs table, with its key.
async fn all_items(env: &TestEnv) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = env
            .clients
            .dynamodb
            .scan()
            .table_name(&env.resources.tables.jobs)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

#[tokio::test]
async fn two_thousand_batches_count_exactly_once_at_constant_cost() {
    let env = TestEnv::new(default_servers(), "ledger-scale").await;
    let ledger = env.ledger();
    let job_id = JobId::new("job-scale");
    ledger
        .create(&Job::new(&job_id, &env.resources.bucket, "big/"))
        .await
        .unwrap();
    let finishers = AtomicUsize::new(0);
    let counted = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    // The seal lands while counts are in flight: half the batches are counted before it.
    let seal = async {
        while counted.load(Ordering::SeqCst) < (BATCHES / 2) as usize {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let seal = ListingProgress {
            batches: BATCHES,
            files_listed: BATCHES * 100,
            files_skipped: 0,
            planning_bytes_read: 0,
        };
        if ledger.seal(&job_id, seal, None).await.unwrap().is_some() {
            finishers.fetch_add(1, Ordering::SeqCst);
        }
    };
    let counts = stream::iter(0..BATCHES)
        .map(|batch| {
            let (ledger, job_id, finishers, counted) = (&ledger, &job_id, &finishers, &counted);
            async move {
                let recorded = ledger
                    .record_batch(job_id, BatchNo(batch), &stats(batch))
                    .await
                    .unwrap();
                assert!(matches!(recorded, Recorded::Counted(_)), "batch {batch}");
                counted.fetch_add(1, Ordering::SeqCst);
                if ledger.try_finish(recorded.job()).await.unwrap().is_some() {
                    finishers.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>();
    tokio::join!(seal, counts);
    let seconds = started.elapsed().as_secs_f64();
    let (units, writes) = ledger.write_units();

    assert_eq!(finishers.load(Ordering::SeqCst), 1, "one final transition");
    let job = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.batches_done, BATCHES);
    assert_eq!(job.totals.files, BATCHES * 100);
    let rows: u64 = (0..BATCHES).map(|b| stats(b).rows_written).sum();
    assert_eq!(job.totals.rows_written, rows);

    // Duplicates of counted batches change nothing.
    let again = stream::iter((0..BATCHES).step_by(97))
        .map(|b| {
            let (ledger, job_id) = (&ledger, &job_id);
            async move { ledger.record_batch(job_id, BatchNo(b), &stats(b)).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    assert!(
        again
            .iter()
            .all(|r| matches!(r, Ok(Recorded::AlreadyCounted(_))))
    );
    let after = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!(after.totals.rows_written, rows);

    let items = all_items(&env).await;
    let largest = items.iter().map(item_size).max().unwrap();
    let header = items
        .iter()
        .find(|i| i["job_id"].as_s().unwrap() == job_id.as_str())
        .map(item_size)
        .unwrap();
    let per_count = units / BATCHES as f64;
    println!(
        "{BATCHES} batches in {seconds:.1} s ({:.0} counts/s, {IN_FLIGHT} in flight): {per_count:.2} write units and {:.2} writes per count; {} items; largest {largest} B, header {header} B",
        BATCHES as f64 / seconds,
        writes as f64 / BATCHES as f64,
        items.len()
    );
    assert_eq!(items.len() as u64, 1 + u64::from(SHARDS) + BATCHES);
    // Every shard and marker expires about 30 days on (TTL), whatever the job's size.
    let now = shared::clock::now_ms() / 1000;
    let thirty_days = shared::job::attrs::COUNTS_TTL_SECONDS;
    let counts = items
        .iter()
        .filter(|i| i["job_id"].as_s().unwrap() != job_id.as_str());
    for item in counts {
        let expires: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        assert!(
            expires > now + thirty_days - 3600 && expires <= now + thirty_days,
            "{item:?}"
        );
    }
    assert!(
        largest < 1024,
        "every ledger item stays under 1 KB: {largest} B"
    );
    assert!(
        per_count > 2.9 && per_count < 3.5,
        "three one-unit writes per count (and a few per job): {per_count}"
    );
    let intents_left: usize = items
        .iter()
        .filter_map(|i| i.get("intents"))
        .map(|v| v.as_ss().map(Vec::len).unwrap_or(0))
        .sum();
    assert_eq!(intents_left, 0, "no crash, no intent left behind");
}

#[tokio::test]
async fn the_running_jobs_are_read_from_their_own_index_stage_whatever_the_history() {
    let env = TestEnv::new(default_servers(), "ledger-stages").await;
    let ledger = env.ledger();
    // History: 300 jobs that ended and sent their event; 5 that ended with it owed.
    let ended = |i: usize, sent: bool| {
        let ledger = &ledger;
        async move {
            let id = JobId::new(format!("old-{i:04}"));
            ledger.create(&Job::new(&id, "b", "p/")).await.unwrap();
            ledger.fail(&id, "history").await.unwrap();
            if sent {
                ledger.clear_event_pending(&id).await.unwrap();
            }
        }
    };
    stream::iter(0..305)
        .map(|i| ended(i, i < 300))
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    for i in 0..2 {
        let id = JobId::new(format!("live-{i}"));
        ledger.create(&Job::new(&id, "b", "p/")).await.unwrap();
    }
    // One header that does not parse, at the running stage: skipped, not fatal.
    env.clients
        .dynamodb
        .put_item()
        .table_name(&env.resources.tables.jobs)
        .item("job_id", AttributeValue::S("broken".into()))
        .item("job_index", AttributeValue::S("running".into()))
        .item("started_ms", AttributeValue::N("1".into()))
        .item("status", AttributeValue::N("42".into()))
        .send()
        .await
        .unwrap();

    // What the stuck check reads: the running stage's index entries, not the history's.
    let stage = |name: &'static str| {
        let env = &env;
        async move {
            env.clients
                .dynamodb
                .query()
                .table_name(&env.resources.tables.jobs)
                .index_name("by-start")
                .key_condition_expression("job_index = :stage")
                .expression_attribute_values(":stage", AttributeValue::S(name.into()))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .send()
                .await
                .unwrap()
                .count
        }
    };
    assert_eq!(
        (
            stage("running").await,
            stage("owed").await,
            stage("done").await
        ),
        (3, 5, 300)
    );
    let running = ledger
        .jobs(shared::fan_in::JobFilter::Running)
        .await
        .unwrap();
    let ids: Vec<&str> = running.iter().map(|job| job.job_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("live-")), "{ids:?}");
    let owed = ledger
        .jobs(shared::fan_in::JobFilter::EventPending)
        .await
        .unwrap();
    assert_eq!(owed.len(), 5);
    let all = ledger
        .headers(shared::fan_in::JobFilter::All, Some(10))
        .await
        .unwrap();
    assert_eq!(all.len(), 10, "the newest ten of every stage");
    // A header whose event was sent expires 90 days on; a running one never.
    let header = |id: &'static str| {
        let env = &env;
        async move {
            env.clients
                .dynamodb
                .get_item()
                .table_name(&env.resources.tables.jobs)
                .key("job_id", AttributeValue::S(id.into()))
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    let done = header("old-0000").await;
    let expires: u64 = done["expires_at"].as_n().unwrap().parse().unwrap();
    let now = shared::clock::now_ms() / 1000;
    assert!(expires > now + shared::job::attrs::FINISHED_TTL_SECONDS - 3600);
    assert!(!header("live-0").await.contains_key("expires_at"));
}

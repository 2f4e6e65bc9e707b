//! A 2 GiB object with no newline after its header is rejected with a clear reason while the
//! worker's peak memory stays far under its Lambda memory size: the record cap skips the
//! record instead of buffering it. The worker is the real function in a process of its own
//! (`src/bin/last_delivery.rs`), so its peak RSS is its own (`wait4`).
//!
//! The object is a `.csv.gz` of concatenated gzip members (a header member, then one member
//! of 1 MiB of `z` repeated 2,048 times): 2 GiB decoded from ~2 MB stored, so the test
//! uploads megabytes, not gigabytes, and every decoded byte still goes through the reader.
//! A plain 2 GiB object would be split into ranges (scanned in 32 MiB pieces, as bounded as
//! this): `bash scripts/bench.sh --large-mib 2048` measures that one.

use std::process::{Command, Stdio};

use async_compression::tokio::bufread::GzipEncoder;
use integration_tests::{TestEnv, default_servers};
use shared::fan_in::Ledger as _;
use shared::job::model::JobStatus;
use tokio::io::AsyncReadExt;

/// The worker's `MemorySize` in `template.yaml`.
const WORKER_MEMORY_MIB: u64 = 512;
const HEADER: &str = "timestamp,temp,humidity,measure_point\n";
const MEMBER_MIB: u64 = 1;
const MEMBERS: u64 = 2048;

async fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzipEncoder::new(bytes)
        .read_to_end(&mut out)
        .await
        .expect("compressing in memory");
    out
}

/// A process's exit status and peak resident set size in bytes.
fn wait_with_peak_rss(child: &std::process::Child) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4(2) on our own child, with pointers to the two locals above.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    // ru_maxrss is in KiB on Linux.
    (status, usage.ru_maxrss as u64 * 1024)
}

#[tokio::test]
async fn a_two_gib_record_is_rejected_while_memory_stays_flat() {
    let env = TestEnv::new(default_servers(), "huge-record").await;
    let key = "huge/no-newline.csv.gz";
    let member = gzip(&vec![b'z'; (MEMBER_MIB << 20) as usize]).await;
    let mut body = gzip(HEADER.as_bytes()).await;
    for _ in 0..MEMBERS {
        body.extend_from_slice(&member);
    }
    let decoded = HEADER.len() as u64 + MEMBERS * (MEMBER_MIB << 20);
    assert!(decoded > 2 << 30, "{decoded} bytes decoded");
    env.put_bytes(key, body).await;

    let job = env.sealed_job("job-huge-record", 1, 1).await;
    let batch = serde_json::to_string(&env.batch(&job.job_id, 0, vec![key.into()])).unwrap();
    #[expect(
        clippy::zombie_processes,
        reason = "wait_with_peak_rss reaps it with wait4, which clippy cannot see"
    )]
    let child = Command::new(env!("CARGO_BIN_EXE_last_delivery"))
        .args(["worker", &batch, "1", "600"])
        .envs(default_servers().env())
        .env("RECORDS_TABLE", &env.resources.tables.records)
        .env("JOBS_TABLE", &env.resources.tables.jobs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the worker");
    let (status, peak_rss) = wait_with_peak_rss(&child);
    eprintln!(
        "{decoded} bytes decoded without a newline: peak RSS {:.1} MiB",
        peak_rss as f64 / (1 << 20) as f64
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the worker failed: {status}"
    );
    assert!(
        peak_rss < WORKER_MEMORY_MIB << 20,
        "peak RSS {peak_rss} B is not under the worker's {WORKER_MEMORY_MIB} MiB"
    );

    // No tolerance set: the rejected row is reported, and the job completes.
    let ended = env.ledger().get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::Complete, "{ended:?}");
    assert_eq!(
        (ended.totals.rows_written, ended.totals.rows_rejected),
        (0, 1),
        "{ended:?}"
    );
    let rejects = env.reject_records(&ended).await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let reject = &rejects[0];
    assert_eq!(
        (reject.key.as_str(), reject.line, reject.byte_offset),
        (key, 2, Some(HEADER.len() as u64)),
        "{reject:?}"
    );
    assert!(
        reject.reason.contains("record cap"),
        "the reason names the cap: {}",
        reject.reason
    );
    assert!(reject.raw.len() < 1 << 10, "no value is kept: {reject:?}");
}

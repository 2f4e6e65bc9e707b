//! The real function binaries as Lambda runs them: `cargo lambda watch` serves both on
//! loopback, `cargo lambda invoke` starts a job on the coordinator with the sample event from
//! `events/`, and the SQS bridge delivers the batches to the served worker over the Lambda
//! Invoke API, all against the local servers.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use devkit::bridge::SqsBridge;
use devkit::lambda_api::LambdaInvokeApi;
use devkit::sample::SampleSpec;
use devkit::servers::tools_dir;
use integration_tests::{TestEnv, default_servers};
use shared::fan_in::Ledger as _;
use shared::job::model::JobStatus;

/// `cargo lambda watch` and the function processes it starts, killed together on drop.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // The watcher leads its own process group, which its functions join.
        let group = self.0.id() as i32;
        // SAFETY: kill(2) on a process group this test created; no memory is touched.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn cargo_lambda() -> PathBuf {
    let binary = tools_dir().join("lambda-venv/bin/cargo-lambda");
    assert!(
        binary.exists(),
        "{} is missing: run scripts/setup.sh",
        binary.display()
    );
    binary
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The child's output once it exits, or `None` (and the child killed) after `limit`. Its
/// output is a few lines of JSON, well within a pipe's buffer.
fn finish_within(mut child: Child, limit: Duration) -> Option<std::process::Output> {
    let started = Instant::now();
    while child.try_wait().ok()?.is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.wait_with_output().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn cargo_lambda_watch_serves_both_functions_against_the_local_servers() {
    let servers = default_servers();
    let env = TestEnv::new(servers, "lambda-watch").await;
    let spec = SampleSpec::new("data/", 4, 20);
    spec.upload(&env.clients.s3, &env.resources.bucket, 4, || {})
        .await
        .unwrap();

    let port = free_port();
    // The watcher's output (its builds included), named in every failure below.
    let log_path =
        std::env::temp_dir().join(format!("{}-cargo-lambda-watch.log", env.resources.bucket));
    let log = std::fs::File::create(&log_path).unwrap();
    let log_path = log_path.display().to_string();
    let watch = Watch(
        Command::new(cargo_lambda())
            .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1"])
            .args(["-P", &port.to_string()])
            .current_dir(workspace_root())
            .envs(servers.env())
            .env("RECORDS_TABLE", &env.resources.tables.records)
            .env("JOBS_TABLE", &env.resources.tables.jobs)
            .env("QUEUE_URL", &env.provisioned.queue_url)
            .env("BATCH_SIZE", "2")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting cargo lambda watch"),
    );
    let up = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not start: see {log_path}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The coordinator, through `cargo lambda invoke` and the sample event (first invoke
    // compiles the function).
    let event = include_str!("../../events/prefix-job.json")
        .replace("s3fanout-local", &env.resources.bucket);
    let event_file = std::env::temp_dir().join(format!("{}-job.json", env.resources.bucket));
    std::fs::write(&event_file, event).unwrap();
    let invoke = Command::new(cargo_lambda())
        .args(["lambda", "invoke", "coordinator", "-A", "127.0.0.1"])
        .args(["-P", &port.to_string(), "--data-file"])
        .arg(&event_file)
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running cargo lambda invoke");
    let invoked = finish_within(invoke, Duration::from_secs(600))
        .unwrap_or_else(|| panic!("cargo lambda invoke took over 10 minutes: see {log_path}"));
    assert!(
        invoked.status.success(),
        "cargo lambda invoke failed: {} (watcher: {log_path})",
        String::from_utf8_lossy(&invoked.stderr)
    );
    let started: serde_json::Value = serde_json::from_slice(&invoked.stdout).unwrap();
    assert_eq!(started["total_batches"], 2, "{started}");
    let job_id = started["job_id"].as_str().unwrap().to_owned();

    // The worker, served by the same watcher: the bridge delivers over the Invoke API.
    let worker = LambdaInvokeApi::new(&format!("http://127.0.0.1:{port}"), "worker");
    let bridge = SqsBridge::new(
        &env.clients.sqs,
        &env.provisioned.queue_url,
        &env.provisioned.queue_arn,
        &worker,
    );
    let ledger = env.ledger();
    let deadline = Instant::now() + Duration::from_secs(300);
    let job = loop {
        let job = ledger.get(&job_id.as_str().into()).await.unwrap().unwrap();
        if job.status.is_final() {
            break job;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "job not final: {job:?} (watcher: {log_path})"
        );
        tokio::time::timeout(left, bridge.poll_once())
            .await
            .unwrap_or_else(|_| panic!("a delivery to the worker hung: see {log_path}"))
            .unwrap();
    };
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, spec.total_rows());
    assert_eq!(env.record_count().await, spec.total_rows());
    drop(watch);
}

//! Starts real local AWS servers on free loopback ports: moto (SQS, or any service), s3s-fs
//! (S3) and dynalite (DynamoDB), installed by `scripts/setup.sh` into the tools cache.
//!
//! Every server is a child process that dies with us: on drop we kill it, and the kernel
//! kills it (PR_SET_PDEATHSIG) if we exit any other way, panics and aborted tests included.

use std::fmt;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use shared::aws::{Clients, Endpoints};
use thiserror::Error;

/// Access key and secret the local servers accept (s3s-fs checks them).
pub const ACCESS_KEY: &str = "local";
pub const SECRET_KEY: &str = "localsecret";
pub const REGION: &str = "us-east-1";

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("{tool} is not installed at {path}: run scripts/setup.sh")]
    NotInstalled { tool: &'static str, path: PathBuf },
    #[error("starting {server} failed")]
    Spawn {
        server: Server,
        #[source]
        source: io::Error,
    },
    #[error(
        "{server} did not start listening on port {port} within {waited:?}; its log ({log}) ends with:\n{tail}"
    )]
    NotReady {
        server: Server,
        port: u16,
        waited: Duration,
        log: String,
        tail: String,
    },
    #[error("{server} cannot serve {service}")]
    Unsupported {
        server: Server,
        service: &'static str,
    },
    #[error("preparing {0}")]
    Io(PathBuf, #[source] io::Error),
}

/// A local server implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    Moto,
    S3sFs,
    Dynalite,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Moto => "moto",
            Server::S3sFs => "s3s-fs",
            Server::Dynalite => "dynalite",
        })
    }
}

impl FromStr for Server {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "moto" => Ok(Server::Moto),
            "s3s-fs" => Ok(Server::S3sFs),
            "dynalite" => Ok(Server::Dynalite),
            other => Err(format!("unknown server {other:?} (moto, s3s-fs, dynalite)")),
        }
    }
}

/// Which server plays which service. The default is the fastest faithful set measured here:
/// s3s-fs for S3, moto for SQS (the only choice), dynalite for DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerChoice {
    pub s3: Server,
    pub dynamodb: Server,
}

impl Default for ServerChoice {
    fn default() -> Self {
        Self {
            s3: Server::S3sFs,
            dynamodb: Server::Dynalite,
        }
    }
}

/// Running local servers. Dropping it stops them.
pub struct LocalAws {
    pub endpoints: Endpoints,
    pub choice: ServerChoice,
    processes: Vec<(Server, Child)>,
    dir: PathBuf,
}

impl LocalAws {
    /// Starts moto plus whatever else `choice` names, each on a fresh port.
    pub fn start(choice: ServerChoice) -> Result<Self, ServerError> {
        if choice.s3 == Server::Dynalite {
            return Err(ServerError::Unsupported {
                server: Server::Dynalite,
                service: "S3",
            });
        }
        if choice.dynamodb == Server::S3sFs {
            return Err(ServerError::Unsupported {
                server: Server::S3sFs,
                service: "DynamoDB",
            });
        }
        let dir = fresh_run_dir()?;
        let mut local = Self {
            endpoints: Endpoints::default(),
            choice,
            processes: Vec::new(),
            dir,
        };
        let moto = local.launch(Server::Moto)?;
        local.endpoints.sqs = Some(moto.clone());
        local.endpoints.s3 = Some(match choice.s3 {
            Server::Moto => moto.clone(),
            other => local.launch(other)?,
        });
        local.endpoints.dynamodb = Some(match choice.dynamodb {
            Server::Moto => moto,
            other => local.launch(other)?,
        });
        Ok(local)
    }

    /// One moto server for every service, started by the deploy rehearsal's launcher
    /// (`tools/rehearsal/moto_iam.py`: moto with the gaps closed that IAM enforcement on a
    /// CloudFormation stack needs) with AWS managed policies loaded. IAM is off until the
    /// rehearsal turns it on; S3 notifications to Lambda go to `invoke_url`.
    pub fn start_rehearsal_moto(launcher: &Path, invoke_url: &str) -> Result<Self, ServerError> {
        let dir = fresh_run_dir()?;
        let mut local = Self {
            endpoints: Endpoints::default(),
            choice: ServerChoice {
                s3: Server::Moto,
                dynamodb: Server::Moto,
            },
            processes: Vec::new(),
            dir,
        };
        let port = free_port().map_err(|e| ServerError::Io(local.dir.clone(), e))?;
        let mut command = Command::new(tools_dir().join("venv/bin/python"));
        command
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("S3FANOUT_REHEARSAL_INVOKE_URL", invoke_url);
        let url = local.spawn_logged(Server::Moto, command, port)?;
        local.endpoints.s3 = Some(url.clone());
        local.endpoints.sqs = Some(url.clone());
        local.endpoints.dynamodb = Some(url);
        Ok(local)
    }

    /// The directory holding the servers' logs (removed on drop).
    pub fn run_dir(&self) -> &Path {
        &self.dir
    }

    /// SDK clients for these servers (static local credentials, fixed region).
    pub fn clients(&self) -> Clients {
        Clients::new(&local_sdk_config(), &self.endpoints)
    }

    /// The variables that point the SDK (and the Lambda functions) at these servers.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
        ];
        let endpoints = [
            ("AWS_ENDPOINT_URL_S3", &self.endpoints.s3),
            ("AWS_ENDPOINT_URL_SQS", &self.endpoints.sqs),
            ("AWS_ENDPOINT_URL_DYNAMODB", &self.endpoints.dynamodb),
        ];
        vars.extend(
            endpoints
                .into_iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k, v))),
        );
        vars
    }

    fn launch(&mut self, server: Server) -> Result<String, ServerError> {
        let port = free_port().map_err(|e| ServerError::Io(self.dir.clone(), e))?;
        let tools = tools_dir();
        let (program, args): (PathBuf, Vec<String>) = match server {
            Server::Moto => (
                tools.join("venv/bin/moto_server"),
                vec![
                    "-H".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ],
            ),
            Server::S3sFs => {
                let data = self.dir.join("s3");
                std::fs::create_dir_all(&data).map_err(|e| ServerError::Io(data.clone(), e))?;
                (
                    tools.join("cargo/bin/s3s-fs"),
                    vec![
                        "--host".into(),
                        "127.0.0.1".into(),
                        "--port".into(),
                        port.to_string(),
                        "--access-key".into(),
                        ACCESS_KEY.into(),
                        "--secret-key".into(),
                        SECRET_KEY.into(),
                        data.display().to_string(),
                    ],
                )
            }
            Server::Dynalite => (
                tools.join("node/node_modules/.bin/dynalite"),
                vec![
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                    // Tables are ACTIVE at once instead of after the default 500 ms.
                    "--createTableMs".into(),
                    "0".into(),
                ],
            ),
        };
        if !program.exists() {
            return Err(ServerError::NotInstalled {
                tool: match server {
                    Server::Moto => "moto_server",
                    Server::S3sFs => "s3s-fs",
                    Server::Dynalite => "dynalite",
                },
                path: program,
            });
        }
        let mut command = Command::new(&program);
        command.args(&args);
        self.spawn_logged(server, command, port)
    }

    /// Starts `command` with its output in this run's `{server}.log` and waits until it
    /// listens on `port`.
    fn spawn_logged(
        &mut self,
        server: Server,
        mut command: Command,
        port: u16,
    ) -> Result<String, ServerError> {
        let log_path = self.dir.join(format!("{server}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| ServerError::Io(log_path.clone(), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| ServerError::Io(log_path.clone(), e))?;
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        let child = spawn_tied_to_this_process(command)
            .map_err(|source| ServerError::Spawn { server, source })?;
        self.processes.push((server, child));
        wait_until_listening(port, Duration::from_secs(60)).map_err(|waited| {
            ServerError::NotReady {
                server,
                port,
                waited,
                log: log_path.display().to_string(),
                tail: tail(&log_path),
            }
        })?;
        tracing::debug!(%server, port, "local server ready");
        Ok(format!("http://127.0.0.1:{port}"))
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        for (_, child) in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Credentials and region the local servers accept, without touching the environment.
pub fn local_sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "s3fanout-devkit",
        )))
        .build()
}

/// Where `scripts/setup.sh` installs the servers.
/// Empty or relative values are ignored, as the scripts' `${VAR:-default}` ignores empty ones
/// (and tests run from their crate's folder, not the repository's).
pub fn tools_dir() -> PathBuf {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
    };
    if let Some(dir) = absolute("S3FANOUT_CACHE") {
        return dir;
    }
    let cache = absolute("XDG_CACHE_HOME").unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
    });
    cache.join("s3-fanout")
}

/// Children get SIGKILL when the thread that forked them ends, so they are forked from one
/// thread that lives as long as the process: test threads and runtime workers come and go.
pub(crate) fn spawn_tied_to_this_process(command: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("local-aws-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
                    unsafe {
                        command.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawning a thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn wait_until_listening(port: u16, limit: Duration) -> Result<(), Duration> {
    let started = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while started.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(started.elapsed())
}

fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A fresh directory for this start's logs and data, under the system temp dir. Leftovers of
/// processes that no longer exist are removed first.
fn fresh_run_dir() -> Result<PathBuf, ServerError> {
    static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let root = std::env::temp_dir().join("s3fanout-local");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or_default();
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = root.join(format!("{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| ServerError::Io(dir.clone(), e))?;
    Ok(dir)
}

//! End-to-end test support: the lab (ministack + our plugin) and the real binary.
//!
//! [`Lab`] starts `tests/lab/labserver.py` on a free loopback port and kills exactly that
//! process on drop (also when a test panics; `--exit-with-parent` covers a killed test
//! binary). [`Daemon`] runs `replicanary run` against it and reads `/metrics` as
//! Prometheus would.

#![allow(dead_code)] // each test crate uses a different part of this module

pub mod backlog;
pub mod prometheus;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BASE_ACCESS_KEY: &str = "333333333333";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lab_dir() -> PathBuf {
    root().join("tests/lab")
}

fn python() -> PathBuf {
    lab_dir().join(".venv/bin/python")
}

/// Creates the lab's venv once per test binary (a no-op when it is current).
fn ensure_venv() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let status = Command::new("bash")
            .arg(lab_dir().join("setup.sh"))
            .status()
            .expect("bash runs");
        assert!(status.success(), "tests/lab/setup.sh failed");
    });
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running lab, stopped on drop.
pub struct Lab {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    pub dir: tempdir::TempDir,
}

impl Lab {
    /// Starts a lab with `--replication-delay 1` plus `args`.
    pub fn start(args: &[&str]) -> Lab {
        ensure_venv();
        let port = free_port();
        let child = Command::new(python())
            .arg(lab_dir().join("labserver.py"))
            .args([
                "--port",
                &port.to_string(),
                "--exit-with-parent",
                &std::process::id().to_string(),
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("labserver.py starts");
        let lab = Lab {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir: tempdir::TempDir::new("replicanary-e2e"),
        };
        wait_until(Duration::from_secs(30), "the lab to be healthy", || {
            http_get(port, "/_ministack/health").is_some_and(|(s, _)| s == 200)
        });
        lab
    }

    /// Provisions scenarios and returns the path of the replicanary configuration.
    pub fn provision(&self, scenarios: &[&str], extra: &[&str]) -> PathBuf {
        let out = self
            .dir
            .path()
            .join(format!("config-{}.yaml", scenarios.join("-")));
        let status = Command::new(python())
            .arg(lab_dir().join("provision.py"))
            .args(["--endpoint", &self.endpoint, "--out"])
            .arg(&out)
            .args(["--scenarios", &scenarios.join(",")])
            .args(extra)
            .stderr(Stdio::null())
            .status()
            .expect("provision.py runs");
        assert!(status.success(), "provisioning {scenarios:?} failed");
        out
    }

    /// `POST /_lab/<path>` with a JSON body.
    pub fn admin(&self, path: &str, json: &str) {
        let (status, body) =
            http_post(self.port, &format!("/_lab/{path}"), json).expect("lab admin answers");
        assert_eq!(status, 200, "lab admin {path}: {body}");
    }

    /// Request counts the lab saw (`GET /_lab/stats`), as raw JSON text.
    pub fn stats(&self) -> String {
        http_get(self.port, "/_lab/stats")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment every replicanary run gets: the monitoring account's root as base
/// credentials, and nothing from the machine's own AWS configuration.
pub fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", BASE_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", "/nonexistent/replicanary-test")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/replicanary-test",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_replicanary"));
    aws_env(&mut cmd);
    cmd
}

/// `replicanary check` to completion.
pub fn check(config: &Path, args: &[&str]) -> Output {
    binary()
        .arg("check")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("replicanary check runs")
}

/// The outcome of the first verdict of `replication` in `check --format json` output.
pub fn outcome_of(doc: &serde_json::Value, replication: &str) -> serde_json::Value {
    doc["verdicts"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["replication"] == replication))
        .unwrap_or_else(|| panic!("no verdict for {replication}: {doc}"))["outcome"]
        .clone()
}

/// A running `replicanary run`, killed on drop unless stopped.
pub struct Daemon {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(config, &[], extra_env)
    }

    /// Like [`Daemon::start`], with more `run` arguments.
    pub fn start_with(config: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Daemon {
        let d = Daemon::spawn(config, args, extra_env);
        wait_until(Duration::from_secs(30), "/readyz to answer 200", || {
            http_get(d.port, "/readyz").is_some_and(|(s, _)| s == 200)
        });
        d
    }

    /// Starts `replicanary run` without waiting for it (its endpoints may need TLS).
    pub fn spawn(config: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let log = config.with_extension(format!("{port}.log"));
        let mut cmd = binary();
        cmd.args([
            "run",
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(config)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("replicanary run starts");
        Daemon { child, port, log }
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = http_get(self.port, "/metrics").expect("/metrics answers");
        assert_eq!(status, 200);
        Metrics::parse(&body)
    }

    /// Waits until every (replication, destination) pair has at least `n` verdicts.
    pub fn wait_for_verdicts(&self, pairs: &[(&str, &str)], n: f64, timeout: Duration) -> Metrics {
        let mut last = None;
        let ok = poll_until(timeout, || {
            let m = self.metrics();
            let done = pairs.iter().all(|(r, d)| m.verdicts(r, d) >= n);
            last = Some(m);
            done
        });
        let m = last.expect("scraped at least once");
        if !ok {
            let seen: Vec<String> = pairs
                .iter()
                .map(|(r, d)| format!("{r}/{d}: {:?}", m.outcomes(r, d)))
                .collect();
            panic!(
                "not every destination reached {n} verdicts in {timeout:?}: {seen:?}\nlog:\n{}",
                self.log_text()
            );
        }
        m
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal and waits for the exit.
    pub fn signal_and_wait(mut self, signal: &str, timeout: Duration) -> ExitStatus {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "replicanary did not exit within {timeout:?} of SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parsed Prometheus text exposition: `name{sorted labels}` → value.
#[derive(Debug, Clone)]
pub struct Metrics {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
            let value: f64 = value.parse().expect("a numeric value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Metrics {
            samples,
            text: text.to_owned(),
        }
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }

    /// Sum over every sample of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .sum()
    }

    pub fn verdicts(&self, replication: &str, destination: &str) -> f64 {
        self.sum(
            "replicanary_probes_total",
            &[("replication", replication), ("destination", destination)],
        )
    }

    /// Every value the label `label` takes in the samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> std::collections::BTreeSet<String> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, l, _)| l.get(label).cloned())
            .collect()
    }

    /// Outcomes with a non-zero count for one destination.
    pub fn outcomes(&self, replication: &str, destination: &str) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|(n, l, v)| {
                n == "replicanary_probes_total"
                    && *v > 0.0
                    && l.get("replication").map(String::as_str) == Some(replication)
                    && l.get("destination").map(String::as_str) == Some(destination)
            })
            .map(|(_, l, v)| (l["outcome"].clone(), *v))
            .collect()
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(k.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    out
}

/// Polls `f` every 100 ms until it is true or `timeout` passes; returns whether it held.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_until(timeout: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, f),
        "timed out after {timeout:?} waiting for {what}"
    );
}

fn http(port: u16, request: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    parse_response(&buf)
}

/// An HTTP/1.1 response as read from the connection → (status, body), the body dechunked.
pub fn parse_response(buf: &[u8]) -> Option<(u16, String)> {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..split]).ok()?;
    let body = &buf[split + 4..];
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some((status, String::from_utf8(body).ok()?))
}

/// The body of a `Transfer-Encoding: chunked` answer (Prometheus' API sends large answers
/// that way, and a chunk may end inside a UTF-8 character): each chunk is its size in hex,
/// CRLF, the bytes, CRLF; a zero size ends it.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        let chunk = rest.get(eol + 2..eol + 2 + size)?;
        body.extend_from_slice(chunk);
        rest = rest.get(eol + 2 + size..)?.strip_prefix(b"\r\n")?;
    }
}

/// A minimal HTTP/1.1 GET on loopback (keeps the tests free of an HTTP client crate).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

pub fn http_post(port: u16, path: &str, json: &str) -> Option<(u16, String)> {
    http(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        ),
    )
}

/// A temporary directory removed on drop (std only).
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "{prefix}-{}-{:x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            TempDir(dir)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Plain AWS SDK access as an account's root (a 12-digit access key id is that account's
/// root in the lab), for tests that put or list objects as a user would.
pub struct RootS3 {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

impl RootS3 {
    pub fn new(lab: &Lab, account: &str) -> RootS3 {
        let creds = aws_sdk_s3::config::Credentials::new(account, "test", None, None, "test");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("ap-northeast-1"))
            .endpoint_url(&lab.endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .build();
        RootS3 {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    /// Puts an object (with optional user metadata) and returns its version id.
    pub fn put(&self, bucket: &str, key: &str, body: &str, metadata: &[(&str, &str)]) -> String {
        let mut call = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into());
        for (k, v) in metadata {
            call = call.metadata(*k, *v);
        }
        let out = self.rt.block_on(call.send()).expect("PutObject as root");
        out.version_id().expect("versioned bucket").to_owned()
    }

    /// Every (key, version id) under a prefix, delete markers excluded.
    pub fn versions(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(
                self.client
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(prefix)
                    .send(),
            )
            .expect("ListObjectVersions as root");
        out.versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap_or_default().to_owned(),
                    v.version_id().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The body of one version.
    pub fn get(&self, bucket: &str, key: &str, version_id: &str) -> Option<Vec<u8>> {
        let out = self
            .rt
            .block_on(
                self.client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .version_id(version_id)
                    .send(),
            )
            .ok()?;
        Some(
            self.rt
                .block_on(out.body.collect())
                .ok()?
                .into_bytes()
                .to_vec(),
        )
    }
}

// ---- helpers for the reliability campaigns (tests/e2e_reliability*.rs) -----------------

fn spawn_lab(port: u16, args: &[&str]) -> Child {
    Command::new(python())
        .arg(lab_dir().join("labserver.py"))
        .args([
            "--port",
            &port.to_string(),
            "--exit-with-parent",
            &std::process::id().to_string(),
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("labserver.py starts")
}

impl Lab {
    /// Kills the lab process (SIGKILL: its in-memory state is lost) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new lab process on the same port (after [`Lab::kill`]), with `args`.
    pub fn restart(&mut self, args: &[&str]) {
        self.kill();
        let port = self.port;
        // The port may linger briefly; retry the start until the lab is healthy.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.child = spawn_lab(port, args);
            if poll_until(Duration::from_secs(10), || {
                http_get(port, "/_ministack/health").is_some_and(|(s, _)| s == 200)
            }) {
                return;
            }
            self.kill();
            assert!(
                Instant::now() < deadline,
                "the lab did not restart on port {port}"
            );
        }
    }

    /// `GET /_lab/stats` parsed.
    pub fn stats_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stats()).unwrap_or(serde_json::Value::Null)
    }

    /// Runs a Python snippet with the lab's venv (boto3; `tests/lab` importable) and
    /// `ENDPOINT` set to this lab; returns its stdout, panicking on failure.
    pub fn python(&self, code: &str) -> String {
        let out = Command::new(python())
            .arg("-c")
            .arg(code)
            .env("PYTHONPATH", lab_dir())
            .env("ENDPOINT", &self.endpoint)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Daemon {
    /// Sends a signal without waiting (e.g. STOP / CONT).
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
    }

    /// The JSON log lines written so far, parsed (lines that are not JSON are skipped).
    pub fn log_json(&self) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl RootS3 {
    /// Every version under a prefix with its user metadata (HeadObject per version).
    pub fn versions_with_metadata(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Vec<(String, String, std::collections::HashMap<String, String>)> {
        self.versions(bucket, prefix)
            .into_iter()
            .map(|(k, v)| {
                let meta = self
                    .rt
                    .block_on(
                        self.client
                            .head_object()
                            .bucket(bucket)
                            .key(&k)
                            .version_id(&v)
                            .send(),
                    )
                    .ok()
                    .and_then(|h| h.metadata().cloned())
                    .unwrap_or_default();
                (k, v, meta)
            })
            .collect()
    }
}

impl Daemon {
    /// Sends a signal, waits for the exit, and returns the status with the whole log.
    pub fn signal_and_wait_keep(self, signal: &str, timeout: Duration) -> (ExitStatus, String) {
        let log = self.log.clone();
        let status = self.signal_and_wait(signal, timeout);
        (status, std::fs::read_to_string(log).unwrap_or_default())
    }
}

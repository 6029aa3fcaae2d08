//! The real binary: its environment (the lab's base credentials, nothing of the machine's
//! AWS configuration), `check` to completion, and [`Daemon`]: `replicanary run` against a
//! lab, its log, signals and `/metrics` read as Prometheus would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::exposition::Metrics;
use super::http::{free_port, http_get};
use super::{poll_until, wait_until};

pub const BASE_ACCESS_KEY: &str = "333333333333";

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

impl Daemon {
    /// Sends a signal, waits for the exit, and returns the status with the whole log.
    pub fn signal_and_wait_keep(self, signal: &str, timeout: Duration) -> (ExitStatus, String) {
        let log = self.log.clone();
        let status = self.signal_and_wait(signal, timeout);
        (status, std::fs::read_to_string(log).unwrap_or_default())
    }
}

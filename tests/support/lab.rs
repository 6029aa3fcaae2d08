//! The lab (ministack + our plugin, `tests/lab/labserver.py`): started on a free loopback
//! port by one command, killed on drop (also when a test panics; `--exit-with-parent`
//! covers a killed test binary), restartable on its port; provisioning, its admin and
//! statistics endpoints, Python snippets against it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::http::{free_port, http_get, http_post};
use super::tempdir;
use super::{poll_until, wait_until};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn lab_dir() -> PathBuf {
    root().join("tests/lab")
}

pub fn python() -> PathBuf {
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

/// `labserver.py` on `port` with `args`: the one command that starts a lab.
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
        let child = spawn_lab(port, args);
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

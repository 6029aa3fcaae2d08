//! A real Prometheus (Debian's `prometheus`) with `deploy/prometheus/replicanary.rules.yml`,
//! scraping replicanary that probes the lab's `wrong-key` and `healthy` scenarios: through
//! Prometheus' HTTP API, `ReplicanaryReplicaUndecryptable` fires for `wrong-key` within a
//! bounded time, and no alert (pending or firing) names `healthy`.
//!
//! Skipped when `prometheus` is not installed, unless `CI` is set: in CI a missing
//! Prometheus is a failure (`.ci/run` installs it).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Daemon, Lab, free_port, http_get, poll_until, wait_until};

/// The `prometheus` binary, or `None` (test skipped) outside CI.
fn prometheus_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    });
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    match found {
        Some(p) => Some(p),
        None if in_ci => {
            panic!("CI is set but `prometheus` is not on PATH (apt-get install prometheus)")
        }
        None => {
            eprintln!(
                "SKIPPED: `prometheus` not on PATH (apt-get install prometheus); CI would fail"
            );
            None
        }
    }
}

/// A Prometheus server on loopback, killed on drop (also when the test panics).
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(binary: &Path, dir: &Path, target_port: u16) -> Prometheus {
        let rules =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/replicanary.rules.yml");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: replicanary\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n",
                rules.display()
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("prometheus starts");
        let p = Prometheus { child, port, log };
        wait_until(Duration::from_secs(30), "Prometheus to be ready", || {
            http_get(p.port, "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        p
    }

    fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = http_get(self.port, path).expect("Prometheus answers");
        assert_eq!(status, 200, "{path}: {body}");
        // The answer may be chunked: the JSON object is between the first '{' and the last '}'.
        let json = body
            .find('{')
            .zip(body.rfind('}'))
            .map(|(a, b)| &body[a..=b])
            .unwrap_or_default();
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// Every alert Prometheus holds (pending and firing).
    fn alerts(&self) -> Vec<serde_json::Value> {
        self.api("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.api(&format!("/api/v1/query?query={encoded}"))["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn label<'a>(alert: &'a serde_json::Value, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or_default()
}

#[test]
fn undecryptable_alert_fires_for_wrong_key_and_nothing_for_healthy() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let lab = Lab::start(&[]);
    let config = lab.provision(&["healthy", "wrong-key"], &["--interval", "1s"]);
    let daemon = Daemon::start(&config, &[]);
    let prometheus = Prometheus::start(&binary, lab.dir.path(), daemon.port);

    let started = Instant::now();
    let bound = Duration::from_secs(60);
    let fired = poll_until(bound, || {
        prometheus.alerts().iter().any(|a| {
            label(a, "alertname") == "ReplicanaryReplicaUndecryptable"
                && label(a, "replication") == "wrong-key"
                && a["state"] == "firing"
        })
    });
    assert!(
        fired,
        "ReplicanaryReplicaUndecryptable did not fire for wrong-key within {bound:?}\nalerts: {:?}\nprometheus log:\n{}\nreplicanary log:\n{}",
        prometheus.alerts(),
        prometheus.log_text(),
        daemon.log_text()
    );
    eprintln!(
        "ReplicanaryReplicaUndecryptable firing for wrong-key {:.1}s after Prometheus started",
        started.elapsed().as_secs_f64()
    );

    // The healthy replication has been probed and scraped (several ok verdicts)...
    wait_until(
        Duration::from_secs(30),
        "two ok verdicts of healthy in Prometheus",
        || {
            prometheus
                .query(r#"replicanary_probes_total{replication="healthy",outcome="ok"} >= 2"#)
                .len()
                == 1
        },
    );
    let success = prometheus.query(r#"replicanary_probe_success{replication="healthy"}"#);
    assert_eq!(success.len(), 1, "{success:?}");
    assert_eq!(success[0]["value"][1], "1", "{success:?}");

    // ...and no alert names it, nor is any alert about replicanary itself active.
    let alerts = prometheus.alerts();
    let about_healthy: Vec<_> = alerts
        .iter()
        .filter(|a| label(a, "replication") == "healthy" || label(a, "replication").is_empty())
        .collect();
    assert!(
        about_healthy.is_empty(),
        "alerts for healthy (or replicanary itself): {about_healthy:?}"
    );
    let wrong_key: Vec<&str> = alerts
        .iter()
        .filter(|a| label(a, "replication") == "wrong-key")
        .map(|a| label(a, "alertname"))
        .collect();
    assert!(
        wrong_key.contains(&"ReplicanaryReplicaUndecryptable"),
        "{wrong_key:?}"
    );
    // The undecryptable replica is not also reported as "under the wrong key".
    assert!(
        !wrong_key.contains(&"ReplicanaryReplicaWrongKmsKey"),
        "{wrong_key:?}"
    );
    let firing = alerts
        .iter()
        .find(|a| label(a, "alertname") == "ReplicanaryReplicaUndecryptable")
        .expect("the alert");
    assert_eq!(label(firing, "severity"), "critical");
    assert!(
        firing["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("docs/runbook.md#replicanaryreplicaundecryptable")),
        "{firing}"
    );
}

//! A real Prometheus (Debian's `prometheus`) for end-to-end tests of the shipped alert
//! rules: it loads `deploy/prometheus/replicanary.rules.yml`, scrapes the given replicanary
//! instances as one job (`replicanary`, each instance its own `instance` label), and is
//! read through its HTTP API.
//!
//! [`prometheus_binary`] is `None` (the test is skipped, with a notice) when `prometheus` is
//! not installed, unless `CI` is set: in CI a missing Prometheus is a failure (`.ci/run`
//! installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Metrics, free_port, http_get, tempdir::TempDir, wait_until};

/// The `prometheus` binary, or `None` (test skipped) outside CI.
pub fn prometheus_binary() -> Option<PathBuf> {
    super::tools::required_tool("prometheus", "prometheus")
}

/// How often Prometheus scrapes and evaluates the rules (the scrape timeout is the whole
/// interval, the most Prometheus allows). One second keeps the tests short.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

/// `labserver.py` arguments for these tests: replicas appear 0.2 s after the PutObject.
pub const LAB_ARGS: &[&str] = &["--replication-delay", "0.2"];

/// `provision.py` arguments for these tests: a probe every 3 s, replication status polled
/// every 100–500 ms.
///
/// Why not faster: ReplicanaryNoSuccessfulProbe fires when the latest `ok` is older than
/// 3 probe intervals, and a probe that overruns its slot skips slots. With a 1 s interval,
/// the lab's default 1 s replication delay and the default 200 ms → 2 s poll backoff, a
/// probe took 1.4 s (status seen at the 1.4 s poll), so `ok` came every 2 s and Prometheus
/// saw gaps of up to 2.9 s against the 3 s threshold; on a loaded machine the status was
/// seen one poll later (3.0 s), `ok` came every 3 s and the alert rightly fired for
/// `healthy`. Here a probe takes about 0.35 s and Prometheus sees gaps of up to about
/// 3.6 s against a 9 s threshold: probes would have to take ten times as long before the
/// alert could fire, and then it would be right to.
pub const PROBE_ARGS: &[&str] = &[
    "--interval",
    "3s",
    "--poll-initial",
    "100ms",
    "--poll-max",
    "500ms",
];

/// A Prometheus server on loopback, killed on drop (also when the test panics); its
/// configuration, TSDB and log live in a temporary directory removed after it.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (replicanary `/metrics` ports on 127.0.0.1)
    /// and waits until it is ready.
    pub fn start(binary: &Path, targets: &[u16]) -> Prometheus {
        let targets: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
        let job = format!(
            "  - job_name: replicanary\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        Prometheus::start_with_scrape_configs(binary, &job)
    }

    /// Starts Prometheus with the shipped rules and `scrape_configs` (YAML list items,
    /// indented by two spaces), and waits until it is ready.
    pub fn start_with_scrape_configs(binary: &Path, scrape_configs: &str) -> Prometheus {
        let dir = TempDir::new("replicanary-prometheus");
        let rules =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/replicanary.rules.yml");
        let every = format!("{}s", SCRAPE_INTERVAL.as_secs());
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {every}\n  scrape_timeout: {every}\n  evaluation_interval: {every}\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n{scrape_configs}",
                rules.display(),
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("prometheus starts");
        let p = Prometheus {
            child,
            port,
            log,
            _dir: dir,
        };
        wait_until(Duration::from_secs(30), "Prometheus to be ready", || {
            http_get(p.port, "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        p
    }

    /// `GET path` of the HTTP API, parsed; panics unless it answers 200.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = http_get(self.port, path).expect("Prometheus answers");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// Every alert Prometheus holds (pending and firing).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.api("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The alerts named `name` (pending and firing).
    pub fn alerts_named(&self, name: &str) -> Vec<serde_json::Value> {
        self.alerts()
            .into_iter()
            .filter(|a| label(a, "alertname") == name)
            .collect()
    }

    /// Every rule of every group, as `/api/v1/rules` reports it (with `health`,
    /// `lastError` and `lastEvaluation`).
    pub fn rules(&self) -> Vec<serde_json::Value> {
        self.api("/api/v1/rules")["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// An instant query's result vector.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = self.api(&format!("/api/v1/query?query={encoded}"));
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The `/api/v1/targets` answer's active targets.
    pub fn targets(&self) -> Vec<serde_json::Value> {
        self.api("/api/v1/targets")["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The samples of `ALERTS{selector}` over the last hour (the whole test): one entry per
    /// alert (labels with `alertstate`) that was pending or firing at any evaluation.
    pub fn alert_history(&self, selector: &str) -> Vec<serde_json::Value> {
        self.query(&format!("ALERTS{{{selector}}}[1h]"))
            .into_iter()
            .map(|series| series["metric"].clone())
            .collect()
    }

    /// Alerts about replicanary itself (no `replication` label) that were ever pending or
    /// firing, except ReplicanaryAbsent pending: Prometheus evaluates the rules before its
    /// first scrape, so that one is pending until then, by design (its `for` is 10 minutes;
    /// losing the series later would also show as ReplicanaryDown, which is not excepted).
    pub fn self_alerts_ever(&self) -> Vec<serde_json::Value> {
        self.alert_history(r#"replication="""#)
            .into_iter()
            .filter(|a| !(a["alertname"] == "ReplicanaryAbsent" && a["alertstate"] == "pending"))
            .collect()
    }

    /// Prometheus' own metrics (`/metrics` of the server itself).
    pub fn own_metrics(&self) -> Metrics {
        let (status, body) = http_get(self.port, "/metrics").expect("Prometheus answers");
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// How many times the rule groups have been evaluated, all groups together.
    fn evaluations(&self) -> f64 {
        self.own_metrics()
            .sum("prometheus_rule_group_iterations_total", &[])
    }

    /// Waits until every rule was evaluated `n` more times from now, so that what the test
    /// saw in the series has gone through the rules.
    pub fn wait_for_evaluations(&self, n: u32) {
        let groups = self.api("/api/v1/rules")["data"]["groups"]
            .as_array()
            .map_or(1, Vec::len);
        let target = self.evaluations() + f64::from(n) * groups as f64;
        wait_until(
            SCRAPE_INTERVAL * (n + 10),
            "the rules to be evaluated",
            || self.evaluations() >= target,
        );
    }

    /// Every rule's health is `ok` with no `lastError`, and no evaluation of any rule has
    /// failed since Prometheus started (a rule that fails to evaluate, e.g. with
    /// "many-to-many matching not allowed", fires for nobody).
    pub fn assert_rules_healthy(&self) {
        let rules = self.rules();
        assert!(!rules.is_empty(), "no rules loaded:\n{}", self.log_text());
        let unhealthy: Vec<String> = rules
            .iter()
            .filter(|r| {
                r["health"] != "ok" || r["lastError"].as_str().is_some_and(|e| !e.is_empty())
            })
            .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
            .collect();
        assert!(unhealthy.is_empty(), "rules not healthy: {unhealthy:#?}");
        let failures = self
            .own_metrics()
            .sum("prometheus_rule_evaluation_failures_total", &[]);
        assert_eq!(
            failures,
            0.0,
            "rule evaluations failed since start-up\nprometheus log:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A label of an alert (or of a query result's `metric`), `""` when absent.
pub fn label<'a>(alert: &'a serde_json::Value, name: &str) -> &'a str {
    alert["labels"][name]
        .as_str()
        .or_else(|| alert["metric"][name].as_str())
        .unwrap_or_default()
}

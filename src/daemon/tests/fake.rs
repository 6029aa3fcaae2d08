//! Test support for the daemon: in-memory probers the fleet can build, configurations
//! of named replications, and waiting on `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::aws::{AwsError, ObjectHead};
use crate::config::{AwsSettings, Config, Replication};
use crate::daemon::fleet::MakeProber;
use crate::emit::Sinks;
use crate::metrics::Metrics;
use crate::probe::Prober;
use crate::status::Board;
use crate::testing::{InFlight, MemStore, SharedBody};

const EXPECTED: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab";

/// A configuration's YAML with one replication per `(name, interval, destinations)`.
pub fn yaml(reps: &[(&str, &str, usize)]) -> String {
    let mut yaml = String::from(
        "defaults: {replication_timeout: 5s, poll: {initial: 10ms, max: 40ms}}\nreplications:\n",
    );
    for (name, interval, dests) in reps {
        yaml.push_str(&format!(
            "  - name: {name}\n    interval: {interval}\n    source: {{bucket: src-{name}, region: ap-northeast-1}}\n    destinations:\n"
        ));
        for i in 0..*dests {
            yaml.push_str(&format!(
                "      - {{name: d{i}, bucket: dst-{name}-{i}, region: ap-northeast-1, expected_kms_key_arn: {EXPECTED}}}\n"
            ));
        }
    }
    yaml
}

pub fn config(reps: &[(&str, &str, usize)]) -> Config {
    Config::parse(&yaml(reps)).expect("test configuration is valid")
}

pub fn reps(spec: &[(&str, &str, usize)]) -> Vec<Replication> {
    config(spec).replications
}

/// The stores one build of a replication's prober got.
#[derive(Clone)]
pub struct Built {
    pub source: Arc<MemStore>,
    pub destinations: Vec<Arc<MemStore>>,
}

/// Builds probers whose replicas arrive at once (`ok`), or — for the names in `pending` —
/// never (the source says PENDING until the replication timeout).
#[derive(Clone)]
pub struct Fake {
    pub metrics: Arc<Metrics>,
    /// The metrics and a status board, as the daemon gives them to probers.
    pub sinks: Sinks,
    pub pending: Vec<String>,
    /// Every bucket's listing is slow and counted here (the sweeps' concurrency).
    pub slow_listing: Option<(Arc<InFlight>, Duration)>,
    builds: Arc<Mutex<HashMap<String, Vec<Built>>>>,
}

impl Fake {
    pub fn new(metrics: &Arc<Metrics>) -> Fake {
        Fake {
            metrics: metrics.clone(),
            sinks: Sinks::new(metrics.clone(), Arc::new(Board::new())),
            pending: Vec::new(),
            slow_listing: None,
            builds: Arc::default(),
        }
    }

    pub fn builds(&self, name: &str) -> Vec<Built> {
        let builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
        builds.get(name).cloned().unwrap_or_default()
    }
}

fn status(s: &str) -> Result<ObjectHead, AwsError> {
    Ok(ObjectHead {
        replication_status: Some(s.to_owned()),
        ..ObjectHead::default()
    })
}

impl MakeProber for Fake {
    type Store = Arc<MemStore>;

    async fn make(&self, rep: &Replication) -> Prober<Arc<MemStore>> {
        let body = SharedBody::default();
        let said = if self.pending.contains(&rep.name) {
            "PENDING"
        } else {
            "COMPLETED"
        };
        let slow = |store: MemStore| match &self.slow_listing {
            Some((gauge, delay)) => store.slow_listing(gauge, *delay),
            None => store,
        };
        let source = Arc::new(slow(MemStore::new(&body)).heads(vec![status(said)]));
        let replica = Ok(ObjectHead {
            replication_status: Some("REPLICA".to_owned()),
            server_side_encryption: Some("aws:kms".to_owned()),
            kms_key_id: Some(EXPECTED.to_owned()),
            ..ObjectHead::default()
        });
        let destinations: Vec<Arc<MemStore>> = rep
            .destinations
            .iter()
            .map(|_| Arc::new(slow(MemStore::new(&body)).heads(vec![replica.clone()])))
            .collect();
        let built = Built {
            source: source.clone(),
            destinations: destinations.clone(),
        };
        self.builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(rep.name.clone())
            .or_default()
            .push(built);
        Prober::new(rep.clone(), source, destinations, self.sinks.clone())
    }

    async fn remake(&self, _: &AwsSettings) -> Fake {
        self.clone()
    }
}

/// `replicanary_probes_total` of one destination, all outcomes.
pub fn verdicts(m: &Metrics, rep: &str, dest: &str) -> u64 {
    let text = m.encode();
    let labels = format!("destination=\"{dest}\",");
    let rep = format!("replication=\"{rep}\"}}");
    text.lines()
        .filter(|l| l.starts_with("replicanary_probes_total{") && l.contains(&labels))
        .filter(|l| l.contains(&rep))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<u64>().ok()))
        .sum()
}

pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A file in a fresh temporary directory, removed (with the directory) on drop.
pub struct TempFile {
    dir: std::path::PathBuf,
    pub path: std::path::PathBuf,
}

impl TempFile {
    pub fn new(name: &str, text: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!(
            "replicanary-unit-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        TempFile { dir, path }
    }

    pub fn write(&self, text: &str) {
        std::fs::write(&self.path, text).expect("write");
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

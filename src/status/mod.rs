//! The status board: for every replication × destination, what its latest verdict said,
//! the verdict that stands, the findings behind it and the last AWS error — what the
//! status page at `/` shows.
//!
//! The board is written only by the one event per verdict (`emit`), from the same
//! [`DestinationVerdict`] value that makes the log line and the metrics, so the page can
//! never tell another story than `/metrics`. It keeps one row per destination, with the
//! last few verdicts in a fixed ring ([`History`]): its size is the number of
//! destinations, whatever the number of verdicts.

pub mod history;
mod history_cell;
pub mod html;
pub mod page;
mod process;
pub mod unmonitored;

#[cfg(test)]
mod alert_rules_agree;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::model::{AwsError, DestinationVerdict, Finding, Outcome, ScanClass, UnmonitoredRule};
pub use history::{HISTORY_LEN, History};
pub use process::ProcessState;

/// The latest verdict of every destination, shared by the probes (writers) and the HTTP
/// endpoint (reader).
#[derive(Debug, Default)]
pub struct Board {
    rows: Mutex<BTreeMap<(String, String), Row>>,
    /// The rules nobody monitors, as the last discovery pass with coverage settled them.
    coverage: Mutex<Option<Arc<Coverage>>>,
    /// The shard and the configuration loads, for the page's header (`process.rs`).
    process: Mutex<ProcessState>,
}

/// Discovery's coverage: the enabled replication rules no probe stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub rules: Vec<UnmonitoredRule>,
    /// When the pass that settled them ended.
    pub at: SystemTime,
}

/// One replication × destination.
#[derive(Debug, Clone)]
pub struct Row {
    pub replication: String,
    pub destination: String,
    /// The latest verdict, `error` included; `None` until the first probe finished.
    pub latest: Option<DestinationVerdict>,
    /// The standing verdict: the latest one other than `error` (a transient fault
    /// concludes nothing), and since when it holds.
    pub standing: Option<Standing>,
    /// The findings of the latest verdict that looked for them (an `error` verdict does
    /// not, so the previous findings stand).
    pub findings: Vec<Finding>,
    /// The most recent AWS error any verdict of this destination carried.
    pub last_error: Option<SeenError>,
    /// The last [`HISTORY_LEN`] verdicts, the latest included.
    pub history: History,
    /// The last complete background scan of this destination's replicas, if scanned.
    pub scan: Option<ScanCounts>,
}

/// Objects per class in the last complete scan pass, and when it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanCounts {
    /// Per class, in the order of [`ScanClass::ALL`].
    pub counts: [u64; ScanClass::ALL.len()],
    pub ended: SystemTime,
}

/// A conclusive outcome and the time of the first verdict of its current run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub outcome: Outcome,
    pub since: SystemTime,
}

/// An AWS error and the time of the verdict that carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenError {
    pub error: AwsError,
    pub at: SystemTime,
}

impl Row {
    fn waiting(replication: &str, destination: &str) -> Row {
        Row {
            replication: replication.to_owned(),
            destination: destination.to_owned(),
            latest: None,
            standing: None,
            findings: Vec::new(),
            last_error: None,
            history: History::default(),
            scan: None,
        }
    }

    /// The outcome the row is ranked by: the standing verdict while the latest is an
    /// `error` that interrupts a worse one (a KMS outage does not hide an undecryptable
    /// destination), else the latest verdict.
    pub fn ranking_outcome(&self) -> Option<Outcome> {
        let latest = self.latest.as_ref()?.outcome;
        Some(self.standing.map_or(latest, |s| s.outcome.min(latest)))
    }

    /// Sort key, worst first: verdict precedence, destinations still waiting for their
    /// first probe just before `ok`, then names.
    fn sort_key(&self) -> (usize, &str, &str) {
        let position = |o: Outcome| Outcome::ALL.iter().position(|a| *a == o).unwrap_or(0);
        let rank = match self.ranking_outcome() {
            Some(o) => 2 * position(o),
            None => 2 * position(Outcome::Ok) - 1,
        };
        (rank, &self.replication, &self.destination)
    }

    fn record(&mut self, v: &DestinationVerdict) {
        if v.outcome.is_conclusive() && self.standing.is_none_or(|s| s.outcome != v.outcome) {
            self.standing = Some(Standing {
                outcome: v.outcome,
                since: v.finished_at,
            });
        }
        if let Some(findings) = &v.findings {
            self.findings.clone_from(findings);
        }
        if let Some(error) = &v.aws_error {
            self.last_error = Some(SeenError {
                error: error.clone(),
                at: v.finished_at,
            });
        }
        self.history.push(v);
        self.latest = Some(v.clone());
    }
}

impl Board {
    pub fn new() -> Board {
        Board::default()
    }

    fn rows(&self) -> MutexGuard<'_, BTreeMap<(String, String), Row>> {
        // A panic while holding the lock leaves whole rows behind: keep serving them.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shows a destination before its first verdict ("waiting for the first probe").
    /// A destination already on the board keeps its row.
    pub fn register_destination(&self, replication: &str, destination: &str) {
        self.rows()
            .entry((replication.to_owned(), destination.to_owned()))
            .or_insert_with(|| Row::waiting(replication, destination));
    }

    /// Records one verdict (called by `emit` only).
    pub fn record(&self, v: &DestinationVerdict) {
        self.rows()
            .entry((v.replication.clone(), v.destination.clone()))
            .or_insert_with(|| Row::waiting(&v.replication, &v.destination))
            .record(v);
    }

    /// Records a complete scan pass of one destination (called by the daemon's scan).
    pub fn record_scan(&self, replication: &str, destination: &str, counts: ScanCounts) {
        self.rows()
            .entry((replication.to_owned(), destination.to_owned()))
            .or_insert_with(|| Row::waiting(replication, destination))
            .scan = Some(counts);
    }

    /// Removes every row of a replication (it left the configuration).
    pub fn remove_replication(&self, replication: &str) {
        self.rows().retain(|(r, _), _| r != replication);
    }

    /// Removes one destination of a replication (the replication no longer has it).
    pub fn remove_destination(&self, replication: &str, destination: &str) {
        self.rows()
            .remove(&(replication.to_owned(), destination.to_owned()));
    }

    /// A copy of every row, worst first (see [`Row::ranking_outcome`]). The lock is held
    /// only for the copy, never while a page is rendered.
    pub fn snapshot(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = self.rows().values().cloned().collect();
        rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        rows
    }
}

// Coverage (set by discovery, not by verdicts).
impl Board {
    /// Records the rules nobody monitors after a discovery pass; `None`: discovery or its
    /// coverage is off, nothing to show.
    pub fn set_coverage(&self, coverage: Option<Coverage>) {
        *self.coverage.lock().unwrap_or_else(|e| e.into_inner()) = coverage.map(Arc::new);
    }

    /// The last coverage recorded (shared: a page render copies no list).
    pub fn coverage(&self) -> Option<Arc<Coverage>> {
        self.coverage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

//! What a scan keeps while it runs: counts per class and a bounded number of examples,
//! per destination — nothing that grows with the bucket.

use crate::aws::VersionEntry;
use crate::config::Replication;
use crate::model::ScanClass;

/// Examples kept per failing class and destination, at most.
pub const EXAMPLES: usize = 10;

/// One object version named as an example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub key: String,
    pub version_id: String,
}

/// One destination's result.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationTally {
    pub destination: String,
    /// Per class, in the order of [`ScanClass::ALL`].
    pub counts: [u64; ScanClass::ALL.len()],
    /// Per class, at most [`EXAMPLES`] (none for `ok` and `pending`).
    pub examples: [Vec<Example>; ScanClass::ALL.len()],
}

impl DestinationTally {
    pub fn new(destination: &str) -> DestinationTally {
        DestinationTally {
            destination: destination.to_owned(),
            counts: [0; ScanClass::ALL.len()],
            examples: Default::default(),
        }
    }

    pub fn record(&mut self, class: ScanClass, entry: &VersionEntry) {
        self.counts[class.index()] += 1;
        let examples = &mut self.examples[class.index()];
        if class.is_failing() && examples.len() < EXAMPLES {
            examples.push(Example {
                key: entry.key.clone(),
                version_id: entry.version_id.clone(),
            });
        }
    }

    pub fn count(&self, class: ScanClass) -> u64 {
        self.counts[class.index()]
    }

    /// Objects judged.
    pub fn objects(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether any object is in a failing class.
    pub fn failing(&self) -> bool {
        ScanClass::ALL
            .iter()
            .any(|c| c.is_failing() && self.count(*c) > 0)
    }
}

/// One replication's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationScan {
    pub name: String,
    pub destinations: Vec<DestinationTally>,
    /// replicanary's own canaries, left out.
    pub canaries: u64,
    /// Objects deleted between the listing and their HEAD: not judged, not errors.
    pub gone: u64,
    /// `--limit` ended it: a sample.
    pub sampled: bool,
    /// Stopped (Ctrl-C, shutdown) before the end.
    pub interrupted: bool,
    /// Why the scan could not go on (a listing that failed after retries).
    pub incomplete: Option<String>,
    /// The last key done when the scan did not reach the end: `--start-after` resumes.
    pub resume_after: Option<String>,
    pub seconds: f64,
}

impl ReplicationScan {
    pub fn new(rep: &Replication) -> ReplicationScan {
        ReplicationScan {
            name: rep.name.clone(),
            destinations: rep
                .destinations
                .iter()
                .map(|d| DestinationTally::new(&d.name))
                .collect(),
            canaries: 0,
            gone: 0,
            sampled: false,
            interrupted: false,
            incomplete: None,
            resume_after: None,
            seconds: 0.0,
        }
    }

    /// Whether this replication makes the scan fail: a failing class, or a scan that
    /// could not finish.
    pub fn failing(&self) -> bool {
        self.incomplete.is_some() || self.destinations.iter().any(DestinationTally::failing)
    }
}

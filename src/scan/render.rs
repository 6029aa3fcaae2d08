//! The scan's report: text for people, one JSON document for programs.

use std::fmt::Write;

use serde_json::{Map, Value, json};

use super::ReplicationScan;
use crate::model::ScanClass;

/// The whole scan: every replication, the requests made, the time it took.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    pub replications: Vec<ReplicationScan>,
    pub requests: u64,
    pub seconds: f64,
}

impl ScanReport {
    /// Exit 0 when every object is `ok` or `pending` (and every scan finished its listing).
    pub fn clean(&self) -> bool {
        !self.replications.iter().any(ReplicationScan::failing)
    }

    pub fn json(&self) -> String {
        let replications: Vec<Value> = self.replications.iter().map(replication_json).collect();
        let doc = json!({
            "replications": replications,
            "requests": self.requests,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
        });
        format!("{doc}\n")
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        for r in &self.replications {
            let _ = writeln!(s, "{}", r.name);
            for d in &r.destinations {
                let _ = writeln!(s, "  {}: {} objects", d.destination, d.objects());
                for c in ScanClass::ALL {
                    let n = d.count(c);
                    if n == 0 {
                        continue;
                    }
                    let _ = writeln!(s, "    {:<20} {n}", c.as_str());
                    for e in &d.examples[c.index()] {
                        let _ = writeln!(s, "      {} (version {})", e.key, e.version_id);
                    }
                }
            }
            let _ = writeln!(
                s,
                "  canaries left out: {}; deleted during the scan: {}",
                r.canaries, r.gone
            );
            for note in notes(r) {
                let _ = writeln!(s, "  {note}");
            }
        }
        let _ = writeln!(s, "{} requests in {:.1}s", self.requests, self.seconds);
        s
    }
}

/// What the reader must know about how far a replication's scan went.
fn notes(r: &ReplicationScan) -> Vec<String> {
    let mut notes = Vec::new();
    if r.sampled {
        notes.push("a sample: --limit stopped the scan".to_owned());
    }
    if r.interrupted {
        notes.push("interrupted: the counts are partial".to_owned());
    }
    if let Some(why) = &r.incomplete {
        notes.push(format!("incomplete: {why}"));
    }
    if let Some(key) = &r.resume_after {
        notes.push(format!(
            "resume with: --replication {} --start-after {key:?}",
            r.name
        ));
    }
    notes
}

fn replication_json(r: &ReplicationScan) -> Value {
    let destinations: Vec<Value> = r
        .destinations
        .iter()
        .map(|d| {
            let mut counts = Map::new();
            let mut examples = Map::new();
            for c in ScanClass::ALL {
                counts.insert(c.as_str().to_owned(), json!(d.count(c)));
                let ex = &d.examples[c.index()];
                if !ex.is_empty() {
                    let list: Vec<Value> = ex
                        .iter()
                        .map(|e| json!({"key": e.key, "version_id": e.version_id}))
                        .collect();
                    examples.insert(c.as_str().to_owned(), Value::Array(list));
                }
            }
            json!({
                "destination": d.destination,
                "objects": d.objects(),
                "counts": counts,
                "examples": examples,
            })
        })
        .collect();
    json!({
        "name": r.name,
        "destinations": destinations,
        "canaries": r.canaries,
        "gone": r.gone,
        "sampled": r.sampled,
        "interrupted": r.interrupted,
        "incomplete": r.incomplete,
        "resume_after": r.resume_after,
        "seconds": (r.seconds * 1000.0).round() / 1000.0,
    })
}

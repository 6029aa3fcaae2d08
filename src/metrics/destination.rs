//! Series per (replication, destination) and per reader: the verdicts and what they
//! measured. The standing verdict (`replicanary_verdict`) is kept by the series themselves:
//! a conclusive verdict sets its own outcome to 1 and removes the others', as the readers'
//! standing outcome does; the status board is the one place that remembers it.

use std::collections::{BTreeSet, HashMap};

use prometheus::core::Collector;
use prometheus::{GaugeVec, HistogramVec, IntCounterVec};

use super::{Metrics, RD, Reg, remove_matching};
use crate::model::{DestinationVerdict, Outcome, ReaderOutcome, ReplicaFacts};

/// Latency buckets (seconds): fine below a minute, then up to beyond RTC's 15 minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];

/// Probe durations: coarser, since /metrics carries one histogram per destination.
const DURATION_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];

/// Series per (replication, destination): the verdicts and what they measured.
pub(super) struct DestinationVecs {
    pub(super) probe_success: GaugeVec,
    pub(super) probes_total: IntCounterVec,
    pub(super) verdict: GaugeVec,
    pub(super) replication_latency: HistogramVec,
    pub(super) last_replication_latency: GaugeVec,
    pub(super) replica_kms_key_match: GaugeVec,
    pub(super) replica_readable: GaugeVec,
    pub(super) last_probe_timestamp: GaugeVec,
    pub(super) last_success_timestamp: GaugeVec,
    pub(super) probe_duration: HistogramVec,
    pub(super) finding: GaugeVec,
    pub(super) readers: ReaderVecs,
}

/// Series per (replication, destination, reader): what each reader's read concluded.
pub(super) struct ReaderVecs {
    pub(super) probes_total: IntCounterVec,
    pub(super) readable: GaugeVec,
    pub(super) verdict: GaugeVec,
}

impl ReaderVecs {
    fn new(r: &Reg) -> ReaderVecs {
        const RDR: &[&str] = &["replication", "destination", "reader"];
        const RDRO: &[&str] = &["replication", "destination", "reader", "outcome"];
        ReaderVecs {
            probes_total: r.counter(
                "replicanary_reader_probes_total",
                "Reader outcomes: each reader's ranged read of the probe's replica, as itself.",
                RDRO,
            ),
            readable: r.gauge(
                "replicanary_reader_readable",
                "1 if the reader read the latest replica, 0 if not; absent while skipped.",
                RDR,
            ),
            verdict: r.gauge(
                "replicanary_reader_verdict",
                "1 for a reader's standing outcome: its latest other than error (nothing concluded); absent while skipped (no replica to read). What the reader alerts key on.",
                RDRO,
            ),
        }
    }

    fn remove(&self, labels: &[(&str, &str)]) {
        remove_matching(&self.probes_total, labels);
        remove_matching(&self.readable, labels);
        remove_matching(&self.verdict, labels);
    }
}

impl DestinationVecs {
    pub(super) fn new(r: &Reg) -> DestinationVecs {
        const RDO: &[&str] = &["replication", "destination", "outcome"];
        DestinationVecs {
            probe_success: r.gauge(
                "replicanary_probe_success",
                "1 if the last finished probe of this destination was ok, else 0.",
                RD,
            ),
            probes_total: r.counter("replicanary_probes_total", "Probe verdicts by outcome.", RDO),
            verdict: r.gauge(
                "replicanary_verdict",
                "1 for the standing verdict of a destination: its latest verdict other than error (a transient fault concludes nothing).",
                RDO,
            ),
            replication_latency: r.histogram(
                "replicanary_replication_latency_seconds",
                "Time from the canary's PutObject to the first poll that saw COMPLETED.",
                LATENCY_BUCKETS,
            ),
            last_replication_latency: r.gauge(
                "replicanary_last_replication_latency_seconds",
                "The latest measured replication latency.",
                RD,
            ),
            replica_kms_key_match: r.gauge(
                "replicanary_replica_kms_key_match",
                "1 if the latest replica was encrypted with the expected KMS key.",
                RD,
            ),
            replica_readable: r.gauge(
                "replicanary_replica_readable",
                "1 if the latest replica could be read by the destination role.",
                RD,
            ),
            last_probe_timestamp: r.gauge(
                "replicanary_last_probe_timestamp_seconds",
                "Unix time of the latest verdict.",
                RD,
            ),
            last_success_timestamp: r.gauge(
                "replicanary_last_success_timestamp_seconds",
                "Unix time of the latest ok verdict.",
                RD,
            ),
            probe_duration: r.histogram(
                "replicanary_probe_duration_seconds",
                "Duration of the whole probe, from PutObject to the last verdict.",
                DURATION_BUCKETS,
            ),
            finding: r.gauge(
                "replicanary_finding",
                "1 while a diagnosis finding holds for this destination.",
                &["replication", "destination", "finding"],
            ),
            readers: ReaderVecs::new(r),
        }
    }

    /// Removes the series whose labels include every one of `labels` (a replication, or
    /// one destination of it).
    pub(super) fn remove(&self, labels: &[(&str, &str)]) {
        remove_matching(&self.probe_success, labels);
        remove_matching(&self.probes_total, labels);
        remove_matching(&self.verdict, labels);
        remove_matching(&self.replication_latency, labels);
        remove_matching(&self.last_replication_latency, labels);
        remove_matching(&self.replica_kms_key_match, labels);
        remove_matching(&self.replica_readable, labels);
        remove_matching(&self.last_probe_timestamp, labels);
        remove_matching(&self.last_success_timestamp, labels);
        remove_matching(&self.probe_duration, labels);
        remove_matching(&self.finding, labels);
        self.readers.remove(labels);
    }
}

impl Metrics {
    /// Exports every outcome of a destination at 0, and its success gauge at 0.
    pub fn register_destination(&self, replication: &str, destination: &str) {
        for o in Outcome::ALL {
            self.dest
                .probes_total
                .with_label_values(&[replication, destination, o.as_str()]);
        }
        self.dest
            .probe_success
            .with_label_values(&[replication, destination]);
    }

    /// Exports every reader outcome of a destination's readers at 0; a reader no longer
    /// listed loses its series.
    pub fn register_readers(&self, replication: &str, destination: &str, readers: &[&str]) {
        let vecs = &self.dest.readers;
        for family in vecs.probes_total.collect() {
            for m in family.get_metric() {
                let l: HashMap<&str, &str> = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                let gone = l.get("replication") == Some(&replication)
                    && l.get("destination") == Some(&destination)
                    && l.get("reader").is_some_and(|r| !readers.contains(r));
                if let (true, Some(reader)) = (gone, l.get("reader")) {
                    vecs.remove(&[
                        ("replication", replication),
                        ("destination", destination),
                        ("reader", reader),
                    ]);
                }
            }
        }
        for reader in readers {
            for o in ReaderOutcome::ALL {
                vecs.probes_total.with_label_values(&[
                    replication,
                    destination,
                    reader,
                    o.as_str(),
                ]);
            }
        }
    }

    /// Every reader's outcome of one verdict: counted, and readability as it claims.
    pub fn record_readers(&self, v: &DestinationVerdict) {
        let vecs = &self.dest.readers;
        for r in &v.readers {
            let labels = [
                v.replication.as_str(),
                v.destination.as_str(),
                r.reader.as_str(),
            ];
            vecs.probes_total
                .with_label_values(&[labels[0], labels[1], labels[2], r.outcome.as_str()])
                .inc();
            if r.outcome != ReaderOutcome::Error {
                // The standing outcome moves: the others' series go.
                for o in ReaderOutcome::ALL {
                    if o != r.outcome || o == ReaderOutcome::Skipped {
                        let _ = vecs.verdict.remove_label_values(&[
                            labels[0],
                            labels[1],
                            labels[2],
                            o.as_str(),
                        ]);
                    }
                }
                if r.outcome != ReaderOutcome::Skipped {
                    vecs.verdict
                        .with_label_values(&[labels[0], labels[1], labels[2], r.outcome.as_str()])
                        .set(1.0);
                }
            }
            match r.outcome.readable() {
                Some(ok) => vecs
                    .readable
                    .with_label_values(&labels)
                    .set(f64::from(u8::from(ok))),
                // Nothing to read: readability claims nothing.
                None if r.outcome == ReaderOutcome::Skipped => {
                    let _ = vecs.readable.remove_label_values(&labels);
                }
                // A transient fault: the last claim stands.
                None => {}
            }
        }
    }

    /// Updates every series a verdict speaks for.
    pub fn record_verdict(&self, v: &DestinationVerdict) {
        let rd = [v.replication.as_str(), v.destination.as_str()];
        let ok = v.outcome == Outcome::Ok;
        self.dest
            .probes_total
            .with_label_values(&[rd[0], rd[1], v.outcome.as_str()])
            .inc();
        self.dest
            .probe_success
            .with_label_values(&rd)
            .set(if ok { 1.0 } else { 0.0 });
        let now = v.finished_unix();
        self.dest
            .last_probe_timestamp
            .with_label_values(&rd)
            .set(now);
        if ok {
            self.dest
                .last_success_timestamp
                .with_label_values(&rd)
                .set(now);
        }
        if let Some(latency) = v.latency {
            let secs = latency.as_secs_f64();
            self.dest
                .replication_latency
                .with_label_values(&rd)
                .observe(secs);
            self.dest
                .last_replication_latency
                .with_label_values(&rd)
                .set(secs);
        }
        self.record_replica(rd, &v.replica);
        self.record_standing(v);
    }

    /// Key match and readability of the latest replica, when the probe learnt them.
    fn record_replica(&self, rd: [&str; 2], replica: &ReplicaFacts) {
        if let Some(m) = replica.key_matches {
            self.dest
                .replica_kms_key_match
                .with_label_values(&rd)
                .set(f64::from(u8::from(m)));
        }
        match replica.readable {
            Some(r) => self
                .dest
                .replica_readable
                .with_label_values(&rd)
                .set(f64::from(u8::from(r))),
            // An archived replica was not read: readability claims nothing for it.
            None if replica.read_skipped => {
                let _ = self.dest.replica_readable.remove_label_values(&rd);
            }
            None => {}
        }
    }

    /// The standing verdict and the findings: series that move from one label to another.
    /// A conclusive verdict's outcome is at 1 and no other outcome of the destination is
    /// exported; an `error` leaves the standing one as it is.
    fn record_standing(&self, v: &DestinationVerdict) {
        let (r, d) = (v.replication.as_str(), v.destination.as_str());
        if v.outcome.is_conclusive() {
            for other in Outcome::ALL.into_iter().filter(|o| *o != v.outcome) {
                let _ = self
                    .dest
                    .verdict
                    .remove_label_values(&[r, d, other.as_str()]);
            }
            self.dest
                .verdict
                .with_label_values(&[r, d, v.outcome.as_str()])
                .set(1.0);
        }
        if let Some(findings) = &v.findings {
            let present: BTreeSet<&'static str> = findings.iter().map(|f| f.id.as_str()).collect();
            let mut shown = self.findings_shown();
            let ever = shown.entry((r.to_owned(), d.to_owned())).or_default();
            for id in ever.union(&present) {
                let value = if present.contains(id) { 1.0 } else { 0.0 };
                self.dest.finding.with_label_values(&[r, d, id]).set(value);
            }
            ever.extend(present);
        }
    }

    pub fn observe_probe_duration(&self, replication: &str, destination: &str, seconds: f64) {
        self.dest
            .probe_duration
            .with_label_values(&[replication, destination])
            .observe(seconds);
    }
}

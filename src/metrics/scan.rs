//! Series of the background scan: objects per class of the last complete pass, when it
//! ended, and the progress of the pass under way.

use prometheus::GaugeVec;

use super::{Metrics, Reg, remove_matching};
use crate::model::ScanClass;

/// Series of the background scan, per replication (and destination, class).
pub(super) struct ScanVecs {
    pub(super) objects: GaugeVec,
    pub(super) last_complete: GaugeVec,
    pub(super) progress: GaugeVec,
}

impl ScanVecs {
    pub(super) fn new(r: &Reg) -> ScanVecs {
        ScanVecs {
            objects: r.gauge(
                "replicanary_scan_objects",
                "Objects per class in the last complete scan of a replication, per destination.",
                &["replication", "destination", "class"],
            ),
            last_complete: r.gauge(
                "replicanary_scan_last_complete_timestamp_seconds",
                "Unix time when the last complete scan of a replication ended.",
                &["replication"],
            ),
            progress: r.gauge(
                "replicanary_scan_progress_objects",
                "Objects judged so far in the scan under way (0 between passes).",
                &["replication"],
            ),
        }
    }

    pub(super) fn remove(&self, labels: &[(&str, &str)]) {
        remove_matching(&self.objects, labels);
        remove_matching(&self.last_complete, labels);
        remove_matching(&self.progress, labels);
    }
}

impl Metrics {
    /// A complete scan pass of a replication: its counts per destination and class (every
    /// class of [`ScanClass::ALL`], 0 included) and when it ended.
    pub fn record_scan_pass(
        &self,
        replication: &str,
        counts: &[(&str, [u64; ScanClass::ALL.len()])],
        ended_unix: f64,
    ) {
        for (destination, per_class) in counts {
            for (class, n) in ScanClass::ALL.iter().zip(per_class) {
                self.scan
                    .objects
                    .with_label_values(&[replication, destination, class.as_str()])
                    .set(*n as f64);
            }
        }
        self.scan
            .last_complete
            .with_label_values(&[replication])
            .set(ended_unix);
        self.scan
            .progress
            .with_label_values(&[replication])
            .set(0.0);
    }

    /// Objects judged so far in the scan pass under way.
    pub fn set_scan_progress(&self, replication: &str, objects: u64) {
        self.scan
            .progress
            .with_label_values(&[replication])
            .set(objects as f64);
    }
}

//! Series per replication (and side): its interval, AWS calls, cleanup failures and
//! retained canaries.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec};

use super::{Metrics, Reg, remove_matching};
use crate::model::Side;

/// Series per replication (and side).
pub(super) struct ReplicationVecs {
    pub(super) probe_interval: GaugeVec,
    pub(super) aws_requests: IntCounterVec,
    pub(super) cleanup_failures: IntCounterVec,
    pub(super) canaries_retained: IntGaugeVec,
}

impl ReplicationVecs {
    pub(super) fn new(r: &Reg) -> ReplicationVecs {
        const RS: &[&str] = &["replication", "side"];
        ReplicationVecs {
            probe_interval: r.gauge(
                "replicanary_probe_interval_seconds",
                "The configured interval between canaries of a replication (for staleness alerts).",
                &["replication"],
            ),
            aws_requests: r.counter(
                "replicanary_aws_requests_total",
                "AWS API calls made, by side, operation and result code.",
                &["replication", "side", "operation", "code"],
            ),
            cleanup_failures: r.counter(
                "replicanary_cleanup_failures_total",
                "Canary deletes that failed (they are retried).",
                RS,
            ),
            canaries_retained: r.int_gauge(
                "replicanary_canaries_retained",
                "Canary versions whose delete waits for their Object Lock retention to pass.",
                RS,
            ),
        }
    }

    pub(super) fn remove(&self, replication: &str) {
        let labels = [("replication", replication)];
        remove_matching(&self.probe_interval, &labels);
        remove_matching(&self.aws_requests, &labels);
        remove_matching(&self.cleanup_failures, &labels);
        remove_matching(&self.canaries_retained, &labels);
    }
}

impl Metrics {
    /// Exports a replication's own series: its interval, its cleanup counters at 0.
    pub fn register_replication(&self, replication: &str, interval_seconds: f64) {
        self.rep
            .probe_interval
            .with_label_values(&[replication])
            .set(interval_seconds);
        for side in Side::ALL {
            let labels = [replication, side.as_str()];
            self.rep.cleanup_failures.with_label_values(&labels);
            self.rep.canaries_retained.with_label_values(&labels);
        }
    }

    /// Counts one AWS call (`code`: `ok` or a bounded error code).
    pub fn aws_request(&self, replication: &str, side: Side, operation: &str, code: &str) {
        self.rep
            .aws_requests
            .with_label_values(&[replication, side.as_str(), operation, code])
            .inc();
    }

    pub fn cleanup_failed(&self, replication: &str, side: Side) {
        self.rep
            .cleanup_failures
            .with_label_values(&[replication, side.as_str()])
            .inc();
    }

    /// How many canary versions of one side wait for their Object Lock retention.
    pub fn set_retained(&self, replication: &str, side: Side, count: usize) {
        self.rep
            .canaries_retained
            .with_label_values(&[replication, side.as_str()])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

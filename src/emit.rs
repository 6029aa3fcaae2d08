//! The one event per verdict: its log line, every metric derived from it and its row on
//! the status board, written together from the same value so that logs, metrics and the
//! status page never disagree. Nothing else records verdicts.

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::model::{DestinationVerdict, Outcome};
use crate::status::Board;

/// Where a verdict goes besides the log: the metrics and the status board.
#[derive(Debug, Clone)]
pub struct Sinks {
    pub metrics: Arc<Metrics>,
    pub board: Arc<Board>,
}

impl Sinks {
    pub fn new(metrics: Arc<Metrics>, board: Arc<Board>) -> Sinks {
        Sinks { metrics, board }
    }

    /// Exports a destination before its first verdict: every outcome at 0 on `/metrics`,
    /// "waiting for the first probe" on the status page.
    pub fn register_destination(&self, replication: &str, destination: &str) {
        self.metrics.register_destination(replication, destination);
        self.board.register_destination(replication, destination);
    }

    /// Removes a replication from `/metrics` and from the status page.
    pub fn remove_replication(&self, replication: &str) {
        self.metrics.remove_replication(replication);
        self.board.remove_replication(replication);
    }

    /// Records a (re)load of the configuration at `at_unix`: its gauges, and the status
    /// page's header.
    pub fn config_loaded(&self, successful: bool, at_unix: f64) {
        self.metrics.config_loaded(successful, at_unix);
        self.board.config_loaded(successful, at_unix);
    }

    /// This instance's shard: `replicanary_shard_info`, and the status page's header.
    pub fn set_shard(&self, index: u32, count: u32) {
        self.metrics.set_shard(index, count);
        self.board.set_shard(index, count);
    }

    /// Removes one destination of a replication from `/metrics` and the status page.
    pub fn remove_destination(&self, replication: &str, destination: &str) {
        self.metrics.remove_destination(replication, destination);
        self.board.remove_destination(replication, destination);
    }
}

/// Writes the verdict's log line, updates its metrics and its row on the status board;
/// `probe_seconds` is the whole probe's duration.
pub fn verdict(sinks: &Sinks, v: &DestinationVerdict, probe_seconds: f64) {
    sinks
        .metrics
        .observe_probe_duration(&v.replication, &v.destination, probe_seconds);
    sinks.metrics.record_verdict(v);
    sinks.metrics.record_readers(v);
    sinks.board.record(v);
    log(v);
}

fn log(v: &DestinationVerdict) {
    let latency_seconds = v.latency.map(|d| d.as_secs_f64());
    let findings = v.findings.as_ref().map(|f| {
        f.iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    let e = v.aws_error.as_ref();
    let retain_until = v
        .replica
        .retain_until
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let read = v
        .replica
        .read_skipped
        .then_some("skipped: the replica is in an archive storage class; judged by its HeadObject");
    // `restore=ok,analytics=undecryptable`: every reader's outcome, on the verdict's line.
    let readers = (!v.readers.is_empty()).then(|| {
        v.readers
            .iter()
            .map(|r| format!("{}={}", r.reader, r.outcome.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    });
    macro_rules! verdict_event {
        ($level:expr) => {
            tracing::event!(
                $level,
                replication = %v.replication,
                destination = %v.destination,
                outcome = v.outcome.as_str(),
                latency_seconds,
                key = v.key.as_deref(),
                version_id = v.version_id.as_deref(),
                expected_kms_key = %v.expected_kms_key,
                replica_kms_key = v.replica.kms_key.as_deref(),
                storage_class = v.replica.storage_class.as_deref(),
                read,
                retain_until = retain_until.as_deref(),
                reason = v.reason.as_deref(),
                aws_operation = e.map(|e| e.operation),
                aws_error_code = e.and_then(|e| e.code.as_deref()),
                aws_error_message = e.and_then(|e| e.message.as_deref()),
                aws_request_id = e.and_then(|e| e.request_id.as_deref()),
                findings = findings.as_deref().filter(|f| !f.is_empty()),
                readers = readers.as_deref(),
                "probe verdict"
            )
        };
    }
    match v.outcome {
        Outcome::Ok => verdict_event!(tracing::Level::INFO),
        _ => verdict_event!(tracing::Level::WARN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AwsError, ErrorClass, Finding, FindingId};
    use crate::status::ProcessState;

    /// The log line, the metrics and the board come from one value: what one shows, the
    /// others show.
    #[test]
    fn one_verdict_reaches_the_metrics_and_the_board() {
        let sinks = Sinks::new(Arc::new(Metrics::new()), Arc::new(Board::new()));
        sinks.register_destination("r", "d");
        assert!(
            sinks
                .metrics
                .encode()
                .contains("replicanary_probes_total{destination=\"d\",outcome=\"undecryptable\",replication=\"r\"} 0")
        );
        assert!(sinks.board.snapshot()[0].latest.is_none());

        let mut v = DestinationVerdict::new("r", "d", Outcome::Undecryptable)
            .with_error(Some(AwsError::new("GetObject", ErrorClass::AccessDenied)));
        v.findings = Some(vec![Finding {
            id: FindingId::ReplicaKmsDenied,
            explanation: "KMS refuses".to_owned(),
            fix: "grant kms:Decrypt".to_owned(),
        }]);
        verdict(&sinks, &v, 1.5);

        let text = sinks.metrics.encode();
        assert!(text.contains(
            "replicanary_probes_total{destination=\"d\",outcome=\"undecryptable\",replication=\"r\"} 1"
        ));
        assert!(text.contains(
            "replicanary_finding{destination=\"d\",finding=\"replica_kms_denied\",replication=\"r\"} 1"
        ));
        let row = &sinks.board.snapshot()[0];
        let shown = row.latest.as_ref().expect("recorded");
        assert_eq!(shown.outcome, Outcome::Undecryptable);
        assert_eq!(shown.finished_at, v.finished_at);
        assert_eq!(row.findings, v.findings.clone().unwrap_or_default());
        assert_eq!(
            row.last_error.as_ref().map(|e| e.error.operation),
            Some("GetObject")
        );
    }

    /// A load and the shard reach both: the gauges on `/metrics`, the page's header on the
    /// board (the board keeps the failed load's time, which no series holds).
    #[test]
    fn loads_and_the_shard_reach_the_metrics_and_the_board() {
        let sinks = Sinks::new(Arc::new(Metrics::new()), Arc::new(Board::new()));
        assert_eq!(sinks.board.process_state(), ProcessState::default());
        sinks.set_shard(1, 3);
        sinks.config_loaded(true, 100.0);
        sinks.config_loaded(false, 160.0);
        let s = sinks.board.process_state();
        assert_eq!(s.shard, Some((1, 3)));
        assert_eq!(s.last_load, Some((false, 160.0)));
        assert_eq!(s.last_successful_load, Some(100.0));
        let text = sinks.metrics.encode();
        assert!(text.contains("replicanary_config_last_reload_successful 0"));
        assert!(text.contains("replicanary_shard_info{count=\"3\",index=\"1\"} 1"));
    }
}

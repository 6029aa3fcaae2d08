//! The one event per verdict: its log line and every metric derived from it, written
//! together so that logs and metrics never disagree. Nothing else records verdicts.

use crate::metrics::Metrics;
use crate::model::{DestinationVerdict, Outcome};

/// Writes the verdict's log line and updates its metrics; `probe_seconds` is the whole
/// probe's duration.
pub fn verdict(metrics: &Metrics, v: &DestinationVerdict, probe_seconds: f64) {
    metrics.observe_probe_duration(&v.replication, &v.destination, probe_seconds);
    metrics.record_verdict(v);
    log(v);
}

fn log(v: &DestinationVerdict) {
    let latency_seconds = v.latency.map(|d| d.as_secs_f64());
    let findings = v
        .findings
        .as_ref()
        .map(|f| f.iter().map(|f| f.id).collect::<Vec<_>>().join(","));
    let e = v.aws_error.as_ref();
    let retain_until = v
        .replica
        .retain_until
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let read = v
        .replica
        .read_skipped
        .then_some("skipped: the replica is in an archive storage class; judged by its HeadObject");
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
                "probe verdict"
            )
        };
    }
    match v.outcome {
        Outcome::Ok => verdict_event!(tracing::Level::INFO),
        _ => verdict_event!(tracing::Level::WARN),
    }
}

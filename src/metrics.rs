//! Every metric replicanary exports: names, help, labels and buckets in one place
//! (SPEC.md §7 is the contract). Label values come from enums, never from messages.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::probe::verdict::{DestinationVerdict, Outcome};

/// Which account's role made a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

/// Latency buckets (seconds): fine below a minute, then up to beyond RTC's 15 minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];

/// Probe durations: coarser, since /metrics carries one histogram per destination.
const DURATION_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];

pub struct Metrics {
    registry: Registry,
    probe_success: GaugeVec,
    probes_total: IntCounterVec,
    replication_latency: HistogramVec,
    last_replication_latency: GaugeVec,
    replica_kms_key_match: GaugeVec,
    replica_readable: GaugeVec,
    last_probe_timestamp: GaugeVec,
    last_success_timestamp: GaugeVec,
    probe_duration: HistogramVec,
    aws_requests: IntCounterVec,
    canaries_outstanding: IntGauge,
    cleanup_failures: IntCounterVec,
    probe_interval: GaugeVec,
    finding: GaugeVec,
    /// Findings exported at 1 per (replication, destination), to drop to 0 when resolved.
    findings_shown: Mutex<HashMap<(String, String), Vec<&'static str>>>,
    scheduling_lag: prometheus::Histogram,
}

const RD: &[&str] = &["replication", "destination"];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // Registration only fails on duplicate or malformed names, fixed at compile time.
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            r.register(Box::new(c.clone()))
                .expect("metric definitions are valid and unique");
            c
        }
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            reg(
                &registry,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), RD)
                    .expect("valid metric"),
            )
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let m = Metrics {
            probe_success: gauge(
                "replicanary_probe_success",
                "1 if the last finished probe of this destination was ok, else 0.",
                RD,
            ),
            probes_total: counter(
                "replicanary_probes_total",
                "Probe verdicts by outcome.",
                &["replication", "destination", "outcome"],
            ),
            replication_latency: histogram(
                "replicanary_replication_latency_seconds",
                "Time from the canary's PutObject to the first poll that saw COMPLETED.",
                LATENCY_BUCKETS,
            ),
            last_replication_latency: gauge(
                "replicanary_last_replication_latency_seconds",
                "The latest measured replication latency.",
                RD,
            ),
            replica_kms_key_match: gauge(
                "replicanary_replica_kms_key_match",
                "1 if the latest replica was encrypted with the expected KMS key.",
                RD,
            ),
            replica_readable: gauge(
                "replicanary_replica_readable",
                "1 if the latest replica could be read by the destination role.",
                RD,
            ),
            last_probe_timestamp: gauge(
                "replicanary_last_probe_timestamp_seconds",
                "Unix time of the latest verdict.",
                RD,
            ),
            last_success_timestamp: gauge(
                "replicanary_last_success_timestamp_seconds",
                "Unix time of the latest ok verdict.",
                RD,
            ),
            probe_duration: histogram(
                "replicanary_probe_duration_seconds",
                "Duration of the whole probe, from PutObject to the last verdict.",
                DURATION_BUCKETS,
            ),
            aws_requests: counter(
                "replicanary_aws_requests_total",
                "AWS API calls made, by side, operation and result code.",
                &["replication", "side", "operation", "code"],
            ),
            canaries_outstanding: reg(
                &registry,
                IntGauge::new(
                    "replicanary_canaries_outstanding",
                    "Canary object versions written and not yet deleted.",
                )
                .expect("valid metric"),
            ),
            cleanup_failures: counter(
                "replicanary_cleanup_failures_total",
                "Canary deletes that failed (they are retried).",
                &["replication", "side"],
            ),
            finding: gauge(
                "replicanary_finding",
                "1 while a diagnosis finding holds for this destination.",
                &["replication", "destination", "finding"],
            ),
            findings_shown: Mutex::new(HashMap::new()),
            probe_interval: gauge(
                "replicanary_probe_interval_seconds",
                "The configured interval between canaries of a replication (for staleness alerts).",
                &["replication"],
            ),
            scheduling_lag: reg(
                &registry,
                prometheus::Histogram::with_opts(
                    HistogramOpts::new(
                        "replicanary_scheduling_lag_seconds",
                        "How late probes start against their planned slot.",
                    )
                    .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
                )
                .expect("valid metric"),
            ),
            registry,
        };
        let build_info = reg(
            &m.registry,
            IntGaugeVec::new(
                Opts::new(
                    "replicanary_build_info",
                    "Always 1; the version is a label.",
                ),
                &["version"],
            )
            .expect("valid metric"),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// Exports every outcome of a destination at 0, so that rate() and absent() work from
    /// the first scrape.
    pub fn register_destination(&self, replication: &str, destination: &str) {
        for o in Outcome::ALL {
            self.probes_total
                .with_label_values(&[replication, destination, o.as_str()]);
        }
        self.probe_success
            .with_label_values(&[replication, destination]);
    }

    pub fn register_replication(&self, replication: &str, interval_seconds: f64) {
        self.probe_interval
            .with_label_values(&[replication])
            .set(interval_seconds);
        // Failure counters exported at 0, so their first increase is seen.
        for side in [Side::Source, Side::Destination] {
            self.cleanup_failures
                .with_label_values(&[replication, side.as_str()]);
        }
    }

    pub fn observe_scheduling_lag(&self, seconds: f64) {
        self.scheduling_lag.observe(seconds);
    }

    pub fn record_verdict(&self, v: &DestinationVerdict) {
        let l = [v.replication.as_str(), v.destination.as_str()];
        let ok = v.outcome == Outcome::Ok;
        self.probes_total
            .with_label_values(&[l[0], l[1], v.outcome.as_str()])
            .inc();
        self.probe_success
            .with_label_values(&l)
            .set(if ok { 1.0 } else { 0.0 });
        let now = v.finished_unix();
        self.last_probe_timestamp.with_label_values(&l).set(now);
        if ok {
            self.last_success_timestamp.with_label_values(&l).set(now);
        }
        if let Some(latency) = v.latency {
            self.replication_latency
                .with_label_values(&l)
                .observe(latency.as_secs_f64());
            self.last_replication_latency
                .with_label_values(&l)
                .set(latency.as_secs_f64());
        }
        if let Some(m) = v.replica.key_matches {
            self.replica_kms_key_match
                .with_label_values(&l)
                .set(f64::from(u8::from(m)));
        }
        if let Some(findings) = &v.findings {
            let ids: Vec<&'static str> = findings.iter().map(|f| f.id).collect();
            self.set_findings(l[0], l[1], &ids);
        }
        if let Some(r) = v.replica.readable {
            self.replica_readable
                .with_label_values(&l)
                .set(f64::from(u8::from(r)));
        }
    }

    /// Exports `present` at 1 and drops findings no longer present to 0.
    pub fn set_findings(&self, replication: &str, destination: &str, present: &[&'static str]) {
        let mut shown = self
            .findings_shown
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let before = shown
            .entry((replication.to_owned(), destination.to_owned()))
            .or_default();
        for id in before.iter().filter(|id| !present.contains(id)) {
            self.finding
                .with_label_values(&[replication, destination, id])
                .set(0.0);
        }
        for id in present {
            self.finding
                .with_label_values(&[replication, destination, id])
                .set(1.0);
        }
        *before = present.to_vec();
    }

    pub fn observe_probe_duration(&self, replication: &str, destination: &str, seconds: f64) {
        self.probe_duration
            .with_label_values(&[replication, destination])
            .observe(seconds);
    }

    pub fn aws_request(&self, replication: &str, side: Side, operation: &str, code: &str) {
        self.aws_requests
            .with_label_values(&[replication, side.as_str(), operation, code])
            .inc();
    }

    pub fn canary_written(&self) {
        self.canaries_outstanding.inc();
    }

    pub fn canary_deleted(&self) {
        self.canaries_outstanding.dec();
    }

    pub fn canaries_outstanding(&self) -> i64 {
        self.canaries_outstanding.get()
    }

    pub fn cleanup_failed(&self, replication: &str, side: Side) {
        self.cleanup_failures
            .with_label_values(&[replication, side.as_str()])
            .inc();
    }

    /// The Prometheus text exposition of everything.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

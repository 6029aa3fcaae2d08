//! Every metric replicanary exports: names, help, labels and buckets in one place, on the
//! `prometheus` crate (a [`Registry`] of typed vectors, encoded by its `TextEncoder`).
//!
//! Label values come from config names and the vocabulary's enums (`Outcome`, `Side`,
//! finding ids), AWS API names and bounded error codes — never from messages, keys or ids.
//! Presence rules: every outcome of a destination is exported at 0 from its registration
//! (so `rate()` and `absent()` work from the first scrape); latency histograms appear with
//! the first latency; a finding stays exported (at 0) once it stopped holding; a removed
//! replication takes all its series with it.
//!
//! A scrape is encoded one metric family at a time (see [`Metrics::encode_to`]): at a
//! thousand replications, snapshotting every family at once (`Registry::gather`) holds
//! tens of megabytes of transient structures; one family at a time holds a few.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::Mutex;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::model::{DestinationVerdict, Outcome, ReaderOutcome, ReplicaFacts, ScanClass, Side};

/// Latency buckets (seconds): fine below a minute, then up to beyond RTC's 15 minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];

/// Probe durations: coarser, since /metrics carries one histogram per destination.
const DURATION_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];

/// How late probes start against their planned slot.
const LAG_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];

const RD: &[&str] = &["replication", "destination"];

/// What is exported per destination beyond the vectors themselves.
#[derive(Debug, Default)]
struct Shown {
    /// Every finding ever exported for the destination (at 1 while it holds, else 0).
    findings: BTreeSet<&'static str>,
    /// The standing verdict's outcome (`replicanary_verdict`).
    verdict: Option<Outcome>,
}

pub struct Metrics {
    /// Checks names at registration (duplicates, validity); the tests gather from it.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests' oracle"))]
    registry: Registry,
    /// Every collector, in the order of their family names: what a scrape encodes.
    collectors: Vec<Box<dyn Collector>>,
    dest: DestinationVecs,
    rep: ReplicationVecs,
    process: ProcessSeries,
    scan: ScanVecs,
    shown: Mutex<HashMap<(String, String), Shown>>,
    /// What the status page reads back: the shard and the last configuration load.
    state: Mutex<ProcessState>,
}

/// Process facts the status page shows, kept as set (the series hold only numbers).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessState {
    /// `(index, count)` as last set.
    pub shard: Option<(u32, u32)>,
    /// The last (re)load of the configuration: whether it succeeded, and when (Unix time).
    pub last_load: Option<(bool, f64)>,
    /// Unix time of the last successful (re)load.
    pub last_successful_load: Option<f64>,
}

/// Series per (replication, destination): the verdicts and what they measured.
struct DestinationVecs {
    probe_success: GaugeVec,
    probes_total: IntCounterVec,
    verdict: GaugeVec,
    replication_latency: HistogramVec,
    last_replication_latency: GaugeVec,
    replica_kms_key_match: GaugeVec,
    replica_readable: GaugeVec,
    last_probe_timestamp: GaugeVec,
    last_success_timestamp: GaugeVec,
    probe_duration: HistogramVec,
    finding: GaugeVec,
    readers: ReaderVecs,
}

/// Series per (replication, destination, reader): what each reader's read concluded.
struct ReaderVecs {
    probes_total: IntCounterVec,
    readable: GaugeVec,
    verdict: GaugeVec,
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

/// Series per replication (and side).
struct ReplicationVecs {
    probe_interval: GaugeVec,
    aws_requests: IntCounterVec,
    cleanup_failures: IntCounterVec,
    canaries_retained: IntGaugeVec,
}

/// Series of the whole process.
struct ProcessSeries {
    canaries_outstanding: IntGauge,
    scheduling_lag: Histogram,
    config_reload_successful: IntGauge,
    config_reload_timestamp: Gauge,
    discovered_replications: IntGaugeVec,
    discovery_errors: IntCounterVec,
    unmonitored_rules: IntGaugeVec,
    shard_info: IntGaugeVec,
}

/// Creates metrics and registers them. Creation and registration only fail for invalid,
/// duplicate or inconsistent names — fixed at compile time and caught by the unit tests.
struct Reg<'r> {
    registry: &'r Registry,
    collectors: RefCell<Vec<Box<dyn Collector>>>,
}

impl Reg<'_> {
    fn add<T: Collector + Clone + 'static>(&self, made: prometheus::Result<T>) -> T {
        match made.and_then(|c| self.registry.register(Box::new(c.clone())).map(|()| c)) {
            Ok(c) => {
                self.collectors.borrow_mut().push(Box::new(c.clone()));
                c
            }
            Err(e) => panic!("metric registration: {e}"),
        }
    }
    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels))
    }
    fn int_gauge(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }
    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(HistogramVec::new(opts, RD))
    }
}

impl DestinationVecs {
    fn new(r: &Reg) -> DestinationVecs {
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
    fn remove(&self, labels: &[(&str, &str)]) {
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

impl ReplicationVecs {
    fn new(r: &Reg) -> ReplicationVecs {
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

    fn remove(&self, replication: &str) {
        let labels = [("replication", replication)];
        remove_matching(&self.probe_interval, &labels);
        remove_matching(&self.aws_requests, &labels);
        remove_matching(&self.cleanup_failures, &labels);
        remove_matching(&self.canaries_retained, &labels);
    }
}

/// Series of the background scan, per replication (and destination, class).
struct ScanVecs {
    objects: GaugeVec,
    last_complete: GaugeVec,
    progress: GaugeVec,
}

impl ScanVecs {
    fn new(r: &Reg) -> ScanVecs {
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

    fn remove(&self, labels: &[(&str, &str)]) {
        remove_matching(&self.objects, labels);
        remove_matching(&self.last_complete, labels);
        remove_matching(&self.progress, labels);
    }
}

impl ProcessSeries {
    fn new(r: &Reg) -> ProcessSeries {
        let scalar = |name: &str, help: &str| r.add(IntGauge::with_opts(Opts::new(name, help)));
        let lag = HistogramOpts::new(
            "replicanary_scheduling_lag_seconds",
            "How late probes start against their planned slot.",
        )
        .buckets(LAG_BUCKETS.to_vec());
        let build_info = r.int_gauge(
            "replicanary_build_info",
            "Always 1; the version is a label.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        ProcessSeries {
            canaries_outstanding: scalar(
                "replicanary_canaries_outstanding",
                "Canary object versions written and not yet deleted.",
            ),
            scheduling_lag: r.add(Histogram::with_opts(lag)),
            config_reload_successful: scalar(
                "replicanary_config_last_reload_successful",
                "1 if the last (re)load of the configuration succeeded.",
            ),
            config_reload_timestamp: r.add(Gauge::with_opts(Opts::new(
                "replicanary_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful (re)load of the configuration.",
            ))),
            discovered_replications: r.int_gauge(
                "replicanary_discovered_replications",
                "Replications found by the last discovery, per source account and region.",
                &["source_account", "region"],
            ),
            discovery_errors: r.counter(
                "replicanary_discovery_errors_total",
                "Buckets or rules discovery could not read or probe, by reason.",
                &["source_account", "region", "reason"],
            ),
            unmonitored_rules: r.int_gauge(
                "replicanary_unmonitored_replication_rules",
                "Enabled replication rules no probe stands for (buckets that did not opt in; opted-in rules discovery cannot probe), per source account and region.",
                &["source_account", "region"],
            ),
            shard_info: r.int_gauge(
                "replicanary_shard_info",
                "Always 1; this instance's shard index and the shard count.",
                &["index", "count"],
            ),
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = Reg {
            registry: &registry,
            collectors: RefCell::new(Vec::new()),
        };
        let (dest, rep, process, scan) = (
            DestinationVecs::new(&r),
            ReplicationVecs::new(&r),
            ProcessSeries::new(&r),
            ScanVecs::new(&r),
        );
        let mut collectors = r.collectors.into_inner();
        collectors.sort_by_cached_key(|c| c.desc().first().map(|d| d.fq_name.clone()));
        Metrics {
            dest,
            rep,
            process,
            scan,
            shown: Mutex::new(HashMap::new()),
            state: Mutex::new(ProcessState::default()),
            registry,
            collectors,
        }
    }

    fn shown(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Shown>> {
        self.shown.lock().unwrap_or_else(|e| e.into_inner())
    }

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

    /// Removes every series of a replication (it was removed from the configuration).
    pub fn remove_replication(&self, replication: &str) {
        self.dest.remove(&[("replication", replication)]);
        self.rep.remove(replication);
        self.scan.remove(&[("replication", replication)]);
        self.shown().retain(|(r, _), _| r != replication);
    }

    /// Removes every series of one destination of a replication (the replication changed
    /// and no longer has it); the replication's own series stay.
    pub fn remove_destination(&self, replication: &str, destination: &str) {
        self.dest
            .remove(&[("replication", replication), ("destination", destination)]);
        remove_matching(
            &self.scan.objects,
            &[("replication", replication), ("destination", destination)],
        );
        self.shown()
            .remove(&(replication.to_owned(), destination.to_owned()));
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
    fn record_standing(&self, v: &DestinationVerdict) {
        let (r, d) = (v.replication.as_str(), v.destination.as_str());
        let mut shown = self.shown();
        let s = shown.entry((r.to_owned(), d.to_owned())).or_default();
        if v.outcome.is_conclusive() && s.verdict != Some(v.outcome) {
            if let Some(old) = s.verdict.replace(v.outcome) {
                let _ = self.dest.verdict.remove_label_values(&[r, d, old.as_str()]);
            }
            self.dest
                .verdict
                .with_label_values(&[r, d, v.outcome.as_str()])
                .set(1.0);
        }
        if let Some(findings) = &v.findings {
            let present: BTreeSet<&'static str> = findings.iter().map(|f| f.id.as_str()).collect();
            for id in s.findings.union(&present) {
                let value = if present.contains(id) { 1.0 } else { 0.0 };
                self.dest.finding.with_label_values(&[r, d, id]).set(value);
            }
            s.findings.extend(present);
        }
    }

    pub fn observe_probe_duration(&self, replication: &str, destination: &str, seconds: f64) {
        self.dest
            .probe_duration
            .with_label_values(&[replication, destination])
            .observe(seconds);
    }

    pub fn observe_scheduling_lag(&self, seconds: f64) {
        self.process.scheduling_lag.observe(seconds);
    }

    /// Counts one AWS call (`code`: `ok` or a bounded error code).
    pub fn aws_request(&self, replication: &str, side: Side, operation: &str, code: &str) {
        self.rep
            .aws_requests
            .with_label_values(&[replication, side.as_str(), operation, code])
            .inc();
    }

    pub fn canary_written(&self) {
        self.process.canaries_outstanding.inc();
    }

    pub fn canary_deleted(&self) {
        self.process.canaries_outstanding.dec();
    }

    pub fn canaries_outstanding(&self) -> i64 {
        self.process.canaries_outstanding.get()
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

    /// Records a (re)load of the configuration; `at_unix` is used when it succeeded.
    pub fn config_loaded(&self, successful: bool, at_unix: f64) {
        self.process
            .config_reload_successful
            .set(i64::from(successful));
        if successful {
            self.process.config_reload_timestamp.set(at_unix);
        }
        let mut state = self.state();
        state.last_load = Some((successful, at_unix));
        if successful {
            state.last_successful_load = Some(at_unix);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ProcessState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard and the last configuration load, as last recorded.
    pub fn process_state(&self) -> ProcessState {
        *self.state()
    }

    /// The replications the last discovery found in one source account and region.
    pub fn set_discovered(&self, account: &str, region: &str, count: usize) {
        self.process
            .discovered_replications
            .with_label_values(&[account, region])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The enabled replication rules no probe stands for in one source account and region
    /// (discovery's coverage).
    pub fn set_unmonitored_rules(&self, account: &str, region: &str, count: usize) {
        self.process
            .unmonitored_rules
            .with_label_values(&[account, region])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Drops one source account and region's count (coverage turned off, or the account or
    /// region no longer configured).
    pub fn remove_unmonitored_rules(&self, account: &str, region: &str) {
        let _ = self
            .process
            .unmonitored_rules
            .remove_label_values(&[account, region]);
    }

    /// A bucket or rule discovery could not read or probe; `reason` is a bounded keyword.
    pub fn discovery_error(&self, account: &str, region: &str, reason: &str) {
        self.process
            .discovery_errors
            .with_label_values(&[account, region, reason])
            .inc();
    }

    /// This instance's shard (`replicanary_shard_info`).
    pub fn set_shard(&self, index: u32, count: u32) {
        self.process.shard_info.reset();
        self.process
            .shard_info
            .with_label_values(&[&index.to_string(), &count.to_string()])
            .set(1);
        self.state().shard = Some((index, count));
    }

    /// The Prometheus text exposition of everything, whole (the tests' view; `/metrics`
    /// streams [`Metrics::encode_to`]).
    #[cfg(test)]
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = self.encode_to(&mut out) {
            return format!("# encoding failed: {e}\n");
        }
        // The encoder writes UTF-8 only (names, escaped label values, numbers).
        String::from_utf8(out).unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }

    /// Writes the text exposition to `out`, one family at a time: the same text as the
    /// `TextEncoder` over `Registry::gather()` (families by name, empty ones left out,
    /// series ordered by their label values), without holding every family at once.
    pub fn encode_to(&self, out: &mut impl Write) -> prometheus::Result<()> {
        let encoder = TextEncoder::new();
        for collector in &self.collectors {
            let mut families = collector.collect();
            families.retain(|f| !f.get_metric().is_empty());
            families.iter_mut().for_each(sort_series);
            encoder.encode(&families, out)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Orders a family's series by their label values, as `Registry::gather` does.
fn sort_series(family: &mut MetricFamily) {
    fn values(m: &prometheus::proto::Metric) -> impl Iterator<Item = &str> {
        m.get_label().iter().map(|l| l.value())
    }
    family.mut_metric().sort_by(|a, b| values(a).cmp(values(b)));
}

/// Removes every series of `vec` whose labels include every one of `wanted`.
fn remove_matching<B: MetricVecBuilder>(vec: &MetricVec<B>, wanted: &[(&str, &str)]) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            if wanted.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

#[cfg(test)]
mod tests;

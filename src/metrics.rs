//! Every metric replicanary exports: names, help, labels and buckets in one place
//! (SPEC.md §7 is the contract). Label values come from enums, never from messages.
//!
//! The series live in plain structs, one per replication and one per destination, each
//! behind its own mutex, with their label sets rendered once when the series is created;
//! `/metrics` writes the text exposition straight from them. (The `prometheus` crate's
//! `Registry::gather` copied every series into protobuf structs, sorted them and escaped
//! every label value again on each scrape: ~0.2 s for the 6 MB of 1,000 replications.)
//! The exposition is the one the `prometheus` crate wrote — same names, help, types,
//! label names in the same (alphabetical) order, same values, a series present from the
//! same moment on — which the tests below check against that crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

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

    fn index(self) -> usize {
        match self {
            Side::Source => 0,
            Side::Destination => 1,
        }
    }
}

const SIDES: [Side; 2] = [Side::Source, Side::Destination];

/// Latency buckets (seconds): fine below a minute, then up to beyond RTC's 15 minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];

/// Probe durations: coarser, since /metrics carries one histogram per destination.
const DURATION_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];

/// How late probes start against their planned slot.
const LAG_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];

// Names, help texts and types (SPEC.md §7), in the order of the exposition (by name).
const AWS_REQUESTS: &str = "replicanary_aws_requests_total";
const BUILD_INFO: &str = "replicanary_build_info";
const CANARIES_OUTSTANDING: &str = "replicanary_canaries_outstanding";
const CLEANUP_FAILURES: &str = "replicanary_cleanup_failures_total";
const FINDING: &str = "replicanary_finding";
const LAST_PROBE_TIMESTAMP: &str = "replicanary_last_probe_timestamp_seconds";
const LAST_REPLICATION_LATENCY: &str = "replicanary_last_replication_latency_seconds";
const LAST_SUCCESS_TIMESTAMP: &str = "replicanary_last_success_timestamp_seconds";
const PROBE_DURATION: &str = "replicanary_probe_duration_seconds";
const PROBE_INTERVAL: &str = "replicanary_probe_interval_seconds";
const PROBE_SUCCESS: &str = "replicanary_probe_success";
const PROBES_TOTAL: &str = "replicanary_probes_total";
const REPLICA_KMS_KEY_MATCH: &str = "replicanary_replica_kms_key_match";
const REPLICA_READABLE: &str = "replicanary_replica_readable";
const REPLICATION_LATENCY: &str = "replicanary_replication_latency_seconds";
const SCHEDULING_LAG: &str = "replicanary_scheduling_lag_seconds";

const HELP: &[(&str, &str)] = &[
    (
        AWS_REQUESTS,
        "AWS API calls made, by side, operation and result code.",
    ),
    (BUILD_INFO, "Always 1; the version is a label."),
    (
        CANARIES_OUTSTANDING,
        "Canary object versions written and not yet deleted.",
    ),
    (
        CLEANUP_FAILURES,
        "Canary deletes that failed (they are retried).",
    ),
    (
        FINDING,
        "1 while a diagnosis finding holds for this destination.",
    ),
    (LAST_PROBE_TIMESTAMP, "Unix time of the latest verdict."),
    (
        LAST_REPLICATION_LATENCY,
        "The latest measured replication latency.",
    ),
    (
        LAST_SUCCESS_TIMESTAMP,
        "Unix time of the latest ok verdict.",
    ),
    (
        PROBE_DURATION,
        "Duration of the whole probe, from PutObject to the last verdict.",
    ),
    (
        PROBE_INTERVAL,
        "The configured interval between canaries of a replication (for staleness alerts).",
    ),
    (
        PROBE_SUCCESS,
        "1 if the last finished probe of this destination was ok, else 0.",
    ),
    (PROBES_TOTAL, "Probe verdicts by outcome."),
    (
        REPLICA_KMS_KEY_MATCH,
        "1 if the latest replica was encrypted with the expected KMS key.",
    ),
    (
        REPLICA_READABLE,
        "1 if the latest replica could be read by the destination role.",
    ),
    (
        REPLICATION_LATENCY,
        "Time from the canary's PutObject to the first poll that saw COMPLETED.",
    ),
    (
        SCHEDULING_LAG,
        "How late probes start against their planned slot.",
    ),
];

fn help(name: &str) -> &'static str {
    HELP.iter().find(|(n, _)| *n == name).map_or("", |(_, h)| h)
}

/// A histogram: a count per bucket (not cumulative; the last is above every bound).
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Box<[u64]>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1].into_boxed_slice(),
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }
}

/// The series of one (replication, destination). `None`: not exported yet.
#[derive(Debug, Default)]
struct DestSeries {
    probe_success: Option<f64>,
    probes: [Option<u64>; Outcome::ALL.len()],
    replication_latency: Option<Histogram>,
    last_replication_latency: Option<f64>,
    replica_kms_key_match: Option<f64>,
    replica_readable: Option<f64>,
    last_probe_timestamp: Option<f64>,
    last_success_timestamp: Option<f64>,
    probe_duration: Option<Histogram>,
    /// Every finding ever exported for this destination, at 1 while it holds, else 0.
    findings: BTreeMap<&'static str, f64>,
}

#[derive(Debug)]
struct Dest {
    /// `destination="…",replication="…"`
    labels: String,
    /// `destination="…"`
    destination: String,
    /// `replication="…"`
    replication: String,
    series: Mutex<DestSeries>,
}

#[derive(Debug)]
struct AwsSeries {
    side: Side,
    operation: String,
    code: String,
    /// `code="…",operation="…",replication="…",side="…"`
    labels: String,
    count: u64,
}

#[derive(Debug, Default)]
struct RepSeries {
    probe_interval: Option<f64>,
    cleanup_failures: [Option<u64>; 2],
    aws_requests: Vec<AwsSeries>,
}

#[derive(Debug)]
struct Rep {
    /// `replication="…"`
    labels: String,
    series: Mutex<RepSeries>,
    destinations: RwLock<BTreeMap<String, Arc<Dest>>>,
}

pub struct Metrics {
    replications: RwLock<BTreeMap<String, Arc<Rep>>>,
    canaries_outstanding: AtomicI64,
    scheduling_lag: Mutex<Histogram>,
    /// Size of the last exposition, to allocate the next one at once.
    last_size: AtomicUsize,
}

/// A poisoned lock only means a panic elsewhere; the numbers are still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `name="value"`, the value escaped as the text format requires.
fn label(name: &str, value: &str) -> String {
    let mut s = String::with_capacity(name.len() + value.len() + 3);
    s.push_str(name);
    s.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            replications: RwLock::new(BTreeMap::new()),
            canaries_outstanding: AtomicI64::new(0),
            scheduling_lag: Mutex::new(Histogram::new(LAG_BUCKETS)),
            last_size: AtomicUsize::new(0),
        }
    }

    fn rep(&self, replication: &str) -> Arc<Rep> {
        {
            let reps = self.replications.read().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = reps.get(replication) {
                return r.clone();
            }
        }
        let mut reps = self.replications.write().unwrap_or_else(|e| e.into_inner());
        reps.entry(replication.to_owned())
            .or_insert_with(|| {
                Arc::new(Rep {
                    labels: label("replication", replication),
                    series: Mutex::new(RepSeries::default()),
                    destinations: RwLock::new(BTreeMap::new()),
                })
            })
            .clone()
    }

    fn dest(&self, replication: &str, destination: &str) -> Arc<Dest> {
        let rep = self.rep(replication);
        {
            let dests = rep.destinations.read().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = dests.get(destination) {
                return d.clone();
            }
        }
        let mut dests = rep.destinations.write().unwrap_or_else(|e| e.into_inner());
        dests
            .entry(destination.to_owned())
            .or_insert_with(|| {
                let d = label("destination", destination);
                Arc::new(Dest {
                    labels: format!("{d},{}", rep.labels),
                    destination: d,
                    replication: rep.labels.clone(),
                    series: Mutex::new(DestSeries::default()),
                })
            })
            .clone()
    }

    /// Exports every outcome of a destination at 0, so that rate() and absent() work from
    /// the first scrape.
    pub fn register_destination(&self, replication: &str, destination: &str) {
        let d = self.dest(replication, destination);
        let mut s = lock(&d.series);
        for p in &mut s.probes {
            p.get_or_insert(0);
        }
        s.probe_success.get_or_insert(0.0);
    }

    pub fn register_replication(&self, replication: &str, interval_seconds: f64) {
        let r = self.rep(replication);
        let mut s = lock(&r.series);
        s.probe_interval = Some(interval_seconds);
        // Failure counters exported at 0, so their first increase is seen.
        for c in &mut s.cleanup_failures {
            c.get_or_insert(0);
        }
    }

    pub fn observe_scheduling_lag(&self, seconds: f64) {
        lock(&self.scheduling_lag).observe(seconds);
    }

    pub fn record_verdict(&self, v: &DestinationVerdict) {
        let d = self.dest(&v.replication, &v.destination);
        let mut s = lock(&d.series);
        let ok = v.outcome == Outcome::Ok;
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == v.outcome) {
            *s.probes[i].get_or_insert(0) += 1;
        }
        s.probe_success = Some(if ok { 1.0 } else { 0.0 });
        let now = v.finished_unix();
        s.last_probe_timestamp = Some(now);
        if ok {
            s.last_success_timestamp = Some(now);
        }
        if let Some(latency) = v.latency {
            let secs = latency.as_secs_f64();
            s.replication_latency
                .get_or_insert_with(|| Histogram::new(LATENCY_BUCKETS))
                .observe(secs);
            s.last_replication_latency = Some(secs);
        }
        if let Some(m) = v.replica.key_matches {
            s.replica_kms_key_match = Some(f64::from(u8::from(m)));
        }
        if let Some(findings) = &v.findings {
            let ids: Vec<&'static str> = findings.iter().map(|f| f.id).collect();
            Self::show_findings(&mut s, &ids);
        }
        if let Some(r) = v.replica.readable {
            s.replica_readable = Some(f64::from(u8::from(r)));
        }
    }

    /// Exports `present` at 1 and drops findings no longer present to 0.
    fn show_findings(s: &mut DestSeries, present: &[&'static str]) {
        for (id, v) in s.findings.iter_mut() {
            *v = if present.contains(id) { 1.0 } else { 0.0 };
        }
        for id in present {
            s.findings.insert(id, 1.0);
        }
    }

    pub fn observe_probe_duration(&self, replication: &str, destination: &str, seconds: f64) {
        let d = self.dest(replication, destination);
        lock(&d.series)
            .probe_duration
            .get_or_insert_with(|| Histogram::new(DURATION_BUCKETS))
            .observe(seconds);
    }

    pub fn aws_request(&self, replication: &str, side: Side, operation: &str, code: &str) {
        let r = self.rep(replication);
        let mut s = lock(&r.series);
        if let Some(a) = s
            .aws_requests
            .iter_mut()
            .find(|a| a.side == side && a.operation == operation && a.code == code)
        {
            a.count += 1;
            return;
        }
        let labels = format!(
            "{},{},{},{}",
            label("code", code),
            label("operation", operation),
            r.labels,
            label("side", side.as_str())
        );
        s.aws_requests.push(AwsSeries {
            side,
            operation: operation.to_owned(),
            code: code.to_owned(),
            labels,
            count: 1,
        });
    }

    pub fn canary_written(&self) {
        self.canaries_outstanding.fetch_add(1, Ordering::Relaxed);
    }

    pub fn canary_deleted(&self) {
        self.canaries_outstanding.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn canaries_outstanding(&self) -> i64 {
        self.canaries_outstanding.load(Ordering::Relaxed)
    }

    pub fn cleanup_failed(&self, replication: &str, side: Side) {
        let r = self.rep(replication);
        *lock(&r.series).cleanup_failures[side.index()].get_or_insert(0) += 1;
    }

    /// The Prometheus text exposition of everything: families by name, each series'
    /// labels in alphabetical order of their names, as the `prometheus` crate wrote them.
    pub fn encode(&self) -> String {
        let reps: Vec<Arc<Rep>> = self
            .replications
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let dests: Vec<Arc<Dest>> = reps
            .iter()
            .flat_map(|r| {
                r.destinations
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut out = Text::with_capacity(self.last_size.load(Ordering::Relaxed) + 4096);

        // replicanary_aws_requests_total
        out.family(AWS_REQUESTS, "counter", &reps, |out, r| {
            for a in &lock(&r.series).aws_requests {
                out.sample(AWS_REQUESTS, "", &[&a.labels], a.count as f64);
            }
        });
        out.header(BUILD_INFO, "gauge");
        out.sample(
            BUILD_INFO,
            "",
            &[&label("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        out.header(CANARIES_OUTSTANDING, "gauge");
        out.sample(
            CANARIES_OUTSTANDING,
            "",
            &[],
            self.canaries_outstanding() as f64,
        );
        out.family(CLEANUP_FAILURES, "counter", &reps, |out, r| {
            let s = lock(&r.series);
            for side in SIDES {
                if let Some(c) = s.cleanup_failures[side.index()] {
                    let side = label("side", side.as_str());
                    out.sample(CLEANUP_FAILURES, "", &[&r.labels, &side], c as f64);
                }
            }
        });
        out.family(FINDING, "gauge", &dests, |out, d| {
            for (id, v) in &lock(&d.series).findings {
                let f = label("finding", id);
                out.sample(FINDING, "", &[&d.destination, &f, &d.replication], *v);
            }
        });
        for (name, get) in [
            (
                LAST_PROBE_TIMESTAMP,
                (|s: &DestSeries| s.last_probe_timestamp) as fn(&DestSeries) -> Option<f64>,
            ),
            (LAST_REPLICATION_LATENCY, |s| s.last_replication_latency),
            (LAST_SUCCESS_TIMESTAMP, |s| s.last_success_timestamp),
        ] {
            out.dest_gauge(name, &dests, get);
        }
        out.dest_histogram(PROBE_DURATION, &dests, |s| s.probe_duration.as_ref());
        out.family(PROBE_INTERVAL, "gauge", &reps, |out, r| {
            if let Some(v) = lock(&r.series).probe_interval {
                out.sample(PROBE_INTERVAL, "", &[&r.labels], v);
            }
        });
        out.dest_gauge(PROBE_SUCCESS, &dests, |s| s.probe_success);
        out.family(PROBES_TOTAL, "counter", &dests, |out, d| {
            let s = lock(&d.series);
            for (o, c) in Outcome::ALL.iter().zip(s.probes) {
                if let Some(c) = c {
                    out.sample_outcome(d, o.as_str(), c);
                }
            }
        });
        out.dest_gauge(REPLICA_KMS_KEY_MATCH, &dests, |s| s.replica_kms_key_match);
        out.dest_gauge(REPLICA_READABLE, &dests, |s| s.replica_readable);
        out.dest_histogram(REPLICATION_LATENCY, &dests, |s| {
            s.replication_latency.as_ref()
        });
        let lag = lock(&self.scheduling_lag).clone();
        out.header(SCHEDULING_LAG, "histogram");
        out.histogram(SCHEDULING_LAG, "", &lag);

        self.last_size.store(out.buf.len(), Ordering::Relaxed);
        out.buf
    }
}

/// The text exposition being written.
struct Text {
    buf: String,
    /// Families written so far have their header; a family without series has none.
    pending_header: Option<(&'static str, &'static str)>,
    /// The `le` label of each bucket list in use (keyed by the list's address).
    le: Vec<(usize, Vec<String>)>,
}

impl Text {
    fn with_capacity(n: usize) -> Text {
        Text {
            buf: String::with_capacity(n),
            pending_header: None,
            le: Vec::new(),
        }
    }

    fn header(&mut self, name: &'static str, kind: &'static str) {
        self.buf.push_str("# HELP ");
        self.buf.push_str(name);
        self.buf.push(' ');
        self.buf.push_str(help(name));
        self.buf.push_str("\n# TYPE ");
        self.buf.push_str(name);
        self.buf.push(' ');
        self.buf.push_str(kind);
        self.buf.push('\n');
    }

    /// A family over `items`; its header is written before its first series, if any.
    fn family<T>(
        &mut self,
        name: &'static str,
        kind: &'static str,
        items: &[Arc<T>],
        mut each: impl FnMut(&mut Text, &T),
    ) {
        self.pending_header = Some((name, kind));
        for item in items {
            each(self, &**item);
        }
        self.pending_header = None;
    }

    fn flush_header(&mut self) {
        if let Some((name, kind)) = self.pending_header.take() {
            self.header(name, kind);
        }
    }

    fn dest_gauge(
        &mut self,
        name: &'static str,
        dests: &[Arc<Dest>],
        get: fn(&DestSeries) -> Option<f64>,
    ) {
        self.family(name, "gauge", dests, |out, d| {
            let v = get(&lock(&d.series));
            if let Some(v) = v {
                out.sample(name, "", &[&d.labels], v);
            }
        });
    }

    fn dest_histogram(
        &mut self,
        name: &'static str,
        dests: &[Arc<Dest>],
        get: fn(&DestSeries) -> Option<&Histogram>,
    ) {
        self.family(name, "histogram", dests, |out, d| {
            let s = lock(&d.series);
            if let Some(h) = get(&s) {
                out.histogram(name, &d.labels, h);
            }
        });
    }

    /// `name_bucket{labels,le="…"}` cumulative, `+Inf`, `_sum`, `_count`.
    fn histogram(&mut self, name: &'static str, labels: &str, h: &Histogram) {
        self.flush_header();
        let key = h.bounds.as_ptr() as usize;
        let at = match self.le.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                // `le="0.5"} ` … `le="+Inf"} `, rendered once per bucket list and scrape.
                let mut rendered: Vec<String> = h
                    .bounds
                    .iter()
                    .map(|b| {
                        let mut s = String::from("le=\"");
                        push_f64(&mut s, *b);
                        s.push_str("\"} ");
                        s
                    })
                    .collect();
                rendered.push("le=\"+Inf\"} ".to_owned());
                self.le.push((key, rendered));
                self.le.len() - 1
            }
        };
        let mut cumulative = 0;
        for (c, le) in h.counts.iter().zip(&self.le[at].1) {
            cumulative += c;
            self.buf.push_str(name);
            self.buf.push_str("_bucket{");
            if !labels.is_empty() {
                self.buf.push_str(labels);
                self.buf.push(',');
            }
            self.buf.push_str(le);
            push_u64(&mut self.buf, cumulative);
            self.buf.push('\n');
        }
        self.sample(name, "_sum", &[labels], h.sum);
        self.sample(name, "_count", &[labels], h.count as f64);
    }

    /// `name{label,label,…} value`; empty label parts are skipped.
    fn sample(&mut self, name: &str, suffix: &str, labels: &[&str], value: f64) {
        self.flush_header();
        self.buf.push_str(name);
        self.buf.push_str(suffix);
        let mut sep = '{';
        for l in labels.iter().filter(|l| !l.is_empty()) {
            self.buf.push(sep);
            self.buf.push_str(l);
            sep = ',';
        }
        if sep == ',' {
            self.buf.push('}');
        }
        self.buf.push(' ');
        push_f64(&mut self.buf, value);
        self.buf.push('\n');
    }

    /// `replicanary_probes_total{destination,outcome,replication} count`
    fn sample_outcome(&mut self, d: &Dest, outcome: &str, count: u64) {
        self.flush_header();
        self.buf.push_str(PROBES_TOTAL);
        self.buf.push('{');
        self.buf.push_str(&d.destination);
        self.buf.push_str(",outcome=\"");
        self.buf.push_str(outcome);
        self.buf.push_str("\",");
        self.buf.push_str(&d.replication);
        self.buf.push_str("} ");
        push_u64(&mut self.buf, count);
        self.buf.push('\n');
    }
}

/// Decimal digits without the formatting machinery (tens of thousands per scrape).
fn push_u64(buf: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

/// A value as Rust's `Display` for `f64` writes it (what the `prometheus` crate wrote),
/// integers the fast way, infinities as the text format spells them.
fn push_f64(buf: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        if v < 0.0 {
            buf.push('-');
        }
        push_u64(buf, v.abs() as u64);
    } else if v.is_infinite() {
        buf.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(buf, "{v}");
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

#[cfg(test)]
mod tests {
    //! The exposition against the one the `prometheus` crate's registry wrote (the
    //! implementation before this one, kept here as the oracle): same lines, same families
    //! in the same order, after the same calls.

    use std::time::{Duration, SystemTime};

    use prometheus::{
        Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
        Registry, TextEncoder,
    };

    use super::*;
    use crate::diagnose::Finding;

    /// The former implementation, over the `prometheus` crate.
    struct Oracle {
        registry: Registry,
        gauges: BTreeMap<&'static str, GaugeVec>,
        probes_total: IntCounterVec,
        aws_requests: IntCounterVec,
        cleanup_failures: IntCounterVec,
        latency: HistogramVec,
        duration: HistogramVec,
        canaries: IntGauge,
        lag: prometheus::Histogram,
        shown: BTreeMap<(String, String), Vec<&'static str>>,
    }

    impl Oracle {
        fn new() -> Oracle {
            let registry = Registry::new();
            fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
                r.register(Box::new(c.clone())).unwrap();
                c
            }
            let mut gauges = BTreeMap::new();
            for (name, labels) in [
                (PROBE_SUCCESS, RD),
                (LAST_REPLICATION_LATENCY, RD),
                (REPLICA_KMS_KEY_MATCH, RD),
                (REPLICA_READABLE, RD),
                (LAST_PROBE_TIMESTAMP, RD),
                (LAST_SUCCESS_TIMESTAMP, RD),
                (FINDING, &["replication", "destination", "finding"][..]),
                (PROBE_INTERVAL, &["replication"][..]),
            ] {
                let g = GaugeVec::new(Opts::new(name, help(name)), labels).unwrap();
                gauges.insert(name, reg(&registry, g));
            }
            let counter = |name: &str, labels: &[&str]| {
                reg(
                    &registry,
                    IntCounterVec::new(Opts::new(name, help(name)), labels).unwrap(),
                )
            };
            let histogram = |name: &str, buckets: &[f64]| {
                reg(
                    &registry,
                    HistogramVec::new(
                        HistogramOpts::new(name, help(name)).buckets(buckets.to_vec()),
                        RD,
                    )
                    .unwrap(),
                )
            };
            let o = Oracle {
                probes_total: counter(PROBES_TOTAL, &["replication", "destination", "outcome"]),
                aws_requests: counter(AWS_REQUESTS, &["replication", "side", "operation", "code"]),
                cleanup_failures: counter(CLEANUP_FAILURES, &["replication", "side"]),
                latency: histogram(REPLICATION_LATENCY, LATENCY_BUCKETS),
                duration: histogram(PROBE_DURATION, DURATION_BUCKETS),
                canaries: reg(
                    &registry,
                    IntGauge::new(CANARIES_OUTSTANDING, help(CANARIES_OUTSTANDING)).unwrap(),
                ),
                lag: reg(
                    &registry,
                    prometheus::Histogram::with_opts(
                        HistogramOpts::new(SCHEDULING_LAG, help(SCHEDULING_LAG))
                            .buckets(LAG_BUCKETS.to_vec()),
                    )
                    .unwrap(),
                ),
                gauges,
                shown: BTreeMap::new(),
                registry,
            };
            reg(
                &o.registry,
                IntGaugeVec::new(Opts::new(BUILD_INFO, help(BUILD_INFO)), &["version"]).unwrap(),
            )
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
            o
        }

        fn g(&self, name: &str, labels: &[&str]) -> prometheus::Gauge {
            self.gauges[name].with_label_values(labels)
        }

        fn encode(&self) -> String {
            let mut buf = Vec::new();
            TextEncoder::new()
                .encode(&self.registry.gather(), &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        }
    }

    const RD: &[&str] = &["replication", "destination"];

    /// Both implementations, driven by the same calls.
    struct Both {
        new: Metrics,
        old: Oracle,
    }

    impl Both {
        fn register(&mut self, r: &str, interval: f64, dests: &[&str]) {
            self.new.register_replication(r, interval);
            self.old.g(PROBE_INTERVAL, &[r]).set(interval);
            for side in SIDES {
                self.old
                    .cleanup_failures
                    .with_label_values(&[r, side.as_str()]);
            }
            for d in dests {
                self.new.register_destination(r, d);
                for o in Outcome::ALL {
                    self.old.probes_total.with_label_values(&[r, d, o.as_str()]);
                }
                self.old.g(PROBE_SUCCESS, &[r, d]);
            }
        }

        fn findings(&mut self, r: &str, d: &str, present: &[&'static str]) {
            let before = self
                .old
                .shown
                .entry((r.to_owned(), d.to_owned()))
                .or_default()
                .clone();
            for id in before.iter().filter(|id| !present.contains(id)) {
                self.old.g(FINDING, &[r, d, id]).set(0.0);
            }
            for id in present {
                self.old.g(FINDING, &[r, d, id]).set(1.0);
            }
            self.old
                .shown
                .insert((r.to_owned(), d.to_owned()), present.to_vec());
        }

        fn verdict(&mut self, v: &DestinationVerdict) {
            self.new.record_verdict(v);
            let (r, d) = (v.replication.as_str(), v.destination.as_str());
            let ok = v.outcome == Outcome::Ok;
            self.old
                .probes_total
                .with_label_values(&[r, d, v.outcome.as_str()])
                .inc();
            self.old
                .g(PROBE_SUCCESS, &[r, d])
                .set(if ok { 1.0 } else { 0.0 });
            self.old
                .g(LAST_PROBE_TIMESTAMP, &[r, d])
                .set(v.finished_unix());
            if ok {
                self.old
                    .g(LAST_SUCCESS_TIMESTAMP, &[r, d])
                    .set(v.finished_unix());
            }
            if let Some(l) = v.latency {
                self.old
                    .latency
                    .with_label_values(&[r, d])
                    .observe(l.as_secs_f64());
                self.old
                    .g(LAST_REPLICATION_LATENCY, &[r, d])
                    .set(l.as_secs_f64());
            }
            if let Some(m) = v.replica.key_matches {
                self.old
                    .g(REPLICA_KMS_KEY_MATCH, &[r, d])
                    .set(f64::from(u8::from(m)));
            }
            if let Some(f) = &v.findings {
                let ids: Vec<&'static str> = f.iter().map(|f| f.id).collect();
                self.findings(r, d, &ids);
            }
            if let Some(x) = v.replica.readable {
                self.old
                    .g(REPLICA_READABLE, &[r, d])
                    .set(f64::from(u8::from(x)));
            }
        }

        fn duration(&mut self, r: &str, d: &str, s: f64) {
            self.new.observe_probe_duration(r, d, s);
            self.old.duration.with_label_values(&[r, d]).observe(s);
        }

        fn request(&mut self, r: &str, side: Side, op: &str, code: &str) {
            self.new.aws_request(r, side, op, code);
            self.old
                .aws_requests
                .with_label_values(&[r, side.as_str(), op, code])
                .inc();
        }

        fn cleanup_failed(&mut self, r: &str, side: Side) {
            self.new.cleanup_failed(r, side);
            self.old
                .cleanup_failures
                .with_label_values(&[r, side.as_str()])
                .inc();
        }

        fn lag(&mut self, s: f64) {
            self.new.observe_scheduling_lag(s);
            self.old.lag.observe(s);
        }

        fn canary(&mut self, written: bool) {
            if written {
                self.new.canary_written();
                self.old.canaries.inc();
            } else {
                self.new.canary_deleted();
                self.old.canaries.dec();
            }
        }

        /// Same lines (series may be in another order within a family), same headers in
        /// the same order, each family's series right after its header.
        fn assert_same(&self) {
            let (new, old) = (self.new.encode(), self.old.encode());
            let headers = |t: &str| -> Vec<String> {
                t.lines()
                    .filter(|l| l.starts_with('#'))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(headers(&new), headers(&old), "new:\n{new}\nold:\n{old}");
            let families = |t: &str| -> Vec<(String, Vec<String>)> {
                let mut out: Vec<(String, Vec<String>)> = Vec::new();
                for l in t.lines() {
                    if let Some(h) = l.strip_prefix("# TYPE ") {
                        out.push((h.to_owned(), Vec::new()));
                    } else if !l.starts_with('#') {
                        out.last_mut().expect("a header first").1.push(l.to_owned());
                    }
                }
                for (_, lines) in &mut out {
                    lines.sort();
                }
                out
            };
            assert_eq!(families(&new), families(&old), "new:\n{new}\nold:\n{old}");
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn verdict(
        r: &str,
        d: &str,
        outcome: Outcome,
        latency: Option<f64>,
        key_matches: Option<bool>,
        readable: Option<bool>,
        findings: Option<&[&'static str]>,
        at: f64,
    ) -> DestinationVerdict {
        DestinationVerdict {
            replication: r.to_owned(),
            destination: d.to_owned(),
            outcome,
            latency: latency.map(Duration::from_secs_f64),
            key: None,
            version_id: None,
            expected_kms_key: String::new(),
            replica: crate::probe::verdict::ReplicaFacts {
                key_matches,
                readable,
                ..Default::default()
            },
            reason: None,
            aws_error: None,
            findings: findings.map(|ids| {
                ids.iter()
                    .map(|id| Finding {
                        id,
                        explanation: String::new(),
                        fix: String::new(),
                    })
                    .collect()
            }),
            finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(at),
        }
    }

    #[test]
    fn exposition_is_the_prometheus_crates() {
        let mut b = Both {
            new: Metrics::new(),
            old: Oracle::new(),
        };
        b.assert_same();
        b.register("b-rep", 60.0, &["d2", "d1"]);
        b.register("a-rep", 2.5, &["only"]);
        // Label values that need escaping (not valid names, but the encoder must not care).
        b.register("we\"ird\\", 300.0, &["new\nline"]);
        b.assert_same();

        b.lag(0.0004);
        b.lag(0.3);
        b.lag(100.0);
        b.canary(true);
        b.canary(true);
        b.canary(false);
        b.request("b-rep", Side::Source, "PutObject", "ok");
        b.request("b-rep", Side::Source, "PutObject", "ok");
        b.request("b-rep", Side::Destination, "GetObject", "AccessDenied");
        b.request("a-rep", Side::Source, "AssumeRole", "other");
        b.request("we\"ird\\", Side::Destination, "HeadObject", "ok");
        b.cleanup_failed("b-rep", Side::Destination);
        b.duration("b-rep", "d1", 1.0);
        b.duration("b-rep", "d1", 0.25);
        b.duration("a-rep", "only", 7200.0);
        let t = 1_732_000_000.123_456;
        b.verdict(&verdict(
            "b-rep",
            "d1",
            Outcome::Ok,
            Some(1.5),
            Some(true),
            Some(true),
            Some(&[]),
            t,
        ));
        b.verdict(&verdict(
            "b-rep",
            "d2",
            Outcome::WrongKmsKey,
            Some(0.5),
            Some(false),
            Some(true),
            Some(&["rule_replica_kms_key_mismatch", "another_one"]),
            t + 1.0,
        ));
        b.verdict(&verdict(
            "a-rep",
            "only",
            Outcome::Error,
            None,
            None,
            None,
            None,
            1_732_000_000.0,
        ));
        b.assert_same();

        // Findings that stop holding drop to 0 and stay exported.
        b.verdict(&verdict(
            "b-rep",
            "d2",
            Outcome::Undecryptable,
            Some(4000.0),
            None,
            Some(false),
            Some(&["another_one", "third"]),
            t + 2.5,
        ));
        b.verdict(&verdict(
            "we\"ird\\",
            "new\nline",
            Outcome::Ok,
            Some(0.0),
            Some(true),
            Some(true),
            Some(&[]),
            t,
        ));
        Metrics::show_findings(&mut lock(&b.new.dest("a-rep", "only").series), &["x"]);
        b.findings("a-rep", "only", &["x"]);
        Metrics::show_findings(&mut lock(&b.new.dest("a-rep", "only").series), &[]);
        b.findings("a-rep", "only", &[]);
        // A destination never registered (as `check` never does for a typo'd name).
        b.duration("c-rep", "lazy", 3.0);
        b.assert_same();
    }

    #[test]
    fn every_outcome_is_exported_at_zero() {
        let m = Metrics::new();
        m.register_replication("r", 60.0);
        m.register_destination("r", "d");
        let text = m.encode();
        for o in Outcome::ALL {
            let line = format!(
                "replicanary_probes_total{{destination=\"d\",outcome=\"{}\",replication=\"r\"}} 0\n",
                o.as_str()
            );
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn values_are_written_as_display_writes_them() {
        for v in [
            0.0,
            1.0,
            -3.0,
            -1234567.0,
            18_446_744.0,
            999_999_999_999_999.0,
            0.5,
            1e-7,
            123_456.789,
            1_732_000_000.123_456,
            1e20,
            f64::NAN,
        ] {
            let mut s = String::new();
            push_f64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        let mut s = String::new();
        push_f64(&mut s, f64::INFINITY);
        assert_eq!(s, "+Inf");
    }
}

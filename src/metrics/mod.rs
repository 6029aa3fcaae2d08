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

mod destination;
mod process;
mod replication;
mod scan;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::Mutex;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use destination::DestinationVecs;
use process::ProcessSeries;
use replication::ReplicationVecs;
use scan::ScanVecs;

const RD: &[&str] = &["replication", "destination"];

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
    /// Per destination, every finding ever exported for it (at 1 while it holds, else 0):
    /// which `replicanary_finding` series exist, so that a finding that stopped holding
    /// turns to 0 rather than vanishing.
    findings_shown: Mutex<HashMap<(String, String), BTreeSet<&'static str>>>,
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
            findings_shown: Mutex::new(HashMap::new()),
            registry,
            collectors,
        }
    }

    fn findings_shown(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), BTreeSet<&'static str>>> {
        self.findings_shown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Removes every series of a replication (it was removed from the configuration).
    pub fn remove_replication(&self, replication: &str) {
        self.dest.remove(&[("replication", replication)]);
        self.rep.remove(replication);
        self.scan.remove(&[("replication", replication)]);
        self.findings_shown().retain(|(r, _), _| r != replication);
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
        self.findings_shown()
            .remove(&(replication.to_owned(), destination.to_owned()));
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

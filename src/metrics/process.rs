//! Series of the whole process: canaries outstanding, scheduling lag, configuration
//! loads, discovery, coverage and the shard.

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::{Metrics, Reg};

/// How late probes start against their planned slot.
const LAG_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];

/// Series of the whole process.
pub(super) struct ProcessSeries {
    pub(super) canaries_outstanding: IntGauge,
    pub(super) scheduling_lag: Histogram,
    pub(super) config_reload_successful: IntGauge,
    pub(super) config_reload_timestamp: Gauge,
    pub(super) discovered_replications: IntGaugeVec,
    pub(super) discovery_errors: IntCounterVec,
    pub(super) unmonitored_rules: IntGaugeVec,
    pub(super) shard_info: IntGaugeVec,
}

impl ProcessSeries {
    pub(super) fn new(r: &Reg) -> ProcessSeries {
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
    pub fn observe_scheduling_lag(&self, seconds: f64) {
        self.process.scheduling_lag.observe(seconds);
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

    /// Records a (re)load of the configuration; `at_unix` is used when it succeeded (the
    /// status page's header keeps its own account: `status::Board::config_loaded`).
    pub fn config_loaded(&self, successful: bool, at_unix: f64) {
        self.process
            .config_reload_successful
            .set(i64::from(successful));
        if successful {
            self.process.config_reload_timestamp.set(at_unix);
        }
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
    }
}

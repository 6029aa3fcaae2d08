//! Discovery in the daemon: a pass every `discovery.interval`, its replications handed to
//! the reload loop ([`Trigger::Discovered`]), which reconciles the fleet against the
//! configured ones plus these (a configured replication wins for the same rule).
//!
//! A pass also runs at once when the configuration changes what discovery reads or how it
//! probes (`discovery:`, `defaults`, `aws:`), and after every successful reload (`SIGHUP`,
//! `POST /-/reload`): a newly tagged bucket need not wait for the interval. A read that
//! fails keeps what the previous pass found there ([`Discoverer::settle`]); removing
//! `discovery:` from the file stops every discovered replication.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::triggers::Trigger;
use crate::config::{AwsSettings, Config, Discovery, ProbeSettings, Replication};
use crate::discovery::{Discoverer, Pass, Progress};
use crate::estate::{Current, Estate};
use crate::metrics::Metrics;
use crate::status::{Board, Coverage};

/// What a pass needs of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub discovery: Discovery,
    /// The configured replications: the rules they probe are monitored (coverage).
    pub explicit: Vec<Replication>,
    /// Discovered replications' probe settings.
    pub defaults: ProbeSettings,
    pub aws: AwsSettings,
}

impl Settings {
    /// `None` when the configuration has no `discovery:`.
    pub fn of(config: &Config) -> Option<Settings> {
        config.discovery.as_ref().map(|d| Settings {
            discovery: d.clone(),
            explicit: config.replications.clone(),
            defaults: config.defaults.clone(),
            aws: config.aws.clone(),
        })
    }
}

/// The settings a pass runs with, as the reload loop last set them. Every `send` (even of
/// equal settings) asks for a pass now.
pub type SettingsTx = watch::Sender<Option<Settings>>;

/// Starts the discovery loop over the estate in force (the probes' clients); it ends
/// when `stop` is cancelled.
pub fn spawn(
    settings: watch::Receiver<Option<Settings>>,
    triggers: mpsc::Sender<Trigger>,
    estates: Arc<Current>,
    board: Arc<Board>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(discovery_loop(settings, triggers, estates, board, stop))
}

async fn discovery_loop(
    mut settings: watch::Receiver<Option<Settings>>,
    triggers: mpsc::Sender<Trigger>,
    estates: Arc<Current>,
    board: Arc<Board>,
    stop: CancellationToken,
) {
    let mut discoverer = Discoverer::default();
    let mut handed_over = false;
    loop {
        let current = settings.borrow_and_update().clone();
        let wait = match current {
            None => {
                // No discovery (any more): nothing discovered is probed.
                if handed_over && !hand_over(&triggers, Vec::new(), &stop).await {
                    return;
                }
                handed_over = false;
                discoverer.clear_coverage(estates.metrics());
                discoverer = Discoverer::default();
                board.set_coverage(None);
                None
            }
            Some(s) => {
                let estate = estates.estate(&s.aws).await;
                let Some(found) = one_pass(&estate, &s, &mut discoverer, &board, &stop).await
                else {
                    return;
                };
                if !hand_over(&triggers, found, &stop).await {
                    return;
                }
                handed_over = true;
                Some(s.discovery.interval)
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            changed = settings.changed() => if changed.is_err() { return },
            () = sleep_or_forever(wait) => {}
        }
    }
}

/// One pass, settled against the previous ones; `None`: stopped.
async fn one_pass(
    estate: &Estate,
    s: &Settings,
    discoverer: &mut Discoverer,
    board: &Board,
    stop: &CancellationToken,
) -> Option<Vec<Replication>> {
    let metrics: &Metrics = estate.metrics();
    let hints = discoverer.hints();
    let progress = |p: Progress<'_>| tracing::debug!(progress = ?p, "discovery");
    let pass = tokio::select! {
        () = stop.cancelled() => return None,
        pass = estate.discover(&s.discovery, &s.defaults.canary_prefix, &hints, &progress) => pass,
    };
    let found = discoverer.settle(&pass, metrics);
    let unmonitored = discoverer.settle_coverage(&pass, &s.explicit, metrics);
    log_pass(&pass, found.len(), unmonitored.len());
    board.set_coverage(pass.coverage.then(|| Coverage {
        rules: unmonitored,
        at: std::time::SystemTime::now(),
    }));
    Some(found.iter().map(|f| f.replication(&s.defaults)).collect())
}

fn log_pass(pass: &Pass, probed: usize, unmonitored: usize) {
    tracing::info!(
        found = pass.found().count(),
        probed,
        unmonitored_rules = unmonitored,
        skipped = pass.skips().count(),
        errors = pass.skips().filter(|s| s.reason.is_error()).count(),
        buckets_listed = pass.scopes.iter().filter_map(|s| s.listed).sum::<usize>(),
        seconds = pass.took.as_secs_f64(),
        "discovery pass"
    );
}

/// Sends the discovered replications to the reload loop; `false`: stopped.
async fn hand_over(
    triggers: &mpsc::Sender<Trigger>,
    found: Vec<Replication>,
    stop: &CancellationToken,
) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        sent = triggers.send(Trigger::Discovered(found)) => sent.is_ok(),
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

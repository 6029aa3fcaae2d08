//! The background scan of one replication (`scan:` in its settings): a pass over every
//! real object every `scan.interval`, within `scan.rate` requests per second, exporting
//! the last complete pass (metrics and status page). It runs beside the replication's
//! probes in the replication's own task, so a reload that keeps the replication keeps the
//! pass under way, and one that changes or removes it stops the pass.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aws::s3::S3Store;
use crate::config::{Replication, ScanSettings};
use crate::emit::Sinks;
use crate::scan::{Budget, Options, ReplicationScan, Target, scan_replication};
use crate::status::ScanCounts;

/// Objects (so requests) in flight in a background pass: it is bounded by its rate anyway.
const CONCURRENCY: usize = 8;
/// How often the progress gauge is refreshed during a pass.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One replication's background scan, with the stores of its sides.
pub struct Scanner {
    pub replication: Replication,
    pub settings: ScanSettings,
    pub source: S3Store,
    pub destinations: Vec<S3Store>,
    pub sinks: Sinks,
}

impl Scanner {
    /// Passes until `stop`: the first right away, each next one `interval` after the start
    /// of the previous (at once if a pass took longer).
    pub async fn run(self, stop: CancellationToken) {
        let name = self.replication.name.clone();
        self.sinks.metrics.set_scan_progress(&name, 0);
        loop {
            let started = Instant::now();
            let pass = Box::pin(self.pass(&stop)).await;
            if let Some(why) = &pass.incomplete {
                tracing::warn!(replication = %name, error = %why, "scan pass incomplete: the last complete pass stays exported");
            } else if !pass.interrupted {
                self.record(&pass);
            }
            if stop.is_cancelled() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(started + self.settings.interval) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// One pass, the progress gauge kept up to date while it runs.
    async fn pass(&self, stop: &CancellationToken) -> ReplicationScan {
        let rep = &self.replication;
        let budget = Budget::new(self.settings.rate);
        let opts = Options {
            read: self.settings.read,
            concurrency: CONCURRENCY,
            ..Options::default()
        };
        let mut targets: Vec<Target<'_, S3Store>> = self
            .destinations
            .iter()
            .map(|reader| Target {
                reader,
                manifest: None,
            })
            .collect();
        let done = AtomicU64::new(0);
        tracing::info!(replication = %rep.name, rate = self.settings.rate, read = self.settings.read, "scan pass starting");
        let work = scan_replication(rep, &self.source, &mut targets, &opts, &budget, &done, stop);
        tokio::pin!(work);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let pass = loop {
            tokio::select! {
                pass = &mut work => break pass,
                _ = tick.tick() => self.sinks.metrics.set_scan_progress(&rep.name, done.load(Ordering::Relaxed)),
            }
        };
        tracing::info!(
            replication = %rep.name,
            objects = done.load(Ordering::Relaxed),
            requests = budget.requests(),
            seconds = pass.seconds,
            interrupted = pass.interrupted,
            "scan pass ended"
        );
        pass
    }

    /// Exports a complete pass: metrics and status page, from the same counts.
    fn record(&self, pass: &ReplicationScan) {
        let ended = SystemTime::now();
        let unix = ended
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let counts: Vec<(&str, _)> = pass
            .destinations
            .iter()
            .map(|d| (d.destination.as_str(), d.counts))
            .collect();
        self.sinks
            .metrics
            .record_scan_pass(&pass.name, &counts, unix);
        for d in &pass.destinations {
            self.sinks.board.record_scan(
                &pass.name,
                &d.destination,
                ScanCounts {
                    counts: d.counts,
                    ended,
                },
            );
        }
    }
}

/// The scanner of a replication with `scan:` set, over the shared clients.
pub async fn build_scanner(
    rep: &Replication,
    clients: &crate::aws::clients::Clients,
    sinks: &Sinks,
) -> Option<Scanner> {
    let settings = rep.settings.scan.clone()?;
    let s = &rep.source;
    let source = clients
        .store(
            &rep.name,
            crate::model::Side::Source,
            &s.region,
            s.role.as_ref(),
        )
        .await;
    let mut destinations = Vec::with_capacity(rep.destinations.len());
    for d in &rep.destinations {
        destinations.push(
            clients
                .store(
                    &rep.name,
                    crate::model::Side::Destination,
                    &d.region,
                    d.role.as_ref(),
                )
                .await,
        );
    }
    Some(Scanner {
        replication: rep.clone(),
        settings,
        source,
        destinations,
        sinks: sinks.clone(),
    })
}

//! One replication's task: its start-up sweep, then one probe per slot until it is told to
//! stop; then its pending deletes.
//!
//! Scheduling: the first slot is `offset` from the start (the fleet spreads the starts over
//! the interval); later slots follow every `interval` from there. A probe runs inside the
//! task, so a probe that overruns its slot delays the next one (missed slots are skipped)
//! and is never started twice.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aws::{ObjectStore, SetupReader};
use crate::cleanup::{SweepReport, sweep};
use crate::metrics::Metrics;
use crate::model::Side;
use crate::probe::Prober;

/// When a task stops: `stop` ends the schedule (the probe in flight finishes), `abort`
/// cancels the probe in flight (its canary is cleaned up all the same).
#[derive(Clone)]
pub struct Stops {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
}

/// Probes on schedule until `stops.stop`; returns once the pending deletes were tried.
pub async fn replication_loop<S: ObjectStore + SetupReader>(
    mut prober: Prober<S>,
    offset: Duration,
    metrics: Arc<Metrics>,
    stops: Stops,
) {
    let rep = prober.replication.clone();
    let interval = rep.settings.interval;
    let start = Instant::now() + offset;

    if rep.settings.cleanup {
        tokio::select! {
            () = startup_sweep(&prober) => {}
            () = stops.stop.cancelled() => return,
        }
    }

    let mut slot = start.max(Instant::now());
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(slot) => {}
            () = stops.stop.cancelled() => break,
        }
        let lag = Instant::now().saturating_duration_since(slot);
        metrics.observe_scheduling_lag(lag.as_secs_f64());
        tracing::debug!(replication = %rep.name, lag_seconds = lag.as_secs_f64(), "probe starting");
        prober.probe(&stops.abort).await;
        if stops.stop.is_cancelled() {
            break;
        }
        // Next slot strictly in the future: a long probe skips slots, never doubles up.
        let now = Instant::now();
        while slot <= now {
            slot += interval;
        }
    }
    prober.flush_deletes().await;
}

/// Deletes what an earlier process left behind under this replication's prefix.
async fn startup_sweep<S: ObjectStore + SetupReader>(prober: &Prober<S>) {
    let rep = &prober.replication;
    let now = SystemTime::now();
    let prefix = rep.key_prefix();
    let min_age = rep.settings.sweep_min_age;
    let report = sweep(&prober.source, &rep.source.bucket, &prefix, min_age, now).await;
    log_sweep(&rep.name, Side::Source, &rep.source.bucket, report);
    for (d, store) in rep.destinations.iter().zip(&prober.destinations) {
        let report = sweep(store, &d.bucket, &prefix, min_age, now).await;
        log_sweep(&rep.name, Side::Destination, &d.bucket, report);
    }
}

fn log_sweep(replication: &str, side: Side, bucket: &str, r: SweepReport) {
    if r.deleted > 0 || r.failed > 0 {
        tracing::info!(
            replication,
            side = side.as_str(),
            bucket,
            listed = r.listed,
            deleted = r.deleted,
            failed = r.failed,
            "start-up sweep removed leftover canaries"
        );
    }
}

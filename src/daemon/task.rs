//! One replication's task: its sweeps and one probe per slot until it is told to stop;
//! then its pending deletes.
//!
//! Scheduling: the first slot is `offset` from the start (the fleet spreads the starts over
//! the interval); later slots follow every `interval` from there. A probe runs inside the
//! task, so a probe that overruns its slot delays the next one (missed slots are skipped)
//! and is never started twice.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aws::{ObjectStore, SetupReader};
use crate::metrics::Metrics;
use crate::probe::Prober;

/// When a task stops: `stop` ends the schedule (the probe in flight finishes), `abort`
/// cancels the probe in flight (its canary is cleaned up all the same).
#[derive(Clone)]
pub struct Stops {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
}

/// Probes on schedule until `stops.stop`; returns once the pending deletes were tried.
/// Sweeps run in the same task, between two probes: the start-up sweep just before the
/// first probe (at the replication's own offset, so that a thousand replications do not
/// sweep at once), later ones after a probe once `sweep_interval` (±10 %) has passed —
/// never overlapping a probe of the same replication.
pub async fn replication_loop<S: ObjectStore + SetupReader>(
    mut prober: Prober<S>,
    offset: Duration,
    metrics: Arc<Metrics>,
    stops: Stops,
) {
    let rep = prober.replication.clone();
    let interval = rep.settings.interval;
    let mut slot = (Instant::now() + offset).max(Instant::now());
    tokio::select! {
        () = tokio::time::sleep_until(slot) => {}
        () = stops.stop.cancelled() => return,
    }
    let mut next_sweep = None;
    loop {
        let lag = Instant::now().saturating_duration_since(slot);
        metrics.observe_scheduling_lag(lag.as_secs_f64());
        if rep.settings.cleanup && next_sweep.is_none() {
            tokio::select! {
                () = prober.sweep(true, None) => {}
                () = stops.stop.cancelled() => return,
            }
            next_sweep = Some(Instant::now() + jittered(rep.settings.sweep_interval));
        }
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
        // A periodic sweep, between two probes: it starts no call after the next slot.
        if let Some(at) = next_sweep.filter(|at| now >= *at) {
            tokio::select! {
                () = prober.sweep(false, Some(slot.into_std())) => {}
                () = stops.stop.cancelled() => break,
            }
            next_sweep = Some(at.max(Instant::now()) + jittered(rep.settings.sweep_interval));
        }
        tokio::select! {
            () = tokio::time::sleep_until(slot) => {}
            () = stops.stop.cancelled() => break,
        }
    }
    prober.finish().await;
}

/// `every` ± 10 %: replications started together drift apart instead of sweeping in step.
fn jittered(every: Duration) -> Duration {
    every.mul_f64(0.9 + 0.2 * fastrand::f64())
}

//! One replication's task: its sweeps and one probe per slot until it is told to stop;
//! then its pending deletes.
//!
//! Scheduling: the first slot is `offset` from the start (the fleet spreads the starts over
//! the interval); later slots follow every `interval` from there. A probe runs inside the
//! task, so a probe that overruns its slot delays the next one (missed slots are skipped)
//! and is never started twice.
//!
//! The probe, the sweeps and the final deletes are boxed: their futures (the SDK calls'
//! state, ~25 KiB for a probe in a release build) live on the heap only while they run,
//! instead of inside every task's future for the task's whole life — 1,000 idle tasks
//! would otherwise hold ~27 MiB.
//!
//! Sweeps of all replications share one gate ([`SWEEPS_AT_ONCE`] at a time): each lists up
//! to 10,000 versions per bucket on a connection of its own, and without a bound a start
//! (or a reload) of a thousand replications on a short interval would open a thousand
//! connections with their buffers at once — ~30 MiB of peak memory (docs/performance.md).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aws::{ObjectStore, SetupReader};
use crate::metrics::Metrics;
use crate::probe::Prober;

/// Sweeps running at once in the whole process, at most.
pub const SWEEPS_AT_ONCE: usize = 16;

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
/// never overlapping a probe of the same replication. Each sweep first takes a permit of
/// `sweeps` (shared by every task): the start-up sweep waits for one, a periodic sweep
/// that gets none before the next slot is left for after the next probe.
pub async fn replication_loop<S: ObjectStore + SetupReader>(
    mut prober: Prober<S>,
    offset: Duration,
    metrics: Arc<Metrics>,
    sweeps: Arc<Semaphore>,
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
                _ = gated_sweep(&mut prober, &sweeps, None) => {}
                () = stops.stop.cancelled() => return,
            }
            next_sweep = Some(Instant::now() + jittered(rep.settings.sweep_interval));
        }
        tracing::debug!(replication = %rep.name, lag_seconds = lag.as_secs_f64(), "probe starting");
        Box::pin(prober.probe(&stops.abort)).await;
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
            let swept = tokio::select! {
                swept = gated_sweep(&mut prober, &sweeps, Some(slot)) => swept,
                () = stops.stop.cancelled() => break,
            };
            if swept {
                next_sweep = Some(at.max(Instant::now()) + jittered(rep.settings.sweep_interval));
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(slot) => {}
            () = stops.stop.cancelled() => break,
        }
    }
    Box::pin(prober.finish()).await;
}

/// Sweeps once a permit of `gate` is free; `deadline` (a periodic sweep's next slot): no
/// sweep if no permit came before it (returns false), and no call started after it.
async fn gated_sweep<S: ObjectStore + SetupReader>(
    prober: &mut Prober<S>,
    gate: &Semaphore,
    deadline: Option<Instant>,
) -> bool {
    let permit = match deadline {
        None => gate.acquire().await,
        Some(at) => match tokio::time::timeout_at(at, gate.acquire()).await {
            Ok(permit) => permit,
            Err(_) => {
                tracing::debug!(replication = %prober.replication.name, "periodic sweep postponed: other sweeps hold every permit until the next probe");
                return false;
            }
        },
    };
    // The gate is never closed; were it, sweeping unbounded beats never sweeping.
    let _permit = permit.ok();
    Box::pin(prober.sweep(deadline.is_none(), deadline.map(Instant::into_std))).await;
    true
}

/// `every` ± 10 %: replications started together drift apart instead of sweeping in step.
fn jittered(every: Duration) -> Duration {
    every.mul_f64(0.9 + 0.2 * fastrand::f64())
}

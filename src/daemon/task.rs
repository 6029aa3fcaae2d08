//! One replication's task: its sweeps and one probe per slot until it is told to stop;
//! then its pending deletes.
//!
//! A probe round is [`Monitor::probe`], one line per step: the janitor flushes what earlier
//! probes left → the prober probes → the setup cache attaches findings → the janitor takes
//! over what the probe left (and deletes what is due) → the verdicts are emitted. `check`
//! and `audit` use the same [`Monitor`].
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
use crate::cleanup::Janitor;
use crate::diagnose::cache::SetupCache;
use crate::emit::{self, Sinks};
use crate::metrics::Metrics;
use crate::model::{DestinationVerdict, Finding};
use crate::probe::{Prober, Verdicts};

/// Sweeps running at once in the whole process, at most.
pub const SWEEPS_AT_ONCE: usize = 16;

/// One replication's prober with its janitor and its setup cache.
pub struct Monitor<S> {
    pub prober: Prober<S>,
    pub janitor: Janitor,
    pub cache: SetupCache,
}

impl<S: ObjectStore + SetupReader> Monitor<S> {
    pub fn new(prober: Prober<S>) -> Monitor<S> {
        let janitor = Janitor::new(&prober.replication, prober.sinks().metrics.clone());
        Monitor {
            prober,
            janitor,
            cache: SetupCache::default(),
        }
    }

    /// One probe round: its verdicts, with their findings, emitted; its canary left to the
    /// janitor. `Cancelled` when `cancel` stopped the probe first.
    pub async fn probe(&mut self, cancel: &CancellationToken) -> Verdicts {
        let Monitor {
            prober,
            janitor,
            cache,
        } = self;
        // Deletes that failed last time go first, so they cannot pile up.
        janitor.flush(prober.stores()).await;
        let mut probe = prober.probe(cancel).await;
        let (rep, stores) = (&prober.replication, prober.stores());
        cache
            .attach(rep, stores, probe.verdicts.as_mut_slice())
            .await;
        janitor.record(rep, stores, probe.leftovers).await;
        emit_all(prober.sinks(), probe.verdicts.as_slice(), probe.started);
        probe.verdicts
    }

    /// A sweep of every bucket (see `Janitor::sweep`).
    pub async fn sweep(&mut self, startup: bool, deadline: Option<std::time::Instant>) {
        let stores = self.prober.stores();
        self.janitor
            .sweep(&self.prober.replication, stores, startup, deadline)
            .await;
    }

    /// The last deletes, at shutdown.
    pub async fn finish(&mut self) {
        self.janitor.finish(self.prober.stores()).await;
    }

    /// `audit`: the setup checks alone, without a canary. One entry per destination.
    pub async fn audit(&mut self) -> Vec<(String, Vec<Finding>)> {
        let stores = self.prober.stores();
        self.cache.audit(&self.prober.replication, stores).await
    }
}

/// Emits a round's verdicts, each with the round's duration so far.
fn emit_all(sinks: &Sinks, verdicts: &[DestinationVerdict], started: std::time::Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    for v in verdicts {
        emit::verdict(sinks, v, elapsed);
    }
}

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
    prober: Prober<S>,
    offset: Duration,
    metrics: Arc<Metrics>,
    sweeps: Arc<Semaphore>,
    stops: Stops,
) {
    let rep = prober.replication.clone();
    let mut monitor = Monitor::new(prober);
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
                _ = gated_sweep(&mut monitor, &sweeps, None) => {}
                () = stops.stop.cancelled() => return,
            }
            next_sweep = Some(Instant::now() + jittered(rep.settings.sweep_interval));
        }
        tracing::debug!(replication = %rep.name, lag_seconds = lag.as_secs_f64(), "probe starting");
        Box::pin(monitor.probe(&stops.abort)).await;
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
                swept = gated_sweep(&mut monitor, &sweeps, Some(slot)) => swept,
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
    Box::pin(monitor.finish()).await;
}

/// Sweeps once a permit of `gate` is free; `deadline` (a periodic sweep's next slot): no
/// sweep if no permit came before it (returns false), and no call started after it.
async fn gated_sweep<S: ObjectStore + SetupReader>(
    monitor: &mut Monitor<S>,
    gate: &Semaphore,
    deadline: Option<Instant>,
) -> bool {
    let permit = match deadline {
        None => gate.acquire().await,
        Some(at) => match tokio::time::timeout_at(at, gate.acquire()).await {
            Ok(permit) => permit,
            Err(_) => {
                tracing::debug!(replication = %monitor.prober.replication.name, "periodic sweep postponed: other sweeps hold every permit until the next probe");
                return false;
            }
        },
    };
    // The gate is never closed; were it, sweeping unbounded beats never sweeping.
    let _permit = permit.ok();
    Box::pin(monitor.sweep(deadline.is_none(), deadline.map(Instant::into_std))).await;
    true
}

/// `every` ± 10 %: replications started together drift apart instead of sweeping in step.
fn jittered(every: Duration) -> Duration {
    every.mul_f64(0.9 + 0.2 * fastrand::f64())
}

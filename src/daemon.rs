//! `replicanary run`: one task per replication probing on its own schedule, the HTTP
//! endpoints, the sweeps (at start-up, then every `sweep_interval`) and a graceful shutdown.
//!
//! Scheduling: replication i of n first probes at i/n of its interval (spread evenly, the
//! first at once); later slots follow every `interval` from there. A probe runs inside its replication's task, so a
//! probe that overruns its slot delays the next one (missed slots are skipped) and is
//! never started twice. Sweeps run in the same task, between two probes: the start-up sweep
//! just before the first probe, later ones after a probe once `sweep_interval` (±10 %) has
//! passed — never overlapping a probe of the same replication.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aws::clients::{Clients, acting_for};
use crate::aws::s3::S3Store;
use crate::config::{AwsSettings, Config, Replication};
use crate::http::{Shared, router};
use crate::metrics::Metrics;
use crate::model::Side;
use crate::probe::Prober;

/// A prober for one replication, with the (shared) clients of each side.
pub async fn build_prober(
    rep: &Replication,
    clients: &Clients,
    metrics: &Arc<Metrics>,
    aws: &AwsSettings,
) -> Prober<S3Store> {
    let s = &rep.source;
    let source = clients
        .store(&rep.name, Side::Source, &s.region, s.role.as_ref())
        .await;
    let mut destinations = Vec::with_capacity(rep.destinations.len());
    for d in &rep.destinations {
        let store = clients
            .store(&rep.name, Side::Destination, &d.region, d.role.as_ref())
            .await;
        destinations.push(store);
    }
    Prober::new(rep.clone(), source, destinations, metrics.clone())
        .with_attempt_timeout(aws.attempt_timeout)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config, listen: SocketAddr, grace: Duration) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        ready: false.into(),
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let server_stop = CancellationToken::new();
    let server = {
        let stop = server_stop.clone();
        let app = router(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
    };
    tracing::info!(%listen, replications = config.replications.len(), "replicanary started; metrics at http://{listen}/metrics");

    let stop_scheduling = CancellationToken::new();
    let abort_probes = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    metrics.config_loaded(true, unix_now());
    metrics.set_shard(0, 1);
    let clients = Clients::new(&config.aws, metrics.clone()).await;
    let count = config.replications.len();
    for (i, rep) in config.replications.iter().enumerate() {
        let prober = build_prober(rep, &clients, &metrics, &config.aws).await;
        // Replication i of n starts at i/n of its interval: the first probe of the first
        // replication at once, and a thousand replications evenly spread, not in a burst.
        let offset = prober
            .replication
            .settings
            .interval
            .mul_f64(i as f64 / count as f64);
        tasks.spawn(acting_for(
            &rep.name,
            replication_loop(
                prober,
                offset,
                metrics.clone(),
                stop_scheduling.clone(),
                abort_probes.clone(),
            ),
        ));
    }
    shared.ready.store(true, Ordering::SeqCst);
    tracing::debug!(
        aws_clients = clients.len(),
        "S3 clients shared by the replications"
    );

    shutdown_signal().await;
    tracing::info!(
        grace_seconds = grace.as_secs_f64(),
        "shutting down: no new probes; waiting for in-flight probes"
    );
    shared.ready.store(false, Ordering::SeqCst);
    stop_scheduling.cancel();
    drain(tasks, grace, &abort_probes).await;
    server_stop.cancel();
    let _ = server.await;
    tracing::info!(
        canaries_outstanding = metrics.canaries_outstanding(),
        "replicanary stopped"
    );
    Ok(())
}

/// Lets in-flight probes finish for `grace`, then cancels them; their canaries are
/// cleaned up either way.
async fn drain(mut tasks: tokio::task::JoinSet<()>, grace: Duration, abort: &CancellationToken) {
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            "grace period over: cancelling in-flight probes and cleaning up their canaries"
        );
        abort.cancel();
        // Cleanup after cancellation is a few deletes; bound it all the same.
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

async fn replication_loop(
    mut prober: Prober<S3Store>,
    offset: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let rep = prober.replication.clone();
    let interval = rep.settings.interval;
    let mut slot = (Instant::now() + offset).max(Instant::now());
    tokio::select! {
        () = tokio::time::sleep_until(slot) => {}
        () = stop.cancelled() => return,
    }
    let mut next_sweep = None;
    loop {
        let lag = Instant::now().saturating_duration_since(slot);
        metrics.observe_scheduling_lag(lag.as_secs_f64());
        // The start-up sweep, at the replication's own offset (so that a thousand
        // replications do not sweep at once), just before its first probe.
        if rep.settings.cleanup && next_sweep.is_none() {
            tokio::select! {
                () = prober.sweep(true, None) => {}
                () = stop.cancelled() => return,
            }
            next_sweep = Some(Instant::now() + jittered(rep.settings.sweep_interval));
        }
        tracing::debug!(replication = %rep.name, lag_seconds = lag.as_secs_f64(), "probe starting");
        prober.probe(&abort).await;
        if stop.is_cancelled() {
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
                () = stop.cancelled() => break,
            }
            next_sweep = Some(at.max(Instant::now()) + jittered(rep.settings.sweep_interval));
        }
        tokio::select! {
            () = tokio::time::sleep_until(slot) => {}
            () = stop.cancelled() => break,
        }
    }
    prober.finish().await;
}

/// `every` ± 10 %: replications started together drift apart instead of sweeping in step.
fn jittered(every: Duration) -> Duration {
    every.mul_f64(0.9 + 0.2 * fastrand::f64())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT stops replicanary");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

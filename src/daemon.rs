//! `replicanary run`: one task per replication probing on its own schedule, the HTTP
//! endpoints, the start-up sweep and a graceful shutdown.
//!
//! Scheduling: replication i of n first probes at i/n of its interval (spread evenly, the
//! first at once); later slots follow every `interval` from there. A probe runs inside its replication's task, so a
//! probe that overruns its slot delays the next one (missed slots are skipped) and is
//! never started twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aws::clients::{Clients, acting_for};
use crate::aws::s3::S3Store;
use crate::cleanup::sweep;
use crate::config::{AwsSettings, Config, Replication};
use crate::emit::Sinks;
use crate::http::{Shared, router};
use crate::metrics::Metrics;
use crate::model::Side;
use crate::probe::Prober;
use crate::status::Board;

/// A prober for one replication, with the (shared) clients of each side.
pub async fn build_prober(
    rep: &Replication,
    clients: &Clients,
    sinks: &Sinks,
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
    Prober::new(rep.clone(), source, destinations, sinks.clone())
        .with_attempt_timeout(aws.attempt_timeout)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config, listen: SocketAddr, grace: Duration) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let sinks = Sinks::new(metrics.clone(), Arc::new(Board::new()));
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        board: sinks.board.clone(),
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
    tracing::info!(%listen, replications = config.replications.len(), "replicanary started; status page at http://{listen}/ and metrics at http://{listen}/metrics");

    let stop_scheduling = CancellationToken::new();
    let abort_probes = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    metrics.config_loaded(true, unix_now());
    metrics.set_shard(0, 1);
    let clients = Clients::new(&config.aws, metrics.clone()).await;
    let count = config.replications.len();
    for (i, rep) in config.replications.iter().enumerate() {
        let prober = build_prober(rep, &clients, &sinks, &config.aws).await;
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
    let start = Instant::now() + offset;

    if rep.settings.cleanup {
        let sweeping = async {
            let now = SystemTime::now();
            let prefix = rep.key_prefix();
            let min_age = rep.settings.sweep_min_age;
            let report = sweep(&prober.source, &rep.source.bucket, &prefix, min_age, now).await;
            log_sweep(&rep.name, Side::Source, &rep.source.bucket, report);
            for (d, store) in rep.destinations.iter().zip(&prober.destinations) {
                let report = sweep(store, &d.bucket, &prefix, min_age, now).await;
                log_sweep(&rep.name, Side::Destination, &d.bucket, report);
            }
        };
        tokio::select! {
            () = sweeping => {}
            () = stop.cancelled() => return,
        }
    }

    let mut slot = start.max(Instant::now());
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(slot) => {}
            () = stop.cancelled() => break,
        }
        let lag = Instant::now().saturating_duration_since(slot);
        metrics.observe_scheduling_lag(lag.as_secs_f64());
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
    }
    prober.flush_deletes().await;
}

fn log_sweep(replication: &str, side: Side, bucket: &str, r: crate::cleanup::SweepReport) {
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

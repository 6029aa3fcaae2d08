//! `replicanary run`: the HTTP endpoints, the fleet of replication tasks, reloads and a
//! graceful shutdown.
//!
//! - `fleet.rs` — the reconciler: desired vs running replications, one task each;
//! - `task.rs` — one replication's task: sweep, then a probe per slot;
//! - `reload.rs` — the reload loop: merges the sources of replications, reconciles;
//! - `discover.rs` — discovery every `discovery.interval`, its finds sent to the reload loop;
//! - `triggers.rs` — SIGHUP, the configuration file's content polling;
//! - `shard.rs` — which replications this instance probes.

mod discover;
mod fleet;
mod reload;
mod scan;
mod shard;
mod task;
mod triggers;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::emit::Sinks;
use crate::estate::Current;
use crate::http::{Shared, router};
use crate::metrics::Metrics;
use crate::status::Board;
use crate::web::Live;
use fleet::{Fleet, SdkProbers};
use reload::Reloader;
pub use shard::{Shard, ShardError};
pub use task::Monitor;

/// How `run` was asked to behave.
pub struct Options {
    pub listen: SocketAddr,
    /// How long in-flight probes may finish when stopping (shutdown, or a replication
    /// removed or changed by a reload) before they are cancelled.
    pub grace: Duration,
    pub shard: Shard,
    /// How often the configuration file's content is checked; zero: never.
    pub config_poll: Duration,
    /// TLS and basic auth of every endpoint (`--web.config.file`), loaded at start.
    pub web: Arc<Live>,
    /// `--web.enable-lifecycle`: `POST /-/reload` answers (else 403).
    pub lifecycle: bool,
}

/// The configuration `run` starts from: the file, its text and what it says.
pub struct Loaded {
    pub path: PathBuf,
    pub text: String,
    pub config: Config,
}

/// Why the daemon could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the reload loop failed")]
    ReloadLoop(#[source] tokio::task::JoinError),
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(loaded: Loaded, opts: Options) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let sinks = Sinks::new(metrics.clone(), Arc::new(Board::new()));
    let sinks_board = sinks.board.clone();
    let (reload_requests, http_reloads) = mpsc::channel(8);
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        board: sinks.board.clone(),
        ready: false.into(),
        reload: reload_requests,
        lifecycle: opts.lifecycle,
    });
    let listen = opts.listen;
    let (server, server_stop) = serve_http(shared.clone(), listen, opts.web.clone()).await?;

    // Triggers are installed before probing starts: a SIGHUP must never end the process.
    let (triggers, trigger_queue, stop_triggers) = install_triggers(&loaded, &opts);

    let shard = opts.shard;
    sinks.set_shard(shard.index(), shard.count());
    let configured = loaded.config.replications.len();
    // One pool of clients for the probes and discovery alike.
    let estates = Arc::new(Current::new(metrics.clone()));
    let makers = SdkProbers::new(estates.clone(), &loaded.config.aws, sinks.clone()).await;
    let fleet = Fleet::new(makers, &loaded.config.aws, sinks.clone(), opts.grace);
    let mut reloader = Reloader::start(
        loaded.path,
        &loaded.text,
        loaded.config,
        shard,
        fleet,
        sinks,
    )
    .await;
    reloader.reload_web_too(opts.web.clone());
    let discovering = discover::spawn(
        reloader.watch_discovery(),
        triggers,
        estates,
        sinks_board,
        stop_triggers.clone(),
    );
    tracing::info!(
        %listen,
        replications = configured,
        probed_here = reloader.running(),
        shard_index = shard.index(),
        shard_count = shard.count(),
        config_poll_seconds = opts.config_poll.as_secs_f64(),
        tls = opts.web.tls(),
        lifecycle = opts.lifecycle,
        "replicanary started; status page at {scheme}://{listen}/ and metrics at {scheme}://{listen}/metrics",
        scheme = if opts.web.tls() { "https" } else { "http" },
    );
    let serving = tokio::spawn(reload::serve(
        reloader,
        trigger_queue,
        http_reloads,
        stop_triggers.clone(),
    ));
    shared.ready.store(true, Ordering::SeqCst);

    shutdown_signal().await;
    tracing::info!(
        grace_seconds = opts.grace.as_secs_f64(),
        "shutting down: no new probes; waiting for in-flight probes"
    );
    shared.ready.store(false, Ordering::SeqCst);
    stop_triggers.cancel();
    let _ = discovering.await;
    let reloader = serving.await.map_err(Error::ReloadLoop)?;
    reloader.into_fleet().shutdown().await;
    server_stop.cancel();
    let _ = server.await;
    tracing::info!(
        canaries_outstanding = metrics.canaries_outstanding(),
        "replicanary stopped"
    );
    Ok(())
}

/// SIGHUP and the file poll, as messages to the reload loop; the sender is left for the
/// discovery loop. Cancelling the token stops them all.
fn install_triggers(
    loaded: &Loaded,
    opts: &Options,
) -> (
    mpsc::Sender<triggers::Trigger>,
    mpsc::Receiver<triggers::Trigger>,
    CancellationToken,
) {
    let (triggers, trigger_queue) = mpsc::channel(16);
    let stop_triggers = CancellationToken::new();
    triggers::listen_sighup(triggers.clone(), stop_triggers.clone());
    if !opts.config_poll.is_zero() {
        let loaded_content = Some(triggers::fingerprint(&loaded.text));
        let (path, period) = (loaded.path.clone(), opts.config_poll);
        triggers::spawn_file_poll(
            path,
            period,
            loaded_content,
            triggers::Cause::FileChanged,
            triggers.clone(),
            stop_triggers.clone(),
        );
        // The web configuration and its certificate files: a rotated certificate is
        // served without a SIGHUP.
        for path in opts.web.watched_files() {
            let loaded = triggers::read_fingerprint(&path);
            triggers::spawn_file_poll(
                path,
                opts.config_poll,
                loaded,
                triggers::Cause::WebFileChanged,
                triggers.clone(),
                stop_triggers.clone(),
            );
        }
    }
    (triggers, trigger_queue, stop_triggers)
}

/// Serves the endpoints on `listen` (behind the web configuration's TLS and auth) until
/// the returned token is cancelled.
async fn serve_http(
    shared: Arc<Shared>,
    listen: SocketAddr,
    web: Arc<Live>,
) -> Result<(JoinHandle<std::io::Result<()>>, CancellationToken), Error> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
    let stop = CancellationToken::new();
    let app = router(shared);
    let server = tokio::spawn(crate::web::serve(listener, app, web, stop.clone()));
    Ok((server, stop))
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

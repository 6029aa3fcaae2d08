//! The listener: the router behind the basic auth middleware, served in plain HTTP, or —
//! with `tls_server_config` — in TLS only.
//!
//! Over TLS each accepted connection takes the acceptor in force when it arrives (a reload
//! rotates the certificate for new connections; open ones keep theirs). A connection whose
//! first byte is not a TLS handshake is a plain HTTP request: it gets `400` with a one-line
//! reason and is closed, as Go's servers (the exporter-toolkit's) answer it. A handshake
//! that does not finish in [`HANDSHAKE_TIMEOUT`] is dropped.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{Live, require_auth};

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a TLS connection may wait for a request's head, idle keep-alive time included
/// (hyper starts the timer when it waits for the next request). Longer than the usual
/// scrape intervals (15 s to 60 s), so Prometheus keeps reusing its connection instead of
/// a handshake per scrape; short enough that idle or slow clients do not pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(90);

/// How long open connections may finish their requests once `stop` is cancelled.
const DRAIN: Duration = Duration::from_secs(5);

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Serves `app` on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    live: Arc<Live>,
    stop: CancellationToken,
) -> io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        live.clone(),
        require_auth,
    ));
    if !live.tls() {
        return axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    }
    let graceful = GracefulShutdown::new();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let tcp = match tcp {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(acceptor) = live.acceptor() else {
            continue;
        };
        let (app, watcher) = (app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let Some(tls) = handshake(tcp, &acceptor).await else {
                return;
            };
            let service = TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "TLS connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {}
    }
    Ok(())
}

/// The TLS stream, or `None` (the connection is closed) for plain HTTP, a failed or a slow
/// handshake.
async fn handshake(
    mut tcp: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let started = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut first = [0u8; 1];
        let n = tcp.peek(&mut first).await.ok()?;
        if n == 0 {
            return None;
        }
        if first[0] != TLS_HANDSHAKE {
            let _ = tcp.write_all(PLAIN_HTTP_ANSWER).await;
            let _ = tcp.shutdown().await;
            return None;
        }
        match acceptor.accept(tcp).await {
            Ok(tls) => Some(tls),
            Err(e) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                None
            }
        }
    });
    started.await.ok().flatten()
}

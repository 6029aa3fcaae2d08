//! The HTTP endpoints: the status page `/`, `/metrics`, `/healthz`, `/readyz`, and
//! `POST /-/reload`, which asks the daemon to re-read its configuration and answers once
//! that is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::status::Board;
use crate::status::page::{self, ConfigLoad, Header};

/// What the endpoints read.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    /// The latest verdict of every destination, for the status page.
    pub board: Arc<Board>,
    /// True once probing has started, false again when shutdown begins.
    pub ready: AtomicBool,
    /// Where `POST /-/reload` sends its request; the daemon runs one reload at a time.
    pub reload: mpsc::Sender<ReloadRequest>,
}

/// How a reload ended: a short summary, or every configuration error (one line each).
pub type ReloadAnswer = Result<String, Vec<String>>;

/// A reload asked for over HTTP, answered on `reply` once it is done.
pub struct ReloadRequest {
    pub reply: oneshot::Sender<ReloadAnswer>,
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .with_state(shared)
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    // Thousands of replications make megabytes of text: encode them on the blocking pool,
    // not on the runtime's workers, so that a scrape never delays a probe.
    let metrics = s.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.encode()).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// `POST /-/reload`: 200 with a summary, 400 with every configuration error (the running
/// configuration stays), 503 once shutdown has begun.
async fn reload(State(s): State<Arc<Shared>>) -> Response {
    let (reply, answer) = oneshot::channel();
    if s.reload.send(ReloadRequest { reply }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match answer.await {
        Ok(Ok(summary)) => (StatusCode::OK, format!("{summary}\n")).into_response(),
        Ok(Err(errors)) => {
            let mut body = errors.join("\n");
            body.push('\n');
            (StatusCode::BAD_REQUEST, body).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

/// `GET /`: the status page. Rendered on the blocking pool like `/metrics`: thousands of
/// destinations make a page of megabytes.
async fn status_page(State(s): State<Arc<Shared>>) -> Response {
    let (metrics, board) = (s.metrics.clone(), s.board.clone());
    let render = move || page::render(&board.snapshot(), &header(&metrics), SystemTime::now());
    match tokio::task::spawn_blocking(render).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                // Defence in depth behind the escaping: no script, no outside resource.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response(),
    }
}

/// The page's header, read from the metrics: the page shows what `/metrics` exports.
fn header(metrics: &Metrics) -> Header {
    let state = metrics.process_state();
    let at = |unix: f64| UNIX_EPOCH + Duration::try_from_secs_f64(unix).unwrap_or_default();
    Header {
        version: env!("CARGO_PKG_VERSION"),
        shard: state.shard,
        config: state.last_load.map(|(successful, unix)| ConfigLoad {
            successful,
            at: at(unix),
            last_success: state.last_successful_load.map(at),
        }),
        canaries_outstanding: metrics.canaries_outstanding(),
    }
}

//! The HTTP endpoints: the status page `/`, `/metrics`, `/healthz`, `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
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

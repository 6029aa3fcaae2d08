//! The HTTP endpoints: the status page `/`, `/metrics`, `/healthz`, `/readyz`, and
//! `POST /-/reload`, which asks the daemon to re-read its configuration and answers once
//! that is done (only with `--web.enable-lifecycle`; 403 otherwise). TLS and basic auth
//! are in front of all of them (`web/`), not here.
//!
//! `/metrics` answers gzip when the scraper asks for it (`Accept-Encoding: gzip`, as
//! Prometheus does): at a thousand replications the text is megabytes and compresses
//! about twentyfold. Encoding and compression both run on the blocking pool; the gzip
//! form is compressed as it is encoded, and the plain form is streamed in chunks as it is
//! encoded, so the plain text is never held whole (6.8 MB at 1,000 replications).

use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flate2::Compression;
use flate2::write::GzEncoder;
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
    /// `--web.enable-lifecycle`: without it `POST /-/reload` is refused (403).
    pub lifecycle: bool,
}

/// How a reload ended: a short summary, or why it was refused.
pub type ReloadAnswer = Result<String, ReloadRefused>;

/// A refused reload: every error of the configuration (and web configuration) files, one
/// line each (file, field path, message). The running configuration stays.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .lines.join("\n"))]
pub struct ReloadRefused {
    lines: Vec<String>,
}

impl ReloadRefused {
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

impl From<Vec<String>> for ReloadRefused {
    fn from(lines: Vec<String>) -> ReloadRefused {
        ReloadRefused { lines }
    }
}

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

const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// gzip level for /metrics and the status page. Level 1 is measured in docs/performance.md
/// (/metrics and gzip): most of the size reduction of the default level 6 for a fraction
/// of its CPU.
const GZIP_LEVEL: u32 = 1;

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers);
    // Thousands of replications make megabytes of text: encode (and compress) them on the
    // blocking pool, not on the runtime's workers, so that a scrape never delays a probe.
    let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(EXPOSITION));
    if gzip {
        let metrics = s.metrics.clone();
        match tokio::task::spawn_blocking(move || gzipped(&metrics)).await {
            Ok(Some(compressed)) => {
                let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                return ([content_type, encoding, vary], compressed).into_response();
            }
            // gzip failed: plain text is always acceptable.
            Ok(None) => {}
            Err(_) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response();
            }
        }
    }
    ([content_type, vary], plain_body(s.metrics.clone())).into_response()
}

/// Bytes of plain text handed to the connection at a time.
const PLAIN_CHUNK: usize = 64 * 1024;

/// The plain exposition, streamed while the blocking pool encodes it: at most a few chunks
/// exist at once. An encoding error cuts the body short (the scrape fails, as it should).
fn plain_body(metrics: Arc<Metrics>) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let mut out = BufWriter::with_capacity(PLAIN_CHUNK, Chunks(tx.clone()));
        let encoded = metrics
            .encode_to(&mut out)
            .map_err(io::Error::other)
            .and_then(|()| out.flush());
        if let Err(e) = encoded
            && !tx.is_closed()
        {
            tracing::warn!(error = %e, "/metrics: encoding failed; the scrape is cut short");
            let _ = tx.blocking_send(Err(e));
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

/// Sends what is written, as chunks of the body; fails once the scraper is gone.
struct Chunks(mpsc::Sender<io::Result<Bytes>>);

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the scraper went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The exposition, gzipped while it is encoded (None if that failed: the caller sends
/// it plain).
fn gzipped(metrics: &Metrics) -> Option<Vec<u8>> {
    let gz = gzip_encoder();
    // The encoder writes a line in many small pieces: hand them to gzip in batches.
    let mut out = BufWriter::with_capacity(64 * 1024, gz);
    metrics.encode_to(&mut out).ok()?;
    out.into_inner().ok()?.finish().ok()
}

/// Whether the request accepts a gzip body: a `gzip` (or `x-gzip`) coding in
/// Accept-Encoding whose weight is not zero (RFC 9110 §12.5.3). `*` is not taken as
/// gzip: plain text is always acceptable, so a scraper that wants gzip names it.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let weight = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok());
            (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
                && weight.is_some_and(|q| q > 0.0)
        })
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// The answer to `POST /-/reload` without `--web.enable-lifecycle`.
pub const LIFECYCLE_DISABLED: &str = "Lifecycle API is not enabled: start replicanary with --web.enable-lifecycle (SIGHUP still reloads)\n";

/// `POST /-/reload`: 200 with a summary, 400 with every configuration error (the running
/// configuration stays), 503 once shutdown has begun; 403 without `--web.enable-lifecycle`.
async fn reload(State(s): State<Arc<Shared>>) -> Response {
    if !s.lifecycle {
        return (StatusCode::FORBIDDEN, LIFECYCLE_DISABLED).into_response();
    }
    let (reply, answer) = oneshot::channel();
    if s.reload.send(ReloadRequest { reply }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match answer.await {
        Ok(Ok(summary)) => (StatusCode::OK, format!("{summary}\n")).into_response(),
        Ok(Err(refused)) => {
            let mut body = refused.to_string();
            body.push('\n');
            (StatusCode::BAD_REQUEST, body).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

/// `GET /`: the status page. Rendered on the blocking pool like `/metrics`: thousands of
/// destinations make a page of megabytes (3.9 MB at 1,000 with their history), so it is
/// gzipped, like `/metrics`, for a browser that asks (every browser does).
async fn status_page(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers);
    let (metrics, board) = (s.metrics.clone(), s.board.clone());
    let render = move || {
        let mut head = header(&metrics, &board);
        head.coverage = board.coverage();
        let html = page::render(&board.snapshot(), &head, SystemTime::now());
        match gzip.then(|| gzip_bytes(html.as_bytes())).flatten() {
            Some(compressed) => (compressed, true),
            None => (html.into_bytes(), false),
        }
    };
    let Ok((body, gzipped)) = tokio::task::spawn_blocking(render).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Defence in depth behind the escaping: no script, no outside resource.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "accept-encoding"),
        ],
        gzipped.then_some([(header::CONTENT_ENCODING, "gzip")]),
        body,
    )
        .into_response()
}

/// A gzip stream into memory at [`GZIP_LEVEL`], for `/metrics` and the status page.
fn gzip_encoder() -> GzEncoder<Vec<u8>> {
    GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL))
}

/// `bytes` gzipped (None if that failed: the caller sends them plain).
fn gzip_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut gz = gzip_encoder();
    gz.write_all(bytes).ok()?;
    gz.finish().ok()
}

/// The page's header: the process facts the board keeps (the shard, the configuration
/// loads) and the canaries outstanding as `/metrics` exports them.
fn header(metrics: &Metrics, board: &Board) -> Header {
    let state = board.process_state();
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
        coverage: None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::model::{DestinationVerdict, Outcome};

    fn headers(accept_encoding: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in accept_encoding {
            h.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn gzip_only_when_named_with_a_nonzero_weight() {
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            (&["gzip"], true),
            (&["GZip"], true),
            (&["x-gzip"], true),
            (&["deflate, gzip"], true),
            (&["gzip;q=0.5"], true),
            (&["gzip ; Q = 1"], true),
            (&["deflate", "gzip"], true),
            (&["gzip;q=0"], false),
            (&["gzip;q=0.000, br"], false),
            (&["gzip;q=oops"], false),
            (&["deflate, br"], false),
            (&["identity"], false),
            (&["*"], false),
            (&["gzipx"], false),
        ];
        for (accept, want) in cases {
            assert_eq!(accepts_gzip(&headers(accept)), *want, "{accept:?}");
        }
    }

    /// GET `path`, asking for gzip or not: the headers and the body as sent.
    async fn get(app: Router, path: &str, accept_encoding: Option<&str>) -> (HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        if let Some(v) = accept_encoding {
            req = req.header(header::ACCEPT_ENCODING, v);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (headers, body.to_vec())
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut unzipped)
            .unwrap();
        unzipped
    }

    #[tokio::test]
    async fn metrics_are_gzipped_on_request_and_decompress_to_the_plain_text() {
        let metrics = Arc::new(Metrics::new());
        for i in 0..150 {
            let rep = format!("rep-{i}");
            metrics.register_replication(&rep, 300.0);
            metrics.register_destination(&rep, "dest");
            metrics.record_verdict(&DestinationVerdict::new(&rep, "dest", Outcome::Ok));
        }
        let (reload, _requests) = mpsc::channel(1);
        let expected = metrics.clone();
        let app = router(Arc::new(Shared {
            metrics,
            board: Arc::new(Board::default()),
            ready: true.into(),
            reload,
            lifecycle: false,
        }));

        let (plain_headers, plain) = get(app.clone(), "/metrics", None).await;
        assert_eq!(plain_headers.get(header::CONTENT_ENCODING), None);
        assert_eq!(plain_headers[header::CONTENT_TYPE], EXPOSITION);
        let text = String::from_utf8(plain.clone()).unwrap();
        assert!(text.contains("replicanary_probes_total{"), "{text}");
        // Streamed in several chunks, it is the exposition, whole and in order.
        assert!(plain.len() > 3 * PLAIN_CHUNK, "{}", plain.len());
        assert_eq!(text, expected.encode());

        let (gz_headers, gz) = get(app, "/metrics", Some("gzip, deflate")).await;
        assert_eq!(gz_headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz_headers[header::CONTENT_TYPE], EXPOSITION);
        assert_eq!(gz_headers[header::VARY], "accept-encoding");
        assert!(
            gz.len() * 4 < plain.len(),
            "{} vs {}",
            gz.len(),
            plain.len()
        );
        assert_eq!(gunzip(&gz), plain);
    }

    #[tokio::test]
    async fn the_status_page_is_gzipped_for_a_browser_that_asks() {
        let board = Arc::new(Board::new());
        for i in 0..300 {
            let rep = format!("rep-{i}");
            board.register_destination(&rep, "dest");
            board.record(&DestinationVerdict::new(&rep, "dest", Outcome::Ok));
        }
        let (reload, _requests) = mpsc::channel(1);
        let app = router(Arc::new(Shared {
            metrics: Arc::new(Metrics::new()),
            board,
            ready: true.into(),
            reload,
            lifecycle: false,
        }));
        let (plain_headers, plain) = get(app.clone(), "/", None).await;
        assert_eq!(plain_headers.get(header::CONTENT_ENCODING), None);
        assert_eq!(plain_headers[header::VARY], "accept-encoding");
        let plain = String::from_utf8(plain).unwrap();
        assert!(plain.contains("rep-299"), "{plain}");

        // What chromium sends.
        let (gz_headers, gz) = get(app, "/", Some("gzip, deflate, br, zstd")).await;
        assert_eq!(gz_headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz_headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(gz_headers[header::VARY], "accept-encoding");
        assert!(gz_headers.contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(
            gz.len() * 4 < plain.len(),
            "{} vs {}",
            gz.len(),
            plain.len()
        );
        let unzipped = String::from_utf8(gunzip(&gz)).unwrap();
        // The same page (rendered a moment later: compare the rows, not the ages).
        assert!(unzipped.starts_with("<!doctype html>"), "{unzipped}");
        let rows = |page: &str| page.matches("rep-").count();
        assert_eq!(rows(&unzipped), rows(&plain));
        assert!(rows(&plain) >= 300);
    }

    #[tokio::test]
    async fn reload_is_refused_without_the_lifecycle_flag_and_runs_with_it() {
        for lifecycle in [false, true] {
            let (reload, mut requests) = mpsc::channel::<ReloadRequest>(1);
            let app = router(Arc::new(Shared {
                metrics: Arc::new(Metrics::new()),
                board: Arc::new(Board::default()),
                ready: true.into(),
                reload,
                lifecycle,
            }));
            let answering = tokio::spawn(async move {
                match requests.recv().await {
                    Some(r) => r
                        .reply
                        .send(Ok("configuration unchanged".to_owned()))
                        .is_ok(),
                    None => false,
                }
            });
            let req = Request::post("/-/reload").body(Body::empty()).unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            if lifecycle {
                assert_eq!(status, StatusCode::OK);
                assert_eq!(&body[..], b"configuration unchanged\n");
                assert!(answering.await.unwrap(), "the reload loop was asked");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN);
                assert_eq!(&body[..], LIFECYCLE_DISABLED.as_bytes());
                // The reload loop was never asked (its channel closes unused).
                assert!(!answering.await.unwrap());
            }
        }
    }
}

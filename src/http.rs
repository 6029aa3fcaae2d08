//! The HTTP endpoints: `/metrics`, `/healthz`, `/readyz`.
//!
//! `/metrics` answers gzip when the scraper asks for it (`Accept-Encoding: gzip`, as
//! Prometheus does): at a thousand replications the text is megabytes and compresses
//! about tenfold. Encoding and compression both run on the blocking pool, and the gzip
//! form is compressed as it is encoded, so the plain text is never held whole.

use std::io::BufWriter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::metrics::Metrics;

/// What the endpoints read.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    /// True once probing has started, false again when shutdown begins.
    pub ready: AtomicBool,
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// gzip level for /metrics. Level 1 is measured in docs/performance.md (/metrics and
/// gzip): most of the size reduction of the default level 6 for a fraction of its CPU.
const GZIP_LEVEL: u32 = 1;

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers);
    // Thousands of replications make megabytes of text: encode (and compress) them on the
    // blocking pool, not on the runtime's workers, so that a scrape never delays a probe.
    let metrics = s.metrics.clone();
    let body = tokio::task::spawn_blocking(move || {
        if gzip {
            gzipped(&metrics).ok_or_else(|| metrics.encode())
        } else {
            Err(metrics.encode())
        }
    })
    .await;
    let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(EXPOSITION));
    match body {
        Ok(Ok(compressed)) => {
            let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            ([content_type, encoding, vary], compressed).into_response()
        }
        Ok(Err(text)) => ([content_type, vary], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

/// The exposition, gzipped while it is encoded (None if that failed: the caller sends
/// it plain).
fn gzipped(metrics: &Metrics) -> Option<Vec<u8>> {
    let gz = GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL));
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use axum::body::{Body, to_bytes};
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

    async fn scrape(app: Router, accept_encoding: Option<&str>) -> (HeaderMap, Vec<u8>) {
        let mut req = Request::get("/metrics");
        if let Some(v) = accept_encoding {
            req = req.header(header::ACCEPT_ENCODING, v);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (headers, body.to_vec())
    }

    #[tokio::test]
    async fn metrics_are_gzipped_on_request_and_decompress_to_the_plain_text() {
        let metrics = Arc::new(Metrics::new());
        for i in 0..50 {
            let rep = format!("rep-{i}");
            metrics.register_replication(&rep, 300.0);
            metrics.register_destination(&rep, "dest");
            metrics.record_verdict(&DestinationVerdict::new(&rep, "dest", Outcome::Ok));
        }
        let app = router(Arc::new(Shared {
            metrics,
            ready: true.into(),
        }));

        let (plain_headers, plain) = scrape(app.clone(), None).await;
        assert_eq!(plain_headers.get(header::CONTENT_ENCODING), None);
        assert_eq!(plain_headers[header::CONTENT_TYPE], EXPOSITION);
        let text = String::from_utf8(plain.clone()).unwrap();
        assert!(text.contains("replicanary_probes_total{"), "{text}");

        let (gz_headers, gz) = scrape(app, Some("gzip, deflate")).await;
        assert_eq!(gz_headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz_headers[header::CONTENT_TYPE], EXPOSITION);
        assert_eq!(gz_headers[header::VARY], "accept-encoding");
        assert!(
            gz.len() * 4 < plain.len(),
            "{} vs {}",
            gz.len(),
            plain.len()
        );
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
    }
}

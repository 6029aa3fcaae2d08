//! `replicanary scan`: judge every real object of a replication, read-only.
//!
//! For one replication: page through the source's current versions under the rule's
//! prefix ([`ScanReader::current_page`], one page in memory at a time), leave out
//! replicanary's own canaries (canary-shaped key *and* the marker, the deletion rule's own
//! test), HEAD each source version, then for each destination HEAD the replica (same key
//! and version id) as the destination role and, with `--read`, read its first byte. Each
//! object gets one [`ScanClass`] per destination ([`judge`]); counts and at most
//! `tally::EXAMPLES` examples per class are kept ([`tally`]), and the versions re-replication
//! fixes are streamed to the manifest ([`manifest`]).
//!
//! Every request waits for the shared rate limiter ([`Budget`]); at most `concurrency`
//! objects (so requests) are in flight. Objects are finished in key order, so the last key
//! done is where an interrupted scan resumes (`--start-after`).

pub mod command;
pub mod judge;
pub mod manifest;
pub mod render;
pub mod tally;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::aws::scan::ScanReader;
use crate::aws::{AwsError, ErrorClass, ObjectHead, VersionEntry};
use crate::canary::{carries_marker, is_canary_key};
use crate::config::Replication;
use crate::model::ScanClass;
pub use tally::ReplicationScan;

/// Attempts of one request when S3 answers with a transient fault (throttling, 5xx),
/// on top of the SDK's own retries; each waits for the rate limiter again.
const ATTEMPTS: u32 = 4;
/// The first wait after a transient fault; doubled on each further one.
const BACKOFF: Duration = Duration::from_millis(250);

/// The requests a scan may make: a rate (shared by every replication of the scan) and the
/// count of requests made.
pub struct Budget {
    limiter: DefaultDirectRateLimiter,
    /// Whose turn it is to wait for the limiter: one request at a time, in arrival order.
    turn: tokio::sync::Mutex<()>,
    requests: AtomicU64,
}

impl Budget {
    /// At most `per_second` requests per second (at least 1).
    pub fn new(per_second: u32) -> Budget {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Budget {
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            turn: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
        }
    }

    /// Waits until the rate allows one more request.
    ///
    /// Not governor's `until_ready`: every request in flight waiting on it (up to
    /// `--concurrency`) would wake at the same instant, one would go and the others sleep
    /// again, each on a timer of governor's own thread (futures-timer). Here requests queue
    /// for their turn (a fair mutex: only the next one is woken) and the one whose turn it
    /// is sleeps on tokio's timer until governor says when. At the default rate that cut
    /// the CPU per object by a fifth (docs/performance.md, "Scan: every object").
    async fn until_ready(&self) {
        let _turn = self.turn.lock().await;
        while let Err(not_until) = self.limiter.check() {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(self.limiter.clock()));
            tokio::time::sleep(wait).await;
        }
    }

    /// Requests made so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// One request within the rate; a transient fault is retried with backoff, each
    /// attempt waiting its turn again.
    async fn call<T, F, Fut>(&self, mut attempt: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut wait = BACKOFF;
        let mut tries = 0;
        loop {
            self.until_ready().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            tries += 1;
            match attempt().await {
                Err(e) if e.class == ErrorClass::Transient && tries < ATTEMPTS => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                other => return other,
            }
        }
    }
}

/// What to scan, and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Narrows the rule's prefix (`--prefix`).
    pub prefix: Option<String>,
    /// Stop after this many objects (`--limit`): a sample.
    pub limit: Option<u64>,
    /// Also read the first byte of each replica (`--read`).
    pub read: bool,
    /// Objects (so requests) in flight at once, at least 1.
    pub concurrency: usize,
    /// Start after this key (`--start-after`, to resume).
    pub start_after: Option<String>,
}

/// One destination to judge the replicas of.
pub struct Target<'a, R> {
    pub reader: &'a R,
    /// Where the versions re-replication fixes are written, if anywhere.
    pub manifest: Option<&'a mut manifest::Manifest>,
}

/// What the listing prefix is: the rule's prefix narrowed by `--prefix`; `None` when the
/// two exclude each other (nothing of the rule is under `--prefix`).
pub fn listing_prefix(rule_prefix: &str, narrow: Option<&str>) -> Option<String> {
    match narrow {
        None => Some(rule_prefix.to_owned()),
        Some(p) if p.starts_with(rule_prefix) => Some(p.to_owned()),
        Some(p) if rule_prefix.starts_with(p) => Some(rule_prefix.to_owned()),
        Some(_) => None,
    }
}

/// What one object came to.
enum Judged {
    /// One class per destination.
    Classes(Vec<ScanClass>),
    /// Deleted since it was listed.
    Gone,
    /// One of replicanary's canaries.
    Canary,
}

/// Scans one replication. `progress` counts objects judged as they are; `stop` ends the
/// scan early, and the result then says where to resume.
pub async fn scan_replication<R: ScanReader>(
    rep: &Replication,
    source: &R,
    targets: &mut [Target<'_, R>],
    opts: &Options,
    budget: &Budget,
    progress: &AtomicU64,
    stop: &CancellationToken,
) -> ReplicationScan {
    let started = Instant::now();
    let mut out = ReplicationScan::new(rep);
    let Some(prefix) = listing_prefix(&rep.rule_prefix, opts.prefix.as_deref()) else {
        out.seconds = started.elapsed().as_secs_f64();
        return out;
    };
    let canary_prefix = rep.key_prefix();
    let mut from = opts.start_after.clone().map(|k| (k, None));
    let limit = opts.limit.unwrap_or(u64::MAX);
    let mut seen: u64 = 0;
    'pages: loop {
        let page = budget
            .call(|| source.current_page(&rep.source.bucket, &prefix, from.as_ref()))
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                out.incomplete = Some(e.to_string());
                break;
            }
        };
        let room = usize::try_from(limit - seen).unwrap_or(usize::MAX);
        let entries: Vec<VersionEntry> = page.current.into_iter().take(room).collect();
        let readers: Vec<&R> = targets.iter().map(|t| t.reader).collect();
        let readers = &readers;
        let canary_prefix = &canary_prefix;
        let mut judged = futures_util::stream::iter(entries)
            .map(|entry| async move {
                let j =
                    judge_object(rep, source, readers, &entry, canary_prefix, opts, budget).await;
                (entry, j)
            })
            .buffered(opts.concurrency.max(1));
        loop {
            let next = tokio::select! {
                biased;
                () = stop.cancelled() => {
                    out.interrupted = true;
                    break 'pages;
                }
                next = judged.next() => next,
            };
            let Some((entry, j)) = next else { break };
            seen += 1;
            match j {
                Judged::Gone => out.gone += 1,
                Judged::Canary => out.canaries += 1,
                Judged::Classes(classes) => {
                    progress.fetch_add(1, Ordering::Relaxed);
                    for ((d, t), class) in out
                        .destinations
                        .iter_mut()
                        .zip(targets.iter_mut())
                        .zip(classes)
                    {
                        d.record(class, &entry);
                        if class.in_manifest()
                            && let Some(m) = t.manifest.as_deref_mut()
                            && let Err(e) = m.row(&rep.source.bucket, &entry.key, &entry.version_id)
                        {
                            out.incomplete = Some(format!("manifest: {e}"));
                            break 'pages;
                        }
                    }
                }
            }
            out.resume_after = Some(entry.key);
        }
        if seen >= limit {
            out.sampled = true;
            break;
        }
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    if !out.interrupted && !out.sampled && out.incomplete.is_none() {
        out.resume_after = None;
    }
    out.seconds = started.elapsed().as_secs_f64();
    out
}

/// One object: the source's HEAD, then each destination's replica.
async fn judge_object<R: ScanReader>(
    rep: &Replication,
    source: &R,
    readers: &[&R],
    entry: &VersionEntry,
    canary_prefix: &str,
    opts: &Options,
    budget: &Budget,
) -> Judged {
    let (key, version) = (entry.key.as_str(), entry.version_id.as_str());
    let head = budget
        .call(|| source.head_version(&rep.source.bucket, key, version))
        .await;
    let head = match head {
        Ok(h) => h,
        Err(e) if e.class == ErrorClass::NotFound => return Judged::Gone,
        Err(_) => return Judged::Classes(vec![ScanClass::Error; readers.len()]),
    };
    if is_canary_key(canary_prefix, key) && carries_marker(&head.metadata) {
        return Judged::Canary;
    }
    let age = entry
        .last_modified
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    let timeout = rep.settings.replication_timeout;
    if let Some(class) = judge::by_source(head.replication_status.as_deref(), age, timeout) {
        return Judged::Classes(vec![class; readers.len()]);
    }
    let mut classes = Vec::with_capacity(readers.len());
    for (reader, dest) in readers.iter().zip(&rep.destinations) {
        classes.push(
            judge_replica(
                *reader,
                &dest.bucket,
                entry,
                dest.expected_kms_key.as_ref(),
                opts,
                budget,
            )
            .await,
        );
    }
    Judged::Classes(classes)
}

async fn judge_replica<R: ScanReader>(
    reader: &R,
    bucket: &str,
    entry: &VersionEntry,
    expected: Option<&crate::config::KmsKeyArn>,
    opts: &Options,
    budget: &Budget,
) -> ScanClass {
    let (key, version) = (entry.key.as_str(), entry.version_id.as_str());
    let head: Result<ObjectHead, AwsError> = budget
        .call(|| reader.head_version(bucket, key, version))
        .await;
    let read = match &head {
        Ok(h) if opts.read && !h.is_archived() => {
            let empty = h.content_length == Some(0);
            let r = budget
                .call(|| reader.read_first_byte(bucket, key, version, empty))
                .await;
            Some(r.map_err(|e| e.class))
        }
        _ => None,
    };
    judge::by_replica(head.as_ref().map_err(|e| e.class), read, expected)
}

//! The scan over an in-memory bucket: classes per destination, canaries left out, objects
//! gone mid-scan, pages, `--limit`, resuming, transient faults retried.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::aws::scan::CurrentPage;
use crate::canary::{MARKER_KEY, MARKER_VALUE, SHA256_KEY};
use crate::config::Config;

const EXPECTED: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab";
const OTHER: &str =
    "arn:aws:kms:ap-northeast-1:111111111111:key/2222bbbb-12ab-34cd-56ef-1234567890ab";

/// One stored object: key, version id, its HEAD answer, its read answer.
type Stored = (
    String,
    String,
    Result<ObjectHead, ErrorClass>,
    Result<(), ErrorClass>,
);

/// A bucket in memory: key → (version id, HEAD answer, read answer); pages of `page` keys.
#[derive(Default)]
struct Bucket {
    objects: Vec<Stored>,
    page: usize,
    /// HEADs of these keys fail transiently this many times first.
    flaky: Mutex<HashMap<String, u32>>,
    calls: Mutex<Vec<String>>,
}

fn err(class: ErrorClass) -> AwsError {
    AwsError::new("HeadObject", class)
}

impl ScanReader for Bucket {
    async fn current_page(
        &self,
        _bucket: &str,
        prefix: &str,
        from: Option<&(String, Option<String>)>,
    ) -> Result<CurrentPage, AwsError> {
        self.calls.lock().unwrap().push("List".into());
        let after = from.map(|(k, _)| k.as_str());
        let mut rest = self
            .objects
            .iter()
            .filter(|(k, ..)| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a));
        let current: Vec<VersionEntry> = rest
            .by_ref()
            .take(self.page)
            .map(|(k, v, ..)| VersionEntry {
                key: k.clone(),
                version_id: v.clone(),
                last_modified: None,
            })
            .collect();
        let next = match (rest.next(), current.last()) {
            (Some(_), Some(last)) => Some((last.key.clone(), Some(last.version_id.clone()))),
            _ => None,
        };
        Ok(CurrentPage { current, next })
    }

    async fn head_version(&self, _b: &str, key: &str, _v: &str) -> Result<ObjectHead, AwsError> {
        self.calls.lock().unwrap().push(format!("Head {key}"));
        if let Some(n) = self.flaky.lock().unwrap().get_mut(key)
            && *n > 0
        {
            *n -= 1;
            return Err(err(ErrorClass::Transient));
        }
        match self.objects.iter().find(|(k, ..)| k == key) {
            Some((_, _, h, _)) => h.clone().map_err(err),
            None => Err(err(ErrorClass::NotFound)),
        }
    }

    async fn read_first_byte(
        &self,
        _b: &str,
        key: &str,
        _v: &str,
        _e: bool,
    ) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push(format!("Get {key}"));
        match self.objects.iter().find(|(k, ..)| k == key) {
            Some((.., r)) => (*r).map_err(err),
            None => Err(err(ErrorClass::NotFound)),
        }
    }
}

fn source_head(status: Option<&str>) -> Result<ObjectHead, ErrorClass> {
    Ok(ObjectHead {
        replication_status: status.map(str::to_owned),
        server_side_encryption: Some("aws:kms".into()),
        ..ObjectHead::default()
    })
}

fn replica(key_arn: &str) -> Result<ObjectHead, ErrorClass> {
    Ok(ObjectHead {
        replication_status: Some("REPLICA".into()),
        server_side_encryption: Some("aws:kms".into()),
        kms_key_id: Some(key_arn.into()),
        ..ObjectHead::default()
    })
}

fn rep() -> Replication {
    let yaml = format!(
        "replications:\n  - name: r\n    source: {{bucket: src, region: ap-northeast-1}}\n    destinations:\n      - {{name: d, bucket: dst, region: ap-northeast-1, expected_kms_key_arn: {EXPECTED}}}\n"
    );
    let mut c = Config::parse(&yaml).expect("valid");
    c.replications.remove(0)
}

/// Source and destination of the table: one object per class that a HEAD can tell.
fn world() -> (Bucket, Bucket) {
    let mut src = Bucket {
        page: 2,
        ..Bucket::default()
    };
    let mut dst = Bucket {
        page: 2,
        ..Bucket::default()
    };
    let mut both =
        |key: &str,
         s: Result<ObjectHead, ErrorClass>,
         d: Option<(Result<ObjectHead, ErrorClass>, Result<(), ErrorClass>)>| {
            src.objects
                .push((key.into(), format!("v-{key}"), s, Ok(())));
            if let Some((h, r)) = d {
                dst.objects.push((key.into(), format!("v-{key}"), h, r));
            }
        };
    both("a-before-rule", source_head(None), None);
    both("b-failed", source_head(Some("FAILED")), None);
    both("c-pending", source_head(Some("PENDING")), None);
    both("d-missing", source_head(Some("COMPLETED")), None);
    both(
        "e-refused",
        source_head(Some("COMPLETED")),
        Some((Err(ErrorClass::AccessDenied), Ok(()))),
    );
    both(
        "f-wrong-key",
        source_head(Some("COMPLETED")),
        Some((replica(OTHER), Err(ErrorClass::AccessDenied))),
    );
    both(
        "g-ok",
        source_head(Some("COMPLETED")),
        Some((replica(EXPECTED), Ok(()))),
    );
    both(
        "h-ok",
        source_head(Some("COMPLETED")),
        Some((replica(EXPECTED), Ok(()))),
    );
    (src, dst)
}

async fn scan(src: &Bucket, dst: &Bucket, opts: Options) -> (ReplicationScan, u64) {
    let budget = Budget::new(100_000);
    let mut targets = [Target {
        reader: dst,
        manifest: None,
    }];
    let progress = AtomicU64::new(0);
    let r = scan_replication(
        &rep(),
        src,
        &mut targets,
        &opts,
        &budget,
        &progress,
        &CancellationToken::new(),
    )
    .await;
    (r, budget.requests())
}

fn opts() -> Options {
    Options {
        concurrency: 4,
        ..Options::default()
    }
}

#[tokio::test]
async fn every_object_gets_the_first_class_that_applies() {
    let (src, dst) = world();
    let (r, requests) = scan(&src, &dst, opts()).await;
    let d = &r.destinations[0];
    let expect = [
        (ScanClass::NotReplicated, 1),
        (ScanClass::ReplicationFailed, 1),
        (ScanClass::Pending, 1),
        (ScanClass::ReplicaMissing, 1),
        (ScanClass::Unreadable, 1),
        (ScanClass::WrongKmsKey, 1),
        (ScanClass::Ok, 2),
    ];
    for c in ScanClass::ALL {
        let want = expect.iter().find(|(k, _)| *k == c).map_or(0, |(_, n)| *n);
        assert_eq!(d.count(c), want, "{}", c.as_str());
    }
    assert_eq!(
        d.examples[ScanClass::WrongKmsKey.index()][0].key,
        "f-wrong-key"
    );
    assert!(
        d.examples[ScanClass::Ok.index()].is_empty(),
        "no examples of ok"
    );
    assert!(r.failing());
    assert_eq!(r.resume_after, None, "finished");
    // 4 pages of 2, 8 source HEADs, 5 replica HEADs; no read without --read.
    assert_eq!(requests, 4 + 8 + 5);
    assert!(
        !dst.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("Get"))
    );
}

#[tokio::test]
async fn with_read_a_key_kms_refuses_is_undecryptable() {
    let (src, dst) = world();
    let (r, _) = scan(
        &src,
        &dst,
        Options {
            read: true,
            ..opts()
        },
    )
    .await;
    let d = &r.destinations[0];
    assert_eq!(d.count(ScanClass::Undecryptable), 1);
    assert_eq!(d.count(ScanClass::WrongKmsKey), 0);
    assert_eq!(d.count(ScanClass::Ok), 2);
}

#[tokio::test]
async fn canaries_are_left_out_only_with_key_shape_and_marker() {
    let (mut src, dst) = world();
    let marked = ObjectHead {
        metadata: HashMap::from([
            (MARKER_KEY.to_owned(), MARKER_VALUE.to_owned()),
            (SHA256_KEY.to_owned(), "ab".repeat(32)),
        ]),
        ..ObjectHead::default()
    };
    let canary = "replicanary/r/20261128T154049Z-0123456789abcdef";
    let lookalike = "replicanary/r/20261128T154049Z-0123456789abcde0";
    src.objects
        .push((canary.into(), "v1".into(), Ok(marked.clone()), Ok(())));
    src.objects
        .push((lookalike.into(), "v2".into(), source_head(None), Ok(())));
    src.objects.push((
        "zz-marker-wrong-shape".into(),
        "v3".into(),
        Ok(marked),
        Ok(()),
    ));
    src.objects.sort_by(|a, b| a.0.cmp(&b.0)); // listings are in key order
    let (r, _) = scan(&src, &dst, opts()).await;
    assert_eq!(r.canaries, 1);
    // The look-alike without the marker and the marked non-canary key are judged.
    assert_eq!(r.destinations[0].count(ScanClass::NotReplicated), 3);
}

#[tokio::test]
async fn an_object_deleted_mid_scan_is_gone_not_an_error() {
    let (src, dst) = world();
    // Listed, then HEAD 404: the lister below lists a key the HEAD no longer finds.
    let mut src = src;
    src.objects[0].2 = Err(ErrorClass::NotFound);
    let (r, _) = scan(&src, &dst, opts()).await;
    assert_eq!(r.gone, 1);
    assert_eq!(r.destinations[0].count(ScanClass::Error), 0);
    assert_eq!(r.destinations[0].count(ScanClass::NotReplicated), 0);
}

#[tokio::test]
async fn limit_samples_and_start_after_resumes_where_it_stopped() {
    let (src, dst) = world();
    let (first, _) = scan(
        &src,
        &dst,
        Options {
            limit: Some(3),
            ..opts()
        },
    )
    .await;
    assert!(first.sampled);
    assert_eq!(first.destinations[0].objects(), 3);
    assert_eq!(first.resume_after.as_deref(), Some("c-pending"));
    let (rest, _) = scan(
        &src,
        &dst,
        Options {
            start_after: first.resume_after.clone(),
            ..opts()
        },
    )
    .await;
    assert_eq!(
        rest.destinations[0].objects(),
        5,
        "the other five, none twice"
    );
    assert_eq!(rest.destinations[0].count(ScanClass::Pending), 0);
}

#[tokio::test]
async fn transient_faults_are_retried_then_counted_as_error() {
    let (src, dst) = world();
    src.flaky.lock().unwrap().insert("a-before-rule".into(), 2);
    src.flaky.lock().unwrap().insert("b-failed".into(), 99);
    let (r, _) = scan(&src, &dst, opts()).await;
    let d = &r.destinations[0];
    assert_eq!(
        d.count(ScanClass::NotReplicated),
        1,
        "two faults, then an answer"
    );
    assert_eq!(
        d.count(ScanClass::Error),
        1,
        "always failing: error after the retries"
    );
    assert_eq!(d.count(ScanClass::ReplicationFailed), 0);
    let heads = src
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| *c == "Head b-failed")
        .count();
    assert_eq!(heads, ATTEMPTS as usize);
}

#[tokio::test]
async fn a_stop_leaves_partial_counts_and_the_key_to_resume_from() {
    let (src, dst) = world();
    let stop = CancellationToken::new();
    stop.cancel();
    let budget = Budget::new(100_000);
    let mut targets = [Target {
        reader: &dst,
        manifest: None,
    }];
    let r = scan_replication(
        &rep(),
        &src,
        &mut targets,
        &opts(),
        &budget,
        &AtomicU64::new(0),
        &stop,
    )
    .await;
    assert!(r.interrupted);
    assert_eq!(r.destinations[0].objects(), 0);
    assert!(r.failing() || r.destinations[0].objects() == 0);
}

#[test]
fn the_listing_prefix_narrows_the_rules() {
    assert_eq!(listing_prefix("logs/", None).as_deref(), Some("logs/"));
    assert_eq!(
        listing_prefix("logs/", Some("logs/2026/")).as_deref(),
        Some("logs/2026/")
    );
    assert_eq!(
        listing_prefix("logs/2026/", Some("logs/")).as_deref(),
        Some("logs/2026/")
    );
    assert_eq!(listing_prefix("logs/", Some("data/")), None);
    assert_eq!(listing_prefix("", Some("data/")).as_deref(), Some("data/"));
}

#[tokio::test]
async fn examples_are_bounded_whatever_the_bucket() {
    let mut src = Bucket {
        page: 7,
        ..Bucket::default()
    };
    for i in 0..25 {
        src.objects.push((
            format!("k{i:03}"),
            format!("v{i}"),
            source_head(Some("FAILED")),
            Ok(()),
        ));
    }
    let dst = Bucket::default();
    let (r, requests) = scan(&src, &dst, opts()).await;
    let d = &r.destinations[0];
    assert_eq!(d.count(ScanClass::ReplicationFailed), 25);
    assert_eq!(
        d.examples[ScanClass::ReplicationFailed.index()].len(),
        tally::EXAMPLES
    );
    assert_eq!(requests, 4 + 25, "4 pages of at most 7, one HEAD each");
}

#[tokio::test]
async fn the_rate_holds_and_waiting_requests_wake_once_for_their_turn() {
    // 50 per second, with governor's burst of one second's worth: the first 50 go at once,
    // the next 30 one per 20 ms.
    let budget = Budget::new(50);
    let order = Mutex::new(Vec::new());
    let polls = AtomicU64::new(0);
    let started = std::time::Instant::now();
    let waits = (0..80).map(|i| {
        let (budget, order, polls) = (&budget, &order, &polls);
        async move {
            let mut wait = Box::pin(budget.until_ready());
            std::future::poll_fn(|cx| {
                polls.fetch_add(1, Ordering::Relaxed);
                wait.as_mut().poll(cx)
            })
            .await;
            order.lock().unwrap().push(i);
        }
    });
    futures_util::future::join_all(waits).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    // A waiter is polled when it arrives, when its turn comes and when its time comes:
    // not each time any request may go (that herd polled them 500 times and more).
    let polls = polls.into_inner();
    assert!(polls <= 50 + 30 * 4, "{polls} polls");
    // Nobody overtakes: a request waiting longer cannot be starved by newer ones.
    assert_eq!(order.into_inner().unwrap(), (0..80).collect::<Vec<_>>());
}

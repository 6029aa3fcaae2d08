//! The probe pipeline against an in-memory [`ObjectStore`]: every verdict of SPEC.md §3,
//! its precedence, and what gets deleted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::Prober;
use super::verdict::Outcome;
use crate::aws::{AwsError, ErrorClass, ObjectHead, ObjectStore, PutRequest, VersionEntry};
use crate::config::Config;
use crate::diagnose::setup::{DefaultEncryption, ReplicationSetup, SetupReader};
use crate::metrics::Metrics;

const EXPECTED: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab";
const OTHER: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/2222bbbb-12ab-34cd-56ef-1234567890ab";

fn config(destinations: usize) -> Config {
    let mut yaml = String::from(
        "defaults: {interval: 1m, replication_timeout: 200ms, poll: {initial: 10ms, max: 40ms}}\n\
         replications:\n  - name: r\n    source: {bucket: src-bucket, region: ap-northeast-1}\n    destinations:\n",
    );
    for i in 0..destinations {
        yaml.push_str(&format!(
            "      - {{name: d{i}, bucket: dst-bucket-{i}, region: ap-northeast-1, expected_kms_key_arn: {EXPECTED}}}\n"
        ));
    }
    Config::parse(&yaml).expect("test configuration is valid")
}

/// The body the source stored, shared so that a destination can serve "the replica".
type Shared = Arc<Mutex<Vec<u8>>>;

/// A scripted store: answers come from queues (the last answer repeats).
#[derive(Default)]
struct Fake {
    put: Mutex<Option<Result<Option<String>, AwsError>>>,
    heads: Mutex<VecDeque<Result<ObjectHead, AwsError>>>,
    get: Mutex<Option<Result<Vec<u8>, AwsError>>>,
    delete_fails: Mutex<usize>,
    body: Shared,
    calls: Mutex<Vec<String>>,
    deleted: Mutex<Vec<(String, String, String)>>,
}

impl Fake {
    fn new(body: &Shared) -> Fake {
        Fake {
            body: body.clone(),
            ..Fake::default()
        }
    }
    fn heads(self, answers: Vec<Result<ObjectHead, AwsError>>) -> Fake {
        *self.heads.lock().unwrap() = answers.into();
        self
    }
    fn put(self, answer: Result<Option<String>, AwsError>) -> Fake {
        *self.put.lock().unwrap() = Some(answer);
        self
    }
    fn get(self, answer: Result<Vec<u8>, AwsError>) -> Fake {
        *self.get.lock().unwrap() = Some(answer);
        self
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn status(s: &str) -> Result<ObjectHead, AwsError> {
    Ok(ObjectHead {
        replication_status: Some(s.to_owned()),
        ..ObjectHead::default()
    })
}

fn no_status() -> Result<ObjectHead, AwsError> {
    Ok(ObjectHead::default())
}

fn replica(sse: &str, key: Option<&str>) -> Result<ObjectHead, AwsError> {
    Ok(ObjectHead {
        replication_status: Some("REPLICA".to_owned()),
        server_side_encryption: Some(sse.to_owned()),
        kms_key_id: key.map(str::to_owned),
        ..ObjectHead::default()
    })
}

fn err(class: ErrorClass, status: u16, code: &str) -> AwsError {
    AwsError {
        operation: "Test",
        class,
        code: Some(code.to_owned()),
        message: Some("scripted".to_owned()),
        request_id: Some("REQ123".to_owned()),
        status: Some(status),
    }
}

impl ObjectStore for Fake {
    async fn put(&self, req: PutRequest<'_>) -> Result<Option<String>, AwsError> {
        self.calls.lock().unwrap().push("PutObject".to_owned());
        *self.body.lock().unwrap() = req.body.to_vec();
        self.put
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Ok(Some("v1".to_owned())))
    }
    async fn head(&self, _: &str, _: &str, _: &str) -> Result<ObjectHead, AwsError> {
        self.calls.lock().unwrap().push("HeadObject".to_owned());
        let mut q = self.heads.lock().unwrap();
        if q.len() > 1 {
            q.pop_front()
        } else {
            q.front().cloned()
        }
        .unwrap_or_else(no_status)
    }
    async fn get(&self, _: &str, _: &str, _: &str, limit: usize) -> Result<Vec<u8>, AwsError> {
        self.calls.lock().unwrap().push("GetObject".to_owned());
        let body = self
            .get
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| Ok(self.body.lock().unwrap().clone()));
        body.map(|mut b| {
            b.truncate(limit + 1);
            b
        })
    }
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push("DeleteObject".to_owned());
        let mut fails = self.delete_fails.lock().unwrap();
        if *fails > 0 {
            *fails -= 1;
            return Err(err(ErrorClass::Transient, 503, "SlowDown"));
        }
        self.deleted.lock().unwrap().push((
            bucket.to_owned(),
            key.to_owned(),
            version_id.to_owned(),
        ));
        Ok(())
    }
    async fn list_versions(
        &self,
        _: &str,
        _: &str,
        _: usize,
    ) -> Result<Vec<VersionEntry>, AwsError> {
        Ok(Vec::new())
    }
}

/// The fake's buckets have no readable setup: the diagnosis finds nothing to name.
impl SetupReader for Fake {
    async fn replication(&self, _: &str) -> Result<ReplicationSetup, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn versioning(&self, _: &str) -> Result<Option<String>, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn encryption(&self, _: &str) -> Result<DefaultEncryption, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
    async fn policy(&self, _: &str) -> Result<String, AwsError> {
        Err(err(ErrorClass::Transient, 503, "SlowDown"))
    }
}

fn prober(source: Fake, destinations: Vec<Fake>) -> (Prober<Fake>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let rep = config(destinations.len()).replications.remove(0);
    (
        Prober::new(rep, source, destinations, metrics.clone()),
        metrics,
    )
}

async fn outcomes(p: &mut Prober<Fake>) -> Vec<Outcome> {
    let verdicts = p
        .probe(&CancellationToken::new())
        .await
        .expect("not cancelled");
    verdicts.iter().map(|v| v.outcome).collect()
}

/// One source and one destination over a shared body.
fn pair(
    source_heads: Vec<Result<ObjectHead, AwsError>>,
    dest: impl FnOnce(Fake) -> Fake,
) -> Prober<Fake> {
    let body = Shared::default();
    let source = Fake::new(&body).heads(source_heads);
    prober(source, vec![dest(Fake::new(&body))]).0
}

#[tokio::test]
async fn healthy_replication_is_ok_with_a_latency() {
    let mut p = pair(vec![status("PENDING"), status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(EXPECTED))])
    });
    let v = p.probe(&CancellationToken::new()).await.expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Ok, "{:?}", v[0].reason);
    let latency = v[0].latency.expect("latency measured");
    assert!(
        latency.as_millis() >= 10,
        "the second poll comes after poll.initial: {latency:?}"
    );
    assert_eq!(v[0].replica.key_matches, Some(true));
    assert_eq!(v[0].replica.readable, Some(true));
}

#[tokio::test]
async fn a_bare_key_id_reported_by_s3_still_matches() {
    let bare = EXPECTED.rsplit_once("key/").unwrap().1;
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(bare))])
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::Ok]);
}

#[tokio::test]
async fn no_status_is_not_replicated_and_no_destination_is_asked() {
    let body = Shared::default();
    let (mut p, _) = prober(
        Fake::new(&body).heads(vec![no_status()]),
        vec![Fake::new(&body)],
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::NotReplicated]);
    assert!(
        p.destinations[0].calls().is_empty(),
        "{:?}",
        p.destinations[0].calls()
    );
    assert_eq!(
        p.source
            .calls()
            .iter()
            .filter(|c| *c == "HeadObject")
            .count(),
        2,
        "status absence is confirmed once"
    );
}

#[tokio::test]
async fn failed_without_a_replica_is_replication_failed() {
    let mut p = pair(vec![status("PENDING"), status("FAILED")], |d| {
        d.heads(vec![Err(err(ErrorClass::NotFound, 404, "NotFound"))])
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::ReplicationFailed]);
}

#[tokio::test]
async fn pending_past_the_timeout_is_replication_timeout() {
    let mut p = pair(vec![status("PENDING")], |d| {
        d.heads(vec![Err(err(ErrorClass::NotFound, 404, "NotFound"))])
    });
    let started = std::time::Instant::now();
    assert_eq!(outcomes(&mut p).await, [Outcome::ReplicationTimeout]);
    assert!(
        started.elapsed().as_millis() >= 200,
        "waited for replication_timeout"
    );
    let polls = p
        .source
        .calls()
        .iter()
        .filter(|c| *c == "HeadObject")
        .count();
    // 200 ms at 10, 20, 40, 40, … ms: about 7 polls, not 20.
    assert!((4..=10).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn completed_without_the_replica_is_replica_missing() {
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![Err(err(ErrorClass::NotFound, 404, "NoSuchVersion"))])
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::ReplicaMissing]);
}

#[tokio::test]
async fn a_vanished_canary_is_no_evidence_of_a_missing_replica() {
    // COMPLETED, then the world changed (the canary's own version is gone too): no verdict.
    let gone = || Err(err(ErrorClass::NotFound, 404, "NotFound"));
    let mut p = pair(vec![status("COMPLETED"), gone()], |d| d.heads(vec![gone()]));
    assert_eq!(outcomes(&mut p).await, [Outcome::Error]);
    // The same when the replica vanishes between its HeadObject and its GetObject.
    let replica_then_gone = |d: Fake| {
        d.heads(vec![replica("aws:kms", Some(EXPECTED))])
            .get(Err(err(ErrorClass::NotFound, 404, "NoSuchVersion")))
    };
    let mut p = pair(vec![status("COMPLETED"), gone()], replica_then_gone);
    assert_eq!(outcomes(&mut p).await, [Outcome::Error]);
    // While the canary is still there, a vanished replica is missing.
    let mut p = pair(vec![status("COMPLETED")], replica_then_gone);
    assert_eq!(outcomes(&mut p).await, [Outcome::ReplicaMissing]);
}

#[tokio::test]
async fn the_seeds_trap_is_undecryptable() {
    let denied = err(ErrorClass::AccessDenied, 403, "AccessDenied");
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(OTHER))])
            .get(Err(denied))
    });
    let v = p.probe(&CancellationToken::new()).await.expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Undecryptable);
    assert_eq!(v[0].replica.readable, Some(false));
    assert_eq!(v[0].replica.key_matches, Some(false));
    assert_eq!(
        v[0].aws_error
            .as_ref()
            .and_then(|e| e.request_id.as_deref()),
        Some("REQ123")
    );
}

#[tokio::test]
async fn kms_key_states_are_undecryptable() {
    for (class, code) in [
        (ErrorClass::KmsDisabled, "KMS.DisabledException"),
        (ErrorClass::KmsInvalidState, "KMS.KMSInvalidStateException"),
        (ErrorClass::KmsNotFound, "KMS.NotFoundException"),
    ] {
        let mut p = pair(vec![status("COMPLETED")], |d| {
            d.heads(vec![replica("aws:kms", Some(EXPECTED))])
                .get(Err(err(class, 400, code)))
        });
        assert_eq!(outcomes(&mut p).await, [Outcome::Undecryptable], "{code}");
    }
}

#[tokio::test]
async fn readable_replicas_are_checked_in_precedence_order() {
    // Different bytes win over encryption problems.
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("AES256", None)])
            .get(Ok(b"tampered".to_vec()))
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::ContentMismatch]);
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("AES256", None)])
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::NotKmsEncrypted]);
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(OTHER))])
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::WrongKmsKey]);
}

#[tokio::test]
async fn an_oversized_replica_is_a_mismatch_and_is_not_read_whole() {
    let huge = vec![b'x'; 10 << 20];
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(EXPECTED))])
            .get(Ok(huge))
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::ContentMismatch]);
}

#[tokio::test]
async fn transient_faults_give_error_never_a_replication_verdict() {
    let slow_down = || err(ErrorClass::Transient, 503, "SlowDown");
    // On the write.
    let body = Shared::default();
    let (mut p, _) = prober(
        Fake::new(&body).put(Err(err(ErrorClass::Transient, 500, "InternalError"))),
        vec![Fake::new(&body)],
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::Error]);
    // On every poll: not a timeout, since nothing was observed.
    let mut p = pair(vec![Err(slow_down())], |d| d);
    assert_eq!(outcomes(&mut p).await, [Outcome::Error]);
    // On the read.
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(EXPECTED))])
            .get(Err(slow_down()))
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::Error]);
    // On the replica's HeadObject after COMPLETED.
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![Err(slow_down())])
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::Error]);
}

#[tokio::test]
async fn a_transient_poll_failure_does_not_end_the_wait() {
    let mut p = pair(
        vec![
            status("PENDING"),
            Err(err(ErrorClass::Transient, 503, "SlowDown")),
            status("COMPLETED"),
        ],
        |d| d.heads(vec![replica("aws:kms", Some(EXPECTED))]),
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::Ok]);
}

#[tokio::test]
async fn credential_failures_are_per_side() {
    let no_creds = || err(ErrorClass::Credentials, 403, "credentials");
    let body = Shared::default();
    let (mut p, _) = prober(
        Fake::new(&body).put(Err(no_creds())),
        vec![Fake::new(&body), Fake::new(&body)],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::CredentialsFailed, Outcome::CredentialsFailed]
    );

    let body = Shared::default();
    let good = Fake::new(&body).heads(vec![replica("aws:kms", Some(EXPECTED))]);
    let locked_out = Fake::new(&body).heads(vec![Err(no_creds())]);
    let (mut p, _) = prober(
        Fake::new(&body).heads(vec![status("COMPLETED")]),
        vec![good, locked_out],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::Ok, Outcome::CredentialsFailed]
    );
}

#[tokio::test]
async fn an_unversioned_source_is_source_write_failed() {
    let body = Shared::default();
    let (mut p, _) = prober(Fake::new(&body).put(Ok(None)), vec![Fake::new(&body)]);
    let v = p.probe(&CancellationToken::new()).await.expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::SourceWriteFailed);
    assert!(
        v[0].reason
            .as_deref()
            .unwrap_or("")
            .contains("not versioned")
    );
}

#[tokio::test]
async fn fan_out_checks_each_destination_on_its_own() {
    // S3 says FAILED as soon as one destination failed; the other may be fine.
    let body = Shared::default();
    let good = Fake::new(&body).heads(vec![replica("aws:kms", Some(EXPECTED))]);
    let failed = Fake::new(&body).heads(vec![Err(err(ErrorClass::NotFound, 404, "NotFound"))]);
    let (mut p, _) = prober(
        Fake::new(&body).heads(vec![status("FAILED")]),
        vec![good, failed],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::Ok, Outcome::ReplicationFailed]
    );
}

#[tokio::test]
async fn cleanup_deletes_exactly_the_versions_written_and_retries_failures() {
    let body = Shared::default();
    let source = Fake::new(&body).heads(vec![status("COMPLETED")]);
    let dest = Fake::new(&body).heads(vec![replica("aws:kms", Some(EXPECTED))]);
    *dest.delete_fails.lock().unwrap() = 1;
    let (mut p, metrics) = prober(source, vec![dest]);
    let v = p.probe(&CancellationToken::new()).await.expect("verdicts");
    let key = v[0].key.clone().expect("key");
    assert_eq!(
        *p.source.deleted.lock().unwrap(),
        [("src-bucket".to_owned(), key.clone(), "v1".to_owned())]
    );
    assert!(
        p.destinations[0].deleted.lock().unwrap().is_empty(),
        "the first replica delete failed"
    );
    assert_eq!(metrics.canaries_outstanding(), 1);
    assert!(
        metrics.encode().contains(
            "replicanary_cleanup_failures_total{replication=\"r\",side=\"destination\"} 1"
        )
    );
    p.flush_deletes().await;
    assert_eq!(
        *p.destinations[0].deleted.lock().unwrap(),
        [("dst-bucket-0".to_owned(), key, "v1".to_owned())]
    );
    assert_eq!(metrics.canaries_outstanding(), 0);
}

#[tokio::test]
async fn nothing_is_deleted_when_nothing_was_written() {
    let body = Shared::default();
    let (mut p, metrics) = prober(
        Fake::new(&body).put(Err(err(ErrorClass::AccessDenied, 403, "AccessDenied"))),
        vec![Fake::new(&body)],
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::SourceWriteFailed]);
    assert!(!p.source.calls().contains(&"DeleteObject".to_owned()));
    assert_eq!(metrics.canaries_outstanding(), 0);
}

#[tokio::test]
async fn verdicts_reach_the_metrics() {
    let body = Shared::default();
    let source = Fake::new(&body).heads(vec![status("COMPLETED")]);
    let dest = Fake::new(&body).heads(vec![replica("aws:kms", Some(OTHER))]);
    let (mut p, metrics) = prober(source, vec![dest]);
    let before = metrics.encode();
    for o in Outcome::ALL {
        let line = format!(
            "replicanary_probes_total{{destination=\"d0\",outcome=\"{}\",replication=\"r\"}} 0",
            o.as_str()
        );
        assert!(before.contains(&line), "missing at start-up: {line}");
    }
    outcomes(&mut p).await;
    let after = metrics.encode();
    assert!(after.contains(
        "replicanary_probes_total{destination=\"d0\",outcome=\"wrong_kms_key\",replication=\"r\"} 1"
    ));
    assert!(
        after.contains("replicanary_replica_kms_key_match{destination=\"d0\",replication=\"r\"} 0")
    );
    assert!(after.contains("replicanary_replica_readable{destination=\"d0\",replication=\"r\"} 1"));
    assert!(after.contains("replicanary_probe_success{destination=\"d0\",replication=\"r\"} 0"));
}

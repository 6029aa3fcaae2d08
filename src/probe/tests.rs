//! The probe pipeline against the in-memory store: every verdict, its precedence, and
//! what gets deleted.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Prober, Verdicts};
use crate::aws::Site;
use crate::aws::{AwsError, ErrorClass, ObjectHead};
use crate::cleanup::janitor::{Watch, WrittenVersion};
use crate::config::Config;
use crate::daemon::Monitor;
use crate::emit::Sinks;
use crate::metrics::Metrics;
use crate::model::Outcome;
use crate::testing::{MemStore, SharedBody, err};

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

fn prober(source: MemStore, destinations: Vec<MemStore>) -> (Monitor<MemStore>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let rep = config(destinations.len()).replications.remove(0);
    let sinks = Sinks::new(metrics.clone(), Arc::default());
    let p = Prober::new(rep, source, destinations, sinks);
    (Monitor::new(p), metrics)
}

async fn outcomes(p: &mut Monitor<MemStore>) -> Vec<Outcome> {
    let verdicts = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("not cancelled");
    verdicts.iter().map(|v| v.outcome).collect()
}

/// One source and one destination over a shared body.
fn pair(
    source_heads: Vec<Result<ObjectHead, AwsError>>,
    dest: impl FnOnce(MemStore) -> MemStore,
) -> Monitor<MemStore> {
    let body = SharedBody::default();
    let source = MemStore::new(&body).heads(source_heads);
    prober(source, vec![dest(MemStore::new(&body))]).0
}

#[tokio::test]
async fn healthy_replication_is_ok_with_a_latency() {
    let mut p = pair(vec![status("PENDING"), status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(EXPECTED))])
    });
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
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
    let body = SharedBody::default();
    let (mut p, _) = prober(
        MemStore::new(&body).heads(vec![no_status()]),
        vec![MemStore::new(&body)],
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::NotReplicated]);
    assert!(
        p.prober.destinations[0].calls().is_empty(),
        "{:?}",
        p.prober.destinations[0].calls()
    );
    assert_eq!(
        p.prober.source.count("HeadObject"),
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
    let polls = p.prober.source.count("HeadObject");
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
    let replica_then_gone = |d: MemStore| {
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
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
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
    let body = SharedBody::default();
    let (mut p, _) = prober(
        MemStore::new(&body).put(Err(err(ErrorClass::Transient, 500, "InternalError"))),
        vec![MemStore::new(&body)],
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
    let body = SharedBody::default();
    let (mut p, _) = prober(
        MemStore::new(&body).put(Err(no_creds())),
        vec![MemStore::new(&body), MemStore::new(&body)],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::CredentialsFailed, Outcome::CredentialsFailed]
    );

    let body = SharedBody::default();
    let good = MemStore::new(&body).heads(vec![replica("aws:kms", Some(EXPECTED))]);
    let locked_out = MemStore::new(&body).heads(vec![Err(no_creds())]);
    let (mut p, _) = prober(
        MemStore::new(&body).heads(vec![status("COMPLETED")]),
        vec![good, locked_out],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::Ok, Outcome::CredentialsFailed]
    );
}

#[tokio::test]
async fn an_unversioned_source_is_source_write_failed() {
    let body = SharedBody::default();
    let (mut p, _) = prober(
        MemStore::new(&body).put(Ok(None)),
        vec![MemStore::new(&body)],
    );
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
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
    let body = SharedBody::default();
    let good = MemStore::new(&body).heads(vec![replica("aws:kms", Some(EXPECTED))]);
    let failed = MemStore::new(&body).heads(vec![Err(err(ErrorClass::NotFound, 404, "NotFound"))]);
    let (mut p, _) = prober(
        MemStore::new(&body).heads(vec![status("FAILED")]),
        vec![good, failed],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::Ok, Outcome::ReplicationFailed]
    );
}

#[tokio::test]
async fn cleanup_deletes_exactly_the_versions_written_and_retries_failures() {
    let body = SharedBody::default();
    let source = MemStore::new(&body).heads(vec![status("COMPLETED")]);
    let dest = MemStore::new(&body).heads(vec![replica("aws:kms", Some(EXPECTED))]);
    *dest.delete_fails.lock().unwrap() = 1;
    let (mut p, metrics) = prober(source, vec![dest]);
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    let key = v[0].key.clone().expect("key");
    assert_eq!(
        *p.prober.source.deleted.lock().unwrap(),
        [("src-bucket".to_owned(), key.clone(), "v1".to_owned())]
    );
    assert!(
        p.prober.destinations[0].deleted.lock().unwrap().is_empty(),
        "the first replica delete failed"
    );
    assert_eq!(metrics.canaries_outstanding(), 1);
    assert!(
        metrics.encode().contains(
            "replicanary_cleanup_failures_total{replication=\"r\",side=\"destination\"} 1"
        )
    );
    // Not retried before one interval (1m) has passed...
    p.janitor.flush(p.prober.stores()).await;
    assert!(p.prober.destinations[0].deleted.lock().unwrap().is_empty());
    assert_eq!(p.prober.destinations[0].count("DeleteObject"), 1);
    // ...but the last flush, at shutdown, tries it once more.
    p.finish().await;
    assert_eq!(
        *p.prober.destinations[0].deleted.lock().unwrap(),
        [("dst-bucket-0".to_owned(), key, "v1".to_owned())]
    );
    assert_eq!(metrics.canaries_outstanding(), 0);
}

#[tokio::test]
async fn nothing_is_deleted_when_nothing_was_written() {
    let body = SharedBody::default();
    let (mut p, metrics) = prober(
        MemStore::new(&body).put(Err(err(ErrorClass::AccessDenied, 403, "AccessDenied"))),
        vec![MemStore::new(&body)],
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::SourceWriteFailed]);
    assert!(!p.prober.source.calls().contains(&"DeleteObject".to_owned()));
    assert_eq!(metrics.canaries_outstanding(), 0);
}

#[tokio::test]
async fn verdicts_reach_the_metrics() {
    let body = SharedBody::default();
    let source = MemStore::new(&body).heads(vec![status("COMPLETED")]);
    let dest = MemStore::new(&body).heads(vec![replica("aws:kms", Some(OTHER))]);
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

/// One source and one destination of a replication configured by `yaml` (one replication).
fn placed(
    yaml: &str,
    source_heads: Vec<Result<ObjectHead, AwsError>>,
    dest_heads: Vec<Result<ObjectHead, AwsError>>,
) -> Monitor<MemStore> {
    let body = SharedBody::default();
    let rep = Config::parse(yaml).expect("valid").replications.remove(0);
    Monitor::new(Prober::new(
        rep,
        MemStore::new(&body).heads(source_heads),
        vec![MemStore::new(&body).heads(dest_heads)],
        Sinks::new(Arc::new(Metrics::new()), Arc::default()),
    ))
}

const PLACED: &str = concat!(
    "defaults: {interval: 1m, replication_timeout: 300ms, poll: {initial: 10ms, max: 40ms}}\n",
    "replications:\n",
    "  - name: r\n",
    "    rule_prefix: \"logs/odd dir/\"\n",
    "    canary_tags: {replicate: \"yes\", team: storage}\n",
    "    source: {bucket: src-bucket, region: ap-northeast-1}\n",
    "    destinations:\n",
    "      - {bucket: dst-bucket, region: ap-northeast-1, expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab}\n",
);

#[tokio::test]
async fn canaries_go_under_the_rule_prefix_with_the_rule_tags() {
    let mut p = placed(
        PLACED,
        vec![status("COMPLETED")],
        vec![replica("aws:kms", Some(EXPECTED))],
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::Ok]);
    let puts = p.prober.source.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 1);
    let (key, tags) = &puts[0];
    assert!(key.starts_with("logs/odd dir/replicanary/r/"), "{key}");
    assert!(
        crate::canary::is_canary_key(&p.prober.replication.key_prefix(), key),
        "{key}"
    );
    assert_eq!(
        tags,
        &[
            ("replicate".to_owned(), "yes".to_owned()),
            ("team".to_owned(), "storage".to_owned())
        ]
    );
    let deleted = p.prober.source.deleted.lock().unwrap().clone();
    assert_eq!(
        deleted.len(),
        1,
        "the canary under the rule prefix is cleaned up"
    );
    assert_eq!(&deleted[0].1, key);
}

#[tokio::test]
async fn a_source_that_fans_out_is_looked_past_even_with_one_destination() {
    // Another rule replicates the canary to a failing destination: the source says FAILED,
    // but this replication's own replica arrives.
    let not_yet = Err(err(ErrorClass::NotFound, 404, "NotFound"));
    let heads = vec![not_yet.clone(), not_yet, replica("aws:kms", Some(EXPECTED))];
    let fans = PLACED.replace(
        "    canary_tags:",
        "    source_fans_out: true\n    canary_tags:",
    );
    let mut p = placed(&fans, vec![status("FAILED")], heads.clone());
    assert_eq!(outcomes(&mut p).await, [Outcome::Ok]);
    let mut alone = placed(PLACED, vec![status("FAILED")], heads);
    assert_eq!(
        outcomes(&mut alone).await,
        [Outcome::ReplicationFailed],
        "without the flag FAILED is this destination's"
    );
}

#[tokio::test]
async fn a_refused_head_is_told_apart_by_listing_the_key() {
    let refused = || Err(err(ErrorClass::AccessDenied, 403, "AccessDenied"));
    // Listed: S3 refuses a replica that is there (owned by the source account, or the
    // probe role may not read it): unreadable, and the replica is deleted like a seen one.
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![refused()]).listing(Ok(vec!["v1"]))
    });
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Unreadable, "{:?}", v[0].reason);
    assert_eq!(v[0].replica.listed, Some(true));
    assert_eq!(v[0].replica.readable, Some(false));
    assert_eq!(
        p.prober.destinations[0].deleted.lock().unwrap().len(),
        1,
        "the listed replica is deleted"
    );
    assert_eq!(
        p.prober.destinations[0].count("GetObject"),
        1,
        "the first GetObject is not repeated"
    );
    // Not listed: the replica is missing (HEAD answers 403 without s3:ListBucket).
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![refused()])
            .listing(Ok(vec!["another-version"]))
    });
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::ReplicaMissing, "{:?}", v[0].reason);
    assert_eq!(v[0].replica.listed, Some(false));
    // The listing refused too: existence cannot be told.
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![refused()])
            .listing(Err(err(ErrorClass::AccessDenied, 403, "AccessDenied")))
    });
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Unreadable);
    assert_eq!(v[0].replica.listed, None);
    assert_eq!(
        v[0].aws_error.as_ref().map(|e| e.operation),
        Some("Test"),
        "the HEAD's refusal is the error shown"
    );
    // The listing failed transiently: nothing can be concluded.
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![refused()])
            .listing(Err(err(ErrorClass::Transient, 503, "SlowDown")))
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::Error]);
}

#[tokio::test]
async fn a_slow_destination_under_a_failed_source_is_looked_at_again() {
    // partial fan-out: the source says FAILED (one destination failed); the other's
    // replica arrives a little later and is ok.
    let body = SharedBody::default();
    let missing = || Err(err(ErrorClass::NotFound, 404, "NotFound"));
    let slow = MemStore::new(&body).heads(vec![
        missing(),
        missing(),
        replica("aws:kms", Some(EXPECTED)),
    ]);
    let failing = MemStore::new(&body).heads(vec![missing()]);
    let (mut p, _) = prober(
        MemStore::new(&body).heads(vec![status("FAILED")]),
        vec![slow, failing],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::Ok, Outcome::ReplicationFailed]
    );
    assert_eq!(p.prober.destinations[0].count("HeadObject"), 3);
    // A listed replica refused under FAILED is not waited for: it is there.
    let body = SharedBody::default();
    let refused = MemStore::new(&body)
        .heads(vec![Err(err(
            ErrorClass::AccessDenied,
            403,
            "AccessDenied",
        ))])
        .listing(Ok(vec!["v1"]));
    let failing = MemStore::new(&body).heads(vec![missing()]);
    let (mut p, _) = prober(
        MemStore::new(&body).heads(vec![status("FAILED")]),
        vec![refused, failing],
    );
    assert_eq!(
        outcomes(&mut p).await,
        [Outcome::Unreadable, Outcome::ReplicationFailed]
    );
    assert_eq!(p.prober.destinations[0].count("HeadObject"), 1);
}

#[tokio::test]
async fn without_an_expected_key_the_replica_key_is_not_judged() {
    let mut p = placed(
        PLACED,
        vec![status("COMPLETED")],
        vec![replica("aws:kms", Some(OTHER))],
    );
    p.prober.replication.destinations[0].expected_kms_key = None;
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Ok, "{:?}", v[0].reason);
    assert_eq!(v[0].replica.key_matches, None, "not judged");
    assert_eq!(v[0].expected_kms_key, "");
    let ids: Vec<&str> = v[0]
        .findings
        .iter()
        .flatten()
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(ids, ["expected_kms_key_unknown"]);
    // A replica that is not SSE-KMS at all is still caught.
    let mut p = placed(
        PLACED,
        vec![status("COMPLETED")],
        vec![replica("AES256", None)],
    );
    p.prober.replication.destinations[0].expected_kms_key = None;
    assert_eq!(outcomes(&mut p).await, [Outcome::NotKmsEncrypted]);
}

// GetObject first: one request for a healthy destination; HeadObject only when it fails.

#[tokio::test]
async fn a_healthy_destination_costs_one_get_and_no_head() {
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(EXPECTED))])
    });
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Ok, "{:?}", v[0].reason);
    assert_eq!(v[0].replica.kms_key.as_deref(), Some(EXPECTED));
    assert_eq!(v[0].replica.readable, Some(true));
    // The GetObject, then the replica's delete: no HeadObject.
    assert_eq!(
        p.prober.destinations[0].calls(),
        ["GetObject", "DeleteObject"],
        "one read of the replica"
    );
}

#[tokio::test]
async fn a_get_refused_by_kms_is_told_by_one_head() {
    let denied = err(ErrorClass::AccessDenied, 403, "AccessDenied");
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![replica("aws:kms", Some(EXPECTED))])
            .get(Err(denied))
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::Undecryptable]);
    assert_eq!(p.prober.destinations[0].count("GetObject"), 1);
    assert_eq!(p.prober.destinations[0].count("HeadObject"), 1);
}

#[tokio::test]
async fn an_archived_replica_is_judged_by_its_head_after_the_get_failed() {
    let archived = |sse: &str, key: &str| {
        replica(sse, Some(key)).map(|h| ObjectHead {
            storage_class: Some("DEEP_ARCHIVE".to_owned()),
            ..h
        })
    };
    let invalid_state = || Err(err(ErrorClass::Archived, 403, "InvalidObjectState"));
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![archived("aws:kms", EXPECTED)])
            .get(invalid_state())
    });
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Ok, "{:?}", v[0].reason);
    assert!(v[0].replica.read_skipped, "judged by its headers alone");
    assert_eq!(v[0].replica.storage_class.as_deref(), Some("DEEP_ARCHIVE"));
    assert_eq!(p.prober.destinations[0].count("HeadObject"), 1);
    // Its headers still decide the key.
    let mut p = pair(vec![status("COMPLETED")], |d| {
        d.heads(vec![archived("aws:kms", OTHER)])
            .get(invalid_state())
    });
    assert_eq!(outcomes(&mut p).await, [Outcome::WrongKmsKey]);
}

#[tokio::test]
async fn a_get_that_found_nothing_is_read_again_once_the_replica_arrived() {
    // FAILED on a source that fans out: the replica was not there for the GetObject, the
    // HeadObjects wait for it, and its body is then read (not judged by the stale 404).
    let missing = || Err(err(ErrorClass::NotFound, 404, "NotFound"));
    let fans = PLACED.replace(
        "    canary_tags:",
        "    source_fans_out: true\n    canary_tags:",
    );
    let mut p = placed(
        &fans,
        vec![status("FAILED")],
        vec![missing(), missing(), replica("aws:kms", Some(EXPECTED))],
    );
    assert_eq!(outcomes(&mut p).await, [Outcome::Ok]);
    assert_eq!(p.prober.destinations[0].count("GetObject"), 2);
}

#[tokio::test]
async fn the_probe_alone_deletes_and_emits_nothing_and_says_what_it_left() {
    let body = SharedBody::default();
    let until = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let locked = Ok(ObjectHead {
        retain_until: Some(until),
        ..replica("aws:kms", Some(EXPECTED)).expect("a head")
    });
    let source = MemStore::new(&body).heads(vec![status("COMPLETED")]);
    let (mut m, metrics) = prober(source, vec![MemStore::new(&body).heads(vec![locked])]);
    let probe = m.prober.probe(&CancellationToken::new()).await;
    let Verdicts::Given(v) = &probe.verdicts else {
        panic!("not cancelled: {:?}", probe.verdicts);
    };
    assert_eq!(v[0].outcome, Outcome::Ok);
    assert_eq!(v[0].findings, None, "findings are the setup cache's");
    let key = v[0].key.clone().expect("key");
    assert!(!m.prober.source.calls().contains(&"DeleteObject".to_owned()));
    assert!(
        !m.prober.destinations[0]
            .calls()
            .contains(&"DeleteObject".to_owned())
    );
    assert!(
        metrics.encode().contains(
            "replicanary_probes_total{destination=\"d0\",outcome=\"ok\",replication=\"r\"} 0"
        ),
        "emitting is the caller's"
    );
    let version = |site, retain_until| WrittenVersion {
        site,
        key: key.clone(),
        version_id: "v1".to_owned(),
        retain_until,
        counted: true,
    };
    assert_eq!(
        probe.leftovers.written,
        [
            version(Site::Source, None),
            version(Site::Destination(0), Some(until))
        ]
    );
    assert!(probe.leftovers.watches.is_empty());
    assert_eq!(
        metrics.canaries_outstanding(),
        2,
        "counted outstanding from the write on"
    );
    let stores = m.prober.stores();
    m.janitor
        .record(&m.prober.replication, stores, probe.leftovers)
        .await;
    assert_eq!(
        metrics.canaries_outstanding(),
        1,
        "the source version deleted, the replica retained: each counted once"
    );
}

#[tokio::test]
async fn a_cancelled_probe_says_so_and_leaves_its_key_watched() {
    let body = SharedBody::default();
    let source = MemStore::new(&body).heads(vec![status("PENDING")]);
    let (mut m, _) = prober(source, vec![MemStore::new(&body)]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let probe = m.prober.probe(&cancel).await;
    assert!(
        matches!(probe.verdicts, Verdicts::Cancelled),
        "{:?}",
        probe.verdicts
    );
    let [w] = probe.leftovers.written.as_slice() else {
        panic!("the source version only: {:?}", probe.leftovers.written);
    };
    assert_eq!(w.site, Site::Source);
    assert!(
        matches!(probe.leftovers.watches.as_slice(), [Watch::Destinations { key, .. }] if *key == w.key),
        "{:?}",
        probe.leftovers.watches
    );
    // A cancelled round still deletes the canary it wrote (the one above was the probe
    // alone: nothing of it was handed to the janitor).
    let verdicts = m.probe(&cancel).await;
    assert!(verdicts.given().is_none());
    assert_eq!(m.prober.source.count("DeleteObject"), 1);
}

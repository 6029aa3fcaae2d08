//! The reader table, row by row.

use super::outcome;
use crate::aws::ErrorClass as E;
use crate::model::ReaderOutcome as R;

/// The GET's answer, the HEAD's (if one was made), and the outcome they give.
type Row = (Result<(), E>, Option<Result<(), E>>, R);

#[test]
fn the_reader_table() {
    let rows: &[Row] = &[
        (Ok(()), None, R::Ok),
        (Err(E::Credentials), None, R::CredentialsFailed),
        (Err(E::Transient), None, R::Error),
        (Err(E::Archived), None, R::Skipped),
        // GET refused, HEAD worked: KMS's refusal.
        (Err(E::AccessDenied), Some(Ok(())), R::Undecryptable),
        (Err(E::KmsDisabled), Some(Ok(())), R::Undecryptable),
        (Err(E::KmsInvalidState), Some(Ok(())), R::Undecryptable),
        (Err(E::KmsNotFound), Some(Ok(())), R::Undecryptable),
        // Another 403 code is never KMS's.
        (Err(E::Forbidden), Some(Ok(())), R::Unreadable),
        // GET and HEAD refused: S3's refusal.
        (
            Err(E::AccessDenied),
            Some(Err(E::AccessDenied)),
            R::Unreadable,
        ),
        (Err(E::AccessDenied), Some(Err(E::Forbidden)), R::Unreadable),
        (Err(E::Forbidden), Some(Err(E::AccessDenied)), R::Unreadable),
        // A transient fault on the HEAD concludes nothing.
        (Err(E::AccessDenied), Some(Err(E::Transient)), R::Error),
        (
            Err(E::AccessDenied),
            Some(Err(E::Credentials)),
            R::CredentialsFailed,
        ),
        (Err(E::NotFound), Some(Err(E::NotFound)), R::Error),
        (Err(E::Other), Some(Ok(())), R::Error),
        (Err(E::AccessDenied), None, R::Error),
    ];
    for (get, head, want) in rows {
        let (got, reason) = outcome(*get, *head);
        assert_eq!(got, *want, "GET {get:?}, HEAD {head:?}");
        assert_eq!(
            reason.is_empty(),
            got == R::Ok,
            "a reason unless ok: {get:?} {head:?}"
        );
    }
}

// ---- the stage in the pipeline, against the in-memory store ------------------------------

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::ReaderStore;
use crate::aws::ObjectHead;
use crate::config::Config;
use crate::daemon::Monitor;
use crate::emit::Sinks;
use crate::metrics::Metrics;
use crate::model::Outcome;
use crate::probe::Prober;
use crate::testing::{MemStore, SharedBody, err};

const KEY: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab";

fn replica() -> ObjectHead {
    ObjectHead {
        replication_status: Some("REPLICA".to_owned()),
        server_side_encryption: Some("aws:kms".to_owned()),
        kms_key_id: Some(KEY.to_owned()),
        ..ObjectHead::default()
    }
}

fn status(s: &str) -> ObjectHead {
    ObjectHead {
        replication_status: Some(s.to_owned()),
        ..ObjectHead::default()
    }
}

/// A prober whose one destination has four readers, answering as `readers` says.
fn prober(
    source_says: &str,
    destination_heads: Vec<Result<ObjectHead, crate::aws::AwsError>>,
) -> (Monitor<MemStore>, Arc<Metrics>) {
    prober_with(source_says, destination_heads, None)
}

/// [`prober`], the destination's GetObject answering `destination_get` when given.
fn prober_with(
    source_says: &str,
    destination_heads: Vec<Result<ObjectHead, crate::aws::AwsError>>,
    destination_get: Option<crate::aws::AwsError>,
) -> (Monitor<MemStore>, Arc<Metrics>) {
    let yaml = format!(
        "defaults: {{interval: 1m, replication_timeout: 100ms, poll: {{initial: 10ms, max: 40ms}}}}\n\
         replications:\n  - name: r\n    source: {{bucket: src-bucket, region: ap-northeast-1}}\n    destinations:\n\
         \x20     - name: d\n        bucket: dst-bucket\n        region: ap-northeast-1\n        expected_kms_key_arn: {KEY}\n        readers:\n\
         \x20         - {{name: fine, role_arn: 'arn:aws:iam::222222222222:role/fine'}}\n\
         \x20         - {{name: nokms, role_arn: 'arn:aws:iam::222222222222:role/nokms'}}\n\
         \x20         - {{name: nos3, role_arn: 'arn:aws:iam::222222222222:role/nos3'}}\n\
         \x20         - {{name: locked, role_arn: 'arn:aws:iam::222222222222:role/locked'}}\n"
    );
    let rep = Config::parse(&yaml)
        .expect("test configuration is valid")
        .replications
        .remove(0);
    let body = SharedBody::default();
    let source = MemStore::new(&body).heads(vec![Ok(status(source_says))]);
    let mut destination = MemStore::new(&body).heads(destination_heads);
    if let Some(e) = destination_get {
        destination = destination.get(Err(e));
    }
    let denied = || err(E::AccessDenied, 403, "AccessDenied");
    let stores = vec![
        MemStore::new(&body).heads(vec![Ok(replica())]),
        MemStore::new(&body)
            .get(Err(denied()))
            .heads(vec![Ok(replica())]),
        MemStore::new(&body)
            .get(Err(denied()))
            .heads(vec![Err(denied())]),
        MemStore::new(&body).get(Err(err(E::Credentials, 403, "credentials"))),
    ];
    let readers = rep.destinations[0]
        .readers
        .iter()
        .cloned()
        .zip(stores)
        .map(|(reader, store)| ReaderStore { reader, store })
        .collect();
    let metrics = Arc::new(Metrics::new());
    let sinks = Sinks::new(metrics.clone(), Arc::default());
    let p = Prober::new(rep, source, vec![destination], sinks).with_readers(vec![readers]);
    (Monitor::new(p), metrics)
}

fn series(metrics: &Metrics, reader: &str, name: &str, outcome: Option<&str>) -> Option<String> {
    let text = metrics.encode();
    let want = match outcome {
        Some(o) => format!(
            "{name}{{destination=\"d\",outcome=\"{o}\",reader=\"{reader}\",replication=\"r\"}} "
        ),
        None => format!("{name}{{destination=\"d\",reader=\"{reader}\",replication=\"r\"}} "),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&want).map(str::to_owned))
}

#[tokio::test]
async fn each_reader_reads_the_replica_and_the_verdict_stays_ok() {
    let (mut p, metrics) = prober("COMPLETED", vec![Ok(replica())]);
    // Every reader outcome is exported at 0 before the first probe.
    for o in R::ALL {
        assert_eq!(
            series(
                &metrics,
                "nokms",
                "replicanary_reader_probes_total",
                Some(o.as_str())
            )
            .as_deref(),
            Some("0"),
            "{o:?}"
        );
    }
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Ok, "{:?}", v[0].reason);
    let got: Vec<(&str, R)> = v[0]
        .readers
        .iter()
        .map(|r| (r.reader.as_str(), r.outcome))
        .collect();
    assert_eq!(
        got,
        [
            ("fine", R::Ok),
            ("nokms", R::Undecryptable),
            ("nos3", R::Unreadable),
            ("locked", R::CredentialsFailed)
        ]
    );
    // HEAD only after a failed GET, never after a credentials failure.
    let readers = &p.prober.readers[0];
    assert_eq!(readers[0].store.calls(), ["GetObject"]);
    assert_eq!(readers[1].store.calls(), ["GetObject", "HeadObject"]);
    assert_eq!(readers[3].store.calls(), ["GetObject"]);
    // Findings join the destination's.
    let ids: Vec<&str> = v[0]
        .findings
        .iter()
        .flatten()
        .map(|f| f.id.as_str())
        .collect();
    assert!(
        ids.contains(&"reader_s3_denied") && ids.contains(&"reader_cannot_be_assumed"),
        "{ids:?}"
    );
    // Metrics: counted, readability 1 / 0, the standing outcome.
    for (reader, outcome, readable) in [
        ("fine", "ok", "1"),
        ("nokms", "undecryptable", "0"),
        ("nos3", "unreadable", "0"),
        ("locked", "credentials_failed", "0"),
    ] {
        assert_eq!(
            series(
                &metrics,
                reader,
                "replicanary_reader_probes_total",
                Some(outcome)
            )
            .as_deref(),
            Some("1"),
            "{reader}"
        );
        assert_eq!(
            series(&metrics, reader, "replicanary_reader_readable", None).as_deref(),
            Some(readable),
            "{reader}"
        );
        assert_eq!(
            series(
                &metrics,
                reader,
                "replicanary_reader_verdict",
                Some(outcome)
            )
            .as_deref(),
            Some("1"),
            "{reader}"
        );
    }
}

#[tokio::test]
async fn without_a_replica_every_reader_is_skipped_and_reads_nothing() {
    let missing = || Err(err(E::NotFound, 404, "NotFound"));
    let (mut p, metrics) = prober("FAILED", vec![missing()]);
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::ReplicationFailed);
    assert!(
        v[0].readers.iter().all(|r| r.outcome == R::Skipped),
        "{:?}",
        v[0].readers
    );
    assert!(
        p.prober.readers[0]
            .iter()
            .all(|r| r.store.calls().is_empty())
    );
    assert_eq!(
        series(
            &metrics,
            "fine",
            "replicanary_reader_probes_total",
            Some("skipped")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        series(&metrics, "fine", "replicanary_reader_readable", None),
        None,
        "absent while skipped"
    );
}

#[test]
fn a_reader_no_longer_listed_loses_its_series_and_the_others_keep_theirs() {
    let metrics = Metrics::new();
    metrics.register_readers("r", "d", &["fine", "restore"]);
    assert_eq!(
        series(
            &metrics,
            "restore",
            "replicanary_reader_probes_total",
            Some("ok")
        )
        .as_deref(),
        Some("0")
    );
    metrics.register_readers("r", "d", &["fine"]);
    assert_eq!(
        series(
            &metrics,
            "restore",
            "replicanary_reader_probes_total",
            Some("ok")
        ),
        None
    );
    assert_eq!(
        series(
            &metrics,
            "fine",
            "replicanary_reader_probes_total",
            Some("ok")
        )
        .as_deref(),
        Some("0")
    );
    metrics.remove_destination("r", "d");
    assert_eq!(
        series(
            &metrics,
            "fine",
            "replicanary_reader_probes_total",
            Some("ok")
        ),
        None
    );
}

#[tokio::test]
async fn an_archived_replica_is_skipped_by_every_reader() {
    let archived = ObjectHead {
        storage_class: Some("DEEP_ARCHIVE".to_owned()),
        ..replica()
    };
    let archived_get = err(E::Archived, 403, "InvalidObjectState");
    let (mut p, _) = prober_with("COMPLETED", vec![Ok(archived)], Some(archived_get));
    let v = p
        .probe(&CancellationToken::new())
        .await
        .given()
        .expect("verdicts");
    assert_eq!(v[0].outcome, Outcome::Ok, "{:?}", v[0].reason);
    assert!(v[0].replica.read_skipped);
    assert!(
        v[0].readers.iter().all(|r| r.outcome == R::Skipped),
        "{:?}",
        v[0].readers
    );
    assert!(
        p.prober.readers[0]
            .iter()
            .all(|r| r.store.calls().is_empty())
    );
}

#[tokio::test]
async fn the_key_policy_is_read_once_for_several_probes_and_a_refusal_is_named() {
    let (mut p, _) = prober("COMPLETED", vec![Ok(replica())]);
    for _ in 0..3 {
        let v = p
            .probe(&CancellationToken::new())
            .await
            .given()
            .expect("verdicts");
        assert_eq!(v[0].outcome, Outcome::Ok);
        let nokms = &v[0].readers[1];
        assert_eq!(nokms.outcome, R::Undecryptable);
        let ids: Vec<&str> = nokms.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            ["cannot_inspect:GetKeyPolicy"],
            "the policy could not be read"
        );
    }
    assert_eq!(
        p.prober.destinations[0].count("GetKeyPolicy"),
        1,
        "cached like the setup, not read every probe"
    );
}

#[tokio::test]
async fn audit_names_a_key_policy_it_cannot_read_once_per_destination() {
    let (mut p, _) = prober("COMPLETED", vec![Ok(replica())]);
    let entries = p.audit().await;
    let ids: Vec<&str> = entries[0].1.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["cannot_inspect:GetKeyPolicy"], "{entries:?}");
    assert!(
        p.prober.readers[0]
            .iter()
            .all(|r| r.store.calls().is_empty()),
        "audit reads nothing as the readers"
    );
}

//! Stage 3 of a probe, the destination: one GetObject of the replica shows its headers
//! (key id, replication status, storage class, Object Lock retention) and proves the
//! destination role can decrypt it. Only when that GetObject fails does a HeadObject (and,
//! after a 403, a listing of the key's versions) tell why: a replica that is not there, one
//! S3 refuses, one KMS refuses, or an archived one judged by its headers alone.
//!
//! A healthy destination costs one request; a failing one costs the GetObject plus what
//! the HeadObject-first order cost before, and ends with the same verdict.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::decide::{Answer, Decision, Replica, SourceSaid, Stage, decide, judge};
use super::poll::Backoff;
use super::{Prober, WrittenCanary};
use crate::aws::{ErrorClass, GotObject, ObjectHead, ObjectStore, SetupReader};
use crate::canary;
use crate::model::{AwsError, DestinationVerdict, Outcome, ReplicaFacts};

/// A replica body may exceed the canary by this much before reading stops.
const BODY_MARGIN: usize = 1024;

impl<S: ObjectStore + SetupReader> Prober<S> {
    /// Checks destination `i`'s replica; also says whether a replica was seen (and so must
    /// be deleted). `None`: cancelled.
    pub(super) async fn check_destination(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        said: SourceSaid,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Option<(DestinationVerdict, bool)> {
        let dest = &self.replication.destinations[i];
        let got = self.fetch(i, w).await;
        let answer = match &got {
            Ok(g) if is_replica(&g.head) => Answer::Ok,
            Ok(_) => Answer::NotAReplica,
            Err(e) => Answer::Failed(e.class),
        };
        let fetch_error = match (decide(Stage::Fetch(said), answer), got) {
            (Decision::Next, Ok(g)) => {
                let verdict = self.judge_replica(i, w, said, &g.head, Ok(g.body)).await;
                return Some((verdict, true));
            }
            (Decision::Verdict(outcome, reason), got) => {
                let verdict = self
                    .draft(w, dest, outcome)
                    .with_reason(reason)
                    .with_error(got.err());
                return Some((verdict, false));
            }
            // HeadObject tells why the GetObject did not show the replica.
            (_, got) => got.err(),
        };
        match self.inspect_stage(i, w, said, deadline, cancel).await? {
            Ok((head, waited)) => {
                // The GetObject's failure is judged as a read of a replica HeadObject saw,
                // unless the replica may have arrived since (read again then).
                let read = match fetch_error {
                    Some(e) if !waited => Err(e),
                    _ => self.fetch(i, w).await.map(|g| g.body),
                };
                Some((self.judge_replica(i, w, said, &head, read).await, true))
            }
            // A replica S3 refuses to HEAD but lists under the canary's version id is still
            // this canary's replica: it is deleted like one that was seen.
            Err(verdict) => {
                let listed = verdict.replica.listed == Some(true);
                Some((verdict, listed))
            }
        }
    }

    /// GetObject of the replica as the destination role, the body read up to the canary's
    /// size + [`BODY_MARGIN`].
    async fn fetch(&self, i: usize, w: &WrittenCanary<'_>) -> Result<GotObject, AwsError> {
        let bucket = &self.replication.destinations[i].bucket;
        let limit = w.canary.body.len() + BODY_MARGIN;
        let version_id = w.version_id.as_deref().unwrap_or_default();
        self.destinations[i]
            .get(bucket, &w.canary.key, version_id, limit)
            .await
    }

    /// HeadObject of the replica as the destination role, after a GetObject that did not
    /// show it: its headers (and whether they were seen only after waiting for the replica),
    /// or the verdict that ends this destination's check. `None`: cancelled.
    async fn inspect_stage(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        said: SourceSaid,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Option<Result<(ObjectHead, bool), DestinationVerdict>> {
        let dest = &self.replication.destinations[i];
        let Inspected {
            head,
            listed,
            waited,
        } = self.inspect(i, w, said, deadline, cancel).await?;
        let head_error = head.as_ref().err().cloned();
        let (answer, error) = match (&head, listed) {
            (Ok(h), _) if is_replica(h) => (Answer::Ok, None),
            (Ok(_), _) => (Answer::NotAReplica, None),
            (Err(_), Some(Listed::Present)) => (Answer::RefusedPresent, head_error),
            (Err(_), Some(Listed::Absent)) => (Answer::RefusedAbsent, head_error),
            // The listing failed for another reason than a refusal: that failure decides.
            (Err(_), Some(Listed::Unknown(e))) if !is_refusal(&e) => {
                (Answer::Failed(e.class), Some(e))
            }
            (Err(e), _) => (Answer::Failed(e.class), head_error),
        };
        let listed = match answer {
            Answer::RefusedPresent => Some(true),
            Answer::RefusedAbsent => Some(false),
            _ => None,
        };
        Some(match (decide(Stage::Inspect(said), answer), head) {
            (Decision::Next, Ok(head)) => Ok((head, waited)),
            (Decision::Verdict(outcome, reason), head) => {
                let facts = ReplicaFacts {
                    readable: (outcome == Outcome::Unreadable).then_some(false),
                    listed,
                    ..ReplicaFacts::default()
                };
                let reason = match &head {
                    Ok(h) => format!(
                        "{reason} (the object at the canary's version has replication status {})",
                        h.replication_status.as_deref().unwrap_or("none")
                    ),
                    Err(_) => reason.to_owned(),
                };
                Err(self.conclude(w, dest, outcome, &reason, facts, error).await)
            }
            (_, _) => Err(self.draft(w, dest, Outcome::Error).with_error(error)),
        })
    }

    /// The verdict on a replica whose headers were seen (by GetObject or HeadObject) and
    /// the outcome of reading its body. An archived replica is judged by its headers alone.
    async fn judge_replica(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        said: SourceSaid,
        head: &ObjectHead,
        read: Result<Vec<u8>, AwsError>,
    ) -> DestinationVerdict {
        let dest = &self.replication.destinations[i];
        let sse_kms = matches!(
            head.server_side_encryption.as_deref(),
            Some("aws:kms" | "aws:kms:dsse")
        );
        let mut facts = ReplicaFacts {
            server_side_encryption: head.server_side_encryption.clone(),
            kms_key: head.kms_key_id.clone(),
            // No expected key (a discovered destination that names none): not judged.
            key_matches: dest.expected_kms_key.as_ref().map(|expected| {
                sse_kms
                    && head
                        .kms_key_id
                        .as_deref()
                        .is_some_and(|k| expected.matches(k))
            }),
            storage_class: head.storage_class.clone(),
            retain_until: head.retain_until,
            ..ReplicaFacts::default()
        };
        let body = match read {
            Ok(body) => Some(body),
            // Archived: its headers alone are judged, whatever the read said.
            Err(_) if head.is_archived() => None,
            Err(e) => match decide(Stage::Read(said), Answer::Failed(e.class)) {
                Decision::Verdict(outcome, reason) => {
                    if matches!(outcome, Outcome::Undecryptable | Outcome::Unreadable) {
                        facts.readable = Some(false);
                    }
                    return self
                        .conclude(w, dest, outcome, reason, facts, Some(e))
                        .await;
                }
                Decision::SkipRead | Decision::Next | Decision::Inspect => None,
            },
        };
        facts.read_skipped = body.is_none();
        facts.readable = body.as_ref().map(|_| true);
        let (outcome, reason) = judge(Replica {
            sse_kms,
            key_matches: facts.key_matches,
            body_matches: body.map(|b| canary::sha256_hex(&b) == w.canary.sha256),
        });
        self.draft(w, dest, outcome)
            .with_reason(reason)
            .with_replica(facts)
    }

    /// HeadObject of the replica; after a 403, a listing of the key's versions tells a
    /// replica S3 refuses from a missing one. While the source says `FAILED` and its status
    /// also stands for other destinations (`source_fans_out`: several destinations, or other
    /// rules replicating the same canaries), a replica that is not there yet may be on its
    /// way (another destination failed): look again with the polling backoff until
    /// `replication_timeout`.
    /// `None`: cancelled.
    async fn inspect(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        said: SourceSaid,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Option<Inspected> {
        let s = &self.replication.settings;
        let bucket = &self.replication.destinations[i].bucket;
        let version_id = w.version_id.as_deref().unwrap_or_default();
        let mut backoff = Backoff::new(s.poll_initial, s.poll_max);
        let fan_out = said == SourceSaid::Failed && self.replication.source_fans_out;
        let mut waited = false;
        loop {
            let head = self.destinations[i]
                .head(bucket, &w.canary.key, version_id)
                .await;
            let listed = match &head {
                Err(e) if is_refusal(e) => {
                    Some(self.list_replica(i, &w.canary.key, version_id).await)
                }
                _ => None,
            };
            let not_there = match (&head, &listed) {
                (Ok(h), _) => !is_replica(h),
                (Err(_), Some(Listed::Present)) => false,
                (Err(e), _) => matches!(e.class, ErrorClass::NotFound) || is_refusal(e),
            };
            let now = Instant::now();
            if !fan_out || !not_there || now >= deadline {
                return Some(Inspected {
                    head,
                    listed,
                    waited,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.step().min(deadline - now)) => waited = true,
                () = cancel.cancelled() => return None,
            }
        }
    }

    /// Lists the versions of exactly `key` in destination `i` (the destination probe role's
    /// prefix-conditioned `s3:ListBucketVersions`): is `version_id` there?
    async fn list_replica(&self, i: usize, key: &str, version_id: &str) -> Listed {
        let bucket = &self.replication.destinations[i].bucket;
        match self.destinations[i].list_versions(bucket, key, 100).await {
            Ok(versions)
                if versions
                    .iter()
                    .any(|v| v.key == key && v.version_id == version_id) =>
            {
                Listed::Present
            }
            Ok(_) => Listed::Absent,
            Err(e) => Listed::Unknown(e),
        }
    }
}

/// What inspecting a replica showed: its HeadObject and, after a 403, a listing.
struct Inspected {
    head: Result<ObjectHead, AwsError>,
    listed: Option<Listed>,
    /// The replica was looked for more than once (it may have arrived in between).
    waited: bool,
}

/// Whether a listing of the key shows the replica's version.
enum Listed {
    Present,
    Absent,
    /// The listing failed: refused too (existence cannot be told), or another failure.
    Unknown(AwsError),
}

/// S3 refused the call (403): the caller may not, or — for HeadObject without
/// `s3:ListBucket` — the object is not there.
fn is_refusal(e: &AwsError) -> bool {
    matches!(e.class, ErrorClass::AccessDenied | ErrorClass::Forbidden)
}

/// Whether HeadObject shows a replica (as opposed to some other object version).
fn is_replica(head: &ObjectHead) -> bool {
    head.replication_status.as_deref() == Some("REPLICA")
}

//! Stage 3 of a probe, the read of the destination: one GetObject of the replica shows its headers
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
use super::inspect::{Inspection, is_replica};
use super::{Prober, WrittenCanary};
use crate::aws::{GotObject, ObjectHead, ObjectStore, SetupReader};
use crate::canary;
use crate::model::{AwsError, DestinationVerdict, Outcome, ReplicaFacts};

/// How one destination's check ended.
#[allow(
    clippy::large_enum_variant,
    reason = "a return value, moved once and never stored"
)]
pub(super) enum Checked {
    /// Its verdict, and whether the replica was seen (and so must be deleted).
    Judged {
        verdict: DestinationVerdict,
        replica_seen: bool,
    },
    /// Shutdown stopped it.
    Cancelled,
}

/// A replica body may exceed the canary by this much before reading stops.
const BODY_MARGIN: usize = 1024;

impl<S: ObjectStore + SetupReader> Prober<S> {
    /// Checks destination `i`'s replica; also says whether a replica was seen (and so must
    /// be deleted).
    pub(super) async fn check_destination(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        said: SourceSaid,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Checked {
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
                return Checked::Judged {
                    verdict,
                    replica_seen: true,
                };
            }
            (Decision::Verdict(outcome, reason), got) => {
                let verdict = self
                    .draft(w, dest, outcome)
                    .with_reason(reason)
                    .with_error(got.err());
                return Checked::Judged {
                    verdict,
                    replica_seen: false,
                };
            }
            // HeadObject tells why the GetObject did not show the replica.
            (_, got) => got.err(),
        };
        match self.inspect_stage(i, w, said, deadline, cancel).await {
            Inspection::Replica { head, waited } => {
                // The GetObject's failure is judged as a read of a replica HeadObject saw,
                // unless the replica may have arrived since (read again then).
                let read = match fetch_error {
                    Some(e) if !waited => Err(e),
                    _ => self.fetch(i, w).await.map(|g| g.body),
                };
                Checked::Judged {
                    verdict: self.judge_replica(i, w, said, &head, read).await,
                    replica_seen: true,
                }
            }
            // A replica S3 refuses to HEAD but lists under the canary's version id is still
            // this canary's replica: it is deleted like one that was seen.
            Inspection::Ended(verdict) => {
                let replica_seen = verdict.replica.listed == Some(true);
                Checked::Judged {
                    verdict,
                    replica_seen,
                }
            }
            Inspection::Cancelled => Checked::Cancelled,
        }
    }

    /// GetObject of the replica as the destination role, the body read up to the canary's
    /// size + [`BODY_MARGIN`].
    pub(super) async fn fetch(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
    ) -> Result<GotObject, AwsError> {
        let bucket = &self.replication.destinations[i].bucket;
        let limit = w.canary.body.len() + BODY_MARGIN;
        let version_id = w.version_id.as_deref().unwrap_or_default();
        self.destinations[i]
            .get(bucket, &w.canary.key, version_id, limit)
            .await
    }

    /// The verdict on a replica whose headers were seen (by GetObject or HeadObject) and
    /// the outcome of reading its body. An archived replica is judged by its headers alone.
    pub(super) async fn judge_replica(
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
}

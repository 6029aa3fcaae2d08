//! Stage 4 of a probe, the inspection: only when the GetObject of the replica did not show
//! it, HeadObject as the destination role (and, after a 403, a listing of the key's
//! versions) tells why — a replica that is not there, one S3 refuses, or one whose read
//! failed for another reason (judged then as a read of a replica HeadObject saw).

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::decide::{Answer, Decision, SourceSaid, Stage, decide};
use super::poll::Backoff;
use super::{Prober, WrittenCanary};
use crate::aws::{ErrorClass, ObjectHead, ObjectStore, SetupReader};
use crate::model::{AwsError, DestinationVerdict, Outcome, ReplicaFacts};

/// What inspecting a replica concluded.
#[allow(
    clippy::large_enum_variant,
    reason = "a return value, moved once and never stored"
)]
pub(super) enum Inspection {
    /// HeadObject showed the replica; `waited`: only after looking more than once.
    Replica { head: ObjectHead, waited: bool },
    /// The verdict that ends this destination's check.
    Ended(DestinationVerdict),
    /// Shutdown stopped it.
    Cancelled,
}

/// Shutdown stopped the inspection.
struct Cancelled;

impl<S: ObjectStore + SetupReader> Prober<S> {
    /// HeadObject of the replica as the destination role, after a GetObject that did not
    /// show it: its headers (and whether they were seen only after waiting for the replica),
    /// or the verdict that ends this destination's check.
    pub(super) async fn inspect_stage(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        said: SourceSaid,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Inspection {
        let dest = &self.replication.destinations[i];
        let Ok(Inspected {
            head,
            listed,
            waited,
        }) = self.inspect(i, w, said, deadline, cancel).await
        else {
            return Inspection::Cancelled;
        };
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
        match (decide(Stage::Inspect(said), answer), head) {
            (Decision::Next, Ok(head)) => Inspection::Replica { head, waited },
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
                Inspection::Ended(self.conclude(w, dest, outcome, &reason, facts, error).await)
            }
            (_, _) => Inspection::Ended(self.draft(w, dest, Outcome::Error).with_error(error)),
        }
    }

    /// HeadObject of the replica; after a 403, a listing of the key's versions tells a
    /// replica S3 refuses from a missing one. While the source says `FAILED` and its status
    /// also stands for other destinations (`source_fans_out`: several destinations, or other
    /// rules replicating the same canaries), a replica that is not there yet may be on its
    /// way (another destination failed): look again with the polling backoff until
    /// `replication_timeout`.
    async fn inspect(
        &self,
        i: usize,
        w: &WrittenCanary<'_>,
        said: SourceSaid,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Inspected, Cancelled> {
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
                return Ok(Inspected {
                    head,
                    listed,
                    waited,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.step().min(deadline - now)) => waited = true,
                () = cancel.cancelled() => return Err(Cancelled),
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
pub(super) fn is_replica(head: &ObjectHead) -> bool {
    head.replication_status.as_deref() == Some("REPLICA")
}

//! The verdicts of one probe: what every verdict carries (replication, destination, key,
//! version, expected key), the same verdict for every destination, and the rule that a
//! missing replica is concluded only while the canary itself is still there.

use super::{Prober, WrittenCanary};
use crate::aws::{ObjectStore, SetupReader};
use crate::config::Destination;
use crate::model::{AwsError, DestinationVerdict, Outcome, ReplicaFacts};

impl<S: ObjectStore + SetupReader> Prober<S> {
    /// A verdict that ends a destination's check. A replica that is not there is
    /// `replica_missing` only while the canary itself still is: if its source version
    /// vanished too, the buckets changed under the probe and nothing can be concluded.
    pub(super) async fn conclude(
        &self,
        w: &WrittenCanary<'_>,
        dest: &Destination,
        outcome: Outcome,
        reason: &str,
        facts: ReplicaFacts,
        error: Option<AwsError>,
    ) -> DestinationVerdict {
        if outcome == Outcome::ReplicaMissing {
            let src = &self.replication.source.bucket;
            let version_id = w.version_id.as_deref().unwrap_or_default();
            if let Err(gone) = self.source.head(src, &w.canary.key, version_id).await {
                return self
                    .draft(w, dest, Outcome::Error)
                    .with_reason(
                        "neither the replica nor the canary's source version is there any more",
                    )
                    .with_replica(facts)
                    .with_error(Some(gone));
            }
        }
        self.draft(w, dest, outcome)
            .with_reason(reason)
            .with_replica(facts)
            .with_error(error)
    }

    /// A verdict of this probe for one destination, with what every verdict carries.
    pub(super) fn draft(
        &self,
        w: &WrittenCanary<'_>,
        dest: &Destination,
        outcome: Outcome,
    ) -> DestinationVerdict {
        let mut v = DestinationVerdict::new(&self.replication.name, &dest.name, outcome);
        v.key = Some(w.canary.key.clone());
        v.version_id = w.version_id.clone();
        v.expected_kms_key = dest
            .expected_kms_key
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        v
    }

    /// The same verdict for every destination (the probe ended before inspecting any).
    pub(super) fn for_all(
        &self,
        w: &WrittenCanary<'_>,
        outcome: Outcome,
        reason: &str,
        error: Option<AwsError>,
    ) -> Vec<DestinationVerdict> {
        self.replication
            .destinations
            .iter()
            .map(|d| {
                self.draft(w, d, outcome)
                    .with_reason(reason)
                    .with_error(error.clone())
            })
            .collect()
    }
}

//! Stage 1 of a probe, the write: PutObject of the canary as the source role. A write that
//! failed transiently, or that took longer than one attempt timeout (retried), may have
//! stored versions nobody saw: its key is left to the janitor's watches.

use std::time::Instant;

use super::decide::{Answer, Decision, Stage, decide};
use super::{Prober, WrittenCanary};
use crate::aws::{ErrorClass, ObjectStore, PutRequest, SetupReader, Site};
use crate::canary::Canary;
use crate::cleanup::Leftovers;
use crate::model::{DestinationVerdict, Outcome};

impl<S: ObjectStore + SetupReader> Prober<S> {
    /// PutObject of the canary: the written version, or the verdicts that end the probe.
    pub(super) async fn write<'c>(
        &mut self,
        canary: &'c Canary,
        left: &mut Leftovers,
    ) -> Result<WrittenCanary<'c>, Vec<DestinationVerdict>> {
        let rep = &self.replication;
        let put_started = Instant::now();
        let put = self
            .source
            .put(PutRequest {
                bucket: &rep.source.bucket,
                key: &canary.key,
                body: &canary.body,
                metadata: &canary.metadata,
                sse_kms_key_id: rep.source.sse_kms_key_id.as_deref(),
                tags: &rep.canary_tags,
            })
            .await;
        let written_at = Instant::now();
        // A failed or retried-after-timeout write may have stored versions nobody saw.
        let uncertain = match &put {
            Err(e) => e.class == ErrorClass::Transient,
            Ok(_) => written_at - put_started >= self.attempt_timeout,
        };
        if uncertain {
            left.watch(Site::Source, &canary.key, written_at);
            left.watch_destinations(&canary.key, written_at);
        }
        let answer = match &put {
            Ok(Some(_)) => Answer::Ok,
            Ok(None) => Answer::NoVersionId,
            Err(e) => Answer::Failed(e.class),
        };
        let mut w = WrittenCanary {
            canary,
            version_id: None,
            written_at,
        };
        let version_id = match (decide(Stage::Write, answer), put) {
            (Decision::Next, Ok(Some(v))) => v,
            (Decision::Verdict(outcome, reason), put) => {
                return Err(self.for_all(&w, outcome, reason, put.err()));
            }
            // The table goes on only with a version id.
            (_, put) => {
                return Err(self.for_all(
                    &w,
                    Outcome::Error,
                    "unexpected PutObject answer",
                    put.err(),
                ));
            }
        };
        self.wrote(left, Site::Source, &canary.key, &version_id);
        w.version_id = Some(version_id);
        Ok(w)
    }
}

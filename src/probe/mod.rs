//! One probe, top to bottom: write → await → inspect → read → clean up (SPEC.md §2).
//!
//! [`Prober::probe`] follows one canary through every stage and returns one
//! [`DestinationVerdict`] per destination. It only talks to AWS through
//! [`ObjectStore`], so `tests.rs` drives it with an in-memory store.

pub mod canary;
pub mod poll;
pub mod verdict;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::aws::{AwsError, ErrorClass, ObjectHead, ObjectStore, PutRequest};
use crate::cleanup::{Ledger, Uncertain, Written};
use crate::config::{Destination, Replication};
use crate::diagnose::setup::{
    DestinationSetup, SetupReader, SourceSetup, read_destination, read_source,
};
use crate::diagnose::{Finding, SETUP_TTL, diagnose};
use crate::metrics::{Metrics, Side};
use canary::Canary;
use poll::Backoff;
use verdict::{DestinationVerdict, Outcome, ReplicaFacts};

/// A replica body may exceed the canary by this much before reading stops.
const BODY_MARGIN: usize = 1024;

/// What the source said about replication, once polling ended.
#[derive(Debug, Clone, PartialEq)]
enum Replicated {
    /// `COMPLETED`, first seen this long after the PutObject.
    Completed(Duration),
    Failed,
    /// Still `PENDING` at the deadline.
    TimedOut,
    /// No replication status at all: no enabled rule selects the canary.
    NoStatus,
    /// Polling could not tell.
    Fault(AwsError),
}

/// Probes one replication, again and again, with its stores and its pending deletes.
pub struct Prober<S> {
    pub replication: Replication,
    pub source: S,
    pub destinations: Vec<S>,
    metrics: Arc<Metrics>,
    ledger: Ledger,
    setup: Option<SetupRead>,
    /// A PutObject slower than one attempt timeout was retried: an earlier attempt may
    /// have stored a version nobody saw.
    attempt_timeout: std::time::Duration,
}

/// The replication's setup as the probe roles last read it.
#[derive(Debug, Clone)]
pub struct SetupRead {
    pub read_at: Instant,
    pub source: SourceSetup,
    pub destinations: Vec<DestinationSetup>,
}

impl<S: ObjectStore + SetupReader> Prober<S> {
    pub fn new(
        replication: Replication,
        source: S,
        destinations: Vec<S>,
        metrics: Arc<Metrics>,
    ) -> Prober<S> {
        let ledger = Ledger::new(
            &replication.name,
            &replication.key_prefix(),
            metrics.clone(),
        );
        metrics.register_replication(
            &replication.name,
            replication.settings.interval.as_secs_f64(),
        );
        for d in &replication.destinations {
            metrics.register_destination(&replication.name, &d.name);
        }
        Prober {
            replication,
            source,
            destinations,
            metrics,
            ledger,
            setup: None,
            attempt_timeout: std::time::Duration::from_secs(10),
        }
    }

    /// The SDK's per-attempt timeout (`aws.attempt_timeout`).
    pub fn with_attempt_timeout(mut self, d: std::time::Duration) -> Prober<S> {
        self.attempt_timeout = d;
        self
    }

    /// Runs one probe and emits its verdicts. Returns `None` when `cancel` stopped it
    /// before a verdict (shutdown); its canary is cleaned up all the same.
    pub async fn probe(&mut self, cancel: &CancellationToken) -> Option<Vec<DestinationVerdict>> {
        // Deletes that failed last time go first, so they cannot pile up.
        self.flush_deletes().await;
        let started = Instant::now();
        let canary = Canary::new(&self.replication.key_prefix(), SystemTime::now());
        let mut verdicts = self.run_stages(&canary, cancel).await;
        if let Some(v) = verdicts.as_mut() {
            self.attach_findings(v).await;
        }
        if self.replication.settings.cleanup {
            self.flush_deletes().await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        for v in verdicts.iter().flatten() {
            self.metrics
                .observe_probe_duration(&v.replication, &v.destination, elapsed);
            v.emit(&self.metrics);
        }
        verdicts
    }

    /// Names the causes behind failed verdicts. `ok` clears a destination's findings;
    /// `error` and `credentials_failed` leave them as they were (nothing new was learnt).
    async fn attach_findings(&mut self, verdicts: &mut [DestinationVerdict]) {
        let diagnosable =
            |o: Outcome| !matches!(o, Outcome::Ok | Outcome::Error | Outcome::CredentialsFailed);
        if verdicts.iter().any(|v| diagnosable(v.outcome)) {
            self.read_setup(SETUP_TTL).await;
        }
        let Some(setup) = &self.setup else {
            for v in verdicts.iter_mut().filter(|v| v.outcome == Outcome::Ok) {
                v.findings = Some(Vec::new());
            }
            return;
        };
        for (i, v) in verdicts.iter_mut().enumerate() {
            v.findings = match v.outcome {
                Outcome::Ok => Some(Vec::new()),
                o if diagnosable(o) => Some(diagnose(
                    &self.replication,
                    &self.replication.destinations[i],
                    &setup.source,
                    &setup.destinations[i],
                    Some(v),
                )),
                _ => None,
            };
        }
    }

    /// Reads the setup with the probe roles, unless a read younger than `max_age` exists.
    pub async fn read_setup(&mut self, max_age: std::time::Duration) {
        let fresh = self
            .setup
            .as_ref()
            .is_some_and(|s| s.read_at.elapsed() < max_age);
        if !fresh {
            let source = read_source(&self.source, &self.replication.source.bucket).await;
            let mut destinations = Vec::with_capacity(self.destinations.len());
            for (d, store) in self.replication.destinations.iter().zip(&self.destinations) {
                destinations.push(read_destination(store, &d.bucket).await);
            }
            self.setup = Some(SetupRead {
                read_at: Instant::now(),
                source,
                destinations,
            });
        }
    }

    /// `audit`: the setup checks alone, without a canary. One entry per destination.
    pub async fn audit(&mut self) -> Vec<(String, Vec<Finding>)> {
        self.read_setup(std::time::Duration::ZERO).await;
        let Some(setup) = &self.setup else {
            return Vec::new();
        };
        self.replication
            .destinations
            .iter()
            .zip(&setup.destinations)
            .map(|(d, ds)| {
                let findings = diagnose(&self.replication, d, &setup.source, ds, None);
                (d.name.clone(), findings)
            })
            .collect()
    }

    /// Deletes whatever earlier probes left pending.
    pub async fn flush_deletes(&mut self) {
        if self.ledger.pending() > 0 {
            self.ledger.flush(&self.source, &self.destinations).await;
        }
    }

    async fn run_stages(
        &mut self,
        canary: &Canary,
        cancel: &CancellationToken,
    ) -> Option<Vec<DestinationVerdict>> {
        let rep = &self.replication;
        // 1. Write the canary as the source role.
        let put_started = Instant::now();
        let put = self
            .source
            .put(PutRequest {
                bucket: &rep.source.bucket,
                key: &canary.key,
                body: &canary.body,
                metadata: &canary.metadata,
                sse_kms_key_id: rep.source.sse_kms_key_id.as_deref(),
            })
            .await;
        let written_at = Instant::now();
        // A failed or retried-after-timeout write may have stored versions nobody saw.
        let uncertain = match &put {
            Err(e) => e.class == ErrorClass::Transient,
            Ok(_) => written_at - put_started >= self.attempt_timeout,
        };
        if uncertain && rep.settings.cleanup {
            for side in std::iter::once(None).chain((0..rep.destinations.len()).map(Some)) {
                self.watch_key(&canary.key, side, written_at);
            }
        }
        let rep = &self.replication;
        let version_id = match put {
            Ok(Some(v)) => v,
            Ok(None) => {
                let reason = "the source bucket is not versioned (PutObject returned no version id), \
                              so replication cannot work";
                return Some(self.all(canary, None, Outcome::SourceWriteFailed, reason, None));
            }
            Err(e) => {
                let (outcome, reason) = match e.class {
                    ErrorClass::Credentials => (
                        Outcome::CredentialsFailed,
                        "no credentials for the source role",
                    ),
                    ErrorClass::Transient => {
                        (Outcome::Error, "transient fault while writing the canary")
                    }
                    _ => (
                        Outcome::SourceWriteFailed,
                        "the source role could not write the canary",
                    ),
                };
                return Some(self.all(canary, None, outcome, reason, Some(e)));
            }
        };
        if rep.settings.cleanup {
            self.ledger.add(Written {
                side: Side::Source,
                destination: None,
                bucket: rep.source.bucket.clone(),
                key: canary.key.clone(),
                version_id: version_id.clone(),
            });
        }

        // 2. Await replication as the source role.
        let replicated = tokio::select! {
            r = self.await_replication(&canary.key, &version_id, written_at) => r,
            () = cancel.cancelled() => {
                // Shutdown: no verdict, but a replica may still arrive before we exit.
                if self.replication.settings.cleanup {
                    for i in 0..self.replication.destinations.len() {
                        self.watch_key(&canary.key, Some(i), written_at);
                    }
                }
                return None;
            }
        };

        // 3–4. Inspect and read each destination's replica of that same version.
        let mut verdicts = Vec::with_capacity(rep.destinations.len());
        for i in 0..rep.destinations.len() {
            let (verdict, replica_seen) = self
                .check_destination(i, canary, &version_id, &replicated)
                .await;
            if self.replication.settings.cleanup {
                if replica_seen {
                    let d = &self.replication.destinations[i];
                    self.ledger.add(Written {
                        side: Side::Destination,
                        destination: Some(i),
                        bucket: d.bucket.clone(),
                        key: canary.key.clone(),
                        version_id: version_id.clone(),
                    });
                } else if replicated != Replicated::NoStatus {
                    // Not seen, but it may still arrive (PENDING, a fault): watch.
                    self.watch_key(&canary.key, Some(i), written_at);
                }
            }
            verdicts.push(verdict);
        }
        Some(verdicts)
    }

    /// A replica that is not there is `replica_missing` only while the canary itself still
    /// is: if its source version vanished too, the buckets changed under the probe.
    async fn confirm_missing(
        &self,
        canary: &Canary,
        version_id: &str,
        missing_reason: &'static str,
        missing_error: AwsError,
    ) -> (Outcome, &'static str, AwsError) {
        let src = &self.replication.source.bucket;
        match self.source.head(src, &canary.key, version_id).await {
            Ok(_) => (Outcome::ReplicaMissing, missing_reason, missing_error),
            Err(gone) => (
                Outcome::Error,
                "neither the replica nor the canary's source version is there any more",
                gone,
            ),
        }
    }

    /// Watches a canary key on the source (`None`) or destination `i` for versions nobody
    /// saw — a write that timed out but was stored, a replica still on its way — and
    /// deletes them when they show up, for as long as a replication may take (≤ 15 min).
    fn watch_key(&mut self, key: &str, side: Option<usize>, written_at: Instant) {
        let s = &self.replication.settings;
        let until = written_at
            + (s.replication_timeout + s.poll_max).min(std::time::Duration::from_secs(900));
        let (side_label, bucket) = match side {
            None => (Side::Source, &self.replication.source.bucket),
            Some(i) => (Side::Destination, &self.replication.destinations[i].bucket),
        };
        self.ledger.add_uncertain(Uncertain {
            side: side_label,
            destination: side,
            bucket: bucket.clone(),
            key: key.to_owned(),
            until,
        });
    }

    /// Polls the source version's replication status with backoff until it settles.
    async fn await_replication(
        &self,
        key: &str,
        version_id: &str,
        written_at: Instant,
    ) -> Replicated {
        let s = &self.replication.settings;
        let deadline = written_at + s.replication_timeout;
        let mut backoff = Backoff::new(s.poll_initial, s.poll_max);
        let mut polls_without_status = 0;
        loop {
            let polled_at = Instant::now();
            let last_fault = match self
                .source
                .head(&self.replication.source.bucket, key, version_id)
                .await
            {
                Ok(head) => match head.replication_status.as_deref() {
                    Some("COMPLETED" | "COMPLETE") => {
                        return Replicated::Completed(polled_at - written_at);
                    }
                    Some("FAILED") => return Replicated::Failed,
                    Some(_) => None,
                    None => {
                        // S3 sets the status at write time; a second look rules out a race.
                        polls_without_status += 1;
                        if polls_without_status >= 2 {
                            return Replicated::NoStatus;
                        }
                        None
                    }
                },
                // Transient faults are retried until the deadline; anything else is final.
                Err(e) if e.class == ErrorClass::Transient => Some(e),
                Err(e) => return Replicated::Fault(e),
            };
            let now = Instant::now();
            if now >= deadline {
                return match last_fault {
                    Some(e) => Replicated::Fault(e),
                    None => Replicated::TimedOut,
                };
            }
            let wait = backoff.step().min(deadline - now);
            tokio::time::sleep(wait).await;
        }
    }

    /// Inspects and reads one destination's replica. Also says whether a replica was seen
    /// (and so must be deleted).
    async fn check_destination(
        &self,
        i: usize,
        canary: &Canary,
        version_id: &str,
        replicated: &Replicated,
    ) -> (DestinationVerdict, bool) {
        let dest = &self.replication.destinations[i];
        let store = &self.destinations[i];
        let verdict = |outcome, reason: &str, facts, err| {
            self.verdict(
                dest,
                canary,
                Some(version_id),
                outcome,
                reason,
                facts,
                err,
                replicated,
            )
        };
        // What the source's status implies when this destination has no replica.
        let missing = match replicated {
            Replicated::Completed(_) => Outcome::ReplicaMissing,
            Replicated::Failed => Outcome::ReplicationFailed,
            Replicated::TimedOut => Outcome::ReplicationTimeout,
            Replicated::NoStatus => {
                let reason =
                    "the source object never got a replication status: no enabled rule selects it";
                return (
                    verdict(
                        Outcome::NotReplicated,
                        reason,
                        ReplicaFacts::default(),
                        None,
                    ),
                    false,
                );
            }
            Replicated::Fault(e) => {
                let (outcome, reason) = if e.class == ErrorClass::Credentials {
                    (
                        Outcome::CredentialsFailed,
                        "no credentials for the source role",
                    )
                } else {
                    (
                        Outcome::Error,
                        "could not read the canary's replication status",
                    )
                };
                return (
                    verdict(outcome, reason, ReplicaFacts::default(), Some(e.clone())),
                    false,
                );
            }
        };
        let missing_reason = match missing {
            Outcome::ReplicationFailed => {
                "S3 reported replication FAILED and this destination has no replica"
            }
            Outcome::ReplicationTimeout => {
                "replication was still PENDING when replication_timeout passed"
            }
            _ => "the source says COMPLETED but the replica version is not in the destination",
        };
        let single = self.replication.destinations.len() == 1;

        // 3. Inspect the replica as the destination role.
        let head: ObjectHead = match store.head(&dest.bucket, &canary.key, version_id).await {
            Ok(h) if h.replication_status.as_deref() == Some("REPLICA") => h,
            Ok(h) => {
                let reason = format!(
                    "the destination object at the canary's version is not a replica (status {})",
                    h.replication_status.as_deref().unwrap_or("none")
                );
                return (
                    verdict(missing, &reason, ReplicaFacts::default(), None),
                    false,
                );
            }
            Err(e) => {
                let none = ReplicaFacts::default();
                return match e.class {
                    ErrorClass::Credentials => (
                        verdict(
                            Outcome::CredentialsFailed,
                            "no credentials for the destination role",
                            none,
                            Some(e),
                        ),
                        false,
                    ),
                    // Before saying the replica is missing, make sure the canary is still
                    // there: if its source version vanished too, the buckets changed under
                    // the probe and nothing can be concluded.
                    ErrorClass::NotFound if missing == Outcome::ReplicaMissing => {
                        let (outcome, reason, err) = self
                            .confirm_missing(canary, version_id, missing_reason, e)
                            .await;
                        (verdict(outcome, reason, none, Some(err)), false)
                    }
                    ErrorClass::NotFound => {
                        (verdict(missing, missing_reason, none, Some(e)), false)
                    }
                    ErrorClass::AccessDenied if missing == Outcome::ReplicaMissing => {
                        let reason = "the destination role may not even HeadObject the replica";
                        let facts = ReplicaFacts {
                            readable: Some(false),
                            ..none
                        };
                        (
                            verdict(Outcome::Undecryptable, reason, facts, Some(e)),
                            true,
                        )
                    }
                    // With one destination, FAILED or PENDING already name the verdict.
                    _ if single && missing != Outcome::ReplicaMissing => {
                        (verdict(missing, missing_reason, none, Some(e)), true)
                    }
                    _ => (
                        verdict(
                            Outcome::Error,
                            "could not inspect the replica",
                            none,
                            Some(e),
                        ),
                        true,
                    ),
                };
            }
        };
        let is_kms = matches!(
            head.server_side_encryption.as_deref(),
            Some("aws:kms" | "aws:kms:dsse")
        );
        let mut facts = ReplicaFacts {
            server_side_encryption: head.server_side_encryption.clone(),
            kms_key: head.kms_key_id.clone(),
            key_matches: Some(
                is_kms
                    && head
                        .kms_key_id
                        .as_deref()
                        .is_some_and(|k| dest.expected_kms_key.matches(k)),
            ),
            readable: None,
        };

        // 4. Read it as the destination role.
        let body = match store
            .get(
                &dest.bucket,
                &canary.key,
                version_id,
                canary.body.len() + BODY_MARGIN,
            )
            .await
        {
            Ok(b) => b,
            Err(e) => {
                if e.class == ErrorClass::NotFound && missing == Outcome::ReplicaMissing {
                    let (outcome, reason, err) = self
                        .confirm_missing(canary, version_id, missing_reason, e)
                        .await;
                    return (verdict(outcome, reason, facts, Some(err)), true);
                }
                let (outcome, reason) = match e.class {
                    ErrorClass::AccessDenied => (
                        Outcome::Undecryptable,
                        "the destination role cannot read the replica: S3 answered AccessDenied (KMS refused the key)",
                    ),
                    ErrorClass::KmsDisabled => {
                        (Outcome::Undecryptable, "the replica's KMS key is disabled")
                    }
                    ErrorClass::KmsInvalidState => (
                        Outcome::Undecryptable,
                        "the replica's KMS key is in an unusable state (pending deletion or import)",
                    ),
                    ErrorClass::KmsNotFound => (
                        Outcome::Undecryptable,
                        "the replica's KMS key does not exist",
                    ),
                    ErrorClass::Credentials => (
                        Outcome::CredentialsFailed,
                        "no credentials for the destination role",
                    ),
                    ErrorClass::NotFound => (missing, missing_reason),
                    ErrorClass::Transient | ErrorClass::Other => {
                        (Outcome::Error, "could not read the replica")
                    }
                };
                if outcome == Outcome::Undecryptable {
                    facts.readable = Some(false);
                }
                return (verdict(outcome, reason, facts, Some(e)), true);
            }
        };
        facts.readable = Some(true);
        let (outcome, reason) = if canary::sha256_hex(&body) != canary.sha256 {
            (
                Outcome::ContentMismatch,
                "the replica's bytes differ from the canary's",
            )
        } else if !is_kms {
            (
                Outcome::NotKmsEncrypted,
                "the replica is readable but not SSE-KMS encrypted",
            )
        } else if facts.key_matches != Some(true) {
            (
                Outcome::WrongKmsKey,
                "the replica is readable but encrypted under another KMS key than expected",
            )
        } else {
            (Outcome::Ok, "")
        };
        (verdict(outcome, reason, facts, None), true)
    }

    /// The same verdict for every destination (the probe ended before inspecting any).
    fn all(
        &self,
        canary: &Canary,
        version_id: Option<&str>,
        outcome: Outcome,
        reason: &str,
        err: Option<AwsError>,
    ) -> Vec<DestinationVerdict> {
        let replicated = Replicated::NoStatus;
        self.replication
            .destinations
            .iter()
            .map(|d| {
                self.verdict(
                    d,
                    canary,
                    version_id,
                    outcome,
                    reason,
                    ReplicaFacts::default(),
                    err.clone(),
                    &replicated,
                )
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn verdict(
        &self,
        dest: &Destination,
        canary: &Canary,
        version_id: Option<&str>,
        outcome: Outcome,
        reason: &str,
        replica: ReplicaFacts,
        aws_error: Option<AwsError>,
        replicated: &Replicated,
    ) -> DestinationVerdict {
        DestinationVerdict {
            replication: self.replication.name.clone(),
            destination: dest.name.clone(),
            outcome,
            latency: match replicated {
                Replicated::Completed(l) => Some(*l),
                _ => None,
            },
            key: Some(canary.key.clone()),
            version_id: version_id.map(str::to_owned),
            expected_kms_key: dest.expected_kms_key.to_string(),
            replica,
            reason: (!reason.is_empty()).then(|| reason.to_owned()),
            aws_error,
            findings: None,
            finished_at: SystemTime::now(),
        }
    }
}

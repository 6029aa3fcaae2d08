//! One probe, top to bottom: write → await → inspect → read → clean up.
//!
//! [`Prober::probe`] follows one canary through every stage and returns one
//! [`DestinationVerdict`] per destination. Each stage calls AWS and hands the answer to
//! the decision table ([`decide::decide`]), which says whether the probe goes on or which
//! verdict it ends with. AWS is reached only through the seam's traits, so `tests.rs`
//! drives the whole pipeline with an in-memory store.

pub mod decide;
mod destination;
pub mod poll;
mod readers;

pub use readers::ReaderStore;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::aws::{ErrorClass, ObjectStore, PutRequest, SetupReader};
use crate::canary::Canary;
use crate::cleanup::{
    Ledger, Retry, SWEEP_MAX_CALLS, Sweep, SweepLimits, SweepMemory, SweepReport, Uncertain,
    Written, sweep_bucket,
};
use crate::config::{Destination, Replication};
use crate::diagnose::setup::{DestinationSetup, SourceSetup, read_destination, read_source};
use crate::diagnose::{SETUP_TTL, diagnose, from_replica};
use crate::emit::{self, Sinks};
use crate::model::{AwsError, DestinationVerdict, Finding, Outcome, ReplicaFacts, Side};
use decide::{Answer, Decision, SourceSaid, Stage, decide};
use poll::{FirstPoll, Schedule};

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

/// What polling the source's status showed.
struct Polled {
    replicated: Replicated,
    /// The version's Object Lock retain-until date, if a poll showed one.
    retain_until: Option<SystemTime>,
    /// The last poll (offset from the write) that saw `PENDING`.
    last_pending: Option<Duration>,
}

/// Probes one replication, again and again, with its stores and its pending deletes.
pub struct Prober<S> {
    pub replication: Replication,
    pub source: S,
    pub destinations: Vec<S>,
    sinks: Sinks,
    ledger: Ledger,
    /// What the sweeps remember per bucket: the source's first, then each destination's.
    memories: Vec<SweepMemory>,
    setup: Option<SetupRead>,
    /// Where the next probe starts polling the source's status.
    first_poll: FirstPoll,
    /// A PutObject slower than one attempt timeout was retried: an earlier attempt may
    /// have stored a version nobody saw.
    attempt_timeout: Duration,
    /// Each destination's readers (`readers.rs`); empty without any.
    readers: Vec<Vec<ReaderStore<S>>>,
    key_policies: readers::KeyPolicies,
}

/// The replication's setup as the probe roles last read it.
#[derive(Debug, Clone)]
pub struct SetupRead {
    pub read_at: Instant,
    pub source: SourceSetup,
    pub destinations: Vec<DestinationSetup>,
}

/// The canary one probe wrote: everything its verdicts share.
struct WrittenCanary<'a> {
    canary: &'a Canary,
    version_id: Option<String>,
    written_at: Instant,
}

impl<S: ObjectStore + SetupReader> Prober<S> {
    pub fn new(
        replication: Replication,
        source: S,
        destinations: Vec<S>,
        sinks: Sinks,
    ) -> Prober<S> {
        // A failing delete is tried again no sooner than one interval later.
        let ledger = Ledger::new(
            &replication.name,
            &replication.key_prefix(),
            Retry::every(replication.settings.interval),
            sinks.metrics.clone(),
        );
        let memories = (0..=destinations.len())
            .map(|_| SweepMemory::default())
            .collect();
        sinks.metrics.register_replication(
            &replication.name,
            replication.settings.interval.as_secs_f64(),
        );
        for d in &replication.destinations {
            sinks.register_destination(&replication.name, &d.name);
        }
        Prober {
            replication,
            source,
            destinations,
            sinks,
            ledger,
            memories,
            setup: None,
            first_poll: FirstPoll::default(),
            attempt_timeout: Duration::from_secs(10),
            readers: Vec::new(),
            key_policies: readers::KeyPolicies::new(),
        }
    }

    /// The SDK's per-attempt timeout (`aws.attempt_timeout`).
    pub fn with_attempt_timeout(mut self, d: Duration) -> Prober<S> {
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
            self.skip_unread(v);
            self.attach_reader_findings(v).await;
        }
        if self.replication.settings.cleanup {
            self.flush_deletes().await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        for v in verdicts.iter().flatten() {
            emit::verdict(&self.sinks, v, elapsed);
        }
        verdicts
    }

    /// The stages, in order; any of them may end the probe with its verdicts.
    async fn run_stages(
        &mut self,
        canary: &Canary,
        cancel: &CancellationToken,
    ) -> Option<Vec<DestinationVerdict>> {
        // 1. Write the canary as the source role.
        let w = match self.write(canary).await {
            Ok(w) => w,
            Err(verdicts) => return Some(verdicts),
        };
        let version_id = w.version_id.clone().unwrap_or_default();

        // 2. Await replication as the source role.
        let first = self
            .first_poll
            .start(self.replication.settings.poll_initial);
        let replicated = tokio::select! {
            polled = self.await_replication(&canary.key, &version_id, w.written_at, first) => {
                // A locked source keeps the canary until then: not deleted before.
                if let Some(until) = polled.retain_until {
                    self.ledger.note_retention(None, &canary.key, &version_id, until);
                }
                match &polled.replicated {
                    Replicated::Completed(_) => self.first_poll.completed(polled.last_pending),
                    Replicated::TimedOut | Replicated::NoStatus => self.first_poll.forget(),
                    Replicated::Failed | Replicated::Fault(_) => {}
                }
                polled.replicated
            }
            () = cancel.cancelled() => {
                // Shutdown: no verdict, but a replica may still arrive before we exit.
                self.watch_destinations(&canary.key, w.written_at);
                return None;
            }
        };
        let (said, answer, error) = match &replicated {
            Replicated::Completed(_) => (SourceSaid::Completed, Answer::Ok, None),
            Replicated::Failed => (SourceSaid::Failed, Answer::Ok, None),
            Replicated::TimedOut => (SourceSaid::Pending, Answer::Ok, None),
            Replicated::NoStatus => (SourceSaid::Pending, Answer::NoStatus, None),
            Replicated::Fault(e) => (SourceSaid::Pending, Answer::Failed(e.class), Some(e)),
        };
        if let Decision::Verdict(outcome, reason) = decide(Stage::Await, answer) {
            if replicated != Replicated::NoStatus {
                // Polling failed, but a replica may still arrive: watch for it.
                self.watch_destinations(&canary.key, w.written_at);
            }
            return Some(self.for_all(&w, outcome, reason, error.cloned()));
        }
        let latency = match replicated {
            Replicated::Completed(l) => Some(l),
            _ => None,
        };

        // 3–4. Inspect and read each destination's replica of that same version.
        let deadline = w.written_at + self.replication.settings.replication_timeout;
        let mut verdicts = Vec::with_capacity(self.destinations.len());
        for i in 0..self.destinations.len() {
            let checked = self.check_destination(i, &w, said, deadline, cancel).await;
            let Some((mut verdict, replica_seen)) = checked else {
                self.watch_destinations(&canary.key, w.written_at);
                return None;
            };
            verdict.latency = latency;
            // 5. Each reader reads that replica as itself (never changes the verdict).
            verdict.readers = self.read_as_readers(i, &w, replica_seen, &verdict).await;
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
                    // Object Lock on the destination keeps the replica until then.
                    if let Some(until) = verdict.replica.retain_until {
                        self.ledger
                            .note_retention(Some(i), &canary.key, &version_id, until);
                    }
                } else {
                    // Not seen, but it may still arrive (PENDING, a fault): watch.
                    self.watch_key(&canary.key, Some(i), w.written_at);
                }
            }
            verdicts.push(verdict);
        }
        Some(verdicts)
    }

    /// Stage 1, PutObject of the canary: the written version, or the verdicts that end the probe.
    async fn write<'c>(
        &mut self,
        canary: &'c Canary,
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
        if uncertain && rep.settings.cleanup {
            self.watch_key(&canary.key, None, written_at);
            self.watch_destinations(&canary.key, written_at);
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
        if self.replication.settings.cleanup {
            self.ledger.add(Written {
                side: Side::Source,
                destination: None,
                bucket: self.replication.source.bucket.clone(),
                key: canary.key.clone(),
                version_id: version_id.clone(),
            });
        }
        w.version_id = Some(version_id);
        Ok(w)
    }

    /// Stage 2: polls the source version's replication status on the [`Schedule`] until it
    /// settles, starting where `first` says; also returns the version's Object Lock
    /// retain-until date, if a poll showed one, and the last poll (offset from the write)
    /// that still saw `PENDING`.
    async fn await_replication(
        &self,
        key: &str,
        version_id: &str,
        written_at: Instant,
        first: Duration,
    ) -> Polled {
        let s = &self.replication.settings;
        let deadline = written_at + s.replication_timeout;
        let mut schedule = Schedule::new(first, s.poll_initial, s.poll_max);
        let mut polled = Polled {
            replicated: Replicated::TimedOut,
            retain_until: None,
            last_pending: None,
        };
        let mut polls_without_status = 0;
        loop {
            let due = (written_at + schedule.next_at()).min(deadline);
            tokio::time::sleep_until(due.into()).await;
            let polled_at = Instant::now();
            let last_fault = match self
                .source
                .head(&self.replication.source.bucket, key, version_id)
                .await
            {
                Ok(head) => {
                    if head.retain_until.is_some() {
                        polled.retain_until = head.retain_until;
                    }
                    match head.replication_status.as_deref() {
                        Some("COMPLETED" | "COMPLETE") => {
                            polled.replicated = Replicated::Completed(polled_at - written_at);
                            return polled;
                        }
                        Some("FAILED") => {
                            polled.replicated = Replicated::Failed;
                            return polled;
                        }
                        Some(_) => {
                            polled.last_pending = Some(polled_at - written_at);
                            None
                        }
                        None => {
                            // S3 sets the status at write time; a second look rules out a race.
                            polls_without_status += 1;
                            if polls_without_status >= 2 {
                                polled.replicated = Replicated::NoStatus;
                                return polled;
                            }
                            None
                        }
                    }
                }
                // Transient faults are retried until the deadline; anything else is final.
                Err(e) if e.class == ErrorClass::Transient => Some(e),
                Err(e) => {
                    polled.replicated = Replicated::Fault(e);
                    return polled;
                }
            };
            if Instant::now() >= deadline {
                if let Some(e) = last_fault {
                    polled.replicated = Replicated::Fault(e);
                }
                return polled;
            }
        }
    }

    /// A verdict that ends a destination's check. A replica that is not there is
    /// `replica_missing` only while the canary itself still is: if its source version
    /// vanished too, the buckets changed under the probe and nothing can be concluded.
    async fn conclude(
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
    fn draft(
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
    fn for_all(
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

    /// Names the causes behind failed verdicts. `ok` keeps only what the replica's own
    /// headers tell (its Object Lock retention); `error` and `credentials_failed` leave the
    /// findings as they were (nothing new was learnt).
    async fn attach_findings(&mut self, verdicts: &mut [DestinationVerdict]) {
        let diagnosable =
            |o: Outcome| !matches!(o, Outcome::Ok | Outcome::Error | Outcome::CredentialsFailed);
        if verdicts.iter().any(|v| diagnosable(v.outcome)) {
            self.read_setup(SETUP_TTL).await;
        }
        let rep = &self.replication;
        for (i, v) in verdicts.iter_mut().enumerate() {
            if v.outcome == Outcome::Ok {
                v.findings = Some(from_replica(rep, &rep.destinations[i], v));
            }
        }
        let Some(setup) = &self.setup else {
            return;
        };
        for (i, v) in verdicts.iter_mut().enumerate() {
            v.findings = match v.outcome {
                Outcome::Ok => continue,
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
    pub async fn read_setup(&mut self, max_age: Duration) {
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
        self.read_setup(Duration::ZERO).await;
        let Some(setup) = &self.setup else {
            return Vec::new();
        };
        let mut entries: Vec<(String, Vec<Finding>)> = self
            .replication
            .destinations
            .iter()
            .zip(&setup.destinations)
            .map(|(d, ds)| {
                let findings = diagnose(&self.replication, d, &setup.source, ds, None);
                (d.name.clone(), findings)
            })
            .collect();
        self.audit_readers(&mut entries).await;
        entries
    }

    /// Deletes what earlier probes left pending and is due (see `cleanup::Ledger`).
    pub async fn flush_deletes(&mut self) {
        if self.ledger.pending() > 0 {
            self.ledger.flush(&self.source, &self.destinations).await;
        }
        self.update_retained();
    }

    /// The last flush, at shutdown: every pending version whose retention allows is tried
    /// once more, backoff or not (bounded).
    pub async fn finish(&mut self) {
        if self.ledger.pending() > 0 {
            self.ledger
                .flush_final(&self.source, &self.destinations)
                .await;
        }
        self.update_retained();
    }

    /// Sweeps the source bucket and each destination bucket for leftover canaries, within
    /// the sweep's call budget and before `deadline` (the next probe). What the ledger
    /// tracks is left to it. `startup` only names the sweep in the log.
    pub async fn sweep(&mut self, startup: bool, deadline: Option<Instant>) {
        let rep = &self.replication;
        let prefix = rep.key_prefix();
        let limits = SweepLimits {
            max_calls: SWEEP_MAX_CALLS,
            deadline,
        };
        let now = SystemTime::now();
        for idx in 0..=self.destinations.len() {
            let (store, bucket, side, dest) = match idx.checked_sub(1) {
                None => (&self.source, &rep.source.bucket, Side::Source, None),
                Some(i) => (
                    &self.destinations[i],
                    &rep.destinations[i].bucket,
                    Side::Destination,
                    Some(i),
                ),
            };
            let skip = self.ledger.tracked(dest, bucket);
            let s = Sweep {
                bucket,
                key_prefix: &prefix,
                min_age: rep.settings.sweep_min_age,
                now,
                limits,
            };
            let report = sweep_bucket(store, &s, &mut self.memories[idx], &skip).await;
            log_sweep(&rep.name, side, bucket, startup, report);
        }
        self.update_retained();
    }

    /// `replicanary_canaries_retained`: the ledger's retained versions and those the sweeps
    /// remember, per side.
    fn update_retained(&self) {
        let wall = SystemTime::now();
        for side in Side::ALL {
            let remembered: usize = match side {
                Side::Source => self.memories[..1].iter(),
                Side::Destination => self.memories[1..].iter(),
            }
            .map(|m| m.retained(wall))
            .sum();
            let count = self.ledger.retained(side, wall) + remembered;
            self.sinks
                .metrics
                .set_retained(&self.replication.name, side, count);
        }
    }

    /// Watches a canary key on the source (`None`) or destination `i` for versions nobody
    /// saw — a write that timed out but was stored, a replica still on its way — and
    /// deletes them when they show up, for as long as a replication may take (≤ 15 min).
    fn watch_key(&mut self, key: &str, side: Option<usize>, written_at: Instant) {
        if !self.replication.settings.cleanup {
            return;
        }
        let s = &self.replication.settings;
        let until = written_at + (s.replication_timeout + s.poll_max).min(Duration::from_secs(900));
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

    /// Watches the key on every destination.
    fn watch_destinations(&mut self, key: &str, written_at: Instant) {
        for i in 0..self.replication.destinations.len() {
            self.watch_key(key, Some(i), written_at);
        }
    }
}

fn log_sweep(replication: &str, side: Side, bucket: &str, startup: bool, r: SweepReport) {
    if r.deleted == 0 && r.failed == 0 && !r.truncated {
        return;
    }
    let (listed, deleted, failed, retained, calls) =
        (r.listed, r.deleted, r.failed, r.retained, r.calls);
    let which = if startup { "start-up" } else { "periodic" };
    tracing::info!(
        replication,
        side = side.as_str(),
        bucket,
        listed,
        deleted,
        failed,
        retained,
        calls,
        truncated = r.truncated,
        "{which} sweep removed leftover canaries"
    );
}

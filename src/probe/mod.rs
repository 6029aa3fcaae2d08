//! One probe, top to bottom: write → await → read (→ inspect) → readers.
//!
//! [`Prober::probe`] follows one canary through every stage and returns a [`Probe`]: one
//! [`DestinationVerdict`] per destination (or [`Verdicts::Cancelled`]) and what the canary
//! left behind for the janitor ([`Leftovers`]). Each stage calls AWS and hands the answer
//! to the decision table ([`decide::decide`]), which says whether the probe goes on or
//! which verdict it ends with. One file per stage: `write.rs`, `await_replication.rs`,
//! `destination.rs` (the read), `inspect.rs`, `readers.rs`; `verdict.rs` drafts the
//! verdicts. Findings, deletes and emitting are the caller's (`daemon/task.rs`). AWS is
//! reached only through the seam's traits, so `tests.rs` drives the whole pipeline with an
//! in-memory store.

mod await_replication;
pub mod decide;
mod destination;
mod inspect;
pub mod poll;
mod readers;
mod verdict;
mod write;

pub use crate::cleanup::Leftovers;
pub use readers::ReaderStore;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::aws::{ObjectStore, SetupReader, Site, Stores};
use crate::canary::Canary;
use crate::config::Replication;
use crate::emit::Sinks;
use crate::model::DestinationVerdict;
use await_replication::Replicated;
use decide::{Answer, Decision, SourceSaid, Stage, decide};
use destination::Checked;
use poll::FirstPoll;

/// Probes one replication, again and again, with its stores.
pub struct Prober<S> {
    pub replication: Replication,
    pub source: S,
    pub destinations: Vec<S>,
    sinks: Sinks,
    /// Where the next probe starts polling the source's status.
    first_poll: FirstPoll,
    /// A PutObject slower than one attempt timeout was retried: an earlier attempt may
    /// have stored a version nobody saw.
    attempt_timeout: Duration,
    /// Each destination's readers (`readers.rs`); empty without any.
    readers: Vec<Vec<ReaderStore<S>>>,
}

/// What one probe found and left.
#[derive(Debug)]
pub struct Probe {
    pub verdicts: Verdicts,
    /// The versions it wrote, with their retain-until dates, and its uncertain keys.
    pub leftovers: Leftovers,
    /// When it started: its duration runs from here to its verdicts' emission.
    pub started: Instant,
}

/// How a probe ended.
#[derive(Debug)]
pub enum Verdicts {
    /// One verdict per destination, in configuration order.
    Given(Vec<DestinationVerdict>),
    /// Shutdown stopped it before a verdict (its canary is cleaned up all the same).
    Cancelled,
}

impl Verdicts {
    /// The verdicts; none when cancelled.
    pub fn as_slice(&self) -> &[DestinationVerdict] {
        match self {
            Verdicts::Given(v) => v,
            Verdicts::Cancelled => &[],
        }
    }

    /// The verdicts, to attach findings to; none when cancelled.
    pub fn as_mut_slice(&mut self) -> &mut [DestinationVerdict] {
        match self {
            Verdicts::Given(v) => v,
            Verdicts::Cancelled => &mut [],
        }
    }

    /// The verdicts, or `None` when cancelled.
    pub fn given(self) -> Option<Vec<DestinationVerdict>> {
        match self {
            Verdicts::Given(v) => Some(v),
            Verdicts::Cancelled => None,
        }
    }
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
            first_poll: FirstPoll::default(),
            attempt_timeout: Duration::from_secs(10),
            readers: Vec::new(),
        }
    }

    /// The SDK's per-attempt timeout (`aws.attempt_timeout`).
    pub fn with_attempt_timeout(mut self, d: Duration) -> Prober<S> {
        self.attempt_timeout = d;
        self
    }

    /// Where this replication's verdicts go.
    pub fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    /// The source's and the destinations' stores.
    pub fn stores(&self) -> Stores<'_, S> {
        Stores {
            source: &self.source,
            destinations: &self.destinations,
        }
    }

    /// Runs one probe: its verdicts (or `Cancelled` when `cancel` stopped it first) and
    /// what it left for the janitor. It attaches no findings, deletes nothing and emits no
    /// verdict; it only counts the versions it writes as outstanding.
    pub async fn probe(&mut self, cancel: &CancellationToken) -> Probe {
        let started = Instant::now();
        let canary = Canary::new(&self.replication.key_prefix(), SystemTime::now());
        let mut leftovers = Leftovers::default();
        let mut verdicts = self.run_stages(&canary, &mut leftovers, cancel).await;
        self.skip_unread(verdicts.as_mut_slice());
        Probe {
            verdicts,
            leftovers,
            started,
        }
    }

    /// The stages, in order; any of them may end the probe with its verdicts.
    async fn run_stages(
        &mut self,
        canary: &Canary,
        left: &mut Leftovers,
        cancel: &CancellationToken,
    ) -> Verdicts {
        // 1. Write the canary as the source role.
        let w = match self.write(canary, left).await {
            Ok(w) => w,
            Err(verdicts) => return Verdicts::Given(verdicts),
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
                    left.retained_until(Site::Source, until);
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
                left.watch_destinations(&canary.key, w.written_at);
                return Verdicts::Cancelled;
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
                left.watch_destinations(&canary.key, w.written_at);
            }
            return Verdicts::Given(self.for_all(&w, outcome, reason, error.cloned()));
        }
        let latency = match replicated {
            Replicated::Completed(l) => Some(l),
            _ => None,
        };

        // 3–4. Read (and if that fails, inspect) each destination's replica of that version.
        let deadline = w.written_at + self.replication.settings.replication_timeout;
        let mut verdicts = Vec::with_capacity(self.destinations.len());
        for i in 0..self.destinations.len() {
            let site = Site::Destination(i);
            let (mut verdict, replica_seen) =
                match self.check_destination(i, &w, said, deadline, cancel).await {
                    Checked::Judged {
                        verdict,
                        replica_seen,
                    } => (verdict, replica_seen),
                    Checked::Cancelled => {
                        left.watch_destinations(&canary.key, w.written_at);
                        return Verdicts::Cancelled;
                    }
                };
            verdict.latency = latency;
            // 5. Each reader reads that replica as itself (never changes the verdict).
            verdict.readers = self.read_as_readers(i, &w, replica_seen, &verdict).await;
            if replica_seen {
                self.wrote(left, site, &canary.key, &version_id);
                // Object Lock on the destination keeps the replica until then.
                if let Some(until) = verdict.replica.retain_until {
                    left.retained_until(site, until);
                }
            } else {
                // Not seen, but it may still arrive (PENDING, a fault): watch.
                left.watch(site, &canary.key, w.written_at);
            }
            verdicts.push(verdict);
        }
        Verdicts::Given(verdicts)
    }

    /// A version now exists that cleanup must delete: left to the janitor, and (with
    /// cleanup on) counted in `replicanary_canaries_outstanding` from now on.
    fn wrote(&self, left: &mut Leftovers, site: Site, key: &str, version_id: &str) {
        let counted = self.replication.settings.cleanup;
        if counted {
            self.sinks.metrics.canary_written();
        }
        left.wrote(site, key, version_id, counted);
    }
}

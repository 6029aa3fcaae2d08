//! Stage 2 of a probe, awaiting replication: HeadObject of the canary's source version as
//! the source role, on the polling [`Schedule`], until its replication status settles or
//! `replication_timeout` passes.

use std::time::{Duration, Instant, SystemTime};

use super::Prober;
use super::poll::Schedule;
use crate::aws::{ErrorClass, ObjectStore, SetupReader};
use crate::model::AwsError;

/// What the source said about replication, once polling ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Replicated {
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
pub(super) struct Polled {
    pub replicated: Replicated,
    /// The version's Object Lock retain-until date, if a poll showed one.
    pub retain_until: Option<SystemTime>,
    /// The last poll (offset from the write) that saw `PENDING`.
    pub last_pending: Option<Duration>,
}

impl<S: ObjectStore + SetupReader> Prober<S> {
    /// Polls the source version's replication status on the [`Schedule`] until it settles,
    /// starting where `first` says; also returns the version's Object Lock retain-until
    /// date, if a poll showed one, and the last poll (offset from the write) that still
    /// saw `PENDING`.
    pub(super) async fn await_replication(
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
}

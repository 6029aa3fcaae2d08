//! The polling schedule of the source's replication status: where it starts, how fast
//! it backs off, never past the deadline.
//!
//! [`Schedule`]: the first poll comes `start` after the write, the next ones after steps
//! of `poll.initial` doubling up to `poll.max`. A replication that takes `L` from a cold
//! start (`start = poll.initial`) costs about `1 + log2(L / i) + L / max` polls.
//!
//! [`FirstPoll`]: where the next probe starts. Cold, at `poll.initial` (the floor). Once a
//! probe saw `PENDING` and then `COMPLETED`, the next starts at the last poll that still
//! saw `PENDING`: a steady replication then costs two polls, `PENDING` just before it
//! completes and `COMPLETED` one `poll.initial` later, whatever its latency (one poll when
//! it completes within `poll.initial`). A first poll that already sees `COMPLETED` after a
//! warm start gives no lower bound (the replication got faster): the next probe starts
//! cold again.
//!
//! The latency error: a measured latency is the time of the first poll that saw
//! `COMPLETED`; the truth lies after the previous status read (a poll, or the write
//! itself), so the error is at most the step in effect at completion. Warm, that step is
//! `poll.initial`, tighter than a cold schedule's (up to half the latency). The one
//! exception is the probe whose warm first poll already saw `COMPLETED`: its error is at
//! most that first wait (the previous latency floor), once, then the start is cold.

use std::time::Duration;

/// The exponential backoff between looks (the replica's HeadObject under a fan-out).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            next: initial.min(max),
            max,
        }
    }

    /// The wait before the next poll.
    pub fn step(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step
    }
}

/// The poll times of one probe, as offsets from the write.
#[derive(Debug, Clone)]
pub struct Schedule {
    next_at: Duration,
    backoff: Backoff,
}

impl Schedule {
    /// First poll `start` after the write, then steps of `initial` doubling up to `max`.
    pub fn new(start: Duration, initial: Duration, max: Duration) -> Schedule {
        Schedule {
            next_at: start,
            backoff: Backoff::new(initial, max),
        }
    }

    /// The offset from the write of the next poll.
    pub fn next_at(&mut self) -> Duration {
        let at = self.next_at;
        self.next_at = at + self.backoff.step();
        at
    }
}

/// Where a replication's next probe starts polling: what its recent probes observed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirstPoll {
    /// The last poll (offset from the write) that still saw `PENDING` before `COMPLETED`.
    pending_until: Option<Duration>,
}

impl FirstPoll {
    /// The offset of the first poll: `initial` (the floor and the cold start) or the
    /// recently observed lower bound of the latency, whichever is later.
    pub fn start(&self, initial: Duration) -> Duration {
        self.pending_until.map_or(initial, |p| p.max(initial))
    }

    /// A probe saw `COMPLETED`; `last_pending` is its last poll that saw `PENDING` (`None`:
    /// the first poll already saw `COMPLETED`, so no lower bound is known: start cold).
    pub fn completed(&mut self, last_pending: Option<Duration>) {
        self.pending_until = last_pending;
    }

    /// Nothing is known any more (a timeout, no status): the next probe starts cold.
    pub fn forget(&mut self) {
        self.pending_until = None;
    }
}

#[cfg(test)]
mod tests;

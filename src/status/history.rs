//! The probe history of one destination: its last [`HISTORY_LEN`] verdicts, each as a
//! compact [`Mark`] (when, which outcome, how long replication took), in a fixed ring.
//!
//! The ring lives inline in the board's row and never allocates: a destination costs the
//! same bytes after its first verdict as after its millionth (the figure is in
//! docs/performance.md, checked by a test below).

use std::time::{Duration, UNIX_EPOCH};

use crate::model::{DestinationVerdict, Outcome};

/// How many verdicts a destination's history keeps.
pub const HISTORY_LEN: usize = 30;

/// `latency_ms` of a verdict that measured none (it failed before replication finished).
const NO_LATENCY: u32 = u32::MAX;

/// One verdict of the history, in 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// When the verdict finished, in whole seconds since the Unix epoch (a `u32` lasts
    /// until 2106; an earlier time is clamped to the epoch).
    at_unix: u32,
    /// The replication latency in milliseconds (clamped below [`NO_LATENCY`], about 49
    /// days), or [`NO_LATENCY`].
    latency_ms: u32,
    pub outcome: Outcome,
}

impl Mark {
    pub fn of(v: &DestinationVerdict) -> Mark {
        let secs = v
            .finished_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Mark {
            at_unix: u32::try_from(secs).unwrap_or(u32::MAX),
            latency_ms: v.latency.map_or(NO_LATENCY, |l| {
                u32::try_from(l.as_millis()).map_or(NO_LATENCY - 1, |ms| ms.min(NO_LATENCY - 1))
            }),
            outcome: v.outcome,
        }
    }

    /// When the verdict finished, in Unix seconds.
    pub fn at_unix(&self) -> u32 {
        self.at_unix
    }

    /// The replication latency (to the millisecond), if the probe measured one.
    pub fn latency(&self) -> Option<Duration> {
        (self.latency_ms != NO_LATENCY).then(|| Duration::from_millis(u64::from(self.latency_ms)))
    }
}

/// The last [`HISTORY_LEN`] marks of a destination, oldest overwritten first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    marks: [Mark; HISTORY_LEN],
    /// The slot the next mark goes to.
    next: u8,
    /// How many slots hold a mark (at most [`HISTORY_LEN`]).
    len: u8,
}

impl Default for History {
    fn default() -> History {
        let empty = Mark {
            at_unix: 0,
            latency_ms: NO_LATENCY,
            outcome: Outcome::Error,
        };
        History {
            marks: [empty; HISTORY_LEN],
            next: 0,
            len: 0,
        }
    }
}

// The ring's indices are `u8`s.
const _: () = assert!(HISTORY_LEN <= u8::MAX as usize);

impl History {
    /// Adds a verdict, dropping the oldest when the ring is full.
    pub fn push(&mut self, v: &DestinationVerdict) {
        self.marks[usize::from(self.next)] = Mark::of(v);
        self.next = ((usize::from(self.next) + 1) % HISTORY_LEN) as u8;
        self.len = (usize::from(self.len) + 1).min(HISTORY_LEN) as u8;
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The marks, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Mark> + '_ {
        let start = (usize::from(self.next) + HISTORY_LEN - self.len()) % HISTORY_LEN;
        (0..self.len()).map(move |i| self.marks[(start + i) % HISTORY_LEN])
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    impl Mark {
        /// When the verdict finished (to the second).
        fn at(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_secs(u64::from(self.at_unix))
        }
    }

    fn verdict(outcome: Outcome, secs: u64, latency_ms: Option<u64>) -> DestinationVerdict {
        let mut v = DestinationVerdict::new("r", "d", outcome);
        v.finished_at = UNIX_EPOCH + Duration::from_secs(secs);
        v.latency = latency_ms.map(Duration::from_millis);
        v
    }

    #[test]
    fn a_mark_keeps_time_outcome_and_latency() {
        let m = Mark::of(&verdict(Outcome::Undecryptable, 1_800_000_000, Some(1_432)));
        assert_eq!(m.outcome, Outcome::Undecryptable);
        assert_eq!(m.at(), UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        assert_eq!(m.latency(), Some(Duration::from_millis(1_432)));
        assert_eq!(Mark::of(&verdict(Outcome::Error, 5, None)).latency(), None);
    }

    #[test]
    fn a_mark_clamps_what_does_not_fit() {
        // Sub-second parts are dropped, far futures and latencies clamped, never wrapped.
        let mut v = verdict(Outcome::Ok, 0, Some(u64::MAX / 2));
        v.finished_at = UNIX_EPOCH + Duration::from_millis(7_999);
        assert_eq!(Mark::of(&v).at(), UNIX_EPOCH + Duration::from_secs(7));
        let m = Mark::of(&v);
        assert_eq!(
            m.latency(),
            Some(Duration::from_millis(u64::from(u32::MAX - 1)))
        );
        v.finished_at = UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) + 10);
        assert_eq!(
            Mark::of(&v).at(),
            UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX))
        );
        v.finished_at = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(Mark::of(&v).at(), UNIX_EPOCH);
    }

    #[test]
    fn the_ring_keeps_the_last_marks_oldest_first() {
        let mut h = History::default();
        assert!(h.is_empty());
        assert_eq!(h.iter().count(), 0);
        for i in 0..3 {
            h.push(&verdict(Outcome::Ok, i, Some(i * 100)));
        }
        let secs: Vec<u64> = h.iter().map(|m| secs_of(m.at())).collect();
        assert_eq!(secs, [0, 1, 2]);

        // Past the ring's length, the oldest go first and the order stays oldest first.
        for i in 3..(HISTORY_LEN as u64 * 2 + 7) {
            let outcome = if i.is_multiple_of(2) {
                Outcome::Ok
            } else {
                Outcome::Error
            };
            h.push(&verdict(outcome, i, None));
            let want: Vec<u64> = ((i + 1).saturating_sub(HISTORY_LEN as u64)..=i).collect();
            let got: Vec<u64> = h.iter().map(|m| secs_of(m.at())).collect();
            assert_eq!(got, want, "after pushing {i}");
            assert_eq!(h.len(), want.len());
        }
        // Each mark kept its own outcome (even seconds ok, odd ones error).
        for m in h.iter() {
            let even = secs_of(m.at()).is_multiple_of(2);
            assert_eq!(m.outcome == Outcome::Ok, even, "{m:?}");
        }
    }

    #[test]
    fn the_ring_has_a_fixed_size_in_the_row() {
        // docs/performance.md states these bytes per destination: change both together.
        assert_eq!(std::mem::size_of::<Mark>(), 12);
        assert_eq!(std::mem::size_of::<History>(), 12 * HISTORY_LEN + 4);
    }

    fn secs_of(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

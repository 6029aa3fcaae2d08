//! The polling schedule: fast at first, doubling up to a cap, never past the deadline.
//!
//! With polls at 0, i, 3i, 7i, … (capped at `max`), a replication that takes `L` costs
//! about `2 + log2(L / i) + L / max` polls, and the latency error is at most the step
//! in effect when it completed.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let steps: Vec<u64> = (0..6).map(|_| b.step().as_secs()).collect();
        assert_eq!(steps, [1, 2, 4, 5, 5, 5]);
    }

    #[test]
    fn polls_grow_with_the_logarithm_of_the_latency() {
        // Count the polls needed to see a completion after `latency`.
        let polls = |latency: f64| {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
            let (mut t, mut n) = (0.0, 1);
            while t < latency {
                t += b.step().as_secs_f64();
                n += 1;
            }
            n
        };
        for latency in [1.0_f64, 10.0, 100.0, 900.0] {
            let bound = 2.0 + (latency / 1.0).log2() + latency / 30.0;
            assert!(
                f64::from(polls(latency)) <= bound.ceil(),
                "latency {latency}: {} polls > {bound}",
                polls(latency)
            );
        }
    }
}

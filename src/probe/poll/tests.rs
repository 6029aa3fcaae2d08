//! The schedule's cost and its latency error, replayed over sequences of true latencies.

use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn backoff_doubles_up_to_the_cap() {
    let mut b = Backoff::new(S(1), S(5));
    let steps: Vec<u64> = (0..6).map(|_| b.step().as_secs()).collect();
    assert_eq!(steps, [1, 2, 4, 5, 5, 5]);
}

#[test]
fn a_schedule_starts_at_its_start_then_backs_off() {
    let mut s = Schedule::new(S(7), S(1), S(4));
    let at: Vec<u64> = (0..6).map(|_| s.next_at().as_secs()).collect();
    assert_eq!(at, [7, 8, 10, 14, 18, 22]);
}

/// One probe: the polls a replication of true latency `latency` sees.
struct Probe {
    polls: u32,
    measured: Duration,
    /// The time between the poll that saw COMPLETED and the previous status read.
    step: Duration,
}

/// Replays one probe against `first`, as `Prober::await_replication` does, and learns from it.
fn probe(first: &mut FirstPoll, latency: Duration, initial: Duration, max: Duration) -> Probe {
    let mut schedule = Schedule::new(first.start(initial), initial, max);
    let (mut polls, mut previous, mut last_pending) = (0, Duration::ZERO, None);
    loop {
        let at = schedule.next_at();
        polls += 1;
        if at >= latency {
            first.completed(last_pending);
            return Probe {
                polls,
                measured: at,
                step: at - previous,
            };
        }
        last_pending = Some(at);
        previous = at;
    }
}

#[test]
fn every_measured_latency_is_within_one_step_of_the_truth() {
    let (initial, max) = (S(1), S(30));
    // Steady, rising, falling, jittering and sub-second latencies, in one sequence.
    let latencies: Vec<Duration> = [1.0, 1.0, 5.0, 5.0, 5.0, 20.0, 20.0, 4.5, 5.2, 0.3, 0.3]
        .iter()
        .chain([60.0, 61.0, 2.0, 12.5, 12.0, 13.0].iter())
        .map(|s| Duration::from_secs_f64(*s))
        .collect();
    let mut first = FirstPoll::default();
    for l in latencies {
        let p = probe(&mut first, l, initial, max);
        assert!(
            p.measured >= l,
            "{l:?}: measured {:?} before it completed",
            p.measured
        );
        assert!(
            p.measured - l <= p.step,
            "{l:?}: error {:?} > step {:?}",
            p.measured - l,
            p.step
        );
    }
}

#[test]
fn a_steady_replication_settles_at_two_polls_with_an_error_below_poll_initial() {
    let (initial, max) = (S(1), S(30));
    for latency in [MS(1500), S(5), S(20), S(90)] {
        let mut first = FirstPoll::default();
        let cold = probe(&mut first, latency, initial, max);
        // The cold probe's last PENDING poll may be far below the latency (20 s: 16 s);
        // the next probes walk up from there, each at most as dear as a cold one, until
        // two polls suffice: within log2(latency / poll.initial) probes.
        let bound = (latency.as_secs_f64() / initial.as_secs_f64())
            .log2()
            .ceil() as usize;
        let walked = (0..=bound)
            .map(|_| probe(&mut first, latency, initial, max))
            .inspect(|p| assert!(p.polls <= cold.polls, "{latency:?}: dearer than cold"))
            .position(|p| p.polls == 2);
        assert!(
            walked.is_some(),
            "{latency:?}: not settled in {bound} probes"
        );
        for _ in 0..5 {
            let warm = probe(&mut first, latency, initial, max);
            assert_eq!(warm.polls, 2, "{latency:?}");
            assert!(warm.measured - latency <= initial, "{latency:?}");
        }
    }
}

#[test]
fn within_poll_initial_one_poll_is_enough() {
    let mut first = FirstPoll::default();
    for _ in 0..5 {
        let p = probe(&mut first, MS(900), S(1), S(30));
        assert_eq!(p.polls, 1);
        assert_eq!(p.measured, S(1), "poll.initial is the floor");
    }
}

#[test]
fn a_faster_replication_costs_one_overestimate_then_starts_cold() {
    let (initial, max) = (S(1), S(30));
    let mut first = FirstPoll::default();
    probe(&mut first, S(20), initial, max);
    probe(&mut first, S(20), initial, max);
    assert_eq!(first.start(initial), S(19));
    // Down to 2 s: the warm start (19 s) sees COMPLETED at once and says so.
    let over = probe(&mut first, S(2), initial, max);
    assert_eq!((over.polls, over.measured, over.step), (1, S(19), S(19)));
    assert_eq!(first.start(initial), initial, "cold again");
    let cold = probe(&mut first, S(2), initial, max);
    assert_eq!(cold.measured, S(2));
    assert!(cold.measured - S(2) <= cold.step);
}

#[test]
fn forgetting_starts_cold() {
    let mut first = FirstPoll::default();
    first.completed(Some(S(12)));
    assert_eq!(first.start(S(1)), S(12));
    assert_eq!(first.start(S(20)), S(20), "poll.initial stays the floor");
    first.forget();
    assert_eq!(first.start(S(1)), S(1));
}

#[test]
fn cold_polls_grow_with_the_logarithm_of_the_latency() {
    for latency in [1.0_f64, 10.0, 100.0, 900.0] {
        let mut first = FirstPoll::default();
        let p = probe(&mut first, Duration::from_secs_f64(latency), S(1), S(30));
        let bound = 1.0 + latency.log2() + latency / 30.0;
        assert!(
            f64::from(p.polls) <= bound.ceil(),
            "latency {latency}: {} polls > {bound}",
            p.polls
        );
    }
}

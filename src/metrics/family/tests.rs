//! A [`Family`] against the `prometheus` crate's vectors: the same operations must give
//! the same text, byte for byte.

use prometheus::core::Collector;
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::*;

impl<P: Atomic> Series<P> {
    fn get(&self) -> P::T {
        self.0.get()
    }
}

fn text(c: impl Collector + 'static) -> String {
    let registry = Registry::new();
    if let Err(e) = registry.register(Box::new(c)) {
        panic!("register: {e}");
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        panic!("encode: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Label values that an encoder could get wrong.
const VALUES: [[&str; 3]; 5] = [
    ["ab", "c", "ok"],
    ["quote\"back\\slash", "new\nline", "ok"],
    ["", "", ""],
    ["ünïcødé", "d", "error"],
    ["r", "d", "wrong_kms_key"],
];

#[test]
fn counters_encode_as_the_crates_vector() {
    const LABELS: [&str; 3] = ["replication", "destination", "outcome"];
    let ours = Counters::counter("t_total", "Help with \\ and\nnewline.", &LABELS)
        .unwrap_or_else(|e| panic!("{e}"));
    let theirs = IntCounterVec::new(Opts::new("t_total", "Help with \\ and\nnewline."), &LABELS)
        .unwrap_or_else(|e| panic!("{e}"));
    for (n, v) in VALUES.iter().enumerate() {
        let (a, b) = (ours.with_label_values(v), theirs.with_label_values(v));
        for _ in 0..n {
            a.inc();
            b.inc();
        }
    }
    let expected = text(theirs.clone());
    assert!(expected.contains("t_total{destination=\"c\",outcome=\"ok\",replication=\"ab\"} 0\n"));
    assert!(
        expected
            .contains("t_total{destination=\"d\",outcome=\"wrong_kms_key\",replication=\"r\"} 4\n")
    );
    assert_eq!(text(ours.clone()), expected);
    assert_eq!(ours.with_label_values(&VALUES[4]).get(), 4);
}

#[test]
fn gauges_encode_as_the_crates_vector_through_removals() {
    const LABELS: [&str; 2] = ["replication", "destination"];
    let ours = Gauges::gauge("g", "A gauge.", &LABELS).unwrap_or_else(|e| panic!("{e}"));
    let theirs =
        GaugeVec::new(Opts::new("g", "A gauge."), &LABELS).unwrap_or_else(|e| panic!("{e}"));
    let pairs = [
        ["r1", "d1"],
        ["r1", "d2"],
        ["r2", "d1"],
        ["r2", "d2"],
        ["r3", "d1"],
    ];
    for (n, p) in pairs.iter().enumerate() {
        ours.with_label_values(p).set(n as f64 + 0.25);
        theirs.with_label_values(p).set(n as f64 + 0.25);
    }
    assert_eq!(text(ours.clone()), text(theirs.clone()));

    ours.remove_matching(&[("replication", "r1")]);
    theirs.remove_matching(&[("replication", "r1")]);
    ours.remove_matching(&[("replication", "r2"), ("destination", "d2")]);
    theirs.remove_matching(&[("replication", "r2"), ("destination", "d2")]);
    // A label the family does not have matches nothing, in both.
    ours.remove_matching(&[("reader", "r3")]);
    theirs.remove_matching(&[("reader", "r3")]);
    let after = text(theirs.clone());
    assert_eq!(
        after,
        "# HELP g A gauge.\n# TYPE g gauge\n\
         g{destination=\"d1\",replication=\"r2\"} 2.25\n\
         g{destination=\"d1\",replication=\"r3\"} 4.25\n"
    );
    assert_eq!(text(ours.clone()), after);

    assert!(ours.remove_label_values(&["r3", "d1"]).is_ok());
    assert!(theirs.remove_label_values(&["r3", "d1"]).is_ok());
    assert!(ours.remove_label_values(&["r3", "d1"]).is_err());
    assert!(theirs.remove_label_values(&["r3", "d1"]).is_err());
    assert_eq!(text(ours.clone()), text(theirs.clone()));
}

#[test]
fn int_gauges_reset_as_the_crates_vector() {
    const LABELS: [&str; 2] = ["index", "count"];
    let ours = IntGauges::int_gauge("s", "Shard.", &LABELS).unwrap_or_else(|e| panic!("{e}"));
    let theirs =
        IntGaugeVec::new(Opts::new("s", "Shard."), &LABELS).unwrap_or_else(|e| panic!("{e}"));
    ours.with_label_values(&["0", "2"]).set(1);
    theirs.with_label_values(&["0", "2"]).set(1);
    ours.reset();
    theirs.reset();
    ours.with_label_values(&[&1.to_string(), &2.to_string()])
        .set(-3);
    theirs
        .with_label_values(&[&1.to_string(), &2.to_string()])
        .set(-3);
    let expected = text(theirs.clone());
    assert_eq!(
        expected,
        "# HELP s Shard.\n# TYPE s gauge\ns{count=\"2\",index=\"1\"} -3\n"
    );
    assert_eq!(text(ours.clone()), expected);
}

#[test]
fn invalid_names_are_refused_as_by_the_crate() {
    assert!(Gauges::gauge("bad name", "h", &["replication"]).is_err());
    assert!(Gauges::gauge("g", "h", &["bad label"]).is_err());
    assert!(Gauges::gauge("g", "", &["replication"]).is_err());
}

/// The crate's vectors key a series by a hash of its values run together, so ("ab", "c")
/// and ("a", "bc") are one series there; here they are two.
#[test]
fn values_that_run_together_stay_two_series() {
    let ours = Counters::counter("t_total", "h", &["replication", "destination"])
        .unwrap_or_else(|e| panic!("{e}"));
    ours.with_label_values(&["ab", "c"]).inc();
    ours.with_label_values(&["a", "bc"]).set(2);
    assert_eq!(
        text(ours.clone()),
        "# HELP t_total h\n# TYPE t_total counter\n\
         t_total{destination=\"bc\",replication=\"a\"} 2\n\
         t_total{destination=\"c\",replication=\"ab\"} 1\n"
    );
}

#[test]
fn keys_keep_values_apart_and_decode_back() {
    assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    assert_eq!(decode(&key(&["ab", "", "ü\"\n"])), vec!["ab", "", "ü\"\n"]);
}

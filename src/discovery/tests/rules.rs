//! The plan for one bucket's rules: names, placement, shadowing, fan-out, and filters no
//! canary can satisfy — for chosen cases and for arbitrary rules.

use proptest::prelude::*;

use super::fake::rule;
use crate::aws::RuleSetup;
use crate::aws::precedence::{Reach, reach};
use crate::discovery::SkipReason;
use crate::discovery::rules::{MAX_KEY_BYTES, plan};

const PREFIX: &str = "replicanary/";

fn with(id: &str, dest: &str, priority: i32, prefix: &str, tags: &[(&str, &str)]) -> RuleSetup {
    RuleSetup {
        priority,
        prefix: prefix.to_owned(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..rule(id, &format!("{dest}-bucket"), Some("222222222222"))
    }
}

fn reasons(rules: &[RuleSetup]) -> Vec<(String, Option<SkipReason>)> {
    let (planned, skips) = plan("src", rules, PREFIX);
    rules
        .iter()
        .map(|r| {
            let skipped = skips
                .iter()
                .find(|s| s.rule_id.as_deref() == Some(r.id.as_str()));
            assert!(
                skipped.is_some() != planned.iter().any(|p| p.rule_id == r.id),
                "{}",
                r.id
            );
            (r.id.clone(), skipped.map(|s| s.reason))
        })
        .collect()
}

#[test]
fn a_higher_priority_rule_to_the_same_destination_shadows() {
    let rules = [
        with("high", "d", 10, "hot/", &[]),
        with("low", "d", 5, "", &[]),
        with("shadowed", "d", 1, "hot/archive/", &[]),
        with("elsewhere", "e", 20, "hot/", &[]),
    ];
    assert_eq!(
        reasons(&rules),
        [
            ("high".to_owned(), None),
            ("low".to_owned(), None),
            ("shadowed".to_owned(), Some(SkipReason::Shadowed)),
            ("elsewhere".to_owned(), None),
        ]
    );
    let (planned, _) = plan("src", &rules, PREFIX);
    let fans: Vec<(&str, bool)> = planned
        .iter()
        .map(|p| (p.rule_id.as_str(), p.source_fans_out))
        .collect();
    assert_eq!(
        fans,
        [("high", true), ("low", false), ("elsewhere", true)],
        "`high`'s and `elsewhere`'s canaries are under hot/, which both select; `low`'s are not"
    );
}

#[test]
fn equal_priorities_that_overlap_are_not_probed_but_disjoint_ones_are() {
    let overlapping = [with("a", "d", 0, "", &[]), with("b", "d", 0, "b/", &[])];
    assert_eq!(
        reasons(&overlapping),
        [
            ("a".to_owned(), None),
            ("b".to_owned(), Some(SkipReason::Shadowed))
        ],
        "`b`'s canaries (under b/) are also `a`'s; `a`'s are not under b/"
    );
    let same = [with("a", "d", 0, "x/", &[]), with("b", "d", 0, "x/", &[])];
    assert!(
        reasons(&same)
            .iter()
            .all(|(_, r)| *r == Some(SkipReason::Shadowed))
    );
    let disjoint = [with("a", "d", 0, "a/", &[]), with("b", "d", 0, "b/", &[])];
    assert!(reasons(&disjoint).iter().all(|(_, r)| r.is_none()));
}

#[test]
fn a_rule_requiring_a_tag_the_canary_lacks_neither_shadows_nor_fans_out() {
    let rules = [
        with("plain", "d", 1, "", &[]),
        with("gold", "d", 9, "", &[("class", "gold")]),
        with("tagged-out", "e", 9, "", &[("x", "y")]),
    ];
    let (planned, skips) = plan("src", &rules, PREFIX);
    assert!(skips.is_empty(), "{skips:?}");
    assert!(!planned[0].source_fans_out);
    // `plain`'s canaries carry no tags, so `gold` does not select them; `gold`'s carry
    // class=gold, which `plain` (lower priority) also selects: no shadowing either way.
    assert_eq!(
        planned[1].placement.tags,
        [("class".to_owned(), "gold".to_owned())]
    );
}

#[test]
fn filters_no_canary_can_satisfy_are_skipped() {
    let eleven: Vec<(String, String)> =
        (0..11).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let too_many = RuleSetup {
        tags: eleven,
        ..with("too-many-tags", "d", 3, "", &[])
    };
    let fits = MAX_KEY_BYTES - PREFIX.len() - "src/fits/".len() - 33;
    let rules = [
        with("conflict", "d", 1, "", &[("env", "a"), ("env", "b")]),
        with("twice", "e", 1, "t/", &[("env", "a"), ("env", "a")]),
        with("long", "f", 1, &"x".repeat(fits + 1), &[]),
        with("fits", "g", 1, &"x".repeat(fits), &[]),
        too_many,
    ];
    assert_eq!(
        reasons(&rules)
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>(),
        [
            Some(SkipReason::UnsatisfiableFilter),
            None,
            Some(SkipReason::UnsatisfiableFilter),
            None,
            Some(SkipReason::UnsatisfiableFilter)
        ]
    );
    let (planned, _) = plan("src", &rules, PREFIX);
    assert_eq!(
        planned[0].placement.tags.len(),
        1,
        "a tag required twice with one value is carried once"
    );
}

#[test]
fn rules_that_cannot_be_named_or_aimed_are_invalid() {
    let mut not_a_bucket = with("arn", "d", 1, "", &[]);
    not_a_bucket.destination_bucket = "arn:aws:s3:::Not_A_Bucket".to_owned();
    let rules = [
        with("", "d", 1, "a/", &[]),
        with("dup", "d", 1, "b/", &[]),
        with("dup", "d", 1, "c/", &[]),
        with("bell\u{7}", "d", 1, "e/", &[]),
        not_a_bucket,
    ];
    let (planned, skips) = plan("src", &rules, PREFIX);
    assert_eq!(planned.len(), 1, "the first `dup` only");
    assert_eq!(planned[0].name, "src/dup");
    assert!(
        skips.iter().all(|s| s.reason == SkipReason::InvalidRule),
        "{skips:?}"
    );
    assert_eq!(
        skips[0].rule_id, None,
        "a rule without ID is reported without one"
    );
}

/// Arbitrary rules of one bucket: short prefixes and tags from small alphabets so that
/// they overlap often.
fn arb_rule() -> impl Strategy<Value = RuleSetup> {
    (
        "[a-c]{0,2}",
        any::<bool>(),
        0..4i32,
        "(|a/|a/b/|replicanary/|replicanary/src/)",
        prop::collection::vec(("[xy]", "[12]"), 0..3),
        "[de]",
        prop::option::of("[ \\PC]{0,6}"),
    )
        .prop_map(
            |(id, enabled, priority, prefix, tags, dest, odd)| RuleSetup {
                id: odd.unwrap_or(id),
                enabled,
                priority,
                prefix,
                tags,
                ..rule("", &format!("{dest}-bucket"), Some("222222222222"))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every rule is planned or skipped, once; a planned rule selects its own canaries,
    /// and no other enabled rule of at least its priority to its destination may.
    #[test]
    fn a_planned_rule_owns_its_canaries(rules in prop::collection::vec(arb_rule(), 0..6)) {
        let (planned, skips) = plan("src", &rules, PREFIX);
        prop_assert_eq!(planned.len() + skips.len(), rules.len());
        for p in &planned {
            let me = rules.iter().find(|r| r.id == p.rule_id).expect("a rule of the bucket");
            let key_prefix = format!("{}{PREFIX}{}/", p.placement.prefix, p.name);
            prop_assert!(me.enabled);
            prop_assert_eq!(reach(me, &key_prefix, &p.placement.tags), Reach::Every);
            prop_assert!(key_prefix.len() + 33 <= MAX_KEY_BYTES);
            for other in rules.iter().filter(|r| r.enabled && r.id != p.rule_id) {
                if other.destination_bucket_name() == p.destination_bucket && reach(other, &key_prefix, &p.placement.tags) != Reach::None {
                    prop_assert!(other.priority < p.priority, "{} shadowed by {}", p.rule_id, other.id);
                }
                if other.destination_bucket_name() != p.destination_bucket && reach(other, &key_prefix, &p.placement.tags) != Reach::None {
                    prop_assert!(p.source_fans_out);
                }
            }
        }
    }
}

#[test]
fn the_configuration_knows_the_canary_key_length() {
    assert_eq!(crate::config::CANARY_SUFFIX_LEN, crate::canary::NAME_LEN);
}

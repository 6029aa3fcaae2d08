//! S3's rule precedence as one table: rules in, the rule that applies and the rivals out.

use super::{Reach, applying, contenders, reach, rivals};
use crate::aws::RuleSetup;

/// `id:priority:prefix:tags:destination[:disabled]`, tags as `k=v,k=v` (empty: none).
fn rule(spec: &str) -> RuleSetup {
    let parts: Vec<&str> = spec.split(':').collect();
    let field = |i: usize| parts.get(i).copied().unwrap_or_default();
    RuleSetup {
        id: field(0).to_owned(),
        priority: field(1).parse().unwrap_or(0),
        prefix: field(2).to_owned(),
        tags: field(3)
            .split(',')
            .filter(|t| !t.is_empty())
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        destination_bucket: format!("arn:aws:s3:::{}", field(4)),
        enabled: field(5) != "disabled",
        ..RuleSetup::default()
    }
}

struct Case {
    what: &'static str,
    rules: &'static [&'static str],
    /// The objects: their key prefix and tags (`k=v,k=v`), on their way to `dst`.
    key_prefix: &'static str,
    tags: &'static str,
    /// The rule S3 applies to every one of them.
    applies: Option<&'static str>,
    /// The rules that may take some of them from `of`, in configuration order.
    of: &'static str,
    rivals: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "one rule, empty prefix: everything",
        rules: &["a:0:::dst"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("a"),
        of: "a",
        rivals: &[],
    },
    Case {
        what: "the higher priority applies; the lower one has a rival",
        rules: &["low:1:::dst", "high:2:canary/::dst"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("high"),
        of: "low",
        rivals: &["high"],
    },
    Case {
        what: "equal priorities: undocumented; the later rule is named, and each rivals the other",
        rules: &["first:3:::dst", "second:3:::dst"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("second"),
        of: "second",
        rivals: &["first"],
    },
    Case {
        what: "a rule to another destination is no contender (S3 replicates to both)",
        rules: &["here:1:::dst", "there:9:::elsewhere"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("here"),
        of: "here",
        rivals: &[],
    },
    Case {
        what: "a disabled rule selects nothing",
        rules: &["on:1:::dst", "off:9:::dst:disabled"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("on"),
        of: "on",
        rivals: &[],
    },
    Case {
        what: "a longer prefix selects some objects only: passed over, but a rival",
        rules: &["all:1:::dst", "some:5:canary/x/abc::dst"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("all"),
        of: "all",
        rivals: &["some"],
    },
    Case {
        what: "a prefix beside the objects' selects none",
        rules: &["logs:5:logs/::dst", "all:1:::dst"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("all"),
        of: "all",
        rivals: &[],
    },
    Case {
        what: "a tag filter selects only objects that carry every tag",
        rules: &["tagged:5::team=a,env=prod:dst", "plain:1:::dst"],
        key_prefix: "canary/x/",
        tags: "team=a",
        applies: Some("plain"),
        of: "plain",
        rivals: &[],
    },
    Case {
        what: "tags carried: the tagged rule of higher priority applies",
        rules: &["tagged:5:canary/:team=a,env=prod:dst", "plain:1:::dst"],
        key_prefix: "canary/x/",
        tags: "env=prod,team=a,extra=1",
        applies: Some("tagged"),
        of: "plain",
        rivals: &["tagged"],
    },
    Case {
        what: "V1 rules (priority 0, a prefix): overlapping ones tie",
        rules: &["v1-a:0:canary/::dst", "v1-b:0:can::dst"],
        key_prefix: "canary/x/",
        tags: "",
        applies: Some("v1-b"),
        of: "v1-a",
        rivals: &["v1-b"],
    },
    Case {
        what: "no rule selects every object: none applies",
        rules: &["some:5:canary/x/abc::dst", "other:1:data/::dst"],
        key_prefix: "canary/x/",
        tags: "",
        applies: None,
        of: "some",
        rivals: &[],
    },
];

fn tags(spec: &str) -> Vec<(String, String)> {
    spec.split(',')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_precedence_table() {
    for case in CASES {
        let rules: Vec<RuleSetup> = case.rules.iter().map(|s| rule(s)).collect();
        let tags = tags(case.tags);
        let ranked = contenders(&rules, "dst", case.key_prefix, &tags);
        assert_eq!(
            applying(&ranked).map(|r| r.id.as_str()),
            case.applies,
            "{}",
            case.what
        );
        let index = rules
            .iter()
            .position(|r| r.id == case.of)
            .unwrap_or(usize::MAX);
        let found: Vec<&str> = rivals(&ranked, index).map(|c| c.rule.id.as_str()).collect();
        assert_eq!(found, case.rivals, "{}", case.what);
    }
}

#[test]
fn reach_of_a_filter() {
    let r = |prefix: &str, t: &str| RuleSetup {
        prefix: prefix.to_owned(),
        tags: tags(t),
        ..RuleSetup::default()
    };
    let carried = tags("a=1,b=2");
    assert_eq!(reach(&r("", ""), "k/", &carried), Reach::Every);
    assert_eq!(reach(&r("k/", "a=1"), "k/x/", &carried), Reach::Every);
    assert_eq!(reach(&r("k/x/y", ""), "k/x/", &carried), Reach::Some);
    assert_eq!(reach(&r("j/", ""), "k/x/", &carried), Reach::None);
    assert_eq!(reach(&r("", "c=3"), "k/", &carried), Reach::None);
    assert_eq!(reach(&r("", "a=2"), "k/", &carried), Reach::None);
}

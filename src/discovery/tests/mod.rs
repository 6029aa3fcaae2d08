//! Discovery's decisions against an in-memory estate: what is found, where canaries go,
//! what is skipped and why, what a failed read keeps, and what it costs in calls.

mod coverage;
mod fake;
mod render;
mod rules;

use std::sync::{Arc, Mutex};

use fake::{FakeReaders, REGION, Shared, World, key, lock, rule};

use super::{AccountFrom, Discoverer, Found, Hints, KeyFrom, Pass, SkipReason, discover};
use crate::config::{Config, Discovery};
use crate::metrics::Metrics;
use crate::model::{ErrorClass, Side};
use crate::testing::err;

const S1: &str = "111111111111";
const S2: &str = "555555555555";
const D: &str = "222222222222";
const NOBODY: &str = "777777777777";
const OPT_IN: &[(&str, &str)] = &[("replicanary", "enabled"), ("team", "storage")];

fn discovery_config(extra: &str) -> Discovery {
    let yaml = format!(
        "discovery:\n  regions: [{REGION}]\n  source_accounts: [\"{S1}\", \"{S2}\"]\n  source_role_arn: arn:aws:iam::{{account}}:role/replicanary-source-probe\n  destination_role_arn: arn:aws:iam::{{account}}:role/replicanary-destination-probe\n  bucket_tag: {{key: replicanary, value: enabled}}\n{extra}"
    );
    Config::parse(&yaml)
        .expect("valid")
        .discovery
        .expect("discovery")
}

fn roles() -> World {
    World::new()
        .role(Side::Source, S1)
        .role(Side::Source, S2)
        .role(Side::Destination, D)
        .role(Side::Destination, S2)
}

/// A source bucket `re-<label>-src` of `owner` with `rules`, tagged with `tags`, and the
/// destination bucket of each rule in the account the rule names (else `D`).
fn case(
    w: &mut World,
    label: &str,
    owner: &str,
    tags: &[(&str, &str)],
    rules: Vec<crate::aws::RuleSetup>,
) {
    for r in &rules {
        let dest = r.destination_bucket_name().to_owned();
        let account = r
            .destination_account
            .clone()
            .unwrap_or_else(|| D.to_owned());
        if !w.buckets.contains_key(&dest) {
            w.bucket(&dest, &account, &[], None);
        }
    }
    w.bucket(&format!("re-{label}-src"), owner, tags, Some(rules));
}

/// The estate of the lab in miniature (tests/lab/estate.py's cases).
fn estate() -> World {
    let mut w = roles();
    let to = |id: &str, label: &str| rule(id, &format!("re-{label}-dst"), Some(D));
    case(
        &mut w,
        "healthy",
        S1,
        OPT_IN,
        vec![to("healthy", "healthy")],
    );
    let mut logs = to("logs", "prefix");
    logs.prefix = "logs/".to_owned();
    case(&mut w, "prefix", S1, OPT_IN, vec![logs]);
    let mut tagged = to("tagged", "tag");
    tagged.tags = vec![("replicate".to_owned(), "yes".to_owned())];
    case(&mut w, "tag", S1, OPT_IN, vec![tagged]);
    let mut and = to("and", "and");
    and.prefix = "data/".to_owned();
    and.tags = vec![
        ("team".to_owned(), "storage".to_owned()),
        ("class".to_owned(), "gold".to_owned()),
    ];
    case(&mut w, "and", S1, OPT_IN, vec![and]);
    let prio = |id: &str, p: i32, prefix: &str| {
        let mut r = to(id, "priority");
        r.priority = p;
        r.prefix = prefix.to_owned();
        r
    };
    case(
        &mut w,
        "priority",
        S1,
        OPT_IN,
        vec![
            prio("high", 10, "hot/"),
            prio("low", 5, ""),
            prio("shadowed", 1, "hot/archive/"),
        ],
    );
    case(
        &mut w,
        "no-default-sse",
        S1,
        OPT_IN,
        vec![to("no-default-key", "no-default-sse")],
    );
    w.buckets
        .get_mut("re-no-default-sse-dst")
        .expect("dst")
        .encryption
        .algorithm = "AES256".to_owned();
    let mut disabled = to("disabled", "disabled");
    disabled.enabled = false;
    case(&mut w, "disabled", S1, OPT_IN, vec![disabled]);
    let mut unselected = to("unselected", "unselected");
    unselected.selects_sse_kms = false;
    case(&mut w, "unselected", S1, OPT_IN, vec![unselected]);
    case(
        &mut w,
        "odd-id",
        S1,
        OPT_IN,
        vec![to("odd id/ü ✓", "odd-id")],
    );
    let mut odd = to("odd-prefix", "odd-prefix");
    odd.prefix = "odd dir/ü+%&=?#/".to_owned();
    case(&mut w, "odd-prefix", S1, OPT_IN, vec![odd]);
    case(
        &mut w,
        "unknown-account",
        S1,
        OPT_IN,
        vec![rule("to-777", "re-unknown-account-dst", Some(NOBODY))],
    );
    case(
        &mut w,
        "untagged",
        S1,
        &[],
        vec![to("untagged", "untagged")],
    );
    case(
        &mut w,
        "other-value",
        S1,
        &[("replicanary", "disabled")],
        vec![to("other-value", "other-value")],
    );
    w.bucket("re-no-config-src", S1, OPT_IN, None);
    let mut conflicting = to("conflicting-tags", "unsatisfiable");
    conflicting.priority = 2;
    conflicting.tags = vec![
        ("env".to_owned(), "a".to_owned()),
        ("env".to_owned(), "b".to_owned()),
    ];
    let mut long = to("key-too-long", "unsatisfiable");
    long.prefix = format!("deep/{}/", "d".repeat(990));
    case(&mut w, "unsatisfiable", S1, OPT_IN, vec![conflicting, long]);
    case(&mut w, "no-id", S1, OPT_IN, vec![to("", "no-id")]);
    case(
        &mut w,
        "no-account",
        S1,
        OPT_IN,
        vec![rule("no-account", "re-no-account-dst", None)],
    );
    w.buckets.get_mut("re-no-account-dst").expect("dst").owner = S2.to_owned();
    case(
        &mut w,
        "second-account",
        S2,
        OPT_IN,
        vec![to("healthy", "second-account")],
    );
    w
}

fn shared(w: World) -> Shared {
    Arc::new(Mutex::new(w))
}

async fn pass(world: &Shared, d: &Discovery) -> Pass {
    discover(
        &FakeReaders(world.clone()),
        d,
        "replicanary/",
        &Hints::default(),
        &|_| {},
    )
    .await
}

fn names(pass: &Pass) -> Vec<&str> {
    pass.found().map(|f| f.name.as_str()).collect()
}

fn skip_of<'a>(pass: &'a Pass, bucket: &str) -> Vec<(Option<&'a str>, SkipReason)> {
    pass.skips()
        .filter(|s| s.bucket == bucket)
        .map(|s| (s.rule_id.as_deref(), s.reason))
        .collect()
}

fn found<'a>(pass: &'a Pass, name: &str) -> &'a Found {
    pass.found()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} not found in {:?}", names(pass)))
}

#[tokio::test]
async fn the_estate_is_found_as_the_lab_expects() {
    let world = shared(estate());
    let p = pass(&world, &discovery_config("")).await;
    let mut got = names(&p);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "re-and-src/and",
            "re-healthy-src/healthy",
            "re-no-account-src/no-account",
            "re-no-default-sse-src/no-default-key",
            "re-odd-id-src/odd id/ü ✓",
            "re-odd-prefix-src/odd-prefix",
            "re-prefix-src/logs",
            "re-priority-src/high",
            "re-priority-src/low",
            "re-second-account-src/healthy",
            "re-tag-src/tagged",
            "re-unselected-src/unselected",
        ]
    );
    use SkipReason::*;
    let expected_skips: &[(&str, Option<&str>, SkipReason)] = &[
        ("re-priority-src", Some("shadowed"), Shadowed),
        ("re-disabled-src", Some("disabled"), RuleDisabled),
        (
            "re-unknown-account-src",
            Some("to-777"),
            DestinationRoleUnavailable,
        ),
        ("re-untagged-src", None, Untagged),
        ("re-other-value-src", None, Untagged),
        ("re-no-config-src", None, NoReplicationConfiguration),
        (
            "re-unsatisfiable-src",
            Some("conflicting-tags"),
            UnsatisfiableFilter,
        ),
        (
            "re-unsatisfiable-src",
            Some("key-too-long"),
            UnsatisfiableFilter,
        ),
        ("re-no-id-src", None, InvalidRule),
    ];
    for (bucket, rule_id, reason) in expected_skips {
        assert!(
            skip_of(&p, bucket).contains(&(*rule_id, *reason)),
            "{bucket} {rule_id:?}: {:?}",
            skip_of(&p, bucket)
        );
    }
    let source_buckets = p.skips().filter(|s| s.bucket.ends_with("-src")).count();
    assert_eq!(
        source_buckets,
        expected_skips.len(),
        "{:?}",
        p.skips().collect::<Vec<_>>()
    );
    assert!(
        p.had_errors(),
        "the role in 777 cannot be assumed: an error"
    );
    assert_eq!(
        p.scopes.iter().map(|s| s.listed).collect::<Vec<_>>(),
        [Some(17), Some(2)]
    );
}

#[tokio::test]
async fn canaries_go_where_each_rule_selects_them() {
    let world = shared(estate());
    let p = pass(&world, &discovery_config("")).await;
    let logs = found(&p, "re-prefix-src/logs");
    assert_eq!(logs.placement.prefix, "logs/");
    assert!(logs.placement.tags.is_empty());
    let tagged = found(&p, "re-tag-src/tagged");
    assert_eq!(
        tagged.placement.tags,
        [("replicate".to_owned(), "yes".to_owned())]
    );
    let and = found(&p, "re-and-src/and");
    assert_eq!(and.placement.prefix, "data/");
    assert_eq!(and.placement.tags.len(), 2, "both of And's tags");
    let high = found(&p, "re-priority-src/high");
    assert_eq!(high.placement.prefix, "hot/");
    assert!(!high.source_fans_out, "one destination only");
    assert_eq!(high.priority, 10);
}

#[tokio::test]
async fn destinations_carry_account_region_role_and_key() {
    let world = shared(estate());
    let p = pass(&world, &discovery_config("")).await;
    let healthy = found(&p, "re-healthy-src/healthy");
    assert_eq!(healthy.source_account, S1);
    assert_eq!(
        healthy.source_role.arn,
        format!("arn:aws:iam::{S1}:role/replicanary-source-probe")
    );
    let d = &healthy.destination;
    assert_eq!(
        (d.bucket.as_str(), d.account.as_str(), d.region.as_str()),
        ("re-healthy-dst", D, REGION)
    );
    assert_eq!(d.account_from, AccountFrom::Rule);
    assert_eq!(
        d.role.arn,
        format!("arn:aws:iam::{D}:role/replicanary-destination-probe")
    );
    assert_eq!(
        d.expected_kms_key.as_ref().map(ToString::to_string),
        Some(key(D, "re-healthy-dst"))
    );
    assert_eq!(d.key_from, KeyFrom::DefaultEncryption);

    let owner = &found(&p, "re-no-account-src/no-account").destination;
    assert_eq!(
        (owner.account.as_str(), owner.account_from),
        (S2, AccountFrom::BucketOwner)
    );
    assert_eq!(
        owner.role.arn,
        format!("arn:aws:iam::{S2}:role/replicanary-destination-probe")
    );

    let sse_s3 = &found(&p, "re-no-default-sse-src/no-default-key").destination;
    assert_eq!(sse_s3.expected_kms_key, None);
    assert!(
        matches!(&sse_s3.key_from, KeyFrom::Unknown(why) if why.contains("AES256")),
        "{:?}",
        sse_s3.key_from
    );
}

#[tokio::test]
async fn an_override_names_the_key_without_reading_the_destination() {
    let arn = "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let d = discovery_config(&format!(
        "  expected_kms_keys:\n    re-no-default-sse-dst: {arn}\n"
    ));
    let world = shared(estate());
    let p = pass(&world, &d).await;
    let dest = &found(&p, "re-no-default-sse-src/no-default-key").destination;
    assert_eq!(
        dest.expected_kms_key
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(arn)
    );
    assert_eq!(dest.key_from, KeyFrom::Override);
    let w = lock(&world);
    assert!(
        !w.calls_on("re-no-default-sse-dst")
            .iter()
            .any(|c| c.contains("GetBucketEncryption")),
        "{:?}",
        w.calls_on("re-no-default-sse-dst")
    );
}

#[tokio::test]
async fn buckets_nobody_opted_in_are_never_read_beyond_their_tags_and_rules() {
    // Coverage (the default) reads their rules, and nothing else; without it, only tags.
    for (extra, want) in [
        ("", &["GetBucketTagging", "GetBucketReplication"][..]),
        ("  coverage: false\n", &["GetBucketTagging"][..]),
    ] {
        let world = shared(estate());
        pass(&world, &discovery_config(extra)).await;
        let w = lock(&world);
        for bucket in ["re-untagged-src", "re-other-value-src"] {
            let calls: Vec<String> = w.calls_on(bucket);
            let operations: Vec<&str> = calls.iter().filter_map(|c| c.split(':').nth(2)).collect();
            assert_eq!(operations, want, "{bucket} ({extra:?}): {calls:?}");
            assert!(calls.iter().all(|c| c.starts_with("source:")), "{calls:?}");
        }
    }
}

#[tokio::test]
async fn default_keys_become_arns_and_aliases_are_not_guessed() {
    let mut w = roles();
    case(
        &mut w,
        "bare",
        S1,
        OPT_IN,
        vec![rule("r", "bare-dst", Some(D))],
    );
    case(
        &mut w,
        "alias",
        S1,
        OPT_IN,
        vec![rule("r", "alias-dst", Some(D))],
    );
    case(
        &mut w,
        "managed",
        S1,
        OPT_IN,
        vec![rule("r", "managed-dst", Some(D))],
    );
    w.buckets
        .get_mut("bare-dst")
        .expect("dst")
        .encryption
        .kms_key_id = Some("0b1c2d3e-aaaa-bbbb-cccc-123456789012".to_owned());
    w.buckets
        .get_mut("alias-dst")
        .expect("dst")
        .encryption
        .kms_key_id = Some("alias/replicas".to_owned());
    w.buckets
        .get_mut("managed-dst")
        .expect("dst")
        .encryption
        .kms_key_id = None;
    let p = pass(&shared(w), &discovery_config("")).await;
    let bare = &found(&p, "re-bare-src/r").destination;
    assert_eq!(
        bare.expected_kms_key
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("arn:aws:kms:ap-northeast-1:222222222222:key/0b1c2d3e-aaaa-bbbb-cccc-123456789012")
    );
    for (name, needle) in [("re-alias-src/r", "alias"), ("re-managed-src/r", "aws/s3")] {
        let d = &found(&p, name).destination;
        assert_eq!(d.expected_kms_key, None, "{name}");
        assert!(
            matches!(&d.key_from, KeyFrom::Unknown(why) if why.contains(needle)),
            "{name}: {:?}",
            d.key_from
        );
    }
}

#[tokio::test]
async fn a_destination_in_another_region_is_followed_there() {
    let mut w = roles();
    case(
        &mut w,
        "far",
        S1,
        OPT_IN,
        vec![rule("dr", "far-dst", Some(D))],
    );
    w.buckets.get_mut("far-dst").expect("dst").region = "us-west-2".to_owned();
    let world = shared(w);
    let p = pass(&world, &discovery_config("")).await;
    assert_eq!(found(&p, "re-far-src/dr").destination.region, "us-west-2");
    assert_eq!(
        lock(&world).count("HeadBucket"),
        2,
        "asked once, told the region, asked there"
    );
}

#[tokio::test]
async fn an_unknown_owner_or_a_missing_bucket_is_a_counted_skip() {
    let mut w = roles();
    case(
        &mut w,
        "nowhere",
        S1,
        OPT_IN,
        vec![rule("r", "nowhere-dst", None)],
    );
    w.buckets.get_mut("nowhere-dst").expect("dst").owner = NOBODY.to_owned();
    w.bucket(
        "re-gone-src",
        S1,
        OPT_IN,
        Some(vec![rule("r", "gone-dst", Some(D))]),
    );
    let p = pass(&shared(w), &discovery_config("")).await;
    assert_eq!(
        skip_of(&p, "re-nowhere-src"),
        [(Some("r"), SkipReason::DestinationAccountUnknown)]
    );
    assert_eq!(skip_of(&p, "re-gone-src"), [(Some("r"), SkipReason::Error)]);
    assert!(p.found().next().is_none());
}

#[tokio::test]
async fn a_thousand_buckets_are_listed_page_by_page_and_read_once_each() {
    let mut w = roles();
    w.page_size = 100;
    w.bucket("shared-dst", D, &[], None);
    for i in 0..1000 {
        let name = format!("rx-{i:05}");
        match i % 20 {
            0 => w.bucket(
                &name,
                S1,
                OPT_IN,
                Some(vec![rule("extra", "shared-dst", Some(D))]),
            ),
            10 => w.bucket(&name, S1, OPT_IN, None),
            _ => w.bucket(&name, S1, &[], None),
        };
    }
    let world = shared(w);
    let p = pass(&world, &discovery_config("")).await;
    assert_eq!(p.found().count(), 50);
    assert_eq!(p.scopes[0].listed, Some(1000));
    let untagged = p
        .skips()
        .filter(|s| s.reason == SkipReason::Untagged)
        .count();
    let no_config = p
        .skips()
        .filter(|s| s.reason == SkipReason::NoReplicationConfiguration)
        .count();
    assert_eq!((untagged, no_config), (900, 50));
    assert!(!p.had_errors());
    let w = lock(&world);
    assert_eq!(w.count("ListBuckets"), 10 + 1, "10 pages in 111, 1 in 555");
    assert_eq!(w.count("GetBucketTagging"), 1000);
    assert_eq!(
        w.count("GetBucketReplication"),
        1000,
        "100 opted in, and 900 that did not opt in (coverage)"
    );
    assert_eq!(
        w.count("HeadBucket"),
        1,
        "one destination, resolved once for 50 rules"
    );
    assert_eq!(w.count("GetBucketEncryption"), 1);
}

#[tokio::test]
async fn a_source_role_that_cannot_be_assumed_skips_its_account_only() {
    let mut w = estate();
    w.roles.remove(&(Side::Source, S2.to_owned()));
    let p = pass(&shared(w), &discovery_config("")).await;
    let second = &p.scopes[1];
    assert_eq!(second.listed, None);
    assert_eq!(second.skips.len(), 1);
    assert_eq!(second.skips[0].reason, SkipReason::RoleNotAssumable);
    assert!(second.found.is_empty());
    assert_eq!(
        p.scopes[0].found.len(),
        11,
        "the first account is read as before"
    );
}

fn metrics_text(m: &Metrics) -> String {
    m.encode()
}

fn series(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_failed_read_keeps_what_was_found_before() {
    let world = shared(estate());
    let d = discovery_config("");
    let metrics = Metrics::new();
    let mut discoverer = Discoverer::default();
    let first = discoverer.settle(&pass(&world, &d).await, &metrics);
    assert_eq!(first.len(), 12);

    // A throttled ListBuckets in 111 and a throttled GetBucketTagging in 555: nothing lost.
    {
        let mut w = lock(&world);
        w.faults.insert(
            format!("ListBuckets:{S1}"),
            err(ErrorClass::Transient, 503, "SlowDown"),
        );
        w.faults.insert(
            "GetBucketTagging:re-second-account-src".to_owned(),
            err(ErrorClass::Transient, 503, "SlowDown"),
        );
    }
    let p = pass(&world, &d).await;
    assert_eq!(p.found().count(), 0, "this pass found nothing");
    let kept = discoverer.settle(&p, &metrics);
    assert_eq!(kept, first, "every replication stands");
    let text = metrics_text(&metrics);
    let throttled = series(&text, "replicanary_discovery_errors_total{");
    assert!(
        throttled
            .iter()
            .any(|l| l.contains(S1) && l.contains("reason=\"throttled\"") && l.ends_with(" 1")),
        "{throttled:?}"
    );
    assert!(
        series(&text, "replicanary_discovered_replications{")
            .iter()
            .any(|l| l.contains(S1) && l.ends_with(" 11"))
    );

    // Read again: the bucket untagged meanwhile is dropped, the others stay.
    {
        let mut w = lock(&world);
        w.faults.clear();
        w.buckets.get_mut("re-healthy-src").expect("src").tags = None;
    }
    let after = discoverer.settle(&pass(&world, &d).await, &metrics);
    assert_eq!(after.len(), 11);
    assert!(!after.iter().any(|f| f.bucket == "re-healthy-src"));
}

#[tokio::test]
async fn only_errors_are_counted() {
    let world = shared(estate());
    let metrics = Metrics::new();
    Discoverer::default().settle(&pass(&world, &discovery_config("")).await, &metrics);
    let text = metrics_text(&metrics);
    let errors = series(&text, "replicanary_discovery_errors_total{");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("reason=\"destination_role_unavailable\""),
        "{errors:?}"
    );
    for reason in ALL_SKIP_REASONS {
        let counted = errors
            .iter()
            .any(|l| l.contains(&format!("reason=\"{reason}\"")));
        assert!(
            !counted || reason.is_error(),
            "{reason} is not an error but was counted"
        );
    }
}

#[tokio::test]
async fn a_rule_added_or_a_bucket_tagged_is_found_by_the_next_pass() {
    let world = shared(estate());
    let d = discovery_config("");
    let metrics = Metrics::new();
    let mut discoverer = Discoverer::default();
    discoverer.settle(&pass(&world, &d).await, &metrics);
    {
        let mut w = lock(&world);
        w.buckets.get_mut("re-untagged-src").expect("src").tags =
            Some(vec![("replicanary".to_owned(), "enabled".to_owned())]);
        let mut added = rule("added", "re-healthy-dst", Some(D));
        added.prefix = "added/".to_owned();
        added.priority = 2;
        w.buckets
            .get_mut("re-healthy-src")
            .expect("src")
            .rules
            .as_mut()
            .expect("rules")
            .push(added);
    }
    let now = discoverer.settle(&pass(&world, &d).await, &metrics);
    for name in [
        "re-untagged-src/untagged",
        "re-healthy-src/added",
        "re-healthy-src/healthy",
    ] {
        assert!(now.iter().any(|f| f.name == name), "{name}");
    }
}

#[tokio::test]
async fn a_found_rule_is_probed_as_a_replication_with_its_placement() {
    let world = shared(estate());
    let p = pass(&world, &discovery_config("")).await;
    let defaults = crate::config::ProbeSettings::default();
    let and = found(&p, "re-and-src/and").replication(&defaults);
    assert_eq!(and.key_prefix(), "data/replicanary/re-and-src/and/");
    assert_eq!(and.canary_tags.len(), 2);
    assert_eq!(
        and.destinations[0].name, "re-and-dst",
        "the destination label is the bucket"
    );
    assert_eq!(and.settings, defaults);
    let unknown = found(&p, "re-no-default-sse-src/no-default-key").replication(&defaults);
    assert_eq!(unknown.destinations[0].expected_kms_key, None);
    assert_eq!(
        unknown.destinations[0].account(),
        Some(D),
        "the account from the role"
    );
}

#[tokio::test]
async fn the_owner_found_once_is_asked_first_next_time() {
    let world = shared(estate());
    let d = discovery_config("");
    let metrics = Metrics::new();
    let mut discoverer = Discoverer::default();
    discoverer.settle(&pass(&world, &d).await, &metrics);
    let heads = |w: &World| {
        w.calls_on("re-no-account-dst")
            .iter()
            .filter(|c| c.contains("HeadBucket"))
            .count()
    };
    assert_eq!(
        heads(&lock(&world)),
        2,
        "the source account's role first, then 555's"
    );
    let hints = discoverer.hints();
    assert_eq!(
        hints.owners.get("re-no-account-dst").map(String::as_str),
        Some(S2)
    );
    lock(&world).calls.clear();
    let p = discover(
        &FakeReaders(world.clone()),
        &d,
        "replicanary/",
        &hints,
        &|_| {},
    )
    .await;
    assert_eq!(heads(&lock(&world)), 1, "555 at once");
    assert_eq!(
        found(&p, "re-no-account-src/no-account")
            .destination
            .account,
        S2
    );
}

/// Every skip reason (a new one must be added here for the test below to see it).
const ALL_SKIP_REASONS: [SkipReason; 12] = [
    SkipReason::Untagged,
    SkipReason::NoReplicationConfiguration,
    SkipReason::RuleDisabled,
    SkipReason::Shadowed,
    SkipReason::UnsatisfiableFilter,
    SkipReason::InvalidRule,
    SkipReason::DestinationRoleUnavailable,
    SkipReason::DestinationAccountUnknown,
    SkipReason::AccessDenied,
    SkipReason::RoleNotAssumable,
    SkipReason::Throttled,
    SkipReason::Error,
];

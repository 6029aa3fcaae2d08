//! Coverage: the enabled rules no probe stands for — which rules count, what explicit
//! replications take out, what a failed read keeps and counts, what `coverage: false`
//! saves, and how `discover` prints them.

use super::fake::{lock, rule};
use super::{D, S1, S2, discovery_config, estate, metrics_text, pass, series, shared};
use crate::config::Config;
use crate::discovery::render::{json, yaml};
use crate::discovery::{Discoverer, SkipReason};
use crate::metrics::Metrics;
use crate::model::{ErrorClass, UnmonitoredRule};
use crate::testing::err;

const REPLICA_KEY: &str = "arn:aws:kms:ap-northeast-1:222222222222:key/replica-untagged";

/// `(bucket, rule id, reason)` of each rule.
fn listed(rules: &[UnmonitoredRule]) -> Vec<(String, Option<String>, &'static str)> {
    rules
        .iter()
        .map(|r| (r.bucket.clone(), r.rule_id.clone(), r.reason))
        .collect()
}

fn gauge(text: &str, account: &str) -> Option<String> {
    series(text, "replicanary_unmonitored_replication_rules{")
        .into_iter()
        .find(|l| l.contains(&format!("source_account=\"{account}\"")))
        .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
}

/// The estate with a `ReplicaKmsKeyID` on the untagged rule and a disabled second rule
/// beside it (never counted).
fn world() -> super::fake::Shared {
    let mut w = estate();
    let b = w.buckets.get_mut("re-untagged-src").expect("untagged");
    let rules = b.rules.as_mut().expect("rules");
    rules[0].replica_kms_key_id = Some(REPLICA_KEY.to_owned());
    let mut off = rule("switched-off", "re-untagged-dst", Some(D));
    off.enabled = false;
    rules.push(off);
    shared(w)
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[tokio::test]
async fn unopted_rules_and_opted_in_rules_discovery_cannot_probe_are_unmonitored() {
    let world = world();
    let d = discovery_config("");
    let p = pass(&world, &d).await;
    let metrics = Metrics::new();
    let rules = Discoverer::default().settle_coverage(&p, &[], &metrics);
    let r = |b: &str, id: &str, why| (s(b), Some(s(id)), why);
    assert_eq!(
        listed(&rules),
        vec![
            (s("re-no-id-src"), None, "invalid_rule"),
            r("re-other-value-src", "other-value", "untagged"),
            r("re-priority-src", "shadowed", "shadowed"),
            r(
                "re-unsatisfiable-src",
                "conflicting-tags",
                "unsatisfiable_filter"
            ),
            r(
                "re-unsatisfiable-src",
                "key-too-long",
                "unsatisfiable_filter"
            ),
            r("re-untagged-src", "untagged", "untagged"),
        ],
        "not the disabled rules (re-disabled-src's, switched-off), not the rule whose destination role is missing (an error); \
         the rule without an ID is invalid here (in S3 it gets one)"
    );
    let untagged = rules
        .iter()
        .find(|r| r.bucket == "re-untagged-src")
        .expect("listed");
    assert_eq!(untagged.destination_bucket, "re-untagged-dst");
    assert_eq!(untagged.destination_account.as_deref(), Some(D));
    assert_eq!(untagged.replica_kms_key_id.as_deref(), Some(REPLICA_KEY));
    assert_eq!(
        (untagged.source_account.as_str(), untagged.region.as_str()),
        (S1, "ap-northeast-1")
    );
    let text = metrics_text(&metrics);
    assert_eq!(gauge(&text, S1).as_deref(), Some("6"), "{text}");
    assert_eq!(gauge(&text, S2).as_deref(), Some("0"), "{text}");
    assert!(p.skips().all(|s| s.reason != SkipReason::AccessDenied));
}

#[tokio::test]
async fn a_rule_an_explicit_replication_probes_is_monitored() {
    let world = world();
    let d = discovery_config("");
    let p = pass(&world, &d).await;
    let explicit = Config::parse(&format!(
        "replications:\n  - name: by-hand\n    source: {{bucket: re-untagged-src, region: ap-northeast-1}}\n    destinations:\n      - {{name: d, bucket: re-untagged-dst, region: ap-northeast-1, expected_kms_key_arn: '{REPLICA_KEY}'}}\n"
    ))
    .expect("valid")
    .replications;
    let metrics = Metrics::new();
    let rules = Discoverer::default().settle_coverage(&p, &explicit, &metrics);
    assert!(
        !rules.iter().any(|r| r.bucket == "re-untagged-src"),
        "{rules:?}"
    );
    assert_eq!(rules.len(), 5);
    assert_eq!(gauge(&metrics_text(&metrics), S1).as_deref(), Some("5"));
    // `discover` says the same.
    let doc: serde_json::Value =
        serde_json::from_str(&json(&p, &explicit, &d, "replicanary/")).expect("json");
    assert_eq!(doc["summary"]["unmonitored_rules"], 5);
    assert!(
        !doc["unmonitored"]
            .as_array()
            .expect("list")
            .iter()
            .any(|r| r["bucket"] == "re-untagged-src")
    );
}

#[tokio::test]
async fn a_failed_coverage_read_is_counted_keeps_what_it_found_and_spares_the_opted_in() {
    let world = world();
    let d = discovery_config("");
    let metrics = Metrics::new();
    let mut discoverer = Discoverer::default();
    let first_pass = pass(&world, &d).await;
    let found_before = first_pass.found().count();
    let first = discoverer.settle_coverage(&first_pass, &[], &metrics);
    assert_eq!(first.len(), 6);

    lock(&world).faults.insert(
        "GetBucketReplication:re-untagged-src".to_owned(),
        err(ErrorClass::AccessDenied, 403, "AccessDenied"),
    );
    let p = pass(&world, &d).await;
    assert_eq!(
        p.found().count(),
        found_before,
        "opted-in buckets are discovered as always"
    );
    let refused: Vec<_> = p
        .skips()
        .filter(|s| s.bucket == "re-untagged-src")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].reason, SkipReason::AccessDenied);
    assert!(
        refused[0].detail.contains("not opted in") && refused[0].detail.contains("AccessDenied"),
        "{}",
        refused[0].detail
    );
    assert!(p.had_errors());
    discoverer.settle(&p, &metrics);
    let kept = discoverer.settle_coverage(&p, &[], &metrics);
    assert_eq!(kept, first, "the rule read before stands");
    let text = metrics_text(&metrics);
    assert!(
        series(&text, "replicanary_discovery_errors_total{")
            .iter()
            .any(|l| l.contains(S1) && l.contains("reason=\"access_denied\"") && l.ends_with(" 1")),
        "{text}"
    );
    assert_eq!(gauge(&text, S1).as_deref(), Some("6"));

    // Read again, the rule removed meanwhile: gone from the list.
    {
        let mut w = lock(&world);
        w.faults.clear();
        w.buckets.get_mut("re-untagged-src").expect("src").rules = None;
    }
    let after = discoverer.settle_coverage(&pass(&world, &d).await, &[], &metrics);
    assert_eq!(after.len(), 5);
    assert_eq!(gauge(&metrics_text(&metrics), S1).as_deref(), Some("5"));
}

#[tokio::test]
async fn a_tag_read_that_fails_keeps_the_buckets_unmonitored_rules() {
    let world = world();
    let d = discovery_config("");
    let metrics = Metrics::new();
    let mut discoverer = Discoverer::default();
    let first = discoverer.settle_coverage(&pass(&world, &d).await, &[], &metrics);
    lock(&world).faults.insert(
        "GetBucketTagging:re-untagged-src".to_owned(),
        err(ErrorClass::Transient, 503, "SlowDown"),
    );
    let kept = discoverer.settle_coverage(&pass(&world, &d).await, &[], &metrics);
    assert_eq!(
        kept, first,
        "a throttled tag read does not make a rule vanish for a pass"
    );
}

#[tokio::test]
async fn a_listing_that_fails_keeps_the_accounts_unmonitored_rules() {
    let world = world();
    let d = discovery_config("");
    let metrics = Metrics::new();
    let mut discoverer = Discoverer::default();
    let first = discoverer.settle_coverage(&pass(&world, &d).await, &[], &metrics);
    lock(&world).faults.insert(
        format!("ListBuckets:{S1}"),
        err(ErrorClass::Transient, 503, "SlowDown"),
    );
    let kept = discoverer.settle_coverage(&pass(&world, &d).await, &[], &metrics);
    assert_eq!(kept, first);
}

#[tokio::test]
async fn coverage_off_reads_nothing_more_and_exports_nothing() {
    let world = world();
    let d = discovery_config("  coverage: false\n");
    assert!(!d.coverage);
    let p = pass(&world, &d).await;
    let metrics = Metrics::new();
    assert!(
        Discoverer::default()
            .settle_coverage(&p, &[], &metrics)
            .is_empty()
    );
    assert!(p.scopes.iter().all(|s| s.unmonitored.is_empty()));
    let text = metrics_text(&metrics);
    assert!(gauge(&text, S1).is_none(), "{text}");
    let w = lock(&world);
    assert!(
        w.calls_on("re-untagged-src")
            .iter()
            .all(|c| !c.contains("GetBucketReplication"))
    );
    let doc: serde_json::Value =
        serde_json::from_str(&json(&p, &[], &d, "replicanary/")).expect("json");
    assert!(doc["unmonitored"].is_null());
    assert!(doc["summary"]["unmonitored_rules"].is_null());
    assert!(yaml(&p, &[], &d, "replicanary/").contains("not read (discovery.coverage: false)"));
}

#[tokio::test]
async fn discover_lists_each_unmonitored_rule_in_both_formats() {
    let world = world();
    let d = discovery_config("");
    let p = pass(&world, &d).await;
    let doc: serde_json::Value =
        serde_json::from_str(&json(&p, &[], &d, "replicanary/")).expect("json");
    let list = doc["unmonitored"].as_array().expect("list");
    assert_eq!(list.len(), 6);
    assert_eq!(doc["summary"]["unmonitored_rules"], 6);
    let untagged = list
        .iter()
        .find(|r| r["bucket"] == "re-untagged-src")
        .expect("listed");
    assert_eq!(untagged["rule_id"], "untagged");
    assert_eq!(untagged["destination_bucket"], "re-untagged-dst");
    assert_eq!(untagged["destination_account"], D);
    assert_eq!(untagged["replica_kms_key_id"], REPLICA_KEY);
    assert_eq!(untagged["reason"], "untagged");
    assert_eq!(untagged["source_account"], S1);

    let text = yaml(&p, &[], &d, "replicanary/");
    assert!(
        text.contains("# unmonitored replication rules (6): enabled rules no replication probes\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "#   re-untagged-src/untagged in {S1} ap-northeast-1: untagged → re-untagged-dst (account {D}), ReplicaKmsKeyID {REPLICA_KEY}\n"
        )),
        "{text}"
    );
    // Still a configuration: the list is comments only.
    assert!(all_comments(&text), "every coverage line is a comment");
}

/// Every line of the coverage block is a YAML comment (hostile ids cannot break the file).
fn all_comments(text: &str) -> bool {
    text.lines()
        .skip_while(|l| !l.starts_with("# unmonitored replication rules"))
        .all(|l| l.starts_with('#'))
}

#[tokio::test]
async fn a_hostile_rule_id_stays_inside_its_comment() {
    let world = world();
    {
        let mut w = lock(&world);
        let b = w.buckets.get_mut("re-untagged-src").expect("src");
        b.rules.as_mut().expect("rules")[0].id = "evil\nreplications: []".to_owned();
    }
    let d = discovery_config("");
    let p = pass(&world, &d).await;
    let text = yaml(&p, &[], &d, "replicanary/");
    assert!(all_comments(&text), "{text}");
    assert!(
        text.contains(r#""re-untagged-src/evil\nreplications: []""#),
        "{text}"
    );
}

#[tokio::test]
async fn turning_coverage_off_or_dropping_an_account_removes_its_count() {
    let world = world();
    let metrics = Metrics::new();
    let mut discoverer = Discoverer::default();
    discoverer.settle_coverage(&pass(&world, &discovery_config("")).await, &[], &metrics);
    assert_eq!(gauge(&metrics_text(&metrics), S2).as_deref(), Some("0"));

    // 555 no longer configured: its series goes, 111's stays.
    let only_s1 = Config::parse(&format!(
        "discovery:\n  regions: [ap-northeast-1]\n  source_accounts: [\"{S1}\"]\n  source_role_arn: arn:aws:iam::{{account}}:role/replicanary-source-probe\n  destination_role_arn: arn:aws:iam::{{account}}:role/replicanary-destination-probe\n  bucket_tag: {{key: replicanary, value: enabled}}\n"
    ))
    .expect("valid")
    .discovery
    .expect("discovery");
    discoverer.settle_coverage(&pass(&world, &only_s1).await, &[], &metrics);
    let text = metrics_text(&metrics);
    assert_eq!(gauge(&text, S2), None, "{text}");
    assert_eq!(gauge(&text, S1).as_deref(), Some("6"));

    // Coverage off: nothing exported.
    let off = discovery_config("  coverage: false\n");
    discoverer.settle_coverage(&pass(&world, &off).await, &[], &metrics);
    let text = metrics_text(&metrics);
    assert_eq!(gauge(&text, S1), None, "{text}");

    // Discovery removed (the daemon clears it): nothing either.
    discoverer.settle_coverage(&pass(&world, &discovery_config("")).await, &[], &metrics);
    assert!(gauge(&metrics_text(&metrics), S1).is_some());
    discoverer.clear_coverage(&metrics);
    assert_eq!(gauge(&metrics_text(&metrics), S1), None);
}

//! `discover`'s output: paste-ready configuration that probes what discovery found, every
//! skip with its reason, and explicit replications winning.

use std::collections::BTreeSet;

use super::{discovery_config, estate, pass, shared};
use crate::config::Config;
use crate::discovery::render::{config_name, json, scalar, yaml};

#[tokio::test]
async fn the_yaml_is_a_configuration_that_probes_the_same_canaries() {
    let world = shared(estate());
    let d = discovery_config("");
    let p = pass(&world, &d).await;
    let text = yaml(&p, &[], &d, "replicanary/");
    // Everything but the one replication without an expected key can be pasted as is.
    let pasted = Config::parse(&text).expect_err("the entry without a key is not valid yet");
    assert_eq!(pasted.len(), 1, "{pasted:?}");
    assert!(
        pasted[0]
            .path
            .ends_with(".destinations[0].expected_kms_key_arn"),
        "{pasted:?}"
    );
    assert!(
        text.contains("# expected_kms_key_arn: unknown — its default encryption is AES256"),
        "{text}"
    );
    let without = text.replace(
        "        region: ap-northeast-1\n        role_arn: arn:aws:iam::222222222222:role/replicanary-destination-probe\n        # expected_kms_key_arn: unknown",
        "        region: ap-northeast-1\n        role_arn: arn:aws:iam::222222222222:role/replicanary-destination-probe\n        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/0b1c2d3e-aaaa-bbbb-cccc-123456789012\n        # was unknown",
    );
    let config = Config::parse(&without).expect("the pasted replications are a configuration");
    assert_eq!(config.replications.len(), p.found().count());
    for f in p.found() {
        let r = config
            .replications
            .iter()
            .find(|r| {
                r.source.bucket == f.bucket
                    && r.destinations[0].bucket == f.destination.bucket
                    && r.rule_prefix == f.placement.prefix
            })
            .unwrap_or_else(|| panic!("{} pasted", f.name));
        assert_eq!(r.canary_tags, f.placement.tags, "{}", f.name);
        assert_eq!(r.source_fans_out, f.source_fans_out, "{}", f.name);
        assert_eq!(
            r.source.role.as_ref().map(|x| x.arn.as_str()),
            Some(f.source_role.arn.as_str())
        );
        assert_eq!(
            r.destinations[0].role.as_ref().map(|x| x.arn.as_str()),
            Some(f.destination.role.arn.as_str())
        );
        assert_eq!(r.destinations[0].region, f.destination.region);
    }
    assert!(text.contains("# skipped (10):"), "{text}");
    assert!(
        text.contains("re-priority-src/shadowed in 111111111111 ap-northeast-1: shadowed"),
        "{text}"
    );
    assert!(
        text.contains("destination_role_unavailable (error)"),
        "{text}"
    );
}

#[tokio::test]
async fn the_json_names_every_replication_and_skip() {
    let world = shared(estate());
    let d = discovery_config("");
    let p = pass(&world, &d).await;
    let doc: serde_json::Value =
        serde_json::from_str(&json(&p, &[], &d, "replicanary/")).expect("JSON");
    assert_eq!(doc["replications"].as_array().map(Vec::len), Some(12));
    let odd = doc["discovered"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["rule_id"] == "odd id/ü ✓"))
        .expect("the odd rule id");
    assert_eq!(odd["name"], "re-odd-id-src/odd id/ü ✓");
    assert_eq!(odd["config_name"], "re-odd-id-src-odd-id----");
    assert_eq!(
        odd["canary_key_prefix"],
        "replicanary/re-odd-id-src/odd id/ü ✓/"
    );
    assert_eq!(odd["destination"]["account_from"], "rule");
    assert_eq!(
        odd["destination"]["expected_kms_key_from"],
        "default_encryption"
    );
    let skipped = doc["skipped"].as_array().expect("skipped");
    assert_eq!(
        skipped.len(),
        10,
        "9 source buckets or rules, and the destination in 555"
    );
    let errors: Vec<&serde_json::Value> = skipped.iter().filter(|s| s["error"] == true).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["reason"], "destination_role_unavailable");
    assert_eq!(doc["summary"]["errors"], 1);
}

#[tokio::test]
async fn an_explicit_replication_of_the_same_rule_wins() {
    let world = shared(estate());
    let d = discovery_config("");
    let p = pass(&world, &d).await;
    let explicit = Config::parse(
        "replications:\n  - name: re-healthy-src-healthy\n    source: {bucket: re-healthy-src, region: ap-northeast-1}\n    destinations:\n      - {bucket: re-healthy-dst, region: ap-northeast-1, expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/0b1c2d3e-aaaa-bbbb-cccc-123456789012}\n",
    )
    .expect("valid")
    .replications;
    let text = yaml(&p, &explicit, &d, "replicanary/");
    assert!(
        text.contains("#   re-healthy-src/healthy — by `re-healthy-src-healthy`"),
        "{text}"
    );
    assert!(
        !text.contains("  - name: re-healthy-src-healthy\n"),
        "not offered for pasting again"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&json(&p, &explicit, &d, "replicanary/")).expect("JSON");
    assert_eq!(doc["replications"].as_array().map(Vec::len), Some(11));
    let healthy = doc["discovered"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "re-healthy-src/healthy"))
        .expect("listed");
    assert_eq!(healthy["covered_by"], "re-healthy-src-healthy");
    assert_ne!(
        healthy["config_name"], "re-healthy-src-healthy",
        "a pasted name never collides"
    );
}

#[test]
fn names_and_scalars_survive_a_round_trip() {
    let mut taken = BTreeSet::from(["a-b".to_owned()]);
    assert_eq!(config_name("a/b", &mut taken), "a-b-2");
    assert_eq!(config_name("a/b", &mut taken), "a-b-3");
    assert_eq!(config_name("x/odd id/ü", &mut taken), "x-odd-id--");
    for s in [
        "yes",
        "no",
        "on",
        "null",
        "123",
        "logs/",
        "odd dir/ü+%&=?#/",
        "-x",
        "a: b",
        "#c",
        "arn:aws:iam::1:role/x",
        "",
    ] {
        let doc = format!("k: {}\n", scalar(s));
        let v: serde_json::Value = serde_saphyr::from_str(&doc).expect("YAML");
        assert_eq!(v["k"], serde_json::json!(s), "{doc}");
    }
}

#[tokio::test]
async fn discovery_readers_reach_every_found_destination_and_its_pasted_entry() {
    let world = shared(estate());
    let d = discovery_config(
        "  readers:\n    - {name: restore, role_arn: 'arn:aws:iam::{account}:role/dr-restore', external_id: xyz-123}\n",
    );
    let p = pass(&world, &d).await;
    let found: Vec<_> = p.found().collect();
    assert!(!found.is_empty());
    for f in &found {
        let r = &f.destination.readers;
        assert_eq!(r.len(), 1, "{}", f.name);
        assert_eq!(
            r[0].role.arn,
            format!("arn:aws:iam::{}:role/dr-restore", f.destination.account),
            "{{account}} is the destination's account"
        );
        let rep = f.replication(&crate::config::ProbeSettings::default());
        assert_eq!(rep.destinations[0].readers, *r);
    }
    let text = yaml(&p, &[], &d, "replicanary/");
    assert!(
        text.contains("readers:") && text.contains("role/dr-restore"),
        "{text}"
    );
    let doc = json(&p, &[], &d, "replicanary/");
    assert!(doc.to_string().contains("dr-restore"), "{doc}");
}

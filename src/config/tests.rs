//! Configuration validation: every rejection names its field path.

use std::time::Duration;

use super::{Config, FieldError};

const GOOD: &str = r#"
defaults:
  interval: 5m
  replication_timeout: 15m
  poll: { initial: 1s, max: 30s }
  canary_prefix: replicanary/
  cleanup: true
aws:
  endpoint_url: http://127.0.0.1:4566
  force_path_style: true
replications:
  - name: audit-logs
    interval: 1m
    source:
      bucket: test-dev-s3
      region: ap-northeast-1
      role_arn: arn:aws:iam::111111111111:role/replicanary-source
      external_id: optional-string
      sse_kms_key_id: arn:aws:kms:ap-northeast-1:111111111111:key/0b1c2d3e-aaaa-bbbb-cccc-123456789012
    destinations:
      - bucket: audit-dev-s3
        region: ap-northeast-1
        role_arn: arn:aws:iam::222222222222:role/replicanary-destination
        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
"#;

fn errors(yaml: &str) -> Vec<FieldError> {
    Config::parse(yaml).expect_err("configuration should be rejected")
}

/// The first error's path, asserting its message mentions `needle`.
fn path_of(yaml: &str, needle: &str) -> String {
    let errs = errors(yaml);
    let e = &errs[0];
    assert!(
        e.message.contains(needle),
        "message `{}` lacks `{needle}`",
        e.message
    );
    e.path.clone()
}

#[test]
fn the_spec_example_is_valid_and_merged() {
    let c = Config::parse(GOOD).expect("valid");
    assert_eq!(c.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:4566"));
    assert!(c.aws.force_path_style);
    let r = &c.replications[0];
    assert_eq!(
        r.settings.interval,
        Duration::from_secs(60),
        "override wins"
    );
    assert_eq!(
        r.settings.replication_timeout,
        Duration::from_secs(900),
        "default applies"
    );
    assert_eq!(r.key_prefix(), "replicanary/audit-logs/");
    let d = &r.destinations[0];
    assert_eq!(
        d.name, "audit-dev-s3",
        "the destination label defaults to the bucket"
    );
    assert_eq!(
        r.source
            .role
            .as_ref()
            .and_then(|x| x.external_id.as_deref()),
        Some("optional-string")
    );
}

#[test]
fn the_annotated_example_is_valid() {
    let text = include_str!("../../config/replicanary.example.yaml");
    let c = Config::parse(text).expect("config/replicanary.example.yaml is valid");
    assert_eq!(c.replications[0].name, "audit-logs");
    assert!(c.discovery.is_none(), "discovery is commented out");
    let placed = text
        .replace("    # rule_prefix:", "    rule_prefix:")
        .replace("    # canary_tags:", "    canary_tags:")
        .replace("    # source_fans_out:", "    source_fans_out:");
    let r = &Config::parse(&placed)
        .expect("with the placement keys")
        .replications[0];
    assert_eq!(r.key_prefix(), "logs/replicanary/audit-logs/");
    assert_eq!(r.canary_tags.len(), 1);
    assert!(r.source_fans_out);
}

/// The example's commented `discovery:` block, uncommented, is a valid section too.
#[test]
fn the_annotated_discovery_example_is_valid() {
    let text = include_str!("../../config/replicanary.example.yaml");
    let start = text.find("# discovery:").expect("a discovery block");
    let block: String = text[start..]
        .lines()
        .map_while(|l| l.strip_prefix("# ").or_else(|| l.strip_prefix("#")))
        .take_while(|l| !l.trim_start().starts_with("Each enabled rule"))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = Config::parse(&block).expect("the uncommented discovery block is valid");
    let d = c.discovery.expect("discovery");
    assert_eq!(d.source_accounts, ["111111111111"]);
    assert_eq!(d.expected_kms_keys.len(), 1);
    assert_eq!(d.external_id.as_deref(), Some("replicanary-estate"));
    assert!(d.coverage);
}

#[test]
fn discovery_coverage_is_on_unless_turned_off() {
    let base = "discovery:\n  regions: [ap-northeast-1]\n  source_accounts: [\"111111111111\"]\n  source_role_arn: arn:aws:iam::{account}:role/s\n  destination_role_arn: arn:aws:iam::{account}:role/d\n  bucket_tag: {key: replicanary, value: enabled}\n";
    let on = Config::parse(base).expect("valid");
    assert!(on.discovery.expect("discovery").coverage);
    let off = Config::parse(&format!("{base}  coverage: false\n")).expect("valid");
    assert!(!off.discovery.expect("discovery").coverage);
    let errors =
        Config::parse(&format!("{base}  coverage: sometimes\n")).expect_err("not a boolean");
    assert!(
        errors.iter().any(|e| e.path.contains("discovery.coverage")),
        "{errors:?}"
    );
}

#[test]
fn empty_optional_sections_are_fine() {
    let yaml = GOOD.replace(
        "aws:\n  endpoint_url: http://127.0.0.1:4566\n  force_path_style: true\n",
        "aws:\n",
    );
    let c = Config::parse(&yaml).expect("an empty aws: section is allowed");
    assert_eq!(c.aws.endpoint_url, None);
}

#[test]
fn unknown_keys_are_errors_at_their_path() {
    let yaml = GOOD.replace(
        "        region: ap-northeast-1\n        role_arn: arn:aws:iam::222",
        "        region: ap-northeast-1\n        colour: blue\n        role_arn: arn:aws:iam::222",
    );
    assert_eq!(
        path_of(&yaml, "unknown field"),
        "replications[0].destinations[0].colour"
    );
    let top = format!("{GOOD}\nextra: 1\n");
    assert_eq!(path_of(&top, "unknown field"), "extra");
}

#[test]
fn malformed_arns_are_named() {
    let yaml = GOOD.replace(
        "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd",
        "arn:aws:kms:ap-northeast-1:2222:key/1234abcd",
    );
    assert_eq!(
        path_of(&yaml, "not a KMS key ARN"),
        "replications[0].destinations[0].expected_kms_key_arn"
    );
    let alias = GOOD.replace(
        "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:ap-northeast-1:222222222222:alias/replicas",
    );
    assert_eq!(
        path_of(&alias, "alias"),
        "replications[0].destinations[0].expected_kms_key_arn"
    );
    let role = GOOD.replace("role/replicanary-source", "user/bob");
    assert_eq!(
        path_of(&role, "not an IAM role ARN"),
        "replications[0].source.role_arn"
    );
    let sse = GOOD.replace(
        "sse_kms_key_id: arn:aws:kms:ap-northeast-1:111111111111:key/",
        "sse_kms_key_id: arn:aws:s3:::x/",
    );
    assert_eq!(
        path_of(&sse, "not a KMS key"),
        "replications[0].source.sse_kms_key_id"
    );
}

#[test]
fn buckets_and_regions_are_checked() {
    for bad in [
        "Test_Bucket",
        "ab",
        "192.168.1.1",
        "-lead",
        "a..b",
        "xn--bucket",
    ] {
        let yaml = GOOD.replace("bucket: test-dev-s3", &format!("bucket: \"{bad}\""));
        assert_eq!(
            path_of(&yaml, "not a valid bucket name"),
            "replications[0].source.bucket",
            "{bad}"
        );
    }
    let yaml = GOOD.replace(
        "region: ap-northeast-1\n      role_arn: arn:aws:iam::111",
        "region: tokyo\n      role_arn: arn:aws:iam::111",
    );
    assert_eq!(
        path_of(&yaml, "not an AWS region"),
        "replications[0].source.region"
    );
}

#[test]
fn durations_are_checked() {
    let yaml = GOOD.replace("interval: 1m", "interval: soon");
    assert_eq!(path_of(&yaml, "not a duration"), "replications[0].interval");
    let yaml = GOOD.replace("interval: 1m", "interval: 0s");
    assert_eq!(
        path_of(&yaml, "greater than zero"),
        "replications[0].interval"
    );
    let yaml = GOOD.replace(
        "poll: { initial: 1s, max: 30s }",
        "poll: { initial: 1m, max: 30s }",
    );
    assert_eq!(
        path_of(&yaml, "greater than poll.max"),
        "replications[0].poll"
    );
    let yaml = GOOD.replace("interval: 5m", "interval: 5");
    assert_eq!(path_of(&yaml, "has no unit"), "defaults.interval");
}

#[test]
fn the_sweep_interval_defaults_to_an_hour_and_is_checked() {
    let c = Config::parse(GOOD).expect("valid");
    assert_eq!(
        c.replications[0].settings.sweep_interval,
        Duration::from_secs(3600)
    );
    let yaml = GOOD.replace("cleanup: true", "cleanup: true\n  sweep_interval: 10m");
    let yaml = yaml.replace(
        "    interval: 1m",
        "    interval: 1m\n    sweep_interval: 90s",
    );
    let c = Config::parse(&yaml).expect("valid");
    assert_eq!(
        c.replications[0].settings.sweep_interval,
        Duration::from_secs(90),
        "override wins"
    );
    let yaml = GOOD.replace("cleanup: true", "cleanup: true\n  sweep_interval: 0s");
    assert_eq!(
        path_of(&yaml, "greater than zero"),
        "defaults.sweep_interval"
    );
    let yaml = GOOD.replace(
        "    interval: 1m",
        "    interval: 1m\n    sweep_interval: hourly",
    );
    assert_eq!(
        path_of(&yaml, "not a duration"),
        "replications[0].sweep_interval"
    );
}

#[test]
fn duplicate_names_are_errors() {
    let rep_start = GOOD
        .find("  - name: audit-logs")
        .expect("has a replication");
    let rep = &GOOD[rep_start..];
    let twice = format!("{GOOD}{rep}");
    assert_eq!(
        path_of(&twice, "duplicate replication name"),
        "replications[1].name"
    );

    let dest_start = GOOD
        .find("      - bucket: audit-dev-s3")
        .expect("has a destination");
    let dest = &GOOD[dest_start..];
    let twice = format!("{GOOD}{dest}");
    assert_eq!(
        path_of(&twice, "duplicate destination"),
        "replications[0].destinations[1]"
    );
}

#[test]
fn empty_or_missing_replications_are_errors() {
    assert_eq!(path_of("replications: []\n", "empty"), "replications");
    assert_eq!(path_of("defaults: {}\n", "missing"), "replications");
    assert!(
        errors("defaults: {}\n")[0].message.contains("discovery"),
        "the message says discovery would also do"
    );
    assert!(errors("")[0].message.contains("empty"));
    assert!(
        errors("replications: [ {name: x")[0]
            .message
            .contains("not valid YAML")
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = GOOD.replace("bucket: test-dev-s3", "bucket: Bad").replace(
        "region: ap-northeast-1\n        role_arn",
        "region: nowhere\n        role_arn",
    );
    let paths: Vec<String> = errors(&yaml).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "replications[0].source.bucket",
            "replications[0].destinations[0].region"
        ]
    );
}

#[test]
fn a_bare_key_id_matches_the_expected_arn() {
    let c = Config::parse(GOOD).expect("valid");
    let k = c.replications[0].destinations[0]
        .expected_kms_key
        .as_ref()
        .expect("a configured replication always has an expected key");
    assert!(k.matches(
        "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ));
    assert!(k.matches("1234abcd-12ab-34cd-56ef-1234567890ab"));
    assert!(!k.matches(
        "arn:aws:kms:ap-northeast-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ));
    assert!(!k.matches("ffffffff-12ab-34cd-56ef-1234567890ab"));
}

#[test]
fn hostile_input_never_panics() {
    for text in [
        "\u{0}\u{1}\u{2}",
        "replications: 7",
        "replications: [[[[[[[[]]]]]]]]",
        "replications:\n  - name: [a, b]",
        "&a [*a, *a]",
        "replications:\n  - {name: x, source: {bucket: 12}, destinations: {}}",
        "? [a]\n: b",
        "defaults: {poll: {initial: 99999999999999999999999h}}\nreplications: []",
    ] {
        assert!(Config::parse(text).is_err(), "{text:?} should be rejected");
    }
}

/// Arbitrary bytes and arbitrary YAML structures never panic the
/// loader; every rejection carries a message, and a field path unless the whole file is at
/// fault (not YAML, empty, or not a mapping, or an unknown top-level key it names).
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::super::{Config, FieldError};

    /// Whole-file problems are the only errors allowed without a field path.
    fn well_located(errors: &[FieldError]) -> Result<(), String> {
        if errors.is_empty() {
            return Err("rejected without a single error".to_owned());
        }
        for e in errors {
            if e.message.trim().is_empty() {
                return Err(format!("an error without a message at `{}`", e.path));
            }
            // Root-level type errors (a scalar or a sequence instead of a mapping) have no
            // field to name.
            let whole_file = [
                "not valid YAML",
                "empty",
                "invalid type",
                "unknown field",
                "expected struct RawConfig",
            ]
            .iter()
            .any(|w| e.message.contains(w));
            if e.path.is_empty() && !whole_file {
                return Err(format!("an error without a field path: {}", e.message));
            }
        }
        Ok(())
    }

    /// Scalars that a field might (or should never) hold.
    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            prop_oneof![
                Just("5m"), Just("0s"), Just("500ms"), Just("1s"), Just("99999999999999999999h"),
                Just("-1s"), Just("replicanary/"), Just(""), Just("ap-northeast-1"), Just("nowhere"),
                Just("test-dev-s3"), Just("Bad_Bucket"), Just("http://127.0.0.1:4566"),
                Just("arn:aws:iam::111111111111:role/replicanary-source"),
                Just("arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                Just("arn:aws:kms:ap-northeast-1:222222222222:alias/x"),
            ]
            .prop_map(|s| Value::String(s.to_owned())),
            "\\PC{0,24}".prop_map(Value::String),
        ]
    }

    const KEYS: &[&str] = &[
        "defaults",
        "aws",
        "replications",
        "interval",
        "replication_timeout",
        "poll",
        "initial",
        "max",
        "canary_prefix",
        "cleanup",
        "sweep_min_age",
        "sweep_interval",
        "endpoint_url",
        "force_path_style",
        "attempt_timeout",
        "operation_timeout",
        "max_attempts",
        "name",
        "source",
        "destinations",
        "bucket",
        "region",
        "role_arn",
        "external_id",
        "sse_kms_key_id",
        "expected_kms_key_arn",
        "rule_prefix",
        "canary_tags",
        "source_fans_out",
        "discovery",
        "regions",
        "source_accounts",
        "source_role_arn",
        "destination_role_arn",
        "bucket_tag",
        "key",
        "value",
        "expected_kms_keys",
        "unknown_key",
    ];

    /// Arbitrary YAML structures, keyed mostly by the schema's own field names so that
    /// generation reaches deep into the file.
    fn structure() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                    Value::Object(
                        kv.into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<_, _>>(),
                    )
                }),
            ]
        })
    }

    /// A mostly valid file with one field replaced by an arbitrary structure.
    fn almost_valid() -> impl Strategy<Value = Value> {
        let base: Value = serde_saphyr::from_str(super::GOOD).expect("GOOD is YAML");
        let paths: Vec<Vec<&'static str>> = vec![
            vec!["defaults", "interval"],
            vec!["defaults", "poll"],
            vec!["defaults", "poll", "max"],
            vec!["defaults", "canary_prefix"],
            vec!["aws"],
            vec!["aws", "endpoint_url"],
            vec!["aws", "max_attempts"],
            vec!["replications"],
            vec!["replications", "0"],
            vec!["replications", "0", "name"],
            vec!["replications", "0", "source"],
            vec!["replications", "0", "source", "bucket"],
            vec!["replications", "0", "destinations"],
            vec![
                "replications",
                "0",
                "destinations",
                "0",
                "expected_kms_key_arn",
            ],
            vec!["replications", "0", "destinations", "0", "role_arn"],
        ];
        (prop::sample::select(paths), structure()).prop_map(move |(path, v)| {
            let mut doc = base.clone();
            let mut cur = &mut doc;
            for (i, p) in path.iter().enumerate() {
                let last = i + 1 == path.len();
                let next = match cur {
                    Value::Object(m) if last => {
                        m.insert((*p).to_owned(), v.clone());
                        break;
                    }
                    Value::Object(m) => m.get_mut(*p),
                    Value::Array(a) if last => {
                        if let Some(slot) = p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                            *slot = v.clone();
                        }
                        break;
                    }
                    Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                    _ => None,
                };
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            }
            doc
        })
    }

    /// JSON is YAML (flow style); the block style is exercised by the textual mutations.
    fn render(v: &Value) -> String {
        serde_json::to_string(v).expect("a JSON value renders")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            if let Err(errors) = Config::parse(&text) {
                prop_assert!(well_located(&errors).is_ok(), "{:?}: {:?}", text, errors);
            }
        }

        #[test]
        fn arbitrary_structures_never_panic(v in structure()) {
            let text = render(&v);
            match Config::parse(&text) {
                Err(errors) => prop_assert!(well_located(&errors).is_ok(), "{}: {:?}", text, errors),
                Ok(c) => prop_assert!(
                    !c.replications.is_empty() || c.discovery.is_some(),
                    "{}", text
                ),
            }
        }

        /// One field of a valid file replaced by anything: rejected with that field's path
        /// (or a path inside it), or accepted as a configuration the daemon can trust.
        #[test]
        fn a_broken_field_is_named(v in almost_valid()) {
            let text = render(&v);
            match Config::parse(&text) {
                Err(errors) => {
                    prop_assert!(well_located(&errors).is_ok(), "{}: {:?}", text, errors);
                    prop_assert!(errors.iter().all(|e| !e.path.is_empty()), "{}: {:?}", text, errors);
                }
                Ok(c) => {
                    for r in &c.replications {
                        let s = &r.settings;
                        prop_assert!(!r.destinations.is_empty());
                        prop_assert!(!s.interval.is_zero() && s.poll_initial <= s.poll_max, "{:?}", s);
                        prop_assert!(!s.canary_prefix.is_empty());
                    }
                }
            }
        }

        /// Textual damage to a valid file: deleted, duplicated or replaced lines and bytes.
        #[test]
        fn damaged_text_never_panics(at in any::<prop::sample::Index>(), len in 0usize..40, junk in "\\PC{0,8}|[\\t :\\-\\[\\]{}&*!|>'\"%@`#,?\\n]{0,8}") {
            let good = super::GOOD;
            let mut cut = at.index(good.len());
            while !good.is_char_boundary(cut) { cut -= 1; }
            let mut end = (cut + len).min(good.len());
            while !good.is_char_boundary(end) { end -= 1; }
            let text = format!("{}{}{}", &good[..cut], junk, &good[end..]);
            if let Err(errors) = Config::parse(&text) {
                prop_assert!(well_located(&errors).is_ok(), "{:?}: {:?}", text, errors);
            }
        }
    }
}

/// Found by `fuzz::arbitrary_structures_never_panic`: serde's derived `Deserialize` accepts
/// a *sequence* wherever a struct is expected, so a file without a single key name used to
/// validate, and messages named internal types (`RawConfig`).
#[test]
fn sequences_are_not_mappings() {
    let positional = r#"[null, null, [[r1, null, null, null, null, null, null, [src-bucket, ap-northeast-1, null, null, null], [[null, dst-bucket, ap-northeast-1, null, null, "arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"]]]]]"#;
    assert!(
        Config::parse(positional).is_err(),
        "a file without one key name is not a configuration"
    );
    let errs = errors("[]");
    assert!(
        !errs[0].message.contains("RawConfig"),
        "internal type names leak into messages: {}",
        errs[0].message
    );
}

const DISCOVERY: &str = r#"
defaults:
  interval: 2m
discovery:
  interval: 10m
  regions: [ap-northeast-1, us-east-1]
  source_accounts: ["111111111111", "555555555555"]
  source_role_arn: arn:aws:iam::{account}:role/replicanary-source-probe
  destination_role_arn: arn:aws:iam::{account}:role/replicanary-destination-probe
  external_id: optional-string
  bucket_tag: { key: replicanary, value: enabled }
  expected_kms_keys:
    audit-dev-s3: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
"#;

#[test]
fn a_discovery_only_file_is_valid() {
    let c = Config::parse(DISCOVERY).expect("valid");
    assert!(c.replications.is_empty());
    assert_eq!(
        c.defaults.interval,
        Duration::from_secs(120),
        "defaults kept for discovery"
    );
    let d = c.discovery.expect("discovery");
    assert_eq!(d.interval, Duration::from_secs(600));
    assert_eq!(d.regions, ["ap-northeast-1", "us-east-1"]);
    assert_eq!(d.source_accounts, ["111111111111", "555555555555"]);
    assert_eq!(
        d.source_role.arn("555555555555"),
        "arn:aws:iam::555555555555:role/replicanary-source-probe"
    );
    let role = d
        .destination_role
        .role("222222222222", d.external_id.as_deref());
    assert_eq!(
        role.arn,
        "arn:aws:iam::222222222222:role/replicanary-destination-probe"
    );
    assert_eq!(role.external_id.as_deref(), Some("optional-string"));
    assert_eq!(d.bucket_tag.key, "replicanary");
    assert_eq!(d.bucket_tag.value, "enabled");
    assert_eq!(
        d.expected_kms_keys["audit-dev-s3"].account(),
        "222222222222"
    );
}

#[test]
fn discovery_interval_defaults_to_ten_minutes() {
    let yaml = DISCOVERY.replace("  interval: 10m\n", "");
    let d = Config::parse(&yaml)
        .expect("valid")
        .discovery
        .expect("discovery");
    assert_eq!(d.interval, Duration::from_secs(600));
}

#[test]
fn replications_and_discovery_may_sit_together() {
    let both = format!(
        "{GOOD}{}",
        DISCOVERY.replace("defaults:\n  interval: 2m\n", "")
    );
    let c = Config::parse(&both).expect("valid");
    assert_eq!(
        c.replications.len(),
        1,
        "explicit replications stay as they are"
    );
    assert_eq!(c.replications[0].name, "audit-logs");
    assert!(c.discovery.is_some());
    let empty_list = format!("replications: []\n{DISCOVERY}");
    assert!(
        Config::parse(&empty_list).is_ok(),
        "an empty list beside discovery"
    );
}

/// `(the line to replace, its replacement, the expected path, a word of the message)`.
const DISCOVERY_ERRORS: &[(&str, &str, &str, &str)] = &[
    (
        "  interval: 10m",
        "  interval: 0s",
        "discovery.interval",
        "greater than zero",
    ),
    (
        "  interval: 10m",
        "  interval: 10",
        "discovery.interval",
        "no unit",
    ),
    (
        "  regions: [ap-northeast-1, us-east-1]",
        "  regions: []",
        "discovery.regions",
        "empty",
    ),
    (
        "  regions: [ap-northeast-1, us-east-1]",
        "  colour: blue",
        "discovery.colour",
        "unknown field",
    ),
    (
        "  regions: [ap-northeast-1, us-east-1]",
        "  regions: [ap-northeast-1, tokyo]",
        "discovery.regions[1]",
        "not an AWS region",
    ),
    (
        "  regions: [ap-northeast-1, us-east-1]",
        "  regions: [us-east-1, us-east-1]",
        "discovery.regions[1]",
        "twice",
    ),
    (
        "  regions: [ap-northeast-1, us-east-1]",
        "  regions: [[us-east-1]]",
        "discovery.regions[0]",
        "expected a region",
    ),
    (
        "  source_accounts: [\"111111111111\", \"555555555555\"]",
        "  source_accounts: [111111111111]",
        "discovery.source_accounts[0]",
        "quoted string",
    ),
    (
        "  source_accounts: [\"111111111111\", \"555555555555\"]",
        "  source_accounts: [\"1111\"]",
        "discovery.source_accounts[0]",
        "12 digits",
    ),
    (
        "  source_accounts: [\"111111111111\", \"555555555555\"]",
        "  source_accounts: [\"111111111111\", \"111111111111\"]",
        "discovery.source_accounts[1]",
        "twice",
    ),
    (
        "  source_accounts: [\"111111111111\", \"555555555555\"]",
        "",
        "discovery.source_accounts",
        "missing",
    ),
    (
        "  source_role_arn: arn:aws:iam::{account}:role/replicanary-source-probe",
        "  source_role_arn: arn:aws:iam::111111111111:role/replicanary-source-probe",
        "discovery.source_role_arn",
        "{account}",
    ),
    (
        "  source_role_arn: arn:aws:iam::{account}:role/replicanary-source-probe",
        "",
        "discovery.source_role_arn",
        "missing",
    ),
    (
        "  destination_role_arn: arn:aws:iam::{account}:role/replicanary-destination-probe",
        "  destination_role_arn: arn:aws:iam::{account}:user/someone",
        "discovery.destination_role_arn",
        "not an IAM role ARN",
    ),
    (
        "  external_id: optional-string",
        "  external_id: \"x\"",
        "discovery.external_id",
        "2 to 1224",
    ),
    (
        "  bucket_tag: { key: replicanary, value: enabled }",
        "",
        "discovery.bucket_tag",
        "missing",
    ),
    (
        "  bucket_tag: { key: replicanary, value: enabled }",
        "  bucket_tag: [replicanary, enabled]",
        "discovery.bucket_tag",
        "mapping",
    ),
    (
        "  bucket_tag: { key: replicanary, value: enabled }",
        "  bucket_tag: { key: \"aws:cloudformation\", value: x }",
        "discovery.bucket_tag.key",
        "reserved",
    ),
    (
        "  bucket_tag: { key: replicanary, value: enabled }",
        "  bucket_tag: { key: \"\", value: x }",
        "discovery.bucket_tag.key",
        "1 to 128",
    ),
    (
        "  bucket_tag: { key: replicanary, value: enabled }",
        "  bucket_tag: { key: replicanary }",
        "discovery.bucket_tag.value",
        "missing",
    ),
    (
        "    audit-dev-s3: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "    Audit_Bucket: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "discovery.expected_kms_keys.Audit_Bucket",
        "not a valid bucket name",
    ),
    (
        "    audit-dev-s3: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "    audit-dev-s3: arn:aws:kms:ap-northeast-1:222222222222:alias/audit",
        "discovery.expected_kms_keys.audit-dev-s3",
        "not an alias",
    ),
    (
        "    audit-dev-s3: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "    audit-dev-s3: 12",
        "discovery.expected_kms_keys.audit-dev-s3",
        "expected a KMS key ARN",
    ),
    (
        "  expected_kms_keys:\n    audit-dev-s3: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "  expected_kms_keys: [x]",
        "discovery.expected_kms_keys",
        "mapping",
    ),
    (
        "  interval: 2m\n",
        "  interval: 2m\n  poll: { initial: 1m, max: 30s }\n",
        "defaults.poll",
        "greater than poll.max",
    ),
];

#[test]
fn every_discovery_field_is_checked_with_its_path() {
    for (from, to, path, needle) in DISCOVERY_ERRORS {
        assert!(DISCOVERY.contains(from), "{from}");
        let yaml = DISCOVERY.replacen(from, to, 1);
        let errs = errors(&yaml);
        let hit = errs
            .iter()
            .find(|e| e.path == *path)
            .unwrap_or_else(|| panic!("no error at {path} for `{to}`: {errs:?}"));
        assert!(
            hit.message.contains(needle),
            "{path}: `{}` lacks `{needle}`",
            hit.message
        );
    }
}

#[test]
fn a_broken_discovery_does_not_hide_replication_errors() {
    let both = format!(
        "{}{}",
        GOOD.replace("bucket: test-dev-s3", "bucket: Bad_Bucket"),
        DISCOVERY
            .replace("defaults:\n  interval: 2m\n", "")
            .replace("regions: [ap-northeast-1, us-east-1]", "regions: []")
    );
    let paths: Vec<String> = errors(&both).into_iter().map(|e| e.path).collect();
    assert!(
        paths.contains(&"replications[0].source.bucket".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"discovery.regions".to_owned()), "{paths:?}");
}

#[test]
fn canaries_can_be_placed_where_a_rule_selects_them() {
    let c = Config::parse(GOOD).expect("valid");
    let r = &c.replications[0];
    assert_eq!(r.rule_prefix, "");
    assert!(r.canary_tags.is_empty());
    assert!(!r.source_fans_out, "one destination");
    let yaml = GOOD.replace(
        "    interval: 1m\n",
        "    interval: 1m\n    rule_prefix: logs/\n    canary_tags: {replicate: \"yes\", team: storage}\n    source_fans_out: true\n",
    );
    let c = Config::parse(&yaml).expect("valid");
    let r = &c.replications[0];
    assert_eq!(r.key_prefix(), "logs/replicanary/audit-logs/");
    assert_eq!(
        r.canary_tags,
        [
            ("replicate".to_owned(), "yes".to_owned()),
            ("team".to_owned(), "storage".to_owned())
        ]
    );
    assert!(r.source_fans_out);
}

#[test]
fn several_destinations_mean_the_source_fans_out() {
    let second = "      - bucket: audit-dr-s3\n        region: us-west-2\n        expected_kms_key_arn: arn:aws:kms:us-west-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab\n";
    let yaml = format!("{GOOD}{second}");
    assert!(Config::parse(&yaml).expect("valid").replications[0].source_fans_out);
}

#[test]
fn canary_placement_is_checked() {
    let with =
        |line: &str| GOOD.replace("    interval: 1m\n", &format!("    interval: 1m\n{line}\n"));
    let cases = [
        (
            "    rule_prefix: \"a\\u0007b/\"",
            "replications[0].rule_prefix",
            "control",
        ),
        (
            "    canary_tags: {class: 1}",
            "replications[0].canary_tags.class",
            "quote it",
        ),
        (
            "    canary_tags: {\"aws:x\": y}",
            "replications[0].canary_tags.aws:x",
            "reserved",
        ),
        (
            "    canary_tags: [a]",
            "replications[0].canary_tags",
            "invalid type",
        ),
    ];
    for (line, path, needle) in cases {
        assert_eq!(path_of(&with(line), needle), path, "{line}");
    }
    let eleven: Vec<String> = (0..11).map(|i| format!("k{i}: v")).collect();
    let many = with(&format!("    canary_tags: {{{}}}", eleven.join(", ")));
    assert_eq!(path_of(&many, "at most 10"), "replications[0].canary_tags");
    let long = with(&format!("    rule_prefix: {}/", "x".repeat(990)));
    assert_eq!(
        path_of(&long, "over S3's 1024"),
        "replications[0].rule_prefix"
    );
}

#[test]
fn scan_is_off_unless_set_and_merges_field_by_field() {
    let c = Config::parse(GOOD).expect("valid");
    assert_eq!(c.replications[0].settings.scan, None, "off unless set");
    let yaml = GOOD.replace(
        "cleanup: true",
        "cleanup: true\n  scan: { interval: 12h, rate: 20 }",
    );
    let yaml = yaml.replace(
        "    interval: 1m",
        "    interval: 1m\n    scan: { read: true }",
    );
    let c = Config::parse(&yaml).expect("valid");
    assert_eq!(
        c.replications[0].settings.scan,
        Some(crate::config::ScanSettings {
            interval: Duration::from_secs(12 * 3600),
            rate: 20,
            read: true,
        }),
        "the replication's read over the defaults' interval and rate"
    );
    assert_eq!(
        c.defaults.scan.as_ref().map(|s| s.read),
        Some(false),
        "the defaults keep their own"
    );
    let yaml = GOOD.replace("    interval: 1m", "    interval: 1m\n    scan: {}");
    let c = Config::parse(&yaml).expect("valid");
    assert_eq!(
        c.replications[0].settings.scan,
        Some(crate::config::ScanSettings::default()),
        "`scan: {{}}` turns it on with the defaults (24h, 5 requests/s, no read)"
    );
}

#[test]
fn scan_fields_are_checked_at_their_path() {
    let yaml = GOOD.replace("cleanup: true", "cleanup: true\n  scan: { rate: 0 }");
    assert_eq!(path_of(&yaml, "from 1 to 10000"), "defaults.scan.rate");
    let yaml = GOOD.replace(
        "    interval: 1m",
        "    interval: 1m\n    scan: { rate: fast }",
    );
    assert_eq!(
        path_of(&yaml, "from 1 to 10000"),
        "replications[0].scan.rate"
    );
    let yaml = GOOD.replace(
        "    interval: 1m",
        "    interval: 1m\n    scan: { interval: 0s }",
    );
    assert_eq!(
        path_of(&yaml, "greater than zero"),
        "replications[0].scan.interval"
    );
    let yaml = GOOD.replace(
        "    interval: 1m",
        "    interval: 1m\n    scan: { every: 1h }",
    );
    assert!(
        errors(&yaml).iter().any(|e| e.message.contains("every")),
        "unknown scan field named"
    );
}

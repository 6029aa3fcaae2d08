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
    let k = &c.replications[0].destinations[0].expected_kms_key;
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

/// Issue 6, campaign 5: arbitrary bytes and arbitrary YAML structures never panic the
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
                Ok(c) => prop_assert!(!c.replications.is_empty(), "{}", text),
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

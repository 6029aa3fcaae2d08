//! `readers:` and `discovery.readers`: accepted as written, every problem with its path.

use crate::config::{Config, FieldError};

fn with_readers(readers: &str) -> String {
    format!(
        r#"
replications:
  - name: audit-logs
    source: {{ bucket: test-dev-s3, region: ap-northeast-1 }}
    destinations:
      - bucket: audit-dev-s3
        region: ap-northeast-1
        role_arn: arn:aws:iam::222222222222:role/replicanary-destination
        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
        readers:
{readers}
"#
    )
}

fn discovery(readers: &str) -> String {
    format!(
        r#"
discovery:
  regions: [ap-northeast-1]
  source_accounts: ["111111111111"]
  source_role_arn: arn:aws:iam::{{account}}:role/replicanary-source-probe
  destination_role_arn: arn:aws:iam::{{account}}:role/replicanary-destination-probe
  bucket_tag: {{ key: replicanary, value: enabled }}
  readers:
{readers}
"#
    )
}

fn errors(yaml: &str) -> Vec<FieldError> {
    Config::parse(yaml).expect_err("configuration should be rejected")
}

fn paths(yaml: &str) -> Vec<String> {
    errors(yaml).into_iter().map(|e| e.path).collect()
}

#[test]
fn readers_are_read_as_written() {
    let c = Config::parse(&with_readers(
        "          - { name: restore, role_arn: 'arn:aws:iam::222222222222:role/dr-restore', external_id: xyz-123 }\n          - { name: analytics_2, role_arn: 'arn:aws:iam::444444444444:role/analytics' }",
    ))
    .expect("valid");
    let r = &c.replications[0].destinations[0].readers;
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].name, "restore");
    assert_eq!(r[0].role.arn, "arn:aws:iam::222222222222:role/dr-restore");
    assert_eq!(r[0].role.external_id.as_deref(), Some("xyz-123"));
    assert_eq!(r[1].name, "analytics_2");
    assert_eq!(r[1].role.external_id, None);
    assert!(c.warnings().is_empty());
}

#[test]
fn every_reader_field_is_checked_with_its_path() {
    let base = "replications[0].destinations[0].readers";
    let cases = [
        (
            "          - { role_arn: 'arn:aws:iam::222222222222:role/r' }",
            format!("{base}[0].name"),
        ),
        (
            "          - { name: Restore, role_arn: 'arn:aws:iam::222222222222:role/r' }",
            format!("{base}[0].name"),
        ),
        (
            "          - { name: a-name-that-is-longer-than-thirty-two, role_arn: 'arn:aws:iam::222222222222:role/r' }",
            format!("{base}[0].name"),
        ),
        (
            "          - { name: restore }",
            format!("{base}[0].role_arn"),
        ),
        (
            "          - { name: restore, role_arn: 'arn:aws:iam::222222222222:user/r' }",
            format!("{base}[0].role_arn"),
        ),
        (
            "          - { name: restore, role_arn: 'arn:aws:iam::222222222222:role/r', external_id: 'x' }",
            format!("{base}[0].external_id"),
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(paths(&with_readers(yaml)), [want], "{yaml}");
    }
    // Unknown keys are errors too.
    let e = errors(&with_readers(
        "          - { name: restore, role_arn: 'arn:aws:iam::222222222222:role/r', role: x }",
    ));
    assert!(e[0].path.contains("readers"), "{e:?}");
}

#[test]
fn a_duplicate_reader_name_is_rejected() {
    let e = errors(&with_readers(
        "          - { name: restore, role_arn: 'arn:aws:iam::222222222222:role/a' }\n          - { name: restore, role_arn: 'arn:aws:iam::222222222222:role/b' }",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "replications[0].destinations[0].readers[1].name");
    assert!(e[0].message.contains("duplicate"), "{}", e[0].message);
}

#[test]
fn a_reader_that_is_the_probe_role_is_a_warning() {
    let c = Config::parse(&with_readers(
        "          - { name: same, role_arn: 'arn:aws:iam::222222222222:role/replicanary-destination' }",
    ))
    .expect("valid: only a warning");
    let w = c.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].path,
        "replications[0].destinations[0].readers[0].role_arn"
    );
    assert!(w[0].message.contains("probe role"), "{}", w[0].message);
}

#[test]
fn discovery_readers_are_templates_with_the_destination_account() {
    let c = Config::parse(&discovery(
        "    - { name: restore, role_arn: 'arn:aws:iam::{account}:role/dr-restore', external_id: xyz-123 }",
    ))
    .expect("valid");
    let d = c.discovery.expect("discovery");
    let r = d.readers[0].reader("222222222222");
    assert_eq!(r.name, "restore");
    assert_eq!(r.role.arn, "arn:aws:iam::222222222222:role/dr-restore");
    assert_eq!(r.role.external_id.as_deref(), Some("xyz-123"));

    assert_eq!(
        paths(&discovery(
            "    - { name: restore, role_arn: 'arn:aws:iam::222222222222:role/dr' }"
        )),
        ["discovery.readers[0].role_arn"],
        "a template names the account as {{account}}"
    );
    let same = Config::parse(&discovery(
        "    - { name: same, role_arn: 'arn:aws:iam::{account}:role/replicanary-destination-probe' }",
    ))
    .expect("valid");
    assert_eq!(same.warnings()[0].path, "discovery.readers[0].role_arn");
}

//! `validate` with readers, without AWS: a bad reader is exit 2 with its field path; a reader
//! that is the destination's probe role itself is accepted with a warning on stderr.

mod support;

use support::tempdir::TempDir;

fn config(readers: &str) -> String {
    format!(
        "\
replications:
  - name: audit-logs
    source: {{bucket: test-dev-s3, region: ap-northeast-1}}
    destinations:
      - bucket: audit-dev-s3
        region: ap-northeast-1
        role_arn: arn:aws:iam::222222222222:role/replicanary-destination
        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
        readers:
{readers}"
    )
}

fn validate(dir: &TempDir, name: &str, text: &str) -> std::process::Output {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write config");
    support::binary()
        .args(["validate", "--config"])
        .arg(&p)
        .output()
        .expect("the binary runs")
}

#[test]
fn duplicate_reader_names_are_a_configuration_error_with_the_path() {
    let dir = TempDir::new("cli-readers");
    let out = validate(
        &dir,
        "dup.yaml",
        &config(
            "          - {name: restore, role_arn: 'arn:aws:iam::222222222222:role/a'}\n          - {name: restore, role_arn: 'arn:aws:iam::222222222222:role/b'}\n",
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("replications[0].destinations[0].readers[1].name")
            && stderr.contains("duplicate reader name `restore`"),
        "{stderr}"
    );
}

#[test]
fn a_reader_that_is_the_probe_role_is_accepted_with_a_warning() {
    let dir = TempDir::new("cli-readers");
    let out = validate(
        &dir,
        "same.yaml",
        &config(
            "          - {name: same, role_arn: 'arn:aws:iam::222222222222:role/replicanary-destination'}\n",
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: replications[0].destinations[0].readers[0].role_arn")
            && stderr.contains("proves nothing"),
        "{stderr}"
    );
}

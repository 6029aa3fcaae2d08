//! Diagnosis from fixtures: the seed's correct setup has no findings, and each
//! misconfiguration is named by its own finding.

use super::diagnose;
use super::setup::{DestinationSetup, SourceSetup, Unknown};
use crate::aws::{DefaultEncryption, ReplicationSetup, RuleSetup};
use crate::config::{Config, Replication};
use crate::model::{DestinationVerdict, Finding, Outcome, ReplicaFacts};

const DEST_KEY: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab";
const OTHER_DEST_KEY: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/2222bbbb-12ab-34cd-56ef-1234567890ab";
const SOURCE_KEY: &str =
    "arn:aws:kms:ap-northeast-1:111111111111:key/3333cccc-12ab-34cd-56ef-1234567890ab";
const ROLE: &str = "arn:aws:iam::111111111111:role/source-dev-role-replication";

fn replication() -> Replication {
    let yaml = format!(
        "replications:\n  - name: audit\n    source: {{bucket: test-dev-s3, region: ap-northeast-1}}\n    destinations:\n      - {{bucket: audit-dev-s3, region: ap-northeast-1, expected_kms_key_arn: {DEST_KEY}}}\n"
    );
    Config::parse(&yaml).expect("valid").replications.remove(0)
}

/// The seed article's rule.
fn rule() -> RuleSetup {
    RuleSetup {
        id: "test-dev-replication-rule".to_owned(),
        enabled: true,
        priority: 1,
        prefix: String::new(),
        tags: Vec::new(),
        destination_bucket: "arn:aws:s3:::audit-dev-s3".to_owned(),
        destination_account: Some("222222222222".to_owned()),
        selects_sse_kms: true,
        replica_kms_key_id: Some(DEST_KEY.to_owned()),
        time_control: false,
        owner_override: true,
    }
}

fn source_with(rules: Vec<RuleSetup>) -> SourceSetup {
    SourceSetup {
        replication: Ok(Some(ReplicationSetup {
            role: ROLE.to_owned(),
            rules,
        })),
        versioning: Ok(Some("Enabled".to_owned())),
        encryption: Ok(Some(DefaultEncryption {
            algorithm: "aws:kms".to_owned(),
            kms_key_id: Some(SOURCE_KEY.to_owned()),
        })),
    }
}

fn destination() -> DestinationSetup {
    let policy = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["s3:ReplicateDelete","s3:ReplicateObject"],
           "Resource":"arn:aws:s3:::audit-dev-s3/*","Condition":{{"ArnLike":{{"aws:PrincipalArn":"{ROLE}"}}}}}}]}}"#
    );
    DestinationSetup {
        versioning: Ok(Some("Enabled".to_owned())),
        encryption: Ok(Some(DefaultEncryption {
            algorithm: "aws:kms".to_owned(),
            kms_key_id: Some(DEST_KEY.to_owned()),
        })),
        policy: Ok(Some(policy)),
        ownership: Ok(Some("BucketOwnerEnforced".to_owned())),
        retention: Ok(None),
    }
}

fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

fn audit(source: &SourceSetup, dest: &DestinationSetup) -> Vec<&'static str> {
    let rep = replication();
    let findings = diagnose(&rep, &rep.destinations[0], source, dest, None);
    for f in &findings {
        assert!(!f.explanation.is_empty() && !f.fix.is_empty());
        assert!(
            !f.explanation.contains('\n') && !f.fix.contains('\n'),
            "one line each: {f:?}"
        );
    }
    ids(&findings)
}

#[test]
fn the_seed_articles_setup_has_no_findings() {
    assert_eq!(
        audit(&source_with(vec![rule()]), &destination()),
        Vec::<&str>::new()
    );
}

#[test]
fn the_wrong_replica_key_is_named() {
    let mut r = rule();
    r.replica_kms_key_id = Some(SOURCE_KEY.to_owned());
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        [
            "replica_kms_key_other_account",
            "replica_kms_key_not_expected"
        ]
    );
    let mut r = rule();
    r.replica_kms_key_id = Some(OTHER_DEST_KEY.to_owned());
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        ["replica_kms_key_not_expected"]
    );
    let mut r = rule();
    r.replica_kms_key_id = Some(DEST_KEY.replace("ap-northeast-1", "us-east-1"));
    assert!(audit(&source_with(vec![r]), &destination()).contains(&"replica_kms_key_other_region"));
    let mut r = rule();
    r.replica_kms_key_id = None;
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        ["replica_kms_key_missing"]
    );
}

#[test]
fn rules_that_do_not_select_canaries_are_named() {
    let mut r = rule();
    r.selects_sse_kms = false;
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        ["rule_skips_sse_kms"]
    );
    let mut r = rule();
    r.prefix = "logs/".to_owned();
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        ["rule_filter_excludes_canaries"]
    );
    let mut r = rule();
    r.tags = vec![("replicate".to_owned(), "yes".to_owned())];
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        ["rule_filter_excludes_canaries"]
    );
    let mut r = rule();
    r.enabled = false;
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        ["rule_disabled"]
    );
    let mut r = rule();
    r.destination_bucket = "arn:aws:s3:::somewhere-else".to_owned();
    assert_eq!(
        audit(&source_with(vec![r]), &destination()),
        ["rule_destination_mismatch"]
    );
    let no_config = SourceSetup {
        replication: Ok(None),
        ..source_with(vec![])
    };
    assert_eq!(
        audit(&no_config, &destination()),
        ["no_replication_configuration"]
    );
}

#[test]
fn a_higher_priority_rule_shadowing_the_right_one_is_named() {
    let mut wrong = rule();
    wrong.id = "catch-all".to_owned();
    wrong.priority = 10;
    wrong.selects_sse_kms = false;
    let found = audit(&source_with(vec![rule(), wrong]), &destination());
    assert_eq!(found, ["rule_shadowed", "rule_skips_sse_kms"]);
}

#[test]
fn bucket_settings_are_named() {
    let mut s = source_with(vec![rule()]);
    s.versioning = Ok(Some("Suspended".to_owned()));
    let mut d = destination();
    d.versioning = Ok(None);
    d.encryption = Ok(Some(DefaultEncryption {
        algorithm: "AES256".to_owned(),
        kms_key_id: None,
    }));
    assert_eq!(
        audit(&s, &d),
        [
            "source_not_versioned",
            "destination_not_versioned",
            "destination_default_key_not_expected"
        ]
    );
    let mut s = source_with(vec![rule()]);
    s.encryption = Ok(None);
    assert_eq!(audit(&s, &destination()), ["source_not_sse_kms"]);
}

#[test]
fn a_bucket_policy_without_the_replication_role_is_named() {
    let mut d = destination();
    d.policy = Ok(Some(r#"{"Statement":[]}"#.to_owned()));
    assert_eq!(
        audit(&source_with(vec![rule()]), &d),
        ["destination_policy_missing_replication_role"]
    );
    d.policy = Ok(None);
    assert_eq!(
        audit(&source_with(vec![rule()]), &d),
        ["destination_policy_missing_replication_role"]
    );
}

#[test]
fn reads_the_role_may_not_make_are_cannot_inspect() {
    let mut s = source_with(vec![rule()]);
    s.replication = Err(Unknown::Denied("GetBucketReplication"));
    let mut d = destination();
    d.policy = Err(Unknown::Denied("GetBucketPolicy"));
    d.versioning = Err(Unknown::Failed("GetBucketVersioning")); // transient: no finding
    assert_eq!(audit(&s, &d), ["cannot_inspect:GetBucketReplication"]);
    let mut d = destination();
    d.policy = Err(Unknown::Denied("GetBucketPolicy"));
    assert_eq!(
        audit(&source_with(vec![rule()]), &d),
        ["cannot_inspect:GetBucketPolicy"]
    );
}

/// Each refused setup read names its own `cannot_inspect:` finding with its own action; an
/// operation diagnosis does not read names nothing rather than another finding.
#[test]
fn a_refused_read_names_its_own_operation_only() {
    let mut d = destination();
    d.versioning = Err(Unknown::Denied("GetBucketVersioning"));
    let rep = replication();
    let found = diagnose(
        &rep,
        &rep.destinations[0],
        &source_with(vec![rule()]),
        &d,
        None,
    );
    assert_eq!(ids(&found), ["cannot_inspect:GetBucketVersioning"]);
    assert!(
        found[0].fix.starts_with("grant s3:GetBucketVersioning on"),
        "{found:?}"
    );
    let mut d = destination();
    d.policy = Err(Unknown::Denied("PutObject"));
    assert!(audit(&source_with(vec![rule()]), &d).is_empty());
}

/// Equal priorities: S3 does not say which rule applies; diagnosis names the later one.
#[test]
fn of_two_rules_of_equal_priority_the_later_is_judged() {
    let mut wrong = rule();
    wrong.id = "same-priority".to_owned();
    wrong.selects_sse_kms = false;
    assert_eq!(
        audit(&source_with(vec![rule(), wrong.clone()]), &destination()),
        ["rule_shadowed", "rule_skips_sse_kms"]
    );
    assert!(audit(&source_with(vec![wrong, rule()]), &destination()).is_empty());
}

fn verdict(outcome: Outcome, operation: &'static str, code: &str, key: &str) -> DestinationVerdict {
    let mut v = DestinationVerdict::new("audit", "audit-dev-s3", outcome)
        .with_replica(ReplicaFacts {
            kms_key: Some(key.to_owned()),
            ..ReplicaFacts::default()
        })
        .with_error(Some(crate::model::AwsError {
            code: Some(code.to_owned()),
            status: Some(403),
            ..crate::model::AwsError::new(operation, crate::model::ErrorClass::Other)
        }));
    v.expected_kms_key = DEST_KEY.to_owned();
    v
}

#[test]
fn the_verdicts_error_names_the_key_problem() {
    let rep = replication();
    let d = &rep.destinations[0];
    let healthy = source_with(vec![rule()]);
    let cases = [
        ("KMS.DisabledException", DEST_KEY, "kms_key_disabled"),
        (
            "KMS.KMSInvalidStateException",
            DEST_KEY,
            "kms_key_pending_deletion",
        ),
        ("KMS.NotFoundException", DEST_KEY, "kms_key_not_found"),
        // Under another key: nobody may decrypt it; under the expected key: the probe
        // role itself may not (replicanary's own access).
        ("AccessDenied", OTHER_DEST_KEY, "replica_kms_denied"),
        ("AccessDenied", DEST_KEY, "probe_role_kms_denied"),
    ];
    for (code, key, id) in cases {
        let v = verdict(Outcome::Undecryptable, "GetObject", code, key);
        assert_eq!(
            ids(&diagnose(&rep, d, &healthy, &destination(), Some(&v))),
            [id],
            "{code} {key}"
        );
    }
    // The seed's trap: the rule's key and the denial, both named.
    let mut r = rule();
    r.replica_kms_key_id = Some(SOURCE_KEY.to_owned());
    let v = verdict(
        Outcome::Undecryptable,
        "GetObject",
        "AccessDenied",
        SOURCE_KEY,
    );
    let found = ids(&diagnose(
        &rep,
        d,
        &source_with(vec![r]),
        &destination(),
        Some(&v),
    ));
    assert_eq!(
        found,
        [
            "replica_kms_key_other_account",
            "replica_kms_key_not_expected",
            "replica_kms_denied"
        ]
    );
    // A slow replication without RTC.
    let v = verdict(Outcome::ReplicationTimeout, "HeadObject", "", DEST_KEY);
    let found = ids(&diagnose(&rep, d, &healthy, &destination(), Some(&v)));
    assert_eq!(found, ["replication_time_control_disabled"]);
}

/// An `unreadable` verdict (HeadObject 403) after listing the key's versions.
fn refused(listed: Option<bool>) -> DestinationVerdict {
    let mut v = verdict(Outcome::Unreadable, "HeadObject", "AccessDenied", DEST_KEY);
    v.replica = ReplicaFacts {
        listed,
        readable: Some(false),
        ..ReplicaFacts::default()
    };
    v
}

fn source_owned_rule() -> RuleSetup {
    RuleSetup {
        owner_override: false,
        ..rule()
    }
}

fn with_ownership(ownership: Result<Option<&str>, Unknown>) -> DestinationSetup {
    DestinationSetup {
        ownership: ownership.map(|o| o.map(str::to_owned)),
        ..destination()
    }
}

#[test]
fn replicas_the_source_account_keeps_are_named_from_the_setup() {
    // No owner override, and an Object Ownership that lets the writer own objects.
    for ownership in [Some("ObjectWriter"), Some("BucketOwnerPreferred"), None] {
        assert_eq!(
            audit(
                &source_with(vec![source_owned_rule()]),
                &with_ownership(Ok(ownership))
            ),
            ["replica_owned_by_source_account"],
            "{ownership:?}"
        );
    }
    // The destination owns every object, or the rule overrides the owner: nothing.
    let enforced = with_ownership(Ok(Some("BucketOwnerEnforced")));
    assert!(audit(&source_with(vec![source_owned_rule()]), &enforced).is_empty());
    let writer = with_ownership(Ok(Some("ObjectWriter")));
    assert!(audit(&source_with(vec![rule()]), &writer).is_empty());
    // Unknown ownership matters only without an owner override.
    let denied = with_ownership(Err(Unknown::Denied("GetBucketOwnershipControls")));
    assert_eq!(
        audit(&source_with(vec![source_owned_rule()]), &denied),
        ["cannot_inspect:GetBucketOwnershipControls"]
    );
    assert!(audit(&source_with(vec![rule()]), &denied).is_empty());
}

#[test]
fn an_unreadable_replica_names_who_refuses() {
    let rep = replication();
    let d = &rep.destinations[0];
    let found = |source: &SourceSetup, dest: &DestinationSetup, v: &DestinationVerdict| {
        ids(&diagnose(&rep, d, source, dest, Some(v)))
    };
    let healthy = source_with(vec![rule()]);
    // Listed, destination-owned: the probe role's own permissions.
    assert_eq!(
        found(&healthy, &destination(), &refused(Some(true))),
        ["probe_role_cannot_read_replica"]
    );
    // Listed, and the setup makes replicas the source account's: that is the cause.
    let writer = with_ownership(Ok(Some("ObjectWriter")));
    let source_owned = source_with(vec![source_owned_rule()]);
    assert_eq!(
        found(&source_owned, &writer, &refused(Some(true))),
        ["replica_owned_by_source_account"]
    );
    // Whether it is there cannot be told: the listing was refused as well.
    assert_eq!(
        found(&healthy, &destination(), &refused(None)),
        ["probe_role_cannot_list_bucket"]
    );
    assert_eq!(
        found(&source_owned, &writer, &refused(None)),
        [
            "replica_owned_by_source_account",
            "probe_role_cannot_list_bucket"
        ]
    );
    // Ownership unknown: the role is not blamed.
    let unknown = with_ownership(Err(Unknown::Denied("GetBucketOwnershipControls")));
    assert_eq!(
        found(&source_owned, &unknown, &refused(Some(true))),
        ["cannot_inspect:GetBucketOwnershipControls"]
    );
}

#[test]
fn an_alias_in_the_rule_is_not_called_the_wrong_key() {
    let alias =
        |region: &str, account: &str| format!("arn:aws:kms:{region}:{account}:alias/replicas");
    let with_key = |key: String| {
        let mut r = rule();
        r.replica_kms_key_id = Some(key);
        source_with(vec![r])
    };
    // Which key the alias names cannot be told without KMS: no claim.
    assert!(
        audit(
            &with_key(alias("ap-northeast-1", "222222222222")),
            &destination()
        )
        .is_empty()
    );
    assert!(audit(&with_key("alias/replicas".to_owned()), &destination()).is_empty());
    // What the alias ARN itself says is still checked.
    assert_eq!(
        audit(
            &with_key(alias("ap-northeast-1", "111111111111")),
            &destination()
        ),
        ["replica_kms_key_other_account"]
    );
    assert_eq!(
        audit(
            &with_key(alias("us-east-1", "222222222222")),
            &destination()
        ),
        ["replica_kms_key_other_region"]
    );
    // An alias rule is not said to shadow a correct one.
    let mut aliased = rule();
    aliased.id = "aliased".to_owned();
    aliased.priority = 10;
    aliased.replica_kms_key_id = Some(alias("ap-northeast-1", "222222222222"));
    assert!(audit(&source_with(vec![rule(), aliased]), &destination()).is_empty());
}

#[test]
fn object_lock_retention_explains_the_canaries_cost() {
    use crate::aws::DefaultRetention;
    let locked = DestinationSetup {
        retention: Ok(Some(DefaultRetention {
            mode: "GOVERNANCE".to_owned(),
            days: Some(1),
            years: None,
        })),
        ..destination()
    };
    let healthy = source_with(vec![rule()]);
    assert_eq!(
        audit(&healthy, &locked),
        ["canaries_retained_by_object_lock"]
    );
    let rep = replication();
    let d = &rep.destinations[0];
    let found = diagnose(&rep, d, &healthy, &locked, None);
    // One day at one canary every 5 minutes.
    assert!(
        found[0].explanation.contains("about 1day")
            && found[0].explanation.contains("about 288 replicas"),
        "{}",
        found[0].explanation
    );
    // After an ok probe, from the replica's own retain-until date (no setup read).
    let mut ok = DestinationVerdict::new("audit", "audit-dev-s3", Outcome::Ok);
    assert!(super::from_replica(&rep, d, &ok).is_empty());
    ok.replica.retain_until = Some(ok.finished_at + std::time::Duration::from_secs(3_600));
    let found = super::from_replica(&rep, d, &ok);
    assert_eq!(ids(&found), ["canaries_retained_by_object_lock"]);
    assert!(
        found[0].explanation.contains("about 1h")
            && found[0].explanation.contains("about 12 replicas"),
        "{}",
        found[0].explanation
    );
    // A retention the role may not read is named by audit only.
    let denied = DestinationSetup {
        retention: Err(Unknown::Denied("GetObjectLockConfiguration")),
        ..destination()
    };
    assert_eq!(
        audit(&healthy, &denied),
        ["cannot_inspect:GetObjectLockConfiguration"]
    );
    let v = verdict(Outcome::ReplicationTimeout, "HeadObject", "", DEST_KEY);
    assert_eq!(
        ids(&diagnose(&rep, d, &healthy, &denied, Some(&v))),
        ["replication_time_control_disabled"]
    );
}

/// A discovered destination that names no key: said once, and no finding compares a key
/// with nothing.
#[test]
fn without_an_expected_key_keys_are_not_compared() {
    let mut rep = replication();
    rep.destinations[0].expected_kms_key = None;
    rep.destinations[0].role = Some(crate::config::Role {
        arn: "arn:aws:iam::222222222222:role/replicanary-destination-probe".to_owned(),
        external_id: None,
    });
    let mut r = rule();
    r.replica_kms_key_id = Some(OTHER_DEST_KEY.to_owned());
    let mut dest = destination();
    dest.encryption = Ok(Some(DefaultEncryption {
        algorithm: "AES256".to_owned(),
        kms_key_id: None,
    }));
    let findings = diagnose(
        &rep,
        &rep.destinations[0],
        &source_with(vec![r]),
        &dest,
        None,
    );
    assert_eq!(ids(&findings), ["expected_kms_key_unknown"]);
    assert!(findings[0].fix.contains("discovery.expected_kms_keys"));
    // The rule's account is still checked, against the destination role's account.
    let mut r = rule();
    r.destination_account = Some("999999999999".to_owned());
    let findings = diagnose(
        &rep,
        &rep.destinations[0],
        &source_with(vec![r]),
        &destination(),
        None,
    );
    assert!(
        ids(&findings).contains(&"rule_destination_mismatch"),
        "{findings:?}"
    );
}

#[test]
fn a_rule_with_a_tag_filter_selects_canaries_that_carry_its_tags() {
    let mut rep = replication();
    let mut r = rule();
    r.tags = vec![("replicate".to_owned(), "yes".to_owned())];
    let findings = diagnose(
        &rep,
        &rep.destinations[0],
        &source_with(vec![r.clone()]),
        &destination(),
        None,
    );
    assert_eq!(ids(&findings), ["rule_filter_excludes_canaries"]);
    assert!(
        findings[0].explanation.contains("replicate=yes"),
        "{findings:?}"
    );
    rep.canary_tags = vec![("replicate".to_owned(), "yes".to_owned())];
    let findings = diagnose(
        &rep,
        &rep.destinations[0],
        &source_with(vec![r]),
        &destination(),
        None,
    );
    assert!(ids(&findings).is_empty(), "{findings:?}");
}

//! Why a reader cannot read a replica: findings from its outcome and, for a KMS refusal,
//! from the destination key's policy (`kms:GetKeyPolicy`, read by the destination probe
//! role; optional).
//!
//! The key policy is read small, like the bucket policy in `policy.rs`: Allow statements
//! whose action covers `kms:Decrypt` and whose principal is the reader's role (directly,
//! or `*` with an `aws:PrincipalArn` condition naming it), or the reader's account (which
//! delegates the decision to the account's IAM policies).

use serde_json::Value;

use super::policy::{conditions_hold, glob, strings};
use crate::model::{AwsError, ErrorClass, Finding, FindingId, ReaderOutcome, ReaderVerdict};

/// What the key policy says about one role's `kms:Decrypt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyGrant {
    /// A statement names the role (or any principal).
    Role,
    /// Only the role's account is named: its IAM policies decide.
    Account,
    /// No statement allows the role (or a Deny names it).
    None,
}

/// Reads `policy` for `role_arn`'s `kms:Decrypt`; `None` if the document cannot be read.
pub fn decrypt_grant(policy: &str, role_arn: &str) -> Option<KeyGrant> {
    let doc: Value = serde_json::from_str(policy).ok()?;
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return None,
    };
    let account = role_arn.split(':').nth(4).unwrap_or_default();
    let root = format!("arn:aws:iam::{account}:root");
    let decrypts = |s: &Value| {
        strings(&s["Action"])
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), "kms:decrypt"))
    };
    let principals = |s: &Value| match &s["Principal"] {
        Value::String(p) => vec![p.clone()],
        Value::Object(m) => m.get("AWS").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    };
    let effect = |s: &Value, e: &str| s["Effect"].as_str() == Some(e);
    let mut grant = KeyGrant::None;
    for s in &statements {
        if !decrypts(s) || !conditions_hold(&s["Condition"], role_arn) {
            continue;
        }
        let p = principals(s);
        let names_role = p.iter().any(|c| c == "*" || c == role_arn);
        let names_account = p.iter().any(|c| *c == root || c == account);
        if effect(s, "Deny") && (names_role || names_account) {
            return Some(KeyGrant::None);
        }
        if effect(s, "Allow") {
            if names_role {
                grant = KeyGrant::Role;
            } else if names_account && grant == KeyGrant::None {
                grant = KeyGrant::Account;
            }
        }
    }
    Some(grant)
}

/// The findings behind one reader's outcome. `key_policy` is the GetKeyPolicy answer for
/// the replica's key (`None`: not read, as for every outcome but a KMS refusal).
pub fn reader_findings(
    r: &ReaderVerdict,
    key_arn: &str,
    key_policy: Option<&Result<String, AwsError>>,
) -> Vec<Finding> {
    let name = &r.reader;
    let arn = &r.role_arn;
    let finding = |id: FindingId, explanation: String, fix: String| Finding {
        id,
        explanation,
        fix,
    };
    match r.outcome {
        ReaderOutcome::CredentialsFailed => vec![finding(
            FindingId::ReaderCannotBeAssumed,
            format!(
                "replicanary could not assume the reader role {arn} (reader `{name}`), so it could not prove that this principal can read the replicas"
            ),
            format!(
                "the trust policy of {arn} must allow replicanary's base role sts:AssumeRole (with the external id, if configured): add deploy/iam/reader-trust-policy.json's statement to it"
            ),
        )],
        ReaderOutcome::Unreadable => vec![finding(
            FindingId::ReaderS3Denied,
            format!(
                "S3 refuses the reader `{name}` ({arn}) the replica: HeadObject and GetObject are both refused, so the refusal is S3's, not KMS's"
            ),
            format!(
                "allow {arn} s3:GetObject and s3:GetObjectVersion on the destination bucket's objects (its identity policy; across accounts, the bucket policy too), and check that the replica is owned by the destination account"
            ),
        )],
        ReaderOutcome::Undecryptable => match key_policy {
            Some(Ok(policy)) => match decrypt_grant(policy, arn) {
                Some(KeyGrant::None) => vec![finding(
                    FindingId::ReaderKmsNotGranted,
                    format!(
                        "the key policy of {key_arn} has no statement that allows the reader `{name}` ({arn}) kms:Decrypt: KMS refuses it the replicas' key, although S3 lets it see them"
                    ),
                    format!(
                        "add a statement to the key policy of {key_arn} allowing {arn} kms:Decrypt (and kms:DescribeKey), or a grant for it"
                    ),
                )],
                // The policy allows it (or leaves it to IAM): the cause is elsewhere
                // (identity policy, a grant's constraints, the key's state); the reason says so.
                _ => Vec::new(),
            },
            Some(Err(e)) if matches!(e.class, ErrorClass::AccessDenied | ErrorClass::Forbidden) => {
                vec![finding(
                    FindingId::CannotInspectGetKeyPolicy,
                    format!(
                        "the destination probe role may not call kms:GetKeyPolicy on {key_arn}, so whether its key policy allows the reader `{name}` kms:Decrypt was not checked"
                    ),
                    format!(
                        "allow the destination probe role kms:GetKeyPolicy on {key_arn} (deploy/iam/destination-probe-diagnosis-policy.json and the key policy), or ignore this"
                    ),
                )]
            }
            _ => Vec::new(),
        },
        ReaderOutcome::Ok | ReaderOutcome::Error | ReaderOutcome::Skipped => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: &str = "arn:aws:iam::222222222222:role/dr-restore";

    fn policy(principal: &str, action: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::222222222222:role/admin"}},"Action":"kms:*","Resource":"*"}},
              {{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":["{action}"],"Resource":"*"}}]}}"#
        )
    }

    #[test]
    fn a_statement_naming_the_role_grants_it() {
        assert_eq!(
            decrypt_grant(&policy(READER, "kms:Decrypt"), READER),
            Some(KeyGrant::Role)
        );
        assert_eq!(
            decrypt_grant(&policy(READER, "kms:*"), READER),
            Some(KeyGrant::Role)
        );
        assert_eq!(
            decrypt_grant(&policy("*", "kms:Decrypt"), READER),
            Some(KeyGrant::Role)
        );
    }

    #[test]
    fn another_role_or_another_action_grants_nothing() {
        let other = "arn:aws:iam::222222222222:role/analytics";
        assert_eq!(
            decrypt_grant(&policy(other, "kms:Decrypt"), READER),
            Some(KeyGrant::None)
        );
        assert_eq!(
            decrypt_grant(&policy(READER, "kms:Encrypt"), READER),
            Some(KeyGrant::None)
        );
        assert_eq!(decrypt_grant("not json", READER), None);
    }

    #[test]
    fn the_account_root_delegates_to_iam() {
        let root = "arn:aws:iam::222222222222:root";
        assert_eq!(
            decrypt_grant(&policy(root, "kms:Decrypt"), READER),
            Some(KeyGrant::Account)
        );
    }

    #[test]
    fn a_deny_naming_the_role_wins() {
        let doc = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{READER}"}},"Action":"kms:Decrypt","Resource":"*"}},
                 {{"Effect":"Deny","Principal":{{"AWS":"{READER}"}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
        );
        assert_eq!(decrypt_grant(&doc, READER), Some(KeyGrant::None));
    }

    fn verdict(outcome: ReaderOutcome) -> ReaderVerdict {
        ReaderVerdict::new("restore", READER, outcome)
    }

    fn ids(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn each_failing_outcome_names_its_cause() {
        let key = "arn:aws:kms:ap-northeast-1:222222222222:key/k";
        let other = policy("arn:aws:iam::222222222222:role/analytics", "kms:Decrypt");
        let got = reader_findings(
            &verdict(ReaderOutcome::Undecryptable),
            key,
            Some(&Ok(other)),
        );
        assert_eq!(ids(&got), ["reader_kms_not_granted"]);
        assert!(got[0].explanation.contains(READER) && got[0].fix.contains(key));

        let granted = policy(READER, "kms:Decrypt");
        let got = reader_findings(
            &verdict(ReaderOutcome::Undecryptable),
            key,
            Some(&Ok(granted)),
        );
        assert!(got.is_empty(), "granted by the key policy: not this cause");

        let refused = Err(AwsError::new("GetKeyPolicy", ErrorClass::AccessDenied));
        let got = reader_findings(&verdict(ReaderOutcome::Undecryptable), key, Some(&refused));
        assert_eq!(ids(&got), ["cannot_inspect:GetKeyPolicy"]);

        let got = reader_findings(&verdict(ReaderOutcome::Unreadable), key, None);
        assert_eq!(ids(&got), ["reader_s3_denied"]);

        let got = reader_findings(&verdict(ReaderOutcome::CredentialsFailed), key, None);
        assert_eq!(ids(&got), ["reader_cannot_be_assumed"]);
        assert!(got[0].fix.contains("trust policy") && got[0].fix.contains("base role"));

        for fine in [
            ReaderOutcome::Ok,
            ReaderOutcome::Skipped,
            ReaderOutcome::Error,
        ] {
            assert!(reader_findings(&verdict(fine), key, None).is_empty());
        }
    }
}

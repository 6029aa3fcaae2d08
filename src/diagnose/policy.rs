//! Does a destination bucket policy let the source's replication role replicate into it?
//!
//! A deliberately small reading of IAM policy JSON: Allow statements whose action covers
//! `s3:ReplicateObject`, whose resource covers the bucket's objects, and whose principal
//! (directly, by account, or `*` with an `aws:PrincipalArn` condition, as the seed article
//! writes it) is the role. Conditions on other keys are assumed to hold.

use serde_json::Value;

/// `Some(true)` if some statement grants it, `Some(false)` if none does (or a Deny
/// matches), `None` if the policy cannot be read.
pub fn grants_replication(policy: &str, role_arn: &str, bucket: &str) -> Option<bool> {
    let doc: Value = serde_json::from_str(policy).ok()?;
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return None,
    };
    let object = format!("arn:aws:s3:::{bucket}/replicanary-probe");
    let account = role_arn.split(':').nth(4).unwrap_or_default();
    let applies = |s: &Value| {
        strings(&s["Action"])
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), "s3:replicateobject"))
            && strings(&s["Resource"]).iter().any(|r| glob(r, &object))
            && principal_matches(&s["Principal"], role_arn, account)
            && conditions_hold(&s["Condition"], role_arn)
    };
    let effect = |s: &Value, e: &str| s["Effect"].as_str() == Some(e);
    if statements.iter().any(|s| effect(s, "Deny") && applies(s)) {
        return Some(false);
    }
    Some(statements.iter().any(|s| effect(s, "Allow") && applies(s)))
}

pub(super) fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn principal_matches(p: &Value, role_arn: &str, account: &str) -> bool {
    let candidates = match p {
        Value::String(s) => vec![s.clone()],
        Value::Object(m) => m.get("AWS").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    };
    candidates.iter().any(|c| {
        c == "*" || c == role_arn || c == account || *c == format!("arn:aws:iam::{account}:root")
    })
}

pub(super) fn conditions_hold(c: &Value, role_arn: &str) -> bool {
    let Value::Object(ops) = c else {
        return true;
    };
    ops.iter().all(|(op, keys)| {
        let Value::Object(keys) = keys else {
            return true;
        };
        keys.iter().all(|(key, values)| {
            if !key.eq_ignore_ascii_case("aws:PrincipalArn") {
                return true;
            }
            let values = strings(values);
            match op.as_str() {
                "ArnLike" | "StringLike" => values.iter().any(|v| glob(v, role_arn)),
                "ArnEquals" | "StringEquals" => values.iter().any(|v| v == role_arn),
                "ArnNotLike" | "StringNotLike" => !values.iter().any(|v| glob(v, role_arn)),
                "ArnNotEquals" | "StringNotEquals" => !values.iter().any(|v| v == role_arn),
                _ => true,
            }
        })
    })
}

/// IAM-style wildcard match: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::111111111111:role/source-dev-role-replication";

    /// The seed article's destination bucket policy.
    fn seed_policy(condition_arn: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Sid":"Set permissions for objects","Effect":"Allow","Principal":{{"AWS":"*"}},
                "Action":["s3:ReplicateDelete","s3:ReplicateObject"],"Resource":"arn:aws:s3:::audit-dev-s3/*",
                "Condition":{{"ArnLike":{{"aws:PrincipalArn":"{condition_arn}"}}}}}},
              {{"Sid":"Set permissions on bucket","Effect":"Allow","Principal":{{"AWS":"*"}},
                "Action":["s3:GetBucketVersioning","s3:List*","s3:PutBucketVersioning"],"Resource":"arn:aws:s3:::audit-dev-s3",
                "Condition":{{"ArnLike":{{"aws:PrincipalArn":"{condition_arn}"}}}}}}]}}"#
        )
    }

    #[test]
    fn the_seed_articles_policy_grants_the_role() {
        assert_eq!(
            grants_replication(&seed_policy(ROLE), ROLE, "audit-dev-s3"),
            Some(true)
        );
        let wildcard = "arn:aws:iam::111111111111:role/source-*";
        assert_eq!(
            grants_replication(&seed_policy(wildcard), ROLE, "audit-dev-s3"),
            Some(true)
        );
    }

    #[test]
    fn another_role_bucket_or_a_deny_does_not() {
        let other = "arn:aws:iam::111111111111:role/someone-else";
        assert_eq!(
            grants_replication(&seed_policy(other), ROLE, "audit-dev-s3"),
            Some(false)
        );
        assert_eq!(
            grants_replication(&seed_policy(ROLE), ROLE, "other-bucket"),
            Some(false)
        );
        let deny = r#"{"Statement":[
            {"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"s3:Replicate*","Resource":"arn:aws:s3:::b/*"}]}"#;
        assert_eq!(grants_replication(deny, ROLE, "b"), Some(false));
        assert_eq!(grants_replication("not json", ROLE, "b"), None);
    }

    #[test]
    fn account_principals_count() {
        let by_account = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},
            "Action":"s3:ReplicateObject","Resource":"arn:aws:s3:::b/*"}}"#;
        assert_eq!(grants_replication(by_account, ROLE, "b"), Some(true));
    }

    #[test]
    fn globs() {
        assert!(glob("s3:replicate*", "s3:replicateobject"));
        assert!(glob("*", "anything"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(!glob(
            "arn:aws:s3:::b/x*",
            "arn:aws:s3:::b/replicanary-probe"
        ));
    }
}

//! The field checks that need no context: partitions, regions, accounts, key ids, role
//! ARNs, bucket names, tag keys, names and prefixes, and S3's limits.

use super::super::raw::Scalar;

pub(super) fn is_partition(s: &str) -> bool {
    s == "aws"
        || (s.starts_with("aws-") && s[4..].chars().all(|c| c.is_ascii_lowercase() || c == '-'))
}

pub(crate) fn is_region(s: &str) -> bool {
    // e.g. us-east-1, ap-northeast-1, us-gov-west-1, cn-north-1, us-isob-east-1
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

pub(super) fn is_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

pub(super) fn is_key_id(s: &str) -> bool {
    // A UUID, or a multi-Region key id (mrk-<32 hex>).
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub(super) fn check_external_id(x: &str) -> Result<(), String> {
    let ok = (2..=1224).contains(&x.len())
        && x.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err("must be 2 to 1224 characters of letters, digits and +=,.@:/-_".to_owned())
    }
}

/// An account id as written in a list: a quoted string of 12 digits.
pub(super) fn check_account_item(item: &Scalar) -> Result<String, String> {
    match item {
        serde_json::Value::String(s) if is_account(s) => Ok(s.clone()),
        serde_json::Value::String(s) => Err(format!("`{s}` is not an AWS account id (12 digits)")),
        serde_json::Value::Number(n) => Err(format!(
            "write the account id as a quoted string (\"{n}\"): unquoted, YAML reads it as a number and drops leading zeros"
        )),
        other => Err(format!("expected an account id, found {other}")),
    }
}

/// An S3 tag key: 1 to 128 characters, not in the reserved `aws:` namespace.
pub(super) fn check_tag_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.chars().count() > 128 {
        return Err("must be 1 to 128 characters (an S3 tag key)".to_owned());
    }
    if k.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!(
            "`{k}`: the aws: prefix is reserved for AWS's own tags"
        ));
    }
    Ok(())
}

pub(super) fn check_role_arn(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && is_partition(parts[1])
        && parts[2] == "iam"
        && parts[3].is_empty()
        && is_account(parts[4])
        && parts[5].strip_prefix("role/").is_some_and(|name| {
            !name.is_empty()
                && !name.ends_with('/')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an IAM role ARN (expected arn:aws:iam::ACCOUNT:role/NAME)"
        ))
    }
}

/// `sse_kms_key_id` may name the key as S3's PutObject accepts it: key ARN, alias ARN,
/// `alias/NAME` or a bare key id.
pub(super) fn check_kms_key_reference(s: &str) -> Result<(), String> {
    if s.starts_with("arn:") {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && is_partition(parts[1])
            && parts[2] == "kms"
            && is_region(parts[3])
            && is_account(parts[4])
            && (parts[5].strip_prefix("key/").is_some_and(is_key_id)
                || parts[5]
                    .strip_prefix("alias/")
                    .is_some_and(|a| !a.is_empty()));
        if ok {
            return Ok(());
        }
    } else if s.strip_prefix("alias/").is_some_and(|a| !a.is_empty()) || is_key_id(s) {
        return Ok(());
    }
    Err(format!(
        "`{s}` is not a KMS key ARN, alias ARN, alias/NAME or key id"
    ))
}

/// S3's general-purpose bucket naming rules.
pub(crate) fn check_bucket(b: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{b}` is not a valid bucket name: {why}"));
    if !(3..=63).contains(&b.len()) {
        return bad("it must be 3 to 63 characters long");
    }
    if !b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return bad("only lowercase letters, digits, dots and hyphens are allowed");
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(b.chars().next()) || !first_last_ok(b.chars().last()) {
        return bad("it must begin and end with a letter or digit");
    }
    if b.contains("..") {
        return bad("it must not contain two adjacent dots");
    }
    if b.split('.').count() == 4 && b.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return bad("it must not look like an IP address");
    }
    if b.starts_with("xn--")
        || b.starts_with("sthree-")
        || b.ends_with("-s3alias")
        || b.ends_with("--ol-s3")
    {
        return bad("it uses a prefix or suffix reserved by S3");
    }
    Ok(())
}

/// Replication and destination names become label values and a key segment.
pub(super) fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > 128 {
        return Err("must be 1 to 128 characters".to_owned());
    }
    if !n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(format!(
            "`{n}` may contain only letters, digits, dots, hyphens and underscores"
        ));
    }
    Ok(())
}

/// S3's limit on an object key, in bytes of UTF-8.
pub(crate) const MAX_KEY_BYTES: usize = 1024;
/// S3's limit on the tags of one object.
pub(crate) const MAX_OBJECT_TAGS: usize = 10;
/// The length of a canary key after its prefix (`<stamp>-<nonce>`, canary.rs's
/// `NAME_LEN`; config imports nothing, a test in discovery checks they agree).
pub(crate) const CANARY_SUFFIX_LEN: usize = 33;

/// A rule's prefix filter: any key prefix S3 accepts (no control characters).
pub(super) fn check_rule_prefix(p: &str) -> Result<(), String> {
    if p.len() > MAX_KEY_BYTES || p.chars().any(|c| c.is_control()) {
        return Err(format!(
            "`{p}` is not a usable key prefix (no control characters, at most {MAX_KEY_BYTES} bytes)"
        ));
    }
    Ok(())
}

pub(super) fn check_prefix(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("must not be empty: canaries need a prefix of their own".to_owned());
    }
    if p.starts_with('/') || p.len() > 256 || p.chars().any(|c| c.is_control()) {
        return Err(format!(
            "`{p}` is not a usable key prefix (no leading slash, no control characters, at most 256 characters)"
        ));
    }
    Ok(())
}

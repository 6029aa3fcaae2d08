//! `KmsKeyArn`: a KMS key ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`), parsed once;
//! what a replica's key is compared with.

use std::fmt;

use super::{is_account, is_key_id, is_partition, is_region};

/// A KMS key ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`), as S3 reports replica keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKeyArn {
    arn: String,
}

impl KmsKeyArn {
    pub fn parse(s: &str) -> Result<KmsKeyArn, String> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let valid = parts.len() == 6
            && parts[0] == "arn"
            && is_partition(parts[1])
            && parts[2] == "kms"
            && is_region(parts[3])
            && is_account(parts[4])
            && parts[5].strip_prefix("key/").is_some_and(is_key_id);
        if valid {
            Ok(KmsKeyArn { arn: s.to_owned() })
        } else if parts.len() == 6 && parts[5].starts_with("alias/") {
            Err(
                "must be a key ARN, not an alias ARN: S3 reports the replica's key as \
                 arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"
                    .to_owned(),
            )
        } else {
            Err(format!(
                "`{s}` is not a KMS key ARN (expected arn:aws:kms:REGION:ACCOUNT:key/KEY-ID)"
            ))
        }
    }

    /// The account that owns the key.
    pub fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or_default()
    }

    /// The `KEY-ID` part of the ARN.
    pub fn key_id(&self) -> &str {
        self.arn.rsplit_once("key/").map_or("", |(_, id)| id)
    }

    /// Whether a key reported by S3 is this key. S3 reports a full ARN; some endpoints
    /// echo a bare key id, which is compared with this ARN's id part.
    pub fn matches(&self, reported: &str) -> bool {
        if reported.starts_with("arn:") {
            reported == self.arn
        } else {
            reported == self.key_id()
        }
    }
}

impl fmt::Display for KmsKeyArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

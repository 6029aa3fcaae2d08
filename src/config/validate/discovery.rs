//! `discovery:`: regions, source accounts, the role templates, the opt-in bucket tag and
//! the expected keys per bucket.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::super::raw::{RawBucketTag, RawDiscovery, Scalar};
use super::super::{BucketTag, Discovery, RoleTemplate};
use super::{
    KmsKeyArn, Validator, check_account_item, check_bucket, check_external_id, check_role_arn,
    check_tag_key, is_region,
};

impl Validator {
    /// `discovery:`; `None` when any of its fields is wrong (each error recorded).
    pub(super) fn discovery(&mut self, raw: RawDiscovery) -> Option<Discovery> {
        let before = self.errors.len();
        let interval = self
            .duration(raw.interval.as_ref(), "discovery.interval")
            .unwrap_or(Duration::from_secs(600));
        let regions = self.list("discovery.regions", raw.regions, |v, item, path| match item
            .as_str()
        {
            Some(r) if is_region(r) => Some(r.to_owned()),
            Some(r) => {
                v.error(
                    path,
                    format!("`{r}` is not an AWS region (like ap-northeast-1)"),
                );
                None
            }
            None => {
                v.error(path, format!("expected a region name, found {item}"));
                None
            }
        });
        let source_accounts = self.list(
            "discovery.source_accounts",
            raw.source_accounts,
            |v, item, path| check_account_item(item).map_err(|m| v.error(path, m)).ok(),
        );
        let source_role = self.role_template(raw.source_role_arn, "discovery.source_role_arn");
        let destination_role =
            self.role_template(raw.destination_role_arn, "discovery.destination_role_arn");
        if let Some(x) = &raw.external_id
            && let Err(m) = check_external_id(x)
        {
            self.error("discovery.external_id", m);
        }
        let bucket_tag = self.bucket_tag(raw.bucket_tag);
        let readers = self.reader_templates(raw.readers);
        let mut expected_kms_keys = BTreeMap::new();
        for (bucket, key) in raw.expected_kms_keys.unwrap_or_default() {
            let path = format!("discovery.expected_kms_keys.{bucket}");
            if let Err(m) = check_bucket(&bucket) {
                self.error(&path, m);
                continue;
            }
            let parsed = match key.as_str() {
                Some(k) => KmsKeyArn::parse(k),
                None => Err(format!("expected a KMS key ARN, found {key}")),
            };
            match parsed {
                Ok(k) => {
                    expected_kms_keys.insert(bucket, k);
                }
                Err(m) => self.error(&path, m),
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Discovery {
            interval,
            regions,
            source_accounts,
            source_role: source_role?,
            destination_role: destination_role?,
            external_id: raw.external_id,
            bucket_tag: bucket_tag?,
            expected_kms_keys,
            readers,
            coverage: raw.coverage.unwrap_or(true),
        })
    }

    /// A required, non-empty list without duplicates, each item checked by `item`.
    pub(super) fn list<T: PartialEq + fmt::Display>(
        &mut self,
        path: &str,
        raw: Option<Vec<Scalar>>,
        mut item: impl FnMut(&mut Self, &Scalar, &str) -> Option<T>,
    ) -> Vec<T> {
        let mut out: Vec<T> = Vec::new();
        match raw {
            None => self.error(path, "missing: list at least one"),
            Some(list) if list.is_empty() => self.error(path, "empty: list at least one"),
            Some(list) => {
                for (i, raw_item) in list.iter().enumerate() {
                    let ipath = format!("{path}[{i}]");
                    if let Some(v) = item(self, raw_item, &ipath) {
                        if out.contains(&v) {
                            self.error(&ipath, format!("`{v}` is listed twice"));
                        } else {
                            out.push(v);
                        }
                    }
                }
            }
        }
        out
    }

    pub(super) fn role_template(
        &mut self,
        raw: Option<String>,
        path: &str,
    ) -> Option<RoleTemplate> {
        let Some(template) = raw else {
            self.error(
                path,
                "missing: a role ARN with {account}, like arn:aws:iam::{account}:role/NAME",
            );
            return None;
        };
        let account_field = template.split(':').nth(4);
        if account_field != Some(RoleTemplate::PLACEHOLDER) {
            self.error(
                path,
                format!(
                    "`{template}` must name the account as {{account}}: arn:aws:iam::{{account}}:role/NAME"
                ),
            );
            return None;
        }
        let sample = template.replace(RoleTemplate::PLACEHOLDER, "123456789012");
        match check_role_arn(&sample) {
            Ok(()) => Some(RoleTemplate { template }),
            Err(_) => {
                self.error(
                    path,
                    format!(
                        "`{template}` is not an IAM role ARN template (expected arn:aws:iam::{{account}}:role/NAME)"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn bucket_tag(&mut self, raw: Option<RawBucketTag>) -> Option<BucketTag> {
        let Some(raw) = raw else {
            self.error(
                "discovery.bucket_tag",
                "missing: the opt-in tag, like { key: replicanary, value: enabled }",
            );
            return None;
        };
        let key = match raw.key {
            None => {
                self.error("discovery.bucket_tag.key", "missing");
                None
            }
            Some(k) => check_tag_key(&k)
                .map(|()| k)
                .map_err(|m| self.error("discovery.bucket_tag.key", m))
                .ok(),
        };
        let value = match raw.value {
            None => {
                self.error("discovery.bucket_tag.value", "missing");
                None
            }
            Some(v) if v.chars().count() > 256 => {
                self.error(
                    "discovery.bucket_tag.value",
                    "must be at most 256 characters (an S3 tag value)",
                );
                None
            }
            Some(v) => Some(v),
        };
        Some(BucketTag {
            key: key?,
            value: value?,
        })
    }
}

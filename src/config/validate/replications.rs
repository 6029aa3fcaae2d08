//! `replications:`: one replication — its name, settings over the defaults, source,
//! destinations (with their readers) and canary tags.

use std::collections::HashSet;

use super::super::raw::{RawDestination, RawProbeSettings, RawReplication, RawSource, Scalar};
use super::super::{Destination, ProbeSettings, Replication, Role, Source};
use super::checks::{CANARY_SUFFIX_LEN, MAX_KEY_BYTES, MAX_OBJECT_TAGS, check_rule_prefix};
use super::{
    KmsKeyArn, Validator, check_bucket, check_external_id, check_kms_key_reference, check_name,
    check_role_arn, check_tag_key, is_region,
};

impl Validator {
    pub(super) fn replication(
        &mut self,
        defaults: &ProbeSettings,
        raw: RawReplication,
        path: &str,
    ) -> Option<Replication> {
        let name = self.replication_name(raw.name, path);
        let overrides = RawProbeSettings {
            interval: raw.interval,
            replication_timeout: raw.replication_timeout,
            poll: raw.poll,
            canary_prefix: raw.canary_prefix,
            cleanup: raw.cleanup,
            sweep_min_age: raw.sweep_min_age,
            sweep_interval: raw.sweep_interval,
            scan: raw.scan,
        };
        let settings = self.settings(defaults, &overrides, path);
        self.check_settings(&settings, path);
        let rule_prefix = raw.rule_prefix.unwrap_or_default();
        if let Err(m) = check_rule_prefix(&rule_prefix) {
            self.error(&format!("{path}.rule_prefix"), m);
        }
        let canary_tags = self.canary_tags(raw.canary_tags, &format!("{path}.canary_tags"));
        let source = match raw.source {
            None => {
                self.error(&format!("{path}.source"), "missing");
                None
            }
            Some(s) => self.source(s, &format!("{path}.source")),
        };
        let destinations = self.destinations(raw.destinations, path);
        let name = name?;
        let key_bytes = rule_prefix.len() + settings.canary_prefix.len() + name.len() + 1;
        if key_bytes + CANARY_SUFFIX_LEN > MAX_KEY_BYTES {
            self.error(
                &format!("{path}.rule_prefix"),
                format!(
                    "canary keys would be {} bytes, over S3's {MAX_KEY_BYTES}: shorten rule_prefix, canary_prefix or name",
                    key_bytes + CANARY_SUFFIX_LEN
                ),
            );
        }
        Some(Replication {
            name,
            settings,
            source: source?,
            source_fans_out: raw.source_fans_out.unwrap_or(destinations.len() > 1),
            destinations,
            rule_prefix,
            canary_tags,
        })
    }

    /// A replication's `name`: present and well-formed.
    pub(super) fn replication_name(&mut self, raw: Option<String>, path: &str) -> Option<String> {
        let Some(n) = raw else {
            self.error(&format!("{path}.name"), "missing");
            return None;
        };
        match check_name(&n) {
            Ok(()) => Some(n),
            Err(m) => {
                self.error(&format!("{path}.name"), m);
                None
            }
        }
    }

    /// A replication's `destinations`: at least one, each valid, names distinct.
    pub(super) fn destinations(
        &mut self,
        raw: Option<Vec<RawDestination>>,
        path: &str,
    ) -> Vec<Destination> {
        let mut destinations = Vec::new();
        match raw {
            None => self.error(&format!("{path}.destinations"), "missing"),
            Some(list) if list.is_empty() => self.error(
                &format!("{path}.destinations"),
                "empty: list at least one destination",
            ),
            Some(list) => {
                let mut names = HashSet::new();
                for (i, d) in list.into_iter().enumerate() {
                    let dpath = format!("{path}.destinations[{i}]");
                    if let Some(dest) = self.destination(d, &dpath) {
                        if !names.insert(dest.name.clone()) {
                            self.error(
                                &dpath,
                                format!(
                                    "duplicate destination `{}`: give each destination a distinct `name`",
                                    dest.name
                                ),
                            );
                        }
                        destinations.push(dest);
                    }
                }
            }
        }
        destinations
    }

    /// `canary_tags`: at most 10 string tags with valid S3 tag keys and values.
    pub(super) fn canary_tags(
        &mut self,
        raw: Option<std::collections::BTreeMap<String, Scalar>>,
        path: &str,
    ) -> Vec<(String, String)> {
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_OBJECT_TAGS {
            self.error(
                path,
                format!(
                    "{} tags: an object carries at most {MAX_OBJECT_TAGS}",
                    raw.len()
                ),
            );
        }
        let mut tags = Vec::new();
        for (k, v) in raw {
            let tpath = format!("{path}.{k}");
            if let Err(m) = check_tag_key(&k) {
                self.error(&tpath, m);
                continue;
            }
            match v {
                serde_json::Value::String(v) if v.chars().count() <= 256 => tags.push((k, v)),
                serde_json::Value::String(_) => {
                    self.error(&tpath, "must be at most 256 characters (an S3 tag value)")
                }
                other => self.error(
                    &tpath,
                    format!("expected a string tag value, found {other}: quote it"),
                ),
            }
        }
        tags
    }

    pub(super) fn source(&mut self, raw: RawSource, path: &str) -> Option<Source> {
        let bucket = self.bucket(raw.bucket, path);
        let region = self.region(raw.region, path);
        let role = self.role(raw.role_arn, raw.external_id, path);
        if let Some(k) = &raw.sse_kms_key_id
            && let Err(m) = check_kms_key_reference(k)
        {
            self.error(&format!("{path}.sse_kms_key_id"), m);
        }
        Some(Source {
            bucket: bucket?,
            region: region?,
            role: role?,
            sse_kms_key_id: raw.sse_kms_key_id,
        })
    }

    pub(super) fn destination(&mut self, raw: RawDestination, path: &str) -> Option<Destination> {
        let bucket = self.bucket(raw.bucket, path);
        let region = self.region(raw.region, path);
        let role = self.role(raw.role_arn, raw.external_id, path);
        let readers = self.readers(raw.readers, path);
        let key_path = format!("{path}.expected_kms_key_arn");
        let expected_kms_key = match raw.expected_kms_key_arn {
            None => {
                self.error(
                    &key_path,
                    "missing: the KMS key ARN replicas must be encrypted with",
                );
                None
            }
            Some(k) => KmsKeyArn::parse(&k)
                .map_err(|m| self.error(&key_path, m))
                .ok(),
        };
        if let Some(n) = &raw.name
            && let Err(m) = check_name(n)
        {
            self.error(&format!("{path}.name"), m);
        }
        let bucket = bucket?;
        Some(Destination {
            name: raw.name.unwrap_or_else(|| bucket.clone()),
            bucket,
            region: region?,
            role: role?,
            expected_kms_key: Some(expected_kms_key?),
            readers,
        })
    }

    pub(super) fn bucket(&mut self, raw: Option<String>, path: &str) -> Option<String> {
        let path = format!("{path}.bucket");
        match raw {
            None => {
                self.error(&path, "missing");
                None
            }
            Some(b) => check_bucket(&b)
                .map(|()| b)
                .map_err(|m| self.error(&path, m))
                .ok(),
        }
    }

    pub(super) fn region(&mut self, raw: Option<String>, path: &str) -> Option<String> {
        let path = format!("{path}.region");
        match raw {
            None => {
                self.error(&path, "missing");
                None
            }
            Some(r) if is_region(&r) => Some(r),
            Some(r) => {
                self.error(
                    &path,
                    format!("`{r}` is not an AWS region (like ap-northeast-1)"),
                );
                None
            }
        }
    }

    /// `Some(None)` when no role is configured, `None` when the role is invalid.
    pub(super) fn role(
        &mut self,
        arn: Option<String>,
        external_id: Option<String>,
        path: &str,
    ) -> Option<Option<Role>> {
        let mut ok = true;
        if let Some(a) = &arn
            && let Err(m) = check_role_arn(a)
        {
            self.error(&format!("{path}.role_arn"), m);
            ok = false;
        }
        if let Some(x) = &external_id {
            if arn.is_none() {
                self.error(&format!("{path}.external_id"), "given without `role_arn`");
                ok = false;
            } else if let Err(m) = check_external_id(x) {
                self.error(&format!("{path}.external_id"), m);
                ok = false;
            }
        }
        ok.then(|| arn.map(|arn| Role { arn, external_id }))
    }
}

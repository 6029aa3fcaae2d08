//! Raw YAML → validated [`Config`]: the one place where configuration is checked.
//!
//! Every problem is collected with its field path (`replications[1].source.bucket`) so a
//! user fixes a file in one round instead of one error per run.

mod readers;

pub(crate) use readers::warnings;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use super::raw::{
    RawBucketTag, RawConfig, RawDestination, RawDiscovery, RawPoll, RawProbeSettings,
    RawReplication, RawScan, RawSource, Scalar,
};
use super::{
    AwsSettings, BucketTag, Config, Destination, Discovery, FieldError, ProbeSettings, Replication,
    Role, RoleTemplate, ScanSettings, Source,
};

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

pub(super) fn parse(text: &str) -> Result<Config, Vec<FieldError>> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
        vec![FieldError {
            path: String::new(),
            message: format!("not valid YAML: {e}"),
        }]
    })?;
    if value.is_null() {
        return Err(vec![FieldError {
            path: String::new(),
            message: "the file is empty: it needs `replications:`, `discovery:` or both".to_owned(),
        }]);
    }
    if !value.is_object() {
        let found = match &value {
            serde_json::Value::Array(_) => "a list",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            _ => "a scalar",
        };
        return Err(vec![FieldError {
            path: String::new(),
            message: format!(
                "invalid type: the top level must be a mapping with `replications:` or `discovery:`, not {found}"
            ),
        }]);
    }
    let not_mappings = sections_not_mappings(&value);
    if !not_mappings.is_empty() {
        return Err(not_mappings);
    }
    let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        vec![FieldError {
            path,
            message: e.inner().to_string(),
        }]
    })?;
    let mut v = Validator::default();
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(v.errors)
    }
}

/// Serde's derived structs also accept a sequence of positional values; a configuration
/// must name its keys. Every section that is a struct must be a mapping (or absent/null).
fn sections_not_mappings(root: &serde_json::Value) -> Vec<FieldError> {
    use serde_json::Value;
    let mut errors = Vec::new();
    let mut check = |v: Option<&Value>, path: String| {
        if let Some(v) = v.filter(|v| !v.is_object() && !v.is_null()) {
            let found = if v.is_array() { "a list" } else { "a scalar" };
            errors.push(FieldError {
                path,
                message: format!("invalid type: expected a mapping of keys, found {found}"),
            });
        }
    };
    check(root.get("defaults"), "defaults".to_owned());
    check(
        root.get("defaults").and_then(|d| d.get("poll")),
        "defaults.poll".to_owned(),
    );
    check(root.get("aws"), "aws".to_owned());
    let discovery = root.get("discovery");
    check(discovery, "discovery".to_owned());
    for section in ["bucket_tag", "expected_kms_keys"] {
        check(
            discovery.and_then(|d| d.get(section)),
            format!("discovery.{section}"),
        );
    }
    if let Some(Value::Array(reps)) = root.get("replications") {
        for (i, r) in reps.iter().enumerate() {
            let path = format!("replications[{i}]");
            check(Some(r), path.clone());
            check(r.get("poll"), format!("{path}.poll"));
            check(r.get("source"), format!("{path}.source"));
            if let Some(Value::Array(dests)) = r.get("destinations") {
                for (j, d) in dests.iter().enumerate() {
                    check(Some(d), format!("{path}.destinations[{j}]"));
                }
            }
        }
    }
    errors
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let defaults = self.settings(
            &ProbeSettings::default(),
            &raw.defaults.unwrap_or_default(),
            "defaults",
        );
        let aws = self.aws(raw.aws.unwrap_or_default());
        let has_discovery = raw.discovery.is_some();
        if has_discovery {
            // Discovered replications take `defaults` as they are.
            self.check_settings(&defaults, "defaults");
        }
        let discovery = raw.discovery.and_then(|d| self.discovery(d));
        let mut replications = Vec::new();
        match raw.replications {
            None if has_discovery => {}
            None => self.error(
                "replications",
                "missing: list at least one replication, or configure `discovery:`",
            ),
            Some(list) if list.is_empty() && !has_discovery => self.error(
                "replications",
                "empty: list at least one replication, or configure `discovery:`",
            ),
            Some(list) => {
                let mut names = HashSet::new();
                for (i, r) in list.into_iter().enumerate() {
                    let path = format!("replications[{i}]");
                    if let Some(rep) = self.replication(&defaults, r, &path) {
                        if !names.insert(rep.name.clone()) {
                            self.error(
                                &format!("{path}.name"),
                                format!("duplicate replication name `{}`", rep.name),
                            );
                        }
                        replications.push(rep);
                    }
                }
            }
        }
        Config {
            aws,
            defaults,
            replications,
            discovery,
        }
    }

    /// `discovery:`; `None` when any of its fields is wrong (each error recorded).
    fn discovery(&mut self, raw: RawDiscovery) -> Option<Discovery> {
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
    fn list<T: PartialEq + fmt::Display>(
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

    fn role_template(&mut self, raw: Option<String>, path: &str) -> Option<RoleTemplate> {
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

    fn bucket_tag(&mut self, raw: Option<RawBucketTag>) -> Option<BucketTag> {
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

    fn aws(&mut self, raw: super::raw::RawAws) -> AwsSettings {
        if let Some(url) = &raw.endpoint_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url
                    .split_once("://")
                    .is_some_and(|(_, rest)| !rest.is_empty());
            if !ok {
                self.error(
                    "aws.endpoint_url",
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        let attempt_timeout = self
            .duration(raw.attempt_timeout.as_ref(), "aws.attempt_timeout")
            .unwrap_or(Duration::from_secs(10));
        let operation_timeout = self
            .duration(raw.operation_timeout.as_ref(), "aws.operation_timeout")
            .unwrap_or(Duration::from_secs(30));
        // Five attempts: under 30% injected 503s, three let 2 of 25 healthy probes end in
        // `error` on a GetObject that failed all three (docs/performance.md, "Retries
        // under noise").
        let max_attempts = raw.max_attempts.unwrap_or(5);
        if !(1..=10).contains(&max_attempts) {
            self.error("aws.max_attempts", "must be between 1 and 10");
        }
        AwsSettings {
            endpoint_url: raw.endpoint_url,
            force_path_style: raw.force_path_style.unwrap_or(false),
            attempt_timeout,
            operation_timeout,
            max_attempts,
        }
    }

    /// Applies `raw` over `base`, checking each field given.
    fn settings(
        &mut self,
        base: &ProbeSettings,
        raw: &RawProbeSettings,
        path: &str,
    ) -> ProbeSettings {
        let mut s = base.clone();
        let field = |name: &str| format!("{path}.{name}");
        if let Some(d) = self.duration(raw.interval.as_ref(), &field("interval")) {
            s.interval = d;
        }
        if let Some(d) = self.duration(
            raw.replication_timeout.as_ref(),
            &field("replication_timeout"),
        ) {
            s.replication_timeout = d;
        }
        if let Some(poll) = &raw.poll {
            self.poll(&mut s, poll, &field("poll"));
        }
        if let Some(prefix) = &raw.canary_prefix {
            match check_prefix(prefix) {
                Ok(()) => s.canary_prefix = prefix.clone(),
                Err(m) => self.error(&field("canary_prefix"), m),
            }
        }
        if let Some(c) = raw.cleanup {
            s.cleanup = c;
        }
        if let Some(d) = self.duration_or_zero(raw.sweep_min_age.as_ref(), &field("sweep_min_age"))
        {
            s.sweep_min_age = d;
        }
        if let Some(d) = self.duration(raw.sweep_interval.as_ref(), &field("sweep_interval")) {
            s.sweep_interval = d;
        }
        if let Some(scan) = &raw.scan {
            s.scan = self.scan(s.scan.as_ref(), scan, &field("scan"));
        }
        s
    }

    /// `scan:` over the inherited one (a replication's fields override the defaults'
    /// one by one); `None` when a field is wrong.
    fn scan(
        &mut self,
        base: Option<&ScanSettings>,
        raw: &RawScan,
        path: &str,
    ) -> Option<ScanSettings> {
        let mut s = base.cloned().unwrap_or_default();
        if let Some(d) = self.duration(raw.interval.as_ref(), &format!("{path}.interval")) {
            s.interval = d;
        }
        match &raw.rate {
            None => {}
            Some(serde_json::Value::Number(n))
                if n.as_u64().is_some_and(|r| (1..=10_000).contains(&r)) =>
            {
                s.rate = u32::try_from(n.as_u64().unwrap_or(1)).unwrap_or(1);
            }
            Some(other) => self.error(
                &format!("{path}.rate"),
                format!(
                    "must be a whole number of requests per second from 1 to 10000, found {other}"
                ),
            ),
        }
        if let Some(r) = raw.read {
            s.read = r;
        }
        Some(s)
    }

    fn poll(&mut self, s: &mut ProbeSettings, poll: &RawPoll, path: &str) {
        if let Some(d) = self.duration(poll.initial.as_ref(), &format!("{path}.initial")) {
            s.poll_initial = d;
        }
        if let Some(d) = self.duration(poll.max.as_ref(), &format!("{path}.max")) {
            s.poll_max = d;
        }
    }

    /// Checks the relations between settings once they are merged.
    fn check_settings(&mut self, s: &ProbeSettings, path: &str) {
        if s.poll_initial > s.poll_max {
            self.error(
                &format!("{path}.poll"),
                format!(
                    "poll.initial ({}) is greater than poll.max ({})",
                    humantime::format_duration(s.poll_initial),
                    humantime::format_duration(s.poll_max)
                ),
            );
        }
    }

    fn replication(
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
    fn replication_name(&mut self, raw: Option<String>, path: &str) -> Option<String> {
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
    fn destinations(&mut self, raw: Option<Vec<RawDestination>>, path: &str) -> Vec<Destination> {
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
    fn canary_tags(
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

    fn source(&mut self, raw: RawSource, path: &str) -> Option<Source> {
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

    fn destination(&mut self, raw: RawDestination, path: &str) -> Option<Destination> {
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

    fn bucket(&mut self, raw: Option<String>, path: &str) -> Option<String> {
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

    fn region(&mut self, raw: Option<String>, path: &str) -> Option<String> {
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
    fn role(
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

    fn duration(&mut self, raw: Option<&Scalar>, path: &str) -> Option<Duration> {
        let d = self.duration_or_zero(raw, path)?;
        if d.is_zero() {
            self.error(path, "must be greater than zero");
            return None;
        }
        Some(d)
    }

    fn duration_or_zero(&mut self, raw: Option<&Scalar>, path: &str) -> Option<Duration> {
        let raw = match raw? {
            serde_json::Value::String(s) => s.as_str(),
            serde_json::Value::Number(n) => {
                self.error(
                    path,
                    format!("`{n}` has no unit: write a duration like {n}s or {n}m"),
                );
                return None;
            }
            other => {
                self.error(
                    path,
                    format!("expected a duration like 500ms, 30s or 5m, found {other}"),
                );
                return None;
            }
        };
        match humantime::parse_duration(raw.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    path,
                    format!("`{raw}` is not a duration like 500ms, 30s or 5m ({e})"),
                );
                None
            }
        }
    }
}

fn is_partition(s: &str) -> bool {
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

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

fn is_key_id(s: &str) -> bool {
    // A UUID, or a multi-Region key id (mrk-<32 hex>).
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn check_external_id(x: &str) -> Result<(), String> {
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
fn check_account_item(item: &Scalar) -> Result<String, String> {
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
fn check_tag_key(k: &str) -> Result<(), String> {
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

fn check_role_arn(s: &str) -> Result<(), String> {
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
fn check_kms_key_reference(s: &str) -> Result<(), String> {
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
fn check_name(n: &str) -> Result<(), String> {
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
fn check_rule_prefix(p: &str) -> Result<(), String> {
    if p.len() > MAX_KEY_BYTES || p.chars().any(|c| c.is_control()) {
        return Err(format!(
            "`{p}` is not a usable key prefix (no control characters, at most {MAX_KEY_BYTES} bytes)"
        ));
    }
    Ok(())
}

fn check_prefix(p: &str) -> Result<(), String> {
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

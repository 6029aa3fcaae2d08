//! The configuration file exactly as written: every field optional, nothing checked
//! beyond its YAML shape. `validate.rs` turns this into the trusted [`super::Config`].

use serde::Deserialize;

/// A YAML scalar kept as written (durations), so that `5` gets a better message than
/// "invalid type".
pub type Scalar = serde_json::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `None` also when the section is present but empty (only comments).
    pub defaults: Option<RawProbeSettings>,
    pub aws: Option<RawAws>,
    pub replications: Option<Vec<RawReplication>>,
    pub discovery: Option<RawDiscovery>,
}

/// Probe settings: in `defaults`, and again (as overrides) in each replication.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbeSettings {
    pub interval: Option<Scalar>,
    pub replication_timeout: Option<Scalar>,
    pub poll: Option<RawPoll>,
    pub canary_prefix: Option<String>,
    pub cleanup: Option<bool>,
    pub sweep_min_age: Option<Scalar>,
    pub sweep_interval: Option<Scalar>,
    pub scan: Option<RawScan>,
}

/// `scan:` — the background scan of every real object (off unless given).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScan {
    pub interval: Option<Scalar>,
    pub rate: Option<Scalar>,
    pub read: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    pub initial: Option<Scalar>,
    pub max: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    pub endpoint_url: Option<String>,
    pub force_path_style: Option<bool>,
    pub attempt_timeout: Option<Scalar>,
    pub operation_timeout: Option<Scalar>,
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplication {
    pub name: Option<String>,
    pub interval: Option<Scalar>,
    pub replication_timeout: Option<Scalar>,
    pub poll: Option<RawPoll>,
    pub canary_prefix: Option<String>,
    pub cleanup: Option<bool>,
    pub sweep_min_age: Option<Scalar>,
    pub sweep_interval: Option<Scalar>,
    pub scan: Option<RawScan>,
    pub rule_prefix: Option<String>,
    /// Tag key → value, in key order.
    pub canary_tags: Option<std::collections::BTreeMap<String, Scalar>>,
    pub source_fans_out: Option<bool>,
    pub source: Option<RawSource>,
    pub destinations: Option<Vec<RawDestination>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub sse_kms_key_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub name: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub expected_kms_key_arn: Option<String>,
    pub readers: Option<Vec<RawReader>>,
}

/// One entry of a destination's `readers` (or of `discovery.readers`, with `{account}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReader {
    pub name: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
}

/// `discovery:`: which accounts and regions to read, and how to act in them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    pub interval: Option<Scalar>,
    pub regions: Option<Vec<Scalar>>,
    /// Scalars: an unquoted account id is a YAML number, which gets its own message.
    pub source_accounts: Option<Vec<Scalar>>,
    pub source_role_arn: Option<String>,
    pub destination_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub bucket_tag: Option<RawBucketTag>,
    /// Destination bucket → key ARN, in file order.
    pub expected_kms_keys: Option<std::collections::BTreeMap<String, Scalar>>,
    /// Reader role templates for every discovered destination.
    pub readers: Option<Vec<RawReader>>,
    /// Also read the rules of buckets that did not opt in (default true).
    pub coverage: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBucketTag {
    pub key: Option<String>,
    pub value: Option<String>,
}

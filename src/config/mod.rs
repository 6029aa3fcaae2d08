//! The configuration: read once from YAML, validated once, then trusted everywhere.
//!
//! `raw.rs` mirrors the file; `validate.rs` (one file per section under `validate/`) checks
//! every field and builds the types below. Nothing downstream re-checks a bucket name, an
//! ARN or a duration.

mod raw;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(test)]
pub(crate) use validate::CANARY_SUFFIX_LEN;
pub use validate::KmsKeyArn;
pub(crate) use validate::{MAX_KEY_BYTES, MAX_OBJECT_TAGS, check_bucket, is_region};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub aws: AwsSettings,
    /// `defaults` merged over the built-in settings: what discovered replications use.
    pub defaults: ProbeSettings,
    /// The replications written in the file (possibly none when `discovery` is set).
    pub replications: Vec<Replication>,
    pub discovery: Option<Discovery>,
}

/// `discovery:`: find the replications to probe in the accounts' own replication rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// How often the estate is read again.
    pub interval: Duration,
    pub regions: Vec<String>,
    /// Accounts whose buckets are listed (12 digits each, in file order, no duplicates).
    pub source_accounts: Vec<String>,
    pub source_role: RoleTemplate,
    pub destination_role: RoleTemplate,
    /// Passed with every AssumeRole of both templates.
    pub external_id: Option<String>,
    /// Only buckets carrying this tag (key and value) are probed.
    pub bucket_tag: BucketTag,
    /// Destination bucket → the key its replicas must be under, instead of the
    /// destination bucket's default SSE-KMS key.
    pub expected_kms_keys: BTreeMap<String, KmsKeyArn>,
    /// Also read the replication rules of buckets that did not opt in (one
    /// `GetBucketReplication` each per pass), to list and count the rules nobody monitors.
    pub coverage: bool,
    /// `discovery.readers`: readers of every discovered destination, `{account}` being the
    /// destination's account.
    pub readers: Vec<ReaderTemplate>,
}

/// A reader of `discovery.readers`: its role ARN names the account as `{account}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderTemplate {
    pub name: String,
    pub role: RoleTemplate,
    pub external_id: Option<String>,
}

impl ReaderTemplate {
    /// The reader in the destination account `account`.
    pub fn reader(&self, account: &str) -> Reader {
        Reader {
            name: self.name.clone(),
            role: self.role.role(account, self.external_id.as_deref()),
        }
    }
}

/// A principal that must be able to read a destination's replicas: each probe reads the
/// replica as this role (`readers:` of a destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The `reader` label: `[a-z0-9_-]{1,32}`, unique per destination.
    pub name: String,
    pub role: Role,
}

/// The opt-in tag of a source bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketTag {
    pub key: String,
    pub value: String,
}

/// An IAM role ARN with `{account}` where the account id goes, e.g.
/// `arn:aws:iam::{account}:role/replicanary-source-probe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTemplate {
    template: String,
}

impl RoleTemplate {
    /// The placeholder replaced by an account id.
    pub const PLACEHOLDER: &'static str = "{account}";

    /// The role ARN in `account` (a validated 12-digit id).
    pub fn arn(&self, account: &str) -> String {
        self.template.replace(Self::PLACEHOLDER, account)
    }

    /// The role in `account`, with the discovery's external id.
    pub fn role(&self, account: &str, external_id: Option<&str>) -> Role {
        Role {
            arn: self.arn(account),
            external_id: external_id.map(str::to_owned),
        }
    }
}

/// How replicanary talks to AWS (or to an emulator).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// Overrides `AWS_ENDPOINT_URL` and the SDK's endpoint resolution for every client.
    pub endpoint_url: Option<String>,
    pub force_path_style: bool,
    /// Timeout of a single HTTP attempt.
    pub attempt_timeout: Duration,
    /// Timeout of one operation, all retries included.
    pub operation_timeout: Duration,
    /// Attempts per operation (the SDK's standard retry strategy).
    pub max_attempts: u32,
}

/// One replication rule under test: a source bucket and its destinations. Equal
/// replications probe identically: a reload keeps the running one.
#[derive(Debug, Clone, PartialEq)]
pub struct Replication {
    pub name: String,
    pub settings: ProbeSettings,
    pub source: Source,
    pub destinations: Vec<Destination>,
    /// The replication rule's prefix filter: canaries go under
    /// `<rule_prefix><canary_prefix><name>/` so that the rule selects them. Empty by default.
    pub rule_prefix: String,
    /// Tags every canary carries, so that a rule with a tag filter selects it.
    pub canary_tags: Vec<(String, String)>,
    /// The source's replication status may also stand for destinations this replication
    /// does not inspect (several destinations, or other rules replicating the same
    /// canaries): a `FAILED` source is then checked against each destination's own replica.
    pub source_fans_out: bool,
}

/// How often and how patiently one replication is probed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSettings {
    pub interval: Duration,
    pub replication_timeout: Duration,
    pub poll_initial: Duration,
    pub poll_max: Duration,
    pub canary_prefix: String,
    pub cleanup: bool,
    /// The start-up sweep only deletes canaries older than this, so that it never races
    /// another replicanary instance whose probe is still in flight.
    pub sweep_min_age: Duration,
    /// Between two sweeps of a replication's buckets (the first at start-up); a sweep runs
    /// between two probes, so at most once per `interval`.
    pub sweep_interval: Duration,
    /// The background scan of every real object; `None`: off.
    pub scan: Option<ScanSettings>,
}

/// `scan:` — how often, how fast and how deep the daemon scans a replication's objects.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanSettings {
    /// From the start of one pass to the start of the next (a longer pass delays the next).
    pub interval: Duration,
    /// Requests per second of this replication's scan, at most.
    pub rate: u32,
    /// Also read the first byte of each replica.
    pub read: bool,
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            interval: Duration::from_secs(24 * 3600),
            rate: 5,
            read: false,
        }
    }
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            interval: Duration::from_secs(300),
            replication_timeout: Duration::from_secs(900),
            poll_initial: Duration::from_secs(1),
            poll_max: Duration::from_secs(30),
            canary_prefix: "replicanary/".to_owned(),
            cleanup: true,
            sweep_min_age: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(3600),
            scan: None,
        }
    }
}

/// An IAM role to assume for one side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub bucket: String,
    pub region: String,
    pub role: Option<Role>,
    pub sse_kms_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// The `destination` label: `name` if given, else the bucket.
    pub name: String,
    pub bucket: String,
    pub region: String,
    pub role: Option<Role>,
    /// The key replicas must be under. Always set for a configured replication; `None` only
    /// for a discovered one whose destination names no key (no override, no default
    /// SSE-KMS key): its replicas' key is then not judged (`expected_kms_key_unknown`).
    pub expected_kms_key: Option<KmsKeyArn>,
    /// The principals that must be able to read the replicas (none by default).
    pub readers: Vec<Reader>,
}

impl Destination {
    /// The destination's account: the expected key's, else the role's.
    pub fn account(&self) -> Option<&str> {
        self.expected_kms_key
            .as_ref()
            .map(KmsKeyArn::account)
            .or_else(|| self.role.as_ref().and_then(|r| r.arn.split(':').nth(4)))
    }
}

impl Replication {
    /// The key prefix under which this replication's canaries live:
    /// `<rule_prefix><canary_prefix><name>/`.
    pub fn key_prefix(&self) -> String {
        format!(
            "{}{}{}/",
            self.rule_prefix, self.settings.canary_prefix, self.name
        )
    }
}

/// One problem in the configuration, located by its field path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// For example `replications[1].destinations[0].expected_kms_key_arn`.
    pub path: String,
    pub message: String,
}

/// Why a configuration file was rejected; every problem found, not only the first.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.path.is_empty() {
                write!(f, "{file}: {}", e.message)?;
            } else {
                write!(f, "{file}: {}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse_file(path, &Config::read(path)?)
    }

    /// Reads a configuration file's text (following symlinks, as a mounted ConfigMap needs).
    pub fn read(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            errors: vec![FieldError {
                path: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })
    }

    /// Parses and validates the text read from `path` (named in the errors).
    pub fn parse_file(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse(text).map_err(|errors| ConfigError {
            file: path.to_owned(),
            errors,
        })
    }

    /// What is valid but probably not meant (a reader that is the probe role itself), each
    /// with its field path: to be shown, never to refuse the file.
    pub fn warnings(&self) -> Vec<FieldError> {
        validate::warnings(self)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, Vec<FieldError>> {
        validate::parse(text)
    }
}

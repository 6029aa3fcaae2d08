//! Raw YAML → validated [`Config`]: the one place where configuration is checked.
//!
//! Every problem is collected with its field path (`replications[1].source.bucket`) so a
//! user fixes a file in one round instead of one error per run.

mod checks;
mod discovery;
mod kms_key;
mod readers;
mod replications;
mod settings;

#[cfg(test)]
pub(crate) use checks::CANARY_SUFFIX_LEN;
pub(crate) use checks::{MAX_KEY_BYTES, MAX_OBJECT_TAGS, check_bucket, is_region};
pub use kms_key::KmsKeyArn;
pub(crate) use readers::warnings;

use std::collections::HashSet;

use checks::{
    check_account_item, check_external_id, check_kms_key_reference, check_name, check_prefix,
    check_role_arn, check_tag_key, is_account, is_key_id, is_partition,
};

use super::raw::RawConfig;
use super::{Config, FieldError, ProbeSettings};

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
}

//! The web configuration file (`--web.config.file`), in the format of the Prometheus
//! exporter-toolkit: `tls_server_config` (`cert_file`, `key_file`, optional
//! `client_auth_type`, `client_ca_file`, `min_version`) and `basic_auth_users` (user → bcrypt
//! hash). Parsed, then validated into a [`WebConfig`] that nothing downstream re-checks.
//!
//! Relative file names are taken relative to the web configuration file's directory, as
//! the exporter-toolkit does. Every problem is reported with its field path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::config::{ConfigError, FieldError};

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
}

/// The validated web configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// User → bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
}

/// Where the server's certificate and key are, and how clients are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub min_version: MinVersion,
}

/// `client_auth_type`, with the CA its verifying kinds need.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAuth {
    /// `NoClientCert` (the default).
    None,
    /// `VerifyClientCertIfGiven`: a certificate is optional, but checked when sent.
    VerifyIfGiven { ca_file: PathBuf },
    /// `RequireAndVerifyClientCert`.
    RequireAndVerify { ca_file: PathBuf },
}

/// `min_version`: `TLS12` (the default) or `TLS13`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

impl WebConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let fail = |errors| ConfigError {
            file: path.to_owned(),
            errors,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(vec![FieldError {
                path: String::new(),
                message: format!("cannot read the web configuration file: {e}"),
            }])
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        WebConfig::parse(&text, dir).map_err(fail)
    }

    /// Parses and validates the text; relative file names are joined to `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, Vec<FieldError>> {
        let one = |path: &str, message: String| {
            vec![FieldError {
                path: path.to_owned(),
                message,
            }]
        };
        let value: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| one("", format!("not valid YAML: {e}")))?;
        if value.is_null() {
            // An empty file is allowed, as in the exporter-toolkit: plain HTTP, no auth.
            return Ok(WebConfig::default());
        }
        for (path, v) in [
            ("", Some(&value)),
            ("tls_server_config", value.get("tls_server_config")),
            ("basic_auth_users", value.get("basic_auth_users")),
        ] {
            if v.is_some_and(|v| !v.is_object() && !v.is_null()) {
                return Err(one(path, "must be a mapping".to_owned()));
            }
        }
        let raw: RawWebConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut path = e.path().to_string();
            if path == "." {
                path.clear();
            }
            one(&path, e.inner().to_string())
        })?;
        let mut errors = Vec::new();
        let tls = raw.tls_server_config.and_then(|t| tls(t, dir, &mut errors));
        let users = raw.basic_auth_users.unwrap_or_default();
        for (user, hash) in &users {
            let path = format!("basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                errors.push(FieldError {
                    path: path.clone(),
                    message: "a user name must be non-empty and hold no `:` (HTTP basic auth cannot send it)".to_owned(),
                });
            }
            if bcrypt::HashParts::from_str(hash).is_err() {
                errors.push(FieldError {
                    path,
                    message: "not a bcrypt hash (like `$2y$10$…`; make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)".to_owned(),
                });
            }
        }
        if errors.is_empty() {
            Ok(WebConfig { tls, users })
        } else {
            Err(errors)
        }
    }

    /// The files this configuration reads besides itself (certificate, key, client CA).
    pub fn files(&self) -> Vec<PathBuf> {
        let Some(t) = &self.tls else {
            return Vec::new();
        };
        let mut files = vec![t.cert_file.clone(), t.key_file.clone()];
        match &t.client_auth {
            ClientAuth::None => {}
            ClientAuth::VerifyIfGiven { ca_file } | ClientAuth::RequireAndVerify { ca_file } => {
                files.push(ca_file.clone());
            }
        }
        files
    }
}

fn tls(raw: RawTls, dir: &Path, errors: &mut Vec<FieldError>) -> Option<TlsFiles> {
    let mut required = |value: Option<String>, field: &str| match value.filter(|v| !v.is_empty()) {
        Some(v) => Some(dir.join(v)),
        None => {
            errors.push(FieldError {
                path: format!("tls_server_config.{field}"),
                message: "required when tls_server_config is given".to_owned(),
            });
            None
        }
    };
    let cert_file = required(raw.cert_file, "cert_file");
    let key_file = required(raw.key_file, "key_file");
    let ca_file = raw
        .client_ca_file
        .filter(|v| !v.is_empty())
        .map(|v| dir.join(v));
    let kind = raw.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let client_auth = match (kind, ca_file) {
        ("NoClientCert", None) => Some(ClientAuth::None),
        ("NoClientCert", Some(_)) => {
            errors.push(FieldError {
                path: "tls_server_config.client_ca_file".to_owned(),
                message: "a client CA is given but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven".to_owned(),
            });
            None
        }
        ("VerifyClientCertIfGiven", Some(ca_file)) => Some(ClientAuth::VerifyIfGiven { ca_file }),
        ("RequireAndVerifyClientCert", Some(ca_file)) => {
            Some(ClientAuth::RequireAndVerify { ca_file })
        }
        ("VerifyClientCertIfGiven" | "RequireAndVerifyClientCert", None) => {
            errors.push(FieldError {
                path: "tls_server_config.client_ca_file".to_owned(),
                message: format!("required when client_auth_type is {kind}"),
            });
            None
        }
        ("RequestClientCert" | "RequireAnyClientCert", _) => {
            errors.push(FieldError {
                path: "tls_server_config.client_auth_type".to_owned(),
                message: format!("{kind} accepts client certificates nobody verifies: not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"),
            });
            None
        }
        (other, _) => {
            errors.push(FieldError {
                path: "tls_server_config.client_auth_type".to_owned(),
                message: format!("unknown value {other:?}: expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
            });
            None
        }
    };
    let min_version = match raw.min_version.as_deref() {
        None | Some("TLS12") => Some(MinVersion::Tls12),
        Some("TLS13") => Some(MinVersion::Tls13),
        Some(other) => {
            errors.push(FieldError {
                path: "tls_server_config.min_version".to_owned(),
                message: format!("unknown value {other:?}: expected TLS12 or TLS13 (older versions are not offered)"),
            });
            None
        }
    };
    Some(TlsFiles {
        cert_file: cert_file?,
        key_file: key_file?,
        client_auth: client_auth?,
        min_version: min_version?,
    })
}

//! Web security for every endpoint (the exporter-toolkit's `--web.config.file`): TLS and
//! HTTP basic authentication, in front of the router of `http.rs`.
//!
//! - `file.rs` — the file's format, validated with field paths;
//! - `tls.rs` — the rustls server configuration made from it;
//! - `auth.rs` — bcrypt checks of basic auth, with a cache of successful ones;
//! - `serve.rs` — the listener: plain HTTP, or TLS only.
//!
//! [`Live`] holds what is in force. A reload ([`Live::reload`]) reads the file and the
//! files it names again — a rotated certificate serves the connections accepted from then
//! on — and keeps what is in force when anything is wrong. Whether TLS is on is fixed at
//! start: a reload that would turn it on or off is refused.

mod auth;
mod file;
mod serve;
mod tls;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

pub use auth::Users;
pub use file::WebConfig;
pub use serve::serve;

use crate::config::{ConfigError, FieldError};

/// What is in force: the TLS acceptor (when TLS is on) and the users (when auth is on).
#[derive(Clone, Default)]
struct Active {
    /// SHA-256 of the file and of every file it names, as read.
    fingerprint: [u8; 32],
    config: WebConfig,
    acceptor: Option<TlsAcceptor>,
    users: Option<Arc<Users>>,
}

/// The web configuration in force, replaced on reload.
pub struct Live {
    /// `None`: no `--web.config.file` (plain HTTP, no auth).
    path: Option<PathBuf>,
    tls: bool,
    active: RwLock<Active>,
}

impl Live {
    /// Loads `path` (or nothing: plain HTTP without auth).
    pub fn load(path: Option<&Path>) -> Result<Live, ConfigError> {
        let active = match path {
            Some(p) => build(p, None)?,
            None => Active::default(),
        };
        Ok(Live {
            path: path.map(Path::to_owned),
            tls: active.acceptor.is_some(),
            active: RwLock::new(active),
        })
    }

    /// The web configuration file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether the listener speaks TLS (only).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// What is in force, in a few words (`validate`'s answer).
    pub fn summary(&self) -> String {
        let active = self.current();
        let tls = match &active.config.tls {
            None => "plain HTTP".to_owned(),
            Some(t) => match t.client_auth {
                file::ClientAuth::None => "TLS".to_owned(),
                file::ClientAuth::VerifyIfGiven { .. } => {
                    "TLS, client certificates verified when given".to_owned()
                }
                file::ClientAuth::RequireAndVerify { .. } => {
                    "TLS, client certificates required".to_owned()
                }
            },
        };
        match active.config.users.len() {
            0 => format!("{tls}, no authentication"),
            n => format!("{tls}, basic auth with {n} user(s)"),
        }
    }

    /// The files to watch for changes: the web configuration file and the certificate,
    /// key and CA files it names now.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let mut files = vec![path.clone()];
        files.extend(self.current().config.files());
        files
    }

    /// Reads the file (and the files it names) again and puts it in force; on an error,
    /// what is in force stays. Users whose hashes did not change keep their cache.
    /// `Ok(true)`: something changed (the file, a certificate, a key).
    pub fn reload(&self) -> Result<bool, ConfigError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let current = self.current();
        let next = build(path, current.users.clone())?;
        if next.acceptor.is_some() != self.tls {
            let message = if self.tls {
                "TLS is on since start-up and cannot be turned off by a reload: restart replicanary"
            } else {
                "TLS was off at start-up and cannot be turned on by a reload: restart replicanary"
            };
            return Err(ConfigError {
                file: path.clone(),
                errors: vec![FieldError {
                    path: "tls_server_config".to_owned(),
                    message: message.to_owned(),
                }],
            });
        }
        let changed = next.fingerprint != current.fingerprint;
        if let Ok(mut active) = self.active.write() {
            *active = next;
        }
        Ok(changed)
    }

    fn current(&self) -> Active {
        self.active.read().map(|a| a.clone()).unwrap_or_default()
    }

    fn acceptor(&self) -> Option<TlsAcceptor> {
        self.active.read().ok().and_then(|a| a.acceptor.clone())
    }

    fn users(&self) -> Option<Arc<Users>> {
        self.active.read().ok().and_then(|a| a.users.clone())
    }
}

/// Reads and builds the configuration at `path`; `users` are kept (with their cache)
/// when the file gives the same ones.
fn build(path: &Path, users: Option<Arc<Users>>) -> Result<Active, ConfigError> {
    let config = WebConfig::load(path)?;
    let acceptor = match &config.tls {
        Some(files) => Some(TlsAcceptor::from(Arc::new(
            tls::server_config(files).map_err(|errors| ConfigError {
                file: path.to_owned(),
                errors,
            })?,
        ))),
        None => None,
    };
    let mut hash = Sha256::new();
    for file in std::iter::once(path.to_owned()).chain(config.files()) {
        hash.update(std::fs::read(&file).unwrap_or_default());
        hash.update([0]);
    }
    let users = if config.users.is_empty() {
        None
    } else {
        match users {
            Some(u) if *u.hashes() == config.users => Some(u),
            _ => Some(Arc::new(Users::new(config.users.clone()))),
        }
    };
    Ok(Active {
        fingerprint: hash.finalize().into(),
        config,
        acceptor,
        users,
    })
}

/// Middleware: with `basic_auth_users`, every request needs one user's credentials;
/// otherwise 401 with `WWW-Authenticate`.
pub async fn require_auth(State(live): State<Arc<Live>>, req: Request, next: Next) -> Response {
    let Some(users) = live.users() else {
        return next.run(req).await;
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if users.allows(authorization).await {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Basic realm="replicanary""#)],
            "Unauthorized\n",
        )
            .into_response()
    }
}

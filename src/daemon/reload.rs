//! The reload loop: one task that owns the [`Fleet`] and applies every trigger in turn, so
//! two reloads never run at once.
//!
//! The desired replications are built from their sources and then reconciled:
//! `shard.select(merge(explicit, discovered))` — the file's `replications`, plus what
//! discovery found (an explicit replication wins over a discovered one for the same rule),
//! keeping only this shard's. A file reload replaces the explicit set; a discovery
//! ([`Trigger::Discovered`], [`Reloader::set_discovered`]) replaces the discovered set;
//! either reconciles the fleet against the merged whole.
//!
//! A reload that reads the content it read last time does nothing. An invalid file keeps
//! the running configuration: each error is logged as one event with its field path
//! (`path`, `message`), and `replicanary_config_last_reload_successful` turns 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::discover::{Settings as DiscoverySettings, SettingsTx};
use super::fleet::{Changes, Fleet, MakeProber};
use super::shard::Shard;
use super::triggers::{Cause, Fingerprint, Trigger, fingerprint};
use crate::config::{AwsSettings, Config, ConfigError, Replication};
pub use crate::discovery::merge;
use crate::emit::Sinks;
use crate::http::{ReloadAnswer, ReloadRequest};
use crate::web::Live;

/// The content last read and what it gave.
struct Seen {
    fingerprint: Fingerprint,
    /// Empty when it was applied; else its errors, one line each.
    errors: Vec<String>,
}

/// The configuration's sources and the fleet that runs what they desire.
pub struct Reloader<M: MakeProber> {
    path: PathBuf,
    seen: Seen,
    explicit: Vec<Replication>,
    discovered: Vec<Replication>,
    aws: AwsSettings,
    /// What discovery reads, as the running configuration says; `None`: no discovery.
    discovery: Option<DiscoverySettings>,
    /// The discovery loop's settings, when it runs ([`Reloader::watch_discovery`]).
    discovery_tx: Option<SettingsTx>,
    shard: Shard,
    /// The running replications (the tests read their names).
    pub(super) fleet: Fleet<M>,
    /// The metrics and the status board: each (re)load is recorded on both.
    sinks: Sinks,
    /// The web configuration (`--web.config.file`), read again on every reload.
    web: Option<Arc<Live>>,
    /// The last reload of the web configuration failed (the gauge stays 0 until one
    /// succeeds).
    web_failed: bool,
}

impl<M: MakeProber> Reloader<M> {
    /// Starts the fleet on the configuration loaded from `text` (the content of `path`).
    pub async fn start(
        path: PathBuf,
        text: &str,
        config: Config,
        shard: Shard,
        fleet: Fleet<M>,
        sinks: Sinks,
    ) -> Reloader<M> {
        let mut r = Reloader {
            path,
            seen: Seen {
                fingerprint: Some(fingerprint(text)),
                errors: Vec::new(),
            },
            discovery: DiscoverySettings::of(&config),
            discovery_tx: None,
            explicit: config.replications,
            discovered: Vec::new(),
            aws: config.aws,
            shard,
            fleet,
            sinks,
            web: None,
            web_failed: false,
        };
        r.apply().await;
        r.sinks.config_loaded(true, unix_now());
        r
    }

    /// The running fleet (for shutdown).
    pub fn into_fleet(self) -> Fleet<M> {
        self.fleet
    }

    /// How many replications run here.
    pub fn running(&self) -> usize {
        self.fleet.names().count()
    }

    /// From now on every reload also reads the web configuration again.
    pub fn reload_web_too(&mut self, web: Arc<Live>) {
        self.web = Some(web);
    }

    /// Reads the web configuration and the configuration file again. An error in either
    /// keeps what runs, turns `replicanary_config_last_reload_successful` to 0 and is in
    /// the answer.
    pub async fn reload_file(&mut self, cause: Cause) -> ReloadAnswer {
        let web = self.reload_web(cause);
        let answer = self.reload_config_file(cause).await;
        match web {
            Ok(()) => {
                if std::mem::take(&mut self.web_failed) && answer.is_ok() {
                    self.sinks.config_loaded(true, unix_now());
                }
                answer
            }
            Err(mut errors) => {
                self.web_failed = true;
                self.sinks.config_loaded(false, unix_now());
                if let Err(config_errors) = answer {
                    errors.extend_from_slice(config_errors.lines());
                }
                Err(errors.into())
            }
        }
    }

    /// Reads only the web configuration (and its certificate files) again: one of them
    /// changed. A failure turns `replicanary_config_last_reload_successful` to 0; the next
    /// success turns it back to 1 unless the configuration file's last reload failed.
    pub fn reload_web_file(&mut self) {
        match self.reload_web(Cause::WebFileChanged) {
            Ok(()) => {
                if std::mem::take(&mut self.web_failed) && self.seen.errors.is_empty() {
                    self.sinks.config_loaded(true, unix_now());
                }
            }
            Err(_) => {
                self.web_failed = true;
                self.sinks.config_loaded(false, unix_now());
            }
        }
    }

    /// Reads the web configuration (and its certificate files) again, if there is one.
    fn reload_web(&self, cause: Cause) -> Result<(), Vec<String>> {
        let Some(web) = &self.web else {
            return Ok(());
        };
        let file = web
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        match web.reload() {
            Ok(changed) => {
                if changed {
                    tracing::info!(
                        cause = cause.as_str(),
                        file = %file,
                        summary = %web.summary(),
                        "web configuration reloaded: new connections use it"
                    );
                }
                Ok(())
            }
            Err(e) => Err(log_refused(
                &e,
                cause,
                &file,
                "web configuration reload failed: the running web configuration stays",
            )),
        }
    }

    /// Reads the file again and reconciles; does nothing when its content did not change.
    async fn reload_config_file(&mut self, cause: Cause) -> ReloadAnswer {
        let file = self.path.display().to_string();
        let text = Config::read(&self.path);
        let now = text.as_ref().ok().map(|t| fingerprint(t));
        if now == self.seen.fingerprint {
            return self.unchanged(cause);
        }
        let config = match text.and_then(|t| Config::parse_file(&self.path, &t)) {
            Ok(c) => {
                for w in c.warnings() {
                    tracing::warn!(file = %file, path = %w.path, message = %w.message);
                }
                c
            }
            Err(e) => {
                let errors = log_refused(
                    &e,
                    cause,
                    &file,
                    "configuration reload failed: the running configuration stays",
                );
                self.sinks.config_loaded(false, unix_now());
                self.seen = Seen {
                    fingerprint: now,
                    errors: errors.clone(),
                };
                return Err(errors.into());
            }
        };
        self.discovery = DiscoverySettings::of(&config);
        self.explicit = config.replications;
        self.aws = config.aws;
        let changes = self.apply().await;
        self.sinks.config_loaded(true, unix_now());
        self.seen = Seen {
            fingerprint: now,
            errors: Vec::new(),
        };
        tracing::info!(
            cause = cause.as_str(),
            file = %file,
            started = changes.started,
            restarted = changes.restarted,
            stopped = changes.stopped,
            unchanged = changes.unchanged,
            "configuration reloaded"
        );
        Ok(format!("configuration reloaded: {changes}"))
    }

    /// Same content as last read: the answer it had, nothing done.
    fn unchanged(&self, cause: Cause) -> ReloadAnswer {
        if self.seen.errors.is_empty() {
            if cause != Cause::FileChanged {
                tracing::info!(
                    cause = cause.as_str(),
                    "configuration file unchanged: nothing to reload"
                );
            }
            Ok("configuration unchanged".to_owned())
        } else {
            if cause != Cause::FileChanged {
                tracing::warn!(
                    cause = cause.as_str(),
                    errors = self.seen.errors.len(),
                    "configuration file unchanged since the reload that failed: the running configuration stays"
                );
            }
            Err(self.seen.errors.clone().into())
        }
    }

    /// The settings the discovery loop runs with; from now on every successful reload
    /// hands it the running configuration's and asks for a pass.
    pub fn watch_discovery(&mut self) -> tokio::sync::watch::Receiver<Option<DiscoverySettings>> {
        let (tx, rx) = tokio::sync::watch::channel(self.discovery.clone());
        self.discovery_tx = Some(tx);
        rx
    }

    /// Asks the discovery loop for a pass with the running configuration's settings.
    fn nudge_discovery(&self) {
        if let Some(tx) = &self.discovery_tx {
            tx.send_replace(self.discovery.clone());
        }
    }

    /// Replaces the discovered replications and reconciles.
    pub async fn set_discovered(&mut self, found: Vec<Replication>) -> Changes {
        self.discovered = found;
        let changes = self.apply().await;
        tracing::info!(
            started = changes.started,
            restarted = changes.restarted,
            stopped = changes.stopped,
            unchanged = changes.unchanged,
            "discovered replications applied"
        );
        changes
    }

    /// Reconciles the fleet with this shard's share of the merged sources.
    async fn apply(&mut self) -> Changes {
        let desired = self.shard.select(merge(&self.explicit, &self.discovered));
        self.fleet.reconcile(desired, &self.aws).await
    }
}

/// Applies triggers and HTTP reload requests one at a time until `stop`; returns the
/// reloader (its fleet is still running, for shutdown).
pub async fn serve<M: MakeProber>(
    mut reloader: Reloader<M>,
    mut triggers: mpsc::Receiver<Trigger>,
    mut http: mpsc::Receiver<ReloadRequest>,
    stop: CancellationToken,
) -> Reloader<M> {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(t) = triggers.recv() => match t {
                // A renewed certificate: no need to read the configuration (nor to discover).
                Trigger::Reload(Cause::WebFileChanged) => reloader.reload_web_file(),
                Trigger::Reload(cause) => {
                    if reloader.reload_file(cause).await.is_ok() {
                        reloader.nudge_discovery();
                    }
                }
                Trigger::Discovered(found) => {
                    reloader.set_discovered(found).await;
                }
            },
            Some(request) = http.recv() => {
                let answer = reloader.reload_file(Cause::Http).await;
                if answer.is_ok() {
                    reloader.nudge_discovery();
                }
                let _ = request.reply.send(answer);
            }
        }
    }
    reloader
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Logs a refused file (each error with its field path, then one summary line) and
/// returns its errors as the lines a `POST /-/reload` answer carries.
fn log_refused(e: &ConfigError, cause: Cause, file: &str, summary: &'static str) -> Vec<String> {
    for err in &e.errors {
        tracing::error!(file = %file, path = %err.path, message = %err.message);
    }
    tracing::error!(
        cause = cause.as_str(),
        file = %file,
        errors = e.errors.len(),
        "{summary}"
    );
    e.to_string().lines().map(str::to_owned).collect()
}

//! What makes the daemon reload: `SIGHUP`, `POST /-/reload` (see `http.rs`), and the
//! configuration file's content changing.
//!
//! The file is polled — its content hashed (SHA-256) every `--config-poll-interval`, 5 s by
//! default — rather than watched with inotify: a Kubernetes ConfigMap volume updates by
//! swapping the `..data` symlink to a new timestamped directory, which an inotify watch on
//! the file itself never sees. Reading the path follows the symlinks, so the swap shows as
//! new content. A change is acted on once the same new content was read twice, a short
//! settle apart, so a file caught half-written by an editor is not loaded.
//!
//! Every trigger is a message to the one reload loop (`reload.rs`): reloads never overlap.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Replication};

/// Why a reload runs (the `cause` field of its log lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Signal,
    Http,
    FileChanged,
    /// The web configuration file, or a certificate, key or CA file it names, changed:
    /// only the web configuration is read again.
    WebFileChanged,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Signal => "sighup",
            Cause::Http => "http",
            Cause::FileChanged => "file_changed",
            Cause::WebFileChanged => "web_file_changed",
        }
    }
}

/// A message to the reload loop.
#[derive(Debug)]
pub enum Trigger {
    /// Read the configuration file again.
    Reload(Cause),
    /// The replications discovery found (they replace the previous discovery's); sent by
    /// the discovery loop (`discover.rs`) after each pass.
    Discovered(Vec<Replication>),
}

/// What the file held when it was read: a hash of its content, or `None` if unreadable.
pub type Fingerprint = Option<[u8; 32]>;

pub fn fingerprint(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

pub fn read_fingerprint(path: &std::path::Path) -> Fingerprint {
    Config::read(path).ok().map(|t| fingerprint(&t))
}

/// What one look at the file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// As last acted on.
    Same,
    /// New content, not yet seen twice in a row: look again after the settle time.
    Settling,
    /// New content, seen twice in a row: reload.
    Changed,
}

/// Decides from successive reads of the file when it changed.
#[derive(Debug, Clone)]
pub struct FileWatch {
    acted_on: Fingerprint,
    candidate: Option<Fingerprint>,
}

impl FileWatch {
    /// Starts from the content the daemon loaded.
    pub fn new(loaded: Fingerprint) -> FileWatch {
        FileWatch {
            acted_on: loaded,
            candidate: None,
        }
    }

    pub fn look(&mut self, now: Fingerprint) -> Look {
        if now == self.acted_on {
            self.candidate = None;
            Look::Same
        } else if self.candidate == Some(now) {
            self.acted_on = now;
            self.candidate = None;
            Look::Changed
        } else {
            self.candidate = Some(now);
            Look::Settling
        }
    }
}

/// How long new content must stay the same before it is loaded.
const SETTLE: Duration = Duration::from_millis(250);

/// Polls the file every `period` until `stop`; sends a reload (for `cause`) when its
/// content changed.
pub fn spawn_file_poll(
    path: PathBuf,
    period: Duration,
    loaded: Fingerprint,
    cause: Cause,
    triggers: mpsc::Sender<Trigger>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut watch = FileWatch::new(loaded);
        let mut wait = period;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
            wait = match watch.look(read_fingerprint(&path)) {
                Look::Same => period,
                Look::Settling => SETTLE.min(period),
                Look::Changed => {
                    tracing::debug!(file = %path.display(), "the configuration file changed");
                    if triggers.send(Trigger::Reload(cause)).await.is_err() {
                        return;
                    }
                    period
                }
            };
        }
    });
}

/// Sends a reload on every `SIGHUP` until `stop`. Installed before the daemon reports
/// ready, so that a `SIGHUP` never takes its default action (ending the process).
#[cfg(unix)]
pub fn listen_sighup(triggers: mpsc::Sender<Trigger>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reloading the configuration");
                    if triggers.send(Trigger::Reload(Cause::Signal)).await.is_err() {
                        return;
                    }
                }
                () = stop.cancelled() => return,
            }
        }
    });
}

#[cfg(not(unix))]
pub fn listen_sighup(_: mpsc::Sender<Trigger>, _: CancellationToken) {}

#[cfg(test)]
mod tests {
    use super::{FileWatch, Look, fingerprint};

    #[test]
    fn a_change_counts_once_it_reads_the_same_twice() {
        let (a, b, c) = (
            Some(fingerprint("a")),
            Some(fingerprint("b")),
            Some(fingerprint("c")),
        );
        let mut w = FileWatch::new(a);
        assert_eq!(w.look(a), Look::Same);
        // Half-written, then complete: only the complete content is acted on.
        assert_eq!(w.look(b), Look::Settling);
        assert_eq!(w.look(c), Look::Settling);
        assert_eq!(w.look(c), Look::Changed);
        assert_eq!(w.look(c), Look::Same);
        // Changed and changed back before it settled: nothing to do.
        assert_eq!(w.look(a), Look::Settling);
        assert_eq!(w.look(c), Look::Same);
        // A file that cannot be read is a change too (the reload then reports why).
        assert_eq!(w.look(None), Look::Settling);
        assert_eq!(w.look(None), Look::Changed);
        assert_eq!(w.look(c), Look::Settling);
        assert_eq!(w.look(c), Look::Changed);
    }

    #[test]
    fn the_fingerprint_is_of_the_content() {
        assert_eq!(fingerprint("x: 1\n"), fingerprint("x: 1\n"));
        assert_ne!(fingerprint("x: 1\n"), fingerprint("x: 2\n"));
    }
}

//! One replication's janitor: it takes over what each probe leaves behind and deletes it
//! under the deletion rule — the ledger's flushes around each probe (and the last one at
//! shutdown), the sweeps between probes, the watches of uncertain keys — and keeps
//! `replicanary_canaries_retained`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{
    Ledger, Retry, SWEEP_MAX_CALLS, Sweep, SweepLimits, SweepMemory, SweepReport, Uncertain,
    Written, sweep_bucket,
};
use crate::aws::{ObjectStore, Site, Stores};
use crate::config::Replication;
use crate::metrics::Metrics;
use crate::model::Side;

/// What one probe leaves for the janitor, in the order the probe met it: the versions it
/// wrote (with their Object Lock retain-until dates) and the keys whose versions are not
/// all known (a write that failed or timed out, a replica not yet seen).
#[derive(Debug, Default, PartialEq)]
pub struct Leftovers {
    pub written: Vec<WrittenVersion>,
    pub watches: Vec<Watch>,
}

/// A version the probe wrote (or whose replica it saw), to be deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenVersion {
    pub site: Site,
    pub key: String,
    pub version_id: String,
    /// Not deleted before then: the date its headers showed, if any.
    pub retain_until: Option<SystemTime>,
    /// Already counted in `replicanary_canaries_outstanding` (by the probe, as it wrote it).
    pub counted: bool,
}

/// A key to watch for versions nobody saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    /// The key on one store.
    Key {
        site: Site,
        key: String,
        written_at: Instant,
    },
    /// The key on every destination.
    Destinations { key: String, written_at: Instant },
}

impl Leftovers {
    /// The probe wrote (or saw the replica of) `version_id` of `key` at `site`; `counted`:
    /// it counted the version outstanding already.
    pub fn wrote(&mut self, site: Site, key: &str, version_id: &str, counted: bool) {
        self.written.push(WrittenVersion {
            site,
            key: key.to_owned(),
            version_id: version_id.to_owned(),
            retain_until: None,
            counted,
        });
    }

    /// The version written at `site` shows an Object Lock retain-until date.
    pub fn retained_until(&mut self, site: Site, until: SystemTime) {
        if let Some(w) = self.written.iter_mut().rev().find(|w| w.site == site) {
            w.retain_until = Some(until);
        }
    }

    /// Watch `key` at `site`: a version nobody saw may still show up there.
    pub fn watch(&mut self, site: Site, key: &str, written_at: Instant) {
        self.watches.push(Watch::Key {
            site,
            key: key.to_owned(),
            written_at,
        });
    }

    /// Watch `key` on every destination: a replica may still arrive.
    pub fn watch_destinations(&mut self, key: &str, written_at: Instant) {
        self.watches.push(Watch::Destinations {
            key: key.to_owned(),
            written_at,
        });
    }
}

/// Deletes one replication's canaries: its ledger and what its sweeps remember.
pub struct Janitor {
    ledger: Ledger,
    /// What the sweeps remember per bucket: the source's first, then each destination's.
    memories: Vec<SweepMemory>,
    metrics: Arc<Metrics>,
}

impl Janitor {
    pub fn new(rep: &Replication, metrics: Arc<Metrics>) -> Janitor {
        // A failing delete is tried again no sooner than one interval later.
        let ledger = Ledger::new(
            &rep.name,
            &rep.key_prefix(),
            Retry::every(rep.settings.interval),
            metrics.clone(),
        );
        let memories = (0..=rep.destinations.len())
            .map(|_| SweepMemory::default())
            .collect();
        Janitor {
            ledger,
            memories,
            metrics,
        }
    }

    /// Deletes what earlier probes left pending and is due (see [`Ledger`]).
    pub async fn flush<S: ObjectStore>(&mut self, stores: Stores<'_, S>) {
        if self.ledger.pending() > 0 {
            self.ledger.flush(stores.source, stores.destinations).await;
        }
        self.update_retained();
    }

    /// The last flush, at shutdown: every pending version whose retention allows is tried
    /// once more, backoff or not (bounded).
    pub async fn finish<S: ObjectStore>(&mut self, stores: Stores<'_, S>) {
        if self.ledger.pending() > 0 {
            self.ledger
                .flush_final(stores.source, stores.destinations)
                .await;
        }
        self.update_retained();
    }

    /// Takes over what a probe left (with `cleanup` on) and deletes what is due.
    pub async fn record<S: ObjectStore>(
        &mut self,
        rep: &Replication,
        stores: Stores<'_, S>,
        left: Leftovers,
    ) {
        if !rep.settings.cleanup {
            return;
        }
        for w in left.written {
            let bucket = match w.site {
                Site::Source => &rep.source.bucket,
                Site::Destination(i) => &rep.destinations[i].bucket,
            };
            let written = Written {
                site: w.site,
                bucket: bucket.clone(),
                key: w.key.clone(),
                version_id: w.version_id.clone(),
            };
            if w.counted {
                self.ledger.add_counted(written);
            } else {
                self.ledger.add(written);
            }
            // Object Lock keeps the version until then: not deleted before.
            if let Some(until) = w.retain_until {
                self.ledger
                    .note_retention(w.site, &w.key, &w.version_id, until);
            }
        }
        for watch in left.watches {
            match watch {
                Watch::Key {
                    site,
                    key,
                    written_at,
                } => self.watch_key(rep, &key, site, written_at),
                Watch::Destinations { key, written_at } => {
                    self.watch_destinations(rep, &key, written_at);
                }
            }
        }
        self.flush(stores).await;
    }

    /// Sweeps the source bucket and each destination bucket for leftover canaries, within
    /// the sweep's call budget and before `deadline` (the next probe). What the ledger
    /// tracks is left to it. `startup` only names the sweep in the log.
    pub async fn sweep<S: ObjectStore>(
        &mut self,
        rep: &Replication,
        stores: Stores<'_, S>,
        startup: bool,
        deadline: Option<Instant>,
    ) {
        let prefix = rep.key_prefix();
        let limits = SweepLimits {
            max_calls: SWEEP_MAX_CALLS,
            deadline,
        };
        let now = SystemTime::now();
        for (idx, site) in stores.sites().enumerate() {
            let (bucket, store) = match (site, stores.at(site)) {
                (Site::Source, Some(store)) => (&rep.source.bucket, store),
                (Site::Destination(i), Some(store)) => (&rep.destinations[i].bucket, store),
                (_, None) => continue,
            };
            let skip = self.ledger.tracked(site, bucket);
            let s = Sweep {
                bucket,
                key_prefix: &prefix,
                min_age: rep.settings.sweep_min_age,
                now,
                limits,
            };
            let report = sweep_bucket(store, &s, &mut self.memories[idx], &skip).await;
            log_sweep(&rep.name, site.side(), bucket, startup, report);
        }
        self.update_retained();
    }

    /// `replicanary_canaries_retained`: the ledger's retained versions and those the sweeps
    /// remember, per side.
    fn update_retained(&self) {
        let wall = SystemTime::now();
        for side in Side::ALL {
            let remembered: usize = match side {
                Side::Source => self.memories[..1].iter(),
                Side::Destination => self.memories[1..].iter(),
            }
            .map(|m| m.retained(wall))
            .sum();
            let count = self.ledger.retained(side, wall) + remembered;
            self.metrics
                .set_retained(self.ledger.replication(), side, count);
        }
    }

    /// Watches a canary key at `site` for versions nobody saw — a write that timed out but
    /// was stored, a replica still on its way — and deletes them when they show up, for as
    /// long as a replication may take (≤ 15 min).
    fn watch_key(&mut self, rep: &Replication, key: &str, site: Site, written_at: Instant) {
        let s = &rep.settings;
        let until = written_at + (s.replication_timeout + s.poll_max).min(Duration::from_secs(900));
        let bucket = match site {
            Site::Source => &rep.source.bucket,
            Site::Destination(i) => &rep.destinations[i].bucket,
        };
        self.ledger.add_uncertain(Uncertain {
            site,
            bucket: bucket.clone(),
            key: key.to_owned(),
            until,
        });
    }

    /// Watches the key on every destination.
    fn watch_destinations(&mut self, rep: &Replication, key: &str, written_at: Instant) {
        for i in 0..rep.destinations.len() {
            self.watch_key(rep, key, Site::Destination(i), written_at);
        }
    }
}

fn log_sweep(replication: &str, side: Side, bucket: &str, startup: bool, r: SweepReport) {
    if r.deleted == 0 && r.failed == 0 && !r.truncated {
        return;
    }
    let (listed, deleted, failed, retained, calls) =
        (r.listed, r.deleted, r.failed, r.retained, r.calls);
    let which = if startup { "start-up" } else { "periodic" };
    tracing::info!(
        replication,
        side = side.as_str(),
        bucket,
        listed,
        deleted,
        failed,
        retained,
        calls,
        truncated = r.truncated,
        "{which} sweep removed leftover canaries"
    );
}

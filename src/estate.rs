//! The wiring to AWS, written once: one pool of SDK clients ([`Clients`]) for the AWS
//! settings in force and the registry its calls are counted in. The probers, discovery's
//! readers and the scans of a process are all built over it, so a role that discovery
//! reads with and the probes of what it found share one client and one session.
//!
//! Every command builds one [`Estate`]: `check` and `audit` (discovery's pass and the
//! probes), `discover`, `scan`. The daemon keeps the one in force in a [`Current`], which
//! the fleet and the discovery loop both ask: a reload that changes `aws:` replaces it
//! for both.

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::aws::clients::Clients;
use crate::aws::s3::S3Store;
use crate::config::{AwsSettings, Discovery, Replication};
use crate::discovery::{Hints, Pass, Progress, SdkReaders, discover};
use crate::emit::Sinks;
use crate::metrics::Metrics;
use crate::model::Side;
use crate::probe::{Prober, ReaderStore};

/// One pool of SDK clients for one set of AWS settings, and the registry it counts in.
/// Cloning shares the pool.
#[derive(Clone)]
pub struct Estate {
    aws: AwsSettings,
    clients: Arc<Clients>,
    metrics: Arc<Metrics>,
}

impl Estate {
    /// Loads the base SDK configuration for `aws` (credential chain, endpoint, retries,
    /// timeouts); clients are built on first use.
    pub async fn new(aws: &AwsSettings, metrics: Arc<Metrics>) -> Estate {
        Estate {
            aws: aws.clone(),
            clients: Arc::new(Clients::new(aws, metrics.clone()).await),
            metrics,
        }
    }

    /// The pool itself.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The registry every call is counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A prober for one replication, with the (shared) clients of each side and of each
    /// reader.
    pub async fn prober(&self, rep: &Replication, sinks: &Sinks) -> Prober<S3Store> {
        let clients = &self.clients;
        let s = &rep.source;
        let source = clients
            .store(&rep.name, Side::Source, &s.region, s.role.as_ref())
            .await;
        let mut destinations = Vec::with_capacity(rep.destinations.len());
        for d in &rep.destinations {
            let store = clients
                .store(&rep.name, Side::Destination, &d.region, d.role.as_ref())
                .await;
            destinations.push(store);
        }
        let mut readers = Vec::with_capacity(rep.destinations.len());
        for d in &rep.destinations {
            let mut stores = Vec::with_capacity(d.readers.len());
            for r in &d.readers {
                let store = clients
                    .store(&rep.name, Side::Destination, &d.region, Some(&r.role))
                    .await;
                stores.push(ReaderStore {
                    reader: r.clone(),
                    store,
                });
            }
            readers.push(stores);
        }
        Prober::new(rep.clone(), source, destinations, sinks.clone())
            .with_attempt_timeout(self.aws.attempt_timeout)
            .with_readers(readers)
    }

    /// One discovery pass over the pool: each call counted as `discovery:<account>`.
    pub async fn discover(
        &self,
        d: &Discovery,
        canary_prefix: &str,
        hints: &Hints,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Pass {
        discover(
            &self.discovery_readers(d),
            d,
            canary_prefix,
            hints,
            progress,
        )
        .await
    }

    /// Discovery's readers: the roles of `d`'s templates, over this pool.
    fn discovery_readers<'a>(&'a self, d: &'a Discovery) -> SdkReaders<'a> {
        SdkReaders {
            clients: &self.clients,
            discovery: d,
        }
    }
}

/// The daemon's estate in force. The fleet and the discovery loop ask it for the estate of
/// the AWS settings they run with: the same pool while those settings stay, a new one
/// (then in force) when a reload changed them.
pub struct Current {
    metrics: Arc<Metrics>,
    estate: Mutex<Option<Estate>>,
}

impl Current {
    /// None built yet: the first [`Current::estate`] builds it.
    pub fn new(metrics: Arc<Metrics>) -> Current {
        Current {
            metrics,
            estate: Mutex::new(None),
        }
    }

    /// The registry every estate's calls are counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The estate for `aws`: the one in force when it has these settings, else a new one.
    pub async fn estate(&self, aws: &AwsSettings) -> Estate {
        let mut slot = self.estate.lock().await;
        if let Some(e) = slot.as_ref().filter(|e| e.aws == *aws) {
            return e.clone();
        }
        let built = Estate::new(aws, self.metrics.clone()).await;
        *slot = Some(built.clone());
        built
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::discovery::Readers;

    /// Discovery over account 111 and an explicit replication from 111 to 222 with the
    /// roles discovery's templates name for them: what discovery would find there.
    const ESTATE: &str = "\
aws: {endpoint_url: 'http://127.0.0.1:1'}
discovery:
  regions: [ap-northeast-1]
  source_accounts: ['111111111111']
  source_role_arn: arn:aws:iam::{account}:role/replicanary-source-probe
  destination_role_arn: arn:aws:iam::{account}:role/replicanary-destination-probe
  bucket_tag: {key: replicanary, value: enabled}
replications:
  - name: found
    source:
      bucket: src
      region: ap-northeast-1
      role_arn: arn:aws:iam::111111111111:role/replicanary-source-probe
    destinations:
      - bucket: dst
        region: ap-northeast-1
        role_arn: arn:aws:iam::222222222222:role/replicanary-destination-probe
        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
";

    #[tokio::test]
    async fn discovery_and_the_probes_share_one_client_per_role_and_region() {
        let config = Config::parse(ESTATE).expect("a valid estate");
        let Some(d) = &config.discovery else {
            panic!("discovery is configured")
        };
        let metrics = Arc::new(Metrics::new());
        let estate = Estate::new(&config.aws, metrics.clone()).await;
        // Building probers and readers makes no call: clients are built, not used.
        let sinks = Sinks::new(metrics, Arc::default());
        let _prober = estate.prober(&config.replications[0], &sinks).await;
        assert_eq!(
            estate.clients().len(),
            2,
            "the prober's two sides, in the pool"
        );
        let readers = estate.discovery_readers(d);
        readers.source("111111111111", "ap-northeast-1").await;
        readers.destination("222222222222", "ap-northeast-1").await;
        assert_eq!(
            estate.clients().len(),
            2,
            "discovery reads with the probes' clients"
        );
    }

    fn lab(endpoint: &str) -> AwsSettings {
        AwsSettings {
            endpoint_url: Some(endpoint.to_owned()),
            force_path_style: true,
            attempt_timeout: std::time::Duration::from_secs(1),
            operation_timeout: std::time::Duration::from_secs(2),
            max_attempts: 1,
        }
    }

    #[tokio::test]
    async fn one_pool_while_the_settings_stay_a_new_one_when_they_change() {
        let current = Current::new(Arc::new(Metrics::new()));
        let first = current.estate(&lab("http://127.0.0.1:1")).await;
        let again = current.estate(&lab("http://127.0.0.1:1")).await;
        assert!(Arc::ptr_eq(&first.clients, &again.clients));
        let changed = current.estate(&lab("http://127.0.0.1:2")).await;
        assert!(!Arc::ptr_eq(&first.clients, &changed.clients));
        assert_eq!(changed.aws, lab("http://127.0.0.1:2"));
        let after = current.estate(&lab("http://127.0.0.1:2")).await;
        assert!(Arc::ptr_eq(&changed.clients, &after.clients));
    }
}

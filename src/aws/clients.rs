//! AWS SDK clients, shared: one S3 client per (side, role, external id, region), whatever
//! the number of replications that use it.
//!
//! Base credentials come from the SDK's default chain (environment, profile, SSO, web
//! identity/IRSA, EKS Pod Identity, ECS, IMDS). A side with a `role_arn` gets an
//! `AssumeRoleProvider` on top; the SDK's identity cache caches its session and refreshes
//! it before expiry. Endpoint (`aws.endpoint_url` or `AWS_ENDPOINT_URL`), retries and
//! timeouts are the SDK's, configured once here for S3 and STS alike.
//!
//! Sharing matters at scale: each client with its own AssumeRole provider and identity
//! cache costs ~0.1 MiB, and a thousand replications of one account pair need only two.
//! An [`S3Store`] is a shared client plus the labels its calls are counted under. The
//! AssumeRole calls behind a shared provider are counted under the replication whose call
//! needed the credentials ([`acting_for`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use super::classify::{code_label, error_chain, from_sdk};
use super::s3::S3Store;
use crate::config::{AwsSettings, Role};
use crate::metrics::Metrics;
use crate::model::Side;

tokio::task_local! {
    /// The replication on whose behalf the current task calls AWS.
    static ACTING_FOR: Arc<str>;
}

/// Runs `work` on behalf of `replication`: AssumeRole calls it causes are counted there.
pub fn acting_for<F: Future>(
    replication: &str,
    work: F,
) -> impl Future<Output = F::Output> + use<F> {
    ACTING_FOR.scope(Arc::from(replication), work)
}

/// Loads the base SDK configuration shared by every client.
///
/// Retries: the SDK's standard strategy. Per request, at most `aws.max_attempts` attempts
/// with jittered exponential backoff (from 1 s, capped at 20 s) inside
/// `aws.operation_timeout`. Per process, the SDK's retry quota: one token bucket for all S3
/// clients (500 tokens; a retry takes 5, returned if it succeeds, lost if it fails; each
/// first-attempt success adds 1). Measured under 30% 503s it never ran dry; a request
/// running out of attempts did (docs/performance.md, "Retries under noise").
async fn base_config(settings: &AwsSettings) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3).min(settings.attempt_timeout))
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(shared_https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
        .timeout_config(timeouts);
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// One HTTPS client (connection pool, TLS roots) for every S3 and STS client.
///
/// Left to itself, each SDK client builds its own default client: at 1,000 replications
/// that is thousands of pools (~0.65 MiB each). This is the SDK's default client — hyper
/// 1.x, rustls with aws-lc, proxies from the environment — built once.
fn shared_https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// Which client a side needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    side: Side,
    role: Option<Role>,
    region: String,
}

/// Every SDK client of the process, built on first use and shared.
pub struct Clients {
    base: SdkConfig,
    force_path_style: bool,
    metrics: Arc<Metrics>,
    pool: Mutex<HashMap<ClientKey, SideClients>>,
}

/// The SDK clients of one (side, role, region), on one credentials provider: S3, and for a
/// destination KMS (`GetKeyPolicy` when diagnosing its readers).
#[derive(Clone)]
struct SideClients {
    s3: aws_sdk_s3::Client,
    kms: Option<aws_sdk_kms::Client>,
}

impl Clients {
    /// Loads the base configuration (credential chain, endpoint, retries, timeouts).
    pub async fn new(settings: &AwsSettings, metrics: Arc<Metrics>) -> Clients {
        Clients {
            base: base_config(settings).await,
            force_path_style: settings.force_path_style,
            metrics,
            pool: Mutex::new(HashMap::new()),
        }
    }

    /// The S3 access of one side of `replication`: its region, its role, its counting.
    pub async fn store(
        &self,
        replication: &str,
        side: Side,
        region: &str,
        role: Option<&Role>,
    ) -> S3Store {
        let key = ClientKey {
            side,
            role: role.cloned(),
            region: region.to_owned(),
        };
        let found = self.lock().get(&key).cloned();
        let client = match found {
            Some(c) => c,
            None => {
                let built = self.build(&key, replication).await;
                self.lock().entry(key).or_insert(built).clone()
            }
        };
        let store = S3Store::new(client.s3, self.metrics.clone(), replication, side);
        match client.kms {
            Some(kms) => store.with_kms(kms),
            None => store,
        }
    }

    /// How many distinct clients exist (for tests and sizing).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, SideClients>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn build(&self, key: &ClientKey, first_user: &str) -> SideClients {
        let region = Region::new(key.region.clone());
        let mut builder = aws_sdk_s3::config::Builder::from(&self.base)
            .region(region.clone())
            .force_path_style(self.force_path_style);
        let mut credentials = None;
        if let Some(role) = &key.role {
            let mut assume = AssumeRoleProvider::builder(&role.arn)
                .session_name(format!("replicanary-{}", key.side.as_str()))
                .configure(&self.base)
                .region(region.clone());
            if let Some(x) = &role.external_id {
                assume = assume.external_id(x);
            }
            let provider = CountingProvider {
                inner: assume.build().await,
                metrics: self.metrics.clone(),
                first_user: Arc::from(first_user),
                side: key.side,
            };
            credentials = Some(SharedCredentialsProvider::new(provider));
        }
        if let Some(c) = &credentials {
            builder = builder.credentials_provider(c.clone());
        }
        let kms = (key.side == Side::Destination).then(|| {
            let mut kms = aws_sdk_kms::config::Builder::from(&self.base).region(region);
            if let Some(c) = credentials {
                kms = kms.credentials_provider(c);
            }
            aws_sdk_kms::Client::from_conf(kms.build())
        });
        SideClients {
            s3: aws_sdk_s3::Client::from_conf(builder.build()),
            kms,
        }
    }
}

/// Counts the `AssumeRole` calls made behind the SDK's identity cache.
#[derive(Debug)]
struct CountingProvider {
    inner: AssumeRoleProvider,
    metrics: Arc<Metrics>,
    /// Counted under this replication when no task says on whose behalf it runs.
    first_user: Arc<str>,
    side: Side,
}

impl ProvideCredentials for CountingProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let result = self.inner.provide_credentials().await;
            let replication = ACTING_FOR
                .try_with(Arc::clone)
                .unwrap_or_else(|_| self.first_user.clone());
            let code = match &result {
                Ok(_) => "ok",
                Err(e) => sts_code(e),
            };
            self.metrics
                .aws_request(&replication, self.side, "AssumeRole", code);
            if let Err(e) = &result {
                tracing::warn!(
                    replication = %replication,
                    side = self.side.as_str(),
                    error = %error_chain(e),
                    "AssumeRole failed"
                );
            }
            result
        })
    }
}

/// The bounded `code` label of a failed AssumeRole.
fn sts_code(err: &aws_credential_types::provider::error::CredentialsError) -> &'static str {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::Response;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(sdk) = e.downcast_ref::<SdkError<AssumeRoleError, Response>>() {
            return code_label(&from_sdk("AssumeRole", sdk));
        }
        cur = e.source();
    }
    "other"
}

//! AWS SDK clients for each side of each replication.
//!
//! Base credentials come from the SDK's default chain (environment, profile, SSO, web
//! identity/IRSA, EKS Pod Identity, ECS, IMDS). A side with a `role_arn` gets an
//! `AssumeRoleProvider` on top; the SDK's identity cache caches its session and refreshes
//! it before expiry. Endpoint (`aws.endpoint_url` or `AWS_ENDPOINT_URL`), retries and
//! timeouts are the SDK's, configured once here for S3 and STS alike.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use super::AwsError;
use super::s3::S3Store;
use crate::config::{AwsSettings, Role};
use crate::metrics::{Metrics, Side};

/// Loads the base SDK configuration shared by every client.
pub async fn base_config(settings: &AwsSettings) -> SdkConfig {
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

/// Builds the S3 access of one side: its region, its role, its request counting.
pub async fn side_store(
    base: &SdkConfig,
    settings: &AwsSettings,
    region: &str,
    role: Option<&Role>,
    metrics: &Arc<Metrics>,
    replication: &str,
    side: Side,
) -> S3Store {
    let region = Region::new(region.to_owned());
    let mut builder = aws_sdk_s3::config::Builder::from(base)
        .region(region.clone())
        .force_path_style(settings.force_path_style);
    if let Some(role) = role {
        let mut assume = AssumeRoleProvider::builder(&role.arn)
            .session_name(format!("replicanary-{}", side.as_str()))
            .configure(base)
            .region(region);
        if let Some(x) = &role.external_id {
            assume = assume.external_id(x);
        }
        let provider = CountingProvider {
            inner: assume.build().await,
            metrics: metrics.clone(),
            replication: replication.to_owned(),
            side,
        };
        builder = builder.credentials_provider(SharedCredentialsProvider::new(provider));
    }
    S3Store::new(
        aws_sdk_s3::Client::from_conf(builder.build()),
        metrics.clone(),
        replication,
        side,
    )
}

/// Counts the `AssumeRole` calls made behind the SDK's identity cache.
#[derive(Debug)]
struct CountingProvider {
    inner: AssumeRoleProvider,
    metrics: Arc<Metrics>,
    replication: String,
    side: Side,
}

impl ProvideCredentials for CountingProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let result = self.inner.provide_credentials().await;
            let code = match &result {
                Ok(_) => "ok",
                Err(e) => sts_code(e),
            };
            self.metrics
                .aws_request(&self.replication, self.side, "AssumeRole", code);
            if let Err(e) = &result {
                tracing::warn!(
                    replication = %self.replication,
                    side = self.side.as_str(),
                    error = %super::error::error_chain(e),
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
            return AwsError::from_sdk("AssumeRole", sdk).code_label();
        }
        cur = e.source();
    }
    "other"
}

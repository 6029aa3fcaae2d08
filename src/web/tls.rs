//! The rustls server configuration made from [`TlsFiles`]: the certificate chain and key
//! (PEM), and the client CA when client certificates are verified. aws-lc-rs is the
//! crypto provider (the one the AWS SDK's HTTPS client already uses); HTTP/1.1 is the one
//! protocol offered over ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::file::{ClientAuth, MinVersion, TlsFiles};
use crate::config::FieldError;

/// Reads the files and builds the server configuration; errors name the field whose file
/// is wrong.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, Vec<FieldError>> {
    let err = |field: &str, message: String| {
        vec![FieldError {
            path: format!("tls_server_config.{field}"),
            message,
        }]
    };
    let chain = certificates(&files.cert_file).map_err(|m| err("cert_file", m))?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| {
        err(
            "key_file",
            format!("{}: no PEM private key read: {e}", files.key_file.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match files.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| err("min_version", e.to_string()))?;
    let builder = match &files.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::VerifyIfGiven { ca_file } | ClientAuth::RequireAndVerify { ca_file } => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca_file).map_err(|m| err("client_ca_file", m))? {
                roots.add(cert).map_err(|e| {
                    err(
                        "client_ca_file",
                        format!("{}: not a CA certificate: {e}", ca_file.display()),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match files.client_auth {
                ClientAuth::VerifyIfGiven { .. } => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| err("client_ca_file", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        err(
            "key_file",
            format!(
                "{} does not go with the certificate of cert_file: {e}",
                files.key_file.display()
            ),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Every PEM certificate in the file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: cannot read PEM certificates: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(chain)
}

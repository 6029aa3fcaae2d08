//! The endpoints behind `--web.config.file` (TLS and basic auth), the real binary against
//! the lab: a real Prometheus scrapes over TLS with basic auth (`tls_config`,
//! `basic_auth`) and the shipped rules evaluate; requests without or with wrong
//! credentials get 401 on every endpoint; plain HTTP is refused; `POST /-/reload` is 403
//! without `--web.enable-lifecycle` and works with it plus credentials; a reload rotates
//! the certificate for new connections, and a bad web file on reload keeps the running one.
//!
//! The CA and certificates are made here (rcgen), the password hashes with the bcrypt crate.
//! Skipped (the Prometheus part) when `prometheus` is not installed, unless `CI` is set.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use support::prometheus::{LAB_ARGS, PROBE_ARGS, Prometheus, label, prometheus_binary};
use support::tempdir::TempDir;
use support::{Daemon, Lab, Metrics, http_get, http_post, parse_response, wait_until};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Writes `<name>-ca.pem`, `<name>-cert.pem`, `<name>-key.pem` in `dir`.
fn make_pki(dir: &Path, name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("replicanary test CA {name}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).expect("write CA");
    std::fs::write(&pki.cert, cert.pem()).expect("write cert");
    std::fs::write(&pki.key, key.serialize_pem()).expect("write key");
    pki
}

/// `$2y$` bcrypt hash (as `htpasswd -B` writes it), at the lowest cost to keep tests quick.
fn bcrypt_hash(password: &str) -> String {
    let salt: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    bcrypt::hash_with_salt(password, 4, salt)
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoY)
}

/// The web configuration: TLS with `pki`'s server certificate, one user.
fn web_config(pki: &Pki) -> String {
    web_config_with(pki, PASSWORD)
}

/// The web configuration with `password` for [`USER`].
fn web_config_with(pki: &Pki, password: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {USER}: '{}'\n",
        pki.cert.display(),
        pki.key.display(),
        bcrypt_hash(password)
    )
}

/// A response over TLS: status, head (lower-cased) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// One request over TLS, trusting only `ca`; `Err` when the TLS connection fails (an
/// untrusted certificate, say).
fn https(
    port: u16,
    ca: &Path,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Result<Answer, String> {
    https_as(None, port, ca, method, path, auth)
}

/// Like [`https`], presenting the client certificate `client` (certificate, key files).
fn https_as(
    client: Option<(&Path, &Path)>,
    port: u16,
    ca: &Path,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Result<Answer, String> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).map_err(|e| e.to_string())?;
    let certs = <rustls_pki_types::CertificateDer as PemObject>::pem_slice_iter(&pem);
    for cert in certs {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        None => config.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = <rustls_pki_types::CertificateDer as PemObject>::pem_file_iter(cert)
                .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                .map_err(|e| e.to_string())?;
            let key =
                rustls_pki_types::PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?;
            config
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
    };
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let authorization = auth.map_or(String::new(), |(u, p)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        format!("Authorization: Basic {token}\r\n")
    });
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    if let Err(e) = tls.read_to_end(&mut buf)
        && buf.is_empty()
    {
        return Err(e.to_string());
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP head")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let (status, body) = parse_response(&buf).ok_or("not an HTTP response")?;
    Ok(Answer { status, head, body })
}

fn get(port: u16, ca: &Path, path: &str, auth: Option<(&str, &str)>) -> Answer {
    https(port, ca, "GET", path, auth).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn authed_metrics(port: u16, ca: &Path) -> Metrics {
    let a = get(port, ca, "/metrics", Some((USER, PASSWORD)));
    assert_eq!(a.status, 200, "{a:?}");
    Metrics::parse(&a.body)
}

fn wait_ready(daemon: &Daemon, ca: &Path) {
    wait_until(Duration::from_secs(30), "/readyz over TLS", || {
        https(daemon.port, ca, "GET", "/readyz", Some((USER, PASSWORD)))
            .is_ok_and(|a| a.status == 200)
    });
}

/// deploy/prometheus/scrape-config.example.yml with each (from, to) replaced (each must be
/// there), indented as items of `scrape_configs:`.
fn shipped_scrape_config(replace: &[(&str, &str)]) -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/scrape-config.example.yml");
    let mut text = std::fs::read_to_string(&path).expect("the example scrape config");
    for (from, to) in replace {
        assert!(text.contains(from), "{} lacks {from}", path.display());
        text = text.replace(from, to);
    }
    assert!(text.contains(&format!("username: {USER}")), "{text}");
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth_and_everything_else_is_refused() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let dir = TempDir::new("replicanary-web");
    let pki = make_pki(dir.path(), "server");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_config(&pki)).expect("write web config");

    let lab = Lab::start(LAB_ARGS);
    let config = lab.provision(&["healthy"], PROBE_ARGS);
    let web_arg = web.display().to_string();
    let daemon = Daemon::spawn(&config, &["--web.config.file", &web_arg], &[]);
    wait_ready(&daemon, &pki.ca);

    // Every endpoint: no credentials, a wrong password, an unknown user → 401.
    let wrong = [
        None,
        Some((USER, "wrong password")),
        Some(("someone", PASSWORD)),
    ];
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/-/reload"),
    ] {
        for auth in wrong {
            let a = https(daemon.port, &pki.ca, method, path, auth)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(a.status, 401, "{method} {path} with {auth:?}: {a:?}");
            assert!(
                a.head.contains("www-authenticate: basic"),
                "{method} {path}: {a:?}"
            );
            assert!(!a.body.contains("replicanary_"), "{a:?}");
        }
        let a = https(daemon.port, &pki.ca, method, path, Some((USER, PASSWORD)))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let want = if method == "POST" { 403 } else { 200 };
        assert_eq!(a.status, want, "{method} {path} with credentials: {a:?}");
    }
    // Without --web.enable-lifecycle the reload is refused, with a one-line reason.
    let a = https(
        daemon.port,
        &pki.ca,
        "POST",
        "/-/reload",
        Some((USER, PASSWORD)),
    )
    .expect("POST /-/reload");
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("--web.enable-lifecycle"), "{a:?}");
    assert_eq!(a.body.trim_end().lines().count(), 1, "{a:?}");

    // Plain HTTP gets no endpoint: 400 and a one-line reason, nothing else.
    for path in ["/metrics", "/healthz", "/"] {
        let (status, body) = http_get(daemon.port, path).expect("an answer to plain HTTP");
        assert_eq!(status, 400, "plain GET {path}: {body}");
        assert!(body.contains("HTTPS"), "{body}");
        assert!(!body.contains("replicanary_"), "{body}");
    }
    let (status, _) = http_post(daemon.port, "/-/reload", "").expect("an answer");
    assert_eq!(status, 400);

    // A real Prometheus scrapes it over TLS with basic auth; the shipped rules evaluate.
    // The shipped example job, only its paths and target replaced.
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, PASSWORD).expect("write password file");
    let scrape = shipped_scrape_config(&[
        (
            "/etc/prometheus/replicanary-ca.pem",
            &pki.ca.display().to_string(),
        ),
        (
            "/etc/prometheus/replicanary-password",
            &password_file.display().to_string(),
        ),
        (
            "replicanary.example.internal:9879",
            &format!("127.0.0.1:{}", daemon.port),
        ),
    ]);
    let prometheus = Prometheus::start_with_scrape_configs(&binary, &scrape);
    wait_until(
        Duration::from_secs(60),
        "two ok verdicts of healthy in Prometheus, scraped over TLS",
        || {
            prometheus
                .query(r#"replicanary_probes_total{replication="healthy",outcome="ok"} >= 2"#)
                .len()
                == 1
        },
    );
    let targets = prometheus.targets();
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0]["health"], "up", "{targets:?}");
    assert_eq!(
        targets[0]["scrapeUrl"]
            .as_str()
            .map(|u| u.starts_with("https://")),
        Some(true)
    );
    let up = prometheus.query(r#"up{job="replicanary"}"#);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    prometheus.wait_for_evaluations(2);
    prometheus.assert_rules_healthy();
    let ever = prometheus.alert_history(r#"replication="healthy""#);
    assert!(ever.is_empty(), "alerts for healthy: {ever:?}");
    let ever = prometheus.self_alerts_ever();
    assert!(
        ever.is_empty(),
        "alerts about replicanary: {ever:?}\nreplicanary log:\n{}",
        daemon.log_text()
    );
    assert!(
        prometheus
            .alerts()
            .iter()
            .all(|a| label(a, "alertname") != "ReplicanaryDown"),
        "{:?}",
        prometheus.alerts()
    );
    // SIGTERM with Prometheus' keep-alive TLS connection open: a clean exit.
    let status = daemon.signal_and_wait("TERM", Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[test]
fn lifecycle_reload_with_credentials_rotates_the_certificate_and_keeps_a_good_file() {
    let dir = TempDir::new("replicanary-web-reload");
    let first = make_pki(dir.path(), "first");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_config(&first)).expect("write web config");

    let lab = Lab::start(LAB_ARGS);
    let config = lab.provision(&["healthy"], PROBE_ARGS);
    let web_arg = web.display().to_string();
    // Only explicit reloads here: no file poll.
    let daemon = Daemon::spawn(
        &config,
        &["--web.config.file", &web_arg, "--web.enable-lifecycle"],
        &[("REPLICANARY_CONFIG_POLL_INTERVAL", "0s")],
    );
    wait_ready(&daemon, &first.ca);
    let reload = |ca: &Path, auth| {
        https(daemon.port, ca, "POST", "/-/reload", auth).expect("POST /-/reload answers")
    };

    // With the flag: credentials still needed, then the reload runs.
    let a = reload(&first.ca, None);
    assert_eq!(a.status, 401, "{a:?}");
    let a = reload(&first.ca, Some((USER, "nope")));
    assert_eq!(a.status, 401, "{a:?}");
    let a = reload(&first.ca, Some((USER, PASSWORD)));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, "configuration unchanged\n");

    // A new certificate (from another CA) in the same files: served once reloaded, to new
    // connections.
    let second = make_pki(dir.path(), "second");
    std::fs::copy(&second.cert, &first.cert).expect("rotate cert");
    std::fs::copy(&second.key, &first.key).expect("rotate key");
    assert!(
        https(
            daemon.port,
            &second.ca,
            "GET",
            "/healthz",
            Some((USER, PASSWORD))
        )
        .is_err(),
        "the new certificate is served before the reload"
    );
    let a = reload(&first.ca, Some((USER, PASSWORD)));
    assert_eq!(a.status, 200, "{a:?}");
    let a = get(daemon.port, &second.ca, "/healthz", Some((USER, PASSWORD)));
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        https(
            daemon.port,
            &first.ca,
            "GET",
            "/healthz",
            Some((USER, PASSWORD))
        )
        .is_err(),
        "the old certificate is still served after the reload"
    );
    let m = authed_metrics(daemon.port, &second.ca);
    assert_eq!(
        m.get("replicanary_config_last_reload_successful", &[]),
        Some(1.0)
    );

    // A bad web file: the reload fails naming the field, the running one stays (the same
    // password works), and the gauge says so; fixed, it is 1 again.
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {USER}: not-a-hash\n",
            first.cert.display(),
            first.key.display()
        ),
    )
    .expect("write bad web config");
    let a = reload(&second.ca, Some((USER, PASSWORD)));
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.body.contains("basic_auth_users.prometheus"), "{a:?}");
    let m = authed_metrics(daemon.port, &second.ca);
    assert_eq!(
        m.get("replicanary_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert!(
        daemon
            .log_text()
            .contains("web configuration reload failed: the running web configuration stays"),
        "{}",
        daemon.log_text()
    );
    std::fs::write(&web, web_config(&first)).expect("fix web config");
    let a = reload(&second.ca, Some((USER, PASSWORD)));
    assert_eq!(a.status, 200, "{a:?}");
    let m = authed_metrics(daemon.port, &second.ca);
    assert_eq!(
        m.get("replicanary_config_last_reload_successful", &[]),
        Some(1.0)
    );
}

#[test]
fn a_renewed_certificate_and_a_new_password_are_picked_up_by_the_file_poll() {
    let dir = TempDir::new("replicanary-web-poll");
    let first = make_pki(dir.path(), "first");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_config(&first)).expect("write web config");
    let lab = Lab::start(LAB_ARGS);
    let config = lab.provision(&["healthy"], PROBE_ARGS);
    let web_arg = web.display().to_string();
    // No --web.enable-lifecycle: only the poll reloads.
    let daemon = Daemon::spawn(
        &config,
        &["--web.config.file", &web_arg],
        &[("REPLICANARY_CONFIG_POLL_INTERVAL", "300ms")],
    );
    wait_ready(&daemon, &first.ca);

    // cert-manager renews: new certificate and key in the same files.
    let second = make_pki(dir.path(), "second");
    std::fs::copy(&second.cert, &first.cert).expect("rotate cert");
    std::fs::copy(&second.key, &first.key).expect("rotate key");
    wait_until(
        Duration::from_secs(15),
        "the renewed certificate served",
        || {
            https(
                daemon.port,
                &second.ca,
                "GET",
                "/healthz",
                Some((USER, PASSWORD)),
            )
            .is_ok_and(|a| a.status == 200)
        },
    );
    assert!(
        https(
            daemon.port,
            &first.ca,
            "GET",
            "/healthz",
            Some((USER, PASSWORD))
        )
        .is_err(),
        "the old certificate is still served to new connections"
    );
    assert!(
        daemon
            .log_text()
            .contains("web configuration reloaded: new connections use it"),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon.log_text().contains(r#""cause":"web_file_changed""#),
        "{}",
        daemon.log_text()
    );

    // A new password: the old one stops working.
    std::fs::write(&web, web_config_with(&first, "a new password")).expect("write web config");
    wait_until(Duration::from_secs(15), "the new password accepted", || {
        https(
            daemon.port,
            &second.ca,
            "GET",
            "/healthz",
            Some((USER, "a new password")),
        )
        .is_ok_and(|a| a.status == 200)
    });
    let a = get(daemon.port, &second.ca, "/metrics", Some((USER, PASSWORD)));
    assert_eq!(a.status, 401, "{a:?}");
}

/// A client CA and a client certificate signed by it: (CA, certificate, key) files.
fn make_client_pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("client CA {name}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("client key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("prometheus {name}"));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca).expect("client certificate");
    let files = (
        dir.join(format!("{name}-client-ca.pem")),
        dir.join(format!("{name}-client.pem")),
        dir.join(format!("{name}-client-key.pem")),
    );
    std::fs::write(&files.0, ca.pem()).expect("write client CA");
    std::fs::write(&files.1, cert.pem()).expect("write client cert");
    std::fs::write(&files.2, key.serialize_pem()).expect("write client key");
    files
}

#[test]
fn client_certificates_are_required_and_verified_when_configured() {
    let dir = TempDir::new("replicanary-web-mtls");
    let pki = make_pki(dir.path(), "server");
    let (client_ca, client_cert, client_key) = make_client_pki(dir.path(), "trusted");
    let (_, stranger_cert, stranger_key) = make_client_pki(dir.path(), "stranger");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "{}tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            web_config(&pki)
                .split_once("basic_auth_users")
                .map(|(_, users)| format!("basic_auth_users{users}"))
                .expect("users"),
            pki.cert.display(),
            pki.key.display(),
            client_ca.display()
        ),
    )
    .expect("write web config");
    let lab = Lab::start(LAB_ARGS);
    let config = lab.provision(&["healthy"], PROBE_ARGS);
    let web_arg = web.display().to_string();
    let daemon = Daemon::spawn(&config, &["--web.config.file", &web_arg], &[]);
    let trusted = Some((client_cert.as_path(), client_key.as_path()));
    wait_until(Duration::from_secs(30), "/readyz over mutual TLS", || {
        https_as(
            trusted,
            daemon.port,
            &pki.ca,
            "GET",
            "/readyz",
            Some((USER, PASSWORD)),
        )
        .is_ok_and(|a| a.status == 200)
    });
    // A trusted client certificate does not replace the password, nor the reverse.
    let a = https_as(trusted, daemon.port, &pki.ca, "GET", "/metrics", None).expect("answer");
    assert_eq!(a.status, 401, "{a:?}");
    let stranger = Some((stranger_cert.as_path(), stranger_key.as_path()));
    for client in [None, stranger] {
        let answer = https_as(
            client,
            daemon.port,
            &pki.ca,
            "GET",
            "/metrics",
            Some((USER, PASSWORD)),
        );
        assert!(
            answer.is_err(),
            "client certificate {client:?} was let in: {answer:?}"
        );
    }
}

#[test]
fn a_bad_web_config_file_at_start_exits_2_naming_the_field() {
    let dir = TempDir::new("replicanary-web-bad");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "replications:\n  - name: a\n    source: {bucket: src-bucket, region: ap-northeast-1}\n    destinations:\n      - bucket: dst-bucket\n        region: ap-northeast-1\n        expected_kms_key_arn: arn:aws:kms:ap-northeast-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab\n",
    )
    .expect("write config");
    let pki = make_pki(dir.path(), "ok");
    let cases = [
        (
            format!("tls_server_config:\n  cert_file: {}\n", pki.cert.display()),
            "tls_server_config.key_file",
        ),
        (
            format!(
                "tls_server_config:\n  cert_file: missing.pem\n  key_file: {}\n",
                pki.key.display()
            ),
            "tls_server_config.cert_file",
        ),
        (
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                pki.cert.display(),
                pki.ca.display()
            ),
            "tls_server_config.key_file",
        ),
        (
            "basic_auth_users:\n  alice: plaintext\n".to_owned(),
            "basic_auth_users.alice",
        ),
        ("tls_server_confg: {}\n".to_owned(), "unknown field"),
    ];
    for (text, field) in cases {
        let web = dir.path().join("web.yml");
        std::fs::write(&web, &text).expect("write web config");
        let out = support::binary()
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--web.config.file")
            .arg(&web)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(field), "{text}: {stderr}");
        assert!(stderr.contains("web.yml"), "{text}: {stderr}");
        // `validate` says the same.
        let out = support::binary()
            .args(["validate", "--config"])
            .arg(&config)
            .arg("--web.config.file")
            .arg(&web)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "validate {text}: {stderr}");
        assert!(stderr.contains(field), "validate {text}: {stderr}");
    }
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_config(&pki)).expect("write web config");
    let out = support::binary()
        .args(["validate", "--config"])
        .arg(&config)
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("web.yml: ok (TLS, basic auth with 1 user(s))"),
        "{stdout}"
    );
}

#[test]
fn the_shipped_kubernetes_credentials_match_their_hashes() {
    let k8s = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let secret: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(k8s.join("common/web-secret.yaml")).expect("web-secret.yaml"),
    )
    .expect("web-secret.yaml is YAML");
    let data = &secret["stringData"];
    let web: serde_json::Value =
        serde_saphyr::from_str(data["web-config.yml"].as_str().expect("web-config.yml"))
            .expect("web-config.yml is YAML");
    let users = &web["basic_auth_users"];
    let verify = |user: &str, password: &str| {
        let hash = users[user]
            .as_str()
            .unwrap_or_else(|| panic!("no user {user}"));
        bcrypt::verify(password, hash).unwrap_or_else(|e| panic!("{user}: {e}"))
    };
    // Prometheus' credentials (the ServiceMonitor's basicAuth).
    let user = data["username"].as_str().expect("username");
    let password = data["password"].as_str().expect("password");
    assert!(
        verify(user, password),
        "{user}'s password does not match its hash"
    );
    // The probes' Authorization header, in both workloads.
    for workload in ["deployment.yaml", "sharded/statefulset.yaml"] {
        let text = std::fs::read_to_string(k8s.join(workload)).expect("workload");
        let headers: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("value: Basic "))
            .map(|v| v.split_whitespace().next().unwrap_or_default())
            .collect();
        assert_eq!(
            headers.len(),
            2,
            "{workload}: liveness and readiness headers"
        );
        for token in headers {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .expect("base64");
            let decoded = String::from_utf8(decoded).expect("UTF-8");
            let (user, password) = decoded.split_once(':').expect("user:password");
            assert!(
                verify(user, password),
                "{workload}: the probe's {user} password does not match its hash"
            );
        }
    }
}

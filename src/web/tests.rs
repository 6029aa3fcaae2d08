//! The web configuration's format and validation, basic auth and its cache.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;

use super::auth::{Users, basic_credentials};
use super::file::{ClientAuth, MinVersion, WebConfig};

fn parse(text: &str) -> Result<WebConfig, Vec<String>> {
    WebConfig::parse(text, Path::new("/etc/replicanary")).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    })
}

#[test]
fn an_empty_file_is_plain_http_without_auth() {
    assert_eq!(parse("").unwrap(), WebConfig::default());
    assert_eq!(parse("{}").unwrap(), WebConfig::default());
}

#[test]
fn tls_files_are_relative_to_the_file_and_defaults_apply() {
    let c = parse("tls_server_config:\n  cert_file: tls.crt\n  key_file: /abs/tls.key\n").unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert_file, Path::new("/etc/replicanary/tls.crt"));
    assert_eq!(tls.key_file, Path::new("/abs/tls.key"));
    assert_eq!(tls.client_auth, ClientAuth::None);
    assert_eq!(tls.min_version, MinVersion::Tls12);
    let c = parse(
        "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n",
    )
    .unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(
        tls.client_auth,
        ClientAuth::RequireAndVerify {
            ca_file: "/etc/replicanary/ca.pem".into()
        }
    );
    assert_eq!(tls.min_version, MinVersion::Tls13);
}

#[test]
fn every_error_names_its_field() {
    let cases: &[(&str, &str)] = &[
        (
            "tls_server_config:\n  cert_file: c\n",
            "tls_server_config.key_file: required",
        ),
        (
            "tls_server_config:\n  key_file: k\n",
            "tls_server_config.cert_file: required",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file: required",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n",
            "tls_server_config.client_ca_file: a client CA is given",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAnyClientCert\n",
            "tls_server_config.client_auth_type: RequireAnyClientCert",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Sometimes\n",
            "tls_server_config.client_auth_type: unknown value",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS10\n",
            "tls_server_config.min_version: unknown value",
        ),
        (
            "basic_auth_users:\n  alice: secret\n",
            "basic_auth_users.alice: not a bcrypt hash",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: []\n",
            "tls_server_config.cipher_suites: unknown field",
        ),
        ("tls_server_confg: {}\n", "tls_server_confg: unknown field"),
        (
            "basic_auth_users: [alice]\n",
            "basic_auth_users: must be a mapping",
        ),
        ("- a\n", ": must be a mapping"),
    ];
    for (text, want) in cases {
        let errors = parse(text).expect_err(text);
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "{text}: {errors:?} should hold {want:?}"
        );
    }
    let hash = bcrypt::hash_with_salt("pw", 4, [1; 16])
        .unwrap()
        .to_string();
    let errors = parse(&format!("basic_auth_users:\n  'a:b': '{hash}'\n")).unwrap_err();
    assert!(
        errors[0].starts_with("basic_auth_users.a:b: a user name"),
        "{errors:?}"
    );
}

fn header(user: &str, password: &str) -> Vec<u8> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}").into_bytes()
}

#[test]
fn credentials_are_read_from_basic_only() {
    assert_eq!(
        basic_credentials(&header("u", "p:w")),
        Some(("u".to_owned(), "p:w".to_owned()))
    );
    assert_eq!(
        basic_credentials(b"basic dTpw"),
        Some(("u".to_owned(), "p".to_owned()))
    );
    for bad in [
        &b"Bearer dTpw"[..],
        b"Basic",
        b"Basic !!!",
        b"Basic dXNlcg==",
    ] {
        assert_eq!(basic_credentials(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn right_credentials_pass_and_are_cached_wrong_ones_never_are() {
    let hash = bcrypt::hash_with_salt("pw", 4, [1; 16])
        .unwrap()
        .to_string();
    let users = Arc::new(Users::new(BTreeMap::from([("alice".to_owned(), hash)])));
    assert!(!users.allows(None).await);
    assert!(!users.allows(Some(&header("alice", "wrong"))).await);
    assert!(!users.allows(Some(&header("bob", "pw"))).await);
    assert_eq!(users.cached_entries(), 0);
    assert!(users.allows(Some(&header("alice", "pw"))).await);
    assert_eq!(users.cached_entries(), 1);
    // The cache answers the same credentials, and only them.
    assert!(users.allows(Some(&header("alice", "pw"))).await);
    assert!(!users.allows(Some(&header("alice", "pw "))).await);
    assert_eq!(users.cached_entries(), 1);
}

/// A self-signed certificate and its key for 127.0.0.1, written to `dir`.
fn write_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "replicanary-web-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_reload_keeps_what_is_in_force_when_the_file_is_bad_and_tls_cannot_be_switched() {
    let dir = tempdir("reload");
    let (cert, key) = write_cert(&dir, "server");
    let hash = bcrypt::hash_with_salt("pw", 4, [2; 16])
        .unwrap()
        .to_string();
    let web = dir.join("web.yml");
    let good = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  alice: '{hash}'\n",
        cert.display(),
        key.display()
    );
    std::fs::write(&web, &good).unwrap();
    let live = super::Live::load(Some(&web)).unwrap();
    assert!(live.tls());
    assert_eq!(
        live.watched_files(),
        vec![web.clone(), cert.clone(), key.clone()]
    );
    let users = live.users().unwrap();

    // Same users: the same cache is kept.
    assert!(!live.reload().unwrap(), "nothing changed");
    assert!(Arc::ptr_eq(&users, &live.users().unwrap()));

    // A renewed certificate: a change.
    let (renewed_cert, renewed_key) = write_cert(&dir, "renewed");
    std::fs::copy(&renewed_cert, &cert).unwrap();
    std::fs::copy(&renewed_key, &key).unwrap();
    assert!(live.reload().unwrap(), "the certificate changed");

    // A key of another certificate: refused, naming the key.
    let (_, other_key) = write_cert(&dir, "other");
    std::fs::write(
        &web,
        good.replace(&key.display().to_string(), &other_key.display().to_string()),
    )
    .unwrap();
    let e = live.reload().unwrap_err();
    assert_eq!(e.errors[0].path, "tls_server_config.key_file", "{e}");

    // A key that is not a key: refused, naming the field; the users stay.
    std::fs::write(
        &web,
        good.replace(&key.display().to_string(), &cert.display().to_string()),
    )
    .unwrap();
    let e = live.reload().unwrap_err();
    assert_eq!(e.errors[0].path, "tls_server_config.key_file", "{e}");
    assert!(Arc::ptr_eq(&users, &live.users().unwrap()));

    // TLS off by a reload: refused.
    std::fs::write(&web, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let e = live.reload().unwrap_err();
    assert_eq!(e.errors[0].path, "tls_server_config", "{e}");
    assert!(live.acceptor().is_some());

    // Other users: a new set (and cache).
    let other = bcrypt::hash_with_salt("pw2", 4, [3; 16])
        .unwrap()
        .to_string();
    std::fs::write(&web, good.replace(&hash, &other)).unwrap();
    live.reload().unwrap();
    let now = live.users().unwrap();
    assert!(!Arc::ptr_eq(&users, &now));
    assert_eq!(now.hashes()["alice"], other);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_file_nothing_is_required() {
    let live = super::Live::load(None).unwrap();
    assert!(!live.tls());
    assert!(live.users().is_none());
    assert!(live.watched_files().is_empty());
    assert!(!live.reload().unwrap());
}

//! The status page in a real browser (Debian's `chromium`, headless) against the lab's
//! `healthy` and `wrong-key` scenarios: the wrong-key row shows `undecryptable` and the
//! fixes of its findings (the same ones `check` reports), the healthy row `ok`, and a
//! canary prefix containing `<script>` is shown as text — the DOM holds no script element
//! at all. Each row's history shows one coloured mark per verdict (with its time in the
//! title) and the healthy row a latency sparkline (inline SVG). Screenshots (laptop and
//! phone widths) are written to `target/e2e-artifacts/`.
//!
//! Skipped when `chromium` is not installed, unless `CI` is set: in CI a missing browser
//! is a failure (`.ci/run` installs it).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Daemon, Lab};

const SCRIPT: &str = "<script>alert(1)</script>";

/// The `chromium` binary, or `None` (test skipped) outside CI.
fn chromium_binary() -> Option<PathBuf> {
    support::tools::required_tool("chromium", "chromium")
}

/// Headless chromium with `args` on `url`, bounded in time; returns its stdout.
fn chromium(binary: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let stderr = profile.with_extension("stderr.log");
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let mut out = String::new();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait works") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "chromium {args:?} failed: {status}\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    out
}

/// `GET /` with its response headers (the support helper returns only the body).
fn get_with_headers(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("response");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

/// The serialized DOM of the row of one replication.
fn row<'a>(dom: &'a str, replication: &str) -> &'a str {
    let start = dom
        .find(&format!("data-replication=\"{replication}\""))
        .unwrap_or_else(|| panic!("no row for {replication} in the page:\n{dom}"));
    let end = dom[start..].find("</tr>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// Text as the DOM serializer writes it inside an element.
fn as_dom_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

fn artifacts() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`: the artefacts sit next to it.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("e2e-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact directory");
    dir
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_default();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} is not a non-empty PNG ({} bytes)",
        path.display(),
        bytes.len()
    );
}

#[test]
fn the_status_page_in_a_browser_shows_verdicts_fixes_and_escaped_values() {
    let Some(browser) = chromium_binary() else {
        return;
    };
    let lab = Lab::start(&[]);
    let provisioned = lab.provision(
        &["healthy", "wrong-key"],
        &["--suffix=-sp", "--interval", "1s"],
    );
    // A canary prefix with markup in it: still under `replicanary/` (the probe roles'
    // policies allow only that prefix), shown on the page as part of the canary key.
    let yaml = std::fs::read_to_string(&provisioned).expect("config");
    assert!(yaml.contains("- name: healthy\n"), "{yaml}");
    let yaml = yaml.replace(
        "- name: healthy\n",
        &format!("- name: healthy\n  canary_prefix: \"replicanary/{SCRIPT}/\"\n"),
    );
    let config = lab.dir.path().join("status-page.yaml");
    std::fs::write(&config, yaml).expect("write config");

    let daemon = Daemon::start(&config, &[]);
    let pairs = [
        ("healthy", "rc-healthy-dst-sp"),
        ("wrong-key", "rc-wrong-key-dst-sp"),
    ];
    // Three verdicts each, so that the history has a line to draw.
    daemon.wait_for_verdicts(&pairs, 3.0, Duration::from_secs(90));

    // The fixes `check` reports for wrong-key are the ones the page must show.
    let checked = support::check(&config, &["--replication", "wrong-key", "--format", "json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&checked.stdout).expect("check --format json");
    let fixes: Vec<String> = report["verdicts"][0]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["fix"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !fixes.is_empty(),
        "check found no finding for wrong-key: {report}"
    );

    let (head, body) = get_with_headers(daemon.port, "/");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(body.contains("<meta http-equiv=\"refresh\""), "{body}");

    let url = format!("http://127.0.0.1:{}/", daemon.port);
    let profile = lab.dir.path().join("chromium-profile");
    let dom = chromium(&browser, &profile, &["--dump-dom"], &url);

    let broken = row(&dom, "wrong-key");
    assert!(
        broken.contains("data-outcome=\"undecryptable\""),
        "{broken}"
    );
    assert!(broken.contains(">undecryptable</a>"), "{broken}");
    assert!(broken.contains("#verdict-undecryptable\""), "{broken}");
    for fix in &fixes {
        let shown = format!("<b>Fix:</b> {}</div>", as_dom_text(fix));
        assert!(
            broken.contains(&shown),
            "fix `{fix}` not on the page:\n{broken}"
        );
    }
    assert!(
        broken.contains("AccessDenied"),
        "the last AWS error: {broken}"
    );

    let healthy = row(&dom, "healthy");
    assert!(healthy.contains("data-outcome=\"ok\""), "{healthy}");
    assert!(healthy.contains(">ok</a>"), "{healthy}");
    assert!(healthy.contains("✓ expected key") && healthy.contains("✓ readable"));

    // The markup in the canary key is text: escaped in the serialized DOM, and the
    // document has no script element at all (the page itself uses none).
    let key = as_dom_text(&format!("replicanary/{SCRIPT}/healthy/"));
    assert!(
        healthy.contains(&key),
        "canary key `{key}` not shown as text:\n{healthy}"
    );
    assert!(!dom.to_ascii_lowercase().contains("<script"), "{dom}");

    // The history: a mark per verdict (at least the three waited for, at most the ring's
    // 30), each titled with its outcome and time; the healthy row draws its latencies.
    // (A transient `error` may sit among them on a loaded machine: counted as a mark.)
    let marks = |row: &str, class: &str| row.matches(&format!("<li class=\"sev-{class}")).count();
    for (name, row, class, outcome) in [
        ("healthy", healthy, "ok", "ok"),
        ("wrong-key", broken, "critical", "undecryptable"),
    ] {
        let all = marks(row, "");
        assert!((3..=30).contains(&all), "{name}: {all} marks:\n{row}");
        assert!(
            marks(row, class) >= 2,
            "{name}: fewer than 2 {class} marks:\n{row}"
        );
        assert!(
            row.contains(&format!("title=\"{outcome} · 20")),
            "{name}: a mark's title has its outcome and time:\n{row}"
        );
    }
    assert!(healthy.contains("<svg class=\"spark\""), "{healthy}");

    let dir = artifacts();
    for (name, size) in [
        ("status-page.png", "1366,1000"),
        ("status-page-phone.png", "390,1600"),
    ] {
        let png = dir.join(name);
        let _ = std::fs::remove_file(&png);
        chromium(
            &browser,
            &profile,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={size}"),
            ],
            &url,
        );
        assert_png(&png);
        eprintln!("status page screenshot: {}", png.display());
    }
}

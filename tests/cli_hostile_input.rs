//! Hostile input, the binary's side (no lab): arbitrary bytes and hostile YAML given to
//! `replicanary validate` never panic or hang: exit 2, a message that names the file. A
//! bad configuration given to `validate`, `check` and `run` is tests/cli.rs's; the
//! loader's own property tests are in src/config/tests.rs (`fuzz`).

mod support;

use std::time::{Duration, Instant};

fn validate(text: &[u8]) -> std::process::Output {
    let dir = support::tempdir::TempDir::new("replicanary-input");
    let file = dir.path().join("hostile.yaml");
    std::fs::write(&file, text).expect("write");
    let started = Instant::now();
    let out = support::binary()
        .arg("validate")
        .arg("--config")
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "validate took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?}: {stderr}",
        String::from_utf8_lossy(text)
    );
    assert!(
        stderr.contains("hostile.yaml"),
        "the message names the file: {stderr}"
    );
    out
}

#[test]
fn arbitrary_bytes_exit_2_naming_the_file() {
    let mut rng = fastrand::Rng::with_seed(6);
    for n in 0..40 {
        let len = rng.usize(0..2048);
        let bytes: Vec<u8> = if n % 2 == 0 {
            (0..len).map(|_| rng.u8(..)).collect()
        } else {
            // YAML-ish noise: indicators, indentation, anchors, tags.
            let alphabet = b" \n\t-:?[]{}&*!|>'\"%@`#,replicanary_12";
            (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect()
        };
        validate(&bytes);
    }
}

#[test]
fn hostile_yaml_is_bounded() {
    let deep = format!(
        "replications: {}{}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_map = format!(
        "replications:\n{}",
        (0..5_000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect::<String>()
    );
    // The "billion laughs": aliases that expand exponentially.
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..12 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        laughs.push_str(&format!("{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    laughs.push_str("replications: *l\n");
    let huge_string = format!("replications:\n  - name: {}\n", "x".repeat(8 << 20));
    for (what, text) in [
        ("deep sequences", deep),
        ("deep mappings", deep_map),
        ("billion laughs", laughs),
        ("an 8 MiB scalar", huge_string),
        (
            "invalid UTF-8",
            String::from_utf8_lossy(&[0xff, 0xfe, b'a', b':']).into_owned(),
        ),
    ] {
        eprintln!("{what}");
        validate(text.as_bytes());
    }
    validate(&[0xff, 0xfe, 0x00, b'r']);
}

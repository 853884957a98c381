//! The `servers` command line: help text, bad flag values, a busy port.
//! Error messages must name the flag at fault, so a user knows what to fix.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::models;

const COMMON_FLAGS: &[&str] = &["--addr", "--admin", "--protocol", "--max-frame", "--backlog"];

/// Flags of a model's own, for the models whose flags this suite knows.
fn model_flags(model: &str) -> &'static [&'static str] {
    match model {
        "thread-per-conn" => &["--stack-kib"],
        "pool" => &["--threads", "--stack-kib"],
        "tokio" => &["--workers"],
        _ => &[],
    }
}

/// Run `servers ARGS`, killing it if it is still running after 10 s.
fn servers(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_servers"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn servers");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("servers {args:?} still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// `servers models` lists the models: `testkit::models()` reads them from it,
// and `suite.rs` (`every_model_is_in_the_suite`) checks that the suite
// covers every one.

#[test]
fn each_model_help_mentions_every_flag() {
    for model in models() {
        let out = servers(&[model, "--help"]);
        assert!(out.status.success(), "{model} --help: {}", text(&out.stderr));
        let help = text(&out.stdout);
        for flag in COMMON_FLAGS.iter().chain(model_flags(model)) {
            assert!(help.contains(flag), "`servers {model} --help` does not mention {flag}:\n{help}");
        }
    }
}

/// Each bad value fails before anything listens, naming its flag.
#[test]
fn bad_flag_values_name_the_flag() {
    let common: &[(&str, &str)] = &[
        ("--addr", "nonsense"),
        ("--admin", "nowhere"),
        ("--protocol", "xml"),
        ("--max-frame", "3"),
        ("--max-frame", "a lot"),
        ("--backlog", "0"),
    ];
    let own: &[(&str, &str, &str)] = &[
        ("thread-per-conn", "--stack-kib", "1"),
        ("pool", "--threads", "0"),
        ("pool", "--stack-kib", "lots"),
        ("tokio", "--workers", "0"),
    ];
    let cases = models()
        .into_iter()
        .flat_map(|m| common.iter().map(move |&(flag, value)| (m, flag, value)))
        .chain(own.iter().copied().filter(|(m, _, _)| models().contains(m)));
    for (model, flag, value) in cases {
        let out = servers(&[model, flag, value]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "servers {model} {flag} {value} should fail");
        assert!(stderr.contains(flag), "servers {model} {flag} {value}: message does not name {flag}: {stderr}");
        assert!(out.stdout.is_empty(), "no ready line for a bad flag");
    }
}

#[test]
fn busy_port_names_addr() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for model in models() {
        let out = servers(&[model, "--addr", &addr]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "servers {model} --addr {addr} (in use) should fail");
        assert!(
            stderr.contains("--addr") && stderr.contains(&addr),
            "{model}: message should name --addr {addr}: {stderr}"
        );
    }
    // The admin port is checked the same way.
    let out = servers(&["thread-per-conn", "--addr", "127.0.0.1:0", "--admin", &addr]);
    assert!(!out.status.success() && text(&out.stderr).contains("--admin"), "{}", text(&out.stderr));
}

//! The `servers` command line: help text, bad flag values, a busy port.
//! Error messages must name the flag at fault, so a user knows what to fix.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::loadgen::models::parse_help;
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

/// `servers models`: exit 0, one `NAME<TAB>ready` or `NAME<TAB>unavailable:
/// REASON` line per model, and exactly the model subcommands of `servers
/// --help`, each once, in the same (reading) order.
#[test]
fn models_lists_every_model_subcommand_once_in_order() {
    let out = servers(&["models"]);
    assert!(out.status.success(), "servers models: {}", text(&out.stderr));
    let listing = text(&out.stdout);
    let mut names = Vec::new();
    for line in listing.lines() {
        let (name, status) = line.split_once('\t').unwrap_or_else(|| panic!("no tab in {line:?}"));
        let reason = status.strip_prefix("unavailable: ");
        assert!(status == "ready" || reason.is_some_and(|r| !r.is_empty()), "{line:?}: bad status");
        assert!(!name.is_empty() && !name.contains(char::is_whitespace), "{line:?}: bad name");
        names.push(name.to_string());
    }
    let help = servers(&["--help"]);
    assert!(help.status.success());
    // The model subcommands, as the load generator's fallback reads them
    // (less clap's `help` and `models`).
    let subcommands: Vec<String> = parse_help(&text(&help.stdout)).into_iter().map(|m| m.name).collect();
    assert_eq!(names, subcommands, "`servers models` against the subcommands of `servers --help`");
    assert!(names.iter().any(|n| n == "mio-single"), "{listing}");
    assert_eq!(names.iter().any(|n| n == "libevent"), cfg!(feature = "libevent"), "libevent only when built in");
}

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

/// Where io_uring is forbidden, `servers uring` refuses to start: no ready
/// line, a non-zero exit, and a message naming the cause. Forbidden here
/// as container runtimes do it: a seccomp filter that fails io_uring_setup
/// with EPERM (the filter is the child's alone).
#[cfg(target_arch = "x86_64")]
#[test]
fn uring_refuses_to_start_where_io_uring_is_forbidden() {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_servers"));
    cmd.args(["uring", "--addr", "127.0.0.1:0", "--admin", "none"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only prctl, which is async-signal-safe, between fork and exec.
    unsafe { cmd.pre_exec(deny_io_uring_setup) };
    let mut child = cmd.spawn().expect("spawn servers uring");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill(); // still running: it started, which the asserts below report
    let out = child.wait_with_output().expect("wait for servers uring");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "started anyway: {stdout}{stderr}");
    assert!(!stdout.contains("listening"), "printed a ready line: {stdout}");
    assert!(stderr.contains("uring: cannot start: io_uring"), "{stderr}");
    assert!(stderr.contains("seccomp") || stderr.contains("io_uring_disabled ="), "names no cause: {stderr}");
}

/// A seccomp filter: io_uring_setup (425 on x86_64) fails with EPERM,
/// every other call is allowed.
#[cfg(target_arch = "x86_64")]
fn deny_io_uring_setup() -> std::io::Result<()> {
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let filter = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // seccomp_data.nr
        libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: 0, jf: 1, k: 425 },
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut _ };
    // SAFETY: prctl with a filter program that outlives the call.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `servers --version` and STATS `revision` name the checkout's revision
/// (HEAD, `-dirty` when the tree has changes), as embedded at build time.
#[test]
fn version_and_stats_name_the_revision_built() {
    let expected = match testkit::expected_revision() {
        Ok(r) => r,
        Err(why) => return eprintln!("skipped: no git checkout to compare with ({why})"),
    };
    let out = servers(&["--version"]);
    assert!(out.status.success(), "servers --version: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("servers {} ({expected})", env!("CARGO_PKG_VERSION")));
    let server = testkit::Server::start("mio-single", &[]);
    assert_eq!(server.stats().revision.as_deref(), Some(expected.as_str()), "STATS revision");
}

//! `scripts/netlab` and `loadgen sweep --netlab`, for real: the lab comes
//! up, carries a short load from two load generators started together to
//! a server in its own namespace, and their results merge; the lab goes
//! away after `down`, after a failing command and after SIGINT, taking
//! what ran in it along; and nothing of it is ever in the root namespace.
//!
//! Skipped, with the reason printed, where no lab can be made (not root,
//! no `ip netns`): `scripts/netlab check` says.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{tempdir, text};
use serde_json::Value;
use testkit::servers_bin;

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/netlab")
}

fn netlab(args: &[&str]) -> Output {
    Command::new(script()).args(args).stdin(Stdio::null()).output().expect("run scripts/netlab")
}

/// Whether a lab can be made here; if not, the reason is printed.
fn lab_possible(test: &str) -> bool {
    let out = netlab(&["check"]);
    match out.status.code() {
        Some(0) => true,
        Some(77) => {
            eprintln!("{test}: {}", String::from_utf8_lossy(&out.stderr).trim());
            false
        }
        _ => panic!("scripts/netlab check failed: {}", text(&out)),
    }
}

/// A lab id of this test process (so that tests never touch each other's),
/// removed when the guard drops; `None` (the reason printed) where no lab
/// can be made.
fn lab(case: &str, test: &str) -> Option<(String, Down)> {
    let id = format!("t{:x}{case}", std::process::id());
    lab_possible(test).then(|| (id.clone(), Down(id)))
}

/// Names of lab `id` still in the namespace list or the root namespace's links.
fn leftovers(id: &str) -> Vec<String> {
    let prefix = format!("iomlab-{id}-");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let mut left: Vec<String> =
        String::from_utf8_lossy(&netns.stdout).lines().filter(|l| l.starts_with(&prefix)).map(String::from).collect();
    left.extend(String::from_utf8_lossy(&links.stdout).lines().filter(|l| l.contains("iomlab-")).map(String::from));
    left
}

/// `netlab down ID` on drop, so that a failed assertion leaves no lab.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        netlab(&["down", &self.0]);
    }
}

/// `KEY=value` lines of `netlab up`.
fn var(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
        .trim_matches('"')
        .to_string()
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

/// A server in the lab's server namespace; its data and admin addresses.
fn start_server(ns: &str, addr: &str) -> (Child, String, String) {
    let bind = format!("{addr}:0");
    let mut child = in_ns(ns, servers_bin().to_str().unwrap())
        .args(["mio-single", "--addr", &bind, "--admin", &bind])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let field = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap().to_string();
    assert!(line.starts_with("listening "), "{line}");
    (child, field("data="), field("admin="))
}

#[test]
fn the_lab_carries_a_merged_load_and_leaves_nothing() {
    let Some((id, down)) = lab("a", "the_lab_carries_a_merged_load_and_leaves_nothing") else { return };
    let up = netlab(&["up", "2", "--id", &id]);
    assert!(up.status.success(), "{}", text(&up));
    let env = String::from_utf8_lossy(&up.stdout).to_string();
    let (server_ns, addr) = (var(&env, "NETLAB_SERVER_NS"), var(&env, "NETLAB_SERVER_ADDR"));
    let clients: Vec<String> = var(&env, "NETLAB_CLIENT_NS").split_whitespace().map(String::from).collect();
    assert_eq!(clients.len(), 2);

    // Addresses only inside the lab: none in the root namespace, no route out.
    let root = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&root.stdout).contains(&format!(" {addr}/")), "the lab's address is in root");
    for ns in &clients {
        let routes = Command::new("ip").args(["-n", ns, "route"]).output().unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout).to_string();
        assert!(!routes.contains("default"), "{ns} has a route out: {routes}");
    }

    let (mut server, data, admin) = start_server(&server_ns, &addr);
    let dir = tempdir();
    let at = SystemTime::now() + Duration::from_secs(2);
    let at = format!("{:.3}", at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64());
    let runs: Vec<Child> = clients
        .iter()
        .enumerate()
        .map(|(k, ns)| {
            let mut cmd = in_ns(ns, LOADGEN);
            cmd.args(["run", "--target", &data, "-c", "20", "--warmup", "200ms", "--duration", "1s", "-q"]);
            cmd.args(["--start-at", &at, "--tag", &format!("lg{k}")]);
            cmd.arg("--json").arg(dir.join(format!("lg{k}.json")));
            cmd.arg("--hlog").arg(dir.join(format!("lg{k}.hlog")));
            if k == 0 {
                cmd.args(["--admin", &admin]);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    let _ = server.kill();
    let _ = server.wait();
    let out = dir.join("all.json");
    let merge = Command::new(LOADGEN)
        .arg("merge")
        .arg(&out)
        .args([dir.join("lg0.json"), dir.join("lg1.json")])
        .arg("--hlog")
        .arg(dir.join("all.hlog"))
        .output()
        .unwrap();
    assert!(merge.status.success(), "{}", text(&merge));
    let read = |p: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let (a, b, all) = (read(dir.join("lg0.json")), read(dir.join("lg1.json")), read(out));
    let ok = |v: &Value| v["counts"]["ok"].as_u64().unwrap();
    assert!(ok(&a) > 0 && ok(&b) > 0, "both load generators were answered across the lab");
    assert_eq!(ok(&all), ok(&a) + ok(&b));
    assert_eq!(all["server"]["model"], "mio-single");
    assert_eq!(all["failure"], Value::Null, "{}", all["failure"]);

    let gone = netlab(&["down", &id]);
    assert!(gone.status.success(), "{}", text(&gone));
    assert_eq!(leftovers(&id), Vec::<String>::new());
    drop(down);
}

/// SIGINT while the command runs: the script stops it, stops what it
/// started in the lab, removes the lab, and exits 130.
#[test]
fn sigint_removes_the_lab_and_what_ran_in_it() {
    let Some((id, _down)) = lab("b", "sigint_removes_the_lab_and_what_ran_in_it") else { return };
    let mut run = Command::new(script())
        .args(["run", "2", "--id", &id, "--", "sh", "-c", "ip netns exec \"$NETLAB_SERVER_NS\" sleep 60"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server_ns = format!("iomlab-{id}-srv");
    let deadline = Instant::now() + Duration::from_secs(20);
    let sleeper = loop {
        let pids = Command::new("ip").args(["netns", "pids", &server_ns]).output().unwrap();
        if let Some(pid) = String::from_utf8_lossy(&pids.stdout).split_whitespace().next() {
            break pid.to_string();
        }
        assert!(Instant::now() < deadline, "nothing ever ran in {server_ns}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: kill(2) on the script, our own child, not yet reaped.
    unsafe { libc::kill(run.id() as libc::pid_t, libc::SIGINT) };
    let started = Instant::now();
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the script did not end after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted") && err.contains(&format!("removed lab {id}")), "{err}");
    assert_eq!(leftovers(&id), Vec::<String>::new());
    let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "the command's process in the lab still runs: {stat}");
}

/// A failing command: its exit status is the script's, and the lab goes.
#[test]
fn a_failing_command_keeps_its_status_and_the_lab_goes() {
    let Some((id, _down)) = lab("c", "a_failing_command_keeps_its_status_and_the_lab_goes") else { return };
    let out = netlab(&["run", "1", "--id", &id, "--", "sh", "-c", "test -n \"$NETLAB_CLIENT_NS\" && exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(leftovers(&id), Vec::<String>::new());
    let out = netlab(&["up", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `loadgen sweep --netlab --clients 2`, one short run: the server and two
/// load generators in the lab, the run's result merged from both, and the
/// lab removed at the end.
#[test]
fn a_netlab_sweep_merges_each_run_and_removes_its_lab() {
    if !lab_possible("a_netlab_sweep_merges_each_run_and_removes_its_lab") {
        return;
    }
    let tmp = tempdir();
    let out = tmp.join("sweep");
    let sweep = Command::new(LOADGEN)
        .args(["sweep", "--models", "mio-single", "--levels", "40", "--scenario", "echo-saturate", "--repeat", "1"])
        .args(["--warmup", "200ms", "--duration", "500ms", "--no-charts", "--no-floor", "--netlab", "--clients", "2"])
        .arg("--servers-bin")
        .arg(servers_bin())
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = format!("s{:x}", sweep.id());
    let _down = Down(id.clone());
    let done = sweep.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", text(&done));
    let run: Value =
        serde_json::from_slice(&std::fs::read(out.join("runs/echo-saturate/mio-single-c40-r1.json")).unwrap()).unwrap();
    assert_eq!(run["merged_from"]["tags"], serde_json::json!(["lg0", "lg1"]));
    assert_eq!(run["connections"]["established"], 40);
    assert!(run["counts"]["ok"].as_u64().unwrap() > 0);
    assert_eq!(run["server"]["model"], "mio-single");
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["records"][0]["status"], "ok", "{}", summary["records"][0]);
    assert_eq!(leftovers(&id), Vec::<String>::new());
}

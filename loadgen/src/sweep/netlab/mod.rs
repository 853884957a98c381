//! Hosts for the sweep: the server and N load generators on this machine
//! (loopback), or each in its own network namespace of a lab that
//! `scripts/netlab` makes (`loadgen sweep --netlab --clients N`).
//!
//! On loopback the sender runs the receiver's TCP path, so the load
//! generator pays for part of the server's kernel work and the two share
//! one network stack. In a lab each host has its own stack, and the
//! packets cross a veth pair and a bridge, as they would cross a network
//! (without its wire delay, unless the kernel has netem). Several load
//! generators, on loopback or in a lab, start together (`--start-at`) and
//! their results are added up exactly (`loadgen merge`): see [`clients`].
//!
//! The lab is the script's, embedded here so that the binary never runs
//! another copy than the one it was built with: one source for the lab's
//! shape. It is made once per sweep and removed when the sweep ends,
//! however it ends (the [`Lab`] is removed on drop; a sweep killed outright
//! leaves it to `scripts/netlab down`).

pub mod clients;

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{anyhow, bail, Context};

/// `scripts/netlab`, as built into this binary.
pub const SCRIPT: &str = include_str!("../../../../scripts/netlab");

/// The script's exit status when a lab cannot be made here.
pub const CANNOT: i32 = 77;

/// Flags of `loadgen sweep` for where the server and the load generators run.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct HostsArgs {
    /// Load generators per run, started together (`run --start-at`) and
    /// their results merged exactly (`loadgen merge`); each opens its share
    /// of the connections and offers its share of the rate.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub clients: u16,
    /// Run the server and each load generator on a host of its own: a
    /// network namespace of a lab made by scripts/netlab (needs root and
    /// iproute2), removed when the sweep ends.
    #[arg(long)]
    pub netlab: bool,
    /// With --netlab: steer receive processing (RPS) of the server's links
    /// to CPUs S and the load generators' to CPUs C, as `0/1` [default: off,
    /// as measured best on a 2-core VM].
    #[arg(long, value_name = "S/C", requires = "netlab")]
    pub netlab_rps: Option<String>,
}

/// Where the sweep's processes run.
#[derive(Debug, Default)]
pub struct Hosts {
    /// `None`: everything on this machine, over loopback.
    pub lab: Option<Lab>,
    /// Load generators per run.
    pub clients: u16,
}

impl Hosts {
    /// Make the lab the flags ask for (none without `--netlab`).
    pub fn set_up(args: &HostsArgs) -> anyhow::Result<Hosts> {
        let lab = args.netlab.then(|| Lab::up(args.clients, args.netlab_rps.as_deref()).context("--netlab"));
        Ok(Hosts { lab: lab.transpose()?, clients: args.clients.max(1) })
    }

    /// The command that runs `program` on the server's host.
    pub fn server_command(&self, program: &Path) -> Command {
        in_namespace(self.lab.as_ref().map(|l| l.server_ns.as_str()), program)
    }

    /// `--addr`/`--admin` for the server: port 0 on its host's address.
    pub fn server_bind(&self) -> String {
        match &self.lab {
            Some(lab) => format!("{}:0", lab.server_addr),
            None => "127.0.0.1:0".into(),
        }
    }

    /// The runs go the plain way: one load generator on this host.
    pub fn single(&self) -> bool {
        self.lab.is_none() && self.clients <= 1
    }

    /// What a run at `level` connections takes beyond a single load
    /// generator's run: the wait for the common start.
    pub fn extra_seconds(&self, level: u64) -> f64 {
        match self.single() {
            true => 0.0,
            false => clients::start_lead(level, self.clients as usize).as_secs_f64(),
        }
    }
}

/// `program`, run in network namespace `ns` (`ip netns exec` replaces
/// itself with it: same PID, same affinity and process group).
pub fn in_namespace(ns: Option<&str>, program: &Path) -> Command {
    match ns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// A lab made by the script: its namespaces and the server's address.
#[derive(Debug)]
pub struct Lab {
    pub id: String,
    pub server_ns: String,
    pub server_addr: IpAddr,
    pub client_ns: Vec<String>,
}

impl Lab {
    /// `netlab up N --id ID [--rps S/C]`, read back from its NETLAB_* lines.
    pub fn up(clients: u16, rps: Option<&str>) -> anyhow::Result<Lab> {
        let id = format!("s{:x}", std::process::id());
        let mut args = vec!["up".to_string(), clients.to_string(), "--id".into(), id.clone()];
        if let Some(rps) = rps {
            args.extend(["--rps".into(), rps.into()]);
        }
        let out = script(&args)?;
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        match out.status.code() {
            Some(0) => {}
            Some(CANNOT) => bail!("no lab can be made here: {err}"),
            _ => bail!("scripts/netlab up failed ({}): {err}", out.status),
        }
        let lab = parse_up(&String::from_utf8_lossy(&out.stdout), &id);
        if lab.is_err() {
            let _ = script(&["down".into(), id]);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        match script(&["down".into(), self.id.clone()]) {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("netlab: removing lab {}: {}", self.id, String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => eprintln!("netlab: removing lab {}: {e:#} (scripts/netlab down {})", self.id, self.id),
        }
    }
}

/// Run the embedded script with `args`.
fn script(args: &[String]) -> anyhow::Result<Output> {
    Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("netlab")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run bash (for scripts/netlab)")
}

/// The lab from `netlab up`'s NETLAB_* lines.
fn parse_up(stdout: &str, id: &str) -> anyhow::Result<Lab> {
    let get = |key: &str| -> anyhow::Result<String> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
            .ok_or_else(|| anyhow!("scripts/netlab up printed no {key}: {stdout:?}"))
    };
    let server_addr = get("NETLAB_SERVER_ADDR")?;
    Ok(Lab {
        id: id.to_string(),
        server_ns: get("NETLAB_SERVER_NS")?,
        server_addr: server_addr.parse().with_context(|| format!("NETLAB_SERVER_ADDR={server_addr}"))?,
        client_ns: get("NETLAB_CLIENT_NS")?.split_whitespace().map(String::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_up_prints() {
        let out = "NETLAB_ID=s1\nNETLAB_SERVER_NS=iomlab-s1-srv\nNETLAB_SERVER_ADDR=10.77.0.1\n\
                   NETLAB_CLIENT_NS=\"iomlab-s1-lg0 iomlab-s1-lg1\"\nNETLAB_RPS=off\n";
        let lab = parse_up(out, "s1").unwrap();
        assert_eq!((lab.server_ns.as_str(), lab.server_addr.to_string()), ("iomlab-s1-srv", "10.77.0.1".into()));
        assert_eq!(lab.client_ns, ["iomlab-s1-lg0", "iomlab-s1-lg1"]);
        std::mem::forget(lab); // no lab to remove
        assert!(parse_up("NETLAB_ID=x\n", "x").unwrap_err().to_string().contains("NETLAB_SERVER_ADDR"));
    }

    #[test]
    fn loopback_hosts_run_here() {
        let hosts = Hosts { lab: None, clients: 1 };
        assert!(hosts.single());
        assert_eq!(hosts.server_bind(), "127.0.0.1:0");
        assert_eq!(hosts.server_command(Path::new("/bin/true")).get_program(), "/bin/true");
        let cmd = in_namespace(Some("iomlab-x-srv"), Path::new("servers"));
        let args: Vec<_> = cmd.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!((cmd.get_program().to_str(), args), (Some("ip"), vec!["netns", "exec", "iomlab-x-srv", "servers"]));
    }
}

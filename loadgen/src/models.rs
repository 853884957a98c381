//! The server models this project knows, in one place: their names in
//! reading order, what kind of server each is, and the colour each keeps
//! in every chart. The sweep, the tables and targets, the charts, the
//! regression check, the reliability table and the tests of both crates
//! all read this list, and no other.
//!
//! Which models a given `servers` binary offers is asked of the binary
//! itself ([`offered`]): `servers models` prints one line per model it was
//! built with, `NAME<TAB>ready` or `NAME<TAB>unavailable: REASON`. A build
//! without libevent-dev has no libevent; a kernel with io_uring disabled
//! cannot run uring, and says why. An older binary without that subcommand
//! is read from the `Commands:` of its `--help` instead (the A/B check
//! builds earlier revisions).
//!
//! A model the binary offers and this table does not know still works
//! everywhere: it runs after the known ones, is drawn in a colour of its
//! own and counts as neither blocking nor an event loop. The test suites
//! fail until it is added here, since they cover the models of this table.
//!
//! An *alias* runs a model under a second name: `mio-single@twin` is
//! mio-single, started with the same binary and flags, but recorded,
//! charted and tabled as a model of its own. It is how an A/A sweep
//! (`loadgen sweep --models mio-single,mio-single@twin`) measures the
//! verdicts' false-alarm rate: every "ahead" between the twins is false.
//! An alias has its base's role, sorts right after it, and is drawn in a
//! lighter shade of its base's colour ([`base`], [`twins`]).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// What kind of server a model is: what the tables group, the targets
/// judge and the tests expect (an event loop may answer out of order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A thread blocks on each connection (or, in a pool, on each request).
    Blocking,
    /// An event loop written here on mio: readiness (epoll), non-blocking
    /// sockets. The targets hold these to the floor.
    EventLoop,
    /// An event loop written here on io_uring: the kernel completes the
    /// reads and writes it was handed.
    Completion,
    /// A third-party event loop that the project's own are compared with.
    Peer,
}

/// One known model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    /// As the servers binary's subcommand and every file and table name it.
    pub name: &'static str,
    pub role: Role,
    /// Its colour in every chart (red, green, blue).
    pub color: (u8, u8, u8),
}

/// Every known model, in reading order, as `TEST_NAME => "name", Role,
/// (r, g, b);` lines handed to the macro `$then` (after the token tree
/// `$pass`, passed through unchanged).
///
/// The list is a macro rather than a constant because the test suites need
/// each name as an identifier (one `#[test] fn mio_single()` per model, see
/// the `testkit` crate), and a macro is the only way to hand them one list;
/// [`KNOWN`] below is built from the same lines.
#[macro_export]
macro_rules! known_models {
    ([$($then:tt)*] $pass:tt) => {
        $($then)*! { $pass
            thread_per_conn => "thread-per-conn", Blocking, (214, 39, 40);
            pool => "pool", Blocking, (255, 127, 14);
            mio_single => "mio-single", EventLoop, (31, 119, 180);
            mio_multi => "mio-multi", EventLoop, (44, 160, 44);
            uring => "uring", Completion, (23, 190, 207);
            tokio => "tokio", Peer, (148, 103, 189);
            libevent => "libevent", Peer, (140, 86, 75);
        }
    };
}

macro_rules! known_table {
    ({} $($test:ident => $name:literal, $role:ident, $color:expr;)*) => {
        /// Every known model, in reading order (see [`known_models!`]).
        pub const KNOWN: &[Known] = &[$(Known { name: $name, role: Role::$role, color: $color }),*];
    };
}
known_models!([known_table] {});

/// The table's entry for `name`.
pub fn known(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name == name)
}

/// What separates a model from its alias: `BASE@ALIAS`.
pub const ALIAS_MARK: char = '@';

/// The model `name` runs: the part before `@` of an alias, else `name`.
pub fn base(name: &str) -> &str {
    name.split_once(ALIAS_MARK).map_or(name, |(base, _)| base)
}

/// Whether `a` and `b` are the same model under two names (an A/A pair).
pub fn twins(a: &str, b: &str) -> bool {
    a != b && base(a) == base(b)
}

/// Check an alias as `--models` gives it: `BASE@ALIAS` with an alias of
/// letters, digits, `-` or `_` (it becomes part of file names).
pub fn check_alias(name: &str) -> Result<(), String> {
    let Some((base, alias)) = name.split_once(ALIAS_MARK) else { return Ok(()) };
    let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if base.is_empty() || alias.is_empty() || !alias.chars().all(safe) {
        return Err(format!(
            "{name}: an alias is MODEL{ALIAS_MARK}NAME, NAME of letters, digits, '-' or '_' (e.g. mio-single@twin)"
        ));
    }
    Ok(())
}

/// The known models' names, in reading order.
pub fn names() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().map(|k| k.name)
}

/// The known models of one role, in reading order.
pub fn with_role(role: Role) -> impl Iterator<Item = &'static str> {
    KNOWN.iter().filter(move |k| k.role == role).map(|k| k.name)
}

/// Whether `name` is an event loop of any kind (its answers on one
/// connection may come out of order, it switches context rarely): every
/// known model but the blocking ones. An unknown model is not.
pub fn is_event_loop(name: &str) -> bool {
    known(base(name)).is_some_and(|k| k.role != Role::Blocking)
}

/// Where `name` sorts: known models in reading order (an alias right after
/// its base), then the others by name.
pub fn rank(name: &str) -> (usize, String) {
    (KNOWN.iter().position(|k| k.name == base(name)).unwrap_or(KNOWN.len()), name.to_string())
}

/// `names` in reading order: the known ones first (each alias after its
/// base), then the others in the order given.
pub fn in_order<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut all: Vec<(usize, &str)> = names.iter().enumerate().map(|(i, n)| (i, n.as_ref())).collect();
    all.sort_by_key(|&(i, n)| (rank(n).0, n != base(n), i));
    all.into_iter().map(|(_, n)| n.to_string()).collect()
}

/// A model's colour in every chart; an unknown model gets one made from
/// its name, darker than any of the table's; an alias of a known model its
/// base's, halfway to white.
pub fn color(name: &str) -> (u8, u8, u8) {
    let lighter = |c: u8| c + (255 - c) / 2;
    match (known(name), known(base(name))) {
        (Some(k), _) => k.color,
        (None, Some(k)) => (lighter(k.color.0), lighter(k.color.1), lighter(k.color.2)),
        (None, None) => {
            let h = name.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
            ((h >> 16) as u8 & 0x7f, (h >> 8) as u8 & 0x7f, h as u8 & 0x7f)
        }
    }
}

/// Whether a model the binary offers can run on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    Ready,
    /// It cannot, for this reason (as the binary says it).
    Unavailable(String),
}

/// A model a servers binary offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offered {
    pub name: String,
    pub availability: Availability,
}

impl Offered {
    pub fn ready(&self) -> bool {
        self.availability == Availability::Ready
    }
}

/// The models the servers binary `bin` offers, in its order: `servers
/// models`, or for a binary without that subcommand the `Commands:` of
/// `servers --help` (every one ready).
pub fn offered(bin: &Path) -> anyhow::Result<Vec<Offered>> {
    let out = Command::new(bin).arg("models").output().with_context(|| format!("cannot run {}", bin.display()))?;
    let models = if out.status.success() {
        parse_models(&String::from_utf8_lossy(&out.stdout))
            .map_err(|e| anyhow::anyhow!("{} models: {e}", bin.display()))?
    } else {
        let help =
            Command::new(bin).arg("--help").output().with_context(|| format!("cannot run {} --help", bin.display()))?;
        parse_help(&String::from_utf8_lossy(&help.stdout))
    };
    if models.is_empty() {
        bail!("{} lists no models (neither `models` nor `--help`): is it the iomodels servers binary?", bin.display());
    }
    Ok(models)
}

/// The names of the models `bin` offers and can run here.
pub fn ready(bin: &Path) -> anyhow::Result<Vec<String>> {
    Ok(offered(bin)?.into_iter().filter(Offered::ready).map(|m| m.name).collect())
}

/// Parse what `servers models` prints: `NAME<TAB>ready` or
/// `NAME<TAB>unavailable: REASON`, one model a line. Blank lines are
/// skipped; anything else is refused, naming the line.
pub fn parse_models(text: &str) -> Result<Vec<Offered>, String> {
    let mut models = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let Some((name, state)) = line.split_once('\t') else {
            return Err(format!("line {}: {line:?}: expected NAME<TAB>ready or NAME<TAB>unavailable: REASON", n + 1));
        };
        let availability = match state.trim() {
            "ready" => Availability::Ready,
            s => match s.strip_prefix("unavailable:") {
                Some(why) => Availability::Unavailable(why.trim().to_string()),
                None => return Err(format!("line {}: {line:?}: `{s}` is neither ready nor unavailable", n + 1)),
            },
        };
        models.push(Offered { name: name.trim().to_string(), availability });
    }
    Ok(models)
}

/// The models a clap help text lists: the first word of each entry of its
/// `Commands:` section (indented two spaces; a wrapped description is
/// indented further), less clap's own `help` and the `models` subcommand.
pub fn parse_help(help: &str) -> Vec<Offered> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !matches!(*name, "help" | "models"))
        .map(|name| Offered { name: name.to_string(), availability: Availability::Ready })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_in_order_with_distinct_names_and_colours() {
        let names: Vec<&str> = names().collect();
        assert_eq!(names, ["thread-per-conn", "pool", "mio-single", "mio-multi", "uring", "tokio", "libevent"]);
        for (i, a) in KNOWN.iter().enumerate() {
            for b in &KNOWN[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.color, b.color, "{} and {} share a colour", a.name, b.name);
            }
        }
        assert_eq!(with_role(Role::EventLoop).collect::<Vec<_>>(), ["mio-single", "mio-multi"]);
        assert_eq!(with_role(Role::Peer).collect::<Vec<_>>(), ["tokio", "libevent"]);
        assert!(is_event_loop("uring") && is_event_loop("tokio") && !is_event_loop("pool"));
    }

    #[test]
    fn an_unknown_model_comes_last_in_a_colour_of_its_own() {
        assert!(!is_event_loop("nginx"));
        assert_eq!(in_order(&["nginx", "tokio", "pool", "apache"]), ["pool", "tokio", "nginx", "apache"]);
        assert!(rank("nginx") > rank("libevent"));
        assert!(!KNOWN.iter().any(|k| k.color == color("nginx")));
        assert_eq!(color("nginx"), color("nginx"));
    }

    #[test]
    fn an_alias_is_its_base_under_another_name_and_shade() {
        assert_eq!(base("mio-single@twin"), "mio-single");
        assert_eq!(base("mio-single"), "mio-single");
        assert!(twins("mio-single", "mio-single@twin") && twins("pool@a", "pool@b"));
        assert!(!twins("pool", "pool") && !twins("pool", "tokio@pool"));
        assert!(is_event_loop("mio-single@twin") && !is_event_loop("pool@twin"));
        assert_eq!(
            in_order(&["tokio", "mio-single@twin", "nginx", "mio-single"]),
            ["mio-single", "mio-single@twin", "tokio", "nginx"]
        );
        assert!(rank("mio-single@twin") > rank("mio-single") && rank("mio-single@twin") < rank("mio-multi"));
        let (twin, base_colour) = (color("mio-single@twin"), color("mio-single"));
        assert_ne!(twin, base_colour);
        assert!(twin.0 > base_colour.0 && twin.1 > base_colour.1 && twin.2 > base_colour.2, "lighter: {twin:?}");
        assert!(!KNOWN.iter().any(|k| k.color == twin));
        assert!(check_alias("mio-single@twin-2").is_ok() && check_alias("pool").is_ok());
        for bad in ["mio-single@", "@twin", "mio-single@a/b", "mio-single@a b"] {
            assert!(check_alias(bad).unwrap_err().contains("MODEL@NAME"), "{bad}");
        }
    }

    #[test]
    fn servers_models_is_parsed_with_its_reasons() {
        let text = "thread-per-conn\tready\nmio-single\tready\n\nuring\tunavailable: io_uring is disabled \
                    (/proc/sys/kernel/io_uring_disabled = 2)\n";
        let models = parse_models(text).unwrap();
        assert_eq!(models.len(), 3);
        assert!(models[0].ready() && models[1].ready());
        assert_eq!(models[2].name, "uring");
        assert_eq!(
            models[2].availability,
            Availability::Unavailable("io_uring is disabled (/proc/sys/kernel/io_uring_disabled = 2)".into())
        );
        let e = parse_models("tokio ready\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("NAME<TAB>ready"), "{e}");
        let e = parse_models("tokio\tmaybe\n").unwrap_err();
        assert!(e.contains("`maybe`"), "{e}");
    }

    /// The text of `servers --help` as clap writes it (before `servers
    /// models` existed, and after: `models` is not a model).
    #[test]
    fn servers_help_is_parsed_as_a_fallback() {
        let help = "Blocking and non-blocking TCP server models\n\nUsage: servers <COMMAND>\n\nCommands:\n  \
                    thread-per-conn  One thread per connection: blocking reads and writes, the simplest\n                   \
                    model\n  pool             A fixed pool of threads\n  mio-single       One thread, one mio Poll\n  \
                    models           Print the models this binary was built with\n  help             Print this \
                    message or the help of the given subcommand(s)\n\nOptions:\n  -h, --help     Print help\n";
        let names: Vec<String> = parse_help(help).into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["thread-per-conn", "pool", "mio-single"]);
        assert!(parse_help(help).iter().all(Offered::ready));
        assert!(parse_help("no commands here\n").is_empty());
    }
}

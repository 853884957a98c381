//! The page's env and provenance section, read from the sweep's `env.json`
//! (written by the sweep, [`crate::sweep::env_json`]): which build made
//! these figures and on what. It reads the JSON as it stands, not the
//! sweep's typed record, so a field an older sweep lacks shows as "—"
//! instead of failing the page.

use serde_json::Value;

use super::mdhtml;
use crate::html::escape;
use crate::output::markdown;
use crate::sweep::env_json::SweepFloor;

const DASH: &str = "—";

/// The value at a dotted `path` of `env`, if there is one that is not null.
fn at<'v>(env: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(env, |v, key| v.get(key)).filter(|v| !v.is_null())
}

/// A value in words, escaped: a string as itself, a list joined by
/// `join`, yes/no, a number, "—" when absent.
fn text(v: Option<&Value>, join: &str) -> String {
    match v {
        None => DASH.into(),
        Some(Value::String(s)) => escape(s),
        Some(Value::Bool(b)) => (if *b { "yes" } else { "no" }).into(),
        Some(Value::Array(items)) if items.is_empty() => "none".into(),
        Some(Value::Array(items)) => items.iter().map(|i| text(Some(i), ", ")).collect::<Vec<_>>().join(join),
        Some(other) => escape(&other.to_string()),
    }
}

/// `template` with each `{PATH}` in it replaced by the [`text`] of `env`'s
/// value at that dotted path.
fn fill(env: &Value, template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('{') {
        let (path, tail) = after.split_once('}').unwrap_or((after, ""));
        out.push_str(before);
        out.push_str(&text(at(env, path), ", "));
        rest = tail;
    }
    out + rest
}

/// Which scenarios ran under the budget, from each scenario's own
/// `server_cpu_budget`: a sweep budgets `knee-budget` alone unless told
/// otherwise, and one budget line must not read as every scenario's.
/// Empty where no scenario records a budget of its own: env.json lists
/// none, or was written before scenarios had their own budgets, when the
/// one budget was the whole sweep's.
fn budgeted_scenarios(env: &Value) -> String {
    let Some(scenarios) = at(env, "scenarios").and_then(Value::as_array) else { return String::new() };
    let name = |s: &Value| text(at(s, "name"), "");
    let (with, without): (Vec<&Value>, Vec<&Value>) =
        scenarios.iter().partition(|s| at(s, "server_cpu_budget").is_some());
    match (with.len(), without.len()) {
        (0, _) => String::new(),
        (_, 0) => "; every scenario ran under it".into(),
        _ => format!(
            "; only {} ran under it, not {}",
            with.iter().map(|s| name(s)).collect::<Vec<_>>().join(", "),
            without.iter().map(|s| name(s)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The section: one row per fact, from `env` (the parsed `env.json`, or
/// `None` when the folder has none) and the floor it recorded.
pub fn section(env: Option<&Value>, floor: Option<&SweepFloor>) -> String {
    let mut out = String::from("<section id=\"provenance\">\n<h2>Environment and provenance</h2>\n");
    let Some(env) = env else {
        out.push_str("<p>This folder has no <code>env.json</code>: what ran it is not known.</p>\n</section>\n");
        return out;
    };
    let t = |path: &str| text(at(env, path), ", ");
    let lines = |path: &str| text(at(env, path), "<br>");
    let dirty = match at(env, "git.dirty").and_then(Value::as_bool) {
        Some(true) => " <strong>(dirty: changes not committed)</strong>",
        Some(false) => " (clean)",
        None => " (dirty or not: unknown)",
    };
    let changed = match at(env, "changed_during_run").and_then(Value::as_bool) {
        Some(true) => "<strong>yes</strong>: HEAD moved or the tree changed between start and end".to_string(),
        Some(false) => "no".to_string(),
        None => "not known: the sweep did not finish".to_string(),
    };
    let command: Vec<String> =
        at(env, "command").and_then(Value::as_array).into_iter().flatten().map(|w| text(Some(w), "")).collect();
    let binaries: Vec<String> = at(env, "binaries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| match at(b, "sha256") {
            Some(_) => fill(b, "{role}: <code>{path}</code>, sha256 <code>{sha256}</code>"),
            None => fill(b, "{role}: <code>{path}</code>, not hashed: {error}"),
        })
        .collect();
    let budget = match at(env, "server_cpu_budget") {
        None => "none".to_string(),
        Some(b) => {
            let under =
                "{cpus} CPUs per {period_us} µs period (cgroup {cgroup_version}, under <code>{cgroup_parent}</code>; \
                         STATS outside the budget: {admin_outside})";
            fill(b, under) + &budgeted_scenarios(env)
        }
    };
    let floor = match floor {
        Some(f) => mdhtml::to_html(&markdown::floor_table(f), 0),
        None => "not measured (the sweep ran with <code>--no-floor</code>)".to_string(),
    };
    let rows: Vec<(&str, String)> = vec![
        ("revision", fill(env, "<code>{git.revision}</code>") + dirty),
        ("changes not committed", lines("git.changes")),
        ("why the revision is not known", t("git.note")),
        ("revision at the end", fill(env, "<code>{git_at_end.revision}</code>")),
        ("changed during the run", changed),
        ("reference sweep (<code>--reference</code>)", t("reference")),
        ("command", format!("<code>{}</code> (in <code>{}</code>)", command.join(" "), t("cwd"))),
        ("binaries", binaries.join("<br>")),
        ("binaries rebuilt during the sweep", lines("binaries_changed")),
        ("versions", fill(env, "{versions.loadgen}<br>{versions.servers}<br>{versions.rustc}")),
        ("machine", fill(env, "{machine.kernel}, {machine.cpu_model} ({machine.cores} CPUs), host {machine.hostname}")),
        (
            "pinning",
            fill(
                env,
                "server on CPUs {pinning.server_cpus}, load generator on CPUs {pinning.loadgen_cpus} ({pinning.how})",
            ),
        ),
        ("server CPU budget", budget),
        ("floors", floor),
        ("skipped", lines("skipped")),
        ("models", t("models")),
        ("levels (connections)", t("levels")),
        ("passes (<code>--repeat</code>)", t("repeats")),
        ("warm-up, window (s)", fill(env, "{warmup_s}, {duration_s}")),
        ("COMPUTE (<code>cpu-work</code>)", fill(env, "{compute.source}: {compute.us_per_request} µs per request")),
        ("started, finished (UTC)", fill(env, "{started}, {finished}")),
        ("elapsed (s)", t("elapsed_s")),
        ("interrupted", t("interrupted")),
        (
            "runs",
            fill(
                env,
                "{runs_planned} planned, {runs_done} done, {runs_failed} failed, {runs_skipped} not run past a knee",
            ),
        ),
    ];
    out.push_str("<table class=\"env\">\n");
    for (label, value) in rows {
        out.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>\n"));
    }
    out.push_str("</table>\n</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_is_shown_escaped_and_a_missing_one_as_a_dash() {
        let env = serde_json::json!({
            "command": ["loadgen", "sweep", "--out", "x<y"],
            "git": {"revision": "abc123", "dirty": true, "changes": [" M loadgen/src/a.rs", "?? b&c"]},
            "changed_during_run": false,
            "reference": false,
            "binaries": [
                {"role": "loadgen", "path": "/bin/loadgen", "sha256": "f00d", "bytes": 3},
                {"role": "servers", "path": "/bin/servers", "sha256": null, "error": "gone"}
            ],
            "pinning": {"server_cpus": [0], "loadgen_cpus": [1, 2], "how": "default"},
            "machine": {"kernel": "Linux 6.1", "cores": 4},
            "skipped": ["libevent: not built"],
            "server_cpu_budget": {"cpus": 1.5, "period_us": 100000, "cgroup_version": "v2", "cgroup_parent": "/sys/fs/cgroup/x", "admin_outside": true},
            "started": "2026-12-06T08:02:36Z",
            "scenarios": [
                {"name": "echo-saturate", "server_cpu_budget": null},
                {"name": "knee-budget", "server_cpu_budget": {"cpus": 1.5, "period_us": 100000}},
                {"name": "knee"}
            ],
        });
        let html = section(Some(&env), None);
        for want in [
            "<code>abc123</code> <strong>(dirty",
            " M loadgen/src/a.rs<br>?? b&amp;c",
            "<code>loadgen sweep --out x&lt;y</code>",
            "loadgen: <code>/bin/loadgen</code>, sha256 <code>f00d</code>",
            "servers: <code>/bin/servers</code>, not hashed: gone",
            "server on CPUs 0, load generator on CPUs 1, 2 (default)",
            "1.5 CPUs per 100000 µs period (cgroup v2",
            "; only knee-budget ran under it, not echo-saturate, knee",
            "libevent: not built",
            "<code>--no-floor</code>",
            "<th>changed during the run</th><td>no</td>",
            "2026-12-06T08:02:36Z, —",
        ] {
            assert!(html.contains(want), "no {want:?} in {html}");
        }
        assert!(!html.contains("x<y"), "unescaped");
        let mut every = env.clone();
        every["scenarios"] = serde_json::json!([{"name": "knee", "server_cpu_budget": {"cpus": 1.5}}]);
        assert!(section(Some(&every), None).contains("; every scenario ran under it"));
        every.as_object_mut().unwrap().remove("scenarios");
        assert!(section(Some(&every), None).contains("STATS outside the budget: yes)</td>"), "no scenarios listed");
        every["scenarios"] = serde_json::json!([{"name": "knee"}]);
        let older = section(Some(&every), None);
        assert!(older.contains("STATS outside the budget: yes)</td>"), "before scenarios had budgets: {older}");
        assert!(section(None, None).contains("no <code>env.json</code>"));
    }
}

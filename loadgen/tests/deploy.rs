//! deploy/: the container build and the Kubernetes files, checked as far as
//! a machine without a cluster can: every document parses and has the
//! fields its kind requires; the load generators are an Indexed Job whose
//! completions, parallelism and the merge's inputs agree; every pod gets the
//! start time and its own tag; every container runs the one image, by the
//! workspace's version; every pod meets the "restricted" Pod Security
//! Standard and every Job is bounded in time; only the load generators may
//! reach the server; the Dockerfile's bases are pinned, its user is the
//! pods' and it installs exactly the libraries the binaries link; the flags
//! the files give the binaries are flags the binaries take; every manifest
//! validates against the Kubernetes API's schemas (`kubernetes-validate`,
//! which ships them: offline) in strict mode; and, where kubectl is
//! installed, `kubectl kustomize` renders them.
//!
//! Not checked here: the image build (no container daemon), and what a real
//! cluster's admission and network plugin do with the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every YAML document of a file, as JSON values (YAML's data model is
/// JSON's for these files: maps, lists, strings, numbers and booleans).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(text: &str) -> Result<Vec<Value>, serde_saphyr::Error> {
    serde_saphyr::from_multiple(text)
}

/// Every resource the kustomization lists, in order.
fn resources() -> Vec<Value> {
    let kustomization = &documents(&deploy().join("k8s/kustomization.yaml"))[0];
    let files = kustomization["resources"].as_array().expect("kustomization lists resources");
    files.iter().flat_map(|f| documents(&deploy().join("k8s").join(f.as_str().unwrap()))).collect()
}

fn find<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
    all.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|s| s.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// The image every pod runs: the one deploy/Dockerfile builds, tagged with
/// the workspace's version (a versioned tag, so that a node that has it
/// never pulls it).
fn image() -> String {
    format!("iomodels:{}", env!("CARGO_PKG_VERSION"))
}

/// Every workload (a kind with a pod template), with its pod spec.
fn pods(all: &[Value]) -> Vec<(String, &Value)> {
    all.iter()
        .filter(|d| d["spec"]["template"]["spec"].is_object())
        .map(|d| {
            (
                format!("{} {}", d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap()),
                &d["spec"]["template"]["spec"],
            )
        })
        .collect()
}

/// Every container of every pod, init containers included.
fn containers(all: &[Value]) -> Vec<&Value> {
    pods(all)
        .into_iter()
        .flat_map(|(_, pod)| ["initContainers", "containers"].map(|k| &pod[k]))
        .filter_map(Value::as_array)
        .flatten()
        .collect()
}

/// The one container of a pod template.
fn container(workload: &Value) -> &Value {
    let c = &workload["spec"]["template"]["spec"]["containers"];
    assert_eq!(c.as_array().map(Vec::len), Some(1), "one container: {c:?}");
    &c[0]
}

fn env_named<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["env"].as_array().and_then(|e| e.iter().find(|v| v["name"] == name)).unwrap_or_else(|| panic!("no env {name}"))
}

/// What follows `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    &args[i + 1]
}

#[test]
fn every_document_has_its_kinds_fields() {
    let all = resources();
    assert_eq!(all.len(), 6, "Deployment, Service, NetworkPolicy, PVC and two Jobs");
    for d in &all {
        let (api, kind) = (d["apiVersion"].as_str(), d["kind"].as_str());
        let want = match kind {
            Some("Deployment") => "apps/v1",
            Some("Job") => "batch/v1",
            Some("Service") | Some("PersistentVolumeClaim") => "v1",
            Some("NetworkPolicy") => "networking.k8s.io/v1",
            other => panic!("unexpected kind {other:?}"),
        };
        assert_eq!(api, Some(want), "{kind:?}");
        assert!(d["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{d:?}");
        assert!(d["spec"].is_object(), "{kind:?} has a spec");
        if matches!(kind, Some("Deployment") | Some("Job")) {
            let pod = &d["spec"]["template"]["spec"];
            assert!(pod["containers"].is_array(), "{kind:?}: a pod template");
            if kind == Some("Job") {
                assert_eq!(pod["restartPolicy"], "Never", "a Job's pods never restart");
            }
        }
    }
}

#[test]
fn the_load_generators_are_an_indexed_job_that_starts_together_and_merges_every_index() {
    let all = resources();
    let job = find(&all, "Job", "iomodels-loadgen");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "completions == parallelism: all run at once");
    assert!(n >= 2);
    let c = container(job);
    let args = strings(&c["args"]);
    assert_eq!(args[0], "run");
    assert_eq!(after(&args, "--start-at"), "$(START_AT)");
    let start = &env_named(c, "START_AT")["valueFrom"]["configMapKeyRef"];
    assert_eq!((start["name"].as_str(), start["key"].as_str()), (Some("iomodels-start"), Some("start-at")));
    assert_eq!(
        env_named(c, "INDEX")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    assert_eq!(after(&args, "--tag"), "lg$(INDEX)");
    assert_eq!(after(&args, "--json"), "/results/lg$(INDEX).json");
    assert_eq!(after(&args, "--hlog"), "/results/lg$(INDEX).hlog", "merge --hlog reads it beside the JSON");
    assert_eq!(after(&args, "--target"), "$(TARGET)");
    assert_eq!(env_named(c, "TARGET")["value"], "$(IOMODELS_SERVER_SERVICE_HOST):7000");

    let merge = container(find(&all, "Job", "iomodels-merge"));
    let margs = strings(&merge["args"]);
    assert_eq!((margs[0].as_str(), margs[1].as_str()), ("merge", "/results/all.json"));
    let inputs: Vec<&String> = margs[2..].iter().take_while(|a| !a.starts_with("--")).collect();
    let want: Vec<String> = (0..n).map(|i| format!("/results/lg{i}.json")).collect();
    assert_eq!(inputs, want.iter().collect::<Vec<_>>(), "the merge reads every index, and only those");

    // Both Jobs share the results volume, the claim deploy/ makes.
    let claim = find(&all, "PersistentVolumeClaim", "iomodels-results");
    assert_eq!(strings(&claim["spec"]["accessModes"]), ["ReadWriteMany"]);
    for j in ["iomodels-loadgen", "iomodels-merge"] {
        let pod = &find(&all, "Job", j)["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "iomodels-results", "{j}");
        assert_eq!(container(find(&all, "Job", j))["volumeMounts"][0]["mountPath"], "/results", "{j}");
    }
}

#[test]
fn the_server_is_reached_through_its_service() {
    let all = resources();
    let deployment = find(&all, "Deployment", "iomodels-server");
    let service = find(&all, "Service", "iomodels-server");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the Service selects the server's pods");
    }
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], &service["spec"]["selector"]);
    let c = container(deployment);
    let args = strings(&c["args"]);
    assert!(loadgen::models::known(&args[0]).is_some(), "{} is a model", args[0]);
    for (flag, port_name, port) in [("--addr", "data", 7000), ("--admin", "admin", 7001)] {
        assert_eq!(after(&args, flag), format!("0.0.0.0:{port}"));
        let declared = c["ports"].as_array().unwrap().iter().find(|p| p["name"] == port_name).unwrap();
        assert_eq!(declared["containerPort"].as_u64(), Some(port));
        let served = service["spec"]["ports"].as_array().unwrap().iter().find(|p| p["name"] == port_name).unwrap();
        assert_eq!((served["port"].as_u64(), served["targetPort"].as_str()), (Some(port), Some(port_name)));
    }
}

#[test]
fn every_container_runs_the_one_image_built_by_the_dockerfile() {
    let all = resources();
    let images: BTreeSet<&str> = all
        .iter()
        .filter_map(|d| d["spec"]["template"]["spec"]["containers"].as_array())
        .flatten()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, BTreeSet::from([image().as_str()]), "one image, tagged with the workspace's version");
    for c in containers(&all) {
        // With a versioned tag Kubernetes' default is already IfNotPresent
        // (with `latest` it is Always, which would refuse an image loaded
        // into the nodes by hand); said outright all the same.
        assert_eq!(c["imagePullPolicy"], "IfNotPresent", "{}", c["name"]);
    }
    let kustomization = &documents(&deploy().join("k8s/kustomization.yaml"))[0];
    assert_eq!(kustomization["images"][0]["name"], "iomodels", "the kustomization renames that image");
    assert_eq!(kustomization["images"][0]["newTag"], env!("CARGO_PKG_VERSION"), "and keeps its tag");

    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let froms = dockerfile.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(froms, 2, "a multi-stage build");
    assert!(dockerfile.contains("-p servers -p loadgen"), "builds both binaries");
    assert!(
        dockerfile.contains(&format!("-t {}", image())),
        "the build command in its header tags the image the files name"
    );
    let copy = dockerfile.lines().find(|l| l.starts_with("COPY --from=build")).expect("the run stage copies them");
    assert!(copy.contains("servers") && copy.contains("loadgen") && copy.ends_with("/usr/local/bin/"), "{copy}");
    for c in all.iter().filter_map(|d| d["spec"]["template"]["spec"]["containers"].as_array()).flatten() {
        let command = strings(&c["command"]);
        assert!(["servers", "loadgen"].contains(&command[0].as_str()), "{command:?}: a binary of the image");
    }
}

/// Every flag the files give a binary is one that binary takes.
#[test]
fn the_flags_in_the_files_are_the_binaries_flags() {
    let all = resources();
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_loadgen")).args(args).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for (job, sub) in [("iomodels-loadgen", "run"), ("iomodels-merge", "merge")] {
        let text = help(&[sub]);
        for flag in strings(&container(find(&all, "Job", job))["args"]).iter().filter(|a| a.starts_with('-')) {
            assert!(takes(&text, flag), "loadgen {sub} has no {flag}:\n{text}");
        }
    }
    let server = strings(&container(find(&all, "Deployment", "iomodels-server"))["args"]);
    let out = Command::new(testkit::servers_bin()).args([&server[0], "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in server.iter().filter(|a| a.starts_with('-')) {
        assert!(takes(&text, flag), "servers {} has no {flag}:\n{text}", server[0]);
    }
}

/// Whether a `--help` text lists `flag` (as `-c, --connections <N>`).
fn takes(help: &str, flag: &str) -> bool {
    help.split(|c: char| c.is_whitespace() || c == ',').any(|word| word == flag)
}

#[test]
fn kubectl_renders_the_kustomization_where_installed() {
    let Ok(out) = Command::new("kubectl").arg("kustomize").arg(deploy().join("k8s")).output() else {
        eprintln!("kubectl_renders_the_kustomization_where_installed: skipped: no kubectl on this machine");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rendered = yaml(&text).expect("kubectl kustomize's output parses");
    assert_eq!(rendered.len(), resources().len());
    for d in rendered.iter().filter_map(|d| d["spec"]["template"]["spec"]["containers"].as_array()).flatten() {
        assert_eq!(d["image"], image(), "the kustomization's image tag is applied");
    }
}

/// The uid and gid of the Dockerfile's `USER uid:gid`: numeric, since
/// Kubernetes checks runAsNonRoot against a number, not a name.
fn image_user() -> (u64, u64) {
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let users: Vec<&str> = dockerfile.lines().filter_map(|l| l.strip_prefix("USER ")).collect();
    assert_eq!(users.len(), 1, "one USER line, in the run stage: {users:?}");
    let (uid, gid) = users[0].trim().split_once(':').expect("USER uid:gid");
    let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("USER {}: numeric, not a name", users[0]));
    (number(uid), number(gid))
}

/// The "restricted" Pod Security Standard, field by field, on every pod
/// (Kubernetes' own list: kubernetes.io/docs/concepts/security/pod-security-standards),
/// plus what an admin asks beyond it: no service-account token, bounded
/// resources, and the image's user so that the results volume is writable.
#[test]
fn every_pod_meets_the_restricted_pod_security_standard() {
    let all = resources();
    let (uid, gid) = image_user();
    assert_ne!(uid, 0, "the image's user is not root");
    let pod_list = pods(&all);
    assert_eq!(pod_list.len(), 3, "the server, the load generators, the merge");
    for (name, pod) in pod_list {
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}: no service-account token (it talks to no API)");
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod[host].is_null() || pod[host] == false, "{name}: {host}");
        }
        let sc = &pod["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{name}: runAsNonRoot");
        assert_eq!(sc["runAsUser"].as_u64(), Some(uid), "{name}: runs as the image's user");
        assert_eq!(sc["runAsGroup"].as_u64(), Some(gid), "{name}: and its group");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}: seccomp");

        // Volume types the standard allows; a claim must be writable by the
        // pod's user, which fsGroup gives it (the volume's files take that
        // group); scratch goes to an emptyDir, the root being read-only.
        let allowed = [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ];
        let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
        for v in &volumes {
            let kind: Vec<&String> = v.as_object().unwrap().keys().filter(|k| *k != "name").collect();
            assert!(kind.len() == 1 && allowed.contains(&kind[0].as_str()), "{name}: volume {v}");
            if !v["persistentVolumeClaim"].is_null() {
                assert_eq!(
                    sc["fsGroup"].as_u64(),
                    Some(gid),
                    "{name}: fsGroup makes the claim writable by the image's user"
                );
            }
        }
        let tmp = volumes.iter().find(|v| v["name"] == "tmp").unwrap_or_else(|| panic!("{name}: a tmp volume"));
        assert!(tmp["emptyDir"].is_object(), "{name}: /tmp is an emptyDir");

        for k in ["initContainers", "containers"] {
            for c in pod[k].as_array().into_iter().flatten() {
                let what = format!("{name}, container {}", c["name"]);
                let csc = &c["securityContext"];
                assert_eq!(csc["allowPrivilegeEscalation"], false, "{what}: allowPrivilegeEscalation");
                assert_eq!(csc["readOnlyRootFilesystem"], true, "{what}: readOnlyRootFilesystem");
                assert_eq!(csc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{what}: drop ALL capabilities");
                assert!(csc["capabilities"]["add"].is_null(), "{what}: adds no capability");
                assert!(csc["privileged"].is_null() || csc["privileged"] == false, "{what}: privileged");
                assert!(csc["runAsUser"].is_null() || csc["runAsUser"] != 0, "{what}: runAsUser 0");
                assert!(csc["seccompProfile"].is_null(), "{what}: the pod's seccomp profile, not its own");
                let r = &c["resources"];
                for (bound, res) in
                    [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")]
                {
                    assert!(!r[bound][res].is_null(), "{what}: resources.{bound}.{res}");
                }
                let mounts: BTreeMap<&str, &str> = c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| (m["mountPath"].as_str().unwrap(), m["name"].as_str().unwrap()))
                    .collect();
                assert_eq!(mounts.get("/tmp"), Some(&"tmp"), "{what}: /tmp is the scratch emptyDir");
            }
        }
    }
}

/// "1m30s"-style durations as loadgen takes them, whole seconds.
fn seconds(text: &str) -> u64 {
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {text}"));
    match unit {
        "s" | "" => n,
        "m" => n * 60,
        other => panic!("duration {text}: unit {other}"),
    }
}

/// Every Job ends: a deadline after which its pods are stopped, and a time
/// after which the finished Job is removed; the load generators' deadline
/// leaves room for the start time, the warm-up and the run.
#[test]
fn every_job_has_a_deadline_and_is_cleaned_up() {
    let all = resources();
    let jobs: Vec<&Value> = all.iter().filter(|d| d["kind"] == "Job").collect();
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        let name = &j["metadata"]["name"];
        let deadline =
            j["spec"]["activeDeadlineSeconds"].as_u64().unwrap_or_else(|| panic!("{name}: activeDeadlineSeconds"));
        let ttl =
            j["spec"]["ttlSecondsAfterFinished"].as_u64().unwrap_or_else(|| panic!("{name}: ttlSecondsAfterFinished"));
        assert!(deadline > 0);
        // Long enough to `kubectl wait` for it, run the merge and read its log.
        assert!(ttl >= 600, "{name}: ttlSecondsAfterFinished {ttl}");
    }
    let job = find(&all, "Job", "iomodels-loadgen");
    let args = strings(&container(job)["args"]);
    let run = seconds(after(&args, "--warmup")) + seconds(after(&args, "--duration"));
    // README.md's start is 120 s ahead of the ConfigMap's creation.
    let deadline = job["spec"]["activeDeadlineSeconds"].as_u64().unwrap();
    assert!(
        deadline >= 120 + run + 60,
        "deadline {deadline} s leaves the start, the {run} s run and a minute to connect"
    );
}

/// The server is ready once its admin port answers, and only the load
/// generators' pods may connect to it.
#[test]
fn only_the_load_generators_reach_the_server_and_its_readiness_is_on_the_admin_port() {
    let all = resources();
    let server = find(&all, "Deployment", "iomodels-server");
    let probe = &container(server)["readinessProbe"];
    assert_eq!(
        probe["tcpSocket"]["port"], "admin",
        "the readiness probe connects to the admin port: a probe on the data port would be one of the model's clients"
    );

    let policy = find(&all, "NetworkPolicy", "iomodels-server");
    let spec = &policy["spec"];
    let labels = |d: &Value| d["spec"]["template"]["metadata"]["labels"].as_object().unwrap().clone();
    let selects = |selector: &Value, pod: &serde_json::Map<String, Value>| {
        assert!(selector["matchExpressions"].is_null(), "matchLabels only, read here");
        selector["matchLabels"].as_object().unwrap().iter().all(|(k, v)| pod.get(k) == Some(v))
    };
    assert!(selects(&spec["podSelector"], &labels(server)), "the policy is the server's");
    assert_eq!(strings(&spec["policyTypes"]), ["Ingress"]);
    let rules = spec["ingress"].as_array().expect("ingress rules");
    assert_eq!(rules.len(), 1, "one rule: {rules:?}");
    let from = rules[0]["from"].as_array().expect("a rule with sources (none would admit everyone)");
    assert_eq!(from.len(), 1, "{from:?}");
    assert!(from[0]["namespaceSelector"].is_null() && from[0]["ipBlock"].is_null(), "pods of this namespace only");
    let admitted = |d: &Value| selects(&from[0]["podSelector"], &labels(d));
    assert!(admitted(find(&all, "Job", "iomodels-loadgen")), "the load generators are admitted");
    assert!(!admitted(find(&all, "Job", "iomodels-merge")), "the merge is not");
    assert!(!admitted(server), "nor the server itself");
    let ports: BTreeSet<(&str, &str)> = rules[0]["ports"]
        .as_array()
        .expect("ports named: no other port is open")
        .iter()
        .map(|p| (p["protocol"].as_str().unwrap(), p["port"].as_str().unwrap()))
        .collect();
    assert_eq!(ports, BTreeSet::from([("TCP", "admin"), ("TCP", "data")]));
}

/// What the Dockerfile's runtime stage installs, for the binaries' shared
/// libraries: the base image (debian slim) has libc, libm and libgcc_s.
const IN_THE_BASE: [&str; 7] = [
    "linux-vdso.so.1",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "libpthread.so.0",
    "libdl.so.2",
];
const RUNTIME_PACKAGES: [(&str, &str); 1] = [("libevent-2.1.so.7", "libevent-2.1-7")];

/// The Dockerfile: both bases pinned by version, a numeric non-root user,
/// and a runtime stage that installs the packages of the libraries the
/// binaries link, and nothing else.
#[test]
fn the_dockerfile_pins_its_bases_runs_as_non_root_and_installs_only_what_the_binaries_link() {
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = dockerfile.lines().filter_map(|l| l.strip_prefix("FROM ")).collect();
    let (build, run) = (froms[0], froms[1]);
    // rust:1.95.0-bookworm: a full Rust version and a Debian release.
    let rust = build.strip_prefix("rust:").and_then(|t| t.split_once(' ')).map(|(t, _)| t).expect(build);
    let (version, suite) = rust.split_once('-').expect(build);
    assert_eq!(
        version.split('.').filter(|n| n.parse::<u32>().is_ok()).count(),
        3,
        "{build}: the builder pinned to x.y.z"
    );
    assert_eq!(suite, "bookworm", "{build}: the runtime's Debian, so that the binaries find the same libraries");
    // debian:12.12-slim: a point release, not a moving tag.
    let debian = run.strip_prefix("debian:").and_then(|t| t.split_once(' ')).map(|(t, _)| t).expect(run);
    let point = debian.strip_suffix("-slim").expect(run);
    let parts: Vec<&str> = point.split('.').collect();
    assert!(parts.len() == 2 && parts[0] == "12" && parts[1].parse::<u32>().is_ok(), "{run}: Debian 12.N");

    let (uid, _) = image_user();
    assert!(uid >= 1000, "USER {uid}: not root nor a system account");
    let user_line = dockerfile.lines().position(|l| l.starts_with("USER ")).unwrap();
    let run_stage = dockerfile.lines().position(|l| l.starts_with("FROM debian")).unwrap();
    assert!(user_line > run_stage, "USER in the run stage");

    // The run stage's one apt-get install line and its packages.
    let run_text: String = dockerfile.lines().skip(run_stage).collect::<Vec<_>>().join("\n");
    let installs: Vec<&str> = run_text.split("apt-get install").skip(1).collect();
    assert_eq!(installs.len(), 1, "one install in the run stage");
    let installed: BTreeSet<&str> = installs[0]
        .split("&&")
        .next()
        .unwrap()
        .split_whitespace()
        .filter(|w| !w.starts_with('-') && *w != "\\")
        .collect();
    let wanted: BTreeSet<&str> = RUNTIME_PACKAGES.iter().map(|(_, p)| *p).collect();
    assert_eq!(installed, wanted, "the run stage installs the binaries' libraries' packages, nothing else");

    // And those are the libraries the binaries link, where ldd can say so.
    for bin in [PathBuf::from(env!("CARGO_BIN_EXE_loadgen")), testkit::servers_bin()] {
        let Ok(out) = Command::new("ldd").arg(&bin).output() else {
            eprintln!("the_dockerfile_pins_its_bases_runs_as_non_root_and_installs_only_what_the_binaries_link: the linked-library check skipped: no ldd on this machine");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        for lib in text.lines().filter_map(|l| l.split_whitespace().next()) {
            let lib = lib.rsplit('/').next().unwrap();
            assert!(
                IN_THE_BASE.contains(&lib) || RUNTIME_PACKAGES.iter().any(|(so, _)| *so == lib),
                "{} links {lib}: neither in the base image nor installed by the Dockerfile",
                bin.display()
            );
        }
    }
}

/// kubernetes-validate: installed by scripts/install-deps in a virtual
/// environment under target/, or anywhere on PATH.
fn kubernetes_validate() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kubernetes-validate/bin/kubernetes-validate");
    if venv.is_file() {
        return Some(venv);
    }
    let on_path = PathBuf::from("kubernetes-validate");
    Command::new(&on_path).arg("--version").output().ok().filter(|o| o.status.success()).map(|_| on_path)
}

/// The Kubernetes release the manifests are checked against: the oldest
/// still widely run when they were written. kubernetes-validate ships its
/// schemas (no download), strict: an unknown field is an error.
const KUBERNETES: &str = "1.30";

fn validate(tool: &Path, files: &[PathBuf]) -> std::process::Output {
    Command::new(tool)
        .args(["--strict", "--kubernetes-version", KUBERNETES])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", tool.display()))
}

#[test]
fn every_manifest_validates_against_the_kubernetes_api_schemas() {
    let Some(tool) = kubernetes_validate() else {
        eprintln!(
            "every_manifest_validates_against_the_kubernetes_api_schemas: skipped: kubernetes-validate is not \
             installed (scripts/install-deps installs it; it needs python3 and its venv module)"
        );
        return;
    };
    let k8s = deploy().join("k8s");
    let kustomization = &documents(&k8s.join("kustomization.yaml"))[0];
    let files: Vec<PathBuf> =
        kustomization["resources"].as_array().unwrap().iter().map(|f| k8s.join(f.as_str().unwrap())).collect();
    let out = validate(&tool, &files);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate --strict -k {KUBERNETES}:\n{text}");
    // One "passed" line per resource: none was passed over unchecked (a
    // kind without a schema is only a warning).
    assert_eq!(text.matches(" passed ").count(), resources().len(), "{text}");

    // The same check refuses a manifest with a field the API does not have:
    // what makes a pass above mean something.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let pvc = std::fs::read_to_string(k8s.join("results-pvc.yaml")).unwrap();
    std::fs::write(&bad, pvc.replace("  accessModes:", "  accessMode: [\"ReadWriteMany\"]\n  accessModes:")).unwrap();
    let out = validate(&tool, &[bad]);
    assert!(
        !out.status.success(),
        "an unknown field is refused in strict mode: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

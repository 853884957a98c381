//! deploy/: the container build and the Kubernetes files, checked as far as
//! a machine without a cluster can: every document parses and has the
//! fields its kind requires; the load generators are an Indexed Job whose
//! completions, parallelism and the merge's inputs agree; every pod gets the
//! start time and its own tag; every container runs the one image; the
//! flags the files give the binaries are flags the binaries take; and, where
//! kubectl is installed, `kubectl kustomize` renders them.
//!
//! Not checked here: the Kubernetes API's own schemas (kubeconform and
//! `kubectl --dry-run` need them downloaded or a cluster to ask) and the
//! image build (no container daemon).

use std::collections::BTreeSet;
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
    assert_eq!(all.len(), 5, "Deployment, Service, PVC and two Jobs");
    for d in &all {
        let (api, kind) = (d["apiVersion"].as_str(), d["kind"].as_str());
        let want = match kind {
            Some("Deployment") => "apps/v1",
            Some("Job") => "batch/v1",
            Some("Service") | Some("PersistentVolumeClaim") => "v1",
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
    assert_eq!(images, BTreeSet::from(["iomodels:latest"]), "one image");
    let kustomization = &documents(&deploy().join("k8s/kustomization.yaml"))[0];
    assert_eq!(kustomization["images"][0]["name"], "iomodels", "the kustomization renames that image");

    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let froms = dockerfile.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(froms, 2, "a multi-stage build");
    assert!(dockerfile.contains("-p servers -p loadgen"), "builds both binaries");
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
    let Ok(out) = Command::new("kubectl").args(["kustomize"]).arg(deploy().join("k8s")).output() else {
        eprintln!("kubectl_renders_the_kustomization_where_installed: skipped: no kubectl on this machine");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rendered = yaml(&text).expect("kubectl kustomize's output parses");
    assert_eq!(rendered.len(), resources().len());
    for d in rendered.iter().filter_map(|d| d["spec"]["template"]["spec"]["containers"].as_array()).flatten() {
        assert_eq!(d["image"], "iomodels:latest", "the kustomization's image tag is applied");
    }
}

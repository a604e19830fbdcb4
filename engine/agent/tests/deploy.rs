//! The deployment files under `deploy/`: every manifest parses, and the fields that make a
//! deployment work or fail agree with each other and with the pipelines they carry (config
//! path and ConfigMap, admin port and probes, data_dir and its volume, grace period and
//! shutdown_timeout, read-only log mounts, securityContext, resources). Each ConfigMap's
//! pipeline passes `weir check` (`weir check --exec` for the `weir run --exec` ones, whose
//! input is implied). Every document of a Kubernetes kind is validated against Kubernetes' own
//! schemas (unknown keys are errors): the models of the official Kubernetes Python client,
//! generated from Kubernetes' OpenAPI spec (tests/support/k8s_validate.py; the package is
//! installed by scripts/install-otel-python.sh), which also check the SidecarSet's containers
//! and volumes as Kubernetes' Container and Volume. The SidecarSet's own fields are validated
//! against the `openAPIV3Schema` of OpenKruise's CRD (testdata/deploy/kruise). The
//! Dockerfiles' key lines are checked too (Docker itself is not needed).

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

const MANIFESTS: &[&str] = &[
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/daemonset.yaml",
    "deploy/kubernetes/job-sidecar.yaml",
    "deploy/kubernetes/job-native-sidecar.yaml",
    "deploy/kubernetes/sidecarset.yaml",
    "deploy/kubernetes/job-same-container.yaml",
];

/// Every document of a multi-document YAML file.
fn documents(rel: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(!docs.is_empty(), "{rel} has no documents");
    for d in &docs {
        assert!(d["apiVersion"].is_string(), "{rel}: a document without apiVersion: {d}");
        assert!(d["kind"].is_string(), "{rel}: a document without kind: {d}");
        assert!(
            d["metadata"]["name"].is_string(),
            "{rel}: a document without a name: {d}"
        );
    }
    docs
}

fn all_documents() -> Vec<(String, Value)> {
    MANIFESTS
        .iter()
        .flat_map(|m| documents(m).into_iter().map(|d| (m.to_string(), d)))
        .collect()
}

fn of_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|(_, d)| d["kind"] == kind).map(|(_, d)| d).collect()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap()
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The pod spec of a DaemonSet or Job.
fn pod_spec(workload: &Value) -> &Value {
    let spec = &workload["spec"]["template"]["spec"];
    assert!(spec.is_object(), "{} has no pod template", name(workload));
    spec
}

/// Every container of a pod, init containers included.
fn containers(pod: &Value) -> Vec<&Value> {
    list(&pod["initContainers"])
        .iter()
        .chain(list(&pod["containers"]))
        .collect()
}

fn weir_container(pod: &Value) -> &Value {
    containers(pod)
        .into_iter()
        .find(|c| c["name"] == "weir")
        .expect("a container named weir")
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    list(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume named {name}"))
}

/// The mount of `container` at `path`.
fn mount_at<'a>(container: &'a Value, path: &str) -> Option<&'a Value> {
    list(&container["volumeMounts"]).iter().find(|m| m["mountPath"] == path)
}

/// The mount of `container` whose mountPath holds `path` (the longest one).
fn mount_holding<'a>(container: &'a Value, path: &Path) -> Option<&'a Value> {
    list(&container["volumeMounts"])
        .iter()
        .filter(|m| path.starts_with(m["mountPath"].as_str().unwrap()))
        .max_by_key(|m| m["mountPath"].as_str().unwrap().len())
}

fn read_only(mount: &Value) -> bool {
    mount["readOnly"] == true
}

/// The port number an httpGet probe reaches: a number, or a named container port.
fn probe_port(container: &Value, probe: &Value) -> u64 {
    let port = &probe["httpGet"]["port"];
    if let Some(n) = port.as_u64() {
        return n;
    }
    let want = port.as_str().expect("probe port is a number or a name");
    list(&container["ports"])
        .iter()
        .find(|p| p["name"] == want)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("probe port `{want}` names no container port"))
}

/// What `weir run -c PATH` of a container reads.
fn config_path(container: &Value) -> PathBuf {
    let args: Vec<&str> = list(&container["args"]).iter().map(|a| a.as_str().unwrap()).collect();
    assert!(
        container["command"].is_null(),
        "the weir container should keep the image's entrypoint"
    );
    assert_eq!(args.first(), Some(&"run"), "weir container args: {args:?}");
    let i = args.iter().position(|a| *a == "-c" || *a == "--config").expect("-c");
    PathBuf::from(args[i + 1])
}

/// What a ConfigMap-backed file in the container holds: the ConfigMap's key the config path
/// maps to, through its mount (whole ConfigMap, `items`, or `subPath`).
fn mounted_config<'a>(docs: &'a [(String, Value)], pod: &Value, container: &Value, path: &Path) -> (&'a Value, String) {
    let mount = mount_holding(container, path).unwrap_or_else(|| panic!("nothing is mounted at {}", path.display()));
    assert!(read_only(mount), "the config mount should be read-only: {mount}");
    let vol = volume(pod, mount["name"].as_str().unwrap());
    let cm_name = vol["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{} is not a configMap volume", path.display()));
    let cm = of_kind(docs, "ConfigMap")
        .into_iter()
        .find(|c| name(c) == cm_name)
        .unwrap_or_else(|| panic!("no ConfigMap named {cm_name} in deploy/kubernetes"));
    let rel = path
        .strip_prefix(mount["mountPath"].as_str().unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let key = if let Some(sub) = mount["subPath"].as_str() {
        assert!(rel.is_empty(), "subPath mount at a directory");
        sub.to_string()
    } else if let Some(item) = list(&vol["configMap"]["items"])
        .iter()
        .find(|i| i["path"] == rel.as_str())
    {
        item["key"].as_str().unwrap().to_string()
    } else {
        rel
    };
    assert!(
        cm["data"][&key].is_string(),
        "ConfigMap {cm_name} has no key `{key}` for {}",
        path.display()
    );
    (cm, key)
}

/// Runs `weir check` (with `--exec` for a pipeline of `weir run --exec`) on `pipeline`;
/// panics with its output when it fails.
fn weir_check(label: &str, pipeline: &str, exec: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["check", "-c"])
        .arg(&file)
        .args(exec.then_some("--exec"))
        // What the downward API gives the containers (see `assert_env_for`).
        .env("POD_NAME", "pod-0")
        .env("POD_NAMESPACE", "default")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{label}: weir check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the tests need from a pipeline.
#[derive(Debug)]
struct Pipeline {
    admin_port: Option<u64>,
    data_dir: Option<PathBuf>,
    shutdown_secs: f64,
    marker_file: Option<PathBuf>,
    sigterm_drains: bool,
    file_paths: Vec<String>,
    /// A `kubernetes_logs` input asks the API server for pod metadata.
    pod_metadata_api: bool,
}

fn pipeline(label: &str, text: &str) -> Pipeline {
    weir_check(label, text, false);
    let cfg = weir::config::parse(text).unwrap_or_else(|(pos, e)| panic!("{label}:{}:{}: {e}", pos.line, pos.column));
    let file_paths = cfg
        .inputs
        .iter()
        .filter_map(|i| match &i.value {
            weir::config::registry::InputConfig::File(f) => Some(f.paths.value.iter().map(|p| p.value.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    let pod_metadata_api = cfg.inputs.iter().any(|i| match &i.value {
        weir::config::registry::InputConfig::KubernetesLogs(k) => {
            k.metadata.as_ref().is_some_and(|m| m.value.uses_api())
        }
        _ => false,
    });
    Pipeline {
        admin_port: cfg.admin.as_ref().map(|a| {
            let address = &a.value.address.value;
            address.rsplit_once(':').unwrap().1.parse().unwrap()
        }),
        data_dir: cfg.data_dir.as_ref().map(|d| d.value.clone()),
        // config/mod.rs (PipelineConfig::shutdown_timeout): 20s unless set.
        shutdown_secs: cfg.shutdown_timeout.as_ref().map_or(20.0, |d| d.value.0.as_secs_f64()),
        marker_file: cfg
            .exit_when
            .as_ref()
            .and_then(|e| e.value.marker_file.as_ref().map(|m| m.value.clone())),
        sigterm_drains: cfg.exit_when.as_ref().is_some_and(|e| e.value.sigterm),
        file_paths,
        pod_metadata_api,
    }
}

/// The weir container of a workload with its pipeline, checked for what every deployment
/// needs: the config path lands on a ConfigMap key whose pipeline passes `weir check`,
/// data_dir is a writable volume, the grace period covers shutdown_timeout.
fn weir_of<'a>(docs: &'a [(String, Value)], workload: &'a Value) -> (&'a Value, &'a Value, Pipeline) {
    let pod = pod_spec(workload);
    let weir = weir_container(pod);
    let path = config_path(weir);
    let (cm, key) = mounted_config(docs, pod, weir, &path);
    let label = format!("{} (ConfigMap {} key {key})", name(workload), name(cm));
    let p = pipeline(&label, cm["data"][&key].as_str().unwrap());

    let data_dir = p
        .data_dir
        .clone()
        .unwrap_or_else(|| panic!("{label}: set data_dir explicitly"));
    let data =
        mount_at(weir, data_dir.to_str().unwrap()).unwrap_or_else(|| panic!("{label}: data_dir is not a volume"));
    assert!(!read_only(data), "{label}: data_dir must be writable");

    let grace = pod["terminationGracePeriodSeconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("{}: set terminationGracePeriodSeconds", name(workload)));
    assert!(
        grace > p.shutdown_secs,
        "{}: terminationGracePeriodSeconds {grace} must be above shutdown_timeout {}s",
        name(workload),
        p.shutdown_secs
    );
    (pod, weir, p)
}

#[test]
fn every_manifest_parses_and_every_pipeline_passes_check() {
    let docs = all_documents();
    let kinds: Vec<&str> = docs.iter().map(|(_, d)| d["kind"].as_str().unwrap()).collect();
    for kind in ["ServiceAccount", "DaemonSet", "ConfigMap", "Job", "SidecarSet"] {
        assert!(kinds.contains(&kind), "no {kind} in deploy/kubernetes: {kinds:?}");
    }
    // The pipelines of `weir run --exec` have no `inputs:` (the exec input is implied):
    // checked as `weir check --exec`.
    let exec = exec_pipelines(&docs);
    let cms = of_kind(&docs, "ConfigMap");
    for cm in &cms {
        let data = cm["data"].as_object().expect("ConfigMap data");
        for (key, text) in data {
            let is_exec = exec.contains(&(name(cm).to_string(), key.clone()));
            weir_check(
                &format!("ConfigMap {} key {key}", name(cm)),
                text.as_str().unwrap(),
                is_exec,
            );
        }
    }
    // Names are unique per kind, so a reference finds one thing.
    let mut seen = BTreeMap::new();
    for (file, d) in &docs {
        let k = (d["kind"].as_str().unwrap(), name(d));
        assert!(seen.insert(k, file).is_none(), "{k:?} twice");
    }
}

#[test]
fn every_container_is_locked_down_and_bounded() {
    let docs = all_documents();
    let workloads = of_kind(&docs, "DaemonSet").into_iter().chain(of_kind(&docs, "Job"));
    let pod_containers = workloads.flat_map(|w| containers(pod_spec(w)).into_iter().map(move |c| (w, c)));
    // A SidecarSet's containers are added to other pods: the same rules hold for them.
    let sidecars = of_kind(&docs, "SidecarSet")
        .into_iter()
        .flat_map(|s| list(&s["spec"]["containers"]).iter().map(move |c| (s, c)));
    for (w, c) in pod_containers.chain(sidecars) {
        let at = format!("{} container {}", name(w), c["name"]);
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{at}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{at}");
        assert_ne!(sc["privileged"], true, "{at}");
        assert!(
            list(&sc["capabilities"]["drop"]).iter().any(|d| d == "ALL"),
            "{at}: drop ALL capabilities"
        );
        assert!(list(&sc["capabilities"]["add"]).is_empty(), "{at}: adds capabilities");
        for kind in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(!c["resources"][kind][r].is_null(), "{at}: resources.{kind}.{r}");
            }
        }
    }
}

#[test]
fn daemonset_mounts_probes_and_scrape_agree_with_its_pipeline() {
    let docs = all_documents();
    let ds = of_kind(&docs, "DaemonSet");
    assert_eq!(ds.len(), 1);
    let ds = ds[0];
    let (pod, weir, p) = weir_of(&docs, ds);

    // Logs: read-only hostPaths at the same path inside the pod (symlinks resolve).
    for path in ["/var/log/pods", "/var/log/containers", "/var/lib/docker/containers"] {
        let m = mount_at(weir, path).unwrap_or_else(|| panic!("{path} is not mounted"));
        assert!(read_only(m), "{path} must be mounted read-only");
        let v = volume(pod, m["name"].as_str().unwrap());
        assert_eq!(v["hostPath"]["path"], path, "{path} must be the node's {path}");
    }
    // Checkpoints on the node.
    let data_dir = p.data_dir.as_ref().unwrap();
    let m = mount_at(weir, data_dir.to_str().unwrap()).unwrap();
    let v = volume(pod, m["name"].as_str().unwrap());
    assert!(v["hostPath"]["path"].is_string(), "data_dir must be a hostPath: {v}");
    assert_eq!(v["hostPath"]["type"], "DirectoryOrCreate");
    // Nothing else is writable.
    for m in list(&weir["volumeMounts"]) {
        assert!(
            read_only(m) || m["mountPath"] == data_dir.to_str().unwrap(),
            "only data_dir may be writable: {m}"
        );
    }

    // Probes and scraping reach the admin endpoint of the pipeline.
    let admin = p
        .admin_port
        .expect("the DaemonSet pipeline needs admin.address for its probes");
    for probe in ["livenessProbe", "readinessProbe"] {
        let pr = &weir[probe];
        assert_eq!(pr["httpGet"]["path"], "/health", "{probe}");
        assert_eq!(
            probe_port(weir, pr),
            admin,
            "{probe} port vs the pipeline's admin.address"
        );
    }
    let ann = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    assert_eq!(ann["prometheus.io/port"], admin.to_string().as_str());

    // Every node; an existing service account.
    assert!(
        list(&pod["tolerations"])
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null()),
        "tolerate every taint"
    );
    let sa = pod["serviceAccountName"].as_str().expect("serviceAccountName");
    assert!(of_kind(&docs, "ServiceAccount").iter().any(|s| name(s) == sa));

    // `metadata:` (pod labels from the API): the account may get, list and watch pods, its
    // token is mounted, and NODE_NAME names the node whose pods to watch.
    assert!(
        p.pod_metadata_api,
        "the DaemonSet pipeline enriches events with pod metadata"
    );
    assert_ne!(
        pod["automountServiceAccountToken"], false,
        "the API token must be mounted"
    );
    let bound: Vec<&str> = of_kind(&docs, "ClusterRoleBinding")
        .into_iter()
        .filter(|b| {
            list(&b["subjects"]).iter().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == ds["metadata"]["namespace"]
            })
        })
        .map(|b| b["roleRef"]["name"].as_str().unwrap())
        .collect();
    let can = |verb: &str| {
        of_kind(&docs, "ClusterRole")
            .iter()
            .filter(|r| bound.contains(&name(r)))
            .any(|r| {
                list(&r["rules"]).iter().any(|rule| {
                    list(&rule["apiGroups"]).iter().any(|g| g == "")
                        && list(&rule["resources"]).iter().any(|x| x == "pods")
                        && list(&rule["verbs"]).iter().any(|v| v == verb)
                })
            })
    };
    for verb in ["get", "list", "watch"] {
        assert!(can(verb), "the service account {sa} must be allowed to {verb} pods");
    }
    let node_name = list(&weir["env"]).iter().find(|e| e["name"] == "NODE_NAME");
    assert_eq!(
        node_name.map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]),
        Some(&Value::from("spec.nodeName")),
        "NODE_NAME from the downward API"
    );
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
}

#[test]
fn job_sidecar_shares_its_logs_and_marker_with_the_job() {
    let docs = all_documents();
    let job = of_kind(&docs, "Job")
        .into_iter()
        .find(|j| {
            let pod = pod_spec(j);
            list(&pod["initContainers"]).is_empty() && list(&pod["containers"]).iter().any(|c| c["name"] == "weir")
        })
        .expect("a Job with a regular sidecar");
    let (pod, weir, p) = weir_of(&docs, job);
    assert_eq!(
        pod["restartPolicy"], "Never",
        "a retry must be a fresh pod (see the manifest)"
    );
    let main = list(&pod["containers"])
        .iter()
        .find(|c| c["name"] != "weir")
        .expect("the job's container");

    // The same volume at the marker's directory in both; the job can write it.
    let marker = p.marker_file.expect("exit_when.marker_file");
    let shared = |path: &Path| {
        let w = mount_holding(weir, path).unwrap_or_else(|| panic!("weir does not see {}", path.display()));
        let m = mount_holding(main, path).unwrap_or_else(|| panic!("the job does not see {}", path.display()));
        assert_eq!(
            w["name"],
            m["name"],
            "{} is not the same volume in both",
            path.display()
        );
        assert!(!read_only(m), "the job must be able to write {}", path.display());
        assert!(volume(pod, w["name"].as_str().unwrap())["emptyDir"].is_object());
    };
    shared(&marker);
    let script = list(&main["command"])
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect::<String>();
    assert!(
        script.contains(&format!("touch {}", marker.display())),
        "the job must touch the marker: {script}"
    );
    assert!(script.contains("trap"), "the marker should be written on failure too");
    // The files Weir tails are where the job writes.
    assert!(!p.file_paths.is_empty());
    for path in &p.file_paths {
        shared(Path::new(path));
    }
}

#[test]
fn native_sidecar_starts_first_and_drains_on_sigterm() {
    let docs = all_documents();
    let job = of_kind(&docs, "Job")
        .into_iter()
        .find(|j| !list(&pod_spec(j)["initContainers"]).is_empty())
        .expect("a Job with a native sidecar");
    let (pod, weir, p) = weir_of(&docs, job);
    assert_eq!(weir["restartPolicy"], "Always", "a native sidecar");
    assert!(list(&pod["initContainers"]).iter().any(|c| c["name"] == "weir"));
    // Ready before the job starts.
    let admin = p.admin_port.expect("admin.address for the startup probe");
    assert_eq!(weir["startupProbe"]["httpGet"]["path"], "/health");
    assert_eq!(probe_port(weir, &weir["startupProbe"]), admin);
    // exit_when makes SIGTERM read everything before exiting.
    assert!(
        p.sigterm_drains,
        "exit_when: {{ sigterm: true }} makes SIGTERM read everything first"
    );
    let main = list(&pod["containers"]).iter().find(|c| c["name"] != "weir").unwrap();
    for path in &p.file_paths {
        let w = mount_holding(weir, Path::new(path)).unwrap();
        let m = mount_holding(main, Path::new(path)).unwrap();
        assert_eq!(w["name"], m["name"], "{path}");
    }
}

/// The instruction lines of a Dockerfile (`RUN`/`COPY`... with continuations joined), per stage.
fn dockerfile(rel: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for line in read(rel).lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => cur.push_str(head),
            None => {
                cur.push_str(t);
                lines.push(std::mem::take(&mut cur));
            }
        }
    }
    lines
}

fn json_array(instr: &str) -> Vec<String> {
    serde_json::from_str(instr.split_once(' ').unwrap().1.trim()).expect("exec form (JSON array)")
}

#[test]
fn dockerfile_builds_weir_and_runs_the_daemonset_config_as_non_root() {
    let lines = dockerfile("deploy/Dockerfile");
    let froms: Vec<&String> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(froms[0].starts_with("FROM rust:1.95"), "{}", froms[0]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("RUN") && l.contains("cargo build --release -p weir --locked")),
        "the build step"
    );
    // The last stage: what the image is.
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = &lines[last_from..];
    assert!(
        !runtime[0].contains("rust:"),
        "the runtime image is small, not the builder"
    );

    let user = runtime
        .iter()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line in the runtime stage");
    let uid = user[5..].split(':').next().unwrap().trim();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "numeric non-root USER: {user}"
    );

    let entry = runtime
        .iter()
        .rfind(|l| l.starts_with("ENTRYPOINT"))
        .expect("ENTRYPOINT");
    let entry = json_array(entry);
    assert_eq!(entry, ["/usr/local/bin/weir"]);
    assert!(
        runtime
            .iter()
            .any(|l| l.starts_with("COPY") && l.ends_with("/usr/local/bin/weir")),
        "the binary is copied to the ENTRYPOINT path"
    );
    let cmd = json_array(runtime.iter().rfind(|l| l.starts_with("CMD")).expect("CMD"));
    assert_eq!(cmd[..2], ["run", "-c"]);

    // The image's default config path is the one the DaemonSet mounts its ConfigMap at.
    let docs = all_documents();
    let ds = of_kind(&docs, "DaemonSet")[0];
    let weir = weir_container(pod_spec(ds));
    assert_eq!(PathBuf::from(&cmd[2]), config_path(weir));
    let args: Vec<&str> = list(&weir["args"]).iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args, cmd, "the DaemonSet's args repeat the image's CMD");

    // The default config baked into the image is valid and listens where EXPOSE says.
    let baked = pipeline("deploy/pipeline.yaml", &read("deploy/pipeline.yaml"));
    assert!(
        runtime.iter().any(|l| l.starts_with("COPY") && l.ends_with(&cmd[2])),
        "a default pipeline at {}",
        cmd[2]
    );
    let expose = runtime.iter().find(|l| l.starts_with("EXPOSE ")).expect("EXPOSE");
    assert_eq!(Some(expose[7..].trim().parse::<u64>().unwrap()), baked.admin_port);

    let ignore = read(".dockerignore");
    for needed in ["target/", ".git/"] {
        assert!(ignore.lines().any(|l| l.trim() == needed), ".dockerignore: {needed}");
    }
}

/// `${NAME}` references of a pipeline's text, outside comments: (name, has a `:-default`).
fn env_refs(text: &str) -> Vec<(String, bool)> {
    let mut refs = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                rest = &rest[at + 2..];
                continue;
            }
            let end = rest[at..].find('}').expect("an unclosed ${") + at;
            let inner = &rest[at + 2..end];
            let (name, default) = inner.split_once(":-").map_or((inner, false), |(n, _)| (n, true));
            refs.push((name.to_string(), default));
            rest = &rest[end + 1..];
        }
    }
    refs
}

/// The names of a container's `env`.
fn env_names(container: &Value) -> Vec<&str> {
    list(&container["env"])
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

fn env_value<'a>(container: &'a Value, name: &str) -> &'a Value {
    list(&container["env"])
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name} in container {}", container["name"]))
}

/// Every `${NAME}` without a default that the pipeline uses is set in the container.
fn assert_env_for(label: &str, container: &Value, text: &str) {
    let names = env_names(container);
    for (var, has_default) in env_refs(text) {
        assert!(
            has_default || names.contains(&var.as_str()),
            "{label}: the pipeline uses ${{{var}}}, which the container does not set"
        );
    }
}

/// A pipeline duration (`20s`, `500ms`, `2m`) in seconds.
fn seconds(text: &str) -> f64 {
    let (n, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("duration `{text}`"));
    match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => panic!("duration unit in `{text}`"),
    }
}

/// What a container running `weir run -c PATH --exec -- CMD...` reads and runs: (the config
/// path, the child's command line); None for any other container.
fn exec_command(container: &Value) -> Option<(PathBuf, Vec<String>)> {
    let cmd: Vec<String> = list(&container["command"])
        .iter()
        .chain(list(&container["args"]))
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let exec = cmd.iter().position(|a| a == "--exec")?;
    assert_eq!(cmd[..2], ["weir", "run"], "an --exec command: {cmd:?}");
    let c = cmd.iter().position(|a| a == "-c" || a == "--config").expect("-c");
    assert!(c < exec, "-c before --exec: {cmd:?}");
    assert_eq!(cmd[exec + 1], "--", "`--exec --` ends weir's options: {cmd:?}");
    let child = cmd[exec + 2..].to_vec();
    assert!(!child.is_empty(), "a child command after `--`: {cmd:?}");
    Some((PathBuf::from(&cmd[c + 1]), child))
}

/// The workloads' containers that run `weir run --exec`, with their pod spec.
fn exec_containers(docs: &[(String, Value)]) -> Vec<(&Value, &Value, &Value)> {
    let mut found = Vec::new();
    for w in of_kind(docs, "DaemonSet").into_iter().chain(of_kind(docs, "Job")) {
        let pod = pod_spec(w);
        for c in containers(pod) {
            if exec_command(c).is_some() {
                found.push((w, pod, c));
            }
        }
    }
    found
}

/// (ConfigMap, key) of every pipeline a `weir run --exec` container reads.
fn exec_pipelines(docs: &[(String, Value)]) -> Vec<(String, String)> {
    exec_containers(docs)
        .into_iter()
        .map(|(_, pod, c)| {
            let (path, _) = exec_command(c).unwrap();
            let (cm, key) = mounted_config(docs, pod, c, &path);
            (name(cm).to_string(), key)
        })
        .collect()
}

/// The pipelines of `weir run --exec` containers have the shape of a pipeline whose input
/// is implied: no `inputs:`, outputs, typed processors (`weir check --exec` runs on them in
/// `every_manifest_parses_and_every_pipeline_passes_check`).
#[test]
fn exec_pipelines_parse_as_yaml() {
    let docs = all_documents();
    let exec = exec_containers(&docs);
    assert!(!exec.is_empty(), "no `weir run --exec` container in deploy/kubernetes");
    for (w, pod, c) in exec {
        let (path, _) = exec_command(c).unwrap();
        let (cm, key) = mounted_config(&docs, pod, c, &path);
        let label = format!("{} (ConfigMap {} key {key})", name(w), name(cm));
        let text = cm["data"][&key].as_str().unwrap();
        let p: Value = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(p.is_object(), "{label}: a mapping");
        assert!(p.get("inputs").is_none(), "{label}: with --exec the input is implied");
        let outputs = list(&p["outputs"]);
        assert!(!outputs.is_empty(), "{label}: outputs");
        for component in outputs.iter().chain(list(&p["processors"])) {
            assert!(
                component["type"].is_string(),
                "{label}: a component without type: {component}"
            );
        }
        assert!(p["data_dir"].is_string(), "{label}: set data_dir explicitly");
        assert!(
            p["shutdown_timeout"].is_string(),
            "{label}: set shutdown_timeout explicitly"
        );
        seconds(p["shutdown_timeout"].as_str().unwrap());
        assert_env_for(&label, c, text);
    }
}

#[test]
fn same_container_job_runs_the_job_under_weir() {
    let docs = all_documents();
    let exec = exec_containers(&docs);
    let (job, pod, c) = *exec
        .iter()
        .find(|(w, _, _)| w["kind"] == "Job")
        .expect("a Job running `weir run --exec`");
    assert_eq!(pod["restartPolicy"], "Never", "a retry must be a fresh pod");
    // One container: no sidecar, no init container, nothing shared.
    assert_eq!(
        containers(pod).len(),
        1,
        "{}: the job and Weir are one container",
        name(job)
    );
    let (path, child) = exec_command(c).unwrap();
    assert!(child[0].starts_with('/'), "the child is run without a shell: {child:?}");

    let (cm, key) = mounted_config(&docs, pod, c, &path);
    let text = cm["data"][&key].as_str().unwrap();
    let p: Value = serde_saphyr::from_str(text).unwrap();
    let data_dir = p["data_dir"].as_str().unwrap();
    let data = mount_at(c, data_dir).unwrap_or_else(|| panic!("data_dir {data_dir} is not a volume"));
    assert!(!read_only(data), "data_dir must be writable");
    assert!(volume(pod, data["name"].as_str().unwrap())["emptyDir"].is_object());
    let shutdown = seconds(p["shutdown_timeout"].as_str().unwrap());
    let grace = pod["terminationGracePeriodSeconds"]
        .as_f64()
        .expect("set terminationGracePeriodSeconds");
    assert!(
        grace > shutdown,
        "terminationGracePeriodSeconds {grace} must be above shutdown_timeout {shutdown}s"
    );
    // The pod's name and namespace from the downward API, for the pipeline's ${...}.
    for (var, field) in [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")] {
        assert_eq!(env_value(c, var)["valueFrom"]["fieldRef"]["fieldPath"], field, "{var}");
        assert!(
            env_refs(text).iter().any(|(n, _)| n == var),
            "the pipeline uses ${{{var}}}"
        );
    }
    assert_env_for(name(job), c, text);

    // The command is the image's ENTRYPOINT and CMD (deploy/Dockerfile.exec) plus arguments.
    let lines = dockerfile("deploy/Dockerfile.exec");
    let entry = json_array(lines.iter().rfind(|l| l.starts_with("ENTRYPOINT")).unwrap());
    let cmd = json_array(lines.iter().rfind(|l| l.starts_with("CMD")).unwrap());
    let command: Vec<&str> = list(&c["command"]).iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(
        command[..entry.len()],
        entry,
        "the command begins with the image's ENTRYPOINT"
    );
    assert_eq!(command[entry.len()..][..cmd.len()], cmd, "then the image's CMD");
    assert_eq!(PathBuf::from(&entry[3]), path);
}

#[test]
fn dockerfile_exec_puts_weir_in_front_of_the_job() {
    let lines = dockerfile("deploy/Dockerfile.exec");
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("FROM");
    let runtime = &lines[last_from..];
    let entry = json_array(
        runtime
            .iter()
            .rfind(|l| l.starts_with("ENTRYPOINT"))
            .expect("ENTRYPOINT"),
    );
    assert_eq!(
        entry,
        ["weir", "run", "-c", "/etc/weir/pipeline.yaml", "--exec", "--"],
        "exec form, so Weir is PID 1 and the child gets no shell"
    );
    let cmd = json_array(runtime.iter().rfind(|l| l.starts_with("CMD")).expect("CMD"));
    assert_eq!(cmd, ["/app/job"]);
    let copies_to = |dest: &str| runtime.iter().any(|l| l.starts_with("COPY") && l.ends_with(dest));
    // `weir` is found on PATH: distroless sets PATH with /usr/local/bin.
    assert!(copies_to(" /usr/local/bin/weir"), "weir at /usr/local/bin/weir");
    assert!(copies_to(" /app/job"), "the job at /app/job");
    let user = runtime.iter().rfind(|l| l.starts_with("USER ")).expect("USER");
    let uid = user[5..].split(':').next().unwrap().trim();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "numeric non-root USER: {user}"
    );
    // The data_dir of the same-container Job's pipeline is the image's volume.
    let docs = all_documents();
    let (path, _) = exec_containers(&docs)
        .iter()
        .find_map(|(_, _, c)| exec_command(c))
        .unwrap();
    assert_eq!(PathBuf::from(&entry[3]), path);
    assert!(runtime.iter().any(|l| l == "VOLUME [\"/var/lib/weir\"]"));
}

fn sidecarset(docs: &[(String, Value)]) -> &Value {
    let sets = of_kind(docs, "SidecarSet");
    assert_eq!(sets.len(), 1);
    sets[0]
}

#[test]
fn sidecarset_injects_weir_with_liveness_and_no_readiness() {
    let docs = all_documents();
    let set = sidecarset(&docs);
    assert_eq!(set["apiVersion"], "apps.kruise.io/v1alpha1");
    assert_eq!(
        set["spec"]["selector"]["matchLabels"]["weir.dev/inject"], "true",
        "opt-in pods only"
    );
    let spec = &set["spec"];
    let weir = list(&spec["containers"])
        .iter()
        .find(|c| c["name"] == "weir")
        .expect("a container named weir");
    // The SidecarSet's `volumes` are added to the pod: they resolve the mounts.
    let path = config_path(weir);
    let (cm, key) = mounted_config(&docs, spec, weir, &path);
    let label = format!("{} (ConfigMap {} key {key})", name(set), name(cm));
    let text = cm["data"][&key].as_str().unwrap();
    let p = pipeline(&label, text);
    assert_env_for(&label, weir, text);

    // Liveness on the admin endpoint; no readiness probe (see the manifest).
    let admin = p.admin_port.expect("admin.address for the liveness probe");
    assert_eq!(weir["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(probe_port(weir, &weir["livenessProbe"]), admin);
    assert!(
        weir["readinessProbe"].is_null(),
        "a readiness probe turns pods Not Ready while the sidecar is upgraded"
    );
    // Kruise starts it before the app, and stops it when a Job's containers have exited.
    let priority = env_value(weir, "KRUISE_CONTAINER_PRIORITY")["value"]
        .as_str()
        .expect("an env value is a string");
    assert!(priority.parse::<i32>().is_ok_and(|n| n > 0), "priority {priority}");
    assert_eq!(
        env_value(weir, "KRUISE_TERMINATE_SIDECAR_WHEN_JOB_EXIT")["value"],
        "true"
    );
    assert!(
        p.sigterm_drains,
        "exit_when: {{ sigterm: true }} makes Kruise's SIGTERM read everything first"
    );

    // Checkpoints on a writable volume of the pod's lifetime; the logs read-only from an
    // emptyDir the SidecarSet adds for the app to write to.
    let data_dir = p.data_dir.expect("set data_dir explicitly");
    let data = mount_at(weir, data_dir.to_str().unwrap()).expect("data_dir is not a volume");
    assert!(!read_only(data), "data_dir must be writable");
    let v = volume(spec, data["name"].as_str().unwrap());
    assert!(v["emptyDir"].is_object() || v["hostPath"].is_object(), "{v}");
    assert!(!p.file_paths.is_empty());
    for f in &p.file_paths {
        let m = mount_holding(weir, Path::new(f)).unwrap_or_else(|| panic!("weir does not see {f}"));
        assert!(read_only(m), "{f}: the logs are mounted read-only");
        assert!(volume(spec, m["name"].as_str().unwrap())["emptyDir"].is_object(), "{f}");
    }
    // The SidecarSet cannot set the pod's grace period: the pipeline fits Kubernetes'
    // default (30 s).
    assert!(
        p.shutdown_secs < 30.0,
        "shutdown_timeout under the default grace period"
    );
}

/// The schema the API server checks a `SidecarSet` against: the served `v1alpha1` version's
/// `openAPIV3Schema` of Kruise's CRD (testdata/deploy/kruise/SOURCE.md).
fn sidecarset_schema() -> Value {
    let crd: Value = serde_saphyr::from_str(&read("testdata/deploy/kruise/apps.kruise.io_sidecarsets.yaml")).unwrap();
    assert_eq!(crd["spec"]["names"]["kind"], "SidecarSet");
    let version = list(&crd["spec"]["versions"])
        .iter()
        .find(|v| v["name"] == "v1alpha1" && v["served"] == true)
        .expect("a served v1alpha1");
    version["schema"]["openAPIV3Schema"].clone()
}

/// What a structural schema finds wrong with `value`, as the API server's strict field
/// validation would: a wrong `type`, a value outside `enum`, a missing `required` field, and
/// a key that is not in `properties` of an object without `additionalProperties` or
/// `x-kubernetes-preserve-unknown-fields`. `x-kubernetes-int-or-string` takes either.
fn schema_errors(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let here = if at.is_empty() { "." } else { at };
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!("{here}: {value} is neither an integer nor a string"));
        }
        return;
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => panic!("{here}: the validator does not know type {other}"),
        };
        if !ok {
            errors.push(format!("{here}: {value} is not of type {t}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{here}: {value} is not one of {allowed:?}"));
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            schema_errors(items, item, &format!("{at}[{i}]"), errors);
        }
    }
    if let Some(object) = value.as_object() {
        let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
        let additional = &schema["additionalProperties"];
        for (key, v) in object {
            let path = format!("{at}.{key}");
            if let Some(property) = schema["properties"].get(key) {
                schema_errors(property, v, &path, errors);
            } else if additional.is_object() {
                schema_errors(additional, v, &path, errors);
            } else if !(preserve || *additional == true) {
                errors.push(format!("{path}: unknown field"));
            }
        }
        for field in list(&schema["required"]) {
            let field = field.as_str().unwrap();
            if !object.contains_key(field) {
                errors.push(format!("{here}: missing required field {field}"));
            }
        }
    }
}

/// The errors of a SidecarSet document against the CRD. `metadata` is the API server's
/// ObjectMeta, which a CRD's schema does not describe (it only says `type: object`): it is
/// checked as an object and left out.
fn sidecarset_errors(doc: &Value) -> Vec<String> {
    let mut doc = doc.clone();
    assert!(doc["metadata"].is_object());
    doc["metadata"] = Value::Object(Default::default());
    let mut errors = Vec::new();
    schema_errors(&sidecarset_schema(), &doc, "", &mut errors);
    errors
}

#[test]
fn sidecarset_validates_against_the_kruise_crd() {
    let docs = all_documents();
    let errors = sidecarset_errors(sidecarset(&docs));
    assert!(
        errors.is_empty(),
        "deploy/kubernetes/sidecarset.yaml:\n{}",
        errors.join("\n")
    );
}

#[test]
fn crd_validator_rejects_misspelled_keys_and_wrong_types() {
    let docs = all_documents();
    let good = sidecarset(&docs);
    let rejected = |change: &dyn Fn(&mut Value), want: &str| {
        let mut doc = good.clone();
        change(&mut doc);
        let errors = sidecarset_errors(&doc);
        assert!(errors.iter().any(|e| e == want), "expected `{want}`, got {errors:?}");
    };
    rejected(
        &|d| {
            let labels = d["spec"]["selector"]
                .as_object_mut()
                .unwrap()
                .remove("matchLabels")
                .unwrap();
            d["spec"]["selector"]["matchLabel"] = labels;
        },
        ".spec.selector.matchLabel: unknown field",
    );
    rejected(
        &|d| d["spec"]["updateStrategy"]["paused"] = Value::from("yes"),
        ".spec.updateStrategy.paused: \"yes\" is not of type boolean",
    );
    rejected(
        &|d| d["spec"]["revisionHistoryLimit"] = Value::from("10"),
        ".spec.revisionHistoryLimit: \"10\" is not of type integer",
    );
    rejected(
        &|d| d["spec"]["updateStrategy"]["maxUnavailable"] = Value::from(true),
        ".spec.updateStrategy.maxUnavailable: true is neither an integer nor a string",
    );
    rejected(
        &|d| d["spec"]["injectionStrategy"] = serde_json::json!({ "revision": { "policy": "Sometimes" } }),
        ".spec.injectionStrategy.revision.policy: \"Sometimes\" is not one of [String(\"Always\"), String(\"Partial\")]",
    );
    rejected(
        &|d| d["spec"]["updateStrategy"]["scatterStrategy"] = serde_json::json!([{ "key": "zone" }]),
        ".spec.updateStrategy.scatterStrategy[0]: missing required field value",
    );
    // Kruise's own fields of a sidecar container are typed too.
    rejected(
        &|d| d["spec"]["containers"][0]["upgradeStrategy"]["upgradeTyp"] = Value::from("ColdUpgrade"),
        ".spec.containers[0].upgradeStrategy.upgradeTyp: unknown field",
    );
    // And the unchanged document passes, so each error above is the change's.
    assert!(sidecarset_errors(good).is_empty());
}

/// Kruise's published CRD does not embed Kubernetes' Container schema: a sidecar container's
/// schema lists Kruise's own fields and preserves every other one, so a misspelled Kubernetes
/// field passes it. The container (and volume) fields are checked instead against the
/// Kubernetes Python client's V1Container and V1Volume
/// (`kubernetes_schemas_reject_misspelled_keys_and_wrong_types`), which leave out exactly the
/// four Kruise fields pinned here (`KRUISE_CONTAINER_FIELDS` in support/k8s_validate.py). This
/// test pins that down, so that a CRD with the full schema, or with more Kruise fields, is
/// noticed.
#[test]
fn kruise_crd_leaves_container_fields_unchecked() {
    let schema = sidecarset_schema();
    let items = &schema["properties"]["spec"]["properties"]["containers"]["items"];
    assert_eq!(items["x-kubernetes-preserve-unknown-fields"], true);
    let fields: Vec<&String> = items["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["podInjectPolicy", "shareVolumePolicy", "transferEnv", "upgradeStrategy"]
    );
    let docs = all_documents();
    let (_, _, job) = exec_containers(&docs)[0];
    let mut errors = Vec::new();
    schema_errors(items, job, ".job", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut misspelled = sidecarset(&docs).clone();
    misspelled["spec"]["containers"][0]["livenessProbes"] = misspelled["spec"]["containers"][0]["livenessProbe"].take();
    assert!(
        sidecarset_errors(&misspelled).is_empty(),
        "the CRD now checks container fields: validate the containers with it"
    );
}

/// Where scripts/install-otel-python.sh puts the Kubernetes Python client.
fn python_path() -> PathBuf {
    repo().join("target/test-tools/python")
}

/// Runs support/k8s_validate.py on `docs` (label, document): its exit status and stdout.
/// `None` (the test is skipped, or fails under `CI=true`) without the Kubernetes package.
fn k8s_validate(test: &str, docs: &[(String, Value)]) -> Option<(bool, String)> {
    if !python_path().join("kubernetes/client/models").exists() {
        support::skip(
            test,
            &format!(
                "no kubernetes Python package at {} (run scripts/install-otel-python.sh)",
                python_path().display()
            ),
        );
        return None;
    }
    let input: Vec<Value> = docs
        .iter()
        .map(|(source, document)| serde_json::json!({ "source": source, "document": document }))
        .collect();
    let mut child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/k8s_validate.py"))
        .env("PYTHONPATH", python_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the Kubernetes schema check (scripts/test needs python3)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "k8s_validate.py failed: {}\n{stdout}{stderr}",
        out.status
    );
    Some((out.status.success(), stdout))
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let mut index = BTreeMap::new();
    let docs: Vec<(String, Value)> = all_documents()
        .into_iter()
        .map(|(file, d)| {
            let i = index.entry(file.clone()).or_insert(0);
            let label = format!("{file}[{i}] ({} {})", d["kind"].as_str().unwrap(), name(&d));
            *i += 1;
            (label, d)
        })
        .collect();
    let Some((ok, out)) = k8s_validate("every_manifest_validates_against_the_kubernetes_schemas", &docs) else {
        return;
    };
    assert!(ok, "deploy/kubernetes against Kubernetes' schemas:\n{out}");
    // Every document was checked: the SidecarSet too (its containers and volumes).
    assert_eq!(out.trim(), format!("ok {} documents", docs.len()));
}

#[test]
fn kubernetes_schemas_reject_misspelled_keys_and_wrong_types() {
    let docs = all_documents();
    let job = docs
        .iter()
        .find(|(file, d)| file == "deploy/kubernetes/job-same-container.yaml" && d["kind"] == "Job")
        .map(|(_, d)| d)
        .expect("the Job of job-same-container.yaml");
    let mut misspelled = job.clone();
    let pod = misspelled["spec"]["template"]["spec"].as_object_mut().unwrap();
    let policy = pod.remove("restartPolicy").expect("restartPolicy");
    pod.insert("restartPolicyy".into(), policy);
    let mut wrong_type = job.clone();
    wrong_type["spec"]["backoffLimit"] = Value::from("three");
    let mut no_name = job.clone();
    no_name["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    let mut map_for_list = job.clone();
    map_for_list["spec"]["template"]["spec"]["volumes"] = serde_json::json!({ "data": { "emptyDir": {} } });
    // A SidecarSet's container is checked as Kubernetes' Container (Kruise's CRD does not).
    let mut sidecar = sidecarset(&docs).clone();
    sidecar["spec"]["containers"][0]["livenessProbes"] = sidecar["spec"]["containers"][0]["livenessProbe"].take();
    let cases = [
        ("unchanged", job.clone()),
        ("misspelled", misspelled),
        ("wrong-type", wrong_type),
        ("no-name", no_name),
        ("map-for-list", map_for_list),
        ("sidecarset", sidecar),
    ]
    .map(|(label, d)| (label.to_string(), d));
    let Some((ok, out)) = k8s_validate("kubernetes_schemas_reject_misspelled_keys_and_wrong_types", &cases) else {
        return;
    };
    assert!(!ok, "the changed documents passed:\n{out}");
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "map-for-list: spec.template.spec.volumes: {\"data\": {\"emptyDir\": {}}} is not a list (List[V1Volume])",
            "misspelled: spec.template.spec.restartPolicyy: unknown field (not in V1PodSpec)",
            "no-name: spec.template.spec.containers[0]: missing required field name (V1Container)",
            "sidecarset: spec.containers[0].livenessProbes: unknown field (not in V1Container)",
            "wrong-type: spec.backoffLimit: \"three\" is not an integer",
        ],
        "each change is reported at its path, and the unchanged Job passes"
    );
}

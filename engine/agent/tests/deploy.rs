//! The deployment files under `deploy/`: every manifest parses, and the fields that make a
//! deployment work or fail agree with each other and with the pipelines they carry (config
//! path and ConfigMap, admin port and probes, data_dir and its volume, grace period and
//! shutdown_timeout, read-only log mounts, securityContext, resources). Each ConfigMap's
//! pipeline passes `weir check`. The Dockerfile's key lines are checked too (Docker itself is
//! not needed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Runs `weir check` on `pipeline`; panics with its output when it fails.
fn weir_check(label: &str, pipeline: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["check", "-c"])
        .arg(&file)
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
    weir_check(label, text);
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
    for kind in ["ServiceAccount", "DaemonSet", "ConfigMap", "Job"] {
        assert!(kinds.contains(&kind), "no {kind} in deploy/kubernetes: {kinds:?}");
    }
    let cms = of_kind(&docs, "ConfigMap");
    for cm in &cms {
        let data = cm["data"].as_object().expect("ConfigMap data");
        for (key, text) in data {
            weir_check(&format!("ConfigMap {} key {key}", name(cm)), text.as_str().unwrap());
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
    for w in of_kind(&docs, "DaemonSet").into_iter().chain(of_kind(&docs, "Job")) {
        for c in containers(pod_spec(w)) {
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
        .find(|j| list(&pod_spec(j)["initContainers"]).is_empty())
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
fn dockerfile() -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for line in read("deploy/Dockerfile").lines() {
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
    let lines = dockerfile();
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

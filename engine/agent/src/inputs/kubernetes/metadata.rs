//! `metadata:` of `kubernetes_logs`: pod labels, annotations and node name from the
//! Kubernetes API.
//!
//! A thread LISTs the node's pods (`/api/v1/pods?fieldSelector=spec.nodeName=<node>`), then
//! WATCHes from the list's `resourceVersion`; a `410 Gone` (or an `ERROR` event with code
//! 410) or a broken watch leads to a new LIST, errors back off (0.5 s doubling to 30 s).
//! What it learns goes into a [`MetaCache`] keyed by pod UID, the one part of a log path
//! that names a pod for good. Per pod it keeps the JSON text of its labels and annotations,
//! computed once, and whether the label filters let it through.
//!
//! Events get the metadata in the input's decoder ([`Enrich`]), once per batch (a batch is
//! one file's): a file opened before its pod reached the cache gets it from the batch after
//! the pod arrives. The API being down or slow never holds reading up: events of a pod the
//! cache does not know go out with the metadata of their path and are counted
//! (`weir_kubernetes_metadata_missing_total`); API failures are counted
//! (`weir_kubernetes_api_errors_total`) and logged at most once a minute.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock, RwLock};
use std::time::{Duration, Instant};

use regex_automata::meta::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::model::{Batch, Field, Key, KeyTable, Value};
use weir_core::pipeline::Processor;
use weir_core::units::Dur;

use crate::admin::Labeled;
use crate::config::error::{ConfigError, Pos};
use crate::net::tls::TlsConfig;

/// Where a pod's service account token is mounted.
pub const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Where the cluster's CA certificate is mounted next to it.
pub const CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// The environment variable that names the node (set from `spec.nodeName` through the
/// downward API) when `node_name` is not set.
pub const NODE_NAME_ENV: &str = "NODE_NAME";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_START_WAIT: Duration = Duration::from_secs(2);
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a deleted pod's metadata is kept: its last lines are still being read.
const DELETED_KEPT: Duration = Duration::from_secs(300);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A LIST answer larger than this is refused.
const MAX_LIST_BYTES: u64 = 1 << 30;

/// `metadata:` of `kubernetes_logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    /// `auto` (default): in the cluster, from `KUBERNETES_SERVICE_HOST`/`_PORT`, the service
    /// account's token and CA; `off`; or the API server's `http://` or `https://` address.
    #[serde(default)]
    pub api: Option<Spanned<String>>,
    /// The node whose pods to watch (default: `$NODE_NAME`; without either, every pod of
    /// the cluster is watched).
    #[serde(default)]
    pub node_name: Option<Spanned<String>>,
    /// A bearer token file, read at each request (default with `api: auto`: the service
    /// account's token; none for an address).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// TLS for an `https://` address (with `api: auto`: the service account's CA).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Add `labels`, the pod's labels as a JSON object (default true).
    #[serde(default = "yes")]
    pub labels: bool,
    /// Add `annotations`, the pod's annotations as a JSON object (default false).
    #[serde(default)]
    pub annotations: bool,
    /// Add `node`, the pod's node name (default true).
    #[serde(default = "yes")]
    pub node: bool,
    /// Only pods whose labels match all of these (label -> regex of its whole value).
    #[serde(default)]
    pub include_labels: Option<Spanned<BTreeMap<String, String>>>,
    /// Never pods whose labels match any of these (label -> regex of its whole value).
    #[serde(default)]
    pub exclude_labels: Option<Spanned<BTreeMap<String, String>>>,
    /// Connecting and LIST requests give up after this long (default 10s).
    #[serde(default)]
    pub timeout: Option<Spanned<Dur>>,
    /// At start, reading waits at most this long for the first LIST, so that the files there
    /// already get their metadata (default 2s; `0s`: no wait).
    #[serde(default)]
    pub start_wait: Option<Spanned<Dur>>,
    /// A WATCH is ended by the server after this long and started again (default 5m).
    #[serde(default)]
    pub watch_timeout: Option<Spanned<Dur>>,
}

fn yes() -> bool {
    true
}

impl MetadataConfig {
    /// An example.
    pub const EXAMPLE: &'static str = "api: auto\nannotations: true\ninclude_labels:\n  app: web|api\n";

    fn api(&self) -> &str {
        self.api.as_ref().map_or("auto", |a| a.value.as_str())
    }

    /// Whether it asks the API server (`api` is not `off`).
    pub fn uses_api(&self) -> bool {
        self.api() != "off"
    }

    /// Checks what serde cannot.
    pub fn check(&self, file: &Path) -> Result<(), ConfigError> {
        if let Some(api) = &self.api {
            let a = api.value.as_str();
            if a != "auto" && a != "off" && !a.starts_with("http://") && !a.starts_with("https://") {
                return Err(ConfigError::at(
                    file,
                    Pos::of(api),
                    format!("kubernetes_logs: metadata.api must be `auto`, `off` or an http(s):// address, not {a:?}"),
                ));
            }
        }
        for (key, d) in [("timeout", &self.timeout), ("watch_timeout", &self.watch_timeout)] {
            if let Some(d) = d
                && d.value.0.is_zero()
            {
                return Err(ConfigError::at(
                    file,
                    Pos::of(d),
                    format!("kubernetes_logs: metadata.{key} must be more than 0s"),
                ));
            }
        }
        if let Some(tls) = &self.tls {
            tls.client()
                .map_err(|(at, e)| ConfigError::at(file, at, format!("kubernetes_logs: metadata.{e}")))?;
        }
        self.filter(file)?;
        Ok(())
    }

    fn filter(&self, file: &Path) -> Result<LabelFilter, ConfigError> {
        let compile = |key: &str, map: &Option<Spanned<BTreeMap<String, String>>>| {
            let Some(map) = map else { return Ok(Vec::new()) };
            map.value
                .iter()
                .map(|(label, pattern)| {
                    let what = format!("kubernetes_logs: metadata.{key}.{label}");
                    weir_core::pattern::compile(&what, &format!("^(?:{pattern})$"))
                        .map(|re| (label.clone(), re))
                        .map_err(|e| ConfigError::at(file, Pos::of(map), e.0))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(LabelFilter {
            include: compile("include_labels", &self.include_labels)?,
            exclude: compile("exclude_labels", &self.exclude_labels)?,
        })
    }

    /// The cache the input's files and decoders share; `None` with `api: off`.
    pub fn cache(&self, file: &Path) -> Result<Option<Arc<MetaCache>>, ConfigError> {
        if !self.uses_api() {
            return Ok(None);
        }
        Ok(Some(Arc::new(MetaCache {
            pods: RwLock::default(),
            filter: self.filter(file)?,
            wanted: Wanted {
                labels: self.labels,
                annotations: self.annotations,
                node: self.node,
            },
            first: (Mutex::new(false), Condvar::new()),
            started: Once::new(),
            last_warning: Mutex::new(None),
        })))
    }

    /// Where and how to reach the API, or why not (outside a cluster with `api: auto`).
    fn endpoint(&self) -> Result<Endpoint, String> {
        let timeout = self.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.value.0);
        let (base, token_file, tls) = match self.api() {
            "auto" => {
                let host = std::env::var("KUBERNETES_SERVICE_HOST")
                    .map_err(|_| "KUBERNETES_SERVICE_HOST is not set (not in a cluster?)".to_string())?;
                let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
                let host = if host.contains(':') { format!("[{host}]") } else { host };
                let tls = self.tls.clone().unwrap_or_else(|| TlsConfig {
                    ca_file: Some(Spanned::new(
                        PathBuf::from(CA_FILE),
                        serde_saphyr::Location::UNKNOWN,
                        serde_saphyr::Location::UNKNOWN,
                    )),
                    ..TlsConfig::default()
                });
                let token = self.token_file.clone().unwrap_or_else(|| PathBuf::from(TOKEN_FILE));
                (format!("https://{host}:{port}"), Some(token), Some(tls))
            }
            url => {
                let tls = url
                    .starts_with("https://")
                    .then(|| self.tls.clone().unwrap_or_default());
                (url.trim_end_matches('/').to_string(), self.token_file.clone(), tls)
            }
        };
        let tls = match tls {
            Some(t) => Some(t.client().map_err(|(_, e)| e)?),
            None => None,
        };
        let node = match &self.node_name {
            Some(n) => Some(n.value.clone()),
            None => std::env::var(NODE_NAME_ENV).ok().filter(|n| !n.is_empty()),
        };
        let watch_timeout = self.watch_timeout.as_ref().map_or(DEFAULT_WATCH_TIMEOUT, |t| t.value.0);
        let config = |global: Duration| {
            ureq::Agent::config_builder()
                .timeout_connect(Some(timeout))
                .timeout_global(Some(global))
                .http_status_as_error(true)
                .user_agent(format!("weir/{}", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Ok(Endpoint {
            base,
            node,
            token_file,
            watch_timeout,
            list: crate::net::https::agent(config(timeout), tls.clone()),
            // The server ends a watch after `timeoutSeconds`; a silent dead one after this.
            watch: crate::net::https::agent(config(watch_timeout + timeout), tls),
        })
    }

    /// Starts the thread that fills `cache` (once), and waits up to `start_wait` for its
    /// first LIST.
    pub fn start(&self, cache: &Arc<MetaCache>) {
        let wait = self.start_wait.as_ref().map_or(DEFAULT_START_WAIT, |d| d.value.0);
        cache.started.call_once(|| match self.endpoint() {
            Ok(endpoint) => {
                let filled = cache.clone();
                let spawned = std::thread::Builder::new()
                    .name("kubernetes-metadata".into())
                    .spawn(move || endpoint.run(&filled));
                if let Err(e) = spawned {
                    tracing::warn!("kubernetes_logs: metadata: cannot start its thread: {e}");
                    cache.first_done();
                }
            }
            Err(why) => {
                tracing::warn!(
                    "kubernetes_logs: metadata: no Kubernetes API: {why}; events get the metadata of their paths only"
                );
                cache.first_done();
            }
        });
        cache.wait_first(wait);
    }
}

/// Which fields events get.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    labels: bool,
    annotations: bool,
    node: bool,
}

/// `include_labels` and `exclude_labels`, compiled.
#[derive(Debug, Default)]
struct LabelFilter {
    include: Vec<(String, Regex)>,
    exclude: Vec<(String, Regex)>,
}

impl LabelFilter {
    /// A pod passes when every `include_labels` label is there and matches, and no
    /// `exclude_labels` label is there and matches.
    fn allows(&self, labels: &BTreeMap<String, String>) -> bool {
        let hit = |(label, re): &(String, Regex)| labels.get(label).is_some_and(|v| re.is_match(v.as_str()));
        self.include.iter().all(hit) && !self.exclude.iter().any(hit)
    }
}

/// What events of one pod get.
#[derive(Debug)]
pub struct PodMeta {
    /// Whether the label filters let the pod through.
    pub allowed: bool,
    /// The labels as a JSON object, when wanted.
    labels: Option<String>,
    /// The annotations as a JSON object, when wanted.
    annotations: Option<String>,
    /// The node name, when wanted and known.
    node: Option<String>,
}

/// Pod metadata by pod UID, filled by the API thread, read by file discovery and decoders.
pub struct MetaCache {
    pods: RwLock<HashMap<String, Arc<PodMeta>>>,
    filter: LabelFilter,
    wanted: Wanted,
    /// Set once the first LIST succeeded or failed.
    first: (Mutex<bool>, Condvar),
    started: Once,
    last_warning: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaCache")
            .field("pods", &self.pods.read().map(|p| p.len()).unwrap_or_default())
            .finish_non_exhaustive()
    }
}

/// The agent's Kubernetes metadata counters, shown in `/metrics` under the component
/// `kubernetes_logs`; `None` until a cache is started.
pub fn metrics() -> Option<&'static Labeled> {
    METRICS.get()
}

static METRICS: OnceLock<Labeled> = OnceLock::new();

fn count(name: &'static str, help: &'static str, n: u64) {
    if n > 0 {
        METRICS.get_or_init(Labeled::default).add(name, help, &[], n as f64);
    }
}

const MISSING: &str = "weir_kubernetes_metadata_missing_total";
const MISSING_HELP: &str = "Events sent without API metadata (pod not known to the cache).";
const ERRORS: &str = "weir_kubernetes_api_errors_total";
const ERRORS_HELP: &str = "Failed Kubernetes API requests and broken watches.";
const LISTS: &str = "weir_kubernetes_api_lists_total";
const LISTS_HELP: &str = "Successful LISTs of pods (the first, and one after each expired or broken watch).";
const WATCH_EVENTS: &str = "weir_kubernetes_watch_events_total";
const WATCH_EVENTS_HELP: &str = "Pod events (ADDED, MODIFIED, DELETED) applied from WATCHes.";
const EXCLUDED: &str = "weir_kubernetes_label_excluded_total";
const EXCLUDED_HELP: &str = "Events dropped because their pod's labels did not pass the label filters.";

impl MetaCache {
    /// The metadata of a pod, if the cache knows it.
    pub fn get(&self, uid: &str) -> Option<Arc<PodMeta>> {
        self.pods.read().unwrap_or_else(|e| e.into_inner()).get(uid).cloned()
    }

    fn meta(&self, pod: &Pod) -> PodMeta {
        let json = |map: &BTreeMap<String, String>| serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
        PodMeta {
            allowed: self.filter.allows(&pod.metadata.labels),
            labels: self.wanted.labels.then(|| json(&pod.metadata.labels)),
            annotations: self.wanted.annotations.then(|| json(&pod.metadata.annotations)),
            node: (self.wanted.node && !pod.spec.node_name.is_empty()).then(|| pod.spec.node_name.clone()),
        }
    }

    fn first_done(&self) {
        let (done, cv) = &self.first;
        *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    fn wait_first(&self, limit: Duration) {
        let (done, cv) = &self.first;
        let guard = done.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(guard, limit, |done| !*done);
    }

    /// Counts an API failure and logs it, at most once a minute.
    fn failed(&self, what: &str) {
        count(ERRORS, ERRORS_HELP, 1);
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!(
                "kubernetes_logs: metadata: {}; events of pods not yet known get the metadata of their paths only",
                crate::secrets::redact(what)
            );
        }
    }

    fn publish_size(&self, n: usize) {
        METRICS.get_or_init(Labeled::default).set(
            "weir_kubernetes_pods_cached",
            "Pods whose metadata the cache holds.",
            &[],
            n as f64,
        );
    }
}

/// The API server and how to ask it.
struct Endpoint {
    base: String,
    node: Option<String>,
    token_file: Option<PathBuf>,
    watch_timeout: Duration,
    list: ureq::Agent,
    watch: ureq::Agent,
}

/// How a watch ended.
enum WatchEnd {
    /// The server closed it (its `timeoutSeconds`): watch again from the last version.
    Closed,
    /// 410 Gone: the version is too old, LIST again.
    Expired,
}

/// Pods deleted from the API whose metadata is kept a while (their last lines).
#[derive(Default)]
struct Deleted(VecDeque<(Instant, String)>);

impl Endpoint {
    fn run(self, cache: &MetaCache) {
        let mut backoff = FIRST_BACKOFF;
        let mut deleted = Deleted::default();
        loop {
            let version = match self.list(cache, &mut deleted) {
                Ok(v) => v,
                Err(e) => {
                    cache.failed(&format!("LIST pods: {e}"));
                    cache.first_done();
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            count(LISTS, LISTS_HELP, 1);
            cache.first_done();
            let mut version = version;
            loop {
                let began = Instant::now();
                let end = self.watch(cache, &mut version, &mut deleted);
                // A watch that lasted is a server that works; one that ended at once (closed,
                // or expired again right after a LIST) must not make us hammer the server.
                if began.elapsed() >= Duration::from_secs(1) {
                    backoff = FIRST_BACKOFF;
                } else if end.is_ok() {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                match end {
                    Ok(WatchEnd::Expired) => break,
                    Ok(WatchEnd::Closed) => {}
                    Err(e) => {
                        cache.failed(&format!("WATCH pods: {e}"));
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        break;
                    }
                }
            }
        }
    }

    fn url(&self, extra: &str) -> String {
        let mut url = format!("{}/api/v1/pods", self.base);
        if let Some(node) = &self.node {
            url.push_str("?fieldSelector=spec.nodeName%3D");
            url.push_str(&percent_encode(node));
            url.push_str(extra);
        } else if let Some(rest) = extra.strip_prefix('&') {
            url.push('?');
            url.push_str(rest);
        }
        url
    }

    fn get(&self, agent: &ureq::Agent, url: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
        let mut request = agent.get(url).header("accept", "application/json");
        if let Some(file) = &self.token_file {
            let token = std::fs::read_to_string(file).map_err(|e| format!("token file {}: {e}", file.display()))?;
            let token = token.trim();
            crate::secrets::register(token, "***");
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.call().map_err(|e| match e {
            ureq::Error::StatusCode(410) => "410".to_string(),
            e => e.to_string(),
        })
    }

    /// LISTs the pods into the cache; returns the list's version.
    fn list(&self, cache: &MetaCache, deleted: &mut Deleted) -> Result<String, String> {
        let mut response = self.get(&self.list, &self.url(""))?;
        let reader = response.body_mut().with_config().limit(MAX_LIST_BYTES).reader();
        let list: PodList = serde_json::from_reader(reader).map_err(|e| format!("a bad pod list: {e}"))?;
        let mut pods: HashMap<String, Arc<PodMeta>> = list
            .items
            .iter()
            .filter(|p| !p.metadata.uid.is_empty())
            .map(|p| (p.metadata.uid.clone(), Arc::new(cache.meta(p))))
            .collect();
        let mut map = cache.pods.write().unwrap_or_else(|e| e.into_inner());
        // Pods gone while we were not watching: kept a while, like deleted ones.
        for (uid, meta) in map.drain() {
            if let std::collections::hash_map::Entry::Vacant(slot) = pods.entry(uid.clone()) {
                slot.insert(meta);
                if !deleted.0.iter().any(|(_, u)| *u == uid) {
                    deleted.0.push_back((Instant::now(), uid));
                }
            }
        }
        *map = pods;
        deleted.purge(&mut map);
        cache.publish_size(map.len());
        Ok(list.metadata.resource_version)
    }

    /// WATCHes from `version`, applying events to the cache and advancing `version`.
    fn watch(&self, cache: &MetaCache, version: &mut String, deleted: &mut Deleted) -> Result<WatchEnd, String> {
        let extra = format!(
            "&watch=1&allowWatchBookmarks=true&timeoutSeconds={}&resourceVersion={}",
            self.watch_timeout.as_secs().max(1),
            percent_encode(version)
        );
        let response = match self.get(&self.watch, &self.url(&extra)) {
            Err(e) if e == "410" => return Ok(WatchEnd::Expired),
            r => r?,
        };
        let mut lines = BufReader::new(response.into_body().into_reader());
        let mut line = Vec::new();
        loop {
            line.clear();
            // A line is one event; a pod's is a few KiB, a huge one is refused.
            let n = (&mut lines)
                .take(64 << 20)
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("watch broken: {e}"))?;
            if n == 0 {
                return Ok(WatchEnd::Closed);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event: WatchEvent = serde_json::from_slice(&line).map_err(|e| format!("a bad watch event: {e}"))?;
            if event.kind == "ERROR" {
                let code = event.object.get("code").and_then(serde_json::Value::as_u64);
                if code == Some(410) {
                    return Ok(WatchEnd::Expired);
                }
                return Err(format!("watch error: {}", event.object));
            }
            let pod: Pod =
                serde_json::from_value(event.object).map_err(|e| format!("a bad pod in a watch event: {e}"))?;
            if !pod.metadata.resource_version.is_empty() {
                version.clone_from(&pod.metadata.resource_version);
            }
            self.apply(cache, &event.kind, &pod, deleted);
        }
    }

    fn apply(&self, cache: &MetaCache, kind: &str, pod: &Pod, deleted: &mut Deleted) {
        let uid = &pod.metadata.uid;
        if uid.is_empty() {
            return; // BOOKMARK
        }
        let mut map = cache.pods.write().unwrap_or_else(|e| e.into_inner());
        match kind {
            "ADDED" | "MODIFIED" => {
                map.insert(uid.clone(), Arc::new(cache.meta(pod)));
            }
            "DELETED" => deleted.0.push_back((Instant::now(), uid.clone())),
            _ => return,
        }
        count(WATCH_EVENTS, WATCH_EVENTS_HELP, 1);
        deleted.purge(&mut map);
        cache.publish_size(map.len());
    }
}

impl Deleted {
    /// Forgets the pods deleted longer than [`DELETED_KEPT`] ago.
    fn purge(&mut self, map: &mut HashMap<String, Arc<PodMeta>>) {
        while let Some((at, _)) = self.0.front()
            && at.elapsed() >= DELETED_KEPT
        {
            if let Some((_, uid)) = self.0.pop_front() {
                map.remove(&uid);
            }
        }
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Default, Deserialize)]
struct ListMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct Pod {
    metadata: PodObjectMeta,
    #[serde(default)]
    spec: PodSpec,
}

#[derive(Deserialize)]
struct PodObjectMeta {
    #[serde(default)]
    uid: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct PodSpec {
    #[serde(default, rename = "nodeName")]
    node_name: String,
}

/// The decoder of `kubernetes_logs` with `metadata:`: adds `labels`, `annotations` and
/// `node` to events whose pod the cache knows, drops those whose pod the label filters
/// leave out, and counts those whose pod it does not know.
#[derive(Debug)]
pub struct Enrich {
    cache: Arc<MetaCache>,
    pod_uid: Key,
    labels: Key,
    annotations: Key,
    node: Key,
    warned: AtomicBool,
}

impl Enrich {
    /// A decoder over `cache`.
    pub fn new(cache: Arc<MetaCache>, keys: &KeyTable) -> Enrich {
        Enrich {
            cache,
            pod_uid: keys.intern("pod_uid"),
            labels: keys.intern("labels"),
            annotations: keys.intern("annotations"),
            node: keys.intern("node"),
            warned: AtomicBool::new(false),
        }
    }
}

/// A pod looked up for a batch: its UID, metadata and the fields its events get.
struct Looked {
    uid: Vec<u8>,
    meta: Option<Arc<PodMeta>>,
    fields: Vec<Field>,
}

impl Processor for Enrich {
    fn process(&mut self, batch: &mut Batch) {
        let (mut bufs, events) = batch.parts_mut();
        // A batch is one file's: one pod, looked up once (its values into the arena once).
        let mut current: Option<Looked> = None;
        let (mut missing, mut excluded) = (0u64, 0u64);
        for event in events.iter_mut().filter(|e| e.is_live()) {
            let Some(Value::Str(uid)) = event.get(self.pod_uid) else {
                continue;
            };
            let uid = bufs.bytes(uid);
            if current.as_ref().is_none_or(|c| c.uid.as_slice() != uid) {
                let uid = uid.to_vec();
                let meta = std::str::from_utf8(&uid).ok().and_then(|u| self.cache.get(u));
                let mut fields = Vec::new();
                if let Some(m) = &meta {
                    if let Some(l) = &m.labels {
                        fields.push(Field {
                            key: self.labels,
                            value: Value::Json(bufs.push(l.as_bytes())),
                        });
                    }
                    if let Some(a) = &m.annotations {
                        fields.push(Field {
                            key: self.annotations,
                            value: Value::Json(bufs.push(a.as_bytes())),
                        });
                    }
                    if let Some(n) = &m.node {
                        fields.push(Field {
                            key: self.node,
                            value: Value::Str(bufs.push(n.as_bytes())),
                        });
                    }
                }
                current = Some(Looked { uid, meta, fields });
            }
            let Some(Looked { meta, fields, .. }) = &current else {
                continue;
            };
            match meta {
                None => missing += 1,
                Some(m) if !m.allowed => {
                    event.mark_dropped();
                    excluded += 1;
                }
                Some(_) => event.extend_fields(fields),
            }
        }
        count(MISSING, MISSING_HELP, missing);
        count(EXCLUDED, EXCLUDED_HELP, excluded);
        if missing > 0 && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(
                "kubernetes_logs: metadata: events of a pod not (yet) known to the cache go out without it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> MetadataConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn example_parses_and_checks() {
        let c = config(MetadataConfig::EXAMPLE);
        c.check(Path::new("p.yaml")).unwrap();
        assert!(c.labels && c.annotations && c.node);
    }

    #[test]
    fn bad_settings_are_refused_with_their_place() {
        let c = config("api: ftp://x\n");
        let e = c.check(Path::new("p.yaml")).unwrap_err().to_string();
        assert!(e.contains("1:6") && e.contains("metadata.api"), "{e}");
        let c = config("include_labels:\n  app: 'web('\n");
        let e = c.check(Path::new("p.yaml")).unwrap_err().to_string();
        assert!(e.contains("include_labels.app"), "{e}");
        assert!(serde_saphyr::from_str::<MetadataConfig>("lables: true\n").is_err());
    }

    #[test]
    fn label_filters() {
        let c = config("include_labels: {app: 'web|api'}\nexclude_labels: {tier: debug}\n");
        let f = c.filter(Path::new("p.yaml")).unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert!(f.allows(&labels(&[("app", "web")])));
        assert!(f.allows(&labels(&[("app", "api"), ("tier", "prod")])));
        assert!(!f.allows(&labels(&[("app", "webx")])));
        assert!(!f.allows(&labels(&[])));
        assert!(!f.allows(&labels(&[("app", "web"), ("tier", "debug")])));
    }

    #[test]
    fn urls() {
        assert_eq!(percent_encode("node-1.a b"), "node-1.a%20b");
    }
}

//! `type: kubernetes_logs`: the container logs of a node, with pod metadata from their paths.
//!
//! The kubelet writes each container's stdout/stderr to
//! `/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart>.log` (CRI format, or
//! Docker json-file behind a symlink) and links `/var/log/containers/<pod>_<namespace>_
//! <container>-<container id>.log` to it. This input follows the first kind of path with the
//! file tailer (so a file is read once, by identity, however many links point at it), takes
//! `namespace`, `pod`, `pod_uid`, `container` and `restart` from the path and `container_id`
//! from the link that points at the file, detects CRI or Docker per file, joins partial lines,
//! and keeps only the pods the include/exclude patterns allow. With `metadata:`, events also
//! get their pod's labels, annotations and node from the Kubernetes API ([`metadata`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use regex_automata::meta::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::Format;
use weir_core::line::{DEFAULT_CHUNK_BYTES, DEFAULT_MAX_LINE_BYTES, LineOptions};
use weir_core::model::KeyTable;
use weir_core::multiline::MultilineConfig;
use weir_core::pipeline::Processor;
use weir_core::units::{ByteSize, Dur};

use self::metadata::{Enrich, MetaCache, MetadataConfig};
use super::tail::{FollowTiming, TailSettings};
use super::{Framing, Input, ReadFrom, Reading, SourceFields, container_fields};
use crate::config::error::{ConfigError, Pos};

pub mod metadata;

/// Where the kubelet puts container logs.
pub const DEFAULT_PATHS: &str = "/var/log/pods/*/*/*.log";
/// Where the kubelet links them by container id.
pub const DEFAULT_CONTAINERS_DIR: &str = "/var/log/containers";

/// The line format of container log files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerFormat {
    /// Per file, from its first byte: `{` is Docker json-file, anything else CRI.
    #[default]
    Auto,
    /// containerd / CRI-O: `<time> <stream> <P|F> <log>`.
    Cri,
    /// Docker json-file: `{"log":...,"stream":...,"time":...}`.
    Docker,
}

/// `type: kubernetes_logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesLogsConfig {
    /// Glob patterns of the log files (default `/var/log/pods/*/*/*.log`).
    #[serde(default)]
    pub paths: Option<Spanned<Vec<Spanned<String>>>>,
    /// The directory of `<pod>_<namespace>_<container>-<id>.log` links, for `container_id`
    /// (default `/var/log/containers`).
    #[serde(default)]
    pub containers_dir: Option<PathBuf>,
    /// Only these namespaces (regexes matching the whole name); all when empty.
    #[serde(default)]
    pub include_namespaces: Vec<Spanned<String>>,
    /// Never these namespaces.
    #[serde(default)]
    pub exclude_namespaces: Vec<Spanned<String>>,
    /// Only these pods; all when empty.
    #[serde(default)]
    pub include_pods: Vec<Spanned<String>>,
    /// Never these pods.
    #[serde(default)]
    pub exclude_pods: Vec<Spanned<String>>,
    /// Only these containers; all when empty.
    #[serde(default)]
    pub include_containers: Vec<Spanned<String>>,
    /// Never these containers.
    #[serde(default)]
    pub exclude_containers: Vec<Spanned<String>>,
    /// `auto` (default), `cri` or `docker`.
    #[serde(default)]
    pub format: ContainerFormat,
    /// Merge the joined messages into records (stack traces).
    #[serde(default)]
    pub multiline: Option<Spanned<MultilineConfig>>,
    /// `head` (default) or `tail`, for files present at start without a checkpoint.
    #[serde(default)]
    pub read_from: Option<Spanned<ReadFrom>>,
    /// Lines longer than this are cut into flagged pieces (default 1 MiB).
    #[serde(default)]
    pub max_line_bytes: Option<Spanned<ByteSize>>,
    /// How often files are checked when no file event came (default 250ms).
    #[serde(default)]
    pub poll_interval: Option<Spanned<Dur>>,
    /// A file gone from the globs (rotated, pod deleted) is let go after this long without
    /// new bytes (default 5s).
    #[serde(default)]
    pub rotate_wait: Option<Spanned<Dur>>,
    /// Most files open at once (default 1024).
    #[serde(default)]
    pub max_open_files: Option<Spanned<usize>>,
    /// The last multiline record of a quiet file goes out after this long (default 1s).
    #[serde(default)]
    pub flush_timeout: Option<Spanned<Dur>>,
    /// Pod labels, annotations and node from the Kubernetes API (off when absent).
    #[serde(default)]
    pub metadata: Option<Spanned<MetadataConfig>>,
    /// The metadata cache the input's file discovery and decoders share, made once.
    #[serde(skip)]
    cache: OnceLock<Option<Arc<MetaCache>>>,
}

impl KubernetesLogsConfig {
    /// An example.
    pub const EXAMPLE: &'static str = "type: kubernetes_logs\nexclude_namespaces: [kube-system]\n";

    fn patterns(&self) -> Vec<String> {
        match &self.paths {
            Some(p) => p.value.iter().map(|p| p.value.clone()).collect(),
            None => vec![DEFAULT_PATHS.to_string()],
        }
    }

    /// Checks what serde cannot.
    fn check(&self, file: &Path) -> Result<(), ConfigError> {
        self.discovery(file)?;
        if let Some(p) = &self.paths {
            if p.value.is_empty() {
                return Err(ConfigError::at(file, Pos::of(p), "kubernetes_logs: `paths` is empty"));
            }
            for pattern in &p.value {
                glob::Pattern::new(&pattern.value).map_err(|e| {
                    ConfigError::at(
                        file,
                        Pos::of(pattern),
                        format!("bad glob pattern `{}`: {e}", pattern.value),
                    )
                })?;
            }
        }
        if let Some(m) = &self.max_line_bytes
            && (m.value.0 == 0 || m.value.0 > 1 << 30)
        {
            return Err(ConfigError::at(
                file,
                Pos::of(m),
                "max_line_bytes must be between 1 and 1GiB",
            ));
        }
        self.timing(file)?;
        if let Some(m) = &self.multiline {
            m.value.build().map_err(|e| ConfigError::at(file, Pos::of(m), e.0))?;
        }
        if let Some(m) = &self.metadata {
            m.value.check(file)?;
        }
        Ok(())
    }

    /// The metadata cache, when `metadata:` asks for the API (its settings were checked by
    /// `validate`).
    fn cache(&self) -> Option<Arc<MetaCache>> {
        self.cache
            .get_or_init(|| {
                let m = self.metadata.as_ref()?;
                m.value.cache(Path::new("pipeline")).unwrap_or_else(|e| {
                    tracing::error!("{e}");
                    None
                })
            })
            .clone()
    }

    fn discovery(&self, file: &Path) -> Result<Discovery, ConfigError> {
        let set = |key: &str, list: &[Spanned<String>]| -> Result<Option<Regex>, ConfigError> {
            if list.is_empty() {
                return Ok(None);
            }
            let what = format!("kubernetes_logs: `{key}`");
            // Each pattern alone first, so that an error points at the one that is wrong.
            for p in list {
                weir_core::pattern::compile(&what, &p.value).map_err(|e| ConfigError::at(file, Pos::of(p), e.0))?;
            }
            let anchored: Vec<String> = list.iter().map(|p| format!("^(?:{})$", p.value)).collect();
            Regex::new_many(&anchored).map(Some).map_err(|e| {
                let all = anchored.join("|");
                ConfigError::at(file, Pos::of(&list[0]), weir_core::pattern::explain(&what, &all, &e))
            })
        };
        Ok(Discovery {
            include: [
                set("include_namespaces", &self.include_namespaces)?,
                set("include_pods", &self.include_pods)?,
                set("include_containers", &self.include_containers)?,
            ],
            exclude: [
                set("exclude_namespaces", &self.exclude_namespaces)?,
                set("exclude_pods", &self.exclude_pods)?,
                set("exclude_containers", &self.exclude_containers)?,
            ],
            containers_dir: self
                .containers_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTAINERS_DIR)),
            ids: Mutex::default(),
            meta: None,
        })
    }

    fn timing(&self, file: &Path) -> Result<FollowTiming, ConfigError> {
        FollowTiming::from_config(
            "kubernetes_logs",
            &self.poll_interval,
            &self.rotate_wait,
            &self.max_open_files,
            &self.flush_timeout,
            file,
        )
    }

    /// How the tailer follows this input.
    fn tail_settings(&self, file: &Path) -> Result<TailSettings, ConfigError> {
        let rules = match &self.multiline {
            Some(m) => Some(m.value.build().map_err(|e| ConfigError::at(file, Pos::of(m), e.0))?),
            None => None,
        };
        let format = match self.format {
            ContainerFormat::Docker => Format::Docker,
            ContainerFormat::Cri | ContainerFormat::Auto => Format::Cri,
        };
        let max = self
            .max_line_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_LINE_BYTES as u64, |m| m.value.0);
        Ok(TailSettings {
            paths: self.patterns(),
            exclude: Vec::new(),
            read_from: self.read_from.as_ref().map(|r| r.value).unwrap_or_default(),
            opts: LineOptions {
                max_line_bytes: usize::try_from(max).unwrap_or(usize::MAX),
                skip_empty_lines: false,
            },
            framing: Some(Framing { format, rules }),
            detect_format: self.format == ContainerFormat::Auto,
            pod_fields: false,
            discovery: Some(Arc::new(Discovery {
                meta: self.cache(),
                ..self.discovery(file)?
            })),
            timing: self.timing(file)?,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            drain_on_stop: false,
        })
    }
}

impl Input for KubernetesLogsConfig {
    fn validate(&self, _at: Pos, file: &Path) -> Result<(), ConfigError> {
        self.check(file)
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        if let (Some(m), Some(cache)) = (&self.metadata, self.cache()) {
            m.value.start(&cache);
        }
        self.tail_settings(file).map(Reading::Follow)
    }

    fn decoder(&self, keys: &Arc<KeyTable>) -> Option<Box<dyn Processor>> {
        Some(Box::new(Enrich::new(self.cache()?, keys)))
    }
}

/// Which container log files to read, and their metadata.
pub struct Discovery {
    /// namespace, pod, container.
    include: [Option<Regex>; 3],
    exclude: [Option<Regex>; 3],
    containers_dir: PathBuf,
    /// Link target (canonical) -> container id, from `containers_dir`.
    ids: Mutex<HashMap<PathBuf, String>>,
    /// Pod metadata from the API, for the label filters.
    meta: Option<Arc<MetaCache>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("containers_dir", &self.containers_dir)
            .finish_non_exhaustive()
    }
}

/// The parts of `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPath {
    /// The namespace.
    pub namespace: String,
    /// The pod name.
    pub pod: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// The container name.
    pub container: String,
    /// The container's restart count.
    pub restart: String,
}

impl PodPath {
    /// Parses a kubelet pod log path; `None` for any other path.
    pub fn parse(path: &Path) -> Option<PodPath> {
        let restart = path.file_name()?.to_str()?.strip_suffix(".log")?;
        // Rotated files are `0.log.20240101-000000`; only live ones end in `.log`.
        if restart.is_empty() || !restart.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let container_dir = path.parent()?;
        let container = container_dir.file_name()?.to_str()?;
        let pod_dir = container_dir.parent()?.file_name()?.to_str()?;
        // Namespaces and pod names are DNS labels/subdomains: no `_`. The UID is last.
        let mut parts = pod_dir.splitn(3, '_');
        let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
        if namespace.is_empty() || pod.is_empty() || uid.is_empty() || container.is_empty() {
            return None;
        }
        Some(PodPath {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            pod_uid: uid.to_string(),
            container: container.to_string(),
            restart: restart.to_string(),
        })
    }
}

impl Discovery {
    fn allowed(&self, names: [&str; 3]) -> bool {
        let hit = |re: &Option<Regex>, name: &str| re.as_ref().map(|re| re.is_match(name));
        names.iter().enumerate().all(|(i, name)| {
            hit(&self.include[i], name).unwrap_or(true) && !hit(&self.exclude[i], name).unwrap_or(false)
        })
    }

    /// Reads the container links again (at each scan: new containers bring new links).
    pub fn refresh(&self) {
        let Ok(entries) = std::fs::read_dir(&self.containers_dir) else {
            return;
        };
        let mut ids = HashMap::new();
        for entry in entries.flatten() {
            let link = entry.path();
            let Some(fields) = container_fields(&link) else {
                continue;
            };
            if let Ok(target) = std::fs::canonicalize(&link) {
                ids.insert(target, fields[3].1.clone());
            }
        }
        *self.ids.lock().unwrap_or_else(|e| e.into_inner()) = ids;
    }

    /// The fields of a container log file, or `None` when the patterns leave it out (or it is
    /// not a container log).
    pub fn fields(&self, path: &Path) -> Option<SourceFields> {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let id = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&canonical)
            .cloned();
        if let Some(p) = PodPath::parse(path).or_else(|| PodPath::parse(&canonical)) {
            if !self.allowed([&p.namespace, &p.pod, &p.container]) {
                return None;
            }
            // A pod the label filters leave out; one not known yet is read (see `metadata`).
            if let Some(meta) = &self.meta
                && meta.get(&p.pod_uid).is_some_and(|m| !m.allowed)
            {
                return None;
            }
            let mut fields = vec![
                ("namespace", p.namespace),
                ("pod", p.pod),
                ("pod_uid", p.pod_uid),
                ("container", p.container),
                ("restart", p.restart),
            ];
            if let Some(id) = id {
                fields.push(("container_id", id));
            }
            return Some(fields.into());
        }
        // A `/var/log/containers` link given as a path pattern.
        let f = container_fields(path)?;
        if !self.allowed([&f[1].1, &f[0].1, &f[2].1]) {
            return None;
        }
        Some(SourceFields::from(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_paths() {
        let p = PodPath::parse(Path::new("/var/log/pods/prod_web-7d9f_0b1c-22/nginx/3.log")).unwrap();
        assert_eq!(
            p,
            PodPath {
                namespace: "prod".into(),
                pod: "web-7d9f".into(),
                pod_uid: "0b1c-22".into(),
                container: "nginx".into(),
                restart: "3".into(),
            }
        );
        assert!(PodPath::parse(Path::new("/var/log/pods/prod_web_1/nginx/0.log.20240101-000000")).is_none());
        assert!(PodPath::parse(Path::new("/var/log/pods/prodweb/nginx/0.log")).is_none());
        assert!(PodPath::parse(Path::new("/var/log/app.log")).is_none());
    }
}

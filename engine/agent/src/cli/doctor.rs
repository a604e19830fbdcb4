//! `weir doctor -c FILE`: what an operator otherwise checks by hand when collection silently
//! stops, as one list of `pass` / `warn` / `fail` lines with the reason for each.
//!
//! The checks, in order: the pipeline file loads and validates; each file input's patterns
//! match files, those files can be opened and the directories they live in can be listed
//! (watched); `data_dir` exists or can be created and takes a file; the checkpoints load and
//! each entry's offset is within its file; each output is reachable (a file output's
//! directory takes a file, an http output's host:port accepts a TCP connection); each disk
//! buffer's size and the age of its oldest segment (a warning when 90% full); the admin
//! address can be bound (or a running agent answers on it); the system clock is sane.
//!
//! Doctor leaves nothing behind: the probe file it writes is removed, and directories it had
//! to create to test `data_dir` are removed again (`weir run` creates them itself).
//!
//! ```text
//! $ weir doctor -c pipeline.yaml
//! pass  config: pipeline.yaml is valid (1 input, 0 processors, 1 output)
//! fail  inputs[0] file: `/var/log/app/*.log` matches no file, and /var/log/app does not exist
//! ...
//! doctor: 6 passed, 0 warnings, 1 failed
//! ```

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::registry::{InputConfig, OutputConfig};
use crate::config::{self, Loaded};
use crate::delivery::checkpoint::{CHECKPOINT_FILE, Checkpoints, Entry, Whereabouts, whereabouts};
use crate::inputs::file::{FileInputConfig, FileMode};
use crate::inputs::kafka::KafkaInputConfig;
use crate::inputs::kubernetes::{self, KubernetesLogsConfig};
use crate::net::kafka::Client;
use crate::outputs::buffer::{self, BufferKind};
use rdkafka::producer::Producer as _;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Pass,
    /// Worth a look, but collection works.
    Warn,
    /// Collection does not work (or will not start) until this is fixed.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        })
    }
}

/// One line of the report: which thing was checked and why it came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The outcome.
    pub status: Status,
    /// What was checked: `config`, `inputs[0] file`, `data_dir`, `outputs[1] http`...
    pub subject: String,
    /// The reason, naming the path, address or value concerned.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}: {}", self.status, self.subject, self.detail)
    }
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Default)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Adds a finding, secrets redacted ([`crate::secrets`]).
    fn add(&mut self, status: Status, subject: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding {
            status,
            subject: crate::secrets::redact(&subject.into()).into_owned(),
            detail: crate::secrets::redact(&detail.into()).into_owned(),
        });
    }

    fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// Whether any check failed (warnings do not count).
    pub fn failed(&self) -> bool {
        self.count(Status::Fail) > 0
    }

    /// The closing line: how many passed, warned and failed.
    pub fn summary(&self) -> String {
        format!(
            "doctor: {} passed, {} warning{}, {} failed",
            self.count(Status::Pass),
            self.count(Status::Warn),
            if self.count(Status::Warn) == 1 { "" } else { "s" },
            self.count(Status::Fail)
        )
    }
}

/// Knobs of the checks.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many file names a line lists before "and N more".
    pub max_listed: usize,
    /// How many matched files are opened to check they are readable, per input.
    pub max_opened: usize,
    /// How long a TCP connection to an output may take.
    pub connect_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_listed: 5,
            max_opened: 10_000,
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// Runs every check on the pipeline file at `path`. A file that does not load is the only
/// finding: nothing else can be known without it.
pub fn check(path: &Path, opts: &Options) -> Report {
    let mut report = Report::default();
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => {
            report.add(Status::Fail, "config", e.to_string());
            return report;
        }
    };
    match config::validate(&loaded) {
        Ok(()) => {
            let c = &loaded.config;
            report.add(
                Status::Pass,
                "config",
                format!(
                    "{} is valid ({}, {}, {})",
                    path.display(),
                    plural(c.inputs.len(), "input"),
                    plural(c.processors.len(), "processor"),
                    plural(c.outputs.len(), "output")
                ),
            );
        }
        // The other checks still tell something: keep going.
        Err(e) => report.add(Status::Fail, "config", e.to_string()),
    }
    check_inputs(&loaded, opts, &mut report);
    let data_dir = config::data_dir(&loaded.config);
    let data_dir_ok = check_data_dir(&data_dir, &mut report);
    let checkpoint_mtime = if data_dir_ok {
        let prune_after = loaded
            .config
            .checkpoint_prune_after
            .as_ref()
            .map_or(crate::delivery::acks::DEFAULT_PRUNE_AFTER, |d| d.value.0);
        check_checkpoints(&data_dir, prune_after, opts, &mut report)
    } else {
        None
    };
    check_outputs(&loaded, opts, &mut report);
    check_buffers(&loaded, &data_dir, &mut report);
    check_admin(&loaded, opts, &mut report);
    check_clock(SystemTime::now(), checkpoint_mtime, &mut report);
    report
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `a, b, c (and 4 more)`.
fn listed(paths: &[PathBuf], max: usize) -> String {
    let mut s = paths
        .iter()
        .take(max)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > max {
        s.push_str(&format!(" (and {} more)", paths.len() - max));
    }
    s
}

fn check_inputs(loaded: &Loaded, opts: &Options, report: &mut Report) {
    for (i, input) in loaded.config.inputs.iter().enumerate() {
        let subject = format!("inputs[{i}] {}", input.value.type_name());
        match &input.value {
            InputConfig::File(c) => check_file_input(c, &subject, opts, report),
            InputConfig::KubernetesLogs(c) => check_kubernetes_input(c, &subject, opts, report),
            InputConfig::Stdin(_) => report.add(Status::Pass, subject, "standard input: nothing to check on disk"),
            InputConfig::Exec(_) => report.add(
                Status::Pass,
                subject,
                "the output of the command of `weir run --exec`: nothing to check on disk",
            ),
            InputConfig::Kafka(c) => {
                let topics: Vec<&str> = c.topics.value.iter().map(|t| t.value.as_str()).collect();
                check_kafka(c.client(), &topics, &subject, opts, report);
                check_kafka_group(c, &subject, opts, report);
            }
            InputConfig::Opentelemetry(c) => check_listen_address(&c.address.value, false, &subject, report),
            InputConfig::Http(c) => check_listen_address(&c.address.value, false, &subject, report),
            InputConfig::Syslog(c) => check_listen_address(&c.address.value, c.udp(), &subject, report),
        }
    }
}

/// A receiving input's address can be bound (nothing else listens there), TCP or UDP.
fn check_listen_address(address: &str, udp: bool, subject: &str, report: &mut Report) {
    let bound = if udp {
        std::net::UdpSocket::bind(address).map(drop)
    } else {
        std::net::TcpListener::bind(address).map(drop)
    };
    match bound {
        Ok(()) => report.add(Status::Pass, subject, format!("{address} can be bound")),
        Err(e) => report.add(
            Status::Fail,
            subject,
            format!("cannot listen on {address}: {e} (another process there, or a port below 1024 without the right)"),
        ),
    }
}

/// The directory part of a glob before its first wildcard: what must exist to be watched.
fn fixed_prefix(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::new();
    for part in Path::new(pattern).components() {
        let s = part.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            return dir;
        }
        dir.push(part);
    }
    // No wildcard: the pattern names one file; its directory is what is watched.
    dir.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn check_file_input(c: &FileInputConfig, subject: &str, opts: &Options, report: &mut Report) {
    let patterns: Vec<&str> = c.paths.value.iter().map(|p| p.value.as_str()).collect();
    let excludes: Vec<glob::Pattern> = c
        .exclude
        .iter()
        .filter_map(|p| glob::Pattern::new(&p.value).ok())
        .collect();
    check_paths(
        &patterns,
        &excludes,
        c.mode() == FileMode::Follow,
        subject,
        opts,
        report,
    );
}

fn check_kubernetes_input(c: &KubernetesLogsConfig, subject: &str, opts: &Options, report: &mut Report) {
    let patterns: Vec<&str> = match &c.paths {
        Some(p) => p.value.iter().map(|p| p.value.as_str()).collect(),
        None => vec![kubernetes::DEFAULT_PATHS],
    };
    check_paths(&patterns, &[], true, subject, opts, report);
    let links = c
        .containers_dir
        .as_deref()
        .unwrap_or(Path::new(kubernetes::DEFAULT_CONTAINERS_DIR));
    match fs::read_dir(links) {
        Ok(_) => report.add(
            Status::Pass,
            subject,
            format!("{} can be listed (container_id comes from its links)", links.display()),
        ),
        Err(e) => report.add(
            Status::Warn,
            subject,
            format!(
                "{} cannot be listed: {e}; events will have no container_id (mount it read-only)",
                links.display()
            ),
        ),
    }
}

/// The checks of a tailing input's glob `patterns`: they match files (not directories),
/// their directories can be listed (watched, when `follow`), the files can be opened.
fn check_paths(
    patterns: &[&str],
    excludes: &[glob::Pattern],
    follow: bool,
    subject: &str,
    opts: &Options,
    report: &mut Report,
) {
    let mut files = Vec::new();
    for &pattern in patterns {
        files.extend(check_pattern(pattern, excludes, follow, subject, opts, report));
    }
    files.sort();
    files.dedup();
    if !files.is_empty() {
        check_readable(&files, subject, opts, report);
    }
}

/// What a glob pattern matches.
#[derive(Default)]
struct Matches {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    excluded: usize,
    unlistable: Vec<String>,
}

impl Matches {
    fn of(paths: glob::Paths, excludes: &[glob::Pattern]) -> Matches {
        let mut m = Matches::default();
        for entry in paths {
            match entry {
                Ok(p) if excludes.iter().any(|x| x.matches_path(&p)) => m.excluded += 1,
                Ok(p) if p.is_dir() => m.dirs.push(p),
                Ok(p) => m.files.push(p),
                Err(e) => m.unlistable.push(format!("{}: {}", e.path().display(), e.error())),
            }
        }
        m
    }
}

/// One pattern: what it matches (directories and unlistable entries are failures; no match
/// at all is a failure, or a warning when following a directory that exists) and, when
/// following, whether its fixed directory can be watched. Returns the files it matches.
fn check_pattern(
    pattern: &str,
    excludes: &[glob::Pattern],
    follow: bool,
    subject: &str,
    opts: &Options,
    report: &mut Report,
) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob(pattern) else {
        report.add(
            Status::Fail,
            subject,
            format!("`{pattern}` is not a valid glob pattern"),
        );
        return Vec::new();
    };
    let m = Matches::of(paths, excludes);
    for u in &m.unlistable {
        report.add(Status::Fail, subject, format!("`{pattern}`: cannot list {u}"));
    }
    if !m.dirs.is_empty() {
        report.add(
            Status::Fail,
            subject,
            format!(
                "`{pattern}` matches {} that {} a directory, not a file: {} (did you mean `{}/*.log`?)",
                plural(m.dirs.len(), "path"),
                if m.dirs.len() == 1 { "is" } else { "are" },
                listed(&m.dirs, opts.max_listed),
                m.dirs[0].display()
            ),
        );
    }
    let base = fixed_prefix(pattern);
    let base_shown = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base.as_path()
    };
    let base_listable = fs::read_dir(base_shown);
    if m.files.is_empty() && m.dirs.is_empty() {
        report_no_match(pattern, m.excluded, base_shown, &base_listable, follow, subject, report);
    } else if !m.files.is_empty() {
        report.add(
            Status::Pass,
            subject,
            format!(
                "`{pattern}` matches {}: {}",
                plural(m.files.len(), "file"),
                listed(&m.files, opts.max_listed)
            ),
        );
    }
    if follow {
        match base_listable {
            Ok(_) => report.add(
                Status::Pass,
                subject,
                format!("{} can be watched (listed)", base_shown.display()),
            ),
            // Already named in the "matches no file" line.
            Err(_) if m.files.is_empty() => {}
            Err(e) => report.add(
                Status::Fail,
                subject,
                format!("{} cannot be watched: {e}", base_shown.display()),
            ),
        }
    }
    m.files
}

/// A pattern that matches nothing: why (its directory is missing or unlistable, files
/// were excluded). Following a directory that exists, files may simply not have appeared
/// yet: a warning.
fn report_no_match(
    pattern: &str,
    excluded: usize,
    base: &Path,
    base_listable: &std::io::Result<fs::ReadDir>,
    follow: bool,
    subject: &str,
    report: &mut Report,
) {
    let why = match base_listable {
        Ok(_) => String::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!(", and {} does not exist", base.display())
        }
        Err(e) => format!(", and {} cannot be listed: {e}", base.display()),
    };
    let excluded = if excluded > 0 {
        format!(" ({excluded} excluded by `exclude`)")
    } else {
        String::new()
    };
    let status = if follow && base_listable.is_ok() {
        Status::Warn
    } else {
        Status::Fail
    };
    let later = if status == Status::Warn {
        "; files that appear later will be read"
    } else {
        ""
    };
    report.add(
        status,
        subject,
        format!("`{pattern}` matches no file{excluded}{why}{later}"),
    );
}

/// Opens (and reads a byte of) the first `opts.max_opened` of `files`.
fn check_readable(files: &[PathBuf], subject: &str, opts: &Options, report: &mut Report) {
    let mut unreadable = Vec::new();
    let opened = files.len().min(opts.max_opened);
    for f in &files[..opened] {
        if let Err(e) = fs::File::open(f).and_then(|mut file| file.read(&mut [0u8; 1])) {
            unreadable.push(format!("{}: {e}", f.display()));
        }
    }
    if unreadable.is_empty() {
        let of = if opened < files.len() {
            format!(" (the first {opened} of {})", files.len())
        } else {
            String::new()
        };
        report.add(
            Status::Pass,
            subject,
            format!("{} readable{of}", plural(opened, "file")),
        );
    } else {
        let mut detail = format!(
            "{} of {} cannot be read: {}",
            unreadable.len(),
            plural(opened, "file"),
            unreadable[..unreadable.len().min(opts.max_listed)].join("; ")
        );
        if unreadable.len() > opts.max_listed {
            detail.push_str(&format!(" (and {} more)", unreadable.len() - opts.max_listed));
        }
        report.add(Status::Fail, subject, detail);
    }
}

/// Writes and removes a probe file in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".weir-doctor-{}", std::process::id()));
    let result = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"weir doctor\n").and_then(|()| f.sync_all()));
    let removed = fs::remove_file(&probe);
    result?;
    removed
}

/// Checks that `dir` is (or can become) a writable directory; true when it exists afterwards
/// (so its checkpoints can be read).
fn check_data_dir(dir: &Path, report: &mut Report) -> bool {
    let subject = "data_dir";
    if dir.exists() {
        if !dir.is_dir() {
            report.add(
                Status::Fail,
                subject,
                format!("{} exists but is not a directory", dir.display()),
            );
            return false;
        }
        match probe_write(dir) {
            Ok(()) => report.add(Status::Pass, subject, format!("{} is writable", dir.display())),
            Err(e) => report.add(
                Status::Fail,
                subject,
                format!("{} is not writable: {e} (checkpoints cannot be saved)", dir.display()),
            ),
        }
        return true;
    }
    // Create it the way `weir run` would, test it, and take back what was created.
    let mut created = Vec::new();
    let mut p = dir;
    while !p.as_os_str().is_empty() && !p.exists() {
        created.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    let result = fs::create_dir_all(dir).and_then(|()| probe_write(dir));
    for d in &created {
        let _ = fs::remove_dir(d);
    }
    match result {
        Ok(()) => report.add(
            Status::Pass,
            subject,
            format!("{} does not exist yet; it can be created and written", dir.display()),
        ),
        Err(e) => {
            let blocker = dir
                .ancestors()
                .skip(1)
                .find(|a| a.exists() && !a.is_dir())
                .map(|a| format!(" ({} is not a directory)", a.display()))
                .unwrap_or_default();
            report.add(
                Status::Fail,
                subject,
                format!("{} cannot be created: {e}{blocker}", dir.display()),
            );
        }
    }
    false
}

/// Loads the checkpoints in `dir` and compares each offset with its file; returns the
/// checkpoint file's modification time, for the clock check.
fn check_checkpoints(dir: &Path, prune_after: Duration, opts: &Options, report: &mut Report) -> Option<SystemTime> {
    let subject = "checkpoints";
    let store = match Checkpoints::load(dir) {
        Ok(s) => s,
        Err(e) => {
            report.add(Status::Fail, subject, e.to_string());
            return None;
        }
    };
    let file = dir.join(CHECKPOINT_FILE);
    let mtime = fs::metadata(&file).and_then(|m| m.modified()).ok();
    if mtime.is_none() {
        report.add(
            Status::Pass,
            subject,
            format!("none saved yet in {} (every file starts afresh)", dir.display()),
        );
        return None;
    }
    let mut entries = store.entries();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let problems = checkpoint_problems(&entries, prune_after);
    let ok = entries.len() - problems.len();
    report.add(
        Status::Pass,
        subject,
        format!(
            "{} loaded; {ok} within their file's size",
            if entries.len() == 1 {
                "1 entry".to_string()
            } else {
                format!("{} entries", entries.len())
            },
        ),
    );
    for p in problems.iter().take(opts.max_listed) {
        report.add(Status::Warn, subject, p.clone());
    }
    if problems.len() > opts.max_listed {
        report.add(
            Status::Warn,
            subject,
            format!("and {} more like these", problems.len() - opts.max_listed),
        );
    }
    mtime
}

/// What is off with the checkpointed files: an offset beyond the file's size, a file
/// rotated, gone or of unknown whereabouts (by the rule the agent prunes by, see
/// `delivery/acks.rs`).
fn checkpoint_problems(entries: &[&Entry], prune_after: Duration) -> Vec<String> {
    let found = whereabouts(
        &entries
            .iter()
            .map(|e| (&e.identity, e.path.as_path()))
            .collect::<Vec<_>>(),
    );
    let after = weir_core::units::Dur(prune_after);
    let mut problems = Vec::new();
    for (e, found) in entries.iter().zip(found) {
        let shown = e.path.display();
        match found {
            Whereabouts::Present(at) if at == e.path => {
                let size = fs::metadata(&at).map_or(0, |m| m.len());
                if e.offset > size {
                    problems.push(format!(
                        "{shown}: offset {} is beyond its size {size} (truncated? it will be read from the start)",
                        e.offset,
                    ));
                }
            }
            Whereabouts::Present(at) => problems.push(format!(
                "{shown} is now {} (rotated); the checkpoint stays with it, its rest is read from there",
                at.display()
            )),
            Whereabouts::Gone => problems.push(format!(
                "{shown} is gone (deleted, or moved out of its directory) at offset {}; its checkpoint is \
                 dropped once it has been gone for checkpoint_prune_after ({after}) while the agent runs",
                e.offset
            )),
            Whereabouts::Unknown(why) => problems.push(format!(
                "{shown}: cannot tell whether it is still there ({why}); its checkpoint is kept"
            )),
        }
    }
    problems
}

fn check_outputs(loaded: &Loaded, opts: &Options, report: &mut Report) {
    for (i, output) in loaded.config.outputs.iter().enumerate() {
        let subject = format!("outputs[{i}] {}", output.value.type_name());
        match &output.value {
            OutputConfig::Stdout(_) => report.add(Status::Pass, subject, "standard output is always there"),
            OutputConfig::File(c) => check_file_output(&c.path.value, &subject, report),
            OutputConfig::Http(c) => check_http_output(&c.uri.value, &subject, opts, report),
            OutputConfig::Opentelemetry(c) => check_http_output(&c.endpoint.value, &subject, opts, report),
            OutputConfig::Kafka(c) => {
                let fixed = (!c.topic.value.contains('{')).then_some(c.topic.value.as_str());
                check_kafka(c.client(), fixed.as_slice(), &subject, opts, report);
            }
        }
    }
}

/// Each disk buffer: bytes and segments waiting, and when the oldest segment was written;
/// a warning when it is at least 90% full (the output is behind: it blocks or drops).
fn check_buffers(loaded: &Loaded, data_dir: &Path, report: &mut Report) {
    for (i, output) in loaded.config.outputs.iter().enumerate() {
        let output = output.value.get();
        let Some(config) = output.buffer().filter(|b| b.kind == BufferKind::Disk) else {
            continue;
        };
        let subject = format!("outputs[{i}] buffer");
        let dir = buffer::dir(data_dir, i, output.name());
        if !dir.exists() {
            report.add(
                Status::Pass,
                subject,
                format!("{} is empty (not created yet)", dir.display()),
            );
            continue;
        }
        match buffer::usage(&dir) {
            Ok((bytes, segments, oldest)) => {
                let age = oldest
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map_or("none".to_string(), |d| format!("{}s ago", d.as_secs()));
                let max = config.max_size();
                let status = if bytes.saturating_mul(10) >= max.saturating_mul(9) {
                    Status::Warn
                } else {
                    Status::Pass
                };
                report.add(
                    status,
                    subject,
                    format!(
                        "{}: {bytes} bytes of {max} in {}, oldest written {age}",
                        dir.display(),
                        plural(segments, "segment")
                    ),
                );
            }
            Err(e) => report.add(Status::Fail, subject, format!("{} cannot be read: {e}", dir.display())),
        }
    }
}

fn check_file_output(path: &Path, subject: &str, report: &mut Report) {
    if path.is_dir() {
        report.add(Status::Fail, subject, format!("{} is a directory", path.display()));
        return;
    }
    if path.exists() {
        // Opening for append changes nothing.
        match fs::OpenOptions::new().append(true).open(path) {
            Ok(_) => report.add(Status::Pass, subject, format!("{} can be written", path.display())),
            Err(e) => report.add(
                Status::Fail,
                subject,
                format!("{} cannot be written: {e}", path.display()),
            ),
        }
        return;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return report.add(
            Status::Fail,
            subject,
            format!(
                "{} cannot be created: {} is not a directory",
                path.display(),
                dir.display()
            ),
        );
    }
    match probe_write(dir) {
        Ok(()) => report.add(
            Status::Pass,
            subject,
            format!("{} will be created ({} is writable)", path.display(), dir.display()),
        ),
        Err(e) => report.add(
            Status::Fail,
            subject,
            format!(
                "{} cannot be created: {} is not writable: {e}",
                path.display(),
                dir.display()
            ),
        ),
    }
}

/// `host:port` of an `http://` uri (port 80 when not given).
fn http_authority(uri: &str) -> Result<(String, u16), String> {
    let parsed: ureq::http::Uri = uri.parse().map_err(|e| format!("`{uri}` is not a URI: {e}"))?;
    let host = parsed
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(format!("`{uri}` has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let default = if parsed.scheme_str() == Some("https") { 443 } else { 80 };
    Ok((host, parsed.port_u16().unwrap_or(default)))
}

fn check_http_output(uri: &str, subject: &str, opts: &Options, report: &mut Report) {
    match http_authority(uri) {
        Ok((host, port)) => check_reachable(&host, port, uri, subject, opts, report),
        Err(e) => report.add(Status::Fail, subject, e),
    }
}

/// Whether `host:port` (from `from`, as the user wrote it) accepts TCP connections.
fn check_reachable(host: &str, port: u16, from: &str, subject: &str, opts: &Options, report: &mut Report) {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return report.add(
                Status::Fail,
                subject,
                format!("{shown} (from {from}): the host name does not resolve: {e}"),
            );
        }
    };
    let mut last_err = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, opts.connect_timeout) {
            Ok(_) => {
                return report.add(
                    Status::Pass,
                    subject,
                    format!("{shown} accepts TCP connections (at {addr})"),
                );
            }
            Err(e) => last_err = Some(format!("{addr}: {e}")),
        }
    }
    report.add(
        Status::Fail,
        subject,
        format!(
            "{shown} (from {from}) is not reachable within {:?}: {}; events would wait and be retried",
            opts.connect_timeout,
            last_err.unwrap_or_else(|| "no address".into())
        ),
    );
}

/// Each bootstrap server accepts connections, and the cluster answers with its topics
/// (one of `topics` that is not there is a warning: brokers may create it on first use).
fn check_kafka(client: Client<'_>, topics: &[&str], subject: &str, opts: &Options, report: &mut Report) {
    let servers = &client.bootstrap_servers.value;
    for server in servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match server
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse().ok()?)))
        {
            Some((host, port)) => check_reachable(host, port, servers, subject, opts, report),
            None => report.add(
                Status::Fail,
                subject,
                format!("bootstrap server {server:?} is not host:port"),
            ),
        }
    }
    let producer: rdkafka::producer::BaseProducer = match client.config(|_| {}).create() {
        Ok(p) => p,
        Err(e) => return report.add(Status::Fail, subject, format!("librdkafka refuses the settings: {e}")),
    };
    let meta = match producer.client().fetch_metadata(None, opts.connect_timeout * 5) {
        Ok(meta) => meta,
        Err(e) => {
            return report.add(
                Status::Fail,
                subject,
                format!("no cluster metadata from {servers}: {e}"),
            );
        }
    };
    report.add(
        Status::Pass,
        subject,
        format!(
            "the cluster answers: {} broker(s), {} topic(s)",
            meta.brokers().len(),
            meta.topics().len()
        ),
    );
    for t in topics {
        if !meta.topics().iter().any(|m| m.name() == *t) {
            report.add(
                Status::Warn,
                subject,
                format!("topic {t:?} does not exist yet (used only if the brokers create topics)"),
            );
        }
    }
}

/// The consumer group's coordinator answers.
fn check_kafka_group(c: &KafkaInputConfig, subject: &str, opts: &Options, report: &mut Report) {
    let Ok(consumer) = c.client_config().create::<rdkafka::consumer::BaseConsumer>() else {
        return; // reported by check_kafka
    };
    use rdkafka::consumer::Consumer as _;
    match consumer.fetch_group_list(Some(&c.group_id.value), opts.connect_timeout * 5) {
        Ok(_) => report.add(
            Status::Pass,
            subject,
            format!("the coordinator of group {:?} answers", c.group_id.value),
        ),
        Err(e) => report.add(
            Status::Fail,
            subject,
            format!("the coordinator of group {:?} does not answer: {e}", c.group_id.value),
        ),
    }
}

fn check_admin(loaded: &Loaded, opts: &Options, report: &mut Report) {
    let Some(admin) = &loaded.config.admin else {
        report.add(Status::Pass, "admin", "not configured (no /health or /metrics)");
        return;
    };
    let address = admin.value.address.value.as_str();
    match TcpListener::bind(address) {
        Ok(_) => report.add(Status::Pass, "admin", format!("{address} can be listened on")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => match health(address, opts.connect_timeout) {
            Some(status) if status.starts_with("200") => report.add(
                Status::Pass,
                "admin",
                format!("{address} is in use by a running agent whose /health answers {status}"),
            ),
            Some(status) => report.add(
                Status::Warn,
                "admin",
                format!("{address} is in use; its /health answers {status}"),
            ),
            None => report.add(
                Status::Fail,
                "admin",
                format!("{address} is in use by another program: `weir run` would fail to start"),
            ),
        },
        Err(e) => report.add(Status::Fail, "admin", format!("cannot listen on {address}: {e}")),
    }
}

/// The status line's code and reason of `GET /health` at `address`, if something answers HTTP.
fn health(address: &str, timeout: Duration) -> Option<String> {
    let addr = address.to_socket_addrs().ok()?.next()?;
    // A wildcard listen address is reached on loopback.
    let addr = if addr.ip().is_unspecified() {
        let ip: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        std::net::SocketAddr::new(ip, addr.port())
    } else {
        addr
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line
        .lines()
        .next()?
        .strip_prefix("HTTP/1.")?
        .get(2..)?
        .trim()
        .to_string();
    Some(status)
}

/// 2020-01-01T00:00:00Z: a clock before it is surely wrong.
const SANE_CLOCK_FLOOR: u64 = 1_577_836_800;

/// Checks `now` against 2020 and against the checkpoint file's modification time.
fn check_clock(now: SystemTime, checkpoint_mtime: Option<SystemTime>, report: &mut Report) {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if secs < SANE_CLOCK_FLOOR {
        report.add(
            Status::Fail,
            "clock",
            format!(
                "the system clock says {}, before 2020: timestamps and checkpoint saves will be wrong",
                utc(secs)
            ),
        );
        return;
    }
    if let Some(mtime) = checkpoint_mtime
        && let Ok(ahead) = mtime.duration_since(now)
        && ahead > Duration::from_secs(60)
    {
        report.add(
            Status::Fail,
            "clock",
            format!(
                "the system clock says {}, {}s before the checkpoint file was last written: \
                 the clock went back",
                utc(secs),
                ahead.as_secs()
            ),
        );
        return;
    }
    report.add(Status::Pass, "clock", format!("the system clock says {}", utc(secs)));
}

/// `secs` since the epoch as RFC 3339 UTC, to the second.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `weir doctor`: prints the findings and a summary; fails when a check failed.
pub fn main(config: &Path) -> std::process::ExitCode {
    let report = check(config, &Options::default());
    for finding in &report.findings {
        println!("{finding}");
    }
    println!("{}", report.summary());
    if report.failed() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(SANE_CLOCK_FLOOR), "2020-01-01T00:00:00Z");
        assert_eq!(utc(951_825_600), "2000-02-29T12:00:00Z");
        assert_eq!(utc(1_767_225_599), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn fixed_prefix_stops_at_the_first_wildcard() {
        assert_eq!(fixed_prefix("/var/log/pods/*/*/*.log"), Path::new("/var/log/pods"));
        assert_eq!(fixed_prefix("/var/log/app.log"), Path::new("/var/log"));
        assert_eq!(fixed_prefix("logs/a?.log"), Path::new("logs"));
        assert_eq!(fixed_prefix("*.log"), Path::new(""));
    }

    #[test]
    fn http_authority_defaults_the_port() {
        assert_eq!(http_authority("http://es:9200/_bulk").unwrap(), ("es".into(), 9200));
        assert_eq!(
            http_authority("http://collector/ingest").unwrap(),
            ("collector".into(), 80)
        );
        assert_eq!(http_authority("http://[::1]:8080/").unwrap(), ("::1".into(), 8080));
    }

    #[test]
    fn clock_before_2020_or_behind_the_checkpoints_fails() {
        let mut r = Report::default();
        check_clock(UNIX_EPOCH + Duration::from_secs(1_000_000), None, &mut r);
        assert_eq!(r.findings[0].status, Status::Fail, "{:?}", r.findings);
        let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let mut r = Report::default();
        check_clock(now, Some(now + Duration::from_secs(3600)), &mut r);
        assert_eq!(r.findings[0].status, Status::Fail, "{:?}", r.findings);
        assert!(r.findings[0].detail.contains("3600s before"), "{:?}", r.findings);
        let mut r = Report::default();
        check_clock(now, Some(now + Duration::from_secs(30)), &mut r);
        assert_eq!(r.findings[0].status, Status::Pass, "{:?}", r.findings);
    }
}

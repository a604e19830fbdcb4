//! Named workloads: a pipeline file plus the corpus it reads and the number of events it
//! must write.
//!
//! A workload is a normal pipeline file (`perf/workloads/<name>.yaml`) whose input path
//! is the placeholder `{corpus}` and output path `{output}`; the harness substitutes
//! them. Its leading comment holds the benchmark's part, a YAML block after `# bench:`:
//!
//! ```yaml
//! # json-filter: JSON lines parsed, only errors and warnings kept.
//! # bench:
//! #   corpus: json                 # a kind of weir_perf::corpus
//! #   expect:                      # how many events the output must hold
//! #     lines_containing: ['"level":"error"', '"level":"warn"']
//! #   forbid: ['"_error"']         # optional: text the output must not contain
//! inputs:
//!   - { type: file, paths: ['{corpus}'], mode: once }
//! ...
//! ```
//!
//! The first comment line is the workload's description. `expect: records` means the
//! number of records the generator made ([`crate::corpus::Corpus::lines`]).
//!
//! A workload with Kafka says so with `kafka: produce` or `kafka: consume` in its block
//! ([`KafkaRole`]) and uses `{bootstrap}` and `{topic}` (and `{group}` to consume); the
//! harness needs a broker for it ([`crate::kafka`]).
//!
//! A workload whose input listens (OTLP, syslog over TCP) says what the harness sends it
//! with `send: otlp` or `send: syslog_tcp` ([`SendRole`]); its input listens on
//! `{address}` (the harness fills in `127.0.0.1:PORT`, a free port) and it writes to
//! `{output}`. The harness starts the measured `weir run`, then sends the corpus to it
//! from outside that process, not measured ([`crate::send`]); the pipeline ends itself
//! with `exit_when: { idle: ... }` once nothing more comes:
//!
//! ```yaml
//! # otlp-in: nginx lines received as OTLP/HTTP logs.
//! # bench:
//! #   corpus: nginx
//! #   expect: records
//! #   send: otlp
//! exit_when: { idle: 3s }
//! inputs:
//!   - { type: opentelemetry, address: '{address}' }
//! outputs:
//!   - { type: file, path: '{output}', append: false }
//! ```
//!
//! A workload that runs example Wasm plugins names them with `plugins: [filter]` in its
//! block and loads each as `'{plugins}/NAME.wasm'`: `{plugins}` is the directory the
//! example plugins of `wasm-plugins/` are built into (`weir bench --plugins-dir`); the
//! harness compiles them into Weir's plugin cache before the measured runs.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How many events a workload's output must hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expect {
    /// One per record of the corpus, as its generator counted them.
    Records,
    /// One per corpus line that contains any of these strings (filters): counted in the
    /// corpus by the harness, independently of the pipeline under test.
    LinesContaining(Vec<String>),
}

/// What a workload does with Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaRole {
    /// The pipeline reads `{corpus}` and writes to `{topic}`; the harness reads the topic
    /// back (not measured) to count the events.
    Produce,
    /// The harness fills `{topic}` with the corpus first (not measured); the pipeline
    /// reads it as consumer group `{group}` into `{output}`.
    Consume,
}

/// What the harness sends to a workload whose input listens on `{address}`. The sending
/// is not measured: it happens outside the measured `weir run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendRole {
    /// Each line of the corpus as an OTLP/HTTP protobuf log record, POSTed to
    /// `http://{address}/v1/logs` by a second `weir run` (a `file` input into an
    /// `opentelemetry` output), which retries while the measured one starts and whenever
    /// it answers 429.
    Otlp,
    /// The corpus file as it is (newline-terminated syslog messages) over one TCP
    /// connection to `{address}`, then the write side shut down.
    SyslogTcp,
}

/// The placeholders a pipeline in these roles must use.
fn placeholders(kafka: Option<KafkaRole>, send: Option<SendRole>) -> &'static [&'static str] {
    match (kafka, send) {
        (Some(KafkaRole::Produce), _) => &["{corpus}", "{bootstrap}", "{topic}"],
        (Some(KafkaRole::Consume), _) => &["{bootstrap}", "{topic}", "{group}", "{output}"],
        (None, Some(_)) => &["{address}", "{output}"],
        (None, None) => &["{corpus}", "{output}"],
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    corpus: String,
    expect: Expect,
    #[serde(default)]
    forbid: Vec<String>,
    #[serde(default)]
    kafka: Option<KafkaRole>,
    #[serde(default)]
    send: Option<SendRole>,
    #[serde(default)]
    exec: Vec<String>,
    #[serde(default)]
    plugins: Vec<String>,
}

/// A named workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The file name without `.yaml`.
    pub name: String,
    /// The workload file.
    pub path: PathBuf,
    /// The first line of its leading comment.
    pub about: String,
    /// The corpus kind it reads.
    pub corpus: String,
    /// The expected number of output events.
    pub expect: Expect,
    /// Text the output must not contain (e.g. `"_error"` of lines not in the format).
    pub forbid: Vec<String>,
    /// What it does with Kafka, if anything.
    pub kafka: Option<KafkaRole>,
    /// What the harness sends to its listening input, if it has one.
    pub send: Option<SendRole>,
    /// A command for `weir run --exec -- ...` (`{corpus}` in its arguments is the corpus
    /// file), when the workload reads a child's output.
    pub exec: Vec<String>,
    /// The example Wasm plugins it loads from `{plugins}` (file names without `.wasm`).
    pub plugins: Vec<String>,
    /// The pipeline text, placeholders included.
    pub template: String,
}

impl Workload {
    /// Reads a workload file.
    pub fn load(path: &Path) -> Result<Workload, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Workload::parse(path, &text)
    }

    /// Parses a workload from its text; `path` names it.
    pub fn parse(path: &Path, text: &str) -> Result<Workload, String> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: not a workload file name", path.display()))?
            .to_string();
        let fail = |msg: String| format!("{}: {msg}", path.display());
        let comments: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        let about = comments
            .first()
            .map(|l| l.trim_start_matches('#').trim().to_string())
            .filter(|l| !l.starts_with("bench:"))
            .unwrap_or_default();
        let at = comments
            .iter()
            .position(|l| l.trim_start_matches('#').trim() == "bench:")
            .ok_or_else(|| fail("no `# bench:` block in the leading comment".into()))?;
        let block: String = comments[at + 1..]
            .iter()
            .map(|l| l.strip_prefix('#').unwrap_or(l))
            .take_while(|l| l.starts_with("  "))
            .map(|l| format!("{l}\n"))
            .collect();
        let meta: Meta = serde_saphyr::from_str(&block).map_err(|e| fail(format!("`# bench:` block: {e}")))?;
        if crate::corpus::by_name(&meta.corpus).is_none() {
            return Err(fail(format!("unknown corpus kind `{}`", meta.corpus)));
        }
        if let Expect::LinesContaining(any) = &meta.expect
            && (any.is_empty() || any.iter().any(String::is_empty))
        {
            return Err(fail("`lines_containing` needs non-empty strings".into()));
        }
        if meta.kafka.is_some() && meta.send.is_some() {
            return Err(fail(
                "`kafka` and `send` do not go together: one input per workload".into(),
            ));
        }
        for placeholder in placeholders(meta.kafka, meta.send) {
            if !text.contains(placeholder) {
                return Err(fail(format!("the pipeline does not use `{placeholder}`")));
            }
        }
        for plugin in &meta.plugins {
            let file = format!("{{plugins}}/{plugin}.wasm");
            if !text.contains(&file) {
                return Err(fail(format!(
                    "`plugins` names `{plugin}`, but the pipeline does not load `{file}`"
                )));
            }
        }
        Ok(Workload {
            name,
            path: path.to_path_buf(),
            about,
            corpus: meta.corpus,
            expect: meta.expect,
            forbid: meta.forbid,
            kafka: meta.kafka,
            send: meta.send,
            exec: meta.exec,
            plugins: meta.plugins,
            template: text.to_string(),
        })
    }

    /// The pipeline reading `corpus` and writing `output`, with the other placeholders'
    /// values from `more` (a Kafka workload's `{bootstrap}`, `{topic}` and `{group}`, a
    /// listening one's `{address}`, a plugin workload's `{plugins}`).
    pub fn pipeline(&self, corpus: &Path, output: &Path, more: &[(&str, &str)]) -> String {
        let mut values = vec![("corpus", corpus), ("output", output)];
        values.extend(more.iter().map(|(k, v)| (*k, Path::new(v))));
        substitute(&self.template, &values)
    }
}

/// Replaces each `{name}` in `template` by its path. Paths are written inside YAML
/// single quotes by the templates, so a `'` is doubled.
pub fn substitute(template: &str, values: &[(&str, &Path)]) -> String {
    let mut text = template.to_string();
    for (name, path) in values {
        let value = path.to_string_lossy().replace('\'', "''");
        text = text.replace(&format!("{{{name}}}"), &value);
    }
    text
}

/// The workloads in `dir` (every `*.yaml`), sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Workload>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut workloads = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            workloads.push(Workload::load(&path)?);
        }
    }
    workloads.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(workloads)
}

/// The workloads shipped with this crate's source (`perf/workloads`).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads")
}

impl Expect {
    /// The expected event count for a corpus file holding `records` records.
    pub fn count(&self, corpus: &Path, records: u64) -> io::Result<u64> {
        match self {
            Expect::Records => Ok(records),
            Expect::LinesContaining(any) => {
                let finders: Vec<memchr::memmem::Finder> =
                    any.iter().map(|s| memchr::memmem::Finder::new(s.as_bytes())).collect();
                let (mut n, mut hit) = (0, false);
                for_each_line(File::open(corpus)?, |piece, last| {
                    hit |= finders.iter().any(|f| f.find(piece).is_some());
                    if last {
                        n += u64::from(hit);
                        hit = false;
                    }
                })?;
                Ok(n)
            }
        }
    }
}

/// Calls `f(piece, last)` for each line of `reader` (without its `\n`), in bounded
/// memory: a line longer than the buffer comes in several pieces, `last` true on its last
/// one. (A needle split across two pieces of such a line is not seen: no workload's
/// needle is near 1 MiB apart from a line start.)
fn for_each_line(mut reader: impl Read, mut f: impl FnMut(&[u8], bool)) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    loop {
        let n = reader.read(&mut buf[filled..])?;
        let end = filled + n;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[filled..end]) {
            f(&buf[start..filled + nl], true);
            start = filled + nl + 1;
        }
        if n == 0 {
            if start < end {
                f(&buf[start..end], true);
            }
            return Ok(());
        }
        if start == 0 && end == buf.len() {
            // A line longer than the buffer: hand over what we have.
            f(&buf[..end], false);
            filled = 0;
            continue;
        }
        buf.copy_within(start..end, 0);
        filled = end - start;
    }
}

/// What a run's output file holds: its event (line) count and which forbidden strings
/// it contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputCheck {
    /// Lines.
    pub events: u64,
    /// The forbidden strings found.
    pub found: Vec<String>,
}

/// Counts the lines of `output` and looks for each of `forbid` in them.
pub fn check_output(output: &Path, forbid: &[String]) -> io::Result<OutputCheck> {
    let finders: Vec<memchr::memmem::Finder> = forbid
        .iter()
        .map(|s| memchr::memmem::Finder::new(s.as_bytes()))
        .collect();
    let mut seen = vec![false; forbid.len()];
    let mut events = 0;
    for_each_line(File::open(output)?, |piece, last| {
        events += u64::from(last);
        for (f, seen) in finders.iter().zip(&mut seen) {
            *seen |= f.find(piece).is_some();
        }
    })?;
    Ok(OutputCheck {
        events,
        found: forbid
            .iter()
            .zip(seen)
            .filter(|(_, s)| *s)
            .map(|(f, _)| f.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_workloads_load_and_cover_every_corpus_kind() {
        let all = load_dir(&default_dir()).unwrap();
        for (kind, _) in crate::corpus::KINDS {
            assert!(all.iter().any(|w| w.corpus == *kind), "no workload reads `{kind}`");
        }
        for w in &all {
            assert!(!w.about.is_empty(), "{}: no description", w.name);
        }
        let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
        for want in [
            "passthrough",
            "multiline-java",
            "nginx-regex",
            "json-filter",
            "delimiter",
            "cri",
        ] {
            assert!(names.contains(&want), "{want}");
        }
        let send = |name: &str| all.iter().find(|w| w.name == name).and_then(|w| w.send);
        assert_eq!(send("otlp-in"), Some(SendRole::Otlp));
        assert_eq!(send("syslog-in"), Some(SendRole::SyslogTcp));
    }

    #[test]
    fn parse_and_substitute() {
        let text = "# about it\n# bench:\n#   corpus: json\n#   expect: { lines_containing: [x] }\n\
                    #   forbid: ['\"_error\"']\ninputs: [{type: file, paths: ['{corpus}'], mode: once}]\n\
                    outputs: [{type: file, path: '{output}'}]\n";
        let w = Workload::parse(Path::new("/w/j.yaml"), text).unwrap();
        assert_eq!(
            (w.name.as_str(), w.about.as_str(), w.corpus.as_str()),
            ("j", "about it", "json")
        );
        assert_eq!(w.expect, Expect::LinesContaining(vec!["x".into()]));
        assert_eq!(w.forbid, vec!["\"_error\"".to_string()]);
        let p = w.pipeline(Path::new("/c/it's.log"), Path::new("/o/out"), &[]);
        assert!(
            p.contains("paths: ['/c/it''s.log']") && p.contains("path: '/o/out'"),
            "{p}"
        );

        let bad = |t: &str| Workload::parse(Path::new("x.yaml"), t).unwrap_err();
        assert!(bad("inputs: []\n").contains("no `# bench:`"));
        assert!(bad("# bench:\n#   corpus: nope\n#   expect: records\n{corpus}{output}").contains("unknown corpus"));
        assert!(bad("# bench:\n#   corpus: json\n#   expect: records\n{corpus}").contains("{output}"));
        assert!(bad("# bench:\n#   corpus: json\n#   expect: all\n{corpus}{output}").contains("bench:"));

        let kafka = "# k\n# bench:\n#   corpus: nginx\n#   expect: records\n#   kafka: consume\n\
                     inputs: [{type: kafka, bootstrap_servers: '{bootstrap}', topics: ['{topic}'], group_id: '{group}'}]\n\
                     outputs: [{type: file, path: '{output}'}]\n";
        let w = Workload::parse(Path::new("k.yaml"), kafka).unwrap();
        assert_eq!(w.kafka, Some(KafkaRole::Consume));
        let p = w.pipeline(
            Path::new("/c"),
            Path::new("/o"),
            &[("bootstrap", "h:1"), ("topic", "t"), ("group", "g")],
        );
        assert!(
            p.contains("'h:1'") && p.contains("['t']") && p.contains("'g'") && p.contains("'/o'"),
            "{p}"
        );
        assert!(bad(&kafka.replace("'{group}'", "g")).contains("{group}"));
    }

    #[test]
    fn a_plugin_workload_loads_each_plugin_it_names_from_the_plugins_directory() {
        let text = "# w\n# bench:\n#   corpus: json\n#   expect: records\n#   plugins: [noop]\n\
                    inputs: [{type: file, paths: ['{corpus}']}]\n\
                    processors: [{type: wasm, plugin: '{plugins}/noop.wasm'}]\n\
                    outputs: [{type: file, path: '{output}'}]\n";
        let w = Workload::parse(Path::new("w.yaml"), text).unwrap();
        assert_eq!(w.plugins, ["noop"]);
        let p = w.pipeline(Path::new("/c"), Path::new("/o"), &[("plugins", "/built")]);
        assert!(p.contains("plugin: '/built/noop.wasm'"), "{p}");
        let err = Workload::parse(Path::new("w.yaml"), &text.replace("[noop]", "[filter]")).unwrap_err();
        assert!(
            err.contains("`plugins` names `filter`, but the pipeline does not load `{plugins}/filter.wasm`"),
            "{err}"
        );
    }

    #[test]
    fn a_listening_workload_says_what_is_sent_to_its_address() {
        let otlp = "# o\n# bench:\n#   corpus: nginx\n#   expect: records\n#   send: otlp\n\
                    exit_when: { idle: 3s }\n\
                    inputs: [{type: opentelemetry, address: '{address}'}]\n\
                    outputs: [{type: file, path: '{output}'}]\n";
        let w = Workload::parse(Path::new("o.yaml"), otlp).unwrap();
        assert_eq!((w.send, w.kafka), (Some(SendRole::Otlp), None));
        let p = w.pipeline(Path::new("/c"), Path::new("/o"), &[("address", "127.0.0.1:4318")]);
        assert!(
            p.contains("address: '127.0.0.1:4318'") && p.contains("path: '/o'"),
            "{p}"
        );
        assert!(!p.contains("{address}") && !p.contains("{output}"), "{p}");

        let syslog = otlp.replace("send: otlp", "send: syslog_tcp");
        let w = Workload::parse(Path::new("s.yaml"), &syslog).unwrap();
        assert_eq!(w.send, Some(SendRole::SyslogTcp));

        let bad = |t: &str| Workload::parse(Path::new("x.yaml"), t).unwrap_err();
        // It listens instead of reading the corpus: `{address}` and `{output}` are needed,
        // `{corpus}` is not.
        assert!(bad(&otlp.replace("'{address}'", "'127.0.0.1:1'")).contains("{address}"));
        assert!(bad(&otlp.replace("'{output}'", "'/o'")).contains("{output}"));
        assert!(bad(&otlp.replace("send: otlp", "send: carrier_pigeon")).contains("bench:"));
        let both = otlp.replace("#   send: otlp\n", "#   send: otlp\n#   kafka: consume\n");
        assert!(bad(&both).contains("`kafka` and `send`"), "{}", bad(&both));
    }

    #[test]
    fn counting_lines_and_needles() {
        let dir = std::env::temp_dir().join(format!("weir-perf-wl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.log");
        let long = "z".repeat(3 << 20);
        std::fs::write(&f, format!("a warn\nb\n{long}warn\nerror c\nlast warn")).unwrap();
        let e = Expect::LinesContaining(vec!["warn".into(), "error".into()]);
        assert_eq!(e.count(&f, 99).unwrap(), 4);
        assert_eq!(Expect::Records.count(&f, 99).unwrap(), 99);
        let c = check_output(&f, &["error".into(), "nope".into()]).unwrap();
        assert_eq!(c.found, vec!["error".to_string()]);
        assert_eq!(c.events, 5, "a 3 MiB line is one event");
        std::fs::write(&f, "x\ny\n").unwrap();
        assert_eq!(check_output(&f, &[]).unwrap().events, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! `weir import`: turn another agent's pipeline configuration into a Weir pipeline.
//!
//! The command reads the foreign file into a tree that knows every line:column
//! ([`tree`]), a translator per source format (today [`loongcollector`]) maps each plugin
//! and option it knows onto Weir's components and records everything else in a
//! [`Report`], and the result is written as YAML ([`emit`]) with the report as comments
//! at the top and on stderr. Before writing, the pipeline is loaded and validated as
//! `weir check` would; a pipeline that does not pass is reported, never written as if it
//! were complete.
//!
//! Exit codes: 0 when everything was translated ([`EXIT_PARTIAL`] when something was
//! left out, the rest written anyway), 1 when nothing was written: the file cannot be
//! read, is not YAML, or is not a pipeline of that format (the error names
//! `file:line:column`).
//!
//! Nothing here runs in the hot path: the command only writes a file.

pub mod emit;
pub mod loongcollector;
mod options;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Loaded, Pos};

/// The exit code when the pipeline was written but something could not be translated.
pub const EXIT_PARTIAL: u8 = 3;

/// `weir import SOURCE`.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Translate a LoongCollector / iLogtail pipeline config (YAML with `inputs:`,
    /// `processors:` and `flushers:`; `Type: input_file`, `processor_parse_regex_native`,
    /// `flusher_kafka_v2`...) into a Weir pipeline. What cannot be translated is listed
    /// with its line, as comments at the top of the pipeline and on stderr. Exit codes: 0
    /// everything translated; 3 written, with things left out; 1 nothing written (the file
    /// is unreadable, not YAML or not a LoongCollector pipeline).
    Loongcollector {
        /// The LoongCollector pipeline config (YAML).
        file: PathBuf,
        /// Write the Weir pipeline here instead of to standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

/// Runs `weir import`.
pub fn run(command: ImportCommand) -> ExitCode {
    match command {
        ImportCommand::Loongcollector { file, output } => {
            import(&file, output.as_deref(), "loongcollector", loongcollector::translate)
        }
    }
}

/// How sure a report line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something of the source that the written pipeline does not do.
    LeftOut,
    /// A difference worth knowing that loses nothing (an option with no effect in Weir,
    /// a field that is named differently).
    Note,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Where in the source file (0:0 when it concerns the whole file).
    pub pos: Pos,
    /// What: the plugin and option.
    pub what: String,
    /// Why, and what was written instead if anything.
    pub why: String,
    /// Left out or a note.
    pub severity: Severity,
}

/// What a translation could not carry over, and what it noticed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    items: Vec<Item>,
}

impl Report {
    /// Records something the written pipeline does not do.
    pub fn left_out(&mut self, pos: Pos, what: impl Into<String>, why: impl Into<String>) {
        self.push(pos, what, why, Severity::LeftOut);
    }

    /// Records a difference that loses nothing.
    pub fn note(&mut self, pos: Pos, what: impl Into<String>, why: impl Into<String>) {
        self.push(pos, what, why, Severity::Note);
    }

    fn push(&mut self, pos: Pos, what: impl Into<String>, why: impl Into<String>, severity: Severity) {
        self.items.push(Item {
            pos,
            what: what.into(),
            why: why.into(),
            severity,
        });
    }

    /// The items of one severity, in the order of the source file.
    pub fn items(&self, severity: Severity) -> Vec<&Item> {
        let mut v: Vec<&Item> = self.items.iter().filter(|i| i.severity == severity).collect();
        v.sort_by_key(|i| (i.pos.line, i.pos.column));
        v
    }

    /// How many things were left out.
    pub fn left_out_count(&self) -> usize {
        self.items.iter().filter(|i| i.severity == Severity::LeftOut).count()
    }
}

/// A source file that is not a pipeline of the expected format, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAPipeline {
    /// Where.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

/// The result of a translator.
pub type Translated = Result<(emit::Pipeline, Report), NotAPipeline>;

/// Reads `file`, translates it with `translate`, writes the pipeline and the report.
fn import(file: &Path, output: Option<&Path>, source: &str, translate: fn(&tree::Node) -> Translated) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: cannot read: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let root = match tree::parse(&text) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("error: {}: not valid YAML: {}", located(file, e.pos), e.message);
            return ExitCode::FAILURE;
        }
    };
    let (mut pipeline, mut report) = match translate(&root) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {}", located(file, e.pos), e.message);
            return ExitCode::FAILURE;
        }
    };
    let written = output.map_or_else(|| PathBuf::from("<stdout>"), Path::to_path_buf);
    if let Err(why) = check(&pipeline.to_yaml(), &written) {
        report.left_out(
            Pos::default(),
            "the written pipeline",
            format!("does not pass `weir check` on this machine: {why}"),
        );
    }
    pipeline.header = header(file, source, &report);
    let yaml = pipeline.to_yaml();
    let wrote = match output {
        Some(path) => std::fs::write(path, &yaml).map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(yaml.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write to standard output: {e}"))
        }
    };
    if let Err(e) = wrote {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    print_report(file, &report);
    let left_out = report.left_out_count();
    let summary = format!(
        "{} input(s), {} processor(s), {} output(s) written to {}",
        pipeline.inputs.len(),
        pipeline.processors.len(),
        pipeline.outputs.len(),
        written.display()
    );
    if left_out == 0 {
        eprintln!("weir import: {}: everything translated; {summary}", file.display());
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "weir import: {}: {left_out} thing(s) not translated (listed above and at the top of the pipeline); {summary}",
            file.display()
        );
        ExitCode::from(EXIT_PARTIAL)
    }
}

/// `file:line:column`, or `file` when the place is unknown.
fn located(file: &Path, pos: Pos) -> String {
    if pos.line == 0 {
        file.display().to_string()
    } else {
        format!("{}:{}:{}", file.display(), pos.line, pos.column)
    }
}

/// Loads and validates `yaml` as `weir check` would (`${NAME}` stands for itself). The
/// message has no line:column: the header is not written yet, so they would be off.
fn check(yaml: &str, file: &Path) -> Result<(), String> {
    let expanded = crate::secrets::expand(yaml, |name| Some(name.to_string())).map_err(|(_, _, message)| message)?;
    let parsed = config::parse(&expanded.text).map_err(|(_, message)| message)?;
    let loaded = Loaded {
        file: file.to_path_buf(),
        config: parsed,
        text: String::new(),
    };
    config::validate(&loaded).map_err(|e| e.message)
}

/// One line of report text: line breaks and other control characters escaped, so a
/// pattern in a reason cannot break out of its comment.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `line N: what: why`.
fn report_line(item: &Item) -> String {
    let at = if item.pos.line == 0 {
        "file".to_string()
    } else {
        format!("line {}", item.pos.line)
    };
    one_line(&format!("{at}: {}: {}", item.what, item.why))
}

/// The comment lines at the top of the written pipeline.
fn header(file: &Path, source: &str, report: &Report) -> Vec<String> {
    let name = file
        .file_name()
        .map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut h = vec![one_line(&format!("Imported by `weir import {source}` from {name}."))];
    let left_out = report.items(Severity::LeftOut);
    if left_out.is_empty() {
        h.push("Everything was translated.".into());
    } else {
        h.push(String::new());
        h.push(format!(
            "Not translated ({}), by line of {}:",
            left_out.len(),
            one_line(&name)
        ));
        h.extend(left_out.iter().map(|i| format!("  {}", report_line(i))));
    }
    let notes = report.items(Severity::Note);
    if !notes.is_empty() {
        h.push(String::new());
        h.push("Notes:".into());
        h.extend(notes.iter().map(|i| format!("  {}", report_line(i))));
    }
    h.push(String::new());
    h
}

/// The report on stderr, one `file:line:column: ...` line per item.
fn print_report(file: &Path, report: &Report) {
    for (severity, label) in [(Severity::LeftOut, "not translated"), (Severity::Note, "note")] {
        for item in report.items(severity) {
            eprintln!(
                "{}: {label}: {}",
                located(file, item.pos),
                one_line(&format!("{}: {}", item.what, item.why))
            );
        }
    }
}

//! LoongCollector (iLogtail 2.x / LoongCollector 3.x) pipeline configs to Weir pipelines.
//!
//! A LoongCollector pipeline is a YAML map with `inputs:`, `processors:`,
//! `aggregators:`, `flushers:` and `extensions:` lists of plugins, each a map whose
//! `Type` names the plugin. [`translate`] reads the lists and hands every plugin to the
//! function for its type, in one `match` per family; each function takes the options it
//! knows ([`Opts`]) and reports the rest.
//!
//! What the translation relies on (LoongCollector's documentation and behaviour):
//!
//! - The raw line is `content`; Weir calls it `message`. Every field name `content` is
//!   written `message` (and the container input's `_source_` is Weir's `stream`).
//! - Native parsers (`processor_parse_*_native`) drop the source field on failure unless
//!   `KeepingSourceWhenParseFail`, and drop the event when nothing else is left in it:
//!   for the first parser of `content` that is `on_failure: drop`; for a later one the
//!   source field alone goes (`drop_fields` after the parser).
//! - Native regexes are Boost regexes that must match the whole value (`regex_match`),
//!   where `.` also matches a line break: a `Regex` or `FilterRegex` is written
//!   `^(?s:...)$`. Multiline patterns drop a trailing `$` and `.*`, then must match at the
//!   start of the line, which is what Weir's multiline rules do.
//! - `processor_parse_timestamp_native` keeps its source field, leaves events it cannot
//!   read alone and ignores text after the format; values carry no zone unless
//!   `SourceTimezone` (`GMT+08:00`) says so.
//! - Go plugins (`processor_filter_regex`, `processor_desensitize`) use RE2 syntax and
//!   search anywhere in the value, as Weir's regexes do.

use regex_automata::PatternID;
use weir_core::model::KeyTable;

use super::emit::{Component, Pipeline, Val};
use super::options::Opts;
use super::tree::{Key, Node, Value};
use super::{NotAPipeline, Report, Translated};
use crate::config::Pos;

/// The top-level keys of a LoongCollector pipeline.
const TOP_KEYS: &[&str] = &[
    "enable",
    "global",
    "inputs",
    "processors",
    "aggregators",
    "flushers",
    "extensions",
];

/// `**` in `FilePaths` is written as this many explicit directory levels at most; a
/// deeper `MaxDirSearchDepth` keeps `**`, which Weir does not bound.
const MAX_EXPANDED_DEPTH: i64 = 8;

/// Translates a LoongCollector pipeline config (the YAML tree of the file).
pub fn translate(root: &Node) -> Translated {
    let top = match &root.value {
        Value::Map(m) => m,
        Value::Null => return Err(not_pipeline(root.pos, "the file is empty")),
        other => {
            return Err(not_pipeline(
                root.pos,
                format!(
                    "the file holds {}, not a map with `inputs:` and `flushers:`",
                    other.kind()
                ),
            ));
        }
    };
    let sections = Sections::read(top, root.pos)?;
    let mut t = Translator {
        names: Names {
            containers: sections.inputs.iter().any(|p| p.ty == "input_container_stdio"),
        },
        extensions: sections.extensions.clone(),
        extensions_used: vec![false; sections.extensions.len()],
        ..Translator::default()
    };
    t.top_level(top);
    for p in &sections.inputs {
        t.input(p);
    }
    for p in &sections.processors {
        t.processor(p);
    }
    for p in &sections.aggregators {
        t.aggregator(p);
    }
    for p in &sections.flushers {
        t.flusher(p);
    }
    t.unused_extensions();
    Ok(t.finish())
}

fn not_pipeline(pos: Pos, why: impl std::fmt::Display) -> NotAPipeline {
    NotAPipeline {
        pos,
        message: format!("not a LoongCollector pipeline: {why}"),
    }
}

/// One plugin entry: its list, index, `Type` and options.
#[derive(Debug, Clone)]
struct Plugin<'a> {
    /// `inputs`, `processors`, `aggregators`, `flushers` or `extensions`.
    list: &'static str,
    index: usize,
    ty: String,
    /// Where `Type` is.
    pos: Pos,
    entries: &'a [(Key, Node)],
}

impl<'a> Plugin<'a> {
    /// `processors[1] processor_parse_regex_native`.
    fn label(&self) -> String {
        format!("{}[{}] {}", self.list, self.index, self.ty)
    }

    /// The comment above the components written for it.
    fn comment(&self) -> String {
        format!("from {}, line {}", self.label(), self.pos.line)
    }

    fn opts(&self) -> Opts<'a> {
        Opts::new(self.label(), self.entries, self.pos)
    }
}

/// The plugin lists of the file, checked for shape.
#[derive(Debug, Default)]
struct Sections<'a> {
    inputs: Vec<Plugin<'a>>,
    processors: Vec<Plugin<'a>>,
    aggregators: Vec<Plugin<'a>>,
    flushers: Vec<Plugin<'a>>,
    extensions: Vec<Plugin<'a>>,
}

impl<'a> Sections<'a> {
    /// Reads the lists; a file without `inputs` or `flushers`, or with an entry that is
    /// not a map with a `Type`, is not a LoongCollector pipeline.
    fn read(top: &'a [(Key, Node)], at: Pos) -> Result<Sections<'a>, NotAPipeline> {
        let mut s = Sections::default();
        for (list, required) in [
            ("inputs", true),
            ("processors", false),
            ("aggregators", false),
            ("flushers", true),
            ("extensions", false),
        ] {
            let Some((key, node)) = top.iter().find(|(k, _)| k.name == list) else {
                if required {
                    let hint = if top.iter().any(|(k, _)| k.name == "outputs") {
                        " (this looks like a Weir pipeline already)"
                    } else {
                        ""
                    };
                    return Err(not_pipeline(at, format!("no `{list}:` list{hint}")));
                }
                continue;
            };
            let items = match &node.value {
                Value::Seq(items) => items.as_slice(),
                Value::Null if !required => &[],
                other => {
                    return Err(not_pipeline(
                        key.pos,
                        format!("`{list}` must be a list of plugins, found {}", other.kind()),
                    ));
                }
            };
            if required && items.is_empty() {
                return Err(not_pipeline(key.pos, format!("`{list}` is empty")));
            }
            let plugins = items
                .iter()
                .enumerate()
                .map(|(index, item)| plugin(list, index, item))
                .collect::<Result<Vec<_>, _>>()?;
            match list {
                "inputs" => s.inputs = plugins,
                "processors" => s.processors = plugins,
                "aggregators" => s.aggregators = plugins,
                "flushers" => s.flushers = plugins,
                _ => s.extensions = plugins,
            }
        }
        Ok(s)
    }
}

/// An entry of a plugin list: a map with a string `Type`.
fn plugin<'a>(list: &'static str, index: usize, item: &'a Node) -> Result<Plugin<'a>, NotAPipeline> {
    let Value::Map(entries) = &item.value else {
        return Err(not_pipeline(
            item.pos,
            format!(
                "{list}[{index}] must be a map with a `Type`, found {}",
                item.value.kind()
            ),
        ));
    };
    let Some((key, ty)) = entries.iter().find(|(k, _)| k.name == "Type") else {
        let hint = if entries.iter().any(|(k, _)| k.name == "type") {
            " (`type` is Weir's key; LoongCollector's is `Type`)"
        } else {
            ""
        };
        return Err(not_pipeline(item.pos, format!("{list}[{index}] has no `Type`{hint}")));
    };
    let Value::Str(name) = &ty.value else {
        return Err(not_pipeline(
            ty.pos,
            format!("{list}[{index}] `Type` must be a string, found {}", ty.value.kind()),
        ));
    };
    Ok(Plugin {
        list,
        index,
        ty: name.clone(),
        pos: key.pos,
        entries,
    })
}

/// How a native parser handles failures and its source field, in Weir terms.
#[derive(Debug)]
struct Policy {
    keep_source: bool,
    on_failure: &'static str,
    /// Processors that go right after the parser.
    after: Vec<Component>,
}

/// How LoongCollector's field and tag names read in Weir.
#[derive(Debug, Default, Clone, Copy)]
struct Names {
    /// The pipeline reads container output (`_source_` is `stream`; pod tags exist).
    containers: bool,
}

/// The translation in progress.
#[derive(Debug, Default)]
struct Translator<'a> {
    pipeline: Pipeline,
    report: Report,
    /// A parser (or another processor that adds fields) came before: events may hold
    /// more than their `content`.
    parsed: bool,
    names: Names,
    /// Processors that must run before the translated ones (the container input's
    /// stream filters).
    front: Vec<Component>,
    extensions: Vec<Plugin<'a>>,
    extensions_used: Vec<bool>,
}

impl Names {
    /// The Weir name of a LoongCollector field.
    fn field(&self, name: &str) -> String {
        match name {
            "content" => "message".to_string(),
            "_source_" if self.containers => "stream".to_string(),
            other => other.to_string(),
        }
    }

    /// The Weir field of a LoongCollector tag, where Weir has one.
    fn tag_field(&self, tag: &str) -> Option<&'static str> {
        if !self.containers {
            return None;
        }
        match tag {
            "_namespace_" => Some("namespace"),
            "_pod_name_" => Some("pod"),
            "_pod_uid_" => Some("pod_uid"),
            "_container_name_" => Some("container"),
            _ => None,
        }
    }

    /// A Kafka `Topic` as a Weir topic template.
    fn topic(&self, topic: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = topic;
        while let Some(c) = rest.chars().next() {
            if let Some(body) = rest.strip_prefix("%{") {
                let end = body.find('}').ok_or_else(|| format!("`{topic}`: `%{{` without `}}`"))?;
                let name = &body[..end];
                let field = if let Some(f) = name.strip_prefix("content.") {
                    self.field(f)
                } else if let Some(tag) = name.strip_prefix("tag.") {
                    self.tag_field(tag)
                        .ok_or_else(|| format!("`%{{{name}}}`: Weir events carry no tags"))?
                        .to_string()
                } else {
                    return Err(format!("`%{{{name}}}` is neither `content.` nor `tag.`"));
                };
                out.push('{');
                out.push_str(&field);
                out.push('}');
                rest = &body[end + 1..];
            } else if let Some(body) = rest.strip_prefix("${") {
                // An environment variable: `weir run` expands `${NAME}` too.
                let end = body.find('}').ok_or_else(|| format!("`{topic}`: `${{` without `}}`"))?;
                out.push_str(&rest[..end + 3]);
                rest = &body[end + 1..];
            } else {
                match c {
                    '{' => out.push_str("{{"),
                    '}' => out.push_str("}}"),
                    c => out.push(c),
                }
                rest = &rest[c.len_utf8()..];
            }
        }
        Ok(out)
    }

    /// A `ConditionExp` node as a Weir condition.
    fn condition(&self, node: &Node) -> Result<Val, String> {
        let Value::Map(entries) = &node.value else {
            return Err(format!("line {}: a condition must be a map", node.pos.line));
        };
        let get = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
        if let (Some(op), Some(operands)) = (get("operator"), get("operands")) {
            let (Value::Str(op), Value::Seq(operands)) = (&op.value, &operands.value) else {
                return Err(format!(
                    "line {}: `operator` must be a string and `operands` a list",
                    node.pos.line
                ));
            };
            let subs = operands
                .iter()
                .map(|n| self.condition(n))
                .collect::<Result<Vec<_>, _>>()?;
            return match (op.to_ascii_lowercase().as_str(), subs.len()) {
                ("not", 1) => Ok(Val::Map(vec![("not".into(), subs.into_iter().next().expect("one"))])),
                ("and", 2) => Ok(Val::Map(vec![("all".into(), Val::List(subs))])),
                ("or", 2) => Ok(Val::Map(vec![("any".into(), Val::List(subs))])),
                (op, n) => Err(format!(
                    "line {}: operator `{op}` with {n} operand(s) (LoongCollector takes not with 1, and/or with 2)",
                    node.pos.line
                )),
            };
        }
        let text = |name: &str| get(name).and_then(|v| v.value.scalar_text());
        match (text("key"), text("exp"), text("type")) {
            (Some(key), Some(exp), Some(ty)) if ty.eq_ignore_ascii_case("regex") => {
                let pattern = whole_value(&exp);
                weir_core::pattern::compile("`exp`", &pattern)
                    .map_err(|e| format!("line {}: Weir cannot compile `{exp}` ({})", node.pos.line, e.0))?;
                Ok(Val::Map(vec![
                    ("field".into(), Val::Str(self.field(&key))),
                    ("matches".into(), Val::Str(pattern)),
                ]))
            }
            _ => Err(format!(
                "line {}: a leaf needs `key`, `exp` and `type: regex`",
                node.pos.line
            )),
        }
    }
}

impl<'a> Translator<'a> {
    fn finish(mut self) -> (Pipeline, Report) {
        if self.pipeline.inputs.is_empty() {
            self.report.left_out(
                Pos::default(),
                "inputs",
                "no input could be translated; a `stdin` input stands in so that the pipeline is complete",
            );
            self.pipeline
                .inputs
                .push(Component::new("stdin", "stand-in: no input could be translated"));
        }
        if self.pipeline.outputs.is_empty() {
            self.report.left_out(
                Pos::default(),
                "flushers",
                "no flusher could be translated; a `stdout` output stands in so that the pipeline is complete",
            );
            self.pipeline
                .outputs
                .push(Component::new("stdout", "stand-in: no flusher could be translated"));
        }
        let mut processors = std::mem::take(&mut self.front);
        processors.append(&mut self.pipeline.processors);
        self.pipeline.processors = processors;
        (self.pipeline, self.report)
    }

    // ---- the top level ----

    fn top_level(&mut self, top: &[(Key, Node)]) {
        self.report.note(
            Pos::default(),
            "field names",
            "LoongCollector's `content` is Weir's `message`; Weir writes each event as one flat JSON object \
             with the event time as `timestamp` (RFC 3339) and no `__time__` or `__tag__:` keys",
        );
        for (key, node) in top {
            match key.name.as_str() {
                "enable" => {
                    if matches!(node.value, Value::Bool(false)) {
                        self.report.note(
                            key.pos,
                            "`enable: false`",
                            "the LoongCollector pipeline is disabled; the Weir pipeline runs whenever it is started",
                        );
                    }
                }
                "global" => self.global(key, node),
                name if TOP_KEYS.contains(&name) => {}
                name => self.report.left_out(
                    key.pos,
                    format!("`{name}`"),
                    "not a key of LoongCollector pipelines; ignored",
                ),
            }
        }
    }

    fn global(&mut self, key: &Key, node: &Node) {
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                self.report.left_out(key.pos, "`global`", "expected a map");
            }
            return;
        };
        Opts::new("global", entries, key.pos).finish(
            &mut self.report,
            &[],
            &[(
                "StructureType",
                "the event model version of LoongCollector's Go plugins; no effect in Weir",
            )],
        );
    }

    // ---- inputs ----

    fn input(&mut self, p: &Plugin<'a>) {
        match p.ty.as_str() {
            "input_file" => self.input_file(p),
            "input_container_stdio" => self.input_container_stdio(p),
            other => self.report.left_out(
                p.pos,
                p.label(),
                format!("the importer has no Weir input for `{other}`; the input was left out"),
            ),
        }
    }

    fn input_file(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let r = &mut self.report;
        let Some((paths, _)) = o.str_list("FilePaths", r) else {
            r.left_out(
                p.pos,
                p.label(),
                "`FilePaths` is missing (LoongCollector refuses such an input); the input was left out",
            );
            return;
        };
        let depth = o.int("MaxDirSearchDepth", r);
        let mut c = Component::new("file", p.comment());
        c.set("paths", Val::strs(glob_paths(&paths, depth, &o, r)));
        let mut exclude = Vec::new();
        if let Some((list, _)) = o.str_list("ExcludeFilePaths", r) {
            exclude.extend(list);
        }
        if let Some((list, _)) = o.str_list("ExcludeFiles", r) {
            // Weir's exclude patterns match whole paths, and their `*` crosses `/`.
            exclude.extend(list.iter().map(|name| format!("*/{name}")));
        }
        if let Some((list, _)) = o.str_list("ExcludeDirs", r) {
            exclude.extend(list.iter().map(|dir| format!("{}/*", dir.trim_end_matches('/'))));
        }
        if !exclude.is_empty() {
            c.set("exclude", Val::strs(exclude));
        }
        file_encoding(&mut o, r);
        self.tail_size(&mut o, &mut c);
        if let Some(m) = o.map("Multiline", &mut self.report)
            && let Some(rules) = self.multiline(m)
        {
            c.set("multiline", rules);
        }
        flush_timeout(&mut o, &mut self.report, &mut c);
        let r = &mut self.report;
        if let Some((true, pos)) = o.bool("EnableContainerDiscovery", r) {
            r.left_out(
                pos,
                o.what("EnableContainerDiscovery"),
                "Weir reads files on the host and does not find paths inside containers; \
                 the paths were written as they are",
            );
        }
        if let Some((true, pos)) = o.bool("AppendingLogPositionMeta", r) {
            r.left_out(
                pos,
                o.what("AppendingLogPositionMeta"),
                "Weir adds no inode or file offset to events",
            );
        }
        take_empty_map(
            &mut o,
            r,
            "Tags",
            "Weir's file input adds no tags (`__path__`...) to rename",
        );
        self.pipeline.inputs.push(c);
        o.finish(
            &mut self.report,
            &[
                (
                    "ContainerFilters",
                    "container discovery for files inside containers is not in Weir",
                ),
                ("ExternalK8sLabelTag", "Weir's file input adds no pod label tags"),
                ("ExternalEnvTag", "Weir's file input adds no container environment tags"),
                ("FileOffsetKey", "Weir adds no file offset field"),
            ],
            &[(
                "AllowingIncludedByMultiConfigs",
                "each Weir pipeline reads its files on its own; no effect",
            )],
        );
    }

    fn input_container_stdio(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let mut c = Component::new("kubernetes_logs", p.comment());
        let r = &mut self.report;
        for (option, stream) in [("IgnoringStdout", "stdout"), ("IgnoringStderr", "stderr")] {
            if let Some((true, _)) = o.bool(option, r) {
                self.front.push(
                    Component::new("filter", format!("{}: `{option}: true`", p.comment())).with(
                        "exclude",
                        Val::Map(vec![("stream".into(), Val::str(format!("^{stream}$")))]),
                    ),
                );
            }
        }
        self.tail_size(&mut o, &mut c);
        if let Some(m) = o.map("Multiline", &mut self.report)
            && let Some(rules) = self.multiline(m)
        {
            c.set("multiline", rules);
        }
        if let Some(filters) = o.map("ContainerFilters", &mut self.report) {
            self.container_filters(filters, &mut c);
        }
        flush_timeout(&mut o, &mut self.report, &mut c);
        take_empty_map(
            &mut o,
            &mut self.report,
            "Tags",
            "Weir names the container fields itself (`namespace`, `pod`, `container`...); they cannot be renamed here",
        );
        self.report.note(
            p.pos,
            p.label(),
            "Weir's kubernetes_logs reads the node's /var/log/pods; its events carry `stream` (LoongCollector's \
             `_source_`), `namespace`, `pod`, `pod_uid`, `container`, and the runtime's time as `timestamp` \
             (LoongCollector's `_time_`)",
        );
        self.pipeline.inputs.push(c);
        o.finish(
            &mut self.report,
            &[
                ("ExternalK8sLabelTag", "Weir adds no pod label tags"),
                ("ExternalEnvTag", "Weir adds no container environment tags"),
            ],
            &[(
                "AllowingIncludedByMultiConfigs",
                "each Weir pipeline reads its files on its own; no effect",
            )],
        );
    }

    /// `ContainerFilters` of the container input: names Weir can match.
    fn container_filters(&mut self, mut f: Opts<'_>, c: &mut Component) {
        for (option, key) in [
            ("K8sNamespaceRegex", "include_namespaces"),
            ("K8sPodRegex", "include_pods"),
            ("K8sContainerRegex", "include_containers"),
        ] {
            let Some((pattern, pos)) = f.str(option, &mut self.report) else {
                continue;
            };
            // LoongCollector searches the name (Go's MatchString); Weir matches it whole.
            let whole_name = search_as_whole(&pattern);
            match weir_core::pattern::compile(&format!("`{option}`"), &whole_name) {
                Ok(_) => c.set(key, Val::strs([whole_name])),
                Err(e) => self.report.left_out(
                    pos,
                    f.what(option),
                    format!("Weir cannot compile this regex ({}); every container is read", e.0),
                ),
            }
        }
        let labels = "Weir selects containers by namespace, pod and container name only";
        f.finish(
            &mut self.report,
            &[
                ("IncludeK8sLabel", labels),
                ("ExcludeK8sLabel", labels),
                ("IncludeEnv", labels),
                ("ExcludeEnv", labels),
                ("IncludeContainerLabel", labels),
                ("ExcludeContainerLabel", labels),
            ],
            &[],
        );
    }

    /// `TailSizeKB`: where files found at start are read from.
    fn tail_size(&mut self, o: &mut Opts<'_>, c: &mut Component) {
        let Some((kb, pos)) = o.int("TailSizeKB", &mut self.report) else {
            return;
        };
        if kb == 0 {
            c.set("read_from", Val::str("tail"));
        } else {
            self.report.left_out(
                pos,
                o.what("TailSizeKB"),
                format!(
                    "Weir reads a file found at start from its head or its end (`read_from`), not from {kb} KB \
                     before the end; it reads from the head"
                ),
            );
        }
    }

    /// `Multiline`: the rules of Weir's `multiline:`, when LoongCollector would merge lines.
    fn multiline(&mut self, mut m: Opts<'_>) -> Option<Val> {
        let r = &mut self.report;
        if let Some((mode, pos)) = m.str("Mode", r) {
            match mode.as_str() {
                "custom" => {}
                "JSON" => {
                    r.left_out(
                        pos,
                        m.what("Mode"),
                        "Weir has no JSON multiline mode (a JSON object spread over lines); lines are events of \
                         their own",
                    );
                    return None;
                }
                other => r.note(
                    pos,
                    m.what("Mode"),
                    format!("`{other}` is not a mode; LoongCollector uses custom, as the written pipeline does"),
                ),
            }
        }
        let mut pattern = |name: &str, r: &mut Report| {
            m.str(name, r)
                .and_then(|(p, pos)| multiline_pattern(&p).map(|p| (p, pos)))
        };
        let start = pattern("StartPattern", r);
        let mut cont = pattern("ContinuePattern", r);
        let end = pattern("EndPattern", r);
        match (&start, &cont, &end) {
            (None, None, None) => return None,
            (None, Some((_, pos)), None) => {
                r.note(
                    *pos,
                    m.what("ContinuePattern"),
                    "LoongCollector ignores a ContinuePattern without StartPattern or EndPattern (no multiline), \
                     and so does the written pipeline",
                );
                return None;
            }
            (None, Some((_, pos)), Some(_)) => {
                r.left_out(
                    *pos,
                    m.what("ContinuePattern"),
                    "LoongCollector joins runs of ContinuePattern lines closed by an EndPattern line, which \
                     Weir's multiline rules cannot express; lines are events of their own",
                );
                return None;
            }
            (Some(_), Some((_, pos)), Some(_)) => {
                r.note(
                    *pos,
                    m.what("ContinuePattern"),
                    "LoongCollector ignores ContinuePattern when StartPattern and EndPattern are set, and so \
                     does the written pipeline",
                );
                cont = None;
            }
            (Some((_, pos)), None, Some(_)) => r.note(
                *pos,
                m.what("StartPattern"),
                "in Weir a StartPattern line inside an unfinished record starts a new record; LoongCollector \
                 adds it to the unfinished one",
            ),
            _ => {}
        }
        let mut rules = Vec::new();
        for (name, key, p) in [
            ("StartPattern", "start", start),
            ("ContinuePattern", "continue", cont),
            ("EndPattern", "end", end),
        ] {
            let Some((p, pos)) = p else { continue };
            if let Err(e) = weir_core::pattern::compile(&format!("`{name}`"), &p) {
                r.left_out(
                    pos,
                    m.what(name),
                    format!(
                        "Weir cannot compile this regex ({}); lines are events of their own",
                        e.0
                    ),
                );
                return None;
            }
            rules.push((key.to_string(), Val::Str(p)));
        }
        if let Some((treatment, pos)) = m.str("UnmatchedContentTreatment", r) {
            match treatment.as_str() {
                "discard" => rules.push(("unmatched".into(), Val::str("discard"))),
                "single_line" => {}
                other => r.note(
                    pos,
                    m.what("UnmatchedContentTreatment"),
                    format!(
                        "`{other}` is not a treatment; LoongCollector uses single_line, as the written pipeline does"
                    ),
                ),
            }
        }
        m.finish(r, &[], &[]);
        Some(Val::Map(rules))
    }

    // ---- processors ----

    fn processor(&mut self, p: &Plugin<'a>) {
        match p.ty.as_str() {
            "processor_parse_regex_native" => self.parse_regex(p),
            "processor_parse_json_native" => self.parse_json(p),
            "processor_parse_delimiter_native" => self.parse_delimiter(p),
            "processor_parse_timestamp_native" => self.parse_timestamp(p),
            "processor_filter_regex_native" => self.filter_native(p),
            "processor_filter_regex" => self.filter_go(p),
            "processor_desensitize_native" => self.desensitize_native(p),
            "processor_desensitize" => self.desensitize_go(p),
            "processor_add_fields" => self.add_fields(p),
            "processor_drop" => self.drop_keys(p),
            "processor_rename" => self.rename(p),
            other => self.report.left_out(
                p.pos,
                p.label(),
                format!("the importer has no Weir processor for `{other}`; the processor was left out"),
            ),
        }
    }

    /// `SourceKey`, required by every native parser; `None` (reported) when missing.
    fn source_key(&mut self, o: &mut Opts<'_>, p: &Plugin<'_>) -> Option<String> {
        match o.str("SourceKey", &mut self.report) {
            Some((key, _)) => Some(self.names.field(&key)),
            None => {
                self.report.left_out(
                    p.pos,
                    p.label(),
                    "`SourceKey` is missing (LoongCollector refuses such a processor); the processor was left out",
                );
                None
            }
        }
    }

    /// The options every native parser shares. `makes_source`: the parser writes a
    /// field named like its source.
    fn policy(&mut self, o: &mut Opts<'_>, p: &Plugin<'_>, source: &str, makes_source: bool) -> Policy {
        let r = &mut self.report;
        let fail = o.bool("KeepingSourceWhenParseFail", r);
        let keep_failed = fail.is_some_and(|(b, _)| b);
        let keep_parsed = o.bool("KeepingSourceWhenParseSucceed", r).is_some_and(|(b, _)| b);
        let renamed = o.str("RenamedSourceKey", r);
        let copy_raw = o.bool("CopingRawLog", r);
        let mut after = Vec::new();
        let on_failure = if keep_failed {
            "keep"
        } else if !self.parsed && source == "message" {
            // The event holds nothing but its content: LoongCollector drops it.
            "drop"
        } else if !keep_parsed && !makes_source {
            after.push(
                Component::new(
                    "drop_fields",
                    format!("{}: the source field of events that failed to parse", p.comment()),
                )
                .with("fields", Val::strs([source])),
            );
            "keep"
        } else {
            r.left_out(
                fail.map_or(o.pos, |(_, pos)| pos),
                o.what("KeepingSourceWhenParseFail"),
                "LoongCollector removes the source field of an event that fails to parse; here Weir cannot tell \
                 those events apart, so they keep it",
            );
            "keep"
        };
        if let Some((name, pos)) = renamed {
            let name = self.names.field(&name);
            if name != source && (keep_failed || keep_parsed) {
                after.push(
                    Component::new("rename_fields", format!("{}: `RenamedSourceKey`", p.comment()))
                        .with("fields", Val::Map(vec![(source.to_string(), Val::Str(name))])),
                );
            } else if name != source {
                self.report.note(
                    pos,
                    o.what("RenamedSourceKey"),
                    "the source field is never kept, so there is nothing to rename",
                );
            }
        }
        if let Some((true, pos)) = copy_raw
            && keep_failed
        {
            self.report.left_out(
                pos,
                o.what("CopingRawLog"),
                "Weir does not copy the text of an event that failed to parse to `__raw_log__`; the source field \
                 is kept as it was",
            );
        }
        Policy {
            keep_source: keep_parsed,
            on_failure,
            after,
        }
    }

    /// Adds a parser with its policy keys, then the processors that follow it.
    fn push_parser(&mut self, mut c: Component, policy: Policy, more: Vec<Component>) {
        if policy.keep_source {
            c.set("keep_source", Val::Bool(true));
        }
        c.set("on_failure", Val::str(policy.on_failure));
        self.pipeline.processors.push(c);
        self.pipeline.processors.extend(more);
        self.pipeline.processors.extend(policy.after);
        self.parsed = true;
    }

    fn parse_regex(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some(source) = self.source_key(&mut o, p) else {
            return;
        };
        let r = &mut self.report;
        let (Some((regex, regex_pos)), Some((keys, keys_pos))) = (o.str("Regex", r), o.str_list("Keys", r)) else {
            r.left_out(
                p.pos,
                p.label(),
                "`Regex` or `Keys` is missing (LoongCollector refuses such a processor); the processor was left out",
            );
            return;
        };
        // Old configs give the keys as one comma-separated string; LoongCollector splits it.
        let keys: Vec<String> = match keys.as_slice() {
            [one] if one.contains(',') => one.split(',').map(|k| self.names.field(k)).collect(),
            _ => keys.iter().map(|k| self.names.field(k)).collect(),
        };
        let pattern = whole_value(&regex);
        let groups = match weir_core::pattern::compile("`Regex`", &pattern) {
            Ok(re) => re.group_info().group_len(PatternID::ZERO).saturating_sub(1),
            Err(e) => {
                r.left_out(
                    regex_pos,
                    o.what("Regex"),
                    format!(
                        "Weir's linear-time regex engine cannot compile it ({}); the processor was left out",
                        e.0
                    ),
                );
                return;
            }
        };
        if keys.is_empty() || keys.len() > groups {
            r.left_out(
                keys_pos,
                o.what("Keys"),
                format!(
                    "{} name(s) for a regex with {groups} group(s): LoongCollector fails every event; the processor \
                     was left out",
                    keys.len()
                ),
            );
            return;
        }
        // LoongCollector ignores groups past the last key; Weir names every group.
        let unnamed: Vec<String> = (keys.len() + 1..=groups)
            .map(|i| format!("_unnamed_group_{i}"))
            .collect();
        let makes_source = keys.contains(&source);
        let mut all_keys = keys;
        all_keys.extend(unnamed.iter().cloned());
        let c = Component::new("parse_regex", p.comment())
            .with("field", Val::Str(source.clone()))
            .with("pattern", Val::Str(pattern))
            .with("keys", Val::strs(all_keys));
        let more = if unnamed.is_empty() {
            Vec::new()
        } else {
            vec![
                Component::new("drop_fields", format!("{}: groups `Keys` does not name", p.comment()))
                    .with("fields", Val::strs(unnamed)),
            ]
        };
        let policy = self.policy(&mut o, p, &source, makes_source);
        self.push_parser(c, policy, more);
        o.finish(&mut self.report, &[], &[]);
    }

    fn parse_json(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some(source) = self.source_key(&mut o, p) else {
            return;
        };
        let c = Component::new("parse_json", p.comment()).with("field", Val::Str(source.clone()));
        let policy = self.policy(&mut o, p, &source, false);
        self.report.note(
            p.pos,
            p.label(),
            "members that are objects or arrays stay JSON values in Weir's output; LoongCollector turns them \
             into strings of JSON text",
        );
        self.push_parser(c, policy, Vec::new());
        o.finish(&mut self.report, &[], &[]);
    }

    fn parse_delimiter(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some(source) = self.source_key(&mut o, p) else {
            return;
        };
        let r = &mut self.report;
        let (Some((separator, sep_pos)), Some((keys, _))) = (o.str("Separator", r), o.str_list("Keys", r)) else {
            r.left_out(
                p.pos,
                p.label(),
                "`Separator` or `Keys` is missing (LoongCollector refuses such a processor); the processor was left out",
            );
            return;
        };
        if separator.is_empty() {
            r.left_out(
                sep_pos,
                o.what("Separator"),
                "an empty separator splits nothing; the processor was left out",
            );
            return;
        }
        let mut keys: Vec<String> = keys.iter().map(|k| self.names.field(k)).collect();
        let mut c = Component::new("parse_delimiter", p.comment())
            .with("field", Val::Str(source.clone()))
            .with("separator", Val::Str(separator));
        if let Some((quote, pos)) = o.str("Quote", r) {
            if quote.len() == 1 && quote.is_ascii() {
                if quote != "\"" {
                    c.set("quote", Val::Str(quote));
                }
            } else {
                r.left_out(
                    pos,
                    o.what("Quote"),
                    format!("Weir's quote is one ASCII character, not {quote:?}; `\"` is used"),
                );
            }
        }
        if let Some((false, pos)) = o.bool("AllowingShortenedFields", r) {
            r.left_out(
                pos,
                o.what("AllowingShortenedFields"),
                "Weir accepts a line with fewer columns than keys and leaves the missing keys out; it does not \
                 count it as a failure",
            );
        }
        let overflow = o.str("OverflowedFieldsTreatment", r);
        match overflow.as_ref().map(|(t, pos)| (t.as_str(), *pos)) {
            None | Some(("extend", _)) => r.note(
                overflow.as_ref().map_or(p.pos, |(_, pos)| *pos),
                o.what("OverflowedFieldsTreatment"),
                "columns past the last key are named `_column{N}` (N their position, from 1) in Weir, \
                 `__column{i}__` (i from 0) in LoongCollector",
            ),
            Some(("keep", _)) => {
                // LoongCollector puts the rest of the line in `__column0__`: a last key
                // that takes the rest of the line from its own column.
                keys.push("__column0__".into());
                c.set("overflow", Val::str("keep"));
            }
            Some(("discard", _)) => c.set("overflow", Val::str("discard")),
            Some((other, pos)) => r.note(
                pos,
                o.what("OverflowedFieldsTreatment"),
                format!("`{other}` is not a treatment; LoongCollector uses extend, as the written pipeline does"),
            ),
        }
        let makes_source = keys.contains(&source);
        c.set("keys", Val::strs(keys));
        let policy = self.policy(&mut o, p, &source, makes_source);
        self.push_parser(c, policy, Vec::new());
        o.finish(&mut self.report, &[], &[]);
    }

    fn parse_timestamp(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some(source) = self.source_key(&mut o, p) else {
            return;
        };
        let r = &mut self.report;
        let Some((format, format_pos)) = o.str("SourceFormat", r) else {
            r.left_out(
                p.pos,
                p.label(),
                "`SourceFormat` is missing (LoongCollector refuses such a processor); the processor was left out",
            );
            return;
        };
        let weir_format = match time_format(&format) {
            Ok(f) => f,
            Err(why) => {
                r.left_out(
                    format_pos,
                    o.what("SourceFormat"),
                    format!("{why}; the processor was left out"),
                );
                return;
            }
        };
        let epoch = weir_format.contains("%s");
        let mut timezone = None;
        if let Some((tz, pos)) = o.str("SourceTimezone", r) {
            match gmt_offset(&tz) {
                Some(offset) if epoch => {
                    if offset.is_some() {
                        r.note(
                            pos,
                            o.what("SourceTimezone"),
                            "epoch seconds are UTC; Weir does not shift them by a zone",
                        );
                    }
                }
                Some(offset) => timezone = offset,
                None => r.note(
                    pos,
                    o.what("SourceTimezone"),
                    format!("`{tz}` is not `GMT+HH:MM`; LoongCollector ignores it and reads UTC, as Weir does"),
                ),
            }
        }
        let year = o.int("SourceYear", r).map(|(y, _)| y).filter(|&y| y > 0);
        let config = weir_core::parse::time::ParseTimestampConfig {
            field: source.clone(),
            format: weir_format.clone(),
            timezone: timezone.clone(),
            year: year.and_then(|y| i32::try_from(y).ok()),
            keep_source: true,
            on_failure: weir_core::parse::OnFailure::Keep,
            error_field: None,
        };
        if let Err(e) = config.build(&KeyTable::new()) {
            r.left_out(
                format_pos,
                o.what("SourceFormat"),
                format!(
                    "Weir cannot read times as `{weir_format}` ({}); the processor was left out",
                    e.0
                ),
            );
            return;
        }
        let mut c = Component::new("parse_timestamp", p.comment())
            .with("field", Val::Str(source))
            .with("format", Val::Str(weir_format));
        if let Some(tz) = timezone {
            c.set("timezone", Val::Str(tz));
        }
        if let Some(y) = year {
            c.set("year", Val::Int(y));
        }
        // LoongCollector keeps the field and leaves events it cannot read alone.
        c.set("keep_source", Val::Bool(true));
        c.set("on_failure", Val::str("keep"));
        r.note(
            format_pos,
            o.what("SourceFormat"),
            "Weir needs the whole value to match the format (a fraction after `%S` is accepted); \
             LoongCollector ignores text after it",
        );
        self.pipeline.processors.push(c);
        o.finish(&mut self.report, &[], &[]);
    }

    fn filter_native(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let r = &mut self.report;
        // Rules: FilterKey + FilterRegex, else the older Include map, else ConditionExp.
        let mut rules: Vec<(String, String, Pos)> = Vec::new();
        let keys = o.str_list("FilterKey", r);
        let regexes = o.str_list("FilterRegex", r);
        let include = o.str_map("Include", r);
        let condition = o.take("ConditionExp");
        match (keys, regexes) {
            (Some((keys, pos)), Some((regexes, _))) if keys.len() != regexes.len() => r.note(
                pos,
                o.what("FilterKey"),
                "FilterKey and FilterRegex differ in length: LoongCollector ignores them, and so does the written \
                 pipeline",
            ),
            (Some((keys, pos)), Some((regexes, _))) => {
                rules.extend(keys.into_iter().zip(regexes).map(|(k, re)| (k, re, pos)));
            }
            (Some((_, pos)), None) | (None, Some((_, pos))) => r.note(
                pos,
                o.plugin.clone(),
                "FilterKey and FilterRegex go together: LoongCollector ignores one alone, and so does the written \
                 pipeline",
            ),
            (None, None) => {}
        }
        let condition_pos = condition.map(|(k, _)| k.pos);
        let unused = |r: &mut Report, pos: Pos, name: &str, by: &str| {
            r.note(
                pos,
                o.what(name),
                format!("LoongCollector ignores it when {by} is set, and so does the written pipeline"),
            );
        };
        let tree = if !rules.is_empty() {
            if let Some((_, pos)) = &include {
                unused(r, *pos, "Include", "FilterKey");
            }
            if let Some(pos) = condition_pos {
                unused(r, pos, "ConditionExp", "FilterKey");
            }
            None
        } else if let Some((map, _)) = include {
            if let Some(pos) = condition_pos {
                unused(r, pos, "ConditionExp", "Include");
            }
            rules = map;
            None
        } else {
            condition.map(|(_, node)| self.names.condition(node))
        };
        let r = &mut self.report;
        if let Some((true, pos)) = o.bool("DiscardingNonUTF8", r) {
            r.left_out(
                pos,
                o.what("DiscardingNonUTF8"),
                "Weir keeps bytes that are not UTF-8 (JSON output writes them as U+FFFD)",
            );
        }
        let mut c = Component::new("filter", p.comment());
        if let Some(tree) = tree {
            match tree {
                Ok(tree) => c.set("condition", tree),
                Err(why) => {
                    r.left_out(
                        condition_pos.unwrap_or(p.pos),
                        o.what("ConditionExp"),
                        format!("{why}; the filter was left out (LoongCollector refuses it too)"),
                    );
                    o.finish(r, &[], &[]);
                    return;
                }
            }
        } else if rules.is_empty() {
            r.note(
                p.pos,
                p.label(),
                "no rule: LoongCollector passes every event, so no filter was written",
            );
            o.finish(r, &[], &[]);
            return;
        } else {
            let leaves: Vec<(String, String, Pos)> = rules
                .into_iter()
                .map(|(k, re, pos)| (self.names.field(&k), whole_value(&re), pos))
                .collect();
            let r = &mut self.report;
            for (_, re, pos) in &leaves {
                if let Err(e) = weir_core::pattern::compile("`FilterRegex`", re) {
                    r.left_out(
                        *pos,
                        o.plugin.clone(),
                        format!(
                            "Weir cannot compile the regex `{re}` ({}); the filter was left out",
                            e.0
                        ),
                    );
                    o.finish(r, &[], &[]);
                    return;
                }
            }
            let (key, value) = include_or_all(leaves.into_iter().map(|(f, re, _)| (f, re)).collect());
            c.set(key, value);
        }
        self.pipeline.processors.push(c);
        o.finish(&mut self.report, &[], &[]);
    }

    fn filter_go(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let mut c = Component::new("filter", p.comment());
        for (option, key) in [("Include", "include"), ("Exclude", "exclude")] {
            let Some((map, _)) = o.str_map(option, &mut self.report) else {
                continue;
            };
            let mut entries = Vec::new();
            for (field, re, pos) in map {
                if let Err(e) = weir_core::pattern::compile(&format!("`{option}`"), &re) {
                    self.report.left_out(
                        pos,
                        o.what(&format!("{option}.{field}")),
                        format!("Weir cannot compile this regex ({}); the filter was left out", e.0),
                    );
                    o.finish(&mut self.report, &[], &[]);
                    return;
                }
                entries.push((self.names.field(&field), Val::Str(re)));
            }
            if !entries.is_empty() {
                c.set(key, Val::Map(entries));
            }
        }
        if c.fields.is_empty() {
            self.report.note(
                p.pos,
                p.label(),
                "no rule: LoongCollector passes every event, so no filter was written",
            );
        } else {
            self.pipeline.processors.push(c);
        }
        o.finish(&mut self.report, &[], &[]);
    }

    fn desensitize_native(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some(source) = self.source_key(&mut o, p) else {
            return;
        };
        let r = &mut self.report;
        let method = o.str("Method", r);
        let replacing = o.str("ReplacingString", r);
        let before = o.str("ContentPatternBeforeReplacedString", r);
        let content = o.str("ReplacedContentPattern", r);
        let all = o.bool("ReplacingAll", r).is_none_or(|(b, _)| b);
        let (Some(method), Some((before, _)), Some((content, _))) = (method, before, content) else {
            r.left_out(
                p.pos,
                p.label(),
                "`Method`, `ContentPatternBeforeReplacedString` or `ReplacedContentPattern` is missing \
                 (LoongCollector refuses such a processor); the processor was left out",
            );
            return;
        };
        // LoongCollector's rewrite is `\1` + ReplacingString, so backslashes in it are
        // RE2 escapes; the text a user means is the one without them.
        let replacing = replacing.map(|(s, pos)| (s.replace("\\\\", "\\"), pos));
        if self.mask(p, &mut o, source, method, replacing, Some(before), content, all) {
            o.finish(&mut self.report, &[], &[]);
        }
    }

    fn desensitize_go(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some(source) = self.source_key(&mut o, p) else {
            return;
        };
        let r = &mut self.report;
        let method = o.str("Method", r);
        let replacing = o.str("ReplaceString", r);
        let Some((matching, match_pos)) = o.str("Match", r) else {
            r.left_out(
                p.pos,
                p.label(),
                "`Match` is missing (LoongCollector refuses such a processor); the processor was left out",
            );
            return;
        };
        let Some(method) = method else {
            r.left_out(
                p.pos,
                p.label(),
                "`Method` is missing (LoongCollector refuses such a processor); the processor was left out",
            );
            return;
        };
        match matching.as_str() {
            "full" => {
                if self.mask(p, &mut o, source, method, replacing, None, "(?s).+".into(), true) {
                    o.finish(&mut self.report, &[], &[]);
                }
            }
            "regex" => {
                let begin = o.str("RegexBegin", r);
                let content = o.str("RegexContent", r);
                let (Some((begin, _)), Some((content, _))) = (begin, content) else {
                    r.left_out(
                        p.pos,
                        p.label(),
                        "`Match: regex` needs `RegexBegin` and `RegexContent`; the processor was left out",
                    );
                    return;
                };
                if self.mask(p, &mut o, source, method, replacing, Some(begin), content, true) {
                    o.finish(&mut self.report, &[], &[]);
                }
            }
            other => r.left_out(
                match_pos,
                o.what("Match"),
                format!("`{other}` is neither full nor regex; the processor was left out"),
            ),
        }
    }

    /// Writes a `mask` for a desensitize processor, if Weir can build it (false when not:
    /// reported).
    #[allow(clippy::too_many_arguments)] // the desensitize options, read by two plugins
    fn mask(
        &mut self,
        p: &Plugin<'a>,
        o: &mut Opts<'_>,
        source: String,
        (method, method_pos): (String, Pos),
        replacing: Option<(String, Pos)>,
        after: Option<String>,
        pattern: String,
        all: bool,
    ) -> bool {
        let r = &mut self.report;
        let mut config = weir_core::processors::mask::MaskConfig {
            field: source,
            pattern,
            after,
            replace_with: None,
            hash: None,
            hash_prefix: None,
            all,
        };
        match method.as_str() {
            "const" => match replacing {
                Some((text, _)) => config.replace_with = Some(text),
                None => {
                    r.left_out(
                        p.pos,
                        p.label(),
                        "`Method: const` needs the replacing string (LoongCollector refuses such a processor); \
                         the processor was left out",
                    );
                    return false;
                }
            },
            "md5" => {
                config.hash = Some(weir_core::processors::mask::MaskHash::Sha256);
                config.hash_prefix = Some(32);
                r.left_out(
                    method_pos,
                    o.what("Method"),
                    "Weir has no MD5: each match becomes the first 32 hex digits of its SHA-256 instead, so \
                     values differ from LoongCollector's (equal secrets still give equal text)",
                );
            }
            other => {
                r.left_out(
                    method_pos,
                    o.what("Method"),
                    format!("`{other}` is neither const nor md5; the processor was left out"),
                );
                return false;
            }
        }
        if let Err(e) = config.build(&KeyTable::new()) {
            r.left_out(
                p.pos,
                p.label(),
                format!("Weir cannot build the mask ({}); the processor was left out", e.0),
            );
            return false;
        }
        let mut c = Component::new("mask", p.comment()).with("field", Val::Str(config.field));
        if let Some(after) = config.after {
            c.set("after", Val::Str(after));
        }
        c.set("pattern", Val::Str(config.pattern));
        if let Some(text) = config.replace_with {
            c.set("replace_with", Val::Str(text));
        }
        if config.hash.is_some() {
            c.set("hash", Val::str("sha256"));
            c.set("hash_prefix", Val::Int(32));
        }
        if !config.all {
            c.set("all", Val::Bool(false));
        }
        self.pipeline.processors.push(c);
        true
    }

    fn add_fields(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let r = &mut self.report;
        let Some((fields, _)) = o.str_map("Fields", r) else {
            r.left_out(p.pos, p.label(), "`Fields` is missing; the processor was left out");
            return;
        };
        let ignore_existing = o.bool("IgnoreIfExist", r).is_some_and(|(b, _)| b);
        let fields: Vec<(String, Val)> = fields
            .into_iter()
            .map(|(k, v, _)| (self.names.field(&k), Val::Str(v)))
            .collect();
        let mut c = Component::new("add_fields", p.comment()).with("fields", Val::Map(fields));
        if ignore_existing {
            c.set("overwrite", Val::Bool(false));
        }
        self.pipeline.processors.push(c);
        self.parsed = true;
        o.finish(&mut self.report, &[], &[]);
    }

    fn drop_keys(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some((keys, _)) = o.str_list("DropKeys", &mut self.report) else {
            self.report
                .left_out(p.pos, p.label(), "`DropKeys` is missing; the processor was left out");
            return;
        };
        let keys: Vec<String> = keys.iter().map(|k| self.names.field(k)).collect();
        self.pipeline
            .processors
            .push(Component::new("drop_fields", p.comment()).with("fields", Val::strs(keys)));
        o.finish(&mut self.report, &[], &[]);
    }

    fn rename(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let r = &mut self.report;
        let (Some((from, pos)), Some((to, _))) = (o.str_list("SourceKeys", r), o.str_list("DestKeys", r)) else {
            r.left_out(
                p.pos,
                p.label(),
                "`SourceKeys` or `DestKeys` is missing; the processor was left out",
            );
            return;
        };
        if from.len() != to.len() {
            r.left_out(
                pos,
                o.what("SourceKeys"),
                "SourceKeys and DestKeys differ in length (LoongCollector refuses this); the processor was left out",
            );
            return;
        }
        let pairs: Vec<(String, Val)> = from
            .iter()
            .zip(&to)
            .map(|(f, t)| (self.names.field(f), Val::Str(self.names.field(t))))
            .collect();
        self.pipeline
            .processors
            .push(Component::new("rename_fields", p.comment()).with("fields", Val::Map(pairs)));
        o.finish(
            &mut self.report,
            &[],
            &[(
                "NoKeyError",
                "only raises an alarm when a field is missing; Weir renames what is there",
            )],
        );
    }

    // ---- aggregators ----

    fn aggregator(&mut self, p: &Plugin<'a>) {
        match p.ty.as_str() {
            "aggregator_default" | "aggregator_base" | "aggregator_context" => {
                self.report
                    .note(p.pos, p.label(), "Weir batches events itself; nothing to translate")
            }
            other => self.report.left_out(
                p.pos,
                p.label(),
                format!("the importer has no translation for `{other}`; events are not grouped"),
            ),
        }
    }

    // ---- flushers ----

    fn flusher(&mut self, p: &Plugin<'a>) {
        match p.ty.as_str() {
            "flusher_stdout" => self.flusher_stdout(p),
            "flusher_file" => self.flusher_file(p),
            "flusher_kafka_v2" => self.flusher_kafka(p, false),
            "flusher_kafka_native" => self.flusher_kafka(p, true),
            "flusher_http" => self.flusher_http(p),
            other => self.report.left_out(
                p.pos,
                p.label(),
                format!("the importer has no Weir output for `{other}`; the flusher was left out"),
            ),
        }
    }

    fn flusher_stdout(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let r = &mut self.report;
        let only_stdout = o.bool("OnlyStdout", r).map(|(b, _)| b);
        let file = o.str("FileName", r);
        let c = match (only_stdout, file) {
            (Some(false), Some((path, _))) => {
                r.note(
                    p.pos,
                    p.label(),
                    "Weir's file output does not rotate (MaxSize, MaxRolls)",
                );
                Component::new("file", p.comment()).with("path", Val::Str(path))
            }
            _ => Component::new("stdout", p.comment()),
        };
        if let Some((true, pos)) = o.bool("Tags", r) {
            r.left_out(pos, o.what("Tags"), "Weir events carry no `__tag__:` fields to print");
        }
        self.pipeline.outputs.push(c);
        o.finish(
            &mut self.report,
            &[],
            &[
                ("MaxSize", "Weir's file output does not rotate"),
                ("MaxRolls", "Weir's file output does not rotate"),
                ("KeyValuePairs", "Weir always writes JSON objects"),
            ],
        );
    }

    fn flusher_file(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let Some((path, _)) = o.str("FilePath", &mut self.report) else {
            self.report
                .left_out(p.pos, p.label(), "`FilePath` is missing; the flusher was left out");
            return;
        };
        self.report.note(
            p.pos,
            p.label(),
            "Weir's file output does not rotate; LoongCollector's keeps 10 files of 10 MB",
        );
        self.pipeline
            .outputs
            .push(Component::new("file", p.comment()).with("path", Val::Str(path)));
        o.finish(&mut self.report, &[], &[]);
    }

    /// `flusher_kafka_v2` (Go, sarama) and `flusher_kafka_native` (C++, librdkafka).
    fn flusher_kafka(&mut self, p: &Plugin<'a>, native: bool) {
        let mut o = p.opts();
        let r = &mut self.report;
        let (Some((brokers, _)), Some((topic, topic_pos))) = (o.str_list("Brokers", r), o.str("Topic", r)) else {
            r.left_out(
                p.pos,
                p.label(),
                "`Brokers` or `Topic` is missing (LoongCollector refuses such a flusher); the flusher was left out",
            );
            return;
        };
        let topic = match self.names.topic(&topic) {
            Ok(t) => t,
            Err(why) => {
                self.report
                    .left_out(topic_pos, o.what("Topic"), format!("{why}; the flusher was left out"));
                return;
            }
        };
        let mut c = Component::new("kafka", p.comment())
            .with("bootstrap_servers", Val::str(brokers.join(",")))
            .with("topic", Val::Env(topic));
        let mut librdkafka: Vec<(String, Val)> = Vec::new();
        self.kafka_partitioning(&mut o, &mut c, &mut librdkafka, native);
        let r = &mut self.report;
        kafka_acks(&mut o, r, &mut c);
        if !native {
            kafka_convert(&mut o, r, p);
            kafka_compression(&mut o, r, &mut c, &mut librdkafka);
        }
        kafka_tuning(&mut o, r, &mut c, &mut librdkafka, native);
        if let Some(auth) = o.map("Authentication", r) {
            kafka_auth(auth, r, &mut c, &mut librdkafka);
        }
        if !librdkafka.is_empty() {
            c.set("librdkafka_options", Val::Map(librdkafka));
        }
        if native {
            r.note(
                p.pos,
                p.label(),
                "Weir writes each event as one flat JSON object; check what the consumers of the topic expect",
            );
        }
        self.pipeline.outputs.push(c);
        o.finish(
            &mut self.report,
            &[
                ("Headers", "Weir's kafka output sets no message headers"),
                ("HashOnce", NO_KAFKA_EQUIVALENT),
            ],
            &[
                ("Version", "librdkafka agrees on the protocol version with the brokers"),
                (
                    "MaxRetries",
                    "Weir sends a message again until the broker has it; it never gives up",
                ),
                (
                    "MessageTimeoutMs",
                    "Weir does not let messages expire; it sends them again until the broker has them",
                ),
                ("Timeout", "librdkafka's own timeouts apply"),
                ("BrokerTimeout", "librdkafka's own timeouts apply"),
                ("Metadata", "librdkafka refreshes metadata itself"),
            ],
        );
    }

    /// `PartitionerType` and `HashKeys`: the message key.
    fn kafka_partitioning(
        &mut self,
        o: &mut Opts<'_>,
        c: &mut Component,
        librdkafka: &mut Vec<(String, Val)>,
        native: bool,
    ) {
        let r = &mut self.report;
        let partitioner = o.str("PartitionerType", r);
        let hash_keys = o.str_list("HashKeys", r);
        match partitioner.as_ref().map(|(p, pos)| (p.as_str(), *pos)) {
            None | Some(("random", _)) => {}
            Some(("hash", pos)) => match hash_keys.as_ref().map(|(k, _)| k.as_slice()) {
                Some([one]) => match one.strip_prefix("content.") {
                    Some(name) => {
                        c.set("key_field", Val::Str(self.names.field(name)));
                        if native {
                            librdkafka.push(("partitioner".into(), Val::str("murmur2_random")));
                        } else {
                            r.note(
                                pos,
                                o.what("PartitionerType"),
                                "the key is hashed by librdkafka's partitioner, so an event may land in another \
                                 partition than with LoongCollector's Go client (equal keys still share one)",
                            );
                        }
                    }
                    None => r.left_out(
                        pos,
                        o.what("HashKeys"),
                        format!("`{one}` is not `content.NAME`; messages have no key"),
                    ),
                },
                _ => r.left_out(
                    pos,
                    o.what("HashKeys"),
                    "Weir's message key is one field; messages have no key",
                ),
            },
            Some((other, pos)) => r.left_out(
                pos,
                o.what("PartitionerType"),
                format!("Weir sends messages without a key to librdkafka's default partitioner, not `{other}`"),
            ),
        }
    }

    fn flusher_http(&mut self, p: &Plugin<'a>) {
        let mut o = p.opts();
        let r = &mut self.report;
        let Some((mut uri, _)) = o.str("RemoteURL", r) else {
            r.left_out(
                p.pos,
                p.label(),
                "`RemoteURL` is missing (LoongCollector refuses such a flusher); the flusher was left out",
            );
            return;
        };
        if let Some((query, _)) = o.str_map("Query", r) {
            let mut sep = if uri.contains('?') { '&' } else { '?' };
            for (k, v, pos) in query {
                if v.contains("%{") {
                    r.left_out(
                        pos,
                        o.what(&format!("Query.{k}")),
                        "Weir's request URI is fixed; a value from the events cannot go into it",
                    );
                    continue;
                }
                uri.push(sep);
                uri.push_str(&crate::cli::tap::percent_encode(&k));
                uri.push('=');
                uri.push_str(&crate::cli::tap::percent_encode(&v));
                sep = '&';
            }
        }
        let mut c = Component::new("http", p.comment()).with("uri", Val::Str(uri));
        if let Some((headers, _)) = o.str_map("Headers", r) {
            let mut fixed = Vec::new();
            for (k, v, pos) in headers {
                if v.contains("%{") {
                    r.left_out(
                        pos,
                        o.what(&format!("Headers.{k}")),
                        "Weir's headers are fixed; a value from the events cannot go into them",
                    );
                } else {
                    fixed.push((k, Val::Str(v)));
                }
            }
            if !fixed.is_empty() {
                c.set("headers", Val::Map(fixed));
            }
        }
        if let Some((timeout, pos)) = o.str("Timeout", r) {
            match go_duration(&timeout) {
                Some(d) => c.set("request_timeout", Val::Str(weir_core::units::Dur(d).to_string())),
                None => r.left_out(pos, o.what("Timeout"), format!("`{timeout}` is not a duration")),
            }
        }
        if let Some(retry) = o.map("Retry", r) {
            http_retry(retry, r, &mut c);
        }
        if let Some(convert) = o.map("Convert", r) {
            http_convert(convert, r);
        } else {
            r.note(p.pos, o.what("Convert"), CUSTOM_SINGLE);
        }
        if let Some((codec, pos)) = o.str("Compression", r) {
            match codec.as_str() {
                "" | "none" => {}
                "gzip" => c.set("compression", Val::str("gzip")),
                other => r.left_out(
                    pos,
                    o.what("Compression"),
                    format!("Weir's http output compresses with gzip only, not `{other}`; requests are not compressed"),
                ),
            }
        }
        if let Some((true, pos)) = o.bool("DropEventWhenQueueFull", r) {
            r.note(
                pos,
                o.what("DropEventWhenQueueFull"),
                "Weir never drops events when the endpoint is slow: reading slows down instead (backpressure)",
            );
        }
        if let Some(auth) = o.map("Authenticator", r) {
            self.http_authenticator(auth, &mut c);
        }
        self.pipeline.outputs.push(c);
        let tuning = "a setting of LoongCollector's HTTP client; Weir sizes its own";
        o.finish(
            &mut self.report,
            &[(
                "Encoder",
                "Weir's http output writes JSON lines or Elasticsearch bulk bodies, not encoder plugins",
            )],
            &[
                ("Concurrency", tuning),
                ("MaxConnsPerHost", tuning),
                ("MaxIdleConnsPerHost", tuning),
                ("IdleConnTimeout", tuning),
                ("WriteBufferSize", tuning),
                ("QueueCapacity", tuning),
                ("AsyncIntercept", tuning),
            ],
        );
    }

    /// `Authenticator` of `flusher_http`: basic authentication from an `ext_basicauth`
    /// extension.
    fn http_authenticator(&mut self, mut auth: Opts<'_>, c: &mut Component) {
        let r = &mut self.report;
        let Some((name, pos)) = auth.str("Type", r) else {
            auth.finish(r, &[], &[]);
            return;
        };
        // An extension is named by its `Type`, or `Type/suffix` for several of a kind.
        let found = self.extensions.iter().position(|e| e.ty == name);
        let Some(i) = found else {
            r.left_out(
                pos,
                auth.what("Type"),
                format!("no extension `{name}` in `extensions:`; requests carry no credentials"),
            );
            auth.finish(r, &[], &[]);
            return;
        };
        self.extensions_used[i] = true;
        let ext = self.extensions[i].clone();
        let has_header = matches!(c.get("headers"), Some(Val::Map(h)) if h.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")));
        if has_header {
            r.left_out(
                pos,
                auth.what("Type"),
                "an `Authorization` header is set too; Weir keeps the header and drops the authenticator",
            );
            auth.finish(r, &[], &[]);
            return;
        }
        if !name.starts_with("ext_basicauth") {
            r.left_out(
                pos,
                auth.what("Type"),
                format!("Weir's http output has basic and bearer authentication, not `{name}`"),
            );
            auth.finish(r, &[], &[]);
            return;
        }
        let mut e = ext.opts();
        let user = e.str("Username", r);
        let password = e.str("Password", r);
        match (user, password) {
            (Some((user, _)), Some((password, _))) => c.set(
                "auth",
                Val::Map(vec![
                    ("strategy".into(), Val::str("basic")),
                    ("user".into(), Val::Str(user)),
                    ("password".into(), Val::Str(password)),
                ]),
            ),
            _ => r.left_out(
                ext.pos,
                ext.label(),
                "needs `Username` and `Password`; requests carry no credentials",
            ),
        }
        e.finish(r, &[], &[]);
        auth.finish(
            r,
            &[],
            &[(
                "Options",
                "options of the extension call; none apply to basic authentication",
            )],
        );
    }

    fn unused_extensions(&mut self) {
        for (e, used) in self.extensions.iter().zip(&self.extensions_used) {
            if !used {
                self.report.left_out(
                    e.pos,
                    e.label(),
                    "no translated plugin uses this extension; it was left out",
                );
            }
        }
    }
}

/// Why a Kafka option has no counterpart.
const NO_KAFKA_EQUIVALENT: &str = "Weir's kafka output has no equivalent of this option";

/// What LoongCollector's default `custom_single` protocol looks like next to Weir's.
const CUSTOM_SINGLE: &str = "LoongCollector's default `custom_single` protocol nests fields under `contents` \
                             with `tags` and `time`; Weir writes one flat JSON object per event";

/// `RequiredAcks`.
fn kafka_acks(o: &mut Opts<'_>, r: &mut Report, c: &mut Component) {
    let Some((acks, pos)) = o.int("RequiredAcks", r) else {
        return;
    };
    match acks {
        -1 => {}
        1 => c.set("acks", Val::str("1")),
        0 => {
            c.set("acks", Val::str("1"));
            r.note(
                pos,
                o.what("RequiredAcks"),
                "Weir waits at least for the partition leader (acks 1); it never sends without acknowledgement",
            );
        }
        other => r.left_out(
            pos,
            o.what("RequiredAcks"),
            format!("`{other}` is not -1, 0 or 1; Weir waits for every in-sync replica (acks all)"),
        ),
    }
}

/// `Convert` of `flusher_kafka_v2`: the message format.
fn kafka_convert(o: &mut Opts<'_>, r: &mut Report, p: &Plugin<'_>) {
    let Some(mut convert) = o.map("Convert", r) else {
        r.note(p.pos, o.what("Convert"), CUSTOM_SINGLE);
        return;
    };
    match convert.str("Protocol", r) {
        None => r.note(convert.pos, convert.what("Protocol"), CUSTOM_SINGLE),
        Some((protocol, pos)) => match protocol.as_str() {
            "custom_single" => r.note(pos, convert.what("Protocol"), CUSTOM_SINGLE),
            "custom_single_flatten" => r.note(
                pos,
                convert.what("Protocol"),
                "Weir writes the fields flat as this protocol does, but no tags",
            ),
            other => r.left_out(
                pos,
                convert.what("Protocol"),
                format!("Weir writes each event as a flat JSON object, not `{other}`"),
            ),
        },
    }
    if let Some((encoding, pos)) = convert.str("Encoding", r)
        && encoding != "json"
    {
        r.left_out(
            pos,
            convert.what("Encoding"),
            format!("Weir writes JSON, not `{encoding}`"),
        );
    }
    convert.finish(
        r,
        &[
            ("TagFieldsRename", "Weir events carry no tags"),
            (
                "ProtocolFieldsRename",
                "Weir's JSON has no `contents`, `tags` or `time` to rename",
            ),
        ],
        &[],
    );
}

/// `Compression` and `CompressionLevel` of `flusher_kafka_v2`.
fn kafka_compression(o: &mut Opts<'_>, r: &mut Report, c: &mut Component, librdkafka: &mut Vec<(String, Val)>) {
    if let Some((codec, pos)) = o.str("Compression", r) {
        match codec.as_str() {
            "none" | "" => {}
            "gzip" | "snappy" | "lz4" | "zstd" => c.set("compression", Val::Str(codec)),
            other => r.left_out(
                pos,
                o.what("Compression"),
                format!("`{other}` is not a codec Weir knows; messages are not compressed"),
            ),
        }
    }
    if let Some((level, _)) = o.int("CompressionLevel", r) {
        if level == 0 {
            // LoongCollector: level 0 turns compression off.
            c.fields.retain(|(k, _)| k != "compression");
        } else {
            librdkafka.push(("compression.level".into(), Val::Str(level.to_string())));
        }
    }
}

/// Batching, sizes and client settings of the Kafka flushers: `batch.timeout` and
/// librdkafka settings.
fn kafka_tuning(
    o: &mut Opts<'_>,
    r: &mut Report,
    c: &mut Component,
    librdkafka: &mut Vec<(String, Val)>,
    native: bool,
) {
    let numeric: &[(&str, &str)] = if native {
        &[
            ("BulkMaxSize", "batch.num.messages"),
            ("MaxMessageBytes", "message.max.bytes"),
            ("QueueBufferingMaxKbytes", "queue.buffering.max.kbytes"),
            ("QueueBufferingMaxMessages", "queue.buffering.max.messages"),
            ("Timeout", "request.timeout.ms"),
            ("RetryBackoffMs", "retry.backoff.ms"),
        ]
    } else {
        &[
            ("BulkMaxSize", "batch.num.messages"),
            ("MaxMessageBytes", "message.max.bytes"),
            ("MaxOpenRequests", "max.in.flight.requests.per.connection"),
        ]
    };
    for (option, setting) in numeric {
        if let Some((n, _)) = o.int(option, r) {
            librdkafka.push(((*setting).to_string(), Val::Str(n.to_string())));
        }
    }
    if let Some((n, pos)) = o.int("BulkFlushFrequency", r) {
        // Milliseconds for the native flusher; a Go duration (nanoseconds) for v2.
        let nanos = if native { n.saturating_mul(1_000_000) } else { n };
        if nanos > 0 {
            let d = std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
            c.set(
                "batch",
                Val::Map(vec![("timeout".into(), Val::Str(weir_core::units::Dur(d).to_string()))]),
            );
        } else if n < 0 {
            r.left_out(pos, o.what("BulkFlushFrequency"), "a negative wait");
        }
    }
    if !native && let Some((id, _)) = o.str("ClientID", r) {
        librdkafka.push(("client.id".into(), Val::Str(id)));
    }
    if native && let Some((map, _)) = o.str_map("Kafka", r) {
        librdkafka.extend(map.into_iter().map(|(k, v, _)| (k, Val::Str(v))));
    }
}

/// `Authentication` of the Kafka flushers: SASL and TLS.
fn kafka_auth(mut auth: Opts<'_>, r: &mut Report, c: &mut Component, librdkafka: &mut Vec<(String, Val)>) {
    // PlainText is SASL/PLAIN; SASL names its mechanism.
    let mut sasl = None;
    if let Some(mut plain) = auth.map("PlainText", r) {
        if let (Some((u, _)), Some((pw, _))) = (plain.str("Username", r), plain.str("Password", r)) {
            sasl = Some(("PLAIN".to_string(), u, pw));
        }
        plain.finish(r, &[], &[]);
    }
    for name in ["SASL", "Sasl"] {
        let Some(mut s) = auth.map(name, r) else { continue };
        let mechanism = s
            .str("SaslMechanism", r)
            .or_else(|| s.str("Mechanism", r))
            .map_or_else(|| "PLAIN".to_string(), |(m, _)| m);
        if let (Some((u, _)), Some((pw, _))) = (s.str("Username", r), s.str("Password", r)) {
            sasl = Some((mechanism, u, pw));
        }
        s.finish(r, &[], &[]);
    }
    if let Some((mechanism, user, password)) = sasl {
        c.set(
            "sasl",
            Val::Map(vec![
                ("mechanism".into(), Val::Str(mechanism)),
                ("username".into(), Val::Str(user)),
                ("password".into(), Val::Str(password)),
            ]),
        );
    }
    if let Some(tls) = auth.map("TLS", r) {
        kafka_tls(tls, r, c, librdkafka);
    }
    if let Some(mut k) = auth.map("Kerberos", r) {
        match k.bool("Enabled", r) {
            Some((false, _)) => k.finish(r, &[], &[]),
            _ => {
                r.left_out(
                    k.pos,
                    auth.what("Kerberos"),
                    "Weir's kafka output has no Kerberos (GSSAPI) authentication",
                );
            }
        }
    }
    auth.finish(r, &[], &[]);
}

/// `Authentication.TLS` of the Kafka flushers.
fn kafka_tls(mut t: Opts<'_>, r: &mut Report, c: &mut Component, librdkafka: &mut Vec<(String, Val)>) {
    if !t.bool("Enabled", r).is_some_and(|(b, _)| b) {
        r.note(
            t.pos,
            t.what("Enabled"),
            "TLS is not enabled (`Enabled: true`); the connection is plain",
        );
        return;
    }
    let mut tls = Vec::new();
    for (option, key) in [("CAFile", "ca_file"), ("CertFile", "crt_file"), ("KeyFile", "key_file")] {
        if let Some((path, _)) = t.str(option, r) {
            tls.push((key.to_string(), Val::Str(path)));
        }
    }
    if let Some((password, _)) = t.str("KeyPassword", r) {
        librdkafka.push(("ssl.key.password".into(), Val::Str(password)));
    }
    if let Some((v, pos)) = t.str("MinVersion", r) {
        match v.as_str() {
            "1.2" | "1.3" => tls.push(("min_version".into(), Val::Str(v))),
            other => r.left_out(
                pos,
                t.what("MinVersion"),
                format!("Weir speaks TLS 1.2 and 1.3 only, not {other}"),
            ),
        }
    }
    if let Some((true, _)) = t.bool("InsecureSkipVerify", r) {
        tls.push(("verify_certificate".into(), Val::Bool(false)));
        tls.push(("verify_hostname".into(), Val::Bool(false)));
    }
    c.set("tls", Val::Map(tls));
    t.finish(r, &[("MaxVersion", "Weir speaks TLS 1.2 and 1.3")], &[]);
}

/// `Retry` of `flusher_http`.
fn http_retry(mut retry: Opts<'_>, r: &mut Report, c: &mut Component) {
    if let Some((false, pos)) = retry.bool("Enable", r) {
        r.left_out(
            pos,
            retry.what("Enable"),
            "Weir always retries a failed request until it is delivered (or the agent stops)",
        );
    }
    let mut backoff = Vec::new();
    for (option, key) in [("InitialDelay", "initial_backoff"), ("MaxDelay", "max_backoff")] {
        let Some((text, pos)) = retry.str(option, r) else {
            continue;
        };
        match go_duration(&text) {
            Some(d) => backoff.push((key.to_string(), Val::Str(weir_core::units::Dur(d).to_string()))),
            None => r.left_out(pos, retry.what(option), format!("`{text}` is not a duration")),
        }
    }
    if !backoff.is_empty() {
        c.set("retry", Val::Map(backoff));
    }
    retry.finish(
        r,
        &[],
        &[(
            "MaxRetryTimes",
            "Weir retries until the request is delivered; it never gives up on events",
        )],
    );
}

/// `Convert` of `flusher_http`: the body format.
fn http_convert(mut convert: Opts<'_>, r: &mut Report) {
    match convert.str("Protocol", r) {
        None => r.note(convert.pos, convert.what("Protocol"), CUSTOM_SINGLE),
        Some((protocol, pos)) => match protocol.as_str() {
            "jsonline" => {}
            "custom_single" => r.note(pos, convert.what("Protocol"), CUSTOM_SINGLE),
            other => r.left_out(
                pos,
                convert.what("Protocol"),
                format!("Weir posts JSON lines (or Elasticsearch bulk bodies), not `{other}`"),
            ),
        },
    }
    if let Some((encoding, pos)) = convert.str("Encoding", r)
        && encoding != "json"
    {
        r.left_out(
            pos,
            convert.what("Encoding"),
            format!("Weir writes JSON, not `{encoding}`"),
        );
    }
    convert.finish(
        r,
        &[
            ("TagFieldsRename", "Weir events carry no tags"),
            (
                "ProtocolFieldsRename",
                "Weir's JSON has no `contents`, `tags` or `time` to rename",
            ),
            ("Separator", "Weir posts one JSON object per line"),
        ],
        &[(
            "IgnoreUnExpectedData",
            "Weir encodes every event; nothing is unexpected",
        )],
    );
}

/// The `paths` for `FilePaths`: `**` (which LoongCollector bounds by
/// `MaxDirSearchDepth`, default 0) written as explicit levels of `*/`.
fn glob_paths(paths: &[String], depth: Option<(i64, Pos)>, o: &Opts<'_>, r: &mut Report) -> Vec<String> {
    let levels = depth.map_or(0, |(d, _)| d.clamp(0, 1000));
    let mut out = Vec::new();
    let mut any_globstar = false;
    for path in paths {
        let Some((head, tail)) = path.split_once("**") else {
            out.push(path.clone());
            continue;
        };
        any_globstar = true;
        let tail = tail.trim_start_matches('/');
        if levels <= MAX_EXPANDED_DEPTH {
            for n in 0..=levels {
                out.push(format!("{head}{}{tail}", "*/".repeat(usize::try_from(n).unwrap_or(0))));
            }
        } else {
            out.push(path.clone());
            if let Some((d, pos)) = depth {
                r.left_out(
                    pos,
                    o.what("MaxDirSearchDepth"),
                    format!("Weir's `**` matches directories at any depth, not at most {d}"),
                );
            }
        }
    }
    if !any_globstar && let Some((_, pos)) = depth {
        r.note(
            pos,
            o.what("MaxDirSearchDepth"),
            "no `**` in FilePaths, so it has no effect (in LoongCollector either)",
        );
    }
    out
}

/// `FileEncoding`: Weir reads bytes as they are (UTF-8).
fn file_encoding(o: &mut Opts<'_>, r: &mut Report) {
    if let Some((encoding, pos)) = o.str("FileEncoding", r)
        && !matches!(encoding.to_ascii_lowercase().as_str(), "utf8" | "utf-8")
    {
        r.left_out(
            pos,
            o.what("FileEncoding"),
            format!("Weir reads files as UTF-8 and does not convert from {encoding}"),
        );
    }
}

/// `FlushTimeoutSecs`: `flush_timeout`.
fn flush_timeout(o: &mut Opts<'_>, r: &mut Report, c: &mut Component) {
    if let Some((secs, pos)) = o.int("FlushTimeoutSecs", r) {
        if secs > 0 {
            c.set("flush_timeout", Val::Str(format!("{secs}s")));
        } else {
            r.note(
                pos,
                o.what("FlushTimeoutSecs"),
                "not a positive number of seconds; Weir's default (1s) applies",
            );
        }
    }
}

/// An option that Weir cannot honour unless it is empty (`Tags: {}`).
fn take_empty_map(o: &mut Opts<'_>, r: &mut Report, name: &str, why: &str) {
    if let Some((k, v)) = o.take(name) {
        let empty = match &v.value {
            Value::Null => true,
            Value::Map(m) => m.is_empty(),
            _ => false,
        };
        if !empty {
            r.left_out(k.pos, o.what(name), why);
        }
    }
}

/// A native (Boost) regex that must match the whole value, for Weir, which searches:
/// `^(?s:...)$` (Boost's `.` matches line breaks). A leading `^` and trailing `$` of the
/// pattern are dropped first, so the fast field scanner can still take the pattern.
fn whole_value(pattern: &str) -> String {
    let inner = pattern.strip_prefix('^').unwrap_or(pattern);
    let inner = strip_trailing_dollar(inner);
    format!("^(?s:{inner})$")
}

/// A Go regex that may match anywhere in a name, for Weir, which matches the whole name.
fn search_as_whole(pattern: &str) -> String {
    if pattern.starts_with('^') && strip_trailing_dollar(pattern).len() < pattern.len() {
        pattern.to_string()
    } else {
        format!(".*(?:{pattern}).*")
    }
}

/// `pattern` without a final unescaped `$`.
fn strip_trailing_dollar(pattern: &str) -> &str {
    match pattern.strip_suffix('$') {
        Some(rest) if rest.chars().rev().take_while(|&c| c == '\\').count() % 2 == 0 => rest,
        _ => pattern,
    }
}

/// A multiline pattern as LoongCollector uses it: without a final `$` and final `.*`s;
/// `None` when nothing is left (LoongCollector then has no such pattern).
fn multiline_pattern(pattern: &str) -> Option<String> {
    let mut p = strip_trailing_dollar(pattern);
    while let Some(rest) = p.strip_suffix(".*") {
        if rest.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1 {
            break; // `\.*`: a literal dot repeated
        }
        p = rest;
    }
    (!p.is_empty()).then(|| p.to_string())
}

/// `include:` from (field, regex) pairs, or `condition: { all: [...] }` when a field is
/// tested twice (a map cannot say that).
fn include_or_all(leaves: Vec<(String, String)>) -> (&'static str, Val) {
    let mut seen = std::collections::HashSet::new();
    if leaves.iter().all(|(f, _)| seen.insert(f.clone())) {
        return (
            "include",
            Val::Map(leaves.into_iter().map(|(f, re)| (f, Val::Str(re))).collect()),
        );
    }
    let all = leaves
        .into_iter()
        .map(|(f, re)| Val::Map(vec![("field".into(), Val::Str(f)), ("matches".into(), Val::Str(re))]))
        .collect();
    ("condition", Val::Map(vec![("all".into(), Val::List(all))]))
}

/// A LoongCollector `SourceFormat` (strftime-like) as a Weir `parse_timestamp` format.
fn time_format(format: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(d @ ('Y' | 'm' | 'd' | 'e' | 'j' | 'H' | 'M' | 'S' | 'f' | 'z' | 'Z' | 's' | 'b' | 'B' | 'h')) => {
                out.push('%');
                out.push(d);
            }
            Some('%') => out.push_str("%%"),
            Some('F') => out.push_str("%Y-%m-%d"),
            Some('T' | 'X') => out.push_str("%H:%M:%S"),
            Some('R') => out.push_str("%H:%M"),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(d) => {
                return Err(format!(
                    "`%{d}` ({}) has no equivalent in Weir's time formats",
                    directive(d)
                ));
            }
            None => return Err("the format ends with a lone `%`".into()),
        }
    }
    // LoongCollector reads up to the end of the format and ignores what follows, most
    // often a fraction of a second; `.%f` is Weir's optional fraction.
    if out.ends_with("%S") {
        out.push_str(".%f");
    }
    Ok(out)
}

/// What a strftime directive Weir lacks means.
fn directive(d: char) -> &'static str {
    match d {
        'a' | 'A' => "a weekday name",
        'y' => "a year without its century",
        'C' => "a century",
        'I' | 'l' => "a 12-hour clock hour",
        'p' => "AM or PM",
        'r' => "a 12-hour clock time",
        'u' | 'w' => "a weekday number",
        'U' | 'V' | 'W' => "a week number",
        'G' | 'g' => "an ISO week-based year",
        'c' | 'x' | 'D' => "a locale or two-digit-year date",
        'k' => "a space-padded hour",
        _ => "unknown",
    }
}

/// `GMT+08:00` as `+08:00`; `Some(None)` for UTC itself; `None` when not that shape.
fn gmt_offset(tz: &str) -> Option<Option<String>> {
    let t = tz.trim();
    if t.is_empty() || t == "GMT" || t == "UTC" {
        return Some(None);
    }
    let rest = t.strip_prefix("GMT").or_else(|| t.strip_prefix("UTC"))?;
    let (sign, hm) = rest.split_at(1);
    if sign != "+" && sign != "-" {
        return None;
    }
    let (h, m) = hm.split_once(':').unwrap_or((hm, "00"));
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    if h == 0 && m == 0 {
        return Some(None);
    }
    Some(Some(format!("{sign}{h:02}:{m:02}")))
}

/// A Go duration (`1m30s`, `250ms`, `2h`) as a std duration.
fn go_duration(text: &str) -> Option<std::time::Duration> {
    let t = text.trim();
    if t == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * scale;
        rest = &rest[unit_end..];
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_value_patterns() {
        assert_eq!(whole_value(r"(\d+) (.*)"), r"^(?s:(\d+) (.*))$");
        assert_eq!(whole_value(r"^a|b$"), r"^(?s:a|b)$");
        assert_eq!(whole_value(r"cost \$"), r"^(?s:cost \$)$");
    }

    #[test]
    fn multiline_patterns_lose_their_tail_like_loongcollector() {
        assert_eq!(multiline_pattern(r"\d+-\d+-\d+.*").as_deref(), Some(r"\d+-\d+-\d+"));
        assert_eq!(multiline_pattern(r"\[\w+\].*.*$").as_deref(), Some(r"\[\w+\]"));
        assert_eq!(multiline_pattern(r"end\.*").as_deref(), Some(r"end\.*"));
        assert_eq!(multiline_pattern(".*"), None);
    }

    #[test]
    fn search_patterns_become_whole_name_patterns() {
        assert_eq!(search_as_whole("^(default)$"), "^(default)$");
        assert_eq!(search_as_whole("nginx"), ".*(?:nginx).*");
        assert_eq!(search_as_whole("^nginx-"), ".*(?:^nginx-).*");
    }

    #[test]
    fn time_formats() {
        assert_eq!(time_format("%Y-%m-%d %H:%M:%S").unwrap(), "%Y-%m-%d %H:%M:%S.%f");
        assert_eq!(time_format("%d/%b/%Y:%H:%M:%S %z").unwrap(), "%d/%b/%Y:%H:%M:%S %z");
        assert_eq!(time_format("%FT%T").unwrap(), "%Y-%m-%dT%H:%M:%S.%f");
        assert_eq!(time_format("%s").unwrap(), "%s");
        assert!(time_format("%a %b %d").unwrap_err().contains("weekday"));
        assert!(time_format("%y-%m-%d").unwrap_err().contains("century"));
    }

    #[test]
    fn time_zones() {
        assert_eq!(gmt_offset("GMT+08:00"), Some(Some("+08:00".into())));
        assert_eq!(gmt_offset("GMT-03:30"), Some(Some("-03:30".into())));
        assert_eq!(gmt_offset("GMT+00:00"), Some(None));
        assert_eq!(gmt_offset(""), Some(None));
        assert_eq!(gmt_offset("Asia/Shanghai"), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("60s"), Some(std::time::Duration::from_secs(60)));
        assert_eq!(go_duration("1m30s"), Some(std::time::Duration::from_secs(90)));
        assert_eq!(go_duration("250ms"), Some(std::time::Duration::from_millis(250)));
        assert_eq!(go_duration("5"), None);
    }

    #[test]
    fn topics() {
        let t = Names::default();
        assert_eq!(t.topic("logs_%{content.app}").unwrap(), "logs_{app}");
        assert_eq!(t.topic("logs_%{content.content}").unwrap(), "logs_{message}");
        assert_eq!(t.topic("a{b}_${ENV}").unwrap(), "a{{b}}_${ENV}");
        assert!(t.topic("x_%{tag.host}").unwrap_err().contains("tags"));
        let k8s = Names { containers: true };
        assert_eq!(k8s.topic("%{tag._namespace_}").unwrap(), "{namespace}");
    }
}

//! What the admin endpoint answers: `/health` and `/metrics` from the run's counters.

use std::sync::atomic::{AtomicU64, Ordering};

use weir_core::pipeline::StatsSnapshot;

use super::plan::Plan;
use super::reload::Reloads;
use crate::admin::{Labeled, Metrics};
use crate::delivery::acks::Acks;
use crate::delivery::guard::GuardStats;
use crate::inputs::InputStats;
use crate::inputs::tail::TailStats;
use crate::outputs::OutputStats;

impl Plan<'_> {
    /// What the admin endpoint answers at `path`.
    pub(super) fn admin_reply(&self, path: &str, reloads: &Reloads) -> crate::admin::Reply {
        match path {
            "/metrics" => (200, "text/plain; version=0.0.4", self.metrics(reloads)),
            "/health" => (200, "application/json", self.health(reloads)),
            "/api/components" => (200, "application/json", self.components()),
            _ => (
                404,
                "text/plain",
                "not found: try /health, /metrics, /api/components or /tap?component=NAME\n".to_string(),
            ),
        }
    }

    /// `/health`: live, the state of every input and output, and the pipeline file's (its
    /// hash, reloads, why the last one was refused).
    pub(super) fn health(&self, reloads: &Reloads) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let inputs: Vec<serde_json::Value> = (0..self.input_stats.len())
            .map(|i| {
                let (st, tail) = (&self.input_stats[i], &self.tail_stats[i]);
                serde_json::json!({
                    "name": self.input_name(i),
                    "events": get(&st.events),
                    "bytes": get(&st.bytes),
                    "files_open": get(&tail.files_open),
                    "read_errors": get(&st.read_errors),
                })
            })
            .collect();
        let outputs: Vec<serde_json::Value> = (0..self.output_stats.len())
            .map(|i| {
                let st = &self.output_stats[i];
                serde_json::json!({
                    "name": self.output_name(i),
                    "events": get(&st.events),
                    "retries": get(&st.retries),
                    "rejected": get(&st.rejected),
                })
            })
            .collect();
        let mut body = serde_json::json!({ "status": "ok", "inputs": inputs, "outputs": outputs });
        if let Some(acks) = &self.acks {
            body["checkpoint_age_seconds"] = serde_json::json!(acks.checkpoint_age());
        }
        body["config"] = serde_json::json!({
            "sha256": *reloads.sha256.lock().unwrap_or_else(|e| e.into_inner()),
            "reloads": get(&reloads.applied),
            "reload_failures": get(&reloads.failed),
            "last_reload_error": *reloads.last_error.lock().unwrap_or_else(|e| e.into_inner()),
        });
        body.to_string() + "\n"
    }

    /// `/api/components`: one entry per component (inputs, processors, outputs, in the
    /// pipeline's order) with its counters since the start, its queue and its lag where
    /// they apply, for `weir top` (which takes rates from two of these).
    pub(super) fn components(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let lag = self.input_lag();
        let mut all = Vec::new();
        for (i, st) in self.input_stats.iter().enumerate() {
            let mut c = serde_json::json!({
                "name": self.input_name(i),
                "kind": "input",
                "events_in": get(&st.events),
                "events_out": get(&st.events),
                "bytes": get(&st.bytes),
                "failures": get(&st.read_errors) + get(&st.format_errors),
            });
            if let Some((value, unit)) = lag[i] {
                c["lag"] = value.into();
                c["lag_unit"] = unit.into();
            }
            all.push(c);
        }
        for (name, st) in self.proc_names.iter().zip(&self.proc_stats) {
            let s = st.snapshot();
            all.push(serde_json::json!({
                "name": name,
                "kind": "processor",
                "events_in": s.events_in,
                "events_out": s.events_out,
                "bytes": s.bytes_in,
                "failures": s.failures,
            }));
        }
        for (i, st) in self.output_stats.iter().enumerate() {
            all.push(serde_json::json!({
                "name": self.output_name(i),
                "kind": "output",
                "events_out": get(&st.events),
                "bytes": get(&st.bytes),
                "failures": get(&st.rejected),
                "retries": get(&st.retries),
                "queue": get(&self.queues.outputs[i]),
            }));
        }
        for (c, point) in all.iter_mut().zip(self.taps.points()) {
            let (sent, lost) = point.counts();
            if sent + lost > 0 {
                c["tap_sent"] = sent.into();
                c["tap_lost"] = lost.into();
            }
        }
        let body = serde_json::json!({
            "work_queue": get(&self.queues.work),
            "work_queue_capacity": self.queues.work_capacity,
            "components": all,
        });
        body.to_string() + "\n"
    }

    /// Per input, its lag where it has one: bytes of its followed files not yet delivered,
    /// or (Kafka) messages of its partitions not read yet.
    fn input_lag(&self) -> Vec<Option<(f64, &'static str)>> {
        let mut lag: Vec<Option<(f64, &'static str)>> = self
            .input_stats
            .iter()
            .map(|st| st.labeled.sum("weir_kafka_consumer_lag").map(|v| (v, "messages")))
            .collect();
        let Some(acks) = &self.acks else { return lag };
        for (i, _) in &self.follow_globs {
            lag[*i] = Some((0.0, "bytes"));
        }
        for file in acks.lag() {
            // A file is its input's by the globs; one renamed out of them (rotated) is the
            // only followed input's, when there is one.
            let input = self
                .follow_globs
                .iter()
                .find(|(_, globs)| globs.iter().any(|g| g.matches_path(&file.path)))
                .or(match &self.follow_globs[..] {
                    [only] => Some(only),
                    _ => None,
                });
            if let Some((i, _)) = input
                && let Some((behind, _)) = &mut lag[*i]
            {
                *behind += file.size.saturating_sub(file.committed) as f64;
            }
        }
        lag
    }

    /// `/metrics`: every counter, in Prometheus text.
    pub(super) fn metrics(&self, reloads: &Reloads) -> String {
        let mut m = Metrics::default();
        reload_metrics(reloads, &mut m);
        self.input_metrics(&mut m);
        self.tail_metrics(&mut m);
        self.processor_metrics(&mut m);
        self.plugin_metrics(&mut m);
        self.output_metrics(&mut m);
        if let Some(acks) = &self.acks {
            checkpoint_metrics(acks, &mut m);
        }
        if let Some(guard) = &self.guard {
            guard_metrics(&guard.stats, &mut m);
        }
        let mut labeled: Vec<(String, &Labeled)> = Vec::new();
        for (i, st) in self.input_stats.iter().enumerate() {
            labeled.push((self.input_name(i), &st.labeled));
        }
        for (i, st) in self.output_stats.iter().enumerate() {
            labeled.push((self.output_name(i), &st.labeled));
        }
        if let Some(k) = crate::inputs::kubernetes::metadata::metrics() {
            labeled.push(("kubernetes_logs".into(), k));
        }
        Labeled::render(&labeled, &mut m);
        m.finish()
    }

    /// Every input's counters.
    fn input_metrics(&self, m: &mut Metrics) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        type InputCounter = fn(&InputStats) -> &AtomicU64;
        let input_counters: [(&str, &str, InputCounter); 8] = [
            ("weir_input_events_total", "Events made by the input.", |s| &s.events),
            ("weir_input_bytes_total", "Bytes read by the input.", |s| &s.bytes),
            (
                "weir_input_lines_cut_total",
                "Lines longer than max_line_bytes, cut.",
                |s| &s.lines_cut,
            ),
            (
                "weir_input_format_errors_total",
                "Lines not in the input's format.",
                |s| &s.format_errors,
            ),
            (
                "weir_input_bad_times_total",
                "Container lines whose time is missing or not a timestamp.",
                |s| &s.bad_times,
            ),
            (
                "weir_input_unfinished_messages_total",
                "Container messages that ended before their last piece.",
                |s| &s.unfinished_messages,
            ),
            ("weir_input_read_errors_total", "Sources that could not be read.", |s| {
                &s.read_errors
            }),
            (
                "weir_input_records_cut_total",
                "Multiline records closed by their limits.",
                |s| &s.records_cut,
            ),
        ];
        for (name, help, f) in input_counters {
            m.family(name, "counter", help);
            for (i, st) in self.input_stats.iter().enumerate() {
                m.sample(name, &[("component", &self.input_name(i))], get(f(st)));
            }
        }
    }

    /// Follow mode's file counters, per input.
    fn tail_metrics(&self, m: &mut Metrics) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        type TailCounter = fn(&TailStats) -> &AtomicU64;
        let tail_counters: [(&str, &str, &str, TailCounter); 5] = [
            ("weir_files_open", "gauge", "Files the input holds open.", |s| {
                &s.files_open
            }),
            ("weir_files_found_total", "counter", "Files found by the input.", |s| {
                &s.files_found
            }),
            (
                "weir_files_released_total",
                "counter",
                "Files read to their end and let go.",
                |s| &s.files_released,
            ),
            (
                "weir_file_truncations_total",
                "counter",
                "Files truncated under the reader.",
                |s| &s.truncations,
            ),
            (
                "weir_file_bytes_lost_total",
                "counter",
                "Bytes gone before they could be read.",
                |s| &s.bytes_lost,
            ),
        ];
        for (name, kind, help, f) in tail_counters {
            m.family(name, kind, help);
            for (i, st) in self.tail_stats.iter().enumerate() {
                m.sample(name, &[("component", &self.input_name(i))], get(f(st)));
            }
        }
    }

    /// Every processor's counters.
    fn processor_metrics(&self, m: &mut Metrics) {
        type ProcCounter = fn(&StatsSnapshot) -> u64;
        let proc_counters: [(&str, &str, ProcCounter); 5] = [
            ("weir_processor_events_in_total", "Events into the processor.", |s| {
                s.events_in
            }),
            ("weir_processor_events_out_total", "Events out of the processor.", |s| {
                s.events_out
            }),
            ("weir_processor_bytes_in_total", "Bytes into the processor.", |s| {
                s.bytes_in
            }),
            ("weir_processor_bytes_out_total", "Bytes out of the processor.", |s| {
                s.bytes_out
            }),
            (
                "weir_processor_failures_total",
                "Events that failed in the processor (parse failures, plugin errors).",
                |s| s.failures,
            ),
        ];
        let snaps: Vec<StatsSnapshot> = self.proc_stats.iter().map(|s| s.snapshot()).collect();
        for (name, help, f) in proc_counters {
            m.family(name, "counter", help);
            for (snap, pname) in snaps.iter().zip(&self.proc_names) {
                m.sample(name, &[("component", pname)], f(snap) as f64);
            }
        }
    }

    /// Every Wasm plugin's own counters (its processor's events and time are in the
    /// `weir_processor_*` families).
    fn plugin_metrics(&self, m: &mut Metrics) {
        use crate::config::registry::ProcessorConfig;
        // (processor index, name, plugin)
        let plugins: Vec<(usize, &str, std::sync::Arc<weir_wasm::Compiled>)> = self
            .cfg
            .processors
            .iter()
            .zip(&self.proc_names)
            .enumerate()
            .filter_map(|(i, (p, name))| match &p.value {
                ProcessorConfig::Wasm(c) => c.compiled().map(|c| (i, name.as_str(), c)),
                _ => None,
            })
            .collect();
        if plugins.is_empty() {
            return;
        }
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        type PluginCounter = fn(&weir_wasm::PluginStats) -> &AtomicU64;
        let counters: [(&str, &str, PluginCounter); 10] = [
            (
                "weir_wasm_plugin_calls_total",
                "Calls to the plugin's process (retries included).",
                |s| &s.calls,
            ),
            ("weir_wasm_plugin_events_total", "Events sent to the plugin.", |s| {
                &s.events
            }),
            (
                "weir_wasm_plugin_emitted_total",
                "Events the plugin emitted (0.2).",
                |s| &s.emitted,
            ),
            (
                "weir_wasm_plugin_emits_refused_total",
                "Events the plugin could not emit because of the per-call limits (lost).",
                |s| &s.emits_refused,
            ),
            (
                "weir_wasm_plugin_instances_total",
                "Instances created: one per worker, then one after each failure that discards one.",
                |s| &s.instances,
            ),
            (
                "weir_wasm_plugin_retries_total",
                "Calls retried after a retryable error.",
                |s| &s.retries,
            ),
            ("weir_wasm_plugin_flushes_total", "Calls to the plugin's flush.", |s| {
                &s.flushes
            }),
            (
                "weir_wasm_plugin_fuel_used_total",
                "Fuel the plugin's calls used (when `fuel:` is set).",
                |s| &s.fuel_used,
            ),
            (
                "weir_wasm_plugin_reloads_total",
                "New versions of the plugin file picked up while running.",
                |s| &s.reloads,
            ),
            (
                "weir_wasm_plugin_reload_failures_total",
                "New versions of the plugin file that could not run (the previous one went on).",
                |s| &s.reload_failures,
            ),
        ];
        for (family, help, f) in counters {
            m.family(family, "counter", help);
            for (_, name, plugin) in &plugins {
                m.sample(family, &[("component", name)], get(f(plugin.stats())));
            }
        }
        let family = "weir_wasm_plugin_failures_total";
        m.family(family, "counter", "Failed batches (or flushes) of the plugin, by kind.");
        for (_, name, plugin) in &plugins {
            for kind in weir_wasm::FailureKind::ALL {
                m.sample(
                    family,
                    &[("component", name), ("kind", kind.name())],
                    plugin.stats().failures_of(kind) as f64,
                );
            }
        }
        let family = "weir_wasm_plugin_ns_per_event";
        m.family(
            family,
            "gauge",
            "Time in the processor per event sent to the plugin, since the start.",
        );
        for (i, name, plugin) in &plugins {
            let nanos = self.proc_stats[*i].nanos.load(Ordering::Relaxed) as f64;
            let events = get(&plugin.stats().events);
            m.sample(
                family,
                &[("component", name)],
                if events > 0.0 { nanos / events } else { 0.0 },
            );
        }
    }

    /// Every output's counters.
    fn output_metrics(&self, m: &mut Metrics) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        type OutCounter = fn(&OutputStats) -> &AtomicU64;
        let out_counters: [(&str, &str, OutCounter); 6] = [
            ("weir_output_events_total", "Events delivered by the output.", |s| {
                &s.events
            }),
            ("weir_output_bytes_total", "Bytes delivered by the output.", |s| {
                &s.bytes
            }),
            (
                "weir_output_retries_total",
                "Attempts repeated after a retryable failure.",
                |s| &s.retries,
            ),
            (
                "weir_output_rejected_total",
                "Events the destination rejected for good.",
                |s| &s.rejected,
            ),
            (
                "weir_output_unacked_batches_total",
                "Batches not delivered before the run stopped.",
                |s| &s.unacked_batches,
            ),
            (
                "weir_output_events_undelivered_total",
                "Events given up at the shutdown deadline (held or queued by the output).",
                |s| &s.undelivered,
            ),
        ];
        for (name, help, f) in out_counters {
            m.family(name, "counter", help);
            for (i, st) in self.output_stats.iter().enumerate() {
                m.sample(name, &[("component", &self.output_name(i))], get(f(st)));
            }
        }
        // Disk buffers (the rest of their metrics are labeled families, see outputs/buffer.rs).
        let buffered: Vec<usize> = (0..self.output_stats.len())
            .filter(|i| {
                let buffer = self.cfg.outputs[*i].value.get().buffer();
                buffer.is_some_and(|b| b.kind == crate::outputs::buffer::BufferKind::Disk)
            })
            .collect();
        if !buffered.is_empty() {
            let name = "weir_buffer_oldest_record_age_seconds";
            m.family(name, "gauge", "Age of the oldest disk buffer record not yet delivered.");
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            for i in buffered {
                let at = self.output_stats[i].buffer_oldest_ms.load(Ordering::Relaxed);
                let age = if at == 0 { 0 } else { now_ms.saturating_sub(at) };
                m.sample(name, &[("component", &self.output_name(i))], age as f64 / 1000.0);
            }
        }
    }
}

/// The checkpoint store: bytes behind per followed file, age, errors, entries, prunes.
fn checkpoint_metrics(acks: &Acks, m: &mut Metrics) {
    m.family(
        "weir_file_bytes_behind",
        "gauge",
        "Bytes of a followed file not yet delivered.",
    );
    for lag in acks.lag() {
        let path = lag.path.display().to_string();
        m.sample(
            "weir_file_bytes_behind",
            &[("path", &path)],
            lag.size.saturating_sub(lag.committed) as f64,
        );
    }
    m.family(
        "weir_checkpoint_age_seconds",
        "gauge",
        "Seconds since checkpoints were last saved.",
    );
    m.sample(
        "weir_checkpoint_age_seconds",
        &[],
        acks.checkpoint_age().unwrap_or(f64::NAN),
    );
    m.family(
        "weir_checkpoint_save_errors_total",
        "counter",
        "Checkpoint saves that failed.",
    );
    m.sample("weir_checkpoint_save_errors_total", &[], acks.save_errors() as f64);
    m.family("weir_checkpoint_entries", "gauge", "Files in the checkpoint store.");
    m.sample("weir_checkpoint_entries", &[], acks.checkpoint_entries() as f64);
    m.family(
        "weir_checkpoints_pruned_total",
        "counter",
        "Checkpoints dropped because their file was gone for checkpoint_prune_after.",
    );
    m.sample("weir_checkpoints_pruned_total", &[], acks.checkpoints_pruned() as f64);
}

/// The crash-loop guard's counters.
fn guard_metrics(stats: &GuardStats, m: &mut Metrics) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    type GuardCounter = fn(&GuardStats) -> &AtomicU64;
    let guard_counters: [(&str, &str, GuardCounter); 3] = [
        (
            "weir_crash_batches_recovered_total",
            "Batches in flight when the previous run ended abnormally (found at start).",
            |s| &s.recovered,
        ),
        (
            "weir_guarded_batches_total",
            "Batches processed one event at a time because an earlier run died on their bytes.",
            |s| &s.guarded_batches,
        ),
        (
            "weir_quarantined_events_total",
            "Events set aside because the agent died twice processing them (to dead_letter when set).",
            |s| &s.quarantined,
        ),
    ];
    for (name, help, f) in guard_counters {
        m.family(name, "counter", help);
        m.sample(name, &[], get(f(stats)));
    }
}

/// The pipeline file's hash and the reloads.
fn reload_metrics(reloads: &Reloads, m: &mut Metrics) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    let hash = reloads.sha256.lock().unwrap_or_else(|e| e.into_inner()).clone();
    m.family("weir_config_info", "gauge", "The running pipeline file: its SHA-256.")
        .sample("weir_config_info", &[("sha256", &hash)], 1.0);
    m.family(
        "weir_config_reloads_total",
        "counter",
        "Reloads applied (SIGHUP, --watch-config).",
    )
    .sample("weir_config_reloads_total", &[], get(&reloads.applied));
    m.family(
        "weir_config_reload_failures_total",
        "counter",
        "Reloads refused: the file did not load, validate or build; the running pipeline went on.",
    )
    .sample("weir_config_reload_failures_total", &[], get(&reloads.failed));
    let failing = reloads.last_error.lock().unwrap_or_else(|e| e.into_inner()).is_some();
    m.family(
        "weir_config_last_reload_successful",
        "gauge",
        "0 while the last reload was refused, else 1.",
    )
    .sample(
        "weir_config_last_reload_successful",
        &[],
        if failing { 0.0 } else { 1.0 },
    );
}

//! The run's own threads besides the stages: ending it (signals, readers done, the
//! shutdown deadline, the sidecar's `exit_when`) and saving checkpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::Sender;

use super::readers::Reader;
use crate::config::ExitWhen;
use crate::delivery::acks::Acks;
use crate::inputs::InputStats;

/// How a run is stopped from outside: `stop` ends reading (SIGTERM, SIGINT, a test);
/// `abort` tells outputs still retrying to give up (the shutdown deadline passed).
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Stop reading, drain, flush, save checkpoints.
    pub stop: Arc<AtomicBool>,
    /// Give up on what is not delivered yet.
    pub abort: Arc<AtomicBool>,
}

impl Control {
    /// A control wired to SIGTERM and SIGINT: the first sets `stop`, a second `abort`.
    pub fn from_signals() -> anyhow::Result<Control> {
        let control = Control::default();
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            // Registered first, the conditional one sees the flag before it is set: a
            // second signal sets `abort`.
            signal_hook::flag::register_conditional_default(sig, control.abort.clone())
                .map(|_| ())
                .ok();
            signal_hook::flag::register(sig, control.stop.clone()).context("cannot install a signal handler")?;
        }
        Ok(control)
    }
}

/// Sidecar mode: sets `stop` when a condition of `exit_when` holds.
pub(super) fn watch_exit(exit_when: &ExitWhen, inputs: &[Arc<InputStats>], stop: &AtomicBool, finished: &Latch) {
    let bytes = || inputs.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum::<u64>();
    let mut last = (bytes(), Instant::now());
    while !finished.is_set() && !stop.load(Ordering::Relaxed) {
        if let Some(marker) = &exit_when.marker_file
            && marker.value.exists()
        {
            tracing::info!(marker = %marker.value.display(), "exit_when: marker file found; reading to the end, then exiting");
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let now = bytes();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if let Some(idle) = &exit_when.idle {
            let process_gone = exit_when.process.as_ref().is_none_or(|p| !process_running(&p.value));
            if !process_gone {
                last.1 = Instant::now();
            } else if last.1.elapsed() >= idle.value.0 {
                tracing::info!(idle = %idle.value, "exit_when: inputs idle; reading to the end, then exiting");
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        finished.wait(Duration::from_millis(50));
    }
}

/// Whether a process named `name` (its `/proc/PID/comm`) runs.
pub(super) fn process_running(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
    })
}

/// The closer: once every reader is done (or, after a stop, every reader that can stop),
/// or when a reload hands the run over to the next pipeline (`handoff`), drops `close`,
/// telling the workers to drain what is queued and finish. A stop of the run is passed on
/// to every reader. Returns whether the readers were done. Also returns once the pipeline
/// `ended` without it (its outputs failed): a reader may then wait forever on a full queue.
pub(super) fn close_when_read(
    readers: &Mutex<Vec<Reader>>,
    close: Sender<()>,
    stop: &AtomicBool,
    handoff: &AtomicBool,
    ended: &Latch,
) -> bool {
    let done = loop {
        if handoff.load(Ordering::Relaxed) || ended.is_set() {
            break false;
        }
        let stopping = stop.load(Ordering::Relaxed);
        let mut readers = readers.lock().unwrap_or_else(|e| e.into_inner());
        // A reader of stdin may be blocked in a read: after a stop it is not waited for.
        readers.retain(|r| {
            if stopping {
                r.stop.store(true, Ordering::Relaxed);
            }
            !(r.handle.is_finished() || stopping && r.stdin)
        });
        if readers.is_empty() {
            break true;
        }
        drop(readers);
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(close);
    done
}

/// The watchdog: after a stop, gives the drain `timeout`, then sets `abort`.
pub(super) fn watchdog(control: &Control, finished: &Latch, timeout: Duration) {
    while !finished.is_set() && !control.stop.load(Ordering::Relaxed) {
        finished.wait(Duration::from_millis(20));
    }
    let deadline = Instant::now() + timeout;
    while !finished.is_set() {
        if Instant::now() >= deadline {
            tracing::warn!(
                shutdown_timeout = ?timeout,
                "shutdown_timeout passed: giving up on what is not delivered"
            );
            control.abort.store(true, Ordering::Relaxed);
            break;
        }
        finished.wait(Duration::from_millis(20));
    }
}

/// Saves checkpoints at most every `interval` (and prunes those of files long gone) until
/// the run is finished; the last save is the caller's, after the outputs are done.
pub(super) fn save_checkpoints(acks: &Acks, finished: &Latch, interval: Duration) {
    while !finished.is_set() {
        acks.prune_if_due();
        acks.save_if_due(interval);
        finished.wait(interval.min(Duration::from_millis(100)));
    }
}

/// A flag set once that threads can wait on: setting it wakes them (a run's helper threads
/// end at once, not at their next poll).
#[derive(Debug, Default)]
pub(super) struct Latch {
    flag: AtomicBool,
    set: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    pub(super) fn set(&self) {
        self.flag.store(true, Ordering::Relaxed);
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    pub(super) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// The flag, for code that only polls it.
    pub(super) fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// Waits until it is set, at most `timeout`; whether it is.
    pub(super) fn wait(&self, timeout: Duration) -> bool {
        let set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let (set, _) = self
            .cv
            .wait_timeout_while(set, timeout, |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        *set
    }
}

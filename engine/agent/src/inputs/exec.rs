//! `type: exec`: the standard output and error of the command `weir run --exec -- CMD`
//! starts (the child itself is `runtime/exec.rs`'s). Each stream is a source of its own,
//! read to its end through a [`Pipe`] that also copies every byte, unchanged and in order,
//! to Weir's own stdout or stderr (`tee`), so the container's log still shows the job.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use weir_core::frame::Format;
use weir_core::line::LineOptions;
use weir_core::multiline::MultilineConfig;
use weir_core::units::{ByteSize, Dur};

use super::{Framing, Input, Reading, SourceFields, check_max_line, default_max_line_bytes, framing, line_options};
use crate::config::error::{ConfigError, Pos};

/// `type: exec` (implied by `weir run --exec` when the pipeline has none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// `raw` (default), `cri` or `docker`: the format of the lines the command writes.
    #[serde(default)]
    pub format: Format,
    /// Merge lines into records, per stream (see `weir_core::multiline`).
    #[serde(default)]
    pub multiline: Option<Spanned<MultilineConfig>>,
    /// Drop empty lines.
    #[serde(default)]
    pub skip_empty_lines: bool,
    /// Lines longer than this are cut into flagged pieces (default 1 MiB).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: ByteSize,
    /// Copy what the command writes to Weir's own stdout and stderr (default true).
    #[serde(default = "yes")]
    pub tee: bool,
    /// Fields every event gets (`${NAME}` expands from the environment).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// After the command exits, how long to wait for its streams to end when another
    /// process (a child it left running in the background) still holds them open (default
    /// 2s); then they are let go, with a warning.
    #[serde(default)]
    pub linger: Option<Spanned<Dur>>,
    /// Exit 1 instead of the command's code when events were not delivered before
    /// `shutdown_timeout` (default false: the command's code, the count printed).
    #[serde(default)]
    pub fail_on_undelivered: bool,
}

fn yes() -> bool {
    true
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            format: Format::Raw,
            multiline: None,
            skip_empty_lines: false,
            max_line_bytes: default_max_line_bytes(),
            tee: true,
            fields: BTreeMap::new(),
            linger: None,
            fail_on_undelivered: false,
        }
    }
}

impl ExecConfig {
    /// `linger`, default 2s.
    pub fn linger(&self) -> Duration {
        self.linger.as_ref().map_or(Duration::from_secs(2), |d| d.value.0)
    }
}

/// How the runtime reads the command's streams.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    pub opts: LineOptions,
    pub framing: Option<Framing>,
    pub tee: bool,
    /// `fields`, then `stream` (set per stream).
    pub fields: Vec<(&'static str, String)>,
}

impl ExecSettings {
    /// The fields of the events of one stream (`stdout` or `stderr`).
    pub fn source_fields(&self, stream: &'static str) -> SourceFields {
        let mut all = self.fields.clone();
        all.push(("stream", stream.to_string()));
        all.into()
    }
}

impl Input for ExecConfig {
    fn validate(&self, at: Pos, file: &Path) -> Result<(), ConfigError> {
        check_max_line(self.max_line_bytes, at, file)?;
        if let Some(name) = self.fields.keys().find(|k| k.as_str() == "stream" || k.is_empty()) {
            return Err(ConfigError::at(
                file,
                at,
                format!("exec: `fields` cannot set `{name}` (each event's `stream` is stdout or stderr)"),
            ));
        }
        framing(self.format, &self.multiline, file).map(|_| ())
    }

    fn reading(&self, file: &Path) -> Result<Reading, ConfigError> {
        // Field names live as long as the run: a few short strings, once.
        let fields = self
            .fields
            .iter()
            .map(|(k, v)| (&*Box::leak(k.clone().into_boxed_str()), v.clone()))
            .collect();
        Ok(Reading::Exec(ExecSettings {
            opts: line_options(self.max_line_bytes, self.skip_empty_lines),
            framing: framing(self.format, &self.multiline, file)?,
            tee: self.tee,
            fields,
        }))
    }
}

/// Which of Weir's own streams a pipe is copied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tee {
    Stdout,
    Stderr,
}

/// The read end of one of the command's streams. Reads wait at most 100 ms at a time, so
/// a pipe that another process keeps open can be let go (`let_go`: reads then return end
/// of file); `eof` is set when the stream really ended.
#[derive(Debug)]
pub struct Pipe {
    file: File,
    tee: Option<Tee>,
    pub let_go: Arc<AtomicBool>,
    pub eof: Arc<AtomicBool>,
    tee_failed: bool,
}

impl Pipe {
    pub fn new(fd: OwnedFd, tee: Option<Tee>) -> Pipe {
        // A larger pipe (1 MiB, Linux's default most) lets a fast writer get ahead by more
        // than 64 KiB, and reads return more at a time: fewer, fuller chunks. Best effort.
        // SAFETY: fcntl(2) on a descriptor we own, with an integer argument.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
        Pipe {
            file: File::from(fd),
            tee,
            let_go: Arc::default(),
            eof: Arc::default(),
            tee_failed: false,
        }
    }

    /// Copies `bytes` to Weir's own stream, unbuffered (a partial line goes out as the
    /// command wrote it). A failure (stdout closed) is logged once; reading goes on.
    fn tee(&mut self, bytes: &[u8]) {
        let Some(tee) = self.tee else { return };
        if self.tee_failed {
            return;
        }
        let result = match tee {
            Tee::Stdout => std::io::stdout()
                .lock()
                .write_all(bytes)
                .and_then(|()| std::io::stdout().flush()),
            Tee::Stderr => std::io::stderr().lock().write_all(bytes),
        };
        if let Err(e) = result {
            self.tee_failed = true;
            tracing::warn!(stream = ?tee, "exec: cannot copy the command's output to Weir's own: {e}; collection goes on");
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.let_go.load(Ordering::Relaxed) {
                return Ok(0);
            }
            let mut pfd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if ready == 0 {
                continue;
            }
            let n = match self.file.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if n == 0 {
                self.eof.store(true, Ordering::Relaxed);
            } else {
                self.tee(&buf[..n]);
            }
            return Ok(n);
        }
    }
}

/// Whether every process that could write to the pipe behind `fd` has closed it (the
/// reader will meet its end once it has read what is left).
pub fn writers_gone(fd: &OwnedFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; no wait.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    ready > 0 && pfd.revents & libc::POLLHUP != 0
}

/// The command's two streams, as the runtime's exec input reads them.
#[derive(Debug)]
pub struct ExecPipes {
    pub stdout: Pipe,
    pub stderr: Pipe,
    /// The command line, and the child's pid (in the input's metrics).
    pub command: String,
    pub pid: u32,
}

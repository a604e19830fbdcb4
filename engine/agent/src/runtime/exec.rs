//! `weir run --exec -- CMD [ARGS...]`: Weir as the job container's entrypoint. It checks the
//! pipeline, starts CMD as its child (no shell) with its stdout and stderr on pipes that the
//! `exec` input reads (`inputs/exec.rs`), forwards the signals a container gets to it,
//! reaps orphans as an init process does, and once CMD has exited and its streams ended,
//! stops the run as a sidecar's SIGTERM would (files read to their end, everything
//! delivered, within `shutdown_timeout`). It exits with CMD's code.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Control, Reloads, Summary, run_with};
use crate::config::{Loaded, validate};
use crate::inputs::exec::{ExecPipes, Pipe, Tee, writers_gone};

/// The signals a container's main process gets that belong to the job: passed on to it.
const FORWARDED: [i32; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// What the command and the run came to.
#[derive(Debug)]
pub struct ExecEnd {
    /// The exit code to leave with: the command's (128+N when signal N killed it), 127 when
    /// it was not found, 126 when it could not be run, 1 for a pipeline that does not load.
    pub code: i32,
    /// The run's summary, when it ran.
    pub summary: Option<Summary>,
}

/// Runs `command` under the pipeline of `loaded` (see the module docs). Errors are printed
/// here; the caller exits with `code`.
pub fn run_exec(mut loaded: Loaded, workers: Option<usize>, command: &[OsString]) -> ExecEnd {
    let fail = |code, msg: String| {
        eprintln!("error: {msg}");
        ExecEnd { code, summary: None }
    };
    let exec = loaded.exec_input();
    let (tee, linger, fail_on_undelivered) = (exec.tee, exec.linger(), exec.fail_on_undelivered);
    // The job never starts blind: a pipeline that does not load stops here.
    if let Err(e) = validate(&loaded) {
        return fail(1, format!("{e} (the command was not started)"));
    }
    let Some(program) = command.first() else {
        return fail(
            2,
            "--exec needs a command: weir run -c PIPELINE --exec -- CMD [ARGS...]".into(),
        );
    };
    let name = program.to_string_lossy().into_owned();
    // Orphans of the job (its background children) become ours, and are reaped below.
    // SAFETY: prctl(2) with an integer argument.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // Registered before the child exists: a signal from now on is the job's.
    let mut signals = match signal_hook::iterator::Signals::new(FORWARDED) {
        Ok(s) => s,
        Err(e) => return fail(1, format!("cannot handle signals: {e}")),
    };
    let mut child = match Command::new(program)
        .args(&command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(127, format!("{name}: command not found"));
        }
        Err(e) => return fail(126, format!("{name}: cannot run it: {e}")),
    };
    let pid = child.id() as i32;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return fail(1, "the command's output pipes are missing".into());
    };
    let (out, err) = (OwnedFd::from(out), OwnedFd::from(err));
    // Copies of the read ends, to ask whether anyone still writes to them.
    let watch: Vec<OwnedFd> = [&out, &err].iter().filter_map(|fd| fd.try_clone().ok()).collect();
    let pipes = ExecPipes {
        stdout: Pipe::new(out, tee.then_some(Tee::Stdout)),
        stderr: Pipe::new(err, tee.then_some(Tee::Stderr)),
        command: command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        pid: pid as u32,
    };
    let ends = [
        (pipes.stdout.eof.clone(), pipes.stdout.let_go.clone()),
        (pipes.stderr.eof.clone(), pipes.stderr.let_go.clone()),
    ];
    drop(child);

    std::thread::Builder::new()
        .name("weir-exec-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                // SAFETY: kill(2) on the pid of our child.
                unsafe { libc::kill(pid, sig) };
            }
        })
        .ok();
    let (exit_tx, exit_rx) = crossbeam_channel::bounded::<i32>(1);
    std::thread::Builder::new()
        .name("weir-exec-reaper".into())
        .spawn(move || reap(pid, &exit_tx))
        .ok();
    let control = Control::default();
    let stop = control.stop.clone();
    let (code_tx, code_rx) = crossbeam_channel::bounded::<i32>(1);
    std::thread::Builder::new()
        .name("weir-exec-end".into())
        .spawn(move || {
            let code = exit_rx.recv().unwrap_or(1);
            let _ = code_tx.send(code);
            wait_for_streams(&ends, &watch, linger);
            // As a sidecar's SIGTERM: read the other inputs to their end, deliver, exit.
            stop.store(true, Ordering::Relaxed);
        })
        .ok();

    let result = run_with(loaded, workers, control, Arc::new(Reloads::default()), Some(pipes));
    let mut code = code_rx.try_recv().ok();
    if result.is_err() && code.is_none() {
        // The run could not go on: nothing reads the command's output any more. It is
        // asked to stop, then made to.
        // SAFETY: kill(2) on the pid of our child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        code = code_rx.recv_timeout(Duration::from_secs(10)).ok();
        if code.is_none() {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let code = code
        .or_else(|| code_rx.recv_timeout(Duration::from_secs(10)).ok())
        .unwrap_or(1);
    match result {
        Ok(summary) => {
            let undelivered: u64 = summary.outputs_undelivered.iter().sum();
            let code = if undelivered > 0 && fail_on_undelivered {
                1
            } else {
                code
            };
            if undelivered > 0 {
                eprintln!(
                    "weir: {undelivered} event(s) not delivered before shutdown_timeout; exiting with {code}{}",
                    if fail_on_undelivered {
                        " (fail_on_undelivered)"
                    } else {
                        " (the command's code)"
                    }
                );
            }
            ExecEnd {
                code,
                summary: Some(summary),
            }
        }
        Err(e) => {
            eprintln!("error: {e:#} (the command was stopped; it exited with {code})");
            ExecEnd { code: 1, summary: None }
        }
    }
}

/// Reaps every child that ends (the command, and orphans handed to us as subreaper); sends
/// the command's exit code (128+N for signal N) once.
fn reap(pid: i32, exit: &crossbeam_channel::Sender<i32>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) with a valid pointer to an int.
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got < 0 {
            // No child left for now (the command is gone, no orphan yet): look again later.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if got == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                continue;
            };
            let _ = exit.try_send(code);
        }
    }
}

/// After the command exits: waits until both streams ended. A stream whose writers are all
/// gone is read to its end, however long that takes (a slow output holds the reader); one
/// that another process still holds open (a background child of the job) is waited for at
/// most `linger`, then let go with a warning.
fn wait_for_streams(ends: &[(Arc<AtomicBool>, Arc<AtomicBool>)], watch: &[OwnedFd], linger: Duration) {
    let deadline = Instant::now() + linger;
    loop {
        let mut open = 0;
        for (i, (eof, let_go)) in ends.iter().enumerate() {
            if eof.load(Ordering::Relaxed) || let_go.load(Ordering::Relaxed) {
                continue;
            }
            open += 1;
            let held = watch.get(i).is_none_or(|fd| !writers_gone(fd));
            if held && Instant::now() >= deadline {
                tracing::warn!(
                    stream = if i == 0 { "stdout" } else { "stderr" },
                    ?linger,
                    "exec: the command exited but another process still holds this stream open \
                     (a background child?); letting it go"
                );
                let_go.store(true, Ordering::Relaxed);
            }
        }
        if open == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

//! From acknowledgements to checkpoints.
//!
//! Every batch read from a tailed file carries an [`AckPoint`]: the file's source id, its
//! generation and the offset a checkpoint may move to once the batch is delivered. When
//! every output has flushed the batch, the runtime calls [`Acks::ack`], which commits that
//! offset in the [`Checkpoints`] store. Outputs deliver each source's batches in order, so
//! the commits of one source arrive in order too (and the store ignores a backward one).
//!
//! A generation changes when a file is truncated and read again from the start: acks of
//! batches read before the truncation then carry an old generation and are ignored, so they
//! can never commit an offset of the old contents for the new ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoints, FileIdentity, Lookup};

/// Where a batch leaves its file once delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPoint {
    /// The source (one incarnation of one file).
    pub source: u32,
    /// The source's generation when the batch was read.
    pub generation: u32,
    /// The offset every byte before which is in this batch or an earlier one.
    pub offset: u64,
}

#[derive(Debug)]
struct Tracked {
    identity: FileIdentity,
    path: PathBuf,
    generation: u32,
    /// Committed offset (mirrors the store, for metrics).
    committed: u64,
    /// The file's size when last looked at.
    size: u64,
    /// Let go at this offset: forget the checkpoint once it is committed.
    released_at: Option<u64>,
}

#[derive(Debug)]
struct State {
    store: Checkpoints,
    sources: HashMap<u32, Tracked>,
    last_save: Option<Instant>,
    save_errors: u64,
}

/// The checkpoint store shared by the tailers (which register files) and the outputs (which
/// acknowledge batches). Saving is [`Acks::save_if_due`]'s job, called by the tailers'
/// loop, and [`Acks::save`] at shutdown.
#[derive(Debug)]
pub struct Acks {
    state: Mutex<State>,
}

/// A file's committed offset and size, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLag {
    /// Where the file was last seen.
    pub path: PathBuf,
    /// Bytes delivered.
    pub committed: u64,
    /// The file's size when last looked at.
    pub size: u64,
}

impl Acks {
    /// Wraps a loaded store.
    pub fn new(store: Checkpoints) -> Acks {
        Acks {
            state: Mutex::new(State {
                store,
                sources: HashMap::new(),
                last_save: None,
                save_errors: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The committed offset stored for `identity`: `Ok(Some)` for this very file,
    /// `Ok(None)` when unknown, `Err(offset)` when the store holds another file at the same
    /// device and inode (inode reuse, or truncation while the agent was away).
    pub fn lookup(&self, identity: &FileIdentity) -> Result<Option<u64>, u64> {
        match self.lock().store.lookup(identity) {
            Lookup::Same(e) => Ok(Some(e.offset)),
            Lookup::Replaced(e) => Err(e.offset),
            Lookup::Unknown => Ok(None),
        }
    }

    /// The file `source` reads now: its identity and path (for the crash-loop guard).
    pub fn file(&self, source: u32) -> Option<crate::guard::WatchedFile> {
        self.lock().sources.get(&source).map(|t| crate::guard::WatchedFile {
            identity: t.identity.clone(),
            path: t.path.clone(),
        })
    }

    /// Every stored checkpoint: identity, path last seen at, committed offset.
    pub fn stored(&self) -> Vec<(FileIdentity, PathBuf, u64)> {
        self.lock()
            .store
            .entries()
            .into_iter()
            .map(|e| (e.identity.clone(), e.path.clone(), e.offset))
            .collect()
    }

    /// Starts tracking `source`, the file `identity` at `path`, read from `offset`: that
    /// offset is committed at once (nothing before it will be read).
    pub fn register(&self, source: u32, identity: FileIdentity, path: &Path, offset: u64) {
        let mut st = self.lock();
        st.store.commit(&identity, path, offset);
        st.sources.insert(
            source,
            Tracked {
                identity,
                path: path.to_path_buf(),
                generation: 0,
                committed: offset,
                size: offset,
                released_at: None,
            },
        );
    }

    /// The file was truncated (or copytruncated) and is read again from 0 with a new
    /// identity: acks of batches read before now are ignored. Returns the new generation.
    pub fn restart(&self, source: u32, identity: FileIdentity) -> u32 {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&source) else { return 0 };
        t.generation += 1;
        t.identity = identity;
        t.committed = 0;
        store.commit(&t.identity, &t.path, 0);
        t.generation
    }

    /// A longer signature of a growing file, or a new path after a rename.
    pub fn update(&self, source: u32, identity: Option<FileIdentity>, path: Option<&Path>, size: u64) {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&source) else { return };
        t.size = size;
        let mut changed = false;
        if let Some(identity) = identity {
            t.identity = identity;
            changed = true;
        }
        if let Some(path) = path
            && path != t.path
        {
            t.path = path.to_path_buf();
            changed = true;
        }
        if changed {
            store.commit(&t.identity, &t.path, t.committed);
        }
    }

    /// Every output delivered the batch ending at `point`.
    pub fn ack(&self, point: AckPoint) {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&point.source) else {
            return;
        };
        if t.generation != point.generation || point.offset < t.committed {
            return;
        }
        t.committed = point.offset;
        store.commit(&t.identity, &t.path, point.offset);
        if t.released_at.is_some_and(|end| point.offset >= end) {
            store.forget(&t.identity);
            sources.remove(&point.source);
        }
    }

    /// The tailer let the file go after reading it to `end`: its checkpoint is forgotten once
    /// everything up to `end` is delivered (at once if it already is).
    pub fn release(&self, source: u32, end: u64) {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&source) else { return };
        if t.committed >= end {
            store.forget(&t.identity);
            sources.remove(&source);
        } else {
            t.released_at = Some(end);
        }
    }

    /// Saves the store if it changed and `interval` passed since the last save.
    pub fn save_if_due(&self, interval: Duration) {
        let due = self.lock().last_save.is_none_or(|t| t.elapsed() >= interval);
        if due {
            self.save();
        }
    }

    /// Saves the store if it changed; a failure is logged and counted (the next save tries
    /// again; the offsets stay in memory).
    pub fn save(&self) {
        let mut st = self.lock();
        if !st.store.is_dirty() {
            st.last_save = Some(Instant::now());
            return;
        }
        match st.store.save() {
            Ok(()) => st.last_save = Some(Instant::now()),
            Err(e) => {
                st.save_errors += 1;
                tracing::error!(file = %st.store.file_path().display(), "cannot save checkpoints: {e}");
            }
        }
    }

    /// Seconds since the last successful save, if there was one.
    pub fn checkpoint_age(&self) -> Option<f64> {
        self.lock().last_save.map(|t| t.elapsed().as_secs_f64())
    }

    /// Failed saves so far.
    pub fn save_errors(&self) -> u64 {
        self.lock().save_errors
    }

    /// Per tracked file: where it is, what is committed, its size.
    pub fn lag(&self) -> Vec<FileLag> {
        let st = self.lock();
        let mut all: Vec<FileLag> = st
            .sources
            .values()
            .map(|t| FileLag {
                path: t.path.clone(),
                committed: t.committed,
                size: t.size,
            })
            .collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }
}

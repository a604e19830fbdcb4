//! From acknowledgements to checkpoints.
//!
//! Every batch read from a tailed file carries an [`AckPoint`]: the file's source id, its
//! generation and the offset a checkpoint may move to once the batch is delivered. When
//! every output has flushed the batch, the runtime calls [`Acks::ack`], which commits that
//! offset in the [`Checkpoints`] store. Outputs deliver each source's batches in order, so
//! the commits of one source arrive in order too (and the store ignores a backward one).
//!
//! A generation changes when a file is truncated and read again from the start. Acks of
//! batches read before the truncation carry the old generation, so they can never commit an
//! offset of the old contents for the new ones. They still commit for the old contents: until
//! the old generation is delivered up to where it was read (the copy of a copytruncate
//! included), the store keeps the old identity and its offset, not the new contents' offset
//! 0. A crash in that window then leaves a checkpoint that says which bytes of the old
//! contents are still undelivered, and the next start reads them from the copy (see
//! `inputs/tail.rs`). Only when the old generation is delivered does the store move to the new one.
//! Outputs deliver a source's batches in order, so an ack of a newer generation also means
//! every older one is delivered as far as it ever will be.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::checkpoint::{Checkpoints, FileIdentity, Lookup, Whereabouts, whereabouts};

/// Default `checkpoint_prune_after`: how long a file no input follows must be known gone
/// before its checkpoint is dropped.
pub const DEFAULT_PRUNE_AFTER: Duration = Duration::from_secs(3600);

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

/// One generation of a source: the contents between two truncations.
#[derive(Debug)]
struct Generation {
    number: u32,
    identity: FileIdentity,
    /// Delivered up to here.
    committed: u64,
    /// For a generation that ended (the file was truncated): where reading it stopped. Its
    /// checkpoint gives way to the next generation's once it is delivered up to here.
    end: Option<u64>,
}

#[derive(Debug)]
struct Tracked {
    path: PathBuf,
    /// Oldest first; the last is the one being read. The store holds the first one's
    /// identity and offset: the oldest with bytes not yet delivered.
    generations: VecDeque<Generation>,
    /// The file's size when last looked at.
    size: u64,
    /// Let go at this offset: forget the checkpoint once it is committed.
    released_at: Option<u64>,
}

impl Tracked {
    fn current(&self) -> &Generation {
        self.generations.back().expect("a source has a generation")
    }

    fn current_mut(&mut self) -> &mut Generation {
        self.generations.back_mut().expect("a source has a generation")
    }

    fn oldest(&self) -> &Generation {
        self.generations.front().expect("a source has a generation")
    }

    /// Drops the ended generations that are delivered (or that a newer generation's ack
    /// shows are delivered as far as they will be), moving the store to the next one.
    fn settle(&mut self, store: &mut Checkpoints, newest_acked: Option<u32>) {
        while self.generations.len() > 1 {
            let oldest = self.oldest();
            let delivered = oldest.end.is_some_and(|end| oldest.committed >= end)
                || newest_acked.is_some_and(|n| n > oldest.number);
            if !delivered {
                break;
            }
            self.generations.pop_front();
            let next = self.oldest();
            // Not `commit`: the new contents' offset is below the old one's, and an identity
            // that signed no bytes (a file truncated before it could be signed again) would
            // take them for the same file and ignore the move as a step backwards.
            store.reset(&next.identity, &self.path, next.committed);
        }
    }
}

#[derive(Debug)]
struct State {
    store: Checkpoints,
    sources: HashMap<u32, Tracked>,
    last_save: Option<Instant>,
    save_errors: u64,
    prune: Prune,
}

/// The pruning of checkpoints that outlived their files.
///
/// The rule, and why it is safe: an entry is dropped only when (1) no source follows its
/// file, (2) [`whereabouts`] finds the file known gone, not renamed within its directory
/// and not merely out of sight (an unreadable directory, or one on another device, tells
/// nothing), and (3) that held at every check for `after`, counted in this process. A file
/// that still exists in its directory (rotated, excluded by a glob, waiting for a
/// descriptor) therefore keeps its checkpoint however old it is. A file that comes back
/// after its entry was dropped can only be one moved out of its directory for longer than
/// `after`; it is then read as a new file (from its head: a repeat, never a loss). A new
/// file that reuses a gone file's inode and first bytes is better off without the stale
/// entry, which would resume it at the old file's offset.
#[derive(Debug)]
struct Prune {
    after: Duration,
    /// Tailers that have not finished their first scan: they find files rotated or
    /// copytruncated while the agent was down by the entries of their old identity, so
    /// nothing is pruned before they are done.
    starting: usize,
    last_check: Option<Instant>,
    /// Entries no source follows, known gone at every check since then.
    gone_since: HashMap<(u64, u64), Instant>,
    pruned: u64,
}

impl State {
    /// The device and inode of every file a source follows.
    fn followed(&self) -> std::collections::HashSet<(u64, u64)> {
        self.sources
            .values()
            .map(|t| (t.current().identity.dev(), t.current().identity.ino()))
            .collect()
    }
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
                prune: Prune {
                    after: DEFAULT_PRUNE_AFTER,
                    starting: 0,
                    last_check: None,
                    gone_since: HashMap::new(),
                    pruned: 0,
                },
            }),
        }
    }

    /// Sets `checkpoint_prune_after` (default [`DEFAULT_PRUNE_AFTER`]).
    pub fn with_prune_after(self, after: Duration) -> Acks {
        self.lock().prune.after = after;
        self
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

    /// The file a batch of `point`'s source and generation was read from: its identity and
    /// path (for the crash-loop guard).
    pub fn file(&self, point: AckPoint) -> Option<super::guard::WatchedFile> {
        let st = self.lock();
        let t = st.sources.get(&point.source)?;
        let g = t.generations.iter().find(|g| g.number == point.generation)?;
        Some(super::guard::WatchedFile {
            identity: g.identity.clone(),
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
                path: path.to_path_buf(),
                generations: VecDeque::from([Generation {
                    number: 0,
                    identity,
                    committed: offset,
                    end: None,
                }]),
                size: offset,
                released_at: None,
            },
        );
    }

    /// The file was truncated (or copytruncated) after its old contents were read up to
    /// `end`, and is read again from 0 with a new identity. Returns the new generation: acks
    /// of batches read before now carry an older one. The old contents keep their
    /// checkpoint until they are delivered up to `end` (see the module docs).
    pub fn restart(&self, source: u32, identity: FileIdentity, end: u64) -> u32 {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&source) else { return 0 };
        let old = t.current_mut();
        old.end = Some(end);
        let number = old.number + 1;
        t.generations.push_back(Generation {
            number,
            identity,
            committed: 0,
            end: None,
        });
        t.settle(store, None);
        number
    }

    /// A longer signature of a growing file, or a new path after a rename.
    pub fn update(&self, source: u32, identity: Option<FileIdentity>, path: Option<&Path>, size: u64) {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&source) else { return };
        t.size = size;
        let mut changed = false;
        if let Some(identity) = identity {
            t.current_mut().identity = identity;
            changed = true;
        }
        if let Some(path) = path
            && path != t.path
        {
            t.path = path.to_path_buf();
            changed = true;
        }
        if changed {
            // The store holds the oldest generation's checkpoint; a new identity of the
            // current one waits until that is delivered.
            let oldest = t.oldest();
            store.commit(&oldest.identity, &t.path, oldest.committed);
        }
    }

    /// Every output delivered the batch ending at `point`.
    pub fn ack(&self, point: AckPoint) {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&point.source) else {
            return;
        };
        let Some(i) = t.generations.iter().position(|g| g.number == point.generation) else {
            return; // a generation already settled
        };
        let generation = &mut t.generations[i];
        if point.offset < generation.committed {
            return;
        }
        generation.committed = point.offset;
        if i == 0 {
            store.commit(&generation.identity, &t.path, point.offset);
        }
        t.settle(store, Some(point.generation));
        // Let go, and the last generation delivered to where reading stopped: done.
        if t.generations.len() == 1 && t.released_at.is_some_and(|end| t.current().committed >= end) {
            store.forget(&t.current().identity);
            sources.remove(&point.source);
        }
    }

    /// The tailer let the file go after reading it to `end`: its checkpoint is forgotten once
    /// everything up to `end` is delivered (at once if it already is).
    pub fn release(&self, source: u32, end: u64) {
        let mut st = self.lock();
        let State { store, sources, .. } = &mut *st;
        let Some(t) = sources.get_mut(&source) else { return };
        if t.generations.len() == 1 && t.current().committed >= end {
            store.forget(&t.current().identity);
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

    /// A tailer is about to make its first scan: no pruning until it is done (see
    /// [`tailer_started`](Self::tailer_started)).
    pub fn tailer_starting(&self) {
        self.lock().prune.starting += 1;
    }

    /// A tailer finished its first scan (and its recovery of files that moved while the
    /// agent was down).
    pub fn tailer_started(&self) {
        let mut st = self.lock();
        st.prune.starting = st.prune.starting.saturating_sub(1);
    }

    /// Drops the checkpoints of files that no source follows and that have been known gone
    /// for `checkpoint_prune_after` (the rule is on [`Prune`]); returns how many. Checks at
    /// most every quarter of that age (between 100 ms and a minute), and never while a
    /// tailer is still starting. The files are looked for without holding the lock.
    pub fn prune_if_due(&self) -> usize {
        let (orphans, after) = {
            let mut st = self.lock();
            let every = (st.prune.after / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
            if st.prune.starting > 0 || st.prune.last_check.is_some_and(|t| t.elapsed() < every) {
                return 0;
            }
            st.prune.last_check = Some(Instant::now());
            let followed = st.followed();
            let orphans: Vec<(FileIdentity, PathBuf)> = st
                .store
                .entries()
                .into_iter()
                .filter(|e| !followed.contains(&(e.identity.dev(), e.identity.ino())))
                .map(|e| (e.identity.clone(), e.path.clone()))
                .collect();
            (orphans, st.prune.after)
        };
        let found = whereabouts(&orphans.iter().map(|(id, p)| (id, p.as_path())).collect::<Vec<_>>());
        let now = Instant::now();
        let mut st = self.lock();
        let followed = st.followed();
        let State { store, prune, .. } = &mut *st;
        let mut gone_since = HashMap::new();
        let mut pruned = 0;
        for ((identity, path), found) in orphans.iter().zip(found) {
            let key = (identity.dev(), identity.ino());
            if found != Whereabouts::Gone || followed.contains(&key) {
                continue; // seen again, or cannot tell: the count starts over
            }
            let since = prune.gone_since.get(&key).copied().unwrap_or(now);
            if now.saturating_duration_since(since) < after {
                gone_since.insert(key, since);
            } else if store.forget(identity).is_some() {
                tracing::debug!(file = %path.display(), "checkpoint dropped: the file has been gone for checkpoint_prune_after");
                pruned += 1;
            }
        }
        prune.gone_since = gone_since;
        prune.pruned += pruned as u64;
        if pruned > 0 {
            tracing::info!(
                pruned,
                left = store.len(),
                ?after,
                "checkpoints of files gone for checkpoint_prune_after dropped"
            );
        }
        pruned
    }

    /// Checkpoints dropped by [`prune_if_due`](Self::prune_if_due) so far.
    pub fn checkpoints_pruned(&self) -> u64 {
        self.lock().prune.pruned
    }

    /// Entries in the checkpoint store now.
    pub fn checkpoint_entries(&self) -> usize {
        self.lock().store.len()
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
                committed: t.current().committed,
                size: t.size,
            })
            .collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    use super::*;

    fn identity(path: &Path) -> FileIdentity {
        FileIdentity::of_path(path).unwrap()
    }

    /// A file's old contents and, after it is emptied and written again in place (the
    /// truncation of a copytruncate), its new ones: one device and inode, two identities.
    fn old_and_new(dir: &Path) -> (PathBuf, FileIdentity, FileIdentity) {
        let path = dir.join("app.log");
        fs::write(&path, "old line 1\nold line 2\n").unwrap();
        let old = identity(&path);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(0).unwrap();
        (&file).write_all(b"new\n").unwrap();
        let new = identity(&path);
        assert_ne!(old, new);
        (path, old, new)
    }

    fn point(generation: u32, offset: u64) -> AckPoint {
        AckPoint {
            source: 7,
            generation,
            offset,
        }
    }

    fn stored(acks: &Acks) -> Vec<(FileIdentity, u64)> {
        acks.stored().into_iter().map(|(id, _, offset)| (id, offset)).collect()
    }

    #[test]
    fn a_truncated_file_keeps_its_old_checkpoint_until_the_old_contents_are_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (path, old, new) = old_and_new(dir.path());
        let acks = Acks::new(Checkpoints::new(dir.path()));
        acks.register(7, old.clone(), &path, 0);
        acks.ack(point(0, 11));
        // Truncated after 30 bytes were read (the rest of them from the copy).
        let generation = acks.restart(7, new.clone(), 30);
        assert_eq!(generation, 1);
        assert_eq!(
            stored(&acks),
            [(old.clone(), 11)],
            "killed now, a restart must know 11..30 is owed"
        );
        acks.ack(point(0, 22));
        assert_eq!(stored(&acks), [(old.clone(), 22)]);
        acks.ack(point(0, 30));
        assert_eq!(
            stored(&acks),
            [(new.clone(), 0)],
            "delivered: the new contents' checkpoint"
        );
        acks.ack(point(1, 4));
        assert_eq!(stored(&acks), [(new, 4)]);
        // A late ack of the old contents changes nothing now.
        acks.ack(point(0, 31));
        assert_eq!(stored(&acks)[0].1, 4);
    }

    #[test]
    fn a_truncation_with_nothing_undelivered_moves_to_the_new_contents_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (path, old, new) = old_and_new(dir.path());
        let acks = Acks::new(Checkpoints::new(dir.path()));
        acks.register(7, old, &path, 0);
        acks.ack(point(0, 22));
        acks.restart(7, new.clone(), 22);
        assert_eq!(stored(&acks), [(new, 0)]);
    }

    #[test]
    fn an_ack_of_the_new_contents_settles_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (path, old, new) = old_and_new(dir.path());
        let acks = Acks::new(Checkpoints::new(dir.path()));
        acks.register(7, old, &path, 0);
        acks.restart(7, new.clone(), 22);
        // Outputs deliver in order: the new generation's first ack means the old one is
        // delivered as far as it ever will be.
        acks.ack(point(1, 4));
        assert_eq!(stored(&acks), [(new, 4)]);
    }

    #[test]
    fn a_released_file_is_forgotten_only_when_every_generation_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (path, old, new) = old_and_new(dir.path());
        let acks = Acks::new(Checkpoints::new(dir.path()));
        acks.register(7, old.clone(), &path, 0);
        acks.restart(7, new.clone(), 22);
        acks.release(7, 4);
        assert_eq!(stored(&acks), [(old, 0)]);
        acks.ack(point(0, 22));
        assert_eq!(stored(&acks), [(new, 0)]);
        acks.ack(point(1, 4));
        assert!(stored(&acks).is_empty(), "let go and delivered: forgotten");
    }

    /// Found by tests/follow_model.rs: a file read from empty and truncated before it could
    /// be signed again keeps an identity of no bytes, which matches any contents; the new
    /// contents' offset 0 was then ignored as a step backwards, and a restart re-read them.
    #[test]
    fn new_contents_replace_an_identity_that_signed_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        fs::write(&path, "").unwrap();
        let empty = identity(&path);
        assert_eq!(empty.signed_len(), 0);
        let acks = Acks::new(Checkpoints::new(dir.path()));
        acks.register(7, empty.clone(), &path, 0);
        acks.ack(point(0, 500));
        fs::write(&path, "new contents\n").unwrap();
        let new = identity(&path);
        acks.restart(7, new.clone(), 600);
        acks.ack(point(0, 600));
        assert_eq!(stored(&acks), [(new.clone(), 0)]);
        acks.ack(point(1, 13));
        assert_eq!(stored(&acks), [(new, 13)]);
    }

    fn prune_now(acks: &Acks) -> usize {
        // Checks are spaced out; the test asks again past the spacing.
        acks.lock().prune.last_check = None;
        acks.prune_if_due()
    }

    #[test]
    fn only_checkpoints_of_files_known_gone_for_the_age_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str| {
            let p = dir.path().join(name);
            fs::write(&p, format!("{name} first line\n")).unwrap();
            p
        };
        let (gone, renamed, followed, kept) = (
            write("gone.log"),
            write("renamed.log"),
            write("followed.log"),
            write("kept.log"),
        );
        let mut store = Checkpoints::new(dir.path());
        for p in [&gone, &renamed, &followed, &kept] {
            store.commit(&identity(p), p, 5);
        }
        let acks = Acks::new(store).with_prune_after(Duration::from_millis(300));
        acks.register(1, identity(&followed), &followed, 5);
        fs::remove_file(&gone).unwrap();
        fs::rename(&renamed, dir.path().join("renamed.log.1")).unwrap();
        fs::remove_file(&followed).unwrap();

        // A tailer still starting holds pruning back.
        acks.tailer_starting();
        assert_eq!(prune_now(&acks), 0);
        acks.tailer_started();
        // Known gone, but not for long enough yet.
        assert_eq!(prune_now(&acks), 0);
        assert_eq!(acks.checkpoint_entries(), 4);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(prune_now(&acks), 1);
        let left: Vec<PathBuf> = acks.stored().into_iter().map(|(_, p, _)| p).collect();
        assert_eq!(
            left,
            [followed, kept, renamed],
            "renamed within its directory, followed, or there: kept"
        );
        assert_eq!(acks.checkpoints_pruned(), 1);
    }

    #[test]
    fn a_file_seen_again_starts_its_age_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        fs::write(&path, "a first line\n").unwrap();
        let mut store = Checkpoints::new(dir.path());
        store.commit(&identity(&path), &path, 5);
        let acks = Acks::new(store).with_prune_after(Duration::from_millis(300));
        let away = dir.path().join("elsewhere");
        fs::create_dir(&away).unwrap();
        fs::rename(&path, away.join("a.log")).unwrap();
        assert_eq!(prune_now(&acks), 0, "gone from its directory: the age starts");
        std::thread::sleep(Duration::from_millis(200));
        fs::rename(away.join("a.log"), &path).unwrap();
        assert_eq!(prune_now(&acks), 0, "back");
        fs::rename(&path, away.join("a.log")).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(prune_now(&acks), 0, "gone again: the age starts over at this check");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            prune_now(&acks),
            0,
            "400 ms after it first went, but 200 ms since it was last seen gone anew"
        );
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(prune_now(&acks), 1);
    }
}

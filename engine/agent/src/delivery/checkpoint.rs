//! File identity and the checkpoint store: which file is which across rotation, inode reuse,
//! truncation and restarts, and how far each has been *committed*.
//!
//! # Read offset and committed offset
//!
//! A tailer keeps two offsets per file. The **read offset** is how far the reader has read;
//! it runs ahead, and lives only in memory. The **committed offset** is how far every output
//! has acknowledged the events: everything before it is delivered. This store holds only
//! committed offsets, so a restart resumes at the committed offset and re-reads (at most) the
//! bytes between it and the old read offset: at-least-once, never a loss. The runtime must call
//! [`Checkpoints::commit`] only with offsets that every output has acknowledged.
//!
//! # File identity
//!
//! A path is not a file: rotation renames it, and a new file takes the name. An inode is not a
//! file either: the kernel reuses it after a delete. [`FileIdentity`] is device + inode + a
//! signature of the file's first bytes (up to [`SIGNATURE_LEN`]), and
//! [`FileIdentity::same_file_as`] decides whether a fresh identity is the file an earlier one
//! described. See there for the rule for files shorter than the signature.
//!
//! # On disk
//!
//! One file, [`CHECKPOINT_FILE`] in the data directory, JSON:
//!
//! ```json
//! {
//!   "version": 1,
//!   "files": [
//!     { "dev": 2049, "ino": 1311, "signed_len": 1024, "signature": "af63bd4c8601b7df",
//!       "offset": 52310, "path": "/var/log/app/a.log" }
//!   ]
//! }
//! ```
//!
//! `signature` is the FNV-1a 64 hash of the first `signed_len` bytes, as 16 hex digits (a
//! string, so tools that read JSON numbers as doubles keep it exact). `path` is the path the
//! file was last seen at, for people and for `weir doctor`; it plays no part in matching.
//! (A path that is not UTF-8 is stored lossily: it is only for display.)
//! It is written atomically: a temporary file ([`TEMP_FILE`]) in the same directory, written
//! and fsynced, renamed over the old one, then the directory fsynced. A crash at any point
//! leaves either the old or the new file whole. One process owns a data directory.
//!
//! # Entries of vanished files
//!
//! An entry outlives its file when the file goes while no tailer follows it (deleted while
//! the agent was down, a glob changed). [`whereabouts`] tells whether such a file is still
//! there, renamed within its directory, known to be gone, or cannot be told; the runtime
//! prunes an entry only after its file has been *known* gone for `checkpoint_prune_after`
//! (see [`super::acks`]).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many leading bytes of a file its signature covers at most.
pub const SIGNATURE_LEN: usize = 1024;

/// The on-disk format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The checkpoint file's name inside the data directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.json";

/// The temporary file a save writes before renaming it over [`CHECKPOINT_FILE`]. A stray one
/// (left by a crash before the rename) is ignored by [`Checkpoints::load`] and overwritten by
/// the next save.
pub const TEMP_FILE: &str = "checkpoints.json.tmp";

/// FNV-1a 64 over `bytes`. Written out here (not `std::hash`) because the value is stored on
/// disk and must never change between Rust versions.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Who a file is: device, inode, and a signature of its first bytes.
///
/// The signature covers the first `min(file length, SIGNATURE_LEN)` bytes and records how many
/// that was ([`signed_len`](Self::signed_len)). A file shorter than [`SIGNATURE_LEN`] is signed
/// over what exists; as it grows, a fresh identity covers more bytes and still
/// [extends](Self::same_file_as) the earlier one. The runtime should take a fresh identity (and
/// commit with it) once a file has grown past a short signature, so the stored signature gets
/// stronger; [`is_complete`](Self::is_complete) tells when that is no longer needed.
///
/// Equality compares device, inode, signed length and signature; the prefix bytes a fresh
/// identity keeps in memory (to check extension) are not part of it.
#[derive(Clone)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    signed_len: u32,
    signature: u64,
    /// The signed bytes, kept by [`FileIdentity::of`] so that a longer identity can check that
    /// it extends a shorter one. `None` for identities read back from disk.
    prefix: Option<Box<[u8]>>,
}

impl FileIdentity {
    /// The identity of an open file: its device and inode, and the signature of its first bytes,
    /// read with positioned reads (`read_at`), so the file's cursor does not move.
    pub fn of(file: &File) -> io::Result<FileIdentity> {
        let meta = file.metadata()?;
        let mut buf = vec![0u8; SIGNATURE_LEN];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            signed_len: filled as u32,
            signature: fnv1a64(&buf),
            prefix: Some(buf.into_boxed_slice()),
        })
    }

    /// An identity read back from disk (no prefix bytes: see [`same_file_as`](Self::same_file_as)).
    pub fn from_stored(dev: u64, ino: u64, signed_len: u32, signature: u64) -> FileIdentity {
        FileIdentity {
            dev,
            ino,
            signed_len,
            signature,
            prefix: None,
        }
    }

    /// The identity of the file at `path` (opened read-only for the moment it takes).
    pub fn of_path(path: &Path) -> io::Result<FileIdentity> {
        FileIdentity::of(&File::open(path)?)
    }

    /// The device number.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// How many leading bytes the signature covers (at most [`SIGNATURE_LEN`]).
    pub fn signed_len(&self) -> u64 {
        u64::from(self.signed_len)
    }

    /// The FNV-1a 64 hash of the first [`signed_len`](Self::signed_len) bytes.
    pub fn signature(&self) -> u64 {
        self.signature
    }

    /// Whether the signature covers the full [`SIGNATURE_LEN`] bytes, so re-signing the file
    /// as it grows can no longer strengthen it.
    pub fn is_complete(&self) -> bool {
        self.signed_len as usize >= SIGNATURE_LEN
    }

    /// Whether `self` (usually fresh) is the same file that `earlier` described.
    ///
    /// The rule: same device and inode, and `earlier`'s signed bytes are a prefix of `self`'s:
    /// either both cover the same length with the same signature, or `self` covers more and the
    /// hash of its first `earlier.signed_len()` bytes equals `earlier`'s signature.
    ///
    /// Why: a file that grows must keep its identity (a 10-byte file signed at 10 bytes is the
    /// same file once it holds 5000), so a longer signature that extends a shorter one matches.
    /// A file truncated and rewritten with different bytes (copytruncate, truncation), or a new
    /// file that reuses a deleted file's inode, must not match: its first bytes differ, or it
    /// is now shorter than the earlier signature covered.
    ///
    /// Limits: if `self` is longer but was read back from disk (it has no prefix bytes), the
    /// extension cannot be checked and the answer is `false`. A file truncated and rewritten
    /// with exactly the same first bytes is indistinguishable by signature; the runtime also
    /// treats a file smaller than its read offset as truncated.
    pub fn same_file_as(&self, earlier: &FileIdentity) -> bool {
        if self.dev != earlier.dev || self.ino != earlier.ino {
            return false;
        }
        match self.signed_len.cmp(&earlier.signed_len) {
            std::cmp::Ordering::Equal => self.signature == earlier.signature,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => match &self.prefix {
                Some(prefix) => fnv1a64(&prefix[..earlier.signed_len as usize]) == earlier.signature,
                None => false,
            },
        }
    }
}

impl FileIdentity {
    /// Whether `self` begins with the bytes `earlier` signed, whatever the device and inode:
    /// how a copy of a file (copytruncate's copy) is recognised.
    pub fn starts_like(&self, earlier: &FileIdentity) -> bool {
        match self.signed_len.cmp(&earlier.signed_len) {
            std::cmp::Ordering::Equal => self.signature == earlier.signature,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => self
                .prefix
                .as_ref()
                .is_some_and(|p| fnv1a64(&p[..earlier.signed_len as usize]) == earlier.signature),
        }
    }
}

impl PartialEq for FileIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.dev == other.dev
            && self.ino == other.ino
            && self.signed_len == other.signed_len
            && self.signature == other.signature
    }
}

impl Eq for FileIdentity {}

impl fmt::Debug for FileIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FileIdentity {{ dev: {}, ino: {}, signed_len: {}, signature: {:016x} }}",
            self.dev, self.ino, self.signed_len, self.signature
        )
    }
}

/// Why the checkpoint file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file exists but could not be read.
    #[error("cannot read checkpoint file {}: {source}", path.display())]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("corrupt checkpoint file {}: {source} (move it away to start from scratch)", path.display())]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What the JSON parser found wrong.
        source: serde_json::Error,
    },
    /// The file was written by a different format version.
    #[error(
        "checkpoint file {} has format version {found}; this weir reads version {FORMAT_VERSION}",
        path.display()
    )]
    UnsupportedVersion {
        /// The checkpoint file.
        path: PathBuf,
        /// The version the file declares.
        found: u64,
    },
    /// The JSON parsed but a value in it is invalid.
    #[error("invalid checkpoint file {}: {reason}", path.display())]
    Invalid {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One file's checkpoint: its identity, the path it was last seen at, its committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file's identity (the longest signature committed with).
    pub identity: FileIdentity,
    /// Where the file was last seen, for people and `weir doctor`; not used for matching.
    pub path: PathBuf,
    /// The committed offset: every byte before it has been acknowledged by every output.
    pub offset: u64,
}

/// What [`Checkpoints::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The file had no checkpoint; it now has `offset`.
    Inserted,
    /// The offset moved forward (or stayed) from `previous`.
    Advanced {
        /// The committed offset before this commit.
        previous: u64,
    },
    /// The offset was lower than the committed one and was ignored (offsets never move
    /// backwards); also counted in [`Checkpoints::backward_commits`].
    IgnoredBackward {
        /// The committed offset, which stays.
        committed: u64,
    },
    /// Another file had this device and inode (inode reuse, or the file was truncated and
    /// rewritten); its checkpoint was replaced by this file's.
    Replaced {
        /// The offset the replaced file had.
        previous_offset: u64,
    },
}

/// What [`Checkpoints::lookup`] found for an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// A checkpoint for this very file.
    Same(&'a Entry),
    /// A checkpoint for a different file on the same device and inode: the inode was reused,
    /// or the file was truncated or rewritten. Start the file afresh (and count it).
    Replaced(&'a Entry),
    /// No checkpoint for this device and inode.
    Unknown,
}

/// The checkpoint store: file identity -> committed offset, saved in one file in the data
/// directory. See the [module docs](self) for the format and the offsets it holds.
///
/// Entries are keyed by device + inode (two live files cannot share them) and each holds the
/// longest identity it was committed with, so a lookup checks the signature with
/// [`FileIdentity::same_file_as`] (in either direction, so a caller still holding the shorter
/// identity it took at open finds the entry that a longer one upgraded).
///
/// The store is `Send` but not `Sync` (the save bookkeeping is in `Cell`s): one task owns it,
/// or it sits behind a `Mutex`. It does no I/O except in [`load`](Self::load),
/// [`save`](Self::save) and [`save_if_due`](Self::save_if_due).
#[derive(Debug)]
pub struct Checkpoints {
    dir: PathBuf,
    entries: HashMap<(u64, u64), Entry>,
    backward_commits: u64,
    /// Changed since the last successful save.
    dirty: Cell<bool>,
    last_save: Cell<Option<Instant>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u64,
    files: Vec<OnDiskEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDiskEntry {
    dev: u64,
    ino: u64,
    signed_len: u32,
    signature: String,
    offset: u64,
    path: String,
}

/// Whether `given` and the `stored` identity are one file, in either direction: `given` may be
/// fresher (the file grew) or staler (the caller still holds the identity it took when the file
/// was shorter, while the store was upgraded to a longer one in this process). A stored identity
/// read from disk has no prefix bytes, so a shorter `given` never matches it: that file shrank.
fn matches(given: &FileIdentity, stored: &FileIdentity) -> bool {
    given.same_file_as(stored) || stored.same_file_as(given)
}

/// Only the version, read first so an unknown version is reported as such even if the rest of
/// the shape changed.
#[derive(Deserialize)]
struct VersionOnly {
    version: u64,
}

impl Checkpoints {
    /// An empty store for `dir`, without reading anything.
    pub fn new(dir: impl Into<PathBuf>) -> Checkpoints {
        Checkpoints {
            dir: dir.into(),
            entries: HashMap::new(),
            backward_commits: 0,
            dirty: Cell::new(false),
            last_save: Cell::new(None),
        }
    }

    /// Loads the checkpoints saved in `dir`. A missing file (or directory) is an empty store; a
    /// file that cannot be read, is corrupt, or has an unknown version is an error naming the
    /// file: never silently start from zero. A stray [`TEMP_FILE`] is ignored.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Checkpoints, CheckpointError> {
        let mut store = Checkpoints::new(dir);
        let path = store.file_path();
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(store),
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        let version: VersionOnly = serde_json::from_slice(&text).map_err(|source| CheckpointError::Corrupt {
            path: path.clone(),
            source,
        })?;
        if version.version != u64::from(FORMAT_VERSION) {
            return Err(CheckpointError::UnsupportedVersion {
                path,
                found: version.version,
            });
        }
        let on_disk: OnDisk = serde_json::from_slice(&text).map_err(|source| CheckpointError::Corrupt {
            path: path.clone(),
            source,
        })?;
        for (i, e) in on_disk.files.into_iter().enumerate() {
            let invalid = |reason: String| CheckpointError::Invalid {
                path: path.clone(),
                reason: format!("files[{i}]: {reason}"),
            };
            if e.signed_len as usize > SIGNATURE_LEN {
                return Err(invalid(format!("signed_len {} is over {SIGNATURE_LEN}", e.signed_len)));
            }
            if e.signature.len() != 16 {
                return Err(invalid(format!("signature {:?} is not 16 hex digits", e.signature)));
            }
            let signature = u64::from_str_radix(&e.signature, 16)
                .map_err(|_| invalid(format!("signature {:?} is not 16 hex digits", e.signature)))?;
            let identity = FileIdentity {
                dev: e.dev,
                ino: e.ino,
                signed_len: e.signed_len,
                signature,
                prefix: None,
            };
            let entry = Entry {
                identity,
                path: PathBuf::from(e.path),
                offset: e.offset,
            };
            if store.entries.insert((e.dev, e.ino), entry).is_some() {
                return Err(invalid(format!("a second entry for dev {} ino {}", e.dev, e.ino)));
            }
        }
        Ok(store)
    }

    /// The data directory this store saves into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint file's path: [`CHECKPOINT_FILE`] in [`dir`](Self::dir).
    pub fn file_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// The committed offset of the file `identity` is, if it has one.
    pub fn get(&self, identity: &FileIdentity) -> Option<u64> {
        match self.lookup(identity) {
            Lookup::Same(entry) => Some(entry.offset),
            _ => None,
        }
    }

    /// What the store knows about `identity`: its own checkpoint, a different file's at the same
    /// device and inode (reuse or truncation, which the runtime counts), or nothing.
    pub fn lookup(&self, identity: &FileIdentity) -> Lookup<'_> {
        match self.entries.get(&(identity.dev, identity.ino)) {
            Some(entry) if matches(identity, &entry.identity) => Lookup::Same(entry),
            Some(entry) => Lookup::Replaced(entry),
            None => Lookup::Unknown,
        }
    }

    /// Records that every output has acknowledged the file `identity` up to `offset`, seen at
    /// `path`. Offsets only move forward: a lower offset is ignored, counted in
    /// [`backward_commits`](Self::backward_commits) and reported. The path is updated (a renamed
    /// file keeps its checkpoint) and so is the stored identity when `identity`'s signature is
    /// longer. A different file on the same device and inode is replaced.
    pub fn commit(&mut self, identity: &FileIdentity, path: &Path, offset: u64) -> CommitOutcome {
        let key = (identity.dev, identity.ino);
        let fresh = || Entry {
            identity: identity.clone(),
            path: path.to_path_buf(),
            offset,
        };
        let outcome = match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(key, fresh());
                CommitOutcome::Inserted
            }
            Some(entry) if matches(identity, &entry.identity) => {
                if offset < entry.offset {
                    self.backward_commits += 1;
                    return CommitOutcome::IgnoredBackward {
                        committed: entry.offset,
                    };
                }
                let previous = entry.offset;
                entry.offset = offset;
                if entry.path != path {
                    entry.path = path.to_path_buf();
                }
                if identity.signed_len > entry.identity.signed_len {
                    entry.identity = identity.clone();
                }
                CommitOutcome::Advanced { previous }
            }
            Some(entry) => {
                let previous_offset = entry.offset;
                *entry = fresh();
                CommitOutcome::Replaced { previous_offset }
            }
        };
        self.dirty.set(true);
        outcome
    }

    /// The file at `identity`'s device and inode was truncated and is read again: its
    /// checkpoint becomes `offset` with this identity, whatever was stored for that device
    /// and inode (even a higher offset under an identity that matches this one, such as
    /// one that signed no bytes).
    pub fn reset(&mut self, identity: &FileIdentity, path: &Path, offset: u64) {
        self.entries.insert(
            (identity.dev, identity.ino),
            Entry {
                identity: identity.clone(),
                path: path.to_path_buf(),
                offset,
            },
        );
        self.dirty.set(true);
    }

    /// Drops the checkpoint of the file `identity` (when it has been read to its end and let
    /// go), returning its offset. A different file's checkpoint at the same inode stays.
    pub fn forget(&mut self, identity: &FileIdentity) -> Option<u64> {
        let key = (identity.dev, identity.ino);
        match self.entries.get(&key) {
            Some(entry) if matches(identity, &entry.identity) => {
                self.dirty.set(true);
                self.entries.remove(&key).map(|e| e.offset)
            }
            _ => None,
        }
    }

    /// How many commits were ignored because their offset was lower than the committed one.
    pub fn backward_commits(&self) -> u64 {
        self.backward_commits
    }

    /// The number of files with a checkpoint.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no file has a checkpoint.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every checkpoint, sorted by path (for `weir doctor` and metrics).
    pub fn entries(&self) -> Vec<&Entry> {
        let mut all: Vec<&Entry> = self.entries.values().collect();
        all.sort_by(|a, b| (&a.path, a.identity.dev, a.identity.ino).cmp(&(&b.path, b.identity.dev, b.identity.ino)));
        all
    }

    /// Whether something changed since the last successful save.
    pub fn is_dirty(&self) -> bool {
        self.dirty.get()
    }

    /// Writes the checkpoints atomically: [`TEMP_FILE`] in the same directory (created if
    /// missing), written and fsynced, renamed over [`CHECKPOINT_FILE`], then the directory
    /// fsynced. A crash leaves the old file or the new one, never a mix; a stray temp file from
    /// an earlier crash is overwritten.
    pub fn save(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let on_disk = OnDisk {
            version: u64::from(FORMAT_VERSION),
            files: self
                .entries()
                .into_iter()
                .map(|e| OnDiskEntry {
                    dev: e.identity.dev,
                    ino: e.identity.ino,
                    signed_len: e.identity.signed_len,
                    signature: format!("{:016x}", e.identity.signature),
                    offset: e.offset,
                    path: e.path.to_string_lossy().into_owned(),
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&on_disk).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let tmp = self.dir.join(TEMP_FILE);
        {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, self.file_path())?;
        File::open(&self.dir)?.sync_all()?;
        self.dirty.set(false);
        self.last_save.set(Some(Instant::now()));
        Ok(())
    }

    /// Saves when something changed and at least `interval` (the input's
    /// `checkpoint_interval`) has passed since the last save (or none happened yet), returning
    /// whether it saved. After a failed save the next call tries again.
    pub fn save_if_due(&self, now: Instant, interval: Duration) -> io::Result<bool> {
        if !self.dirty.get() {
            return Ok(false);
        }
        if let Some(last) = self.last_save.get()
            && now.saturating_duration_since(last) < interval
        {
            return Ok(false);
        }
        self.save()?;
        self.last_save.set(Some(now));
        Ok(true)
    }
}

/// Where a checkpointed file is now, as far as its directory can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whereabouts {
    /// The file (same device, inode and first bytes) is at this path: where it was, or
    /// renamed within its directory.
    Present(PathBuf),
    /// Known gone: its directory, on the file's own device, holds no file with its inode and
    /// first bytes (its inode may hold another file now), or the directory itself is gone and
    /// the nearest directory above it that exists is on that device.
    Gone,
    /// Nothing can be told, and why: the directory cannot be read, or it is on another
    /// device now (a file system not mounted there at the moment).
    Unknown(String),
}

/// Finds each checkpointed file (`identity`, last seen at `path`) in its directory. Each
/// directory is listed at most once, so checking many entries costs one listing per
/// directory, not per entry.
///
/// A file moved to another directory is not looked for there: it counts as gone.
pub fn whereabouts(entries: &[(&FileIdentity, &Path)]) -> Vec<Whereabouts> {
    let mut out: Vec<Option<Whereabouts>> = vec![None; entries.len()];
    // At its path, as the same file: the common case, one stat and one signature.
    let mut by_dir: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, (identity, path)) in entries.iter().enumerate() {
        if let Ok(meta) = fs::metadata(path)
            && (meta.dev(), meta.ino()) == (identity.dev, identity.ino)
            && FileIdentity::of_path(path).is_ok_and(|id| id.same_file_as(identity))
        {
            out[i] = Some(Whereabouts::Present(path.to_path_buf()));
            continue;
        }
        let dir = path.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        by_dir.entry(dir).or_default().push(i);
    }
    for (dir, waiting) in by_dir {
        let devs: Vec<u64> = waiting.iter().map(|&i| entries[i].0.dev).collect();
        let listing = match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => fs::read_dir(&dir).map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok().map(|m| ((m.dev(), m.ino()), e.path())))
                    .collect::<HashMap<(u64, u64), PathBuf>>()
            }),
            Ok(_) => Err(io::Error::other("not a directory")),
            Err(e) => Err(e),
        };
        let dir_dev = fs::metadata(&dir).map(|m| m.dev()).ok();
        for (&i, dev) in waiting.iter().zip(devs) {
            let identity = entries[i].0;
            out[i] = Some(match &listing {
                Ok(_) if dir_dev != Some(dev) => Whereabouts::Unknown(format!(
                    "{} is on another device now (device {} instead of {dev})",
                    dir.display(),
                    dir_dev.unwrap_or(0)
                )),
                Ok(files) => match files.get(&(identity.dev, identity.ino)) {
                    Some(p) if FileIdentity::of_path(p).is_ok_and(|id| id.same_file_as(identity)) => {
                        Whereabouts::Present(p.clone())
                    }
                    // Its inode holds another file now (or the file was emptied): the
                    // checkpointed contents are gone.
                    Some(_) | None => Whereabouts::Gone,
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => match nearest_existing(&dir) {
                    Some((_, above_dev)) if above_dev == dev => Whereabouts::Gone,
                    Some((above, above_dev)) => Whereabouts::Unknown(format!(
                        "{} is gone and {} is on another device (device {above_dev} instead of {dev})",
                        dir.display(),
                        above.display()
                    )),
                    None => Whereabouts::Unknown(format!("{} is gone and nothing above it can be read", dir.display())),
                },
                Err(e) => Whereabouts::Unknown(format!("cannot list {}: {e}", dir.display())),
            });
        }
    }
    out.into_iter().map(|w| w.expect("every entry answered")).collect()
}

/// The nearest directory above `dir` that exists, and its device.
fn nearest_existing(dir: &Path) -> Option<(PathBuf, u64)> {
    let mut at = dir.parent();
    while let Some(p) = at {
        match fs::metadata(p) {
            Ok(meta) => return Some((p.to_path_buf(), meta.dev())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => at = p.parent(),
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature is stored on disk: pin the hash to the published FNV-1a 64 test vectors so
    /// a change to it cannot go unnoticed (it would make every saved checkpoint miss).
    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn identity_signs_at_most_the_signature_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        let bytes: Vec<u8> = (0..3 * SIGNATURE_LEN).map(|i| (i % 251) as u8).collect();
        fs::write(&p, &bytes).unwrap();
        let id = FileIdentity::of_path(&p).unwrap();
        assert_eq!(id.signed_len(), SIGNATURE_LEN as u64);
        assert_eq!(id.signature(), fnv1a64(&bytes[..SIGNATURE_LEN]));
        let empty = dir.path().join("empty.log");
        fs::write(&empty, b"").unwrap();
        let e = FileIdentity::of_path(&empty).unwrap();
        assert_eq!((e.signed_len(), e.signature()), (0, fnv1a64(b"")));
    }
}

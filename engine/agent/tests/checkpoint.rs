//! The checkpoint store and file identity: identity across growth, truncation and inode reuse;
//! the on-disk format, its atomic save and its errors; offsets that never move backwards;
//! where a checkpointed file is now (what pruning relies on).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use weir::delivery::checkpoint::{
    CHECKPOINT_FILE, CheckpointError, Checkpoints, CommitOutcome, FileIdentity, Lookup, SIGNATURE_LEN, TEMP_FILE,
    Whereabouts, whereabouts,
};

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn id(path: &Path) -> FileIdentity {
    FileIdentity::of_path(path).unwrap()
}

#[test]
fn identity_is_stable_across_reopen_and_growth() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    write(&p, b"first line\n");
    let small = id(&p);
    assert_eq!(small.signed_len(), 11);
    assert!(!small.is_complete());
    // Reopen: identical.
    assert_eq!(id(&p), small);
    assert!(id(&p).same_file_as(&small));
    // Grow within the signature, then past it.
    append(&p, b"second line\n");
    let medium = id(&p);
    assert_ne!(medium, small);
    assert!(medium.same_file_as(&small));
    append(&p, &vec![b'x'; 3 * SIGNATURE_LEN]);
    let full = id(&p);
    assert!(full.is_complete());
    assert_eq!(full.signed_len(), SIGNATURE_LEN as u64);
    assert!(full.same_file_as(&small));
    assert!(full.same_file_as(&medium));
    // Growth past the signature does not change it.
    append(&p, b"more\n");
    assert_eq!(id(&p), full);
    // An earlier identity does not claim to be a later, longer one.
    assert!(!small.same_file_as(&full));
}

#[test]
fn identity_does_not_move_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    write(&p, b"0123456789");
    let mut f = File::open(&p).unwrap();
    f.seek(SeekFrom::Start(4)).unwrap();
    FileIdentity::of(&f).unwrap();
    let mut rest = String::new();
    f.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "456789");
}

#[test]
fn truncate_and_rewrite_with_different_bytes_is_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    write(&p, b"2026-11-25 line one\n2026-11-25 line two\n");
    let before = id(&p);
    // copytruncate: same inode, emptied, rewritten.
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    let empty = id(&p);
    assert_eq!(empty.ino(), before.ino());
    assert!(!empty.same_file_as(&before), "shorter than the earlier signature");
    append(&p, b"2026-11-26 a new day, other bytes entirely\n");
    let after = id(&p);
    assert_eq!(after.ino(), before.ino());
    assert!(!after.same_file_as(&before));

    // And the store sees it as a replacement, not a resume.
    let mut cps = Checkpoints::new(dir.path());
    cps.commit(&before, &p, 40);
    assert!(matches!(cps.lookup(&after), Lookup::Replaced(e) if e.offset == 40));
    assert_eq!(cps.get(&after), None);
    assert_eq!(
        cps.commit(&after, &p, 10),
        CommitOutcome::Replaced { previous_offset: 40 }
    );
    assert_eq!(cps.get(&after), Some(10));
    assert_eq!(cps.get(&before), None);
}

#[test]
fn same_content_in_two_files_is_two_identities() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    write(&a, b"same bytes\n");
    write(&b, b"same bytes\n");
    let (ia, ib) = (id(&a), id(&b));
    assert_eq!(ia.signature(), ib.signature());
    assert_ne!(ia, ib);
    assert!(!ia.same_file_as(&ib));
    assert!(!ib.same_file_as(&ia));
    let mut cps = Checkpoints::new(dir.path());
    cps.commit(&ia, &a, 11);
    assert_eq!(cps.get(&ib), None);
    assert_eq!(cps.lookup(&ib), Lookup::Unknown);
}

#[test]
fn inode_reuse_is_not_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    write(&p, b"old file's first bytes\n");
    let old = id(&p);
    // Delete and create files until one gets the same inode back (common on ext4/tmpfs), or
    // give up after a few tries and check the rule on the identity directly.
    fs::remove_file(&p).unwrap();
    let mut reused = None;
    for i in 0..64 {
        let q = dir.path().join(format!("new-{i}.log"));
        write(&q, b"a brand new file\n");
        let new = id(&q);
        if new.dev() == old.dev() && new.ino() == old.ino() {
            reused = Some(new);
            break;
        }
    }
    if let Some(new) = &reused {
        assert!(!new.same_file_as(&old));
    }
    // Whether or not the kernel reused it here, a same-inode file with other bytes is
    // a different file: build that case through the store's on-disk form.
    let mut cps = Checkpoints::new(dir.path());
    cps.commit(&old, &p, 23);
    cps.save().unwrap();
    let text = fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let q = dir.path().join("other.log");
    write(&q, b"a brand new file\n");
    let other = id(&q);
    let forged = text
        .replace(&format!("\"ino\": {}", old.ino()), &format!("\"ino\": {}", other.ino()))
        .replace(&format!("\"dev\": {}", old.dev()), &format!("\"dev\": {}", other.dev()));
    fs::write(dir.path().join(CHECKPOINT_FILE), forged).unwrap();
    let loaded = Checkpoints::load(dir.path()).unwrap();
    assert!(matches!(loaded.lookup(&other), Lookup::Replaced(e) if e.offset == 23));
    assert_eq!(loaded.get(&other), None);
}

#[test]
fn save_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    write(&a, &vec![b'a'; 2 * SIGNATURE_LEN]);
    write(&b, b"short\n");
    let (ia, ib) = (id(&a), id(&b));
    let data = dir.path().join("data");
    let mut cps = Checkpoints::load(&data).unwrap();
    assert!(cps.is_empty(), "a missing directory is an empty store");
    cps.commit(&ia, &a, 2048);
    cps.commit(&ib, &b, 6);
    cps.save().unwrap();
    assert!(!dir.path().join("data").join(TEMP_FILE).exists());

    let loaded = Checkpoints::load(&data).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded.get(&ia), Some(2048));
    assert_eq!(loaded.get(&ib), Some(6));
    assert_eq!(loaded.entries(), cps.entries());
    assert_eq!(loaded.entries()[1].path, b);

    // A file that grew after the save still resumes (the loaded identity is the shorter one).
    append(&b, b"and more\n");
    assert_eq!(loaded.get(&id(&b)), Some(6));

    // The format: versioned JSON, signature as 16 hex digits.
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(data.join(CHECKPOINT_FILE)).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["files"][1]["signed_len"], 6);
    assert_eq!(json["files"][1]["offset"], 6);
    assert_eq!(json["files"][1]["signature"].as_str().unwrap().len(), 16);
}

#[test]
fn a_stray_temp_file_is_ignored_and_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    write(&a, b"line\n");
    let ia = id(&a);
    let mut cps = Checkpoints::new(dir.path());
    cps.commit(&ia, &a, 5);
    cps.save().unwrap();
    // A crash between writing the temp file and the rename: a half-written temp file.
    let tmp = dir.path().join(TEMP_FILE);
    write(&tmp, b"{\"version\": 1, \"files\": [ {\"dev\": 1");
    let loaded = Checkpoints::load(dir.path()).unwrap();
    assert_eq!(loaded.get(&ia), Some(5), "the old file is intact and used");
    // The next save overwrites the temp file and leaves none behind.
    let mut loaded = loaded;
    loaded.commit(&ia, &a, 5);
    append(&a, b"more\n");
    loaded.commit(&id(&a), &a, 10);
    loaded.save().unwrap();
    assert!(!tmp.exists());
    let reloaded = Checkpoints::load(dir.path()).unwrap();
    assert_eq!(reloaded.get(&id(&a)), Some(10));
    // The saved identity is the longer one: the 5-byte identity no longer matches it after a
    // restart (from disk, a shorter file means it shrank), though in the process that upgraded
    // it the stale identity still finds its entry.
    assert_eq!(reloaded.get(&ia), None);
    assert_eq!(loaded.get(&ia), Some(10));
}

#[test]
fn unknown_version_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CHECKPOINT_FILE);
    write(&path, br#"{"version": 7, "entries": {"something": "else"}}"#);
    let err = Checkpoints::load(dir.path()).unwrap_err();
    assert!(matches!(err, CheckpointError::UnsupportedVersion { found: 7, .. }));
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("version 7"), "{msg}");
}

#[test]
fn corrupt_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CHECKPOINT_FILE);
    let cases: &[&[u8]] = &[
        b"",
        b"{\"version\": 1, \"files\": [",
        b"not json at all",
        br#"{"files": []}"#,
        br#"{"version": 1, "files": [{"dev": 1, "ino": 2}]}"#,
    ];
    for text in cases {
        write(&path, text);
        let err = Checkpoints::load(dir.path()).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{text:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
    let entry = |sig: &str, len: u32| {
        format!(
            r#"{{"version": 1, "files": [{{"dev": 1, "ino": 2, "signed_len": {len}, "signature": "{sig}", "offset": 3, "path": "/x"}}]}}"#
        )
    };
    for text in [
        entry("xyz", 4),
        entry("zzzzzzzzzzzzzzzz", 4),
        entry("0000000000000000", 5000),
    ] {
        write(&path, text.as_bytes());
        let err = Checkpoints::load(dir.path()).unwrap_err();
        assert!(matches!(err, CheckpointError::Invalid { .. }), "{text}: {err}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }
    write(&path, entry("00000000000000ff", 4).as_bytes());
    assert_eq!(Checkpoints::load(dir.path()).unwrap().len(), 1);
}

#[test]
fn offsets_never_move_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    write(&a, b"some bytes here\n");
    let ia = id(&a);
    let mut cps = Checkpoints::new(dir.path());
    assert_eq!(cps.commit(&ia, &a, 10), CommitOutcome::Inserted);
    assert_eq!(cps.commit(&ia, &a, 16), CommitOutcome::Advanced { previous: 10 });
    assert_eq!(cps.commit(&ia, &a, 4), CommitOutcome::IgnoredBackward { committed: 16 });
    assert_eq!(cps.get(&ia), Some(16));
    assert_eq!(cps.backward_commits(), 1);
    // Rename rotation: same identity, new path; the path follows.
    let rotated = dir.path().join("a.log.1");
    fs::rename(&a, &rotated).unwrap();
    assert_eq!(id(&rotated), ia);
    cps.commit(&ia, &rotated, 16);
    assert_eq!(cps.entries()[0].path, rotated);
    // Forget drops it; a different file at another inode is untouched.
    assert_eq!(cps.forget(&ia), Some(16));
    assert_eq!(cps.get(&ia), None);
    assert_eq!(cps.forget(&ia), None);
}

#[test]
fn save_if_due_respects_the_interval_and_dirtiness() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    write(&a, b"x\n");
    let ia = id(&a);
    let mut cps = Checkpoints::new(dir.path());
    let interval = Duration::from_secs(5);
    let t0 = Instant::now();
    assert!(!cps.save_if_due(t0, interval).unwrap(), "nothing to save");
    cps.commit(&ia, &a, 1);
    assert!(cps.is_dirty());
    assert!(cps.save_if_due(t0, interval).unwrap(), "first save is due");
    assert!(!cps.is_dirty());
    cps.commit(&ia, &a, 2);
    assert!(!cps.save_if_due(t0 + Duration::from_secs(1), interval).unwrap());
    assert_eq!(Checkpoints::load(dir.path()).unwrap().get(&ia), Some(1));
    assert!(cps.save_if_due(t0 + interval, interval).unwrap());
    assert_eq!(Checkpoints::load(dir.path()).unwrap().get(&ia), Some(2));
}

/// `whereabouts` of one entry read back from disk (no prefix bytes in memory, as after a
/// restart).
fn where_is(dir: &Path, identity: &FileIdentity, path: &Path) -> Whereabouts {
    let mut store = Checkpoints::new(dir.join("data"));
    store.commit(identity, path, 1);
    store.save().unwrap();
    let loaded = Checkpoints::load(dir.join("data")).unwrap();
    let e = loaded.entries()[0].clone();
    whereabouts(&[(&e.identity, &e.path)]).remove(0)
}

#[test]
fn whereabouts_finds_a_file_at_its_path_or_renamed_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    write(&p, b"a first line\n");
    let a = id(&p);
    append(&p, b"grown since\n");
    assert_eq!(where_is(dir.path(), &a, &p), Whereabouts::Present(p.clone()));
    let moved = dir.path().join("a.log.1");
    fs::rename(&p, &moved).unwrap();
    assert_eq!(where_is(dir.path(), &a, &p), Whereabouts::Present(moved));
}

#[test]
fn whereabouts_knows_a_deleted_file_an_emptied_one_and_a_removed_directory_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("pod/container");
    fs::create_dir_all(&logs).unwrap();
    let p = logs.join("0.log");
    write(&p, b"a first line\n");
    let a = id(&p);
    // Emptied and written again: same inode, other contents.
    write(&p, b"other contents\n");
    assert_eq!(where_is(dir.path(), &a, &p), Whereabouts::Gone);
    fs::remove_file(&p).unwrap();
    assert_eq!(where_is(dir.path(), &a, &p), Whereabouts::Gone);
    // The pod's directory removed with everything in it (Kubernetes after a pod is deleted).
    fs::remove_dir_all(dir.path().join("pod")).unwrap();
    assert_eq!(where_is(dir.path(), &a, &p), Whereabouts::Gone);
}

#[test]
fn whereabouts_cannot_tell_when_the_directory_is_on_another_device() {
    // A volume not mounted (or another one mounted) where the file was: its directory, or
    // the nearest one above it, is on another device. That is no proof the file is gone.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    write(&p, b"a first line\n");
    let a = id(&p);
    let shm = Path::new("/dev/shm");
    let other = match fs::metadata(shm) {
        Ok(m) if m.is_dir() && std::os::unix::fs::MetadataExt::dev(&m) != a.dev() => tempfile::tempdir_in(shm).unwrap(),
        _ => {
            eprintln!("no directory on another device (/dev/shm) here: nothing to check");
            return;
        }
    };
    let elsewhere = other.path().join("a.log");
    assert!(
        matches!(where_is(dir.path(), &a, &elsewhere), Whereabouts::Unknown(why) if why.contains("another device"))
    );
    let below = other.path().join("gone/dir/a.log");
    assert!(matches!(where_is(dir.path(), &a, &below), Whereabouts::Unknown(why) if why.contains("another device")));
}

//! The compiled-plugin cache: entries per fuel setting, pruning to the size limit least
//! recently used first (never the entry just written), leftover temp files removed, and a
//! damaged entry compiled again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use weir_test_plugins as plugins;
use weir_wasm::PluginCache;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-wasm-cache-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn entries_are_per_fuel_setting_and_a_second_precompile_finds_them() {
    let dir = temp_dir("fuel");
    let cache = PluginCache::new(&dir, u64::MAX);
    let plain = cache.precompile(Path::new(plugins::NOOP), false).unwrap();
    let fueled = cache.precompile(Path::new(plugins::NOOP), true).unwrap();
    assert!(!plain.already_cached && !fueled.already_cached);
    assert_ne!(plain.file, fueled.file);
    assert!(plain.file.starts_with(&dir) && plain.file.extension().is_some_and(|x| x == "cwasm"));
    let again = cache.precompile(Path::new(plugins::NOOP), false).unwrap();
    assert!(again.already_cached);
    assert_eq!(again.file, plain.file);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn pruning_drops_the_least_recently_used_and_leftover_temp_files() {
    let dir = temp_dir("prune");
    let unbounded = PluginCache::new(dir.join("sizes"), u64::MAX);
    let size = |p: &str| len(&unbounded.precompile(Path::new(p), false).unwrap().file);
    let (spin, trap, noop) = (size(plugins::SPIN), size(plugins::TRAP), size(plugins::NOOP));

    let cache_dir = dir.join("cache");
    // Room for trap and either of the others, not for all three.
    let cache = PluginCache::new(&cache_dir, trap + spin.max(noop));
    let pause = || std::thread::sleep(Duration::from_millis(20));
    let a = cache.precompile(Path::new(plugins::TRAP), false).unwrap().file;
    pause();
    let b = cache.precompile(Path::new(plugins::SPIN), false).unwrap().file;
    pause();
    // A writer killed between write and rename leaves a temp file: an old one goes, a
    // fresh one (a writer at work) stays, and files that are not the cache's are not touched.
    let stale = cache_dir.join("0123.tmp4242");
    let fresh = cache_dir.join("4567.tmp4343");
    let other = cache_dir.join("notes.txt");
    for f in [&stale, &fresh, &other] {
        std::fs::write(f, b"x").unwrap();
    }
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for f in [&stale, &other] {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    // Loading `a` again makes `b` the least recently used.
    assert!(
        cache
            .precompile(Path::new(plugins::TRAP), false)
            .unwrap()
            .already_cached
    );
    pause();
    let c = cache.precompile(Path::new(plugins::NOOP), false).unwrap().file;
    let mut want = vec![file_name(&a), file_name(&c), file_name(&fresh), file_name(&other)];
    want.sort();
    assert_eq!(
        names(&cache_dir),
        want,
        "spin ({spin} bytes) is pruned, the stale temp file too"
    );
    assert!(!b.exists() && !stale.exists());
    assert!(len(&a) + len(&c) <= cache.max_bytes());

    // An entry bigger than the limit is still stored (and used): only the others go.
    let tiny = PluginCache::new(&cache_dir, 1);
    let d = tiny.precompile(Path::new(plugins::SPIN), false).unwrap();
    assert!(!d.already_cached && d.file.exists());
    assert!(!a.exists() && !c.exists());
    assert!(tiny.precompile(Path::new(plugins::SPIN), false).unwrap().already_cached);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_damaged_entry_is_compiled_again() {
    let dir = temp_dir("damaged");
    let cache = PluginCache::new(&dir, u64::MAX);
    let entry = cache.precompile(Path::new(plugins::NOOP), false).unwrap().file;
    let good = std::fs::read(&entry).unwrap();
    for damaged in [b"garbage".to_vec(), good[..good.len() / 2].to_vec(), Vec::new()] {
        std::fs::write(&entry, &damaged).unwrap();
        let again = cache.precompile(Path::new(plugins::NOOP), false).unwrap();
        assert!(!again.already_cached, "a damaged entry is not a hit");
        assert_eq!(std::fs::read(&entry).unwrap(), good, "replaced by a good one");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn errors_name_the_file() {
    let dir = temp_dir("errors");
    let cache = PluginCache::new(dir.join("cache"), u64::MAX);
    let err = cache.precompile(Path::new("/nonexistent/p.wasm"), false).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot read plugin /nonexistent/p.wasm: "),
        "{err}"
    );
    let not_wasm = dir.join("p.wasm");
    std::fs::write(&not_wasm, b"\0asm but not really").unwrap();
    let err = cache.precompile(&not_wasm, false).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{} is not a Wasm component: ", not_wasm.display())),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

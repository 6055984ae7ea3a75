//! The local cache of a remote repository: `snapshots`, `ls` and a backup with nothing new
//! download no index file, snapshot or tree again; the layout is restic's (restic's own
//! cache of the same repository holds the same files); damaged copies are not trusted;
//! `--no-cache` and `cache --cleanup` work.

mod common;

use cairn_testsupport::proxy::FaultProxy;
use common::{make_corpus, RcloneRest, TempDir, Tool};
use std::collections::BTreeSet;
use std::path::Path;

/// Files downloaded whole or in part: GETs of anything but a listing or the config.
fn downloads(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|l| l.starts_with("GET "))
        .map(|l| l.split(' ').nth(1).unwrap_or("").to_string())
        .filter(|p| !p.ends_with('/') && !p.ends_with("/config") && !p.contains("/keys/"))
        .collect()
}

/// Two `ls` outputs list the same paths (their headers name different snapshots).
fn same_listing(a: &str, b: &str) -> bool {
    a.lines().skip(1).eq(b.lines().skip(1)) && a.lines().count() > 10
}

/// Paths under a cache directory, relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

#[test]
fn a_remote_repository_is_read_from_the_cache() {
    require_restic!();
    let Some(server) = RcloneRest::start() else {
        return;
    };
    let proxy = FaultProxy::start(server.port);
    let t = TempDir::new("cache");
    let src = t.join("src");
    make_corpus(&src, 6, 41);
    let src_s = src.to_str().unwrap();
    let cache = t.join("cache");
    let cache_s = cache.to_str().unwrap();
    let loc = format!("rest:http://127.0.0.1:{}/repo/", proxy.port);
    let cairn = Tool::cairn(Path::new(&loc), "pw");
    let with_cache = |args: &[&str]| {
        let mut v = vec!["--cache-dir", cache_s];
        v.extend_from_slice(args);
        cairn.run(&v).ok()
    };
    with_cache(&["init"]);
    with_cache(&["backup", "-q", src_s]);
    let id = cairn.run(&["cat", "config", "--no-cache"]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Listing and browsing read nothing but listings.
    proxy.take_log();
    let snaps = with_cache(&["snapshots"]).stdout_str();
    let ls = with_cache(&["ls", "latest"]).stdout_str();
    let got = downloads(&proxy.take_log());
    assert!(got.is_empty(), "snapshots and ls downloaded {got:?}");

    // A backup with nothing new neither.
    let r = with_cache(&["backup", "--json", src_s]);
    assert_eq!(r.summary()["files_new"], 0);
    let got = downloads(&proxy.take_log());
    assert!(got.is_empty(), "a no-change backup downloaded {got:?}");

    // Without the cache the same commands do download (the check above can fail).
    let ls_nc = cairn.run(&["--no-cache", "ls", "latest"]).ok().stdout_str();
    assert!(same_listing(&ls_nc, &ls), "ls without the cache differs");
    let got = downloads(&proxy.take_log());
    assert!(got.iter().any(|p| p.contains("/data/")), "{got:?}");
    assert!(got.iter().any(|p| p.contains("/index/")), "{got:?}");

    // restic's layout: restic's own cache of this repository, after the same commands,
    // holds exactly the files cairn's does.
    let rcache = t.join("restic-cache");
    let restic_direct = Tool::restic(Path::new(&server.location("repo")), "pw");
    let restic_args = |args: &[&str]| {
        let mut v = vec!["--cache-dir", rcache.to_str().unwrap()];
        v.extend_from_slice(args);
        // Tool::restic adds --no-cache; run restic by hand instead.
        common::run_cmd(
            std::ffi::OsStr::new("restic"),
            &[&["-r", &server.location("repo")][..], &v[..]]
                .concat()
                .iter()
                .map(std::ffi::OsStr::new)
                .collect::<Vec<_>>(),
            &[("RESTIC_PASSWORD", std::ffi::OsStr::new("pw"))],
            None,
        )
        .ok()
    };
    let _ = &restic_direct;
    restic_args(&["snapshots"]);
    restic_args(&["ls", "latest"]);
    let mine = files_under(&cache.join(&id));
    let theirs = files_under(&rcache.join(&id));
    let strip = |s: &BTreeSet<String>| -> BTreeSet<String> {
        s.iter()
            .filter(|p| !p.starts_with("cairn-resume"))
            .cloned()
            .collect()
    };
    assert_eq!(strip(&mine), strip(&theirs), "cache layouts differ");
    assert!(mine.iter().any(|p| p.starts_with("data/")), "{mine:?}");
    assert!(cache.join("CACHEDIR.TAG").is_file());

    // A damaged cached tree pack is not trusted: ls still gives the same listing.
    for p in mine.iter().filter(|p| p.starts_with("data/")) {
        std::fs::write(cache.join(&id).join(p), b"damaged").unwrap();
    }
    let ls2 = with_cache(&["ls", "latest"]).stdout_str();
    assert!(same_listing(&ls2, &ls), "ls with a damaged cache differs");

    // check reads the repository, not the cache: a tree pack damaged on the server is found
    // although the cache holds a good copy of it.
    let tree_pack = mine
        .iter()
        .find(|p| p.starts_with("data/"))
        .map(|p| p.rsplit('/').next().unwrap().to_string())
        .unwrap();
    assert!(cache
        .join(&id)
        .join("data")
        .join(&tree_pack[..2])
        .join(&tree_pack)
        .is_file());
    let on_server = server
        .dir()
        .join("repo/data")
        .join(&tree_pack[..2])
        .join(&tree_pack);
    let mut bytes = std::fs::read(&on_server).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&on_server, bytes).unwrap();
    let r = cairn.run(&["--cache-dir", cache_s, "check", "--read-data"]);
    assert_eq!(
        r.code,
        Some(1),
        "check trusted the cache: {}",
        r.stdout_str()
    );
    assert!(
        (r.stdout_str() + &r.stderr_str()).contains(&tree_pack[..8]),
        "{}{}",
        r.stdout_str(),
        r.stderr_str()
    );

    // `cache` lists it; `cache --cleanup` removes it once it is old enough.
    let list = with_cache(&["cache"]).stdout_str();
    assert!(list.contains(&id[..10]), "{list}");
    let r = with_cache(&["cache", "--cleanup"]).stdout_str();
    assert!(r.contains("no old cache dirs"), "{r}");
    assert!(cache.join(&id).is_dir());
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86400);
    std::fs::File::open(cache.join(&id))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let r = with_cache(&["cache", "--cleanup"]).stdout_str();
    assert!(r.contains("removing old cache dir"), "{r}");
    assert!(!cache.join(&id).exists());
    // The global --cleanup-cache does the same after any command (restic 0.18).
    let stale = cache.join("0".repeat(64));
    std::fs::create_dir_all(stale.join("snapshots")).unwrap();
    std::fs::write(
        stale.join("CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55",
    )
    .unwrap();
    std::fs::File::open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    with_cache(&["--cleanup-cache", "cat", "config"]);
    assert!(!stale.exists(), "--cleanup-cache left an old cache");
    let _ = snaps;
}

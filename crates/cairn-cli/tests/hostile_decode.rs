//! A hostile repository against cairn's decoders: zstd bombs stored as snapshot and lock
//! files, and a blob whose index entry declares an uncompressed length of almost 4 GiB.
//! Every command runs under an address-space limit and a time limit; each must finish with
//! a one-line error or warning that names the file (or pack and blob) and a documented exit
//! code, never abort or run out of memory.

mod common;

use cairn_backend::FileType;
use cairn_core::format::pack::BlobType;
use cairn_testsupport::hostile::{node, zstd_rle_bomb, Forger};
use common::*;
use std::time::{Duration, Instant};

/// What the bombs expand to.
const BOMB: u64 = 8 << 30;
/// Address space cairn gets: far less than a bomb, and room for its threads' reservations.
const MEM_LIMIT: u64 = 1 << 30;
/// Longest any one command may take.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Runs cairn on `repo` under [`MEM_LIMIT`] and a timeout.
fn limited(repo: &std::path::Path, args: &[&str]) -> Run {
    let start = Instant::now();
    let r = cairn_limited(repo, "pw", &[], &[], args, MEM_LIMIT, 120);
    assert!(
        start.elapsed() < TIME_LIMIT,
        "{} took {:?}",
        r.desc,
        start.elapsed()
    );
    r
}

/// stderr lines that mention `needle`.
fn lines_with(r: &Run, needle: &str) -> Vec<String> {
    r.stderr_str()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn setup(name: &str) -> (TempDir, std::path::PathBuf, std::path::PathBuf) {
    let t = TempDir::new(name);
    let src = t.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"some content\n").unwrap();
    let repo = t.join("repo");
    let cairn = Tool::cairn(&repo, "pw");
    cairn.run(&["init"]).ok();
    limited(&repo, &["backup", src.to_str().unwrap()]).ok();
    (t, repo, src)
}

#[test]
fn the_hand_made_bombs_are_valid_zstd() {
    for declare in [false, true] {
        let b = zstd_rle_bomb(300 * 1024 + 7, 0x41, declare);
        assert_eq!(b[0], 2);
        let out = zstd::stream::decode_all(&b[1..]).unwrap();
        assert_eq!(out.len(), 300 * 1024 + 7);
        assert!(out.iter().all(|&c| c == 0x41));
        let size = zstd::zstd_safe::get_frame_content_size(&b[1..]).unwrap();
        assert_eq!(size, declare.then_some(300 * 1024 + 7));
    }
    // 8 GiB in 256 KiB.
    assert!(zstd_rle_bomb(BOMB, 0, true).len() < 300 * 1024);
}

#[test]
fn a_zstd_bomb_as_a_snapshot_is_an_error_naming_it() {
    let (_t, repo, src) = setup("bomb-snap");
    let mut f = Forger::open(&repo, "pw");
    // Without a declared size: only the cap on decompressed output stops it.
    let id = f.raw_unpacked(FileType::Snapshot, &zstd_rle_bomb(BOMB, b'{', false));
    drop(f);
    let name = format!("snapshots/{}", id.to_hex());
    let why = "decompresses to more than the 64 MiB a snapshot file may have";
    // backup only loses its parent: a warning naming the file, and a snapshot.
    let r = limited(&repo, &["backup", src.to_str().unwrap()]).ok();
    let hits = lines_with(&r, &name);
    assert_eq!(hits.len(), 1, "{}: {}", r.desc, r.stderr_str());
    assert!(
        hits[0].starts_with("warning: no parent snapshot, every file is read: ")
            && hits[0].contains(why),
        "{}",
        hits[0]
    );
    assert_eq!(
        std::fs::read_dir(repo.join("snapshots")).unwrap().count(),
        3
    );
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["cat", "snapshot", &id.to_hex()],
    ] {
        let r = limited(&repo, &args).expect_code(1);
        let hits = lines_with(&r, &name);
        assert_eq!(hits.len(), 1, "{}: {}", r.desc, r.stderr_str());
        assert!(hits[0].contains(why), "{}: {}", r.desc, hits[0]);
        assert!(hits[0].starts_with("Fatal: "), "{}", hits[0]);
    }
    // A named snapshot that is fine is still listed alone, and unlock does not read snapshots.
    limited(&repo, &["unlock"]).ok();
    // With a declared size, it is refused before decompressing anything.
    let mut f = Forger::open(&repo, "pw");
    let id2 = f.raw_unpacked(FileType::Snapshot, &zstd_rle_bomb(BOMB, b'{', true));
    drop(f);
    let r = limited(&repo, &["cat", "snapshot", &id2.to_hex()]).expect_code(1);
    let hits = lines_with(&r, &format!("snapshots/{}", id2.to_hex()));
    assert_eq!(hits.len(), 1, "{}", r.stderr_str());
    assert!(
        hits[0].contains("declares 8589934592 bytes uncompressed, more than the 64 MiB"),
        "{}",
        hits[0]
    );
}

#[test]
fn unreadable_locks_are_warned_about_ignored_and_removed_by_unlock() {
    let (t, repo, src) = setup("bomb-lock");
    let mut f = Forger::open(&repo, "pw");
    let declared = f.raw_unpacked(FileType::Lock, &zstd_rle_bomb(BOMB, 0, true));
    let streamed = f.raw_unpacked(FileType::Lock, &zstd_rle_bomb(BOMB, b' ', false));
    let garbage = f.raw_unpacked(FileType::Lock, b"{\"not\": \"a lock\"}");
    drop(f);
    // 3 MiB that are not even sealed: refused by size, before being read.
    let big = cairn_core::Id::hash(b"big lock");
    std::fs::write(repo.join("locks").join(big.to_hex()), vec![0x5a; 3 << 20]).unwrap();
    let expect = [
        (
            declared,
            "declares 8589934592 bytes uncompressed, more than the 1 MiB a lock file may have",
        ),
        (
            streamed,
            "decompresses to more than the 1 MiB a lock file may have",
        ),
        (garbage, "not a lock"),
        (
            big,
            "is 3145728 bytes stored, more than a lock file of at most 1 MiB can take",
        ),
    ];
    let check_warnings = |r: &Run| {
        for (id, why) in &expect {
            let hits = lines_with(r, &format!("locks/{}", id.to_hex()));
            assert_eq!(
                hits.len(),
                1,
                "{}: one warning per lock:\n{}",
                r.desc,
                r.stderr_str()
            );
            assert!(
                hits[0].starts_with("warning: ignoring unreadable lock ")
                    && hits[0].contains(why)
                    && hits[0].ends_with("`cairn unlock` removes it"),
                "{}: {}",
                r.desc,
                hits[0]
            );
        }
    };
    let r = limited(&repo, &["snapshots"]).ok();
    check_warnings(&r);
    let r = limited(&repo, &["ls", "latest"]).ok();
    check_warnings(&r);
    // An exclusive lock looks at them too.
    let r = limited(&repo, &["backup", src.to_str().unwrap()]).ok();
    check_warnings(&r);
    let r = limited(&repo, &["forget", "--keep-last", "5"]).ok();
    check_warnings(&r);

    // unlock removes every unreadable one, naming each, and nothing else.
    let r = limited(&repo, &["unlock"]).ok();
    for (id, why) in &expect {
        let hits = lines_with(&r, &format!("locks/{}", id.to_hex()));
        assert_eq!(hits.len(), 1, "{}", r.stderr_str());
        assert!(hits[0].starts_with("removing unreadable lock ") && hits[0].contains(why));
    }
    let left: Vec<_> = std::fs::read_dir(repo.join("locks")).unwrap().collect();
    assert!(left.is_empty(), "locks left: {left:?}");
    let r = limited(&repo, &["snapshots"]).ok();
    assert!(!r.stderr_str().contains("unreadable"), "{}", r.stderr_str());

    // unlock --remove-all too.
    let mut f = Forger::open(&repo, "pw");
    f.raw_unpacked(FileType::Lock, &zstd_rle_bomb(BOMB, 0, false));
    drop(f);
    limited(&repo, &["unlock", "--remove-all"]).ok();
    assert_eq!(std::fs::read_dir(repo.join("locks")).unwrap().count(), 0);
    drop(t);
}

#[test]
fn a_blob_declaring_4_gib_is_an_error_naming_pack_and_blob() {
    let (t, repo, _src) = setup("huge-blob");
    let mut f = Forger::open(&repo, "pw");
    let content = b"a small file whose blob claims to be almost 4 GiB\n";
    let (pack, blob) = f.blob_declaring(BlobType::Data, content, 0xFFFF_FF00);
    let mut file = node(b"f", cairn_core::format::tree::NodeType::File);
    file.content = Some(vec![blob]);
    file.size = content.len() as u64;
    file.links = 1;
    let ok = f.file(b"g", b"an honest file\n");
    let tree = f.tree(&[file, ok]);
    let snap = f.snapshot(tree);
    drop(f);
    let why = format!(
        "pack {}: data blob {}: declares 4294967040 bytes uncompressed, more than the 8 MiB a \
         data blob may have",
        &pack.to_hex()[..8],
        blob.to_hex()
    );
    let one_line_names_it = |r: &Run| {
        let hits = lines_with(r, &why);
        assert_eq!(hits.len(), 1, "{}:\n{}", r.desc, r.stderr_str());
    };

    let target = t.join("target");
    let r = limited(
        &repo,
        &[
            "restore",
            &snap.to_hex(),
            "--target",
            target.to_str().unwrap(),
        ],
    )
    // As restic: the other files are restored, and the run ends "There were 1 errors", exit 1.
    .expect_code(1);
    one_line_names_it(&r);
    // The honest file next to it is restored.
    assert_eq!(
        std::fs::read(target.join("g")).unwrap(),
        b"an honest file\n"
    );

    let r = limited(&repo, &["cat", "blob", &blob.to_hex()]).expect_code(1);
    one_line_names_it(&r);

    // dump's exit codes are its own business (restic's); it must fail, naming the blob.
    let r = limited(&repo, &["dump", &snap.to_hex(), "/f"]);
    assert!(matches!(r.code, Some(1..=3)), "{}: {:?}", r.desc, r.code);
    one_line_names_it(&r);

    let r = limited(&repo, &["check", "--read-data"]).expect_code(1);
    let out = format!("{}{}", r.stdout_str(), r.stderr_str());
    let hits: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.contains(&pack.to_hex()[..8])
                && l.contains(&blob.to_hex()[..8])
                && l.contains("more than the 8 MiB a data blob may have")
        })
        .collect();
    assert!(!hits.is_empty(), "{}:\n{out}", r.desc);
}

#[test]
fn zstd_bombs_as_index_files_are_an_error_naming_them() {
    let (_t, repo, _src) = setup("bomb-index");
    let mut f = Forger::open(&repo, "pw");
    // Two, as two index files are read at once; neither states its size.
    let a = f.raw_unpacked(FileType::Index, &zstd_rle_bomb(BOMB, b' ', false));
    let b = f.raw_unpacked(FileType::Index, &zstd_rle_bomb(BOMB, b' ', false));
    drop(f);
    for args in [vec!["ls", "latest"], vec!["check"]] {
        let r = limited(&repo, &args);
        assert!(
            matches!(r.code, Some(1)),
            "{}: {:?}\n{}",
            r.desc,
            r.code,
            r.stderr_str()
        );
        let out = format!("{}{}", r.stdout_str(), r.stderr_str());
        let hits: Vec<&str> = out
            .lines()
            .filter(|l| {
                (l.contains(&format!("index/{}", a.to_hex()))
                    || l.contains(&format!("index/{}", b.to_hex())))
                    && l.contains("decompresses to more than the 256 MiB an index file may have")
            })
            .collect();
        assert!(!hits.is_empty(), "{}:\n{out}", r.desc);
    }
}

/// A file far beyond its ceiling: a server sends it whole when asked for it, so only the
/// client's cap on what it reads stands between it and the machine's memory.
#[test]
fn an_oversized_file_behind_a_rest_server_is_refused_after_reading_past_its_ceiling_only() {
    let Some(server) = cairn_testsupport::rclone::RcloneRest::start() else {
        return;
    };
    let (_t, repo, _src) = setup("capped-remote");
    let served = server.dir().join("r");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&repo)
        .arg(&served)
        .status()
        .unwrap();
    assert!(st.success());
    // 4 GiB of zeros (sparse: no disk), four times the address space cairn gets.
    let name = "ab".repeat(32);
    let f = std::fs::File::create(served.join("snapshots").join(&name)).unwrap();
    f.set_len(4 << 30).unwrap();
    drop(f);
    let loc = server.location("r");
    let r = limited(std::path::Path::new(&loc), &["snapshots"]).expect_code(1);
    let hits = lines_with(&r, &format!("snapshots/{name}"));
    assert_eq!(hits.len(), 1, "{}: {}", r.desc, r.stderr_str());
    assert!(
        hits[0].starts_with("Fatal: ") && hits[0].contains("more than a snapshot file of at most"),
        "{}",
        hits[0]
    );
    // Without it, the repository is fine over the same server.
    std::fs::remove_file(served.join("snapshots").join(&name)).unwrap();
    let r = limited(std::path::Path::new(&loc), &["snapshots", "--json"]).ok();
    assert_eq!(r.json().as_array().map(Vec::len), Some(1), "{}", r.desc);
}

/// A fifo planted where a repository file goes: opening it for reading would wait for a
/// writer forever.
#[test]
fn a_fifo_planted_in_a_local_repository_is_an_error_not_a_hang() {
    let (_t, repo, _src) = setup("fifo-repo");
    let name = "cd".repeat(32);
    let fifo = repo.join("snapshots").join(&name);
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // A listing shows files only; asked for by name, it is refused rather than waited on.
    limited(&repo, &["snapshots"]).ok();
    let r = limited(&repo, &["cat", "snapshot", &name]).expect_code(1);
    let hits = lines_with(&r, &format!("snapshots/{name}"));
    assert_eq!(hits.len(), 1, "{}: {}", r.desc, r.stderr_str());
    assert!(hits[0].contains("not a regular file"), "{}", hits[0]);
    // A fifo as a lock file: not a file, so no lock; locking commands neither wait on it nor
    // trip over it.
    std::fs::remove_file(&fifo).unwrap();
    let lock = repo.join("locks").join(&name);
    let c = std::ffi::CString::new(lock.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    limited(&repo, &["unlock"]).ok();
    limited(&repo, &["check"]).ok();
    limited(&repo, &["snapshots"]).ok();
}

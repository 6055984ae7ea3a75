//! `check` against restic 0.14.
//!
//! a. Every repository in shared/fixtures/restic: cairn's verdict (exit code) is the one the
//!    fixtures' README gives for restic 0.14, the packs, trees and blobs it names are those the
//!    README names, and (with restic installed) every id restic names cairn names too.
//! b. Repositories made by cairn or restic, damaged on purpose in one way each: cairn exits
//!    non-zero with a line naming the damaged object, and so does restic.
//! c. `--read-data-subset`: n/t reads exactly the packs whose first id byte is n-1 modulo t,
//!    the same packs restic reads; x% and SIZE read as many packs as restic's rule gives.

mod common;

use cairn_backend::{FileType, LocalBackend};
use cairn_core::format::indexfile::IndexFile;
use cairn_core::repository::{IndexedRepository, Repository};
use cairn_core::Id;
use common::{extract_fixture, flip, noise, Run, TempDir, Tool};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FIXTURE_PW: &str = "geheim";
const PW: &str = "check-test";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The 8-hex-digit prefixes of the ids (runs of at least 8 hex digits between non-alphanumeric
/// characters) in a text.
fn ids_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let word = &text[start..i];
            if word.len() >= 8 && word.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                out.insert(word[..8].to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Lines of `text` that mention `needle`.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// Asserts that some line of stderr names all of `parts`.
fn assert_line_names(run: &Run, parts: &[&str]) {
    let err = run.stderr_str();
    assert!(
        err.lines().any(|l| parts.iter().all(|p| l.contains(p))),
        "{}: no stderr line names all of {parts:?}:\n{err}",
        run.desc
    );
}

fn assert_failed(run: &Run) {
    assert!(
        run.code.is_some_and(|c| c != 0),
        "{} should have failed, exited {:?}\nstdout:\n{}\nstderr:\n{}",
        run.desc,
        run.code,
        run.stdout_str(),
        run.stderr_str()
    );
}

fn make_writable(p: &Path) {
    if let Ok(m) = std::fs::metadata(p) {
        let mut perm = m.permissions();
        perm.set_mode(perm.mode() | 0o200);
        std::fs::set_permissions(p, perm).unwrap();
    }
}

fn pack_path(repo: &Path, id: &Id) -> PathBuf {
    let hex = id.to_hex();
    repo.join("data").join(&hex[..2]).join(hex)
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .len()
}

// ---------------------------------------------------------------------------------------------
// a. The fixtures
// ---------------------------------------------------------------------------------------------

/// What the fixtures' README says restic 0.14's check does with a repository.
struct Expect {
    tarball: &'static str,
    /// Extra arguments (the README's run).
    args: &'static [&'static str],
    code: i32,
    /// Each inner list: one stderr line must name all of these.
    errors: &'static [&'static [&'static str]],
    /// Each inner list: one stdout line must name all of these.
    hints: &'static [&'static [&'static str]],
    /// How many stdout lines contain this text.
    hint_count: Option<(&'static str, usize)>,
    /// restic takes minutes on it (retries of missing packs): do not run it there.
    restic_slow: bool,
}

const E: Expect = Expect {
    tarball: "",
    args: &[],
    code: 0,
    errors: &[],
    hints: &[],
    hint_count: None,
    restic_slow: false,
};

fn fixture_case(x: Expect) {
    let t = TempDir::new("cairn-check-fixture-");
    let dir = t.join("c");
    std::fs::create_dir(&dir).unwrap();
    extract_fixture(x.tarball, &dir);
    let repo = dir.join("repo");
    let mut args = vec!["check"];
    args.extend_from_slice(x.args);
    let cairn = Tool::cairn(&repo, FIXTURE_PW).run(&args);
    assert_eq!(
        cairn.code,
        Some(x.code),
        "{}: exit code\nstdout:\n{}\nstderr:\n{}",
        cairn.desc,
        cairn.stdout_str(),
        cairn.stderr_str()
    );
    let (out, err) = (cairn.stdout_str(), cairn.stderr_str());
    for parts in x.errors {
        assert_line_names(&cairn, parts);
    }
    for parts in x.hints {
        assert!(
            out.lines().any(|l| parts.iter().all(|p| l.contains(p))),
            "{}: no stdout line names all of {parts:?}:\n{out}",
            cairn.desc
        );
    }
    if let Some((text, n)) = x.hint_count {
        assert_eq!(lines_with(&out, text).len(), n, "{}:\n{out}", cairn.desc);
    }
    if x.code == 0 {
        assert!(out.contains("no errors were found"), "{out}");
        assert!(err.trim().is_empty(), "{}: stderr:\n{err}", cairn.desc);
    } else {
        assert!(err.contains("Fatal: repository contains errors"), "{err}");
    }

    if !common::restic_available() || x.restic_slow {
        if !common::restic_available() {
            common::loud(&format!(
                "SKIP restic half of {}: restic not installed",
                x.tarball
            ));
        }
        return;
    }
    // restic on its own fresh copy.
    let rdir = t.join("r");
    std::fs::create_dir(&rdir).unwrap();
    extract_fixture(x.tarball, &rdir);
    let restic = Tool::restic(&rdir.join("repo"), FIXTURE_PW).run(&args);
    assert_eq!(
        restic.code,
        Some(x.code),
        "restic disagrees with the README: {}\n{}",
        restic.stdout_str(),
        restic.stderr_str()
    );
    // Every object restic names, cairn names in the same stream (errors on stderr, notes and
    // hints on stdout).
    let (r_err, c_err) = (ids_in(&restic.stderr_str()), ids_in(&err));
    assert!(
        r_err.is_subset(&c_err),
        "restic names {:?} in errors, cairn does not:\nrestic:\n{}\ncairn:\n{}",
        r_err.difference(&c_err).collect::<Vec<_>>(),
        restic.stderr_str(),
        err
    );
    let (r_out, c_out) = (ids_in(&restic.stdout_str()), ids_in(&out));
    assert!(
        r_out.is_subset(&c_out),
        "restic names {:?} in hints, cairn does not:\nrestic:\n{}\ncairn:\n{}",
        r_out.difference(&c_out).collect::<Vec<_>>(),
        restic.stdout_str(),
        out
    );
}

#[test]
fn fixture_repo_index_missing() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-index-missing.tar.gz",
        code: 1,
        errors: &[&["tree c5897731", "not found"]],
        hints: &[
            &["d44cf31e", "not referenced in any index"],
            &["289ec472", "not referenced in any index"],
        ],
        ..E
    });
}

#[test]
fn fixture_repo_index_missing_blob() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-index-missing-blob.tar.gz",
        code: 1,
        errors: &[&["file \"test\" blob f2ca1bb6", "not found in index"]],
        hints: &[
            &["f885cf59", "not referenced in any index"],
            &["8f120ae0", "not referenced in any index"],
        ],
        ..E
    });
}

#[test]
fn fixture_repo_data_missing() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-data-missing.tar.gz",
        code: 1,
        errors: &[&["pack 1959b7f2", "does not exist"]],
        ..E
    });
}

#[test]
fn fixture_repo_data_missing_read_data() {
    // restic takes ~43 s here (it retries the download), so only cairn runs.
    fixture_case(Expect {
        tarball: "cmd_restic--repo-data-missing.tar.gz",
        args: &["--read-data"],
        code: 1,
        errors: &[&["pack 1959b7f2", "does not exist"]],
        restic_slow: true,
        ..E
    });
}

#[test]
fn fixture_repo_unused_data_missing() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-unused-data-missing.tar.gz",
        code: 1,
        errors: &[
            &["pack b2a0e676", "does not exist"],
            &["pack d05c8106", "does not exist"],
            &[
                "pack f6a0bdd2",
                "unexpected file size: got 0, expected 2974",
            ],
        ],
        ..E
    });
}

#[test]
fn fixture_repo_unreferenced_data() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-unreferenced-data.tar.gz",
        args: &["--read-data"],
        code: 0,
        hints: &[
            &["f885cf59", "not referenced in any index"],
            &["1 additional files were found"],
        ],
        ..E
    });
}

#[test]
fn fixture_repo_obsolete_index() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-obsolete-index.tar.gz",
        code: 0,
        hints: &[&["contained in several indexes: {392240e9 e88b8990}"]],
        ..E
    });
}

#[test]
fn fixture_repo_mixed() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-mixed.tar.gz",
        args: &["--read-data"],
        code: 0,
        hints: &[&["pack d9de8b05 contains a mix of tree and data blobs"]],
        ..E
    });
}

#[test]
fn fixture_repo_duplicates() {
    // restic 0.14 cannot report unused blobs: the check passes.
    fixture_case(Expect {
        tarball: "cmd_restic--repo-duplicates.tar.gz",
        args: &["--read-data"],
        code: 0,
        ..E
    });
}

#[test]
fn fixture_repo_duplicates_unused_blobs_are_hints() {
    // With --check-unused cairn lists the 4 unused trees and the data blob stored twice, as
    // hints: the verdict stays restic 0.14's.
    let t = TempDir::new("cairn-check-fixture-");
    extract_fixture("cmd_restic--repo-duplicates.tar.gz", t.path());
    let run = Tool::cairn(&t.join("repo"), FIXTURE_PW)
        .run(&["check", "--read-data", "--check-unused"])
        .ok();
    let out = run.stdout_str();
    assert_eq!(lines_with(&out, "unused tree blob").len(), 4, "{out}");
    assert_eq!(lines_with(&out, "unused data blob").len(), 0, "{out}");
    let dup = lines_with(&out, "is stored in several packs");
    assert_eq!(dup.len(), 1, "{out}");
    for part in ["data blob f2ca1bb6", "cf21906a", "949fc96b"] {
        assert!(dup[0].contains(part), "{out}");
    }
    // The unused trees are those of pack 41ed21f8.
    let unused: Vec<String> = lines_with(&out, "unused tree blob")
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    let repo = Repository::open(
        Arc::new(LocalBackend::new(t.join("repo"))),
        FIXTURE_PW.as_bytes(),
        None,
    )
    .unwrap();
    let mut in_pack = BTreeSet::new();
    for id in repo.list_ids(FileType::Index).unwrap() {
        for p in repo.load_index_file(&id).unwrap().packs {
            if p.id.to_hex().starts_with("41ed21f8") {
                in_pack.extend(p.blobs.iter().map(|b| b.id.to_hex()));
            }
        }
    }
    assert_eq!(
        unused.into_iter().collect::<BTreeSet<_>>(),
        in_pack,
        "{out}"
    );
}

#[test]
fn fixture_small_repo() {
    fixture_case(Expect {
        tarball: "cmd_restic--small-repo.tar.gz",
        args: &["--read-data"],
        code: 0,
        hint_count: Some(("contains a mix of tree and data blobs", 3)),
        ..E
    });
}

#[test]
fn fixture_copy_unstable_json() {
    fixture_case(Expect {
        tarball: "cmd_restic--copy-unstable-json.tar.gz",
        args: &["--read-data"],
        code: 0,
        ..E
    });
}

#[test]
fn fixture_restore_permissions_test() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-restore-permissions-test.tar.gz",
        args: &["--read-data"],
        code: 0,
        hint_count: Some(("contains a mix of tree and data blobs", 2)),
        ..E
    });
}

#[test]
fn fixture_same_timestamps() {
    fixture_case(Expect {
        tarball: "cmd_restic--repo-same-timestamps.tar.gz",
        args: &["--read-data"],
        code: 0,
        ..E
    });
}

#[test]
fn fixture_repo_layout_default() {
    fixture_case(Expect {
        tarball: "internal_backend--repo-layout-default.tar.gz",
        args: &["--read-data"],
        code: 0,
        hint_count: Some(("contains a mix of tree and data blobs", 3)),
        ..E
    });
}

#[test]
fn fixture_duplicate_packs_in_index() {
    fixture_case(Expect {
        tarball: "internal_checker--duplicate-packs-in-index-test-repo.tar.gz",
        args: &["--read-data"],
        code: 0,
        hint_count: Some(("contained in several indexes", 15)),
        ..E
    });
}

#[test]
fn fixture_duplicate_packs_in_index_with_a_damaged_index_file() {
    // README: with one index bit-flipped, check fails ("invalid data returned").
    let t = TempDir::new("cairn-check-fixture-");
    extract_fixture(
        "internal_checker--duplicate-packs-in-index-test-repo.tar.gz",
        t.path(),
    );
    let repo = t.join("repo");
    let first = std::fs::read_dir(repo.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    flip(&first, 100, 0x01);
    let name = first.file_name().unwrap().to_str().unwrap().to_string();
    let run = Tool::cairn(&repo, FIXTURE_PW).run(&["check"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr_str());
    assert_line_names(&run, &["index", &name, "invalid data returned"]);
    if common::restic_available() {
        let restic = Tool::restic(&repo, FIXTURE_PW).run(&["check"]);
        assert_eq!(restic.code, Some(1), "{}", restic.stderr_str());
        assert!(restic.stderr_str().contains(&name[..8]));
    }
}

// ---------------------------------------------------------------------------------------------
// b. Damage on purpose
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Maker {
    Cairn,
    Restic,
}

/// A small repository (one data pack of several blobs, one tree pack, one index file, one
/// snapshot) that both programs check clean with --read-data before it is damaged.
struct Damage {
    _t: TempDir,
    repo: PathBuf,
    cairn: Tool,
    restic: Tool,
    core: IndexedRepository,
    index_id: Id,
    index: IndexFile,
    snapshot: Id,
}

impl Damage {
    fn new(maker: Maker) -> Option<Damage> {
        if maker == Maker::Restic && !common::restic_available() {
            common::loud("SKIP: restic is not installed (restic-made repository)");
            return None;
        }
        let t = TempDir::new("cairn-check-damage-");
        let src = t.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        // About 1.5 MiB of noise (two or three chunks) and a few small files.
        std::fs::write(src.join("big"), noise(1, 1_600_000)).unwrap();
        std::fs::write(src.join("small"), b"small file\n").unwrap();
        std::fs::write(src.join("sub/a"), noise(2, 5000)).unwrap();
        std::fs::write(src.join("sub/b"), b"bbbb").unwrap();
        let repo = t.join("repo");
        let cairn = Tool::cairn(&repo, PW);
        let restic = Tool::restic(&repo, PW);
        let maker_tool = if maker == Maker::Cairn {
            &cairn
        } else {
            &restic
        };
        maker_tool.run(&["init"]).ok();
        maker_tool.run_in(Some(t.path()), &["backup", "src"]).ok();
        cairn.run(&["check", "--read-data"]).ok();
        if common::restic_available() {
            restic.run(&["check", "--read-data"]).ok();
        }
        // Loaded before any damage, for reading trees.
        let core = Repository::open(Arc::new(LocalBackend::new(&repo)), PW.as_bytes(), None)
            .unwrap()
            .load_index()
            .unwrap();
        let ids = core.list_ids(FileType::Index).unwrap();
        assert_eq!(ids.len(), 1, "one index file expected");
        let index = core.load_index_file(&ids[0]).unwrap();
        let snaps = core.list_ids(FileType::Snapshot).unwrap();
        assert_eq!(snaps.len(), 1);
        Some(Damage {
            _t: t,
            cairn,
            restic,
            core,
            index_id: ids[0],
            index,
            snapshot: snaps[0],
            repo,
        })
    }

    /// The pack holding blobs of a type, and its blobs in offset order.
    fn pack_of(&self, ty: &str) -> (Id, Vec<cairn_core::format::indexfile::IndexBlob>) {
        let p = self
            .index
            .packs
            .iter()
            .find(|p| p.blobs.iter().any(|b| b.ty.to_string() == ty))
            .unwrap_or_else(|| panic!("no {ty} pack"));
        let mut blobs = p.blobs.clone();
        blobs.sort_by_key(|b| b.offset);
        (p.id, blobs)
    }

    /// Replaces the index file by `idx` (sealed, stored under its new hash).
    fn replace_index(&self, idx: &IndexFile) {
        let old = self.repo.join("index").join(self.index_id.to_hex());
        make_writable(&old);
        std::fs::remove_file(&old).unwrap();
        self.core
            .save_unpacked(FileType::Index, &idx.to_json())
            .unwrap();
    }

    fn cairn_check(&self, args: &[&str]) -> Run {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        self.cairn.run(&all)
    }

    /// restic's check fails too (when restic is installed).
    fn restic_fails(&self, args: &[&str]) -> Option<Run> {
        if !common::restic_available() {
            common::loud("SKIP restic half: restic not installed");
            return None;
        }
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        let r = self.restic.run(&all);
        assert_failed(&r);
        Some(r)
    }
}

fn damage_makers() -> Vec<Maker> {
    vec![Maker::Cairn, Maker::Restic]
}

#[test]
fn damage_deleted_pack() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let (pack, _) = d.pack_of("data");
        std::fs::remove_file(pack_path(&d.repo, &pack)).unwrap();
        for args in [&[][..], &["--read-data"][..]] {
            let r = d.cairn_check(args);
            assert_eq!(r.code, Some(1), "{m:?}");
            assert_line_names(&r, &[&format!("pack {pack}"), "does not exist"]);
        }
        // Without --read-data restic only lists the packs: fast.
        let r = d.restic_fails(&[]);
        if let Some(r) = r {
            assert!(r.stderr_str().contains(&pack.to_hex()));
        }
    }
}

#[test]
fn damage_truncated_pack() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let (pack, _) = d.pack_of("data");
        let p = pack_path(&d.repo, &pack);
        let size = file_size(&p);
        make_writable(&p);
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(size / 2).unwrap();
        drop(f);
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(
            &r,
            &[
                &format!("pack {pack}"),
                &format!("unexpected file size: got {}, expected {size}", size / 2),
            ],
        );
        let r = d.cairn_check(&["--read-data"]);
        assert_eq!(r.code, Some(1));
        assert_line_names(&r, &[&format!("pack {pack}"), "beyond the end"]);
        if let Some(r) = d.restic_fails(&[]) {
            assert!(r.stderr_str().contains("unexpected file size"));
        }
    }
}

#[test]
fn damage_flipped_bit_in_a_data_blob() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let (pack, blobs) = d.pack_of("data");
        let victim = &blobs[blobs.len() / 2];
        flip(
            &pack_path(&d.repo, &pack),
            victim.offset as u64 + victim.length as u64 / 2,
            0x10,
        );
        // The index and the structure are intact: only reading the data finds it.
        d.cairn_check(&[]).ok();
        let r = d.cairn_check(&["--read-data"]);
        assert_eq!(r.code, Some(1));
        assert_line_names(
            &r,
            &[
                &format!("pack {pack}"),
                &format!("data blob {}", victim.id),
                "ciphertext verification failed",
            ],
        );
        assert_line_names(&r, &[&format!("pack {pack}"), "does not match its name"]);
        // restic 0.14 names only the pack ("Pack ID does not match").
        if let Some(r) = d.restic_fails(&["--read-data"]) {
            assert!(r.stderr_str().contains(&pack.to_hex()));
        }
    }
}

#[test]
fn damage_flipped_bit_in_a_pack_header() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let (pack, _) = d.pack_of("data");
        let p = pack_path(&d.repo, &pack);
        // Inside the encrypted header: 4 length bytes, 16 tag bytes, then header ciphertext.
        flip(&p, file_size(&p) - 4 - 16 - 5, 0x01);
        d.cairn_check(&[]).ok();
        let r = d.cairn_check(&["--read-data"]);
        assert_eq!(r.code, Some(1));
        assert_line_names(&r, &[&format!("pack {pack}"), "header", "ciphertext"]);
        // The blobs are still verified (through the index), and are fine.
        assert!(!r.stderr_str().contains("blob"), "{}", r.stderr_str());
        if let Some(r) = d.restic_fails(&["--read-data"]) {
            assert!(r.stderr_str().contains(&pack.to_hex()));
        }
    }
}

#[test]
fn damage_index_entries_swapped() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let (pack, blobs) = d.pack_of("data");
        assert!(blobs.len() >= 2, "need two data blobs");
        // The first two blobs trade places in the index: the entries still tile the pack, so
        // only reading the pack shows that they disagree with it.
        let (a, b) = (blobs[0].clone(), blobs[1].clone());
        assert_ne!(a.length, b.length);
        let mut idx = d.index.clone();
        for p in idx.packs.iter_mut().filter(|p| p.id == pack) {
            for x in p.blobs.iter_mut() {
                if x.id == a.id {
                    x.offset = b.length;
                } else if x.id == b.id {
                    x.offset = 0;
                }
            }
        }
        d.replace_index(&idx);
        d.cairn_check(&[]).ok();
        let r = d.cairn_check(&["--read-data"]);
        assert_eq!(r.code, Some(1));
        for blob in [&a, &b] {
            assert_line_names(
                &r,
                &[
                    &format!("pack {pack}"),
                    &format!("data blob {} (offset {}", blob.id, blob.offset),
                    "not contained in index or position is incorrect",
                ],
            );
        }
        assert_line_names(
            &r,
            &[
                &format!("pack {pack}"),
                &format!("data blob {} (offset {}", a.id, b.length),
                "which the pack header does not contain",
            ],
        );
        d.restic_fails(&["--read-data"]);
    }
}

#[test]
fn damage_index_entry_shifted() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let (pack, blobs) = d.pack_of("data");
        let victim = blobs[1].clone();
        let mut idx = d.index.clone();
        for p in idx.packs.iter_mut().filter(|p| p.id == pack) {
            for x in p.blobs.iter_mut().filter(|x| x.id == victim.id) {
                x.offset += 1;
            }
        }
        d.replace_index(&idx);
        // cairn sees the gap in the index alone; restic 0.14 only when reading the pack.
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(
            &r,
            &[
                &format!("pack {pack}"),
                "gaps or overlapping",
                &format!("data blob {}", victim.id),
            ],
        );
        let r = d.cairn_check(&["--read-data"]);
        assert_eq!(r.code, Some(1));
        assert_line_names(
            &r,
            &[
                &format!("pack {pack}"),
                &format!("data blob {} (offset {}", victim.id, victim.offset + 1),
                "which the pack header does not contain",
            ],
        );
        d.restic_fails(&["--read-data"]);
    }
}

#[test]
fn damage_index_entry_with_a_wrong_length() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let (pack, blobs) = d.pack_of("data");
        let last = blobs.last().unwrap().clone();
        let mut idx = d.index.clone();
        for p in idx.packs.iter_mut().filter(|p| p.id == pack) {
            for x in p.blobs.iter_mut().filter(|x| x.id == last.id) {
                x.length += 16;
            }
        }
        d.replace_index(&idx);
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(&r, &[&format!("pack {pack}"), "unexpected file size"]);
        let r = d.cairn_check(&["--read-data"]);
        assert_line_names(
            &r,
            &[
                &format!("pack {pack}"),
                &format!("data blob {}", last.id),
                "pack header does not contain",
            ],
        );
        d.restic_fails(&[]);
    }
}

#[test]
fn damage_missing_tree_pack() {
    // restic retries the missing pack for minutes: cairn only.
    let Some(d) = Damage::new(Maker::Cairn) else {
        return;
    };
    let (pack, trees) = d.pack_of("tree");
    std::fs::remove_file(pack_path(&d.repo, &pack)).unwrap();
    let r = d.cairn_check(&[]);
    assert_eq!(r.code, Some(1));
    assert_line_names(&r, &[&format!("pack {pack}"), "does not exist"]);
    // The root tree cannot be loaded, and the line says which tree, snapshot and pack.
    let root = d.core.load_snapshot(&d.snapshot).unwrap().tree;
    assert!(trees.iter().any(|t| t.id == root));
    assert_line_names(
        &r,
        &[
            &format!("tree {root}"),
            "cannot be loaded",
            &pack.short(),
            &d.snapshot.short(),
        ],
    );
}

#[test]
fn damage_tree_missing_from_the_index() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        // The tree of directory "sub".
        let root = d.core.load_snapshot(&d.snapshot).unwrap().tree;
        let sub = {
            let top = d.core.load_tree(&root).unwrap();
            let src = top.find(b"src").unwrap().subtree.unwrap();
            let t = d.core.load_tree(&src).unwrap();
            t.find(b"sub").unwrap().subtree.unwrap()
        };
        let mut idx = d.index.clone();
        for p in idx.packs.iter_mut() {
            p.blobs.retain(|b| b.id != sub);
        }
        d.replace_index(&idx);
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(
            &r,
            &[&format!("tree {sub}"), "not found in index", "/src/sub"],
        );
        if let Some(r) = d.restic_fails(&[]) {
            assert!(r.stderr_str().contains(&sub.short()));
        }
    }
}

#[test]
fn damage_data_blob_missing_from_the_index() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let blob = Id::hash(b"bbbb");
        let mut idx = d.index.clone();
        for p in idx.packs.iter_mut() {
            p.blobs.retain(|b| b.id != blob);
        }
        d.replace_index(&idx);
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(
            &r,
            &[
                &format!("file \"b\" blob {blob}"),
                "not found in index",
                "/src/sub/b",
            ],
        );
        if let Some(r) = d.restic_fails(&[]) {
            assert!(r.stderr_str().contains(&blob.to_hex()));
        }
    }
}

#[test]
fn damage_snapshot_pointing_nowhere() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let nowhere = Id::hash(b"there is no such tree");
        let json = serde_json::json!({
            "time": "2024-02-03T04:05:06.789+01:00",
            "tree": nowhere,
            "paths": ["/nowhere"],
            "hostname": "h",
        });
        let snap = d
            .core
            .save_unpacked(FileType::Snapshot, json.to_string().as_bytes())
            .unwrap();
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(
            &r,
            &[
                &format!("tree {nowhere}"),
                "not found in index",
                &format!("snapshot {}", snap.short()),
            ],
        );
        if let Some(r) = d.restic_fails(&[]) {
            assert!(r.stderr_str().contains(&nowhere.short()));
        }
    }
}

#[test]
fn damage_snapshot_file() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let p = d.repo.join("snapshots").join(d.snapshot.to_hex());
        flip(&p, 40, 0x02);
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(&r, &[&format!("snapshot {}", d.snapshot), "invalid data"]);
        d.restic_fails(&[]);
    }
}

#[test]
fn damage_index_file() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let p = d.repo.join("index").join(d.index_id.to_hex());
        flip(&p, 40, 0x02);
        let r = d.cairn_check(&[]);
        assert_eq!(r.code, Some(1));
        assert_line_names(&r, &[&format!("index {}", d.index_id), "invalid data"]);
        assert!(r.stderr_str().contains("Fatal: LoadIndex returned errors"));
        d.restic_fails(&[]);
    }
}

#[test]
fn damage_key_file() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        let key = std::fs::read_dir(d.repo.join("keys"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let name = key.file_name().unwrap().to_str().unwrap().to_string();
        // A bit inside the base64 of the sealed master key: still valid JSON and base64.
        let text = std::fs::read_to_string(&key).unwrap();
        let at = text.find("\"data\":\"").unwrap() + 20;
        flip(&key, at as u64, 0x01);
        let r = d.cairn_check(&[]);
        assert_failed(&r);
        assert_line_names(&r, &[&format!("key {name}"), "does not match its name"]);
        d.restic_fails(&[]);
    }
}

#[test]
fn damage_second_key_file() {
    // A repository with two keys, the one not used for opening damaged: cairn names it;
    // restic 0.14 does not look at key files in check (it passes if it lists the good key
    // first), so only cairn runs.
    let Some(d) = Damage::new(Maker::Cairn) else {
        return;
    };
    let pwfile = d.repo.parent().unwrap().join("pw2");
    std::fs::write(&pwfile, "second password\n").unwrap();
    d.cairn
        .run(&[
            "key",
            "add",
            "--new-password-file",
            pwfile.to_str().unwrap(),
        ])
        .ok();
    let keys: Vec<PathBuf> = std::fs::read_dir(d.repo.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 2);
    let other = keys
        .iter()
        .find(|k| k.file_name().unwrap().to_str() != Some(d.core.key_id()))
        .unwrap();
    flip(other, 10, 0x01);
    let r = d.cairn_check(&[]);
    assert_eq!(r.code, Some(1));
    let name = other.file_name().unwrap().to_str().unwrap();
    assert_line_names(&r, &[&format!("key {name}"), "does not match its name"]);
}

#[test]
fn damage_config() {
    for m in damage_makers() {
        let Some(d) = Damage::new(m) else { continue };
        flip(&d.repo.join("config"), 40, 0x04);
        let r = d.cairn_check(&[]);
        assert_failed(&r);
        assert_line_names(&r, &["config", "decryption failed"]);
        d.restic_fails(&[]);
    }
}

// ---------------------------------------------------------------------------------------------
// c. --read-data-subset
// ---------------------------------------------------------------------------------------------

/// A repository of many packs (a backup per file), every one of them damaged so that reading
/// it is seen: a bit in a blob of each data pack, a bit in the header of each tree pack.
struct ManyPacks {
    _t: TempDir,
    repo: PathBuf,
    packs: Vec<Id>,
    sizes: u64,
}

fn many_packs() -> ManyPacks {
    let t = TempDir::new("cairn-check-subset-");
    let repo = t.join("repo");
    let cairn = Tool::cairn(&repo, PW);
    cairn.run(&["init"]).ok();
    let src = t.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..10u64 {
        std::fs::write(src.join(format!("f{i}")), noise(100 + i, 3000)).unwrap();
        cairn.run_in(Some(t.path()), &["backup", "src"]).ok();
    }
    cairn.run(&["check", "--read-data"]).ok();
    let core = Repository::open(Arc::new(LocalBackend::new(&repo)), PW.as_bytes(), None).unwrap();
    let mut packs = Vec::new();
    let mut sizes = 0;
    for id in core.list_ids(FileType::Index).unwrap() {
        for p in core.load_index_file(&id).unwrap().packs {
            let path = pack_path(&repo, &p.id);
            let size = file_size(&path);
            sizes += size;
            if p.blobs[0].ty.to_string() == "data" {
                let b = &p.blobs[0];
                flip(&path, b.offset as u64 + 20, 0x01);
            } else {
                flip(&path, size - 4 - 16 - 3, 0x01);
            }
            packs.push(p.id);
        }
    }
    packs.sort();
    assert!(packs.len() >= 20, "{} packs", packs.len());
    ManyPacks {
        _t: t,
        repo,
        packs,
        sizes,
    }
}

impl ManyPacks {
    /// The packs a check run names in its errors (other ids, such as hashes, filtered out).
    fn named(&self, r: &Run) -> BTreeSet<String> {
        let known: BTreeSet<String> = self.packs.iter().map(|p| p.short()).collect();
        ids_in(&r.stderr_str())
            .intersection(&known)
            .cloned()
            .collect()
    }

    fn check(&self, tool: &Tool, subset: &str) -> Run {
        self.check_expect(tool, subset, true)
    }

    /// Every pack is damaged, so a subset fails unless it is empty (which happens by chance
    /// when no pack id falls in an n/t group).
    fn check_expect(&self, tool: &Tool, subset: &str, any_pack: bool) -> Run {
        let r = tool.run(&["check", "--read-data-subset", subset]);
        let code = if any_pack { 1 } else { 0 };
        assert_eq!(r.code, Some(code), "{}: {}", r.desc, r.stderr_str());
        r
    }
}

#[test]
fn subset_n_of_t_reads_the_packs_restic_reads() {
    let m = many_packs();
    let cairn = Tool::cairn(&m.repo, PW);
    let restic = Tool::restic(&m.repo, PW);
    let plain = cairn.run(&["check"]).ok();
    assert!(plain.stderr_str().is_empty());
    for t in [1u32, 2, 3, 5] {
        let mut union = BTreeSet::new();
        for n in 1..=t {
            let subset = format!("{n}/{t}");
            let want: BTreeSet<String> = m
                .packs
                .iter()
                .filter(|p| p.0[0] as u32 % t == n - 1)
                .map(|p| p.short())
                .collect();
            let r = m.check_expect(&cairn, &subset, !want.is_empty());
            let named = m.named(&r);
            assert_eq!(named, want, "cairn, group {subset}");
            assert!(
                r.stdout_str().contains(&format!(
                    "read group #{n} of {} data packs (out of total {} packs in {t} groups)",
                    want.len(),
                    m.packs.len()
                )),
                "{}",
                r.stdout_str()
            );
            assert!(union.is_disjoint(&named));
            union.extend(named.clone());
            if common::restic_available() {
                let rr = m.check_expect(&restic, &subset, !want.is_empty());
                assert_eq!(m.named(&rr), named, "restic vs cairn, group {subset}");
            }
        }
        assert_eq!(union.len(), m.packs.len(), "groups of {t} cover all packs");
    }
}

/// restic's count for a percentage of `n` packs.
fn count_for(n: usize, pct: f64) -> usize {
    let k = (n as f64 * (pct / 100.0)) as usize;
    if n > 0 && k < 1 {
        1
    } else {
        k
    }
}

#[test]
fn subset_percent_and_size_read_as_many_packs_as_restic() {
    let m = many_packs();
    let cairn = Tool::cairn(&m.repo, PW);
    let restic = Tool::restic(&m.repo, PW);
    let n = m.packs.len();
    let half = (m.sizes / 2).to_string();
    let cases: Vec<(String, usize)> = vec![
        ("1%".into(), count_for(n, 1.0)),
        ("25%".into(), count_for(n, 25.0)),
        ("50.5%".into(), count_for(n, 50.5)),
        ("100%".into(), n),
        ("1k".into(), count_for(n, 1024.0 / m.sizes as f64 * 100.0)),
        (
            format!("{half}b"),
            count_for(n, (m.sizes / 2) as f64 / m.sizes as f64 * 100.0),
        ),
        ("10G".into(), n),
    ];
    for (subset, want) in cases {
        let r = m.check(&cairn, &subset);
        assert_eq!(
            m.named(&r).len(),
            want,
            "cairn {subset}: {}",
            r.stderr_str()
        );
        if common::restic_available() {
            let rr = m.check(&restic, &subset);
            assert_eq!(
                m.named(&rr).len(),
                want,
                "restic {subset}: {}",
                rr.stderr_str()
            );
        }
    }
}

#[test]
fn subset_flags_are_validated_as_restic_does() {
    // Checked before the repository is opened: no repository needed.
    let t = TempDir::new("cairn-check-flags-");
    let repo = t.join("none");
    let cases: &[&[&str]] = &[
        &["--read-data", "--read-data-subset", "1/2"],
        &["--read-data-subset", "0/2"],
        &["--read-data-subset", "3/2"],
        &["--read-data-subset", "1/257"],
        &["--read-data-subset", "1/2/3"],
        &["--read-data-subset", "5"],
        &["--read-data-subset", "0%"],
        &["--read-data-subset", "100.5%"],
        &["--read-data-subset", "abc"],
        &["--read-data-subset", "0k"],
    ];
    for args in cases {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        let c = Tool::cairn(&repo, PW).run(&all);
        assert_eq!(c.code, Some(1), "{}", c.desc);
        let cl = c.stderr_str();
        assert!(cl.starts_with("Fatal: check flag"), "{}: {cl}", c.desc);
        if common::restic_available() {
            let r = Tool::restic(&repo, PW).run(&all);
            assert_eq!(r.code, Some(1), "{}", r.desc);
            let rl = r.stderr_str();
            let rl = rl.lines().find(|l| l.starts_with("Fatal:")).unwrap_or("");
            assert_eq!(cl.trim_end(), rl, "{args:?}");
        }
    }
}

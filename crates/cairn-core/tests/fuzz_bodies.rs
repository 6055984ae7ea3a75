//! Every fuzz target's body ([`cairn_core::fuzzing::TARGETS`], the same code the libFuzzer
//! targets in `fuzz/` call) run on stable Rust for a bounded time, under a memory limit: a
//! mutation loop seeded from real repository files — a restic-written repository from the
//! shared fixtures (format v1) and a format-v2 repository written here — decrypted, so that
//! the mutations reach the parsers and decoders.
//!
//! The loop runs in a child process (this test binary, re-run with `CAIRN_FUZZ_CHILD=1`)
//! whose address space is limited to [`MEM_LIMIT`], so that a decoder that allocates what
//! its input declares fails the test instead of the machine. `CAIRN_FUZZ_SECS` sets the
//! total time (default 24 s), `CAIRN_FUZZ_SEED` the random seed (printed at the start, for
//! reproducing a failure). An input that panics is saved under the target directory and
//! named in the failure.

use cairn_backend::{Backend, FileType, Handle};
use cairn_core::crypto::Key;
use cairn_core::format::keyfile::KdfParams;
use cairn_core::format::pack::{self, BlobType};
use cairn_core::format::{limits, unpacked};
use cairn_core::index::BlobLocation;
use cairn_core::packer::Compression;
use cairn_core::repository::{InitOptions, Repository};
use cairn_core::{fuzzing, Id};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Address space of the child running the bodies.
const MEM_LIMIT: u64 = 1 << 30;
/// Largest input the mutator builds.
const MAX_INPUT: usize = 1 << 20;

#[test]
fn fuzz_bodies_under_a_memory_limit() {
    if std::env::var_os("CAIRN_FUZZ_CHILD").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["fuzz_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("CAIRN_FUZZ_CHILD", "1");
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEM_LIMIT,
                rlim_max: MEM_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run the fuzz child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "fuzz bodies failed ({:?}) under a {} MiB address-space limit; output above",
        out.status,
        MEM_LIMIT >> 20
    );
    assert!(
        text.contains("fuzz bodies: done"),
        "the child did not run the loop"
    );
}

#[test]
fn fuzz_child() {
    if std::env::var_os("CAIRN_FUZZ_CHILD").is_none() {
        return;
    }
    let total = std::env::var("CAIRN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(24.0);
    let seed = std::env::var("CAIRN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("fuzz bodies: CAIRN_FUZZ_SEED={seed} CAIRN_FUZZ_SECS={total}");
    let tmp = tempfile::tempdir().unwrap();
    let seeds = Seeds::collect(tmp.path());
    println!(
        "fuzz bodies: {} seeds ({} blob seeds)",
        seeds.general.len(),
        seeds.blobs.len()
    );
    assert!(seeds.general.len() >= 10, "too few seeds");
    let per = Duration::from_secs_f64(total / fuzzing::TARGETS.len() as f64);
    let mut rng = Rng(seed | 1);
    for (name, body) in fuzzing::TARGETS {
        let corpus: Vec<&Vec<u8>> = if *name == "blob" {
            seeds.blobs.iter().chain(&seeds.general).collect()
        } else {
            seeds.general.iter().collect()
        };
        // Every seed once as it is, then mutations until the time is up.
        let start = Instant::now();
        let mut runs = 0u64;
        for s in &corpus {
            run_one(name, *body, s);
            runs += 1;
        }
        while start.elapsed() < per {
            let base = corpus[rng.below(corpus.len())];
            let input = mutate(&mut rng, base, &corpus);
            run_one(name, *body, &input);
            runs += 1;
        }
        println!("fuzz bodies: {name}: {runs} runs");
    }
    println!("fuzz bodies: done");
}

fn run_one(name: &str, body: fn(&[u8]), input: &[u8]) {
    let r = std::panic::catch_unwind(|| body(input));
    if r.is_err() {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{}", Id::hash(input).short()));
        let _ = std::fs::write(&path, input);
        panic!(
            "fuzz target {name} panicked; input saved to {} (reproduce: cairn_core::fuzzing::{name})",
            path.display()
        );
    }
}

/// xorshift64*: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u32; 12] = [
    0,
    1,
    0x7f,
    0xff,
    0x100,
    0xffff,
    0x10000,
    8 << 20,
    (8 << 20) + 1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// One to eight stacked mutations of `base`: bit flips, random and boundary bytes and
/// 32-bit values, insertions, deletions, duplications, splices with another seed, cuts.
fn mutate(rng: &mut Rng, base: &[u8], corpus: &[&Vec<u8>]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(8) {
        let n = v.len();
        match rng.below(10) {
            0 if n > 0 => {
                let i = rng.below(n);
                v[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                v[i] = rng.next() as u8;
            }
            2 if n > 0 => {
                let i = rng.below(n);
                v[i] = [0u8, 0xff, 0x7f, 0x80, b'"', b'\\', b'{', b'}', b'[', b','][rng.below(10)];
            }
            3 if n >= 4 => {
                let i = rng.below(n - 3);
                let val = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if rng.below(2) == 0 {
                    val.to_le_bytes()
                } else {
                    val.to_be_bytes()
                };
                v[i..i + 4].copy_from_slice(&bytes);
            }
            4 => {
                let i = rng.below(n + 1);
                let k = 1 + rng.below(16);
                let ins: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
                v.splice(i..i, ins);
            }
            5 if n > 0 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(64));
                v.drain(i..i + k);
            }
            6 if n > 0 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(256));
                let dup = v[i..i + k].to_vec();
                let at = rng.below(n + 1);
                v.splice(at..at, dup);
            }
            7 => {
                let other = corpus[rng.below(corpus.len())];
                let cut = rng.below(n + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            8 if n > 0 => {
                v.truncate(rng.below(n));
            }
            _ => {
                // A number in text: JSON lengths, sizes, times.
                let i = rng.below(n + 1);
                let s = INTERESTING[rng.below(INTERESTING.len())].to_string();
                v.splice(i..i, s.into_bytes());
            }
        }
        v.truncate(MAX_INPUT);
    }
    v
}

/// Inputs to start from.
struct Seeds {
    /// Decrypted file contents, decoded JSON, pack headers, blob plaintexts, sealed forms.
    general: Vec<Vec<u8>>,
    /// Inputs in the `blob` target's layout (type byte, declared length, plaintext).
    blobs: Vec<Vec<u8>>,
}

impl Seeds {
    fn collect(tmp: &Path) -> Seeds {
        let mut s = Seeds {
            general: vec![
                br#"{"time":"2015-05-04T22:19:14.185427263+02:00","exclusive":false,"hostname":"h","username":"u","pid":1}"#.to_vec(),
                br#"{"nodes":[]}"#.to_vec(),
                b"\"a\\u00ff\\x00\"".to_vec(),
                b"2023-01-02T03:04:05.123456789+01:00".to_vec(),
            ],
            blobs: Vec::new(),
        };
        // A restic-written repository (format v1).
        match extract_fixture(tmp) {
            Some(dir) => {
                let be: Arc<dyn Backend> =
                    Arc::from(cairn_backend::open(&dir.to_string_lossy()).unwrap());
                let repo = Repository::open(be, b"geheim", None).expect("open the fixture");
                s.add_repo(&repo);
            }
            None => println!("fuzz bodies: NOTE: restic fixtures not found; v2 seeds only"),
        }
        // A format-v2 repository (compressed files and blobs) written here.
        let dir = tmp.join("v2");
        let be: Arc<dyn Backend> = Arc::from(cairn_backend::open(&dir.to_string_lossy()).unwrap());
        let repo = Repository::init(
            be,
            b"pw",
            InitOptions {
                version: 2,
                kdf: KdfParams {
                    n: 1024,
                    r: 1,
                    p: 1,
                },
                polynomial: None,
                username: "fuzz".into(),
                hostname: "fuzz".into(),
            },
        )
        .unwrap()
        .load_index()
        .unwrap();
        let w = repo.blob_writer(Compression::Auto);
        let text = b"all work and no play makes jack a dull boy\n".repeat(200);
        w.save(BlobType::Data, Id::hash(&text), &text).unwrap();
        let small = b"tiny".to_vec();
        w.save(BlobType::Data, Id::hash(&small), &small).unwrap();
        let trees: Vec<Vec<u8>> = s
            .general
            .iter()
            .filter(|g| g.starts_with(b"{\"nodes\":"))
            .cloned()
            .collect();
        for t in &trees {
            w.save(BlobType::Tree, Id::hash(t), t).unwrap();
        }
        w.finish().unwrap();
        let snaps: Vec<Vec<u8>> = s
            .general
            .iter()
            .filter(|g| g.starts_with(b"{\"time\":") && g.windows(6).any(|w| w == b"\"tree\""))
            .cloned()
            .collect();
        for j in &snaps {
            repo.save_unpacked(FileType::Snapshot, j).unwrap();
        }
        let lock = cairn_core::lock::RepoLock::acquire(
            &repo,
            true,
            Duration::ZERO,
            &cairn_core::lock::Quiet,
        )
        .unwrap();
        s.add_repo(&repo);
        lock.release().unwrap();

        // zstd bombs (8 GiB of one byte, with and without a declared size, with and without
        // restic's version byte): the decoders must stop at their ceilings.
        for declare in [false, true] {
            let b = rle_bomb(8 << 30, b' ', declare);
            self_push_bomb(&mut s, b);
        }

        // The sealed forms for the targets that decrypt with the fuzzing key.
        let key = fuzzing::fuzz_key();
        let sealed: Vec<Vec<u8>> = s
            .general
            .iter()
            .filter(|g| g.len() < 64 * 1024)
            .map(|g| key.seal(g))
            .collect();
        s.general.extend(sealed);
        s.general.sort();
        s.general.dedup();
        s
    }

    /// Every file of `repo`, decrypted: unpacked files (as stored after decryption, and
    /// decoded), keys and config, pack headers, and every blob (stored plaintext and decoded).
    fn add_repo(&mut self, repo: &Repository) {
        let be = &repo.backend();
        let key: &Key = repo.key();
        for f in be.list(FileType::Key).unwrap() {
            self.general
                .push(be.load(&Handle::new(FileType::Key, &f.name), 0, 0).unwrap());
        }
        if let Ok(raw) = be.load(&Handle::config(), 0, 0) {
            self.general.push(key.open(&raw).unwrap());
        }
        for kind in [FileType::Snapshot, FileType::Index, FileType::Lock] {
            for f in be.list(kind).unwrap() {
                let raw = be.load(&Handle::new(kind, &f.name), 0, 0).unwrap();
                let plain = key.open(&raw).unwrap();
                if plain.first() == Some(&2) {
                    self.general.push(plain[1..].to_vec());
                }
                self.general
                    .push(unpacked::decode_plain_as(kind, repo.version(), plain.clone()).unwrap());
                self.general.push(plain);
            }
        }
        for f in be.list(FileType::Data).unwrap() {
            let h = Handle::new(FileType::Data, &f.name);
            let raw = be.load(&h, 0, 0).unwrap();
            let Ok(Ok(blobs)) = pack::parse_header_from_tail(key, &raw, raw.len() as u64) else {
                continue;
            };
            self.general.push(pack::header_plain(&blobs));
            for b in blobs {
                let sealed = &raw[b.offset as usize..(b.offset + b.length) as usize];
                let stored = key.open(sealed).unwrap();
                let loc = BlobLocation {
                    pack: Id::from_hex(&f.name).unwrap(),
                    blob: b,
                };
                let plain = repo.open_blob(&loc, sealed).unwrap();
                assert!(limits::check_blob(&b).is_ok());
                let ty = u8::from(b.ty == BlobType::Tree) | if b.is_compressed() { 2 } else { 0 };
                let mut seed = vec![ty];
                seed.extend_from_slice(&b.uncompressed_length.to_le_bytes());
                seed.extend_from_slice(&stored[..stored.len().min(MAX_INPUT)]);
                self.blobs.push(seed);
                if b.is_compressed() {
                    self.general.push(stored);
                }
                if plain.len() < 256 * 1024 {
                    self.general.push(plain);
                }
            }
        }
    }
}

/// restic's `repo-mixed` fixture extracted under `tmp`, if the shared fixtures are there.
fn extract_fixture(tmp: &Path) -> Option<PathBuf> {
    let shared = std::env::var_os("CAIRN_SHARED")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let tarball = shared.join("fixtures/restic/cmd_restic--repo-mixed.tar.gz");
    if !tarball.exists() {
        return None;
    }
    let dest = tmp.join("fixture");
    std::fs::create_dir_all(&dest).unwrap();
    let ok = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("--no-same-owner")
        .arg("-C")
        .arg(&dest)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&dest)
        .status();
    ok.then(|| dest.join("repo"))
}

fn self_push_bomb(s: &mut Seeds, frame: Vec<u8>) {
    let mut v2 = vec![2u8];
    v2.extend_from_slice(&frame);
    let mut blob = vec![2u8];
    blob.extend_from_slice(&u32::MAX.to_le_bytes());
    blob.extend_from_slice(&frame);
    s.blobs.push(blob);
    let mut blob = vec![3u8];
    blob.extend_from_slice(&((64u32 << 20) - 1).to_le_bytes());
    blob.extend_from_slice(&frame);
    s.blobs.push(blob);
    s.general.push(frame);
    s.general.push(v2);
}

/// A zstd frame of `n` bytes of `fill` made of 128 KiB RLE blocks (4 bytes each).
fn rle_bomb(n: u64, fill: u8, declare: bool) -> Vec<u8> {
    const BLOCK: u64 = 128 * 1024;
    let mut out = 0xFD2F_B528u32.to_le_bytes().to_vec();
    out.push(if declare { 0xC0 } else { 0x00 });
    out.push((17 - 10) << 3);
    if declare {
        out.extend_from_slice(&n.to_le_bytes());
    }
    let mut left = n;
    loop {
        let k = left.min(BLOCK);
        left -= k;
        let h = u32::from(left == 0) | (1 << 1) | ((k as u32) << 3);
        out.extend_from_slice(&h.to_le_bytes()[..3]);
        out.push(fill);
        if left == 0 {
            return out;
        }
    }
}

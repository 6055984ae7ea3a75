//! cairn-mount: a repository's snapshots as a read-only FUSE filesystem (`cairn mount`).
//!
//! The layout above the snapshots is restic's (`ids/`, `snapshots/`, `hosts/`, `tags/`, with
//! `latest` links, shaped by `--path-template` and `--time-template`). Inside a snapshot,
//! trees are read through the core ([`IndexedRepository::load_tree`]) when a directory is
//! looked into, and kept in a bounded cache; file contents come through a bounded blob cache
//! ([`cairn_core::blobcache`]) with read-ahead on background threads.

mod fs;
pub mod layout;
mod reader;

use anyhow::Context;
use cairn_core::snapshots::SnapshotFilter;
use cairn_core::IndexedRepository;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What `cairn mount` was asked for.
#[derive(Clone)]
pub struct MountOptions {
    pub filter: SnapshotFilter,
    /// restic's `--path-template`s ([`layout::DEFAULT_PATH_TEMPLATES`] when none are given).
    pub path_templates: Vec<String>,
    /// Go layout for the `%T` placeholder.
    pub time_template: String,
    /// Report uid/gid 0 for everything (`--owner-root`).
    pub owner_root: bool,
    pub allow_other: bool,
    /// With `allow_other`, let everyone read everything (no kernel permission checks).
    pub no_default_permissions: bool,
    /// Bytes of decrypted blobs kept in memory.
    pub blob_cache_bytes: usize,
    /// Threads that serve reads (read-ahead gets half as many).
    pub read_threads: usize,
    /// Shown as the mount's source (`cairn:<repository id>`).
    pub fs_name: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            filter: SnapshotFilter::default(),
            path_templates: layout::DEFAULT_PATH_TEMPLATES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            time_template: layout::DEFAULT_TIME_TEMPLATE.into(),
            owner_root: false,
            allow_other: false,
            no_default_permissions: false,
            blob_cache_bytes: 64 << 20,
            read_threads: 4,
            fs_name: "cairn".into(),
        }
    }
}

/// Refuses a mount point that is not an existing, empty directory, or that overlaps the
/// local repository at `local_repo` (the filesystem would then read its own repository
/// through itself and hang).
pub fn check_mountpoint(mnt: &Path, local_repo: Option<&Path>) -> anyhow::Result<()> {
    let md = std::fs::metadata(mnt).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("mountpoint {} does not exist", mnt.display())
        }
        _ => anyhow::anyhow!("mountpoint {} is inaccessible: {e}", mnt.display()),
    })?;
    if !md.is_dir() {
        anyhow::bail!("mountpoint {} is not a directory", mnt.display());
    }
    let mut entries = std::fs::read_dir(mnt)
        .with_context(|| format!("mountpoint {} cannot be listed", mnt.display()))?;
    if entries.next().is_some() {
        anyhow::bail!("mountpoint {} is not empty", mnt.display());
    }
    if let Some(repo) = local_repo {
        let resolve = |p: &Path| -> PathBuf {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
        };
        let (r, m) = (resolve(repo), resolve(mnt));
        if m.starts_with(&r) || r.starts_with(&m) {
            anyhow::bail!(
                "mountpoint {} overlaps the local repository {}; refusing to mount (it would read its own repository through itself)",
                m.display(),
                r.display()
            );
        }
    }
    Ok(())
}

/// Mounts the snapshots of `repo` at `mnt` and serves them until the filesystem is unmounted
/// or `stop` is set (then it unmounts it). `log` receives one line per problem (unreadable
/// trees or blobs, left-out names); the reader sees EIO or a missing entry.
pub fn mount(
    repo: IndexedRepository,
    mnt: &Path,
    opts: MountOptions,
    stop: &'static AtomicBool,
    log: Box<dyn Fn(&str) + Send + Sync>,
) -> anyhow::Result<()> {
    use fuser::MountOption as O;
    if opts.time_template.is_empty() {
        anyhow::bail!("time template string cannot be empty");
    }
    if opts.time_template.starts_with('/') || opts.time_template.ends_with('/') {
        anyhow::bail!("time template string cannot start or end with '/'");
    }
    let shared = Arc::new(reader::Shared::new(repo, opts.blob_cache_bytes, log));
    let mut options = vec![
        O::RO,
        O::FSName(opts.fs_name.clone()),
        O::Subtype("cairn".into()),
        O::NoDev,
        O::NoSuid,
    ];
    if opts.allow_other {
        options.push(O::AllowOther);
        if !opts.no_default_permissions {
            options.push(O::DefaultPermissions);
        }
    }
    let mut fs = fs::CairnFs::new(shared, opts);
    // The snapshot list is read before the mount appears, so a failure is reported at once.
    fs.refresh()?;
    let mut session = fuser::Session::new(fs, mnt, &options)
        .with_context(|| format!("mounting at {}", mnt.display()))?;
    let mut unmounter = session.unmount_callable();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let mnt = mnt.to_path_buf();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if stop.load(Ordering::SeqCst) {
                    let _ = unmounter.unmount();
                    // Busy (a shell sits in it): detach it, so it goes once it is left.
                    std::thread::sleep(Duration::from_millis(500));
                    if !done.load(Ordering::SeqCst) {
                        lazy_unmount(&mnt);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let res = session.run();
    done.store(true, Ordering::SeqCst);
    drop(session);
    let _ = watcher.join();
    res.with_context(|| format!("serving {}", mnt.display()))
}

fn lazy_unmount(mnt: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(mnt.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: a valid C string; umount2 only reads it.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return;
    }
    // Not root: fusermount is setuid and may unmount what this user mounted.
    for prog in ["fusermount3", "fusermount"] {
        let ok = std::process::Command::new(prog)
            .args(["-u", "-z"])
            .arg(mnt)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
    }
}

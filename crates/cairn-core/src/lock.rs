//! Repository locks with restic's protocol, so cairn and restic can share a repository.
//!
//! A lock is an encrypted JSON file in `locks/`. Shared (non-exclusive) locks coexist; an
//! exclusive lock (prune, forget, repair) excludes every other lock. Taking one is: look for
//! conflicting locks, write ours, wait 200 ms (so that two processes racing each see the
//! other's file), look again. A held lock is re-written every 5 minutes; one older than 30
//! minutes, or one from this host whose process is gone, is stale.
//!
//! Where cairn differs from restic: a lock from this host whose process no longer exists is
//! provably dead, so cairn removes it by itself instead of refusing until someone runs
//! `unlock` (restic's most common locking complaint). A lock that is merely old, or from
//! another host, still blocks: its owner may only be slow, and ignoring it could let a prune
//! delete data a running backup relies on.

use crate::format::gotime::GoTime;
use crate::format::unpacked;
use crate::repository::Repository;
use crate::{crypto::Key, Id};
use anyhow::Context;
use cairn_backend::{Backend, FileType, Handle};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long a lock may go without refresh before others may call it stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a held lock is re-written.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// Pause between writing our lock and looking for others again.
const SETTLE: Duration = Duration::from_millis(200);

/// A lock file's content, as restic writes it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct LockInfo {
    #[serde(with = "crate::format::snapshot::gotime_serde")]
    pub time: GoTime,
    pub exclusive: bool,
    pub hostname: String,
    pub username: String,
    pub pid: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl LockInfo {
    /// restic's rule: not refreshed for 30 minutes, or made on this host by a process that
    /// no longer exists.
    pub fn is_stale(&self, hostname: &str) -> bool {
        self.is_old() || self.is_dead_local(hostname)
    }

    fn is_old(&self) -> bool {
        let age = chrono::Local::now().fixed_offset() - self.time;
        age.to_std().is_ok_and(|a| a > STALE_AFTER)
    }

    /// Made on this host by a process that is gone.
    pub fn is_dead_local(&self, hostname: &str) -> bool {
        self.hostname == hostname && !process_exists(self.pid)
    }

    /// Who holds it and since when, as restic describes a lock.
    pub fn describe(&self, id: &Id) -> String {
        let age = (chrono::Local::now().fixed_offset() - self.time)
            .to_std()
            .unwrap_or_default();
        format!(
            "PID {} on {} by {} (UID {}, GID {}), created at {} ({} ago), storage ID {}",
            self.pid,
            self.hostname,
            self.username,
            self.uid,
            self.gid,
            self.time.format("%Y-%m-%d %H:%M:%S"),
            humantime(age),
            id.short()
        )
    }
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

fn process_exists(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks whether the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A lock file whose content cannot be read: bigger than [`crate::format::limits::MAX_LOCK_FILE`],
/// failing decryption, not decompressing, or not a lock's JSON.
///
/// An unreadable lock is reported (with [`Event::LockUnreadable`]) and otherwise ignored
/// when taking a lock, as restic 0.14 does, so that one bad file cannot stop every command;
/// `unlock` removes it. Ignoring it gives nothing to whoever planted it: writing to `locks/`
/// already lets them delete every real lock. A lock that merely cannot be *fetched* (an I/O
/// error of the store) is not unreadable: that error fails the command instead, since the
/// file may be a live exclusive lock.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// Whether an error from reading a lock is an [`Unreadable`] lock.
pub fn is_unreadable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Unreadable>())
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("repository is already locked {}by {}", if .info.exclusive { "exclusively " } else { "" }, .info.describe(.id))]
    Conflict { id: Id, info: LockInfo },
}

/// Everything a lock needs to write and remove its file, independent of the repository
/// value (the refresher thread outlives borrows of it).
#[derive(Clone)]
struct Store {
    backend: Arc<dyn Backend>,
    key: Key,
    version: u32,
}

impl Store {
    fn save(&self, info: &LockInfo) -> anyhow::Result<Id> {
        let json = serde_json::to_vec(info)?;
        let sealed = unpacked::encode(self.version, &self.key, &json)?;
        let id = Id::hash(&sealed);
        self.backend
            .save(&Handle::new(FileType::Lock, id.to_hex()), &sealed)
            .map_err(anyhow::Error::new)
            .context("writing lock file")?;
        Ok(id)
    }

    fn remove(&self, id: &Id) -> anyhow::Result<()> {
        match self
            .backend
            .remove(&Handle::new(FileType::Lock, id.to_hex()))
        {
            Ok(()) | Err(cairn_backend::BackendError::NotFound(_)) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context("removing lock file")),
        }
    }

    /// Reads one lock. Backend errors (not found included) are returned as such; anything
    /// wrong with the content (too big, undecryptable, undecodable, not a lock) is an
    /// [`Unreadable`] error naming the file.
    fn load(&self, id: &Id) -> anyhow::Result<LockInfo> {
        let h = Handle::new(FileType::Lock, id.to_hex());
        let raw = match crate::format::limits::load_bounded(&*self.backend, &h) {
            Ok(raw) => raw,
            Err(e) if e.backend_error().is_some() => return Err(e.into()),
            // Too big to be a lock.
            Err(e) => return Err(Unreadable(format!("{e:#}")).into()),
        };
        let info = self
            .key
            .open(&raw)
            .map_err(crate::Error::from)
            .and_then(|plain| parse_plain(self.version, plain));
        info.map_err(|e| Unreadable(format!("{h}: {e:#}")).into())
    }

    fn list(&self) -> anyhow::Result<Vec<Id>> {
        Ok(self
            .backend
            .list(FileType::Lock)
            .map_err(anyhow::Error::new)?
            .into_iter()
            .filter_map(|f| Id::from_hex(&f.name).ok())
            .collect())
    }
}

/// Decodes a decrypted lock file: within [`crate::format::limits::MAX_LOCK_FILE`] once
/// decompressed, and a lock's JSON.
pub fn parse_plain(version: u32, plain: Vec<u8>) -> crate::Result<LockInfo> {
    let json = unpacked::decode_plain_as(FileType::Lock, version, plain)?;
    Ok(serde_json::from_slice(&json).context("not a lock")?)
}

/// This machine's name, as restic records it in locks (not the `--host` of snapshots).
pub use crate::util::host::hostname;

pub use crate::observe::Quiet;
use crate::observe::{Event, Observer};

/// A lock held on a repository; refreshed in the background, removed on drop.
pub struct RepoLock {
    store: Store,
    current: Arc<std::sync::Mutex<Option<Id>>>,
    stop: Option<crossbeam_channel::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl RepoLock {
    /// Takes a shared or exclusive lock, retrying (with growing pauses) for up to `retry`.
    pub fn acquire(
        repo: &Repository,
        exclusive: bool,
        retry: Duration,
        observer: &dyn Observer,
    ) -> crate::Result<RepoLock> {
        let store = Store {
            backend: repo.backend().clone(),
            key: repo.key().clone(),
            version: repo.version(),
        };
        let deadline = std::time::Instant::now() + retry;
        let mut pause = Duration::from_secs(5).min(retry.max(Duration::from_millis(1)));
        loop {
            match try_lock(&store, exclusive, observer)? {
                Ok(id) => return Ok(RepoLock::hold(store, id)),
                Err(conflict) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return Err(conflict.into());
                    }
                    let left = deadline - now;
                    observer.event(Event::LockWaiting {
                        error: &conflict,
                        left,
                    });
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    fn hold(store: Store, id: Id) -> RepoLock {
        let current = Arc::new(std::sync::Mutex::new(Some(id)));
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let refresher = {
            let (store, current) = (store.clone(), current.clone());
            std::thread::Builder::new()
                .name("lock-refresh".into())
                .spawn(move || refresh_loop(&store, &current, &stopped))
                .ok()
        };
        RepoLock {
            store,
            current,
            stop: Some(stop),
            refresher,
        }
    }

    /// The lock file's current id.
    pub fn id(&self) -> Option<Id> {
        *crate::packer::lock(&self.current)
    }

    /// Stops refreshing and removes the lock file.
    pub fn release(mut self) -> crate::Result<()> {
        self.stop_refresh();
        match crate::packer::lock(&self.current).take() {
            Some(id) => Ok(self.store.remove(&id)?),
            None => Ok(()),
        }
    }

    fn stop_refresh(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        self.stop_refresh();
        if let Some(id) = crate::packer::lock(&self.current).take() {
            let _ = self.store.remove(&id);
        }
    }
}

/// Re-writes the lock every [`REFRESH_EVERY`] (new file first, then the old one removed, so
/// there is never a moment without a lock) until told to stop.
fn refresh_loop(
    store: &Store,
    current: &std::sync::Mutex<Option<Id>>,
    stopped: &crossbeam_channel::Receiver<()>,
) {
    let every = refresh_interval();
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        let mut cur = crate::packer::lock(current);
        let Some(old) = *cur else { return };
        let Ok(mut info) = store.load(&old) else {
            continue;
        };
        info.time = chrono::Local::now().fixed_offset();
        if let Ok(new) = store.save(&info) {
            *cur = Some(new);
            let _ = store.remove(&old);
        }
    }
}

/// `CAIRN_LOCK_REFRESH_SECS` lets tests watch a refresh happen.
fn refresh_interval() -> Duration {
    std::env::var("CAIRN_LOCK_REFRESH_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(REFRESH_EVERY)
}

/// One attempt: Ok(Ok(id)) when locked, Ok(Err(conflict)) when someone holds a conflicting
/// lock, Err for failures to talk to the repository.
fn try_lock(
    store: &Store,
    exclusive: bool,
    observer: &dyn Observer,
) -> anyhow::Result<Result<Id, LockError>> {
    let host = hostname();
    if let Err(c) = find_conflict(store, exclusive, None, &host, observer)? {
        return Ok(Err(c));
    }
    // SAFETY: getuid/getgid/getpid have no preconditions.
    let (uid, gid, pid) = unsafe { (libc::getuid(), libc::getgid(), libc::getpid()) };
    let info = LockInfo {
        time: chrono::Local::now().fixed_offset(),
        exclusive,
        hostname: host.clone(),
        username: crate::archiver::metadata::NameCache::default().user(uid),
        pid: pid as i64,
        uid,
        gid,
    };
    let id = store.save(&info)?;
    // Two processes racing: each writes, then looks. The later look sees the earlier write,
    // so at most one wins, provided listings are current; where that is not certain, give
    // the storage a moment (restic's 200 ms).
    if !store.backend.lists_after_write() {
        std::thread::sleep(SETTLE);
    }
    match find_conflict(store, exclusive, Some(&id), &host, observer) {
        Ok(Ok(())) => Ok(Ok(id)),
        Ok(Err(c)) => {
            store.remove(&id)?;
            Ok(Err(c))
        }
        Err(e) => {
            let _ = store.remove(&id);
            Err(e)
        }
    }
}

fn find_conflict(
    store: &Store,
    exclusive: bool,
    ours: Option<&Id>,
    host: &str,
    observer: &dyn Observer,
) -> anyhow::Result<Result<(), LockError>> {
    for id in store.list().context("listing locks")? {
        if Some(&id) == ours {
            continue;
        }
        let info = match store.load(&id) {
            Ok(i) => i,
            // Gone meanwhile (released): does not block.
            Err(e) if is_not_found(&e) => continue,
            // Unreadable: reported, and does not block (see [`Unreadable`]).
            Err(e) if is_unreadable(&e) => {
                observer.event(Event::LockUnreadable { id: &id, error: &e });
                continue;
            }
            Err(e) => return Err(e.context(format!("reading lock {}", id.short()))),
        };
        if !(exclusive || info.exclusive) {
            continue;
        }
        if info.is_dead_local(host) {
            store.remove(&id)?;
            observer.event(Event::LockRemovedDead {
                id: &id,
                info: &info,
            });
            continue;
        }
        return Ok(Err(LockError::Conflict { id, info }));
    }
    Ok(Ok(()))
}

fn is_not_found(e: &anyhow::Error) -> bool {
    matches!(
        crate::error::backend_error_in(e),
        Some(cairn_backend::BackendError::NotFound(_))
    )
}

/// `unlock`: removes stale and unreadable locks (or all, with `all`); returns how many were
/// removed. `observer` hears of each unreadable one.
pub fn remove_locks(repo: &Repository, all: bool, observer: &dyn Observer) -> crate::Result<usize> {
    let store = Store {
        backend: repo.backend().clone(),
        key: repo.key().clone(),
        version: repo.version(),
    };
    let host = hostname();
    let mut n = 0;
    for id in store.list().context("listing locks")? {
        let remove = all
            || match store.load(&id) {
                Ok(info) => info.is_stale(&host),
                Err(e) if is_unreadable(&e) => {
                    observer.event(Event::LockUnreadable { id: &id, error: &e });
                    true
                }
                // Gone meanwhile, or not fetched: left alone.
                Err(_) => false,
            };
        if remove {
            store.remove(&id)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Every lock in the repository that can be read (for `list locks` / `cat lock`).
pub fn list_locks(repo: &Repository) -> crate::Result<Vec<(Id, LockInfo)>> {
    let store = Store {
        backend: repo.backend().clone(),
        key: repo.key().clone(),
        version: repo.version(),
    };
    Ok(store
        .list()?
        .into_iter()
        .filter_map(|id| store.load(&id).ok().map(|i| (id, i)))
        .collect())
}

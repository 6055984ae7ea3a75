//! A local cache of a remote repository's metadata, in restic's layout, so that listing
//! snapshots, browsing them and a backup with nothing new do not download index files and
//! trees again.
//!
//! Layout (restic's): `<base>/CACHEDIR.TAG`, and per repository `<base>/<repo id>/version`
//! (`1`) with `snapshots/xx/<id>`, `index/xx/<id>` and `data/xx/<id>` (packs holding trees).
//! The directory's mtime records its last use, for `cache --cleanup`.
//!
//! The cache is an optimisation and never an authority: every file in it is a copy of an
//! immutable, content-addressed file; whole files are checked against their names when read,
//! blobs from cached packs are authenticated by the repository as any other; a damaged copy
//! is dropped ([`Backend::evict`]) and fetched again. Files are written under a temporary name
//! and renamed, so a crash leaves no half-written copy. Failing to write the cache (full
//! disk, read-only home) slows cairn down but never fails a command.

use crate::{Backend, BackendError, FileInfo, FileType, Handle, Result, Staged};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by cairn.\n\
# For information about cache directory tags, see:\n\
#\thttps://bford.info/cachedir/\n";

pub struct CacheBackend {
    inner: Arc<dyn Backend>,
    dir: PathBuf,
    warned: AtomicBool,
}

impl CacheBackend {
    /// The cache for repository `repo_id` under `base`, created if needed.
    pub fn new(
        inner: Arc<dyn Backend>,
        base: &Path,
        repo_id: &str,
    ) -> std::io::Result<CacheBackend> {
        std::fs::create_dir_all(base)?;
        let tag = base.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(&tag, TAG.as_bytes())?;
        }
        let dir = base.join(repo_id);
        std::fs::create_dir_all(&dir)?;
        let version = dir.join("version");
        if !version.exists() {
            write_atomic(&version, b"1")?;
        }
        // Last use, for `cache --cleanup`.
        let now = std::time::SystemTime::now();
        if let Ok(f) = std::fs::File::open(&dir) {
            let _ = f.set_modified(now);
        }
        Ok(CacheBackend {
            inner,
            dir,
            warned: AtomicBool::new(false),
        })
    }

    fn path(&self, h: &Handle) -> Option<PathBuf> {
        let sub = match h.kind {
            FileType::Snapshot => "snapshots",
            FileType::Index => "index",
            FileType::Data => "data",
            _ => return None,
        };
        if h.name.len() < 2 || !h.name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.dir.join(sub).join(&h.name[..2]).join(&h.name))
    }

    /// Snapshots and index files are always cached; packs only when asked to.
    fn always(h: &Handle) -> bool {
        matches!(h.kind, FileType::Snapshot | FileType::Index)
    }

    /// A range of a cached copy, or None when there is none (or it cannot be read).
    fn read(&self, h: &Handle, offset: u64, length: u64) -> Option<Vec<u8>> {
        let path = self.path(h)?;
        let mut f = std::fs::File::open(&path).ok()?;
        let mut out = Vec::new();
        if offset == 0 && length == 0 {
            f.read_to_end(&mut out).ok()?;
            if h.name.len() == 64 && hex::encode(Sha256::digest(&out)) != h.name {
                let _ = std::fs::remove_file(&path);
                return None;
            }
            return Some(out);
        }
        f.seek(SeekFrom::Start(offset)).ok()?;
        if length == 0 {
            f.read_to_end(&mut out).ok()?;
        } else {
            out.resize(length as usize, 0);
            f.read_exact(&mut out).ok()?;
        }
        Some(out)
    }

    fn store(&self, h: &Handle, data: &[u8]) {
        let Some(path) = self.path(h) else { return };
        let res = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|_| write_atomic(&path, data));
        if let Err(e) = res {
            if !self.warned.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "warning: cannot write to the cache {}: {e} (continuing without it)",
                    self.dir.display()
                );
            }
        }
    }

    /// Fetches the whole file, keeps a copy, and returns the range asked for.
    fn fetch(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        let whole = self.inner.load(h, 0, 0)?;
        self.store(h, &whole);
        slice(h, whole, offset, length)
    }

    /// Drops cached copies of `kind` that the repository no longer has.
    fn forget_missing(&self, kind: FileType, present: &[FileInfo]) {
        let Some(probe) = self.path(&Handle::new(kind, "00")) else {
            return;
        };
        let Some(root) = probe.parent().and_then(Path::parent) else {
            return;
        };
        let Ok(dirs) = std::fs::read_dir(root) else {
            return;
        };
        let keep: std::collections::HashSet<&str> =
            present.iter().map(|f| f.name.as_str()).collect();
        for d in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                if !keep.contains(name.as_ref()) {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }
}

fn slice(h: &Handle, mut whole: Vec<u8>, offset: u64, length: u64) -> Result<Vec<u8>> {
    let end = if length == 0 {
        whole.len() as u64
    } else {
        offset + length
    };
    if offset > whole.len() as u64 || end > whole.len() as u64 {
        return Err(BackendError::Io {
            handle: h.to_string(),
            err: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "range {offset}+{length} beyond the file's {} bytes",
                    whole.len()
                ),
            ),
        });
    }
    if offset == 0 && end == whole.len() as u64 {
        return Ok(whole);
    }
    whole.truncate(end as usize);
    Ok(whole.split_off(offset as usize))
}

/// Writes under a temporary name in the same directory, then renames.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use rand::Rng;
    let tmp = path.with_file_name(format!(
        ".{}-tmp-{:016x}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        rand::thread_rng().gen::<u64>()
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

impl crate::Decorator for CacheBackend {
    type Inner = dyn Backend;
    fn inner(&self) -> &(dyn Backend + 'static) {
        &*self.inner
    }
    fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.inner.save(h, data)?;
        if CacheBackend::always(h) {
            self.store(h, data);
        }
        Ok(())
    }
    fn load(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        if let Some(d) = self.read(h, offset, length) {
            return Ok(d);
        }
        if CacheBackend::always(h) {
            return self.fetch(h, offset, length);
        }
        self.inner.load(h, offset, length)
    }
    fn load_capped(&self, h: &Handle, max: u64) -> Result<Vec<u8>> {
        if let Some(d) = self.read(h, 0, 0).filter(|d| d.len() as u64 <= max) {
            return Ok(d);
        }
        let whole = self.inner.load_capped(h, max)?;
        if CacheBackend::always(h) && whole.len() as u64 <= max {
            self.store(h, &whole);
        }
        Ok(whole)
    }
    fn load_cacheable(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        if let Some(d) = self.read(h, offset, length) {
            return Ok(d);
        }
        if self.path(h).is_some() {
            return self.fetch(h, offset, length);
        }
        self.inner.load(h, offset, length)
    }
    fn save_cacheable(&self, h: &Handle, staged: Staged) -> Result<()> {
        let data = staged.bytes()?;
        self.inner.save_staged(h, staged)?;
        self.store(h, &data);
        Ok(())
    }
    fn evict(&self, h: &Handle) {
        if let Some(p) = self.path(h) {
            let _ = std::fs::remove_file(p);
        }
    }
    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        let files = self.inner.list(kind)?;
        self.forget_missing(kind, &files);
        Ok(files)
    }
    fn remove(&self, h: &Handle) -> Result<()> {
        self.inner.remove(h)?;
        Backend::evict(self, h);
        Ok(())
    }
}

/// One repository's cache directory, for `cache` listings and cleanup.
pub struct CacheDir {
    pub repo_id: String,
    pub path: PathBuf,
    pub last_used: std::time::SystemTime,
}

/// The repository caches under `base` (directories named by a 64-digit hex id).
pub fn list_caches(base: &Path) -> std::io::Result<Vec<CacheDir>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(base) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(md) = e.metadata() else { continue };
        if !md.is_dir() {
            continue;
        }
        out.push(CacheDir {
            repo_id: name,
            path: e.path(),
            last_used: md.modified().unwrap_or(std::time::UNIX_EPOCH),
        });
    }
    out.sort_by(|a, b| a.repo_id.cmp(&b.repo_id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalBackend;

    fn hname(d: &[u8]) -> String {
        hex::encode(Sha256::digest(d))
    }

    #[test]
    fn copies_are_kept_checked_and_dropped_with_their_files() {
        let t = tempfile::tempdir().unwrap();
        let repo = LocalBackend::new(t.path().join("repo"));
        repo.create().unwrap();
        let inner: Arc<dyn Backend> = Arc::new(repo);
        let base = t.path().join("cache");
        let id = "ab".repeat(32);
        let c = CacheBackend::new(inner.clone(), &base, &id).unwrap();
        assert!(base.join("CACHEDIR.TAG").is_file());
        assert_eq!(std::fs::read(base.join(&id).join("version")).unwrap(), b"1");

        // Snapshots are cached on save, at restic's path.
        let snap = b"snapshot".to_vec();
        let hs = Handle::new(FileType::Snapshot, hname(&snap));
        c.save(&hs, &snap).unwrap();
        let cached = base
            .join(&id)
            .join("snapshots")
            .join(&hs.name[..2])
            .join(&hs.name);
        assert_eq!(std::fs::read(&cached).unwrap(), snap);

        // A pack of trees loaded through load_cacheable is kept whole; ranges come from it.
        let pack: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let hp = Handle::new(FileType::Data, hname(&pack));
        inner.save(&hp, &pack).unwrap();
        assert_eq!(c.load(&hp, 10, 5).unwrap(), &pack[10..15]);
        assert!(
            c.path(&hp).map(|p| !p.exists()).unwrap(),
            "plain loads are not cached"
        );
        assert_eq!(c.load_cacheable(&hp, 10, 5).unwrap(), &pack[10..15]);
        assert!(c.path(&hp).unwrap().exists());
        // Served from the cache even when the store no longer answers for it.
        inner.remove(&hp).unwrap();
        assert_eq!(c.load_cacheable(&hp, 990, 0).unwrap(), &pack[990..]);
        // A listing drops copies of files that are gone.
        c.list(FileType::Data).unwrap();
        assert!(!c.path(&hp).unwrap().exists());

        // A damaged copy of a whole file is not returned: it is dropped and fetched again.
        std::fs::write(&cached, b"garbage").unwrap();
        assert_eq!(c.load(&hs, 0, 0).unwrap(), snap);
        assert_eq!(std::fs::read(&cached).unwrap(), snap);

        // Removing through the cache removes the copy.
        c.remove(&hs).unwrap();
        assert!(!cached.exists());

        let caches = list_caches(&base).unwrap();
        assert_eq!(caches.len(), 1);
        assert_eq!(caches[0].repo_id, id);
    }

    #[test]
    fn an_unwritable_cache_only_costs_speed() {
        let t = tempfile::tempdir().unwrap();
        let repo = LocalBackend::new(t.path().join("repo"));
        repo.create().unwrap();
        let base = t.path().join("cache");
        let id = "cd".repeat(32);
        let c = CacheBackend::new(Arc::new(repo), &base, &id).unwrap();
        // A file where the snapshots directory should be: nothing can be cached.
        std::fs::write(base.join(&id).join("snapshots"), b"").unwrap();
        let snap = b"s".to_vec();
        let hs = Handle::new(FileType::Snapshot, hname(&snap));
        c.save(&hs, &snap).unwrap();
        assert_eq!(c.load(&hs, 0, 0).unwrap(), snap);
    }
}

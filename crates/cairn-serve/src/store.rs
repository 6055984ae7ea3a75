//! Repositories on local disk, in restic's layout (`cairn_backend::local::relative_path`):
//! creating one, listing a type, and uploads that become visible only once complete and
//! durable. All functions here block; the HTTP layer runs them on tokio's blocking pool.

use bytes::Bytes;
use cairn_backend::{FileType, Handle};
use sha2::{Digest, Sha256};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where `kind`/`name` lives in the repository at `root`.
pub fn file_path(root: &Path, kind: FileType, name: &str) -> PathBuf {
    root.join(cairn_backend::local::relative_path(&Handle::new(
        kind, name,
    )))
}

fn mkdir_all(p: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(p)
}

/// `POST /?create=true`: the repository's directories, as `restic init` expects them.
pub fn create(root: &Path) -> io::Result<()> {
    mkdir_all(root)?;
    for kind in FileType::all_dirs() {
        mkdir_all(&root.join(kind.dir()))?;
    }
    for i in 0..256 {
        mkdir_all(&root.join("data").join(format!("{i:02x}")))?;
    }
    Ok(())
}

/// Every file of a type with its size. Only restic's names are listed, so temporary files
/// of uploads in progress never show. A missing type directory is `NotFound`.
pub fn list(root: &Path, kind: FileType) -> io::Result<Vec<(String, u64)>> {
    let dir = root.join(kind.dir());
    let mut out = Vec::new();
    if kind == FileType::Data {
        for sub in fs::read_dir(&dir)? {
            let sub = sub?;
            if sub.file_type()?.is_dir() {
                list_files(&sub.path(), &mut out)?;
            }
        }
    } else {
        list_files(&dir, &mut out)?;
    }
    Ok(out)
}

fn list_files(dir: &Path, out: &mut Vec<(String, u64)>) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !crate::path::is_id(&name) {
            continue;
        }
        let md = e.metadata()?;
        if md.is_file() {
            out.push((name, md.len()));
        }
    }
    Ok(())
}

/// The size of a regular file; anything else (a directory named like a file) is `NotFound`,
/// as is a path through something that is not a directory.
pub fn size(path: &Path) -> io::Result<u64> {
    let md = fs::metadata(path).map_err(not_found_if_not_dir)?;
    if !md.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    Ok(md.len())
}

pub fn open(path: &Path) -> io::Result<(File, u64)> {
    let f = File::open(path).map_err(not_found_if_not_dir)?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    Ok((f, md.len()))
}

fn not_found_if_not_dir(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ENOTDIR) {
        io::ErrorKind::NotFound.into()
    } else {
        e
    }
}

/// Removes a file; a missing one is fine (a retried DELETE must succeed). Returns the size
/// it had, for the quota and metrics.
pub fn remove(path: &Path) -> io::Result<u64> {
    let size = size(path).unwrap_or(0);
    match fs::remove_file(path).map_err(not_found_if_not_dir) {
        Ok(()) => Ok(size),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

#[derive(Debug)]
pub enum FinishError {
    /// The content's SHA-256 is not the name it was uploaded under.
    HashMismatch,
    /// Another upload of the same name finished first.
    Exists,
    Io(io::Error),
}

impl From<io::Error> for FinishError {
    fn from(e: io::Error) -> Self {
        FinishError::Io(e)
    }
}

/// An upload in progress: a temporary file beside its destination, removed again unless
/// the upload finishes (also when the request is dropped half-way).
pub struct Upload {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    hasher: Option<Sha256>,
    pub written: u64,
}

impl Upload {
    /// Starts writing the file that will be `dest`, creating its directory if needed (as
    /// rest-server does, so a pack in a new `data/XX/` works). `verify`: hash the content.
    pub fn begin(dest: &Path, verify: bool) -> io::Result<Upload> {
        let dir = dest.parent().ok_or(io::ErrorKind::InvalidInput)?;
        let base = dest
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or(io::ErrorKind::InvalidInput)?;
        let tmp = dir.join(format!(
            ".{}.cairn-serve-tmp-{:016x}",
            base,
            rand::random::<u64>()
        ));
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
        };
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                mkdir_all(dir)?;
                open()?
            }
            r => r?,
        };
        Ok(Upload {
            file: Some(file),
            tmp,
            dest: dest.to_path_buf(),
            hasher: verify.then(Sha256::new),
            written: 0,
        })
    }

    pub fn write(&mut self, chunks: &[Bytes]) -> io::Result<()> {
        let f = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        for c in chunks {
            if let Some(h) = self.hasher.as_mut() {
                h.update(c);
            }
            f.write_all(c)?;
            self.written += c.len() as u64;
        }
        Ok(())
    }

    /// Checks the hash against `name` (when verifying and a name is given), makes the file
    /// durable and puts it in place without ever replacing an existing file, then syncs the
    /// directory so the new name survives a crash.
    pub fn finish(mut self, name: Option<&str>) -> Result<u64, FinishError> {
        if let (Some(h), Some(name)) = (self.hasher.take(), name) {
            if hex::encode(h.finalize()) != name {
                return Err(FinishError::HashMismatch);
            }
        }
        let f = self
            .file
            .take()
            .ok_or(io::Error::from(io::ErrorKind::BrokenPipe))?;
        f.sync_all()?;
        drop(f);
        // link(2) refuses an existing destination, so two uploads of one name (or a config
        // racing another) can never replace each other's file.
        match fs::hard_link(&self.tmp, &self.dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(FinishError::Exists),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM) | Some(libc::EOPNOTSUPP) | Some(libc::EXDEV)
                ) =>
            {
                // A file system without hard links: check, then rename.
                if self.dest.exists() {
                    return Err(FinishError::Exists);
                }
                fs::rename(&self.tmp, &self.dest)?;
            }
            Err(e) => return Err(e.into()),
        }
        let _ = fs::remove_file(&self.tmp);
        // Gone either way (unlinked or renamed): nothing for Drop to remove.
        self.tmp = PathBuf::new();
        if let Some(dir) = self.dest.parent() {
            sync_dir(dir)?;
        }
        Ok(self.written)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        // Some file systems cannot sync a directory; the data itself is synced.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTSUP)) => Ok(()),
        r => r,
    }
}

/// `--max-size`: bytes stored below the data directory, against a limit. Space is reserved
/// before each chunk of an upload is written, so concurrent uploads cannot overshoot.
pub struct Quota {
    max: u64,
    used: AtomicU64,
}

impl Quota {
    pub fn new(root: &Path, max: u64) -> io::Result<Quota> {
        Ok(Quota {
            max,
            used: AtomicU64::new(tally(root)?),
        })
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Would `n` more bytes fit?
    pub fn fits(&self, n: u64) -> bool {
        self.used().saturating_add(n) <= self.max
    }

    /// Takes `n` bytes of the remaining space, or refuses.
    pub fn reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= self.max)
            })
            .is_ok()
    }

    pub fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Bytes in regular files below `root` (symbolic links not followed).
fn tally(root: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let md = e.metadata()?;
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_is_invisible_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        let body = Bytes::from_static(b"hello");
        let name = hex::encode(Sha256::digest(&body));
        let dest = file_path(dir.path(), FileType::Data, &name);
        let mut up = Upload::begin(&dest, true).unwrap();
        up.write(std::slice::from_ref(&body)).unwrap();
        assert!(list(dir.path(), FileType::Data).unwrap().is_empty());
        assert_eq!(up.finish(Some(&name)).unwrap(), 5);
        assert_eq!(
            list(dir.path(), FileType::Data).unwrap(),
            vec![(name.clone(), 5)]
        );

        // A second upload of the same name does not replace the first.
        let mut again = Upload::begin(&dest, false).unwrap();
        again.write(&[Bytes::from_static(b"other")]).unwrap();
        assert!(matches!(
            again.finish(Some(&name)),
            Err(FinishError::Exists)
        ));

        // A wrong hash is refused and leaves nothing behind.
        let wrong = "0".repeat(64);
        let dest = file_path(dir.path(), FileType::Key, &wrong);
        let mut bad = Upload::begin(&dest, true).unwrap();
        bad.write(std::slice::from_ref(&body)).unwrap();
        assert!(matches!(
            bad.finish(Some(&wrong)),
            Err(FinishError::HashMismatch)
        ));
        assert_eq!(fs::read_dir(dir.path().join("keys")).unwrap().count(), 0);

        // Dropped half-way: nothing.
        let mut half = Upload::begin(&dest, true).unwrap();
        half.write(std::slice::from_ref(&body)).unwrap();
        drop(half);
        assert_eq!(fs::read_dir(dir.path().join("keys")).unwrap().count(), 0);
    }

    #[test]
    fn quota_reserves() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"12345").unwrap();
        let q = Quota::new(dir.path(), 10).unwrap();
        assert_eq!(q.used(), 5);
        assert!(q.fits(5));
        assert!(!q.fits(6));
        assert!(q.reserve(4));
        assert!(!q.reserve(2));
        q.release(4);
        assert!(q.reserve(5));
    }
}

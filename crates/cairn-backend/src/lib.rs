//! Storage backends for cairn.
//!
//! A backend stores opaque, immutable files addressed by [`Handle`] (a [`FileType`] and a name).
//! The trait is deliberately small — save, load a range, stat, list, remove — so that remote
//! stores and decorators (retry, cache, limits) can wrap one another without knowing the format.

pub mod b2;
pub mod cache;
pub mod local;
pub mod options;
pub mod rclone;
pub mod rest;
pub mod retry;
pub mod s3;
pub mod sftp;

use std::fmt;

pub use local::LocalBackend;
pub use options::Options;

/// The kinds of files in a restic repository, each in its own directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    Config,
    Key,
    Snapshot,
    Index,
    Data,
    Lock,
}

impl FileType {
    /// The directory that holds files of this type (the config file lives at the top).
    pub fn dir(self) -> &'static str {
        match self {
            FileType::Config => "",
            FileType::Key => "keys",
            FileType::Snapshot => "snapshots",
            FileType::Index => "index",
            FileType::Data => "data",
            FileType::Lock => "locks",
        }
    }

    pub fn all_dirs() -> [FileType; 5] {
        [
            FileType::Key,
            FileType::Snapshot,
            FileType::Index,
            FileType::Data,
            FileType::Lock,
        ]
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileType::Config => "config",
            FileType::Key => "key",
            FileType::Snapshot => "snapshot",
            FileType::Index => "index",
            FileType::Data => "data",
            FileType::Lock => "lock",
        })
    }
}

/// One file in the backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    pub kind: FileType,
    pub name: String,
}

impl Handle {
    pub fn new(kind: FileType, name: impl Into<String>) -> Handle {
        Handle {
            kind,
            name: name.into(),
        }
    }

    pub fn config() -> Handle {
        Handle::new(FileType::Config, "config")
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FileType::Config => f.write_str("config"),
            FileType::Data => write!(f, "data/{}", self.name),
            k => write!(f, "{}/{}", k.dir(), self.name),
        }
    }
}

/// A listed file: its name and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
}

/// A file being assembled before its name is known (a pack is named by its hash). Local
/// backends stage in a file inside the repository, so storing it is a rename and the pack
/// never has to sit in memory; other backends stage in an unlinked temporary file
/// ([`Staged::temp_file`]) and read it back when they upload it.
pub enum Staged {
    Memory(Vec<u8>),
    File {
        path: std::path::PathBuf,
        file: std::fs::File,
        len: u64,
    },
}

impl Staged {
    pub fn append(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Staged::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Staged::File { path, file, len } => {
                use std::io::Write;
                file.write_all(data).map_err(|e| BackendError::Io {
                    handle: path.display().to_string(),
                    err: e,
                })?;
                *len += data.len() as u64;
                Ok(())
            }
        }
    }

    /// A file in the system's temporary directory (`TMPDIR`), unlinked as soon as it is
    /// open: packs bound for a remote store wait there rather than in memory, and a killed
    /// process leaves nothing behind. Memory when no temporary file can be made.
    pub fn temp_file() -> Staged {
        use std::os::unix::fs::OpenOptionsExt;
        let path = std::env::temp_dir().join(format!(
            ".cairn-pack-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                let _ = std::fs::remove_file(&path);
                Staged::File { path, file, len: 0 }
            }
            Err(_) => Staged::Memory(Vec::new()),
        }
    }

    /// The staged bytes.
    pub fn bytes(&self) -> Result<Vec<u8>> {
        match self {
            Staged::Memory(v) => Ok(v.clone()),
            Staged::File { path, file, len } => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; *len as usize];
                match file.read_exact_at(&mut buf, 0) {
                    Ok(()) => Ok(buf),
                    // A write-only staging file (the local backend's): read it by name.
                    Err(_) => std::fs::read(path).map_err(|e| BackendError::Io {
                        handle: path.display().to_string(),
                        err: e,
                    }),
                }
            }
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Staged::Memory(v) => v.len() as u64,
            Staged::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // A staged file that was never stored is garbage; a stored one was renamed away.
        if let Staged::File { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Errors a backend reports in a form callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}: file does not exist")]
    NotFound(String),
    #[error("{0}: file already exists")]
    AlreadyExists(String),
    /// The io::Error is part of the message rather than a `source`, so that a
    /// context chain printed on one line does not repeat it.
    #[error("{handle}: {err}")]
    Io { handle: String, err: std::io::Error },
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// The storage interface every location implements.
///
/// Files are immutable: `save` refuses to overwrite (except the lock-free config, which is
/// written once at init). Implementations must make a saved file durable before returning,
/// and must never expose a partially written file under its final name.
pub trait Backend: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    /// Does the repository exist here at all (is there a config file)?
    fn exists(&self) -> Result<bool> {
        match self.stat(&Handle::config()) {
            Ok(_) => Ok(true),
            Err(BackendError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// Create the directory structure of a new repository.
    fn create(&self) -> Result<()>;
    /// Store `data` under `handle` atomically and durably.
    fn save(&self, handle: &Handle, data: &[u8]) -> Result<()>;
    /// Read `length` bytes at `offset` (length 0 = to the end).
    fn load(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>>;
    /// The size of a file.
    fn stat(&self, handle: &Handle) -> Result<u64>;
    /// Every file of a type.
    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>>;
    /// Remove a file; removing a missing file is not an error.
    fn remove(&self, handle: &Handle) -> Result<()>;
    /// Starts assembling a file of this type whose name is not known yet.
    fn stage(&self, _kind: FileType) -> Result<Staged> {
        Ok(Staged::temp_file())
    }
    /// Removes staged files that a killed process left behind (never those of a live one).
    fn clean_stale_staging(&self) -> Result<usize> {
        Ok(0)
    }
    /// Does a listing show every file saved before it started? Locking waits a moment
    /// between writing its lock and looking for others only where this is not certain.
    fn lists_after_write(&self) -> bool {
        false
    }
    /// How many requests may run at once (`-o <scheme>.connections=N`); uploaders and
    /// downloaders size their thread pools by it.
    fn connections(&self) -> usize {
        2
    }
    /// Like [`Backend::load`], for a file worth keeping in a local cache (a pack of trees):
    /// a caching decorator fetches and keeps the whole file. Other backends just load.
    fn load_cacheable(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.load(handle, offset, length)
    }
    /// Like [`Backend::save_staged`], for a file worth keeping in a local cache.
    fn save_cacheable(&self, handle: &Handle, staged: Staged) -> Result<()> {
        self.save_staged(handle, staged)
    }
    /// Forgets a cached copy that turned out damaged, so the next load goes to the store.
    fn evict(&self, _handle: &Handle) {}
    /// Stores a staged file under `handle`, durably, as [`Backend::save`] does.
    fn save_staged(&self, handle: &Handle, staged: Staged) -> Result<()> {
        match staged {
            Staged::Memory(ref v) => self.save(handle, v),
            ref file => self.save(handle, &file.bytes()?),
        }
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn lists_after_write(&self) -> bool {
        (**self).lists_after_write()
    }
    fn connections(&self) -> usize {
        (**self).connections()
    }
    fn create(&self) -> Result<()> {
        (**self).create()
    }
    fn save(&self, handle: &Handle, data: &[u8]) -> Result<()> {
        (**self).save(handle, data)
    }
    fn load(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        (**self).load(handle, offset, length)
    }
    fn stat(&self, handle: &Handle) -> Result<u64> {
        (**self).stat(handle)
    }
    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        (**self).list(kind)
    }
    fn remove(&self, handle: &Handle) -> Result<()> {
        (**self).remove(handle)
    }
    fn stage(&self, kind: FileType) -> Result<Staged> {
        (**self).stage(kind)
    }
    fn clean_stale_staging(&self) -> Result<usize> {
        (**self).clean_stale_staging()
    }
    fn save_staged(&self, handle: &Handle, staged: Staged) -> Result<()> {
        (**self).save_staged(handle, staged)
    }
    fn load_cacheable(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        (**self).load_cacheable(handle, offset, length)
    }
    fn save_cacheable(&self, handle: &Handle, staged: Staged) -> Result<()> {
        (**self).save_cacheable(handle, staged)
    }
    fn evict(&self, handle: &Handle) {
        (**self).evict(handle)
    }
}

/// Is this a location on another machine (or behind a program), rather than a local path?
pub fn is_remote(location: &str) -> bool {
    ["rest:", "sftp:", "s3:", "b2:", "rclone:"]
        .iter()
        .any(|s| location.starts_with(s))
}

/// Opens a backend for a repository location string, with no `-o` options.
pub fn open(location: &str) -> std::result::Result<Box<dyn Backend>, String> {
    open_with(location, &Options::default())
}

/// Opens a backend for a repository location as restic writes them: a path or `local:PATH`,
/// `sftp:`, `rest:`, `s3:`, `b2:` or `rclone:`. Remote backends come wrapped in
/// [`retry::RetryBackend`], so a flaky network is retried with backoff rather than failing
/// the command at the first dropped connection.
pub fn open_with(location: &str, opts: &Options) -> std::result::Result<Box<dyn Backend>, String> {
    let remote: Box<dyn Backend> = if let Some(path) = location.strip_prefix("local:") {
        return local_checked(path, opts);
    } else if let Some(url) = location.strip_prefix("rest:") {
        Box::new(rest::RestBackend::open(url, opts)?)
    } else if let Some(spec) = location.strip_prefix("sftp:") {
        Box::new(sftp::SftpBackend::open(spec, opts)?)
    } else if let Some(spec) = location.strip_prefix("s3:") {
        Box::new(s3::S3Backend::open(spec, opts)?)
    } else if let Some(spec) = location.strip_prefix("b2:") {
        b2::open(spec, opts)?
    } else if let Some(spec) = location.strip_prefix("rclone:") {
        Box::new(rclone::RcloneBackend::open(spec, opts)?)
    } else {
        for scheme in ["swift:", "azure:", "gs:"] {
            if location.starts_with(scheme) {
                return Err(format!(
                    "repository location {location:?}: the {} backend is not supported by cairn yet",
                    scheme.trim_end_matches(':')
                ));
            }
        }
        return local_checked(location, opts);
    };
    let retrying = retry::RetryBackend::new(remote, retry::Policy::from_options(opts)?);
    opts.check_all_read()?;
    Ok(Box::new(retrying))
}

fn local_checked(path: &str, opts: &Options) -> std::result::Result<Box<dyn Backend>, String> {
    // restic's local backend takes `local.connections`; cairn's local writes need no limit.
    opts.get_usize("local.connections")?;
    opts.check_all_read()?;
    Ok(Box::new(LocalBackend::new(path)))
}

#[cfg(test)]
mod staged_tests {
    use super::*;

    #[test]
    fn temporary_staging_files_leave_no_name_and_give_their_bytes_back() {
        let mut st = Staged::temp_file();
        let Staged::File { ref path, .. } = st else {
            panic!("no temporary file could be made");
        };
        assert!(!path.exists(), "the staging file is unlinked at once");
        st.append(b"hello ").unwrap();
        st.append(b"world").unwrap();
        assert_eq!(st.len(), 11);
        assert_eq!(st.bytes().unwrap(), b"hello world");
    }
}

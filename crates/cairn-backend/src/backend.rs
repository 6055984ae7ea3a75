//! The storage interface and the small types it speaks in.
//!
//! Everything here is independent of where files are stored; the implementations live in
//! one module each (local.rs, sftp.rs, ...) and the wrappers in retry.rs and cache.rs.

use crate::Staged;
use std::fmt;

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

    /// The type whose directory is `dir` (`"config"` for the config file): how servers map a
    /// URL or path component back to a file type.
    pub fn from_dir(dir: &str) -> Option<FileType> {
        match dir {
            "config" => Some(FileType::Config),
            "keys" => Some(FileType::Key),
            "snapshots" => Some(FileType::Snapshot),
            "index" => Some(FileType::Index),
            "data" => Some(FileType::Data),
            "locks" => Some(FileType::Lock),
            _ => None,
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
///
/// A method added here needs its line in [`Decorator`](crate::Decorator) too; otherwise
/// wrappers would silently answer it with this trait's default instead of asking the store
/// they wrap.
///
/// A store implements the seven required methods; the others have defaults that suit a store
/// without local files or a cache. This one keeps files in memory (as a test double might):
///
/// ```
/// use cairn_backend::{Backend, BackendError, FileInfo, FileType, Handle, Result};
/// use std::collections::BTreeMap;
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Memory(Mutex<BTreeMap<(FileType, String), Vec<u8>>>);
///
/// impl Memory {
///     fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<(FileType, String), Vec<u8>>> {
///         self.0.lock().unwrap_or_else(|e| e.into_inner())
///     }
/// }
///
/// impl Backend for Memory {
///     fn location(&self) -> String {
///         "memory".into()
///     }
///     fn create(&self) -> Result<()> {
///         Ok(())
///     }
///     fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
///         let key = (h.kind, h.name.clone());
///         if self.files().contains_key(&key) {
///             return Err(BackendError::AlreadyExists(h.to_string()));
///         }
///         self.files().insert(key, data.to_vec());
///         Ok(())
///     }
///     fn load(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
///         let files = self.files();
///         let data = files
///             .get(&(h.kind, h.name.clone()))
///             .ok_or_else(|| BackendError::NotFound(h.to_string()))?;
///         let start = (offset as usize).min(data.len());
///         let end = match length {
///             0 => data.len(),
///             n => (start + n as usize).min(data.len()),
///         };
///         Ok(data[start..end].to_vec())
///     }
///     fn stat(&self, h: &Handle) -> Result<u64> {
///         let files = self.files();
///         let data = files
///             .get(&(h.kind, h.name.clone()))
///             .ok_or_else(|| BackendError::NotFound(h.to_string()))?;
///         Ok(data.len() as u64)
///     }
///     fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
///         let files = self.files();
///         let listed = files.iter().filter(|((k, _), _)| *k == kind);
///         Ok(listed
///             .map(|((_, name), d)| FileInfo { name: name.clone(), size: d.len() as u64 })
///             .collect())
///     }
///     fn remove(&self, h: &Handle) -> Result<()> {
///         self.files().remove(&(h.kind, h.name.clone()));
///         Ok(())
///     }
/// }
///
/// let be = Memory::default();
/// assert!(!be.exists()?);
/// be.save(&Handle::config(), b"config")?;
/// assert!(be.exists()?);
/// assert_eq!(be.load(&Handle::config(), 2, 3)?, b"nfi");
/// # Ok::<(), BackendError>(())
/// ```
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
    /// Loads a whole file, but never more than `max + 1` bytes of it: enough for the caller to
    /// see that the file is larger than `max` without holding more of it. A server that sends
    /// endless data, or a file grown past any sane size, then costs at most that much memory.
    /// Streaming stores stop reading there; this default, for stores that hold files in
    /// memory anyway, loads the whole file.
    fn load_capped(&self, handle: &Handle, _max: u64) -> Result<Vec<u8>> {
        self.load(handle, 0, 0)
    }
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

/// `list(Config)` for stores that have no listing of single files: the config, if `stat`
/// finds it.
pub(crate) fn list_config(stat: Result<u64>) -> Result<Vec<FileInfo>> {
    match stat {
        Ok(size) => Ok(vec![FileInfo {
            name: "config".into(),
            size,
        }]),
        Err(BackendError::NotFound(_)) => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// A whole body, but at most `max + 1` bytes of it (see [`Backend::load_capped`]).
pub(crate) fn read_capped(body: &mut dyn std::io::Read, h: &Handle, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    body.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|err| BackendError::Io {
            handle: h.to_string(),
            err,
        })?;
    Ok(out)
}

/// The `offset`/`length` part of a body a server answered a ranged GET with (`partial`: it
/// honoured the Range header; one that ignores it sends the whole file). `length` 0 means to
/// the end; fewer bytes than asked for are an error naming the file.
pub(crate) fn read_ranged(
    body: &mut dyn std::io::Read,
    partial: bool,
    h: &Handle,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>> {
    let io = |err| BackendError::Io {
        handle: h.to_string(),
        err,
    };
    let mut out = Vec::with_capacity(length.min(256 << 20) as usize);
    body.read_to_end(&mut out).map_err(io)?;
    if !partial && (offset > 0 || length > 0) {
        let start = (offset as usize).min(out.len());
        let end = if length > 0 {
            (start + length as usize).min(out.len())
        } else {
            out.len()
        };
        out = out[start..end].to_vec();
    }
    if length > 0 && out.len() as u64 != length {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("short read: got {} of {length} bytes", out.len()),
        )));
    }
    Ok(out)
}

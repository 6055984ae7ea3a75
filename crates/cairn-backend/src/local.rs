//! A repository in a local directory, laid out exactly as restic's local backend does.

use crate::{Backend, BackendError, FileInfo, FileType, Handle, Result, Staged};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct LocalBackend {
    root: PathBuf,
}

fn io_err(handle: &Handle, source: io::Error) -> BackendError {
    if source.kind() == io::ErrorKind::NotFound {
        BackendError::NotFound(handle.to_string())
    } else {
        BackendError::Io {
            handle: handle.to_string(),
            err: source,
        }
    }
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, h: &Handle) -> PathBuf {
        self.root.join(relative_path(h))
    }

    fn fsync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Where a file lives below a repository's root in restic's layout (packs fanned out into
/// `data/XX/` by the first two characters of their name); shared with `cairn serve`.
pub fn relative_path(h: &Handle) -> PathBuf {
    match h.kind {
        FileType::Config => PathBuf::from("config"),
        FileType::Data => {
            let sub = h.name.get(..2).unwrap_or("00");
            Path::new("data").join(sub).join(&h.name)
        }
        k => Path::new(k.dir()).join(&h.name),
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid and its length is passed.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).replace('-', "_")
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() != libc::ESRCH }
}

fn is_hex_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Was this temporary file (`...-{host}-{pid}-{rand}`) made on this host by a process that
/// no longer exists? Files of other hosts are never touched: their writers may be alive.
fn left_by_dead_process(name: &str, host: &str) -> bool {
    let mut parts = name.rsplitn(3, '-');
    let (_rand, pid, rest) = (parts.next(), parts.next(), parts.next());
    let (Some(pid), Some(rest)) = (pid.and_then(|p| p.parse::<i32>().ok()), rest) else {
        return false;
    };
    rest.ends_with(&format!("-{host}")) && !pid_alive(pid)
}

impl Backend for LocalBackend {
    fn lists_after_write(&self) -> bool {
        // A directory listing sees every completed rename.
        true
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<()> {
        let mk = |p: &Path| -> Result<()> {
            fs::create_dir_all(p).map_err(|e| BackendError::Io {
                handle: p.display().to_string(),
                err: e,
            })?;
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
            Ok(())
        };
        mk(&self.root)?;
        for kind in FileType::all_dirs() {
            mk(&self.root.join(kind.dir()))?;
        }
        for i in 0..256 {
            mk(&self.root.join("data").join(format!("{i:02x}")))?;
        }
        Ok(())
    }

    fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let path = self.path(h);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if path.exists() && h.kind != FileType::Config {
            return Err(BackendError::AlreadyExists(h.to_string()));
        }
        // restic writes into the final directory under a temporary name, then renames, so a
        // crash never leaves a partial file under a valid name.
        // Host and pid in the name let a later run remove what a killed writer left.
        let tmp = dir.join(format!(
            ".{}-tmp-{}-{}-{:016x}",
            h.name.get(..16).unwrap_or(&h.name),
            hostname(),
            std::process::id(),
            rand::random::<u64>()
        ));
        let write = || -> io::Result<()> {
            if h.kind == FileType::Data {
                fs::create_dir_all(&dir)?;
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o400))?;
            fs::rename(&tmp, &path)?;
            Self::fsync_dir(&dir)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(h, e)
        })
    }

    fn load(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        let path = self.path(h);
        let read = || -> io::Result<Vec<u8>> {
            let mut f = open_regular(&path)?;
            if length == 0 {
                let mut buf = Vec::new();
                if offset > 0 {
                    f.seek(SeekFrom::Start(offset))?;
                }
                f.read_to_end(&mut buf)?;
                return Ok(buf);
            }
            let mut buf = vec![0u8; length as usize];
            use std::os::unix::fs::FileExt;
            f.read_exact_at(&mut buf, offset)?;
            Ok(buf)
        };
        read().map_err(|e| io_err(h, e))
    }

    fn load_capped(&self, h: &Handle, max: u64) -> Result<Vec<u8>> {
        let path = self.path(h);
        let read = || -> io::Result<Vec<u8>> {
            let mut buf = Vec::new();
            open_regular(&path)?
                .take(max.saturating_add(1))
                .read_to_end(&mut buf)?;
            Ok(buf)
        };
        read().map_err(|e| io_err(h, e))
    }

    fn stat(&self, h: &Handle) -> Result<u64> {
        fs::metadata(self.path(h))
            .map(|m| m.len())
            .map_err(|e| io_err(h, e))
    }

    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        let base = self.root.join(kind.dir());
        let mut out = Vec::new();
        let handle = Handle::new(kind, "");
        let mut scan = |dir: &Path| -> io::Result<()> {
            let rd = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in rd {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !is_hex_name(name) {
                    continue;
                }
                let meta = entry.metadata()?;
                if meta.is_file() {
                    out.push(FileInfo {
                        name: name.to_string(),
                        size: meta.len(),
                    });
                }
            }
            Ok(())
        };
        if kind == FileType::Data {
            let rd = match fs::read_dir(&base) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(io_err(&handle, e)),
            };
            for sub in rd {
                let sub = sub.map_err(|e| io_err(&handle, e))?;
                if sub.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    scan(&sub.path()).map_err(|e| io_err(&handle, e))?;
                }
            }
        } else {
            scan(&base).map_err(|e| io_err(&handle, e))?;
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Stages in `tmp/` inside the repository (restic's old layout had this directory, and
    /// restic ignores it), on the same filesystem as `data/`, so storing is a rename.
    fn stage(&self, kind: FileType) -> Result<Staged> {
        let dir = self.root.join("tmp");
        // host and pid in the name let a later run tell a killed writer's leftovers from a
        // running writer's files.
        let path = dir.join(format!(
            "{kind}-{}-{}-{:016x}",
            hostname(),
            std::process::id(),
            rand::random::<u64>()
        ));
        let open = || -> io::Result<File> {
            fs::create_dir_all(&dir)?;
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        };
        let file = open().map_err(|e| BackendError::Io {
            handle: path.display().to_string(),
            err: e,
        })?;
        Ok(Staged::File { path, file, len: 0 })
    }

    fn clean_stale_staging(&self) -> Result<usize> {
        let host = hostname();
        // Staged packs in tmp/, and the hidden half-written files `save` leaves beside their
        // final names when killed (config, keys, snapshots, index, locks, data/xx).
        let mut dirs = vec![self.root.join("tmp"), self.root.clone()];
        for kind in ["keys", "snapshots", "index", "locks"] {
            dirs.push(self.root.join(kind));
        }
        if let Ok(rd) = fs::read_dir(self.root.join("data")) {
            dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        let staging = self.root.join("tmp");
        let mut removed = 0;
        for dir in dirs {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for entry in rd.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let half_written = name.starts_with('.') && name.contains("-tmp-");
                if !(dir == staging || half_written) {
                    continue;
                }
                if left_by_dead_process(name, &host) && fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn save_staged(&self, h: &Handle, staged: Staged) -> Result<()> {
        let Staged::File {
            path: tmp, file, ..
        } = &staged
        else {
            let Staged::Memory(v) = &staged else {
                unreachable!()
            };
            return self.save(h, v);
        };
        let path = self.path(h);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if path.exists() {
            return Err(BackendError::AlreadyExists(h.to_string()));
        }
        let store = || -> io::Result<()> {
            file.sync_all()?;
            fs::set_permissions(tmp, fs::Permissions::from_mode(0o400))?;
            fs::create_dir_all(&dir)?;
            fs::rename(tmp, &path)?;
            Self::fsync_dir(&dir)
        };
        store().map_err(|e| io_err(h, e))
        // `staged` drops here; its file is gone (renamed) or removed.
    }

    fn remove(&self, h: &Handle) -> Result<()> {
        match fs::remove_file(self.path(h)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(h, e)),
        }
    }
}

/// Opens a repository file for reading, refusing anything but a regular file: a fifo planted
/// in the repository would otherwise block the open forever, a device would be read from.
/// `O_NONBLOCK` makes the open itself return at once; it changes nothing for regular files.
fn open_regular(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_local_writers_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let be = LocalBackend::new(dir.path().join("repo"));
        be.create().unwrap();
        let host = hostname();
        // A process that has exited: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("data/ab")).unwrap();
        let make = |rel: String| {
            let path = root.join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
            rel
        };
        let gone = [
            make(format!("index/.0123456789abcdef-tmp-{host}-{dead}-00")),
            make(format!("data/ab/.ab23456789abcdef-tmp-{host}-{dead}-01")),
            make(format!("locks/.0123456789abcdef-tmp-{host}-{dead}-02")),
            make(format!("tmp/data-{host}-{dead}-03")),
        ];
        let kept = [
            make(format!("index/.0123456789abcdef-tmp-{host}-{me}-04")),
            make(format!("index/.0123456789abcdef-tmp-other-host-{dead}-05")),
            make(format!("snapshots/.0123456789abcdef-tmp-{:016x}", 6)),
            make("index/".to_string() + &"ab".repeat(32)),
        ];
        assert_eq!(be.clean_stale_staging().unwrap(), gone.len());
        for g in &gone {
            assert!(!root.join(g).exists(), "{g} left behind");
        }
        for k in &kept {
            assert!(root.join(k).exists(), "{k} removed");
        }
    }

    #[test]
    fn save_load_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let be = LocalBackend::new(dir.path().join("repo"));
        be.create().unwrap();
        assert!(!be.exists().unwrap());
        let name = "ab".repeat(32);
        let h = Handle::new(FileType::Data, &name);
        be.save(&h, b"hello world").unwrap();
        assert!(dir.path().join("repo/data/ab").join(&name).is_file());
        assert_eq!(be.load(&h, 0, 0).unwrap(), b"hello world");
        assert_eq!(be.load(&h, 6, 5).unwrap(), b"world");
        assert_eq!(be.stat(&h).unwrap(), 11);
        assert!(matches!(
            be.save(&h, b"x"),
            Err(BackendError::AlreadyExists(_))
        ));
        let listed = be.list(FileType::Data).unwrap();
        assert_eq!(
            listed,
            vec![FileInfo {
                name: name.clone(),
                size: 11
            }]
        );
        be.remove(&h).unwrap();
        be.remove(&h).unwrap();
        assert!(matches!(be.stat(&h), Err(BackendError::NotFound(_))));
        assert!(matches!(be.load(&h, 0, 0), Err(BackendError::NotFound(_))));
    }

    #[test]
    fn staged_files_are_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let be = LocalBackend::new(dir.path());
        be.create().unwrap();
        let mut st = be.stage(FileType::Data).unwrap();
        st.append(b"abc").unwrap();
        st.append(b"def").unwrap();
        assert_eq!(st.len(), 6);
        let name = "cd".repeat(32);
        let h = Handle::new(FileType::Data, &name);
        be.save_staged(&h, st).unwrap();
        assert_eq!(be.load(&h, 0, 0).unwrap(), b"abcdef");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        // A staged file dropped without being stored leaves nothing behind.
        let mut st = be.stage(FileType::Data).unwrap();
        st.append(b"x").unwrap();
        drop(st);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn stale_staging_files_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let be = LocalBackend::new(dir.path());
        be.create().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        // A dead writer's file (pid far above pid_max), a live one's (ours), a foreign host's.
        let dead = format!("data-{}-999999999-00", hostname());
        let live = format!("data-{}-{}-00", hostname(), std::process::id());
        let other = "data-otherhost-999999999-00".to_string();
        for n in [&dead, &live, &other] {
            fs::write(dir.path().join("tmp").join(n), b"x").unwrap();
        }
        assert_eq!(be.clean_stale_staging().unwrap(), 1);
        assert!(!dir.path().join("tmp").join(&dead).exists());
        assert!(dir.path().join("tmp").join(&live).exists());
        assert!(dir.path().join("tmp").join(&other).exists());
    }

    #[test]
    fn list_skips_foreign_names() {
        let dir = tempfile::tempdir().unwrap();
        let be = LocalBackend::new(dir.path());
        be.create().unwrap();
        fs::write(dir.path().join("snapshots/README"), b"x").unwrap();
        assert!(be.list(FileType::Snapshot).unwrap().is_empty());
    }
}

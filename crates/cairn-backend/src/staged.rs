//! Staging: a file assembled piece by piece before its name (its hash) is known.

use crate::{BackendError, Result};

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

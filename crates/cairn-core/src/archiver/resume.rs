//! Resuming an interrupted backup without reading again what it had already stored.
//!
//! While a backup runs, every few seconds it makes a checkpoint: the packs holding every
//! finished file's blobs are closed and stored, an index naming them is stored, and only then
//! are those files appended (and fsynced) to a resume log in the local cache. A re-run of the
//! same backup (same repository, host and paths) treats the log like a parent snapshot: a
//! file whose size, mtime, ctime and inode still match and whose blobs the index knows is not
//! read again. Between checkpoints, a file whose blobs all sit in stored packs is logged
//! too (4 times a second), before any index names those packs: a re-run adopts such packs
//! ([`crate::adopt`]), and a file whose blobs it still does not know is simply read again.
//! So a backup killed before its first checkpoint is not read again in full either. The log
//! lives outside the repository, so restic never sees a half-finished
//! snapshot; it is deleted once the snapshot is saved.
//!
//! The log also names every pack the run stored (durably, before the line is written): those
//! are packs this machine saw complete, so adoption trusts their authenticated headers
//! without reading every blob again ([`witnessed_packs`]).

use crate::format::gotime;
use crate::format::tree::{Node, NodeType};
use crate::Id;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// One finished file, as far as change detection needs it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Raw path bytes, base64.
    p: String,
    s: u64,
    m: (i64, u32),
    c: (i64, u32),
    i: u64,
    b: Vec<Id>,
}

impl Entry {
    pub fn from_node(path: &Path, node: &Node) -> Entry {
        use std::os::unix::ffi::OsStrExt;
        Entry {
            p: B64.encode(path.as_os_str().as_bytes()),
            s: node.size,
            m: gotime::to_unix(&node.mtime),
            c: gotime::to_unix(&node.ctime),
            i: node.inode,
            b: node.content.clone().unwrap_or_default(),
        }
    }

    /// The file's data blobs.
    pub fn blobs(&self) -> &[Id] {
        &self.b
    }

    /// A node to compare against, as if it came from a parent snapshot.
    pub fn to_node(&self) -> Node {
        let mut n = Node::new(Vec::new(), NodeType::File);
        n.size = self.s;
        n.mtime = gotime::from_unix_local(self.m.0, self.m.1);
        n.ctime = gotime::from_unix_local(self.c.0, self.c.1);
        n.inode = self.i;
        n.content = Some(self.b.clone());
        n
    }
}

/// A line naming a pack the logging run stored durably.
#[derive(Serialize, Deserialize)]
struct PackLine {
    k: Id,
}

/// Where the log of a backup of `paths` from `host` into repository `repo_id` lives.
pub fn log_path(cache_dir: &Path, repo_id: &str, host: &str, paths: &[String]) -> PathBuf {
    let mut key = host.as_bytes().to_vec();
    for p in paths {
        key.push(0);
        key.extend_from_slice(p.as_bytes());
    }
    let name = format!("{}.jsonl", &Id::hash(&key).to_hex()[..24]);
    cache_dir.join(repo_id).join("cairn-resume").join(name)
}

/// The log of a backup of `targets` (as given on the command line: made absolute and sorted
/// here, as the snapshot stores them).
pub fn log_for_targets(
    cache_dir: &Path,
    repo_id: &str,
    host: &str,
    targets: &[PathBuf],
) -> crate::Result<PathBuf> {
    let mut abs: Vec<String> = targets
        .iter()
        .map(|p| super::absolute_path(p).map(|p| p.to_string_lossy().into_owned()))
        .collect::<crate::Result<_>>()?;
    abs.sort();
    Ok(log_path(cache_dir, repo_id, host, &abs))
}

/// Reads a log; lines that do not parse (a torn last line after a crash) are skipped.
pub fn load(path: &Path) -> HashMap<Vec<u8>, Entry> {
    let mut map = HashMap::new();
    let Ok(f) = std::fs::File::open(path) else {
        return map;
    };
    for line in std::io::BufReader::new(f).lines() {
        let Ok(line) = line else { break };
        // Pack lines (and anything torn) do not parse as entries.
        let Ok(e) = serde_json::from_str::<Entry>(&line) else {
            continue;
        };
        let Ok(p) = B64.decode(&e.p) else { continue };
        map.insert(p, e);
    }
    map
}

/// The packs that interrupted backups on this machine stored durably in repository
/// `repo_id`, from every resume log in its cache directory.
pub fn witnessed_packs(cache_dir: &Path, repo_id: &str) -> HashSet<Id> {
    let mut packs = HashSet::new();
    let Ok(logs) = std::fs::read_dir(cache_dir.join(repo_id).join("cairn-resume")) else {
        return packs;
    };
    for log in logs.flatten() {
        let Ok(f) = std::fs::File::open(log.path()) else {
            continue;
        };
        for line in std::io::BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            if let Ok(p) = serde_json::from_str::<PackLine>(&line) {
                packs.insert(p.k);
            }
        }
    }
    packs
}

/// Appends checkpointed entries durably.
pub struct Log {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Log {
    pub fn new(path: PathBuf) -> Log {
        Log { path, file: None }
    }

    /// Appends finished files and the packs stored since the last call, then syncs.
    pub fn append(&mut self, entries: &[Entry], packs: &[Id]) -> crate::Result<()> {
        if entries.is_empty() && packs.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let f = self.file.as_mut().expect("opened above");
        let mut buf = Vec::new();
        for k in packs {
            serde_json::to_writer(&mut buf, &PackLine { k: *k })?;
            buf.push(b'\n');
        }
        for e in entries {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        f.write_all(&buf)?;
        f.sync_data()?;
        Ok(())
    }

    /// The backup finished: its snapshot now serves as the parent instead.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_lines() {
        let d = tempfile::tempdir().unwrap();
        let path = log_path(d.path(), "repo", "host", &["/a".into()]);
        let mut node = Node::new(b"f".to_vec(), NodeType::File);
        node.size = 5;
        node.inode = 7;
        node.mtime = gotime::from_unix_local(1_700_000_000, 123);
        node.content = Some(vec![Id::hash(b"x")]);
        let e = Entry::from_node(Path::new("/a/f\u{e9}"), &node);
        let mut log = Log::new(path.clone());
        let pack = Id::hash(b"pack");
        log.append(std::slice::from_ref(&e), &[pack]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"p\":")
            .unwrap();
        let map = load(&path);
        assert_eq!(map.len(), 1);
        let back = map.get("/a/f\u{e9}".as_bytes()).unwrap();
        assert_eq!(back, &e);
        assert_eq!(back.to_node().mtime, node.mtime);
        let witnessed = witnessed_packs(d.path(), "repo");
        assert_eq!(witnessed, HashSet::from([pack]));
        log.remove();
        assert!(!path.exists());
    }

    #[test]
    fn log_for_targets_is_independent_of_order_and_spelling() {
        let dir = Path::new("/cache");
        let a = log_for_targets(
            dir,
            "r",
            "h",
            &[PathBuf::from("/b/"), PathBuf::from("/a/./x/..")],
        )
        .expect("absolute");
        assert_eq!(
            a,
            log_path(dir, "r", "h", &["/a".to_string(), "/b".to_string()])
        );
        assert_ne!(
            a,
            log_path(dir, "r", "other", &["/a".to_string(), "/b".to_string()])
        );
    }
}

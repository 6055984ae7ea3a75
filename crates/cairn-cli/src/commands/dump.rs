use super::snapshot_ref;
use crate::global::GlobalOptions;
use cairn_core::format::gotime;
use cairn_core::format::pack::BlobType;
use cairn_core::format::tree::{mode, Node, NodeType};
use cairn_core::repository::Repository;
use cairn_core::Id;
use std::io::{Read, Write};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot id, or "latest"
    snapshot: String,
    /// Path inside the snapshot: a file is written as it is, a directory as an archive
    path: String,
    /// Archive format for directories: tar (zip is not supported yet)
    #[arg(short, long, default_value = "tar")]
    archive: String,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.archive != "tar" {
        anyhow::bail!("unsupported archive format {:?}: cairn dumps directories as tar only (zip is not implemented yet)", a.archive);
    }
    let repo = g.open_with_index()?;
    let (id, snap) = a.filter.find(&repo, &a.snapshot)?;
    let comps: Vec<&str> = a.path.split('/').filter(|c| !c.is_empty()).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    // Find the node the path names (the root itself is a directory without a node).
    let mut tree = snap.tree;
    let mut node: Option<Node> = None;
    for (i, c) in comps.iter().enumerate() {
        let t = repo.load_tree(&tree)?;
        let n = t.find(c.as_bytes()).cloned().ok_or_else(|| {
            anyhow::anyhow!("path {:?} not found in snapshot {}", a.path, id.short())
        })?;
        if i + 1 < comps.len() {
            tree = match (&n.kind, n.subtree) {
                (NodeType::Dir, Some(sub)) => sub,
                _ => anyhow::bail!("path {:?} not found in snapshot {}", a.path, id.short()),
            };
        }
        node = Some(n);
    }
    match node {
        Some(n) if n.kind != NodeType::Dir => {
            std::io::copy(
                &mut BlobReader::new(&repo, n.content.unwrap_or_default()),
                &mut out,
            )?;
        }
        n => {
            let root = n.and_then(|n| n.subtree).unwrap_or(snap.tree);
            let prefix = comps.join("/");
            let mut tar = tar::Builder::new(&mut out);
            tar.follow_symlinks(false);
            dump_tree(&repo, root, &prefix, &mut tar)?;
            tar.finish()?;
        }
    }
    out.flush()?;
    Ok(crate::exit::OK)
}

/// Reads a file's content blob by blob, holding one blob in memory at a time.
struct BlobReader<'r> {
    repo: &'r Repository,
    ids: std::vec::IntoIter<Id>,
    cur: Vec<u8>,
    pos: usize,
}

impl<'r> BlobReader<'r> {
    fn new(repo: &'r Repository, ids: Vec<Id>) -> Self {
        BlobReader {
            repo,
            ids: ids.into_iter(),
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            let Some(id) = self.ids.next() else {
                return Ok(0);
            };
            self.cur = self
                .repo
                .load_blob(BlobType::Data, &id)
                .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
            self.pos = 0;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn header_for(n: &Node) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode::to_unix_perm(n.mode));
    h.set_uid(n.uid as u64);
    h.set_gid(n.gid as u64);
    let _ = h.set_username(&n.user);
    let _ = h.set_groupname(&n.group);
    h.set_mtime(gotime::to_unix(&n.mtime).0.max(0) as u64);
    h.set_size(0);
    h
}

fn dump_tree<W: Write>(
    repo: &Repository,
    tree: Id,
    prefix: &str,
    tar: &mut tar::Builder<W>,
) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let t = repo.load_tree(&tree)?;
    for n in &t.nodes {
        let mut path = prefix.as_bytes().to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&n.name);
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(&path));
        let mut h = header_for(n);
        match n.kind {
            NodeType::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                let mut dir = path.clone();
                dir.push(b'/');
                tar.append_data(
                    &mut h,
                    std::path::Path::new(std::ffi::OsStr::from_bytes(&dir)),
                    std::io::empty(),
                )?;
                if let Some(sub) = n.subtree {
                    dump_tree(repo, sub, &String::from_utf8_lossy(&path), tar)?;
                }
            }
            NodeType::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(
                    &mut h,
                    p,
                    std::path::Path::new(std::ffi::OsStr::from_bytes(&n.linktarget)),
                )?;
            }
            NodeType::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(n.size);
                tar.append_data(
                    &mut h,
                    p,
                    BlobReader::new(repo, n.content.clone().unwrap_or_default()),
                )?;
            }
            // Special files become empty regular files, as in restic's dumps.
            _ => {
                h.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut h, p, std::io::empty())?;
            }
        }
    }
    Ok(())
}

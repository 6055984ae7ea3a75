use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use cairn_core::format::gotime;
use cairn_core::format::tree::{Node, NodeType};
use cairn_core::walk::{self, Visit, Visitor, WalkOptions};
use std::io::Write;

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_when_latest))]
pub struct Args {
    /// Snapshot id, or "latest"
    snapshot: String,
    /// Only list these directories (absolute paths inside the snapshot)
    dirs: Vec<String>,
    /// Use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Descend into subdirectories below the given directories
    #[arg(long)]
    recursive: bool,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = g.open_with_index()?;
    // restic 0.14 picks the snapshot like `find` does (FindFilteredSnapshots with one id): a
    // `latest` that no snapshot matches, or an unknown id, is a warning and lists nothing.
    let Some((id, snap)) = a
        .filter
        .core()
        .select(
            &repo,
            std::slice::from_ref(&a.snapshot),
            &crate::printer::SELECTION,
        )?
        .into_iter()
        .next()
    else {
        return Ok(crate::exit::OK);
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if g.json {
        let mut v = snapshot_ref::to_json(&id, &snap);
        // restic 0.18 names the message as well as the struct.
        v["message_type"] = "snapshot".into();
        v["struct_type"] = "snapshot".into();
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "snapshot {} of [{}] filtered by [{}] at {}):",
            id.short(),
            snap.paths.join(" "),
            a.dirs.join(" "),
            snap.time.format("%Y-%m-%d %H:%M:%S%.f %z")
        )?;
    }
    let dirs: Vec<Vec<u8>> = a
        .dirs
        .iter()
        .map(|d| d.trim_end_matches('/').as_bytes().to_vec())
        .collect();
    let mut ctx = Ls {
        long: a.long,
        json: g.json,
        dirs,
        recursive: a.recursive || a.dirs.is_empty(),
        out: &mut out,
    };
    walk::walk(
        &repo,
        snap.tree,
        b"",
        &WalkOptions::interruptible(&crate::signals::INTERRUPTED),
        &mut ctx,
    )?;
    out.flush()?;
    Ok(crate::exit::OK)
}

struct Ls<'a, W: Write> {
    long: bool,
    json: bool,
    dirs: Vec<Vec<u8>>,
    recursive: bool,
    out: &'a mut W,
}

impl<W: Write> Ls<'_, W> {
    /// Should `path` be printed, and should we descend into it?
    fn filter(&self, path: &[u8]) -> (bool, bool) {
        if self.dirs.is_empty() {
            return (true, true);
        }
        let mut show = false;
        let mut descend = false;
        for d in &self.dirs {
            let under = path.len() > d.len() && path.starts_with(d) && path[d.len()] == b'/';
            let direct_child = under && !path[d.len() + 1..].contains(&b'/');
            let above = d.len() > path.len() && d.starts_with(path) && d[path.len()] == b'/';
            if direct_child || (under && self.recursive) {
                show = true;
            }
            if above || path == d.as_slice() || (under && self.recursive) {
                descend = true;
            }
        }
        (show, descend)
    }

    fn print(&mut self, n: &Node, path: &[u8]) -> anyhow::Result<()> {
        let p = String::from_utf8_lossy(path);
        if self.json {
            let mut v = serde_json::json!({
                "name": n.name_lossy(),
                "type": n.kind.as_str(),
                "path": p,
                "uid": n.uid,
                "gid": n.gid,
            });
            if n.kind == NodeType::File {
                v["size"] = n.size.into();
            }
            v["mode"] = n.mode.into();
            v["permissions"] = output::permissions(n.mode).into();
            v["mtime"] = gotime::format_rfc3339_nano(&n.mtime).into();
            v["atime"] = gotime::format_rfc3339_nano(&n.atime).into();
            v["ctime"] = gotime::format_rfc3339_nano(&n.ctime).into();
            v["inode"] = n.inode.into();
            v["message_type"] = "node".into();
            v["struct_type"] = "node".into();
            writeln!(self.out, "{v}")?;
        } else if self.long {
            // Names and targets are written as raw bytes, as restic does.
            let mut line = format!(
                "{} {:5} {:5} {:6} {} ",
                output::permissions(n.mode),
                n.uid,
                n.gid,
                n.size,
                output::local_time(&n.mtime),
            )
            .into_bytes();
            line.extend_from_slice(path);
            if n.kind == NodeType::Symlink {
                line.extend_from_slice(b" -> ");
                line.extend_from_slice(&n.linktarget);
            }
            line.push(b'\n');
            self.out.write_all(&line)?;
        } else {
            self.out.write_all(path)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Nodes in tree order, as `ls` always listed them; directories outside the filter are not
/// read at all.
impl<W: Write> Visitor for Ls<'_, W> {
    fn node(&mut self, path: &[u8], n: &Node, _depth: usize) -> anyhow::Result<Visit> {
        let (show, descend) = self.filter(path);
        if show {
            self.print(n, path)?;
        }
        // A directory without a subtree is listed but not entered, as before.
        let enter = descend && !(n.kind == NodeType::Dir && n.subtree.is_none());
        Ok(if enter { Visit::Descend } else { Visit::Skip })
    }
}

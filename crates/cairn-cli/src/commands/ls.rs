//! `ls`: the nodes of one snapshot, as restic 0.18 lists them: in tree order or sorted
//! (`--sort`, `--reverse`), as text (`-l`, `--human-readable`), JSON lines, or an ncdu export
//! (`--ncdu`, <https://dev.yorhel.nl/ncdu/jsonfmt>).

use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use cairn_core::format::gojson::write_json_bytes_as_str;
use cairn_core::format::gotime;
use cairn_core::format::tree::{mode, Node, NodeType};
use cairn_core::walk::{self, Visit, Visitor, WalkOptions};
use std::cmp::Ordering;
use std::io::Write;

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_when_latest))]
pub struct Args {
    /// Snapshot id, or "latest", optionally followed by :SUBFOLDER
    snapshot: String,
    /// Only list these directories (absolute paths inside the snapshot)
    dirs: Vec<String>,
    /// Use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Include files in subfolders of the listed directories
    #[arg(long)]
    recursive: bool,
    /// Print sizes in human readable format
    #[arg(long)]
    human_readable: bool,
    /// Output NCDU export format (pipe into 'ncdu -f -')
    #[arg(long)]
    ncdu: bool,
    /// Sort output by (name|size|time=mtime|atime|ctime|extension)
    #[arg(short = 's', long, value_name = "mode", default_value = "name", value_parser = parse_sort)]
    sort: SortMode,
    /// Reverse sorted output
    #[arg(long)]
    reverse: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SortMode {
    Name,
    Size,
    Atime,
    Ctime,
    Mtime,
    Extension,
}

fn parse_sort(s: &str) -> Result<SortMode, String> {
    Ok(match s {
        "name" => SortMode::Name,
        "size" => SortMode::Size,
        "atime" => SortMode::Atime,
        "ctime" => SortMode::Ctime,
        "mtime" | "time" => SortMode::Mtime,
        "extension" => SortMode::Extension,
        _ => {
            return Err(format!(
            "invalid sort mode {s:?}, must be one of (name|size|time=mtime|atime|ctime|extension)"
        ))
        }
    })
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.ncdu && g.json {
        anyhow::bail!("only either '--json' or '--ncdu' can be specified");
    }
    if a.sort != SortMode::Name && a.ncdu {
        anyhow::bail!("--sort and --ncdu are mutually exclusive");
    }
    if a.reverse && a.ncdu {
        anyhow::bail!("--reverse and --ncdu are mutually exclusive");
    }
    if a.dirs.iter().any(|d| !d.starts_with('/')) {
        anyhow::bail!("All path filters must be absolute, starting with a forward slash '/'");
    }
    let repo = g.open_with_index()?;
    // restic 0.18's `ID:SUBFOLDER` lists that directory as the root (and names its tree).
    let (spec, sub) = match a.snapshot.split_once(':') {
        Some((s, p)) => (s.to_string(), Some(p)),
        None => (a.snapshot.clone(), None),
    };
    // A `latest` that no snapshot matches, or an unknown id, is a warning and lists nothing
    // (restic picks the snapshot as `find` does).
    let Some((id, mut snap)) = a
        .filter
        .core()
        .select(
            &repo,
            std::slice::from_ref(&spec),
            &crate::printer::SELECTION,
        )?
        .into_iter()
        .next()
    else {
        return Ok(crate::exit::OK);
    };
    if let Some(sub) = sub {
        snap.tree = walk::subtree_at(&repo, snap.tree, sub)
            .map_err(|e| anyhow::anyhow!("snapshot {}: {e:#}", id.short()))?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let style = if g.json {
        let mut v = snapshot_ref::to_json(&id, &snap);
        // restic 0.18 names the message as well as the struct.
        v["message_type"] = "snapshot".into();
        v["struct_type"] = "snapshot".into();
        writeln!(out, "{}", go_escaped(v.to_string()))?;
        Style::Json
    } else if a.ncdu {
        // ncdu's header: format version 1.2, then restic's snapshot (without its id) as the
        // metadata object, then the root directory's list.
        let meta = go_escaped(String::from_utf8_lossy(&snap.to_json()).into_owned());
        write!(out, "[1, 2, {meta}, [{{\"name\":\"/\"}}")?;
        Style::Ncdu
    } else {
        if !g.quiet {
            writeln!(
                out,
                "snapshot {} of [{}] at {} by {}@{} filtered by [{}]:",
                id.short(),
                snap.paths.join(" "),
                gotime::go_string(&snap.time),
                snap.username,
                snap.hostname,
                a.dirs.join(" ")
            )?;
        }
        Style::Text {
            long: a.long,
            human: a.human_readable,
        }
    };
    let sorted = a.sort != SortMode::Name || a.reverse;
    let mut ctx = Ls {
        style,
        dirs: a.dirs.iter().map(|d| components(d.as_bytes())).collect(),
        recursive: a.recursive,
        depth: 1,
        collected: sorted.then(Vec::new),
        out: &mut out,
    };
    walk::walk(
        &repo,
        snap.tree,
        b"",
        &WalkOptions::interruptible(&crate::signals::INTERRUPTED),
        &mut ctx,
    )?;
    if let Some(mut nodes) = ctx.collected.take() {
        sort_nodes(&mut nodes, a.sort);
        if a.reverse {
            nodes.reverse();
        }
        for (path, n) in &nodes {
            ctx.print(n, path)?;
        }
    }
    if style == Style::Ncdu {
        ctx.out.write_all(b"\n]\n]\n")?;
    }
    out.flush()?;
    Ok(crate::exit::OK)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Text { long: bool, human: bool },
    Json,
    Ncdu,
}

/// A path's non-empty components after Go's `path.Clean` (`.` dropped, `..` taken back), as
/// restic's `fs.HasPathPrefix` compares them.
fn components(p: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = Vec::new();
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                v.pop();
            }
            c => v.push(c),
        }
    }
    v
}

fn has_prefix(base: &[&[u8]], p: &[&[u8]]) -> bool {
    base.len() <= p.len() && base.iter().zip(p).all(|(a, b)| a == b)
}

/// restic 0.18's orders: the key, then the path (bytewise) among equals; a stable sort.
fn sort_nodes(nodes: &mut [(Vec<u8>, Node)], by: SortMode) {
    let key = |a: &(Vec<u8>, Node), b: &(Vec<u8>, Node)| -> Ordering {
        match by {
            SortMode::Name => Ordering::Equal,
            SortMode::Size => a.1.size.cmp(&b.1.size),
            SortMode::Mtime => a.1.mtime.cmp(&b.1.mtime),
            SortMode::Atime => a.1.atime.cmp(&b.1.atime),
            SortMode::Ctime => a.1.ctime.cmp(&b.1.ctime),
            SortMode::Extension => extension(&a.0).cmp(extension(&b.0)),
        }
    };
    if by != SortMode::Name {
        nodes.sort_by(|a, b| key(a, b).then_with(|| a.0.cmp(&b.0)));
    }
}

/// Go's `filepath.Ext`: from the last dot of the last path element, or nothing.
fn extension(path: &[u8]) -> &[u8] {
    for i in (0..path.len()).rev() {
        match path[i] {
            b'/' => break,
            b'.' => return &path[i..],
            _ => {}
        }
    }
    b""
}

struct Ls<'a, W: Write> {
    style: Style,
    dirs: Vec<Vec<&'a [u8]>>,
    recursive: bool,
    /// ncdu's nesting: one more per open directory list.
    depth: usize,
    /// With --sort or --reverse: the listed nodes, printed after the walk.
    collected: Option<Vec<(Vec<u8>, Node)>>,
    out: &'a mut W,
}

impl<W: Write> Ls<'_, W> {
    /// Inside one of the listed directories (or no directories given)?
    fn within(&self, path: &[&[u8]]) -> bool {
        self.dirs.is_empty() || self.dirs.iter().any(|d| has_prefix(d, path))
    }

    /// On the way to one of the listed directories?
    fn approaching(&self, path: &[&[u8]]) -> bool {
        self.dirs.is_empty() || self.dirs.iter().any(|d| has_prefix(path, d))
    }

    /// A listed node, or (`leading`) a directory on the way to a listed one, which only the
    /// ncdu export shows (it needs the whole nesting).
    fn emit(&mut self, n: &Node, path: &[u8], leading: bool) -> anyhow::Result<()> {
        if self.style == Style::Ncdu {
            return self.ncdu_node(n);
        }
        if leading {
            return Ok(());
        }
        match &mut self.collected {
            Some(v) => v.push((path.to_vec(), n.clone())),
            None => self.print(n, path)?,
        }
        Ok(())
    }

    fn print(&mut self, n: &Node, path: &[u8]) -> anyhow::Result<()> {
        match self.style {
            Style::Json => writeln!(self.out, "{}", go_escaped(node_json(n, path).to_string()))?,
            Style::Text { long, human } => {
                let mut line = Vec::with_capacity(path.len() + 64);
                output::node_line(&mut line, path, n, long, human);
                line.push(b'\n');
                self.out.write_all(&line)?;
            }
            Style::Ncdu => self.ncdu_node(n)?,
        }
        Ok(())
    }

    /// One ncdu entry; a directory opens a list that [`Self::ncdu_leave`] closes.
    fn ncdu_node(&mut self, n: &Node) -> anyhow::Result<()> {
        let entry = ncdu_entry(n);
        let pad = "  ".repeat(self.depth);
        if n.kind == NodeType::Dir {
            write!(self.out, ",\n{pad}[\n{pad}  ")?;
            self.out.write_all(&entry)?;
            self.depth += 1;
        } else {
            write!(self.out, ",\n{pad}")?;
            self.out.write_all(&entry)?;
        }
        Ok(())
    }

    fn ncdu_leave(&mut self) -> anyhow::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        write!(self.out, "\n{}]", "  ".repeat(self.depth))?;
        Ok(())
    }
}

/// serde_json's text as Go's encoder writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped.
/// In JSON text these characters only occur inside strings, so replacing them everywhere is
/// exact.
fn go_escaped(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A node as restic 0.18's `ls --json` writes it.
fn node_json(n: &Node, path: &[u8]) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": n.name_lossy(),
        "type": n.kind.as_str(),
        "path": String::from_utf8_lossy(path),
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
    v
}

/// An ncdu "infoblock": sizes (the disk size rounded up to 512-byte blocks), device, inode,
/// links, the permission bits with setuid/setgid/sticky where inode(7) puts them, and the
/// mtime (never negative: ncdu refuses that).
fn ncdu_entry(n: &Node) -> Vec<u8> {
    let size = if n.kind == NodeType::File { n.size } else { 0 };
    let mut perm = n.mode & 0o777;
    for (go, unix) in [
        (mode::SETUID, 0o4000),
        (mode::SETGID, 0o2000),
        (mode::STICKY, 0o1000),
    ] {
        if n.mode & go != 0 {
            perm |= unix;
        }
    }
    let mtime = gotime::to_unix(&n.mtime).0.max(0);
    let mut b = Vec::with_capacity(200);
    b.extend_from_slice(b"{\"name\":");
    write_json_bytes_as_str(&mut b, &n.name);
    b.extend_from_slice(
        format!(
            ",\"asize\":{size},\"dsize\":{},\"dev\":{},\"ino\":{},\"nlink\":{},\"notreg\":{},\"uid\":{},\"gid\":{},\"mode\":{perm},\"mtime\":{mtime}}}",
            size.div_ceil(512).saturating_mul(512),
            n.device_id,
            n.inode,
            n.links,
            !matches!(n.kind, NodeType::Dir | NodeType::File),
            n.uid,
            n.gid,
        )
        .as_bytes(),
    );
    b
}

/// restic's walk for `ls`: a node inside a listed directory is listed, and entered only with
/// `--recursive` or when a listed directory lies deeper; everything else is not read at all.
impl<W: Write> Visitor for Ls<'_, W> {
    fn node(&mut self, path: &[u8], n: &Node, _depth: usize) -> anyhow::Result<Visit> {
        let parts = components(path);
        let mut listed = false;
        if self.within(&parts) {
            self.emit(n, path, false)?;
            listed = true;
            if self.recursive {
                return self.enter(n);
            }
        }
        if self.approaching(&parts) {
            if !listed {
                self.emit(n, path, true)?;
            }
            return self.enter(n);
        }
        if n.kind == NodeType::Dir && listed && self.style == Style::Ncdu {
            // Listed but not entered: its ncdu list closes at once.
            self.ncdu_leave()?;
        }
        Ok(Visit::Skip)
    }

    fn leave(&mut self, _path: &[u8], _n: &Node, _depth: usize) -> anyhow::Result<()> {
        if self.style == Style::Ncdu {
            self.ncdu_leave()?;
        }
        Ok(())
    }
}

impl<W: Write> Ls<'_, W> {
    /// Directories are entered; a directory without a subtree is listed but not entered
    /// (for ncdu its list closes at once).
    fn enter(&mut self, n: &Node) -> anyhow::Result<Visit> {
        if n.kind == NodeType::Dir && n.subtree.is_none() {
            if self.style == Style::Ncdu {
                self.ncdu_leave()?;
            }
            return Ok(Visit::Skip);
        }
        Ok(Visit::Descend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_prefixes_are_gos() {
        assert_eq!(extension(b"/a/b.tar.gz"), b".gz");
        assert_eq!(extension(b"/a.d/b"), b"");
        assert_eq!(extension(b"/a/.bashrc"), b".bashrc");
        assert!(has_prefix(&components(b"/src/d"), &components(b"/src/d/")));
        assert!(has_prefix(&components(b"/src"), &components(b"/src/./d")));
        assert!(!has_prefix(&components(b"/src/d"), &components(b"/src/dd")));
    }
}

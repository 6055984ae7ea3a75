//! `find`: files and directories whose paths match patterns, or the files and directories
//! that hold given blobs, trees or packs, in every snapshot (or the chosen ones), printed
//! as restic prints them. The search is the core's ([`cairn_core::find`]); snapshots are
//! searched newest first, or oldest first with `--reverse`, as in restic 0.18 (0.14's order
//! was unspecified).

use super::snapshot_ref;
use crate::global::GlobalOptions;
use crate::output;
use cairn_core::find::{
    self, go_parse_id, go_to_lower, FindOutput, IdKind, IdSearch, PatternSearch,
};
use cairn_core::format::gojson::{write_json_bytes_as_str, write_json_str};
use cairn_core::format::gotime::{self, GoTime};
use cairn_core::format::tree::Node;
use cairn_core::repository::IndexedRepository;
use cairn_core::util::timeparse;
use cairn_core::walk::WalkOptions;
use cairn_core::Id;
use std::io::Write;

#[derive(clap::Args)]
#[command(mut_args(snapshot_ref::help_without_ids))]
pub struct Args {
    /// File name patterns to search for (or IDs, with --blob, --tree or --pack)
    #[arg(value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Oldest modification date/time
    #[arg(short = 'O', long)]
    oldest: Option<String>,
    /// Newest modification date/time
    #[arg(short = 'N', long)]
    newest: Option<String>,
    /// Snapshot id to search in (can be given multiple times)
    #[arg(short = 's', long = "snapshot", value_name = "ID")]
    snapshots: Vec<String>,
    /// Pattern is a blob-ID
    #[arg(long)]
    blob: bool,
    /// Pattern is a tree-ID
    #[arg(long)]
    tree: bool,
    /// Pattern is a pack-ID
    #[arg(long)]
    pack: bool,
    /// Display the pack-ID the blobs belong to (with --blob or --tree)
    #[arg(long)]
    show_pack_id: bool,
    /// Ignore case for pattern
    #[arg(short = 'i', long)]
    ignore_case: bool,
    /// Use a long listing format showing size and mode
    #[arg(short = 'l', long)]
    long: bool,
    /// Print sizes in human readable format
    #[arg(long)]
    human_readable: bool,
    /// Reverse sort order oldest to newest
    #[arg(short = 'R', long)]
    reverse: bool,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.patterns.is_empty() {
        anyhow::bail!("wrong number of arguments");
    }
    let mut patterns = a.patterns.clone();
    if a.ignore_case {
        for p in &mut patterns {
            *p = String::from_utf8_lossy(&go_to_lower(p.as_bytes())).into_owned();
        }
    }
    let oldest = match a.oldest.as_deref() {
        Some(s) if !s.is_empty() => Some(timeparse::parse(s)?),
        _ => None,
    };
    let newest = match a.newest.as_deref() {
        Some(s) if !s.is_empty() => Some(timeparse::parse(s)?),
        _ => None,
    };
    if [a.blob, a.tree, a.pack].iter().filter(|x| **x).count() > 1 {
        anyhow::bail!("cannot have several ID types");
    }
    let id_kind = match (a.blob, a.tree, a.pack) {
        (true, _, _) => Some(IdKind::Blob),
        (_, true, _) => Some(IdKind::Tree),
        (_, _, true) => Some(IdKind::Pack),
        _ => None,
    };

    let repo = g.open_with_index()?;
    let stdout = std::io::stdout();
    let mut out = Output {
        w: std::io::BufWriter::new(stdout.lock()),
        json: g.json,
        long: a.long,
        human: a.human_readable,
        quiet: g.quiet,
        inuse: false,
        current: None,
        printed: None,
        hits: 0,
    };
    // Packs are resolved before the snapshots are chosen, so their errors come first.
    let mut ids = id_kind
        .map(|k| IdSearch::new(&repo, k, &patterns, &crate::printer::SELECTION))
        .transpose()?;
    let mut snaps = a
        .filter
        .core()
        .select(&repo, &a.snapshots, &crate::printer::SELECTION)?;
    // restic 0.18's order: newest first, oldest first with --reverse.
    snaps.sort_by_key(|s| s.1.time);
    if !a.reverse {
        snaps.reverse();
    }
    // Every walk stops at Ctrl-C.
    let walk = WalkOptions::interruptible(&crate::signals::INTERRUPTED);
    match ids.as_mut() {
        Some(ids) => find::search_ids(&repo, &snaps, ids, &walk, &mut out)?,
        None => {
            let q = PatternSearch {
                patterns,
                ignore_case: a.ignore_case,
                oldest,
                newest,
            };
            find::search_patterns(&repo, &snaps, &q, &walk, &mut out)?
        }
    }
    out.finish()?;

    if let (true, Some(ids)) = (a.show_pack_id, &ids) {
        show_packs(&repo, ids, &mut out.w)?;
    }
    out.w.flush()?;
    Ok(crate::exit::OK)
}

// ---------------------------------------------------------------------------------------------
// Output, in restic's exact shapes (including its hand-assembled JSON array)

struct Output<W: Write> {
    w: W,
    json: bool,
    long: bool,
    human: bool,
    quiet: bool,
    /// Has the JSON array been opened?
    inuse: bool,
    /// The snapshot being searched (id, time).
    current: Option<(Id, GoTime)>,
    /// The snapshot whose matches were printed last.
    printed: Option<Id>,
    hits: usize,
}

impl<W: Write> FindOutput for Output<W> {
    fn snapshot(&mut self, id: &Id, time: &GoTime) -> anyhow::Result<()> {
        self.current = Some((*id, *time));
        Ok(())
    }

    fn pattern(&mut self, path: &[u8], node: &Node) -> anyhow::Result<()> {
        let (sid, stime) = self.current.expect("a snapshot is being searched");
        if self.json {
            if !self.inuse {
                self.w.write_all(b"[")?;
                self.inuse = true;
            }
            if self.printed != Some(sid) {
                if let Some(old) = self.printed {
                    write!(
                        self.w,
                        "],\"hits\":{},\"snapshot\":\"{}\"}},",
                        self.hits, old
                    )?;
                }
                self.w.write_all(b"{\"matches\":[")?;
                self.printed = Some(sid);
                self.hits = 0;
            }
            if self.hits > 0 {
                self.w.write_all(b",")?;
            }
            let mut buf = Vec::with_capacity(256);
            node_json(&mut buf, path, node);
            self.w.write_all(&buf)?;
            self.hits += 1;
        } else {
            if self.printed != Some(sid) {
                if self.printed.is_some() && !self.quiet {
                    self.w.write_all(b"\n")?;
                }
                self.printed = Some(sid);
                if !self.quiet {
                    writeln!(
                        self.w,
                        "Found matching entries in snapshot {} from {}",
                        sid.short(),
                        output::local_time(&stime)
                    )?;
                }
            }
            let mut line = Vec::with_capacity(path.len() + 64);
            output::node_line(&mut line, path, node, self.long, self.human);
            line.push(b'\n');
            self.w.write_all(&line)?;
        }
        Ok(())
    }

    fn object(
        &mut self,
        kind: &str,
        id: &Id,
        path: &[u8],
        parent: Option<&Id>,
    ) -> anyhow::Result<()> {
        let (sid, stime) = self.current.expect("a snapshot is being searched");
        if self.json {
            if !self.inuse {
                self.w.write_all(b"[")?;
                self.inuse = true;
            }
            if self.hits > 0 {
                self.w.write_all(b",")?;
            }
            let mut b = Vec::with_capacity(300);
            b.extend_from_slice(b"{\"object_type\":");
            write_json_str(&mut b, kind);
            b.extend_from_slice(format!(",\"id\":\"{id}\",\"path\":").as_bytes());
            write_json_bytes_as_str(&mut b, path);
            if let Some(p) = parent {
                b.extend_from_slice(format!(",\"parent_tree\":\"{p}\"").as_bytes());
            }
            b.extend_from_slice(
                format!(
                    ",\"snapshot\":\"{sid}\",\"time\":\"{}\"}}",
                    gotime::format_rfc3339_nano(&stime)
                )
                .as_bytes(),
            );
            self.w.write_all(&b)?;
            self.hits += 1;
        } else {
            let mut b = format!("Found {kind} {id}\n").into_bytes();
            if kind == "blob" {
                b.extend_from_slice(b" ... in file ");
                b.extend_from_slice(path);
                let p = parent.map(|p| p.to_hex()).unwrap_or_default();
                b.extend_from_slice(format!("\n     (tree {p})\n").as_bytes());
            } else {
                b.extend_from_slice(b" ... path ");
                b.extend_from_slice(path);
                b.push(b'\n');
            }
            b.extend_from_slice(
                format!(
                    " ... in snapshot {} ({})\n",
                    sid.short(),
                    output::local_time(&stime)
                )
                .as_bytes(),
            );
            self.w.write_all(&b)?;
        }
        Ok(())
    }

    /// restic prints this to stdout, even with --json.
    fn load_error(&mut self, parent: &Id) -> anyhow::Result<()> {
        let (sid, _) = self.current.expect("a snapshot is being searched");
        write!(
            self.w,
            "Unable to load tree {parent}\n ... which belongs to snapshot {sid}\n"
        )?;
        Ok(())
    }
}

impl<W: Write> Output<W> {
    fn finish(&mut self) -> anyhow::Result<()> {
        if self.json {
            if let Some(old) = self.printed {
                write!(
                    self.w,
                    "],\"hits\":{},\"snapshot\":\"{}\"}}",
                    self.hits, old
                )?;
            }
            if self.inuse {
                self.w.write_all(b"]\n")?;
            } else {
                self.w.write_all(b"[]\n")?;
            }
        }
        Ok(())
    }
}

/// A match as restic 0.18's `find --json` writes it: the node's JSON fields minus name,
/// extended attributes, device, content and subtree, after `path` and `permissions`.
fn node_json(out: &mut Vec<u8>, path: &[u8], n: &Node) {
    out.extend_from_slice(b"{\"path\":");
    write_json_bytes_as_str(out, path);
    out.extend_from_slice(b",\"permissions\":");
    write_json_str(out, &output::permissions(n.mode));
    out.extend_from_slice(b",\"type\":");
    write_json_str(out, n.kind.as_str());
    if n.mode != 0 {
        out.extend_from_slice(format!(",\"mode\":{}", n.mode).as_bytes());
    }
    for (k, t) in [
        ("mtime", &n.mtime),
        ("atime", &n.atime),
        ("ctime", &n.ctime),
    ] {
        out.extend_from_slice(
            format!(",\"{k}\":\"{}\"", gotime::format_rfc3339_nano(t)).as_bytes(),
        );
    }
    out.extend_from_slice(format!(",\"uid\":{},\"gid\":{}", n.uid, n.gid).as_bytes());
    for (k, v) in [("user", &n.user), ("group", &n.group)] {
        if !v.is_empty() {
            out.extend_from_slice(format!(",\"{k}\":").as_bytes());
            write_json_str(out, v);
        }
    }
    for (k, v) in [
        // restic 0.18 shows the inode (0.14 left it out).
        ("inode", n.inode),
        ("device_id", n.device_id),
        ("size", n.size),
        ("links", n.links),
    ] {
        if v != 0 {
            out.extend_from_slice(format!(",\"{k}\":{v}").as_bytes());
        }
    }
    if !n.linktarget.is_empty() {
        out.extend_from_slice(b",\"linktarget\":");
        write_json_bytes_as_str(out, &n.linktarget);
    }
    if !n.error.is_empty() {
        out.extend_from_slice(b",\"error\":");
        write_json_str(out, &n.error);
    }
    out.push(b'}');
}

/// `--show-pack-id`: where each blob and tree searched for is stored.
fn show_packs<W: Write>(repo: &IndexedRepository, ids: &IdSearch, w: &mut W) -> anyhow::Result<()> {
    for (ty, s) in ids.wanted() {
        let id = match go_parse_id(&s) {
            Ok(id) => id,
            Err(e) => {
                writeln!(
                    w,
                    "Note: cannot find pack for object '{s}', unable to parse ID: {e}"
                )?;
                continue;
            }
        };
        match repo.index().lookup_all(ty, &id).first() {
            None => writeln!(w, "Object {} not found in the index", id.short())?,
            Some(loc) => {
                let b = &loc.blob;
                writeln!(
                    w,
                    "Object belongs to pack {}\n ... Pack {}: <Blob ({}) {}, offset {}, length {}, uncompressed length {}>",
                    loc.pack,
                    loc.pack.short(),
                    b.ty,
                    b.id.short(),
                    b.offset,
                    b.length,
                    b.uncompressed_length
                )?;
            }
        }
    }
    Ok(())
}

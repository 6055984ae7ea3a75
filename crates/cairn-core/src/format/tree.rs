//! Tree blobs: a directory's nodes, serialized exactly as restic (Go `encoding/json`) does,
//! so that trees cairn writes deduplicate against trees restic wrote.

use crate::format::gojson::{
    go_quote_inner, go_unquote_inner, write_json_bytes_as_str, write_json_str,
};
use crate::format::gotime::{self, GoTime};
use crate::Id;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write as _;

/// Go `io/fs` mode bits, as stored in `mode`.
pub mod mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    pub const PERM: u32 = 0o777;

    /// Go's FileMode for a Unix `st_mode`, keeping what restic keeps.
    pub fn from_unix(st_mode: u32) -> u32 {
        let mut m = st_mode & PERM;
        m |= match st_mode & libc::S_IFMT {
            libc::S_IFDIR => DIR,
            libc::S_IFLNK => SYMLINK,
            libc::S_IFBLK => DEVICE,
            libc::S_IFCHR => DEVICE | CHAR_DEVICE,
            libc::S_IFIFO => NAMED_PIPE,
            libc::S_IFSOCK => SOCKET,
            _ => 0,
        };
        if st_mode & libc::S_ISUID != 0 {
            m |= SETUID;
        }
        if st_mode & libc::S_ISGID != 0 {
            m |= SETGID;
        }
        if st_mode & libc::S_ISVTX != 0 {
            m |= STICKY;
        }
        m
    }

    /// The permission bits (with setuid/setgid/sticky) to pass to chmod.
    pub fn to_unix_perm(m: u32) -> u32 {
        let mut p = m & PERM;
        if m & SETUID != 0 {
            p |= libc::S_ISUID;
        }
        if m & SETGID != 0 {
            p |= libc::S_ISGID;
        }
        if m & STICKY != 0 {
            p |= libc::S_ISVTX;
        }
        p
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeType {
    File,
    Dir,
    Symlink,
    Dev,
    Chardev,
    Fifo,
    Socket,
    Other(String),
}

impl NodeType {
    pub fn as_str(&self) -> &str {
        match self {
            NodeType::File => "file",
            NodeType::Dir => "dir",
            NodeType::Symlink => "symlink",
            NodeType::Dev => "dev",
            NodeType::Chardev => "chardev",
            NodeType::Fifo => "fifo",
            NodeType::Socket => "socket",
            NodeType::Other(s) => s,
        }
    }
    fn parse(s: &str) -> NodeType {
        match s {
            "file" => NodeType::File,
            "dir" => NodeType::Dir,
            "symlink" => NodeType::Symlink,
            "dev" => NodeType::Dev,
            "chardev" => NodeType::Chardev,
            "fifo" => NodeType::Fifo,
            "socket" => NodeType::Socket,
            o => NodeType::Other(o.to_string()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendedAttribute {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Raw name bytes (may not be UTF-8).
    pub name: Vec<u8>,
    pub kind: NodeType,
    pub mode: u32,
    pub mtime: GoTime,
    pub atime: GoTime,
    pub ctime: GoTime,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub inode: u64,
    pub device_id: u64,
    pub size: u64,
    pub links: u64,
    /// Raw symlink target bytes.
    pub linktarget: Vec<u8>,
    pub extended_attributes: Vec<ExtendedAttribute>,
    /// Kept verbatim so that attributes cairn does not interpret survive a round trip.
    pub generic_attributes: BTreeMap<String, String>,
    pub device: u64,
    pub content: Option<Vec<Id>>,
    pub subtree: Option<Id>,
    pub error: String,
}

impl Node {
    pub fn new(name: Vec<u8>, kind: NodeType) -> Node {
        let epoch = gotime::from_unix_local(0, 0);
        Node {
            name,
            kind,
            mode: 0,
            mtime: epoch,
            atime: epoch,
            ctime: epoch,
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 0,
            links: 0,
            linktarget: Vec::new(),
            extended_attributes: Vec::new(),
            generic_attributes: BTreeMap::new(),
            device: 0,
            content: None,
            subtree: None,
            error: String::new(),
        }
    }

    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// Appends this node's JSON, field for field as Go writes restic's `Node`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"name\":");
        write_json_str(out, &go_quote_inner(&self.name));
        out.extend_from_slice(b",\"type\":");
        write_json_str(out, self.kind.as_str());
        if self.mode != 0 {
            let _ = write!(out, ",\"mode\":{}", self.mode);
        }
        for (k, t) in [
            ("mtime", &self.mtime),
            ("atime", &self.atime),
            ("ctime", &self.ctime),
        ] {
            let _ = write!(out, ",\"{k}\":\"{}\"", gotime::format_rfc3339_nano(t));
        }
        let _ = write!(out, ",\"uid\":{},\"gid\":{}", self.uid, self.gid);
        if !self.user.is_empty() {
            out.extend_from_slice(b",\"user\":");
            write_json_str(out, &self.user);
        }
        if !self.group.is_empty() {
            out.extend_from_slice(b",\"group\":");
            write_json_str(out, &self.group);
        }
        for (k, v) in [
            ("inode", self.inode),
            ("device_id", self.device_id),
            ("size", self.size),
            ("links", self.links),
        ] {
            if v != 0 {
                let _ = write!(out, ",\"{k}\":{v}");
            }
        }
        if !self.linktarget.is_empty() {
            out.extend_from_slice(b",\"linktarget\":");
            write_json_bytes_as_str(out, &self.linktarget);
            if std::str::from_utf8(&self.linktarget).is_err() {
                out.extend_from_slice(b",\"linktarget_raw\":\"");
                out.extend_from_slice(B64.encode(&self.linktarget).as_bytes());
                out.push(b'"');
            }
        }
        if !self.extended_attributes.is_empty() {
            out.extend_from_slice(b",\"extended_attributes\":[");
            for (i, xa) in self.extended_attributes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"name\":");
                write_json_bytes_as_str(out, &xa.name);
                out.extend_from_slice(b",\"value\":");
                if xa.value.is_empty() {
                    // Go marshals a nil []byte as null; restic reads back nil for empty values.
                    out.extend_from_slice(b"null");
                } else {
                    out.push(b'"');
                    out.extend_from_slice(B64.encode(&xa.value).as_bytes());
                    out.push(b'"');
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        if !self.generic_attributes.is_empty() {
            out.extend_from_slice(b",\"generic_attributes\":{");
            for (i, (k, v)) in self.generic_attributes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, k);
                out.push(b':');
                out.extend_from_slice(v.as_bytes());
            }
            out.push(b'}');
        }
        if self.device != 0 {
            let _ = write!(out, ",\"device\":{}", self.device);
        }
        out.extend_from_slice(b",\"content\":");
        match &self.content {
            None => out.extend_from_slice(b"null"),
            Some(ids) => {
                out.push(b'[');
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'"');
                    out.extend_from_slice(id.to_hex().as_bytes());
                    out.push(b'"');
                }
                out.push(b']');
            }
        }
        if let Some(st) = &self.subtree {
            let _ = write!(out, ",\"subtree\":\"{st}\"");
        }
        if !self.error.is_empty() {
            out.extend_from_slice(b",\"error\":");
            write_json_str(out, &self.error);
        }
        out.push(b'}');
    }
}

/// The JSON shape of a node, for reading.
#[derive(Deserialize)]
struct NodeJson {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    mode: u32,
    #[serde(default)]
    mtime: Option<String>,
    #[serde(default)]
    atime: Option<String>,
    #[serde(default)]
    ctime: Option<String>,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    #[serde(default)]
    user: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    inode: u64,
    #[serde(default)]
    device_id: u64,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    links: u64,
    #[serde(default)]
    linktarget: String,
    #[serde(default)]
    linktarget_raw: Option<String>,
    #[serde(default)]
    extended_attributes: Option<Vec<XattrJson>>,
    #[serde(default)]
    generic_attributes: Option<BTreeMap<String, Box<serde_json::value::RawValue>>>,
    #[serde(default)]
    device: u64,
    #[serde(default)]
    content: Option<Vec<Id>>,
    #[serde(default)]
    subtree: Option<Id>,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct XattrJson {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct TreeJson {
    #[serde(default)]
    nodes: Option<Vec<NodeJson>>,
}

fn parse_time(s: &Option<String>) -> anyhow::Result<GoTime> {
    match s {
        Some(s) => Ok(gotime::parse_rfc3339(s)?),
        None => Ok(gotime::from_unix_local(0, 0)),
    }
}

impl TryFrom<NodeJson> for Node {
    type Error = anyhow::Error;
    fn try_from(j: NodeJson) -> anyhow::Result<Node> {
        let name = go_unquote_inner(&j.name)
            .map_err(|e| anyhow::anyhow!("node name {:?}: {e}", j.name))?;
        let linktarget = match j.linktarget_raw {
            Some(raw) => B64
                .decode(raw)
                .map_err(|e| anyhow::anyhow!("node {:?}: invalid linktarget_raw: {e}", j.name))?,
            None => j.linktarget.into_bytes(),
        };
        let mut xattrs = Vec::new();
        for x in j.extended_attributes.unwrap_or_default() {
            let value = match x.value {
                Some(v) => B64
                    .decode(v)
                    .map_err(|e| anyhow::anyhow!("node {:?}: invalid xattr value: {e}", j.name))?,
                None => Vec::new(),
            };
            xattrs.push(ExtendedAttribute {
                name: x.name.into_bytes(),
                value,
            });
        }
        Ok(Node {
            name,
            kind: NodeType::parse(&j.kind),
            mode: j.mode,
            mtime: parse_time(&j.mtime)?,
            atime: parse_time(&j.atime)?,
            ctime: parse_time(&j.ctime)?,
            uid: j.uid,
            gid: j.gid,
            user: j.user,
            group: j.group,
            inode: j.inode,
            device_id: j.device_id,
            size: j.size,
            links: j.links,
            linktarget,
            extended_attributes: xattrs,
            generic_attributes: j
                .generic_attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.get().to_string()))
                .collect(),
            device: j.device,
            content: j.content,
            subtree: j.subtree,
            error: j.error,
        })
    }
}

/// Why a node name cannot name an entry of a directory, if it cannot: empty, `.`, `..`, or
/// containing `/` or NUL. Such names never come from a real filesystem; restoring or
/// archiving them would escape the directory they are in.
pub fn name_problem(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty name")
    } else if name == b"." || name == b".." {
        Some("name is . or ..")
    } else if name.contains(&b'/') {
        Some("name contains '/'")
    } else if name.contains(&0) {
        Some("name contains NUL")
    } else {
        None
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Parses a tree blob. Nodes must be sorted by name with no duplicates, as restic requires.
    pub fn parse(json: &[u8]) -> crate::Result<Tree> {
        let t: TreeJson = serde_json::from_slice(json)?;
        let nodes = t
            .nodes
            .unwrap_or_default()
            .into_iter()
            .map(Node::try_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Tree { nodes })
    }

    /// Sorts nodes by raw name and rejects duplicates.
    pub fn sort(&mut self) -> crate::Result<()> {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        for w in self.nodes.windows(2) {
            if w[0].name == w[1].name {
                crate::error::bail!("duplicate name {:?} in tree", w[0].name_lossy());
            }
        }
        Ok(())
    }

    /// The exact blob bytes: `{"nodes":[...]}` and a newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.nodes.len() * 400);
        out.extend_from_slice(b"{\"nodes\":[");
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            n.write_json(&mut out);
        }
        out.extend_from_slice(b"]}\n");
        out
    }

    /// What is wrong with this tree's order: names out of order, or repeated. restic writes
    /// every tree sorted by name without duplicates; anything else is damaged or forged.
    pub fn order_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for w in self.nodes.windows(2) {
            match w[0].name.cmp(&w[1].name) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    out.push(format!("duplicate name {:?}", w[0].name_lossy()))
                }
                std::cmp::Ordering::Greater => out.push(format!(
                    "names out of order: {:?} before {:?}",
                    w[0].name_lossy(),
                    w[1].name_lossy()
                )),
            }
        }
        out
    }

    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree written by restic 0.14 (dir with a file and a symlink), byte for byte.
    const RESTIC_TREE: &str = r#"{"nodes":[{"name":"a\\\"b","type":"file","mode":420,"mtime":"2023-01-02T03:04:05.123456789Z","atime":"2023-01-02T03:04:05.123456789Z","ctime":"2023-01-02T03:04:05.5Z","uid":1000,"gid":100,"user":"u","group":"g","inode":42,"device_id":2049,"size":5,"links":1,"content":["f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2"]},{"name":"dir","type":"dir","mode":2147484141,"mtime":"2023-01-02T03:04:05Z","atime":"2023-01-02T03:04:05Z","ctime":"2023-01-02T03:04:05Z","uid":0,"gid":0,"inode":43,"device_id":2049,"content":null,"subtree":"0000000000000000000000000000000000000000000000000000000000000001"},{"name":"link","type":"symlink","mode":134218239,"mtime":"2023-01-02T03:04:05Z","atime":"2023-01-02T03:04:05Z","ctime":"2023-01-02T03:04:05Z","uid":0,"gid":0,"inode":44,"links":1,"linktarget":"a\u003cb","extended_attributes":[{"name":"user.x","value":"eQ=="}],"content":null}]}
"#;

    #[test]
    fn restic_tree_round_trips_byte_for_byte() {
        let t = Tree::parse(RESTIC_TREE.as_bytes()).unwrap();
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(t.nodes[0].name, b"a\"b");
        assert_eq!(t.nodes[2].linktarget, b"a<b");
        assert_eq!(t.nodes[2].extended_attributes[0].value, b"y");
        assert_eq!(String::from_utf8(t.to_json()).unwrap(), RESTIC_TREE);
    }

    #[test]
    fn odd_names_and_targets_round_trip() {
        let mut t = Tree::default();
        for name in [
            &b"bad-\xff\xfe"[..],
            b"new\nline",
            b"back\\slash",
            b"ctrl-\x01\x7f",
        ] {
            let mut n = Node::new(name.to_vec(), NodeType::Symlink);
            n.linktarget = b"target-\xe9".to_vec();
            t.nodes.push(n);
        }
        t.sort().unwrap();
        let j = t.to_json();
        let back = Tree::parse(&j).unwrap();
        assert_eq!(back, t);
        assert!(String::from_utf8(j).unwrap().contains("linktarget_raw"));
    }

    #[test]
    fn duplicate_names_rejected() {
        let mut t = Tree {
            nodes: vec![
                Node::new(b"x".to_vec(), NodeType::File),
                Node::new(b"x".to_vec(), NodeType::File),
            ],
        };
        assert!(t.sort().is_err());
    }

    #[test]
    fn empty_tree() {
        assert_eq!(Tree::default().to_json(), b"{\"nodes\":[]}\n");
        assert!(Tree::parse(b"{\"nodes\":null}").unwrap().nodes.is_empty());
    }

    #[test]
    fn modes() {
        assert_eq!(mode::from_unix(libc::S_IFDIR | 0o755), 2147484141);
        assert_eq!(mode::from_unix(libc::S_IFLNK | 0o777), 134218239);
        assert_eq!(
            mode::from_unix(libc::S_IFREG | libc::S_ISUID | 0o755),
            8389101
        );
        assert_eq!(mode::from_unix(libc::S_IFIFO | 0o644), 33554852);
        assert_eq!(mode::from_unix(libc::S_IFREG | 0o644), 420);
        assert_eq!(mode::to_unix_perm(8389101), libc::S_ISUID | 0o755);
    }
}

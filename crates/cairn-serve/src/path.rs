//! Request paths: which repository and which file a URL names.
//!
//! Everything a client sends in a path is untrusted. A path is split on `/` before any
//! percent-decoding, so an encoded `%2f` can never become a separator; every decoded segment
//! is then refused if it is `.`, `..`, or holds `/`, `\`, NUL or another control character.
//! File names must be 64 lowercase hex digits and types one of restic's five directories or
//! `config`, so nothing else below the data directory (an htpasswd file, TLS keys, temporary
//! files) can ever be addressed.

use cairn_backend::FileType;

/// How many leading path segments may name a sub-repository (`/user/repo/…`), as in
/// rest-server 0.13: deeper paths are not found.
pub const MAX_FOLDER_DEPTH: usize = 2;

/// What a request path addresses, below the repository folder.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `/` — the repository itself (`POST /?create=true`).
    Repo,
    /// `/config`
    Config,
    /// `/{type}/` — a listing.
    List(FileType),
    /// `/{type}/{name}`
    File(FileType, String),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Sub-repository folders, each a safe single path component.
    pub folder: Vec<String>,
    pub target: Target,
}

/// Why a path was refused: `BadRequest` for paths that are malformed or try to climb out
/// (400), `NotFound` for well-formed paths that name nothing the protocol serves (404).
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    BadRequest,
    NotFound,
}

/// Parses the raw (still percent-encoded) path of a request URI.
pub fn parse(raw: &str) -> Result<Parsed, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::BadRequest)?;
    let mut segs = Vec::new();
    for s in rest.split('/') {
        segs.push(decode_segment(s)?);
    }
    let last = segs.len() - 1;
    // Only segments followed by more of the path can be folders, and the walk stops at the
    // first that names a file type (so `/data/` is the top repository's data listing).
    let mut folder = Vec::new();
    for s in segs.iter().take(last.min(MAX_FOLDER_DEPTH)) {
        if is_type_name(s) {
            break;
        }
        if s.is_empty() {
            return Err(PathError::BadRequest);
        }
        folder.push(s.clone());
    }
    let rem = &segs[folder.len()..];
    let target = match rem {
        [r] if r.is_empty() => Target::Repo,
        [c] if c == "config" => Target::Config,
        [t, n] => {
            let kind = match FileType::from_dir(t) {
                Some(FileType::Config) | None => return Err(PathError::NotFound),
                Some(k) => k,
            };
            if n.is_empty() {
                Target::List(kind)
            } else if is_id(n) {
                Target::File(kind, n.clone())
            } else {
                return Err(PathError::NotFound);
            }
        }
        _ => return Err(PathError::NotFound),
    };
    Ok(Parsed { folder, target })
}

fn is_type_name(s: &str) -> bool {
    FileType::from_dir(s).is_some()
}

/// A file name restic uses: 64 lowercase hex digits (exactly what rest-server accepts).
pub fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Percent-decodes one segment and refuses anything that could leave its directory.
fn decode_segment(s: &str) -> Result<String, PathError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(PathError::BadRequest)?;
            let hi = hex_val(hex[0]).ok_or(PathError::BadRequest)?;
            let lo = hex_val(hex[1]).ok_or(PathError::BadRequest)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| PathError::BadRequest)?;
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err(PathError::BadRequest);
    }
    Ok(s)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Does the query string say `create=true`? Only the exact pair counts, as in rest-server.
pub fn wants_create(query: Option<&str>) -> bool {
    query.unwrap_or("").split('&').any(|kv| kv == "create=true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> String {
        "0a".repeat(32)
    }

    fn ok(folder: &[&str], target: Target) -> Result<Parsed, PathError> {
        Ok(Parsed {
            folder: folder.iter().map(|s| s.to_string()).collect(),
            target,
        })
    }

    #[test]
    fn routes() {
        assert_eq!(parse("/"), ok(&[], Target::Repo));
        assert_eq!(parse("/config"), ok(&[], Target::Config));
        assert_eq!(parse("/data/"), ok(&[], Target::List(FileType::Data)));
        assert_eq!(parse("/keys/"), ok(&[], Target::List(FileType::Key)));
        assert_eq!(
            parse(&format!("/locks/{}", id())),
            ok(&[], Target::File(FileType::Lock, id()))
        );
        assert_eq!(parse("/alice/"), ok(&["alice"], Target::Repo));
        assert_eq!(parse("/alice/config"), ok(&["alice"], Target::Config));
        assert_eq!(
            parse(&format!("/alice/laptop/snapshots/{}", id())),
            ok(&["alice", "laptop"], Target::File(FileType::Snapshot, id()))
        );
        assert_eq!(parse("/a%20b/config"), ok(&["a b"], Target::Config));
        assert_eq!(parse("/d%61ta/"), ok(&[], Target::List(FileType::Data)));
        // A folder may be called like a file (only types end the folder part).
        assert_eq!(
            parse(&format!("/{}/config", id())),
            ok(&[&id()], Target::Config)
        );
    }

    #[test]
    fn not_found() {
        for p in [
            "/data",
            "/alice",
            "/a/b/c/config",
            "/a/b/c/",
            "/data/abc",
            "/data/config",
            "/config/",
            "/config/x",
            "/metrics",
            "/.htpasswd",
            "/private_key",
        ] {
            assert_eq!(parse(p), Err(PathError::NotFound), "{p}");
        }
        let upper = id().to_uppercase();
        assert_eq!(parse(&format!("/data/{upper}")), Err(PathError::NotFound));
        assert_eq!(parse(&format!("/data/{}0", id())), Err(PathError::NotFound));
        assert_eq!(
            parse(&format!("/data/{}", &id()[1..])),
            Err(PathError::NotFound)
        );
    }

    #[test]
    fn traversal_is_refused() {
        for p in [
            "",
            "config",
            "/../config",
            "/../../etc/passwd",
            "/data/../config",
            "/./config",
            "/%2e%2e/config",
            "/%2E%2E/%2e%2e/etc/passwd",
            "/a%2f..%2f..%2fetc/config",
            "/data%2f..%2fconfig",
            "/..%5c..%5cconfig",
            "/a\\b/config",
            "/a%00/config",
            "/a%0a/config",
            "//config",
            "/a//config",
            "/%",
            "/%zz/config",
            "/%c3%28/config",
            "/a/%2e/config",
            "/a/../config",
        ] {
            let r = parse(p);
            assert!(r.is_err(), "{p:?} parsed as {r:?}");
        }
        assert_eq!(parse("/../config"), Err(PathError::BadRequest));
        assert_eq!(parse("/%2e%2e/config"), Err(PathError::BadRequest));
        assert_eq!(parse("/a%2fb/config"), Err(PathError::BadRequest));
    }

    #[test]
    fn create_query() {
        assert!(wants_create(Some("create=true")));
        assert!(wants_create(Some("x=1&create=true")));
        assert!(!wants_create(Some("create=1")));
        assert!(!wants_create(None));
    }
}

//! Go's path semantics, which restic's output and matching depend on: `path.Clean`,
//! `path.Join`, `os.Getwd` and `filepath.Abs`.
//!
//! Snapshot paths may hold any bytes, so the primitives work on bytes; the `str` forms are
//! for flags and messages.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Go's `path.Clean` on bytes: lexical, no `.`, `..` resolved, no doubled or trailing
/// slashes, `.` for an empty result.
pub fn clean_bytes(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let n = p.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    // `dotdot` is where `..` can no longer back up (after the root or leading `..`s).
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if p[r] == b'/' || (p[r] == b'.' && (r + 1 == n || p[r + 1] == b'/')) {
            r += 1;
        } else if p[r] == b'.' && p.get(r + 1) == Some(&b'.') && (r + 2 == n || p[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

/// Go's `path.Clean` on text.
pub fn clean(p: &str) -> String {
    // Cleaning only removes whole components or ASCII bytes, so valid UTF-8 stays valid.
    String::from_utf8_lossy(&clean_bytes(p.as_bytes())).into_owned()
}

/// Go's `path.Join(prefix, name)`, for a `prefix` that is clean apart from perhaps a trailing
/// slash (as every path built while walking a tree is).
pub fn join_bytes(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let plain = !name.is_empty() && !name.contains(&b'/') && name != b"." && name != b"..";
    if plain && prefix.starts_with(b"/") {
        // The common case while walking: nothing to clean, so no second pass over the path.
        let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
        p.extend_from_slice(prefix);
        if !prefix.ends_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        return p;
    }
    let mut p = prefix.to_vec();
    if !prefix.is_empty() && !name.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    if p.is_empty() {
        return p;
    }
    clean_bytes(&p)
}

/// Go's `os.Getwd`: `$PWD` when it names the working directory (so a path through a symlink
/// is kept as the user typed it), else the resolved path.
pub fn getwd() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from) {
        if pwd.is_absolute() {
            if let (Ok(a), Ok(b)) = (std::fs::metadata(&pwd), std::fs::metadata(".")) {
                if a.dev() == b.dev() && a.ino() == b.ino() {
                    return Ok(pwd);
                }
            }
        }
    }
    std::env::current_dir()
}

/// Go's `filepath.Abs` on text: cleaned, relative paths taken from [`getwd`].
pub fn abs(p: &str) -> std::io::Result<String> {
    if p.starts_with('/') {
        return Ok(clean(p));
    }
    let wd = getwd()?;
    Ok(clean(&format!("{}/{p}", wd.to_string_lossy())))
}

/// The absolute, lexically cleaned form of a path (any bytes), relative paths taken from the
/// process's working directory.
pub fn clean_abs_path(p: &Path) -> std::io::Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.as_os_str().as_bytes().to_vec()
    } else {
        let mut wd = std::env::current_dir()?.into_os_string().into_vec();
        wd.push(b'/');
        wd.extend_from_slice(p.as_os_str().as_bytes());
        wd
    };
    Ok(PathBuf::from(OsStr::from_bytes(&clean_bytes(&abs))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_is_gos() {
        for (i, o) in [
            ("/a/b/", "/a/b"),
            ("/a//b/./c/..", "/a/b"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("a//b/./c/..", "a/b"),
            ("../../x", "../../x"),
            ("a/b/../../..", ".."),
            ("", "."),
            ("./", "."),
            ("/", "/"),
            ("..", ".."),
            ("/a/..b/c.", "/a/..b/c."),
        ] {
            assert_eq!(clean(i), o, "{i}");
            assert_eq!(clean_bytes(i.as_bytes()), o.as_bytes(), "{i}");
        }
        assert_eq!(clean_bytes(b"/\xff/../\xfe"), b"/\xfe");
    }

    #[test]
    fn join_is_gos() {
        assert_eq!(join_bytes(b"/", b"a"), b"/a");
        assert_eq!(join_bytes(b"/a", b"b"), b"/a/b");
        assert_eq!(join_bytes(b"/a/", b"b"), b"/a/b");
        assert_eq!(join_bytes(b"/a", b".."), b"/");
        assert_eq!(join_bytes(b"/a", b"b/../c"), b"/a/c");
        assert_eq!(join_bytes(b"", b""), b"");
        assert_eq!(join_bytes(b"a", b""), b"a");
    }

    #[test]
    fn absolute_paths() {
        let wd = std::env::current_dir().expect("working directory");
        assert_eq!(abs("/x/./y/").expect("abs"), "/x/y");
        assert_eq!(
            clean_abs_path(Path::new("a/../b")).expect("abs"),
            wd.join("b")
        );
        assert_eq!(
            clean_abs_path(Path::new("/../x/.")).expect("abs"),
            PathBuf::from("/x")
        );
        let rel = abs("q").expect("abs");
        assert!(rel.starts_with('/') && rel.ends_with("/q"), "{rel}");
    }
}

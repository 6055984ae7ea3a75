//! Glob patterns in backup sources, expanded as resticprofile expands them (Go's
//! `filepath.Glob`: `*`, `?`, `[a-z]`, `[^…]`, `\` escapes; a pattern without matches
//! selects nothing; matches sorted).

use std::path::{Path, PathBuf};

pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The paths matching `pattern`; a relative pattern is matched under `base` and its matches
/// stay relative.
pub fn expand(pattern: &str, base: &Path) -> Vec<String> {
    let relative = !pattern.starts_with('/');
    let mut current: Vec<PathBuf> = vec![if relative {
        base.to_path_buf()
    } else {
        PathBuf::from("/")
    }];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if !has_meta(part) {
                next.push(dir.join(unescape(part)));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| matches(part, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        current = next;
    }
    current
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| {
            let p = if relative {
                p.strip_prefix(base).map(Path::to_path_buf).unwrap_or(p)
            } else {
                p
            };
            p.to_string_lossy().into_owned()
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Go's `filepath.Match` for one path component.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_at(&p, &n)
}

fn match_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| match_at(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && match_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            match class(&p[1..], c) {
                Some((ok, rest)) => ok && match_at(rest, &n[1..]),
                None => false,
            }
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && match_at(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && match_at(&p[1..], &n[1..]),
    }
}

/// A `[…]` class after its `[`: whether `c` is in it, and the pattern after its `]`.
fn class(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negate, mut i) = if p.first() == Some(&'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((found != negate, &p[i + 1..]));
        }
        first = false;
        let (lo, step) = if lo == '\\' {
            (*p.get(i + 1)?, 2)
        } else {
            (lo, 1)
        };
        i += step;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
            let (hi, step) = if p[i + 1] == '\\' {
                (*p.get(i + 2)?, 3)
            } else {
                (p[i + 1], 2)
            };
            i += step;
            found |= lo <= c && c <= hi;
        } else {
            found |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_match_as_go_does() {
        assert!(matches("*.txt", "a.txt") && matches("*", ".hidden"));
        assert!(matches("a?c", "abc") && !matches("a?c", "ac"));
        assert!(matches("[a-c]x", "bx") && !matches("[^a-c]x", "bx") && matches("[^a-c]x", "dx"));
        assert!(matches("\\*", "*") && !matches("\\*", "a"));
        assert!(!matches("[a-", "a"), "a malformed class matches nothing");
    }

    #[test]
    fn patterns_expand_sorted_and_unmatched_ones_vanish() {
        let d = tempfile::tempdir().unwrap();
        for p in ["v/b/_data", "v/a/_data", "v/c/other"] {
            std::fs::create_dir_all(d.path().join(p)).unwrap();
        }
        let base = d.path().display().to_string();
        assert_eq!(
            expand(&format!("{base}/v/*/_data"), Path::new("/")),
            [format!("{base}/v/a/_data"), format!("{base}/v/b/_data")]
        );
        assert_eq!(expand("v/[bc]/*", d.path()), ["v/b/_data", "v/c/other"]);
        assert!(expand(&format!("{base}/nothing*"), Path::new("/")).is_empty());
    }
}

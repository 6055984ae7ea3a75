//! restic's exclude patterns: `*`, `?`, `[...]` within a path component, `**` across
//! components; a relative pattern matches at any depth, an absolute one from the root.

use globset::{GlobBuilder, GlobMatcher};

enum Part {
    AnyDepth,
    Glob(GlobMatcher),
}

pub struct Pattern {
    absolute: bool,
    parts: Vec<Part>,
}

impl Pattern {
    pub fn new(pat: &str) -> anyhow::Result<Pattern> {
        let absolute = pat.starts_with('/');
        let mut parts = Vec::new();
        for comp in pat.split('/').filter(|c| !c.is_empty()) {
            if comp == "**" {
                parts.push(Part::AnyDepth);
            } else {
                // Go's filepath.Match has no {a,b} alternation: braces are literal there.
                let literal_braces = comp.replace('{', "[{]").replace('}', "[}]");
                let g = GlobBuilder::new(&literal_braces)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| anyhow::anyhow!("invalid pattern {pat:?}: {e}"))?;
                parts.push(Part::Glob(g.compile_matcher()));
            }
        }
        Ok(Pattern { absolute, parts })
    }

    /// Could this pattern match something below the directory `comps`? Relative patterns can
    /// match at any depth; absolute ones only if the directory lies along their prefix.
    pub fn may_match_below(&self, comps: &[&[u8]]) -> bool {
        if self.parts.is_empty() {
            return false;
        }
        !self.absolute || prefix_may_match(&self.parts, comps)
    }

    /// Does the pattern match `path` (split into components) or a leading part of it?
    pub fn matches(&self, comps: &[&[u8]]) -> bool {
        if self.parts.is_empty() {
            return false;
        }
        if self.absolute {
            return match_from(&self.parts, comps);
        }
        (0..comps.len()).any(|start| match_from(&self.parts, &comps[start..]))
    }
}

fn comp_matches(g: &GlobMatcher, c: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    g.is_match(std::ffi::OsStr::from_bytes(c))
}

/// Matches the pattern against a prefix of `comps` (a match on a directory excludes its contents).
fn match_from(parts: &[Part], comps: &[&[u8]]) -> bool {
    match parts.split_first() {
        None => true,
        Some((Part::AnyDepth, rest)) => (0..=comps.len()).any(|i| match_from(rest, &comps[i..])),
        Some((Part::Glob(g), rest)) => match comps.split_first() {
            Some((c, more)) => comp_matches(g, c) && match_from(rest, more),
            None => false,
        },
    }
}

fn prefix_may_match(parts: &[Part], comps: &[&[u8]]) -> bool {
    match (parts.split_first(), comps.split_first()) {
        (_, None) | (None, _) => true,
        (Some((Part::AnyDepth, _)), _) => true,
        (Some((Part::Glob(g), rest)), Some((c, more))) => {
            comp_matches(g, c) && prefix_may_match(rest, more)
        }
    }
}

/// A set of exclude patterns.
#[derive(Default)]
pub struct Excludes {
    patterns: Vec<Pattern>,
}

impl Excludes {
    pub fn new(pats: &[String]) -> anyhow::Result<Excludes> {
        Ok(Excludes {
            patterns: pats
                .iter()
                .map(|p| Pattern::new(p))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `path` is absolute (for backup) or relative to the snapshot root (for restore).
    pub fn matches(&self, path: &[u8]) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let comps = components(path);
        self.patterns.iter().any(|p| p.matches(&comps))
    }

    /// Could any pattern match something inside the directory `path`?
    pub fn may_match_below(&self, path: &[u8]) -> bool {
        let comps = components(path);
        self.patterns.iter().any(|p| p.may_match_below(&comps))
    }
}

fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Excludes::new(&[p.to_string()])
            .unwrap()
            .matches(path.as_bytes())
    }

    #[test]
    fn restic_semantics() {
        assert!(m("*.go", "/home/user/x.go"));
        assert!(m("*.go", "/home/user/dir/x.go"));
        assert!(!m("*.go", "/home/user/x.gox"));
        assert!(m("foo", "/a/foo"));
        assert!(m("foo", "/a/foo/bar"));
        assert!(!m("/foo", "/a/foo"));
        assert!(m("/a/*/c", "/a/b/c"));
        assert!(!m("/a/*/c", "/a/b/x/c"));
        assert!(m("/a/**/c", "/a/b/x/c"));
        assert!(m("a/**", "/x/a/b"));
        assert!(m("cache?", "/x/cache1"));
        assert!(m("[ab]x", "/q/bx"));
        // Braces are literal, as in Go's filepath.Match.
        assert!(m("{a,b}", "/q/{a,b}"));
        assert!(!m("{a,b}", "/q/a"));
    }

    #[test]
    fn may_match_below() {
        let b = |p: &str, dir: &str| {
            Excludes::new(&[p.to_string()])
                .unwrap()
                .may_match_below(dir.as_bytes())
        };
        assert!(b("*.rs", "/src/a"));
        assert!(b("/src/a/b/f.rs", "/src/a"));
        assert!(!b("/src/x/f.rs", "/src/a"));
        assert!(b("/src/*/f.rs", "/src/a"));
        assert!(b("/src/**", "/src/a/b/c"));
    }
}

//! restic's path patterns (for `--exclude`, `--include`, `find`): `*`, `?` and `[...]`
//! within a path component with Go's `filepath.Match` meaning, `**` across components; a
//! relative pattern matches at any depth, an absolute one from the root, and a pattern that
//! matches a directory matches everything below it.

/// A malformed pattern (an unclosed `[`, an empty class, a trailing `\`).
#[derive(Debug, thiserror::Error)]
#[error("invalid pattern {0:?}: syntax error in pattern")]
pub struct BadPattern(pub String);

/// One item of a component pattern.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A byte that must be there (literals compare bytes, as Go does).
    Byte(u8),
    /// `?`: one character.
    One,
    /// `*`: any run of characters.
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(u32, u32)>,
    },
}

/// Decodes one character: (code point, length); a byte that is not UTF-8 counts as one
/// character of its own.
fn next_char(s: &[u8]) -> (u32, usize) {
    let n = match s.first() {
        None => return (0, 0),
        Some(b) if *b < 0x80 => return (*b as u32, 1),
        Some(b) if b >> 5 == 0b110 => 2,
        Some(b) if b >> 4 == 0b1110 => 3,
        Some(b) if b >> 3 == 0b11110 => 4,
        Some(_) => return (0xFFFD, 1),
    };
    match s
        .get(..n)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.chars().next())
    {
        Some(c) => (c as u32, n),
        None => (0xFFFD, 1),
    }
}

/// A pattern character after an optional backslash escape: (code point, rest).
fn class_char<'a>(p: &'a [u8], whole: &str) -> Result<(u32, &'a [u8]), BadPattern> {
    let bad = || BadPattern(whole.to_string());
    let p = match p.first() {
        None | Some(b'-') | Some(b']') => return Err(bad()),
        Some(b'\\') => &p[1..],
        Some(_) => p,
    };
    let (c, n) = next_char(p);
    if n == 0 {
        return Err(bad());
    }
    Ok((c, &p[n..]))
}

/// Parses one path component's pattern, rejecting what Go's `filepath.Match` rejects.
fn parse_component(mut p: &[u8], whole: &str) -> Result<Vec<Tok>, BadPattern> {
    let mut toks = Vec::new();
    while let Some(&b) = p.first() {
        p = &p[1..];
        match b {
            b'*' => toks.push(Tok::Star),
            b'?' => toks.push(Tok::One),
            b'\\' => match p.split_first() {
                Some((&c, rest)) => {
                    toks.push(Tok::Byte(c));
                    p = rest;
                }
                None => return Err(BadPattern(whole.to_string())),
            },
            b'[' => {
                let negated = p.first() == Some(&b'^');
                if negated {
                    p = &p[1..];
                }
                let mut ranges = Vec::new();
                loop {
                    if p.first() == Some(&b']') && !ranges.is_empty() {
                        p = &p[1..];
                        break;
                    }
                    let (lo, rest) = class_char(p, whole)?;
                    p = rest;
                    let mut hi = lo;
                    if p.first() == Some(&b'-') {
                        let (h, rest) = class_char(&p[1..], whole)?;
                        hi = h;
                        p = rest;
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class { negated, ranges });
            }
            _ => toks.push(Tok::Byte(b)),
        }
    }
    Ok(toks)
}

/// Matches parsed tokens against one name. `*` is resolved by backtracking to the most recent
/// star, which is enough because stars only ever need to grow.
fn match_tokens(toks: &[Tok], name: &[u8]) -> bool {
    let (mut t, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if t < toks.len() {
            let step = match &toks[t] {
                Tok::Star => {
                    star = Some((t, n));
                    t += 1;
                    continue;
                }
                Tok::Byte(b) => (name.get(n) == Some(b)).then_some(1),
                Tok::One => {
                    let (_, len) = next_char(&name[n..]);
                    (len > 0).then_some(len)
                }
                Tok::Class { negated, ranges } => {
                    let (c, len) = next_char(&name[n..]);
                    let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                    (len > 0 && inside != *negated).then_some(len)
                }
            };
            if let Some(len) = step {
                t += 1;
                n += len;
                continue;
            }
        } else if n == name.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more character, if there is one.
        match star {
            Some((st, sn)) if sn < name.len() => {
                let (_, len) = next_char(&name[sn..]);
                star = Some((st, sn + len));
                t = st + 1;
                n = sn + len;
            }
            _ => return false,
        }
    }
}

/// Go's `filepath.Match` for one path component (no `/` in either), e.g. for expanding
/// `--files-from` globs.
pub fn component_matches(pattern: &str, name: &[u8]) -> Result<bool, BadPattern> {
    Ok(match_tokens(
        &parse_component(pattern.as_bytes(), pattern)?,
        name,
    ))
}

enum Part {
    AnyDepth,
    Literal(Vec<u8>),
    Glob(Vec<Tok>),
}

pub struct Pattern {
    absolute: bool,
    parts: Vec<Part>,
}

impl Pattern {
    pub fn new(pat: &str) -> crate::Result<Pattern> {
        let absolute = pat.starts_with('/');
        let mut parts: Vec<Part> = Vec::new();
        for comp in pat.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if comp == ".." {
                // As Go's filepath.Clean does for the pattern.
                parts.pop();
            } else if comp == "**" {
                parts.push(Part::AnyDepth);
            } else {
                let toks = parse_component(comp.as_bytes(), pat)?;
                if toks.iter().all(|t| matches!(t, Tok::Byte(_))) {
                    parts.push(Part::Literal(
                        toks.iter()
                            .map(|t| if let Tok::Byte(b) = t { *b } else { 0 })
                            .collect(),
                    ));
                } else {
                    parts.push(Part::Glob(toks));
                }
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

fn comp_matches(part: &Part, c: &[u8]) -> bool {
    match part {
        Part::AnyDepth => true,
        Part::Literal(l) => l == c,
        Part::Glob(toks) => match_tokens(toks, c),
    }
}

/// Matches the pattern against a prefix of `comps` (a match on a directory excludes its contents).
fn match_from(parts: &[Part], comps: &[&[u8]]) -> bool {
    match parts.split_first() {
        None => true,
        Some((Part::AnyDepth, rest)) => (0..=comps.len()).any(|i| match_from(rest, &comps[i..])),
        Some((part, rest)) => match comps.split_first() {
            Some((c, more)) => comp_matches(part, c) && match_from(rest, more),
            None => false,
        },
    }
}

fn prefix_may_match(parts: &[Part], comps: &[&[u8]]) -> bool {
    match (parts.split_first(), comps.split_first()) {
        (_, None) | (None, _) => true,
        (Some((Part::AnyDepth, _)), _) => true,
        (Some((part, rest)), Some((c, more))) => {
            comp_matches(part, c) && prefix_may_match(rest, more)
        }
    }
}

/// A set of exclude patterns.
#[derive(Default)]
pub struct Excludes {
    patterns: Vec<Pattern>,
}

impl Excludes {
    pub fn new(pats: &[String]) -> crate::Result<Excludes> {
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

/// Patterns matched as written and patterns matched ignoring case (restic's `--iexclude`,
/// `--iinclude`: both sides lower-cased).
#[derive(Default)]
pub struct PatternSet {
    exact: Excludes,
    folded: Excludes,
}

impl PatternSet {
    pub fn new(exact: &[String], folded: &[String]) -> crate::Result<PatternSet> {
        let lower: Vec<String> = folded.iter().map(|p| p.to_lowercase()).collect();
        Ok(PatternSet {
            exact: Excludes::new(exact)?,
            folded: Excludes::new(&lower)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.folded.is_empty()
    }

    pub fn matches(&self, path: &[u8]) -> bool {
        self.exact.matches(path) || (!self.folded.is_empty() && self.folded.matches(&fold(path)))
    }

    pub fn may_match_below(&self, path: &[u8]) -> bool {
        self.exact.may_match_below(path)
            || (!self.folded.is_empty() && self.folded.may_match_below(&fold(path)))
    }
}

fn fold(path: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(path).to_lowercase().into_bytes()
}

fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_sets_fold_case_only_where_asked() {
        let s = PatternSet::new(&["*.txt".into()], &["*.JPG".into()]).unwrap();
        assert!(s.matches(b"/a/b.txt"));
        assert!(!s.matches(b"/a/b.TXT"));
        assert!(s.matches(b"/a/b.jpg") && s.matches(b"/a/B.Jpg"));
        assert!(!PatternSet::new(&[], &[]).unwrap().matches(b"/x"));
        let d = PatternSet::new(&[], &["/Home/*/Docs".into()]).unwrap();
        assert!(d.may_match_below(b"/home/ann"));
    }

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

    /// Go's filepath.Match on single components.
    #[test]
    fn component_semantics() {
        let g = |p: &str, n: &[u8]| match_tokens(&parse_component(p.as_bytes(), p).unwrap(), n);
        assert!(g("*", b""));
        assert!(g("a*b*c", b"axxbyyc"));
        assert!(!g("a*b*c", b"axxbyy"));
        assert!(g("?", "é".as_bytes()), "? is one character, not one byte");
        assert!(!g("??", "é".as_bytes()));
        assert!(g("?", b"\xff"), "a non-UTF-8 byte is one character");
        assert!(g("[a-c]x", b"bx"));
        assert!(!g("[^a-c]x", b"bx"));
        assert!(g("[^a-c]x", b"dx"));
        assert!(g("[é]", "é".as_bytes()));
        assert!(g("\\*", b"*"));
        assert!(!g("\\*", b"x"));
        assert!(g("[\\]]", b"]"));
        assert!(g("*.go", b".go"));
        assert!(!g("*.go", b"a.gox"));
        for bad in ["[", "[]", "[a-]", "a\\", "[^", "[z-"] {
            assert!(
                parse_component(bad.as_bytes(), bad).is_err(),
                "{bad:?} must be rejected"
            );
        }
        assert!(Pattern::new("a/[").is_err());
    }

    #[test]
    fn cleaned_patterns() {
        assert!(m("a/./b", "/x/a/b"));
        assert!(m("/a/x/../b", "/a/b"));
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

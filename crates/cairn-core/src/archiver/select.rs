//! What a backup leaves out, with restic's semantics: exclude patterns (case-sensitive and
//! not), marker files (`--exclude-if-present`, `--exclude-caches`), a size limit, and
//! `--one-file-system`.

use super::filter::Excludes;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The Cache Directory Tagging Standard's marker and signature.
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55";

#[derive(Default, Clone, Debug)]
pub struct SelectOptions {
    pub excludes: Vec<String>,
    /// Matched against the lower-cased path.
    pub iexcludes: Vec<String>,
    /// `filename[:header]`: a directory holding `filename` (starting with `header`, if given)
    /// keeps only that file.
    pub exclude_if_present: Vec<String>,
    pub exclude_larger_than: Option<u64>,
    pub one_file_system: bool,
}

pub struct Selection {
    excludes: Excludes,
    iexcludes: Excludes,
    markers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    larger_than: Option<u64>,
    pub one_file_system: bool,
}

impl Selection {
    pub fn new(o: &SelectOptions) -> crate::Result<Selection> {
        let lower: Vec<String> = o.iexcludes.iter().map(|p| p.to_lowercase()).collect();
        Ok(Selection {
            excludes: Excludes::new(&o.excludes)?,
            iexcludes: Excludes::new(&lower)?,
            markers: o
                .exclude_if_present
                .iter()
                .map(|m| match m.split_once(':') {
                    Some((f, h)) => (f.as_bytes().to_vec(), Some(h.as_bytes().to_vec())),
                    None => (m.as_bytes().to_vec(), None),
                })
                .collect(),
            larger_than: o.exclude_larger_than,
            one_file_system: o.one_file_system,
        })
    }

    /// Excluded by name pattern?
    pub fn excluded_path(&self, path: &Path) -> bool {
        let p = path.as_os_str().as_bytes();
        self.excludes.matches(p)
            || (!self.iexcludes.is_empty()
                && self
                    .iexcludes
                    .matches(String::from_utf8_lossy(p).to_lowercase().as_bytes()))
    }

    /// Excluded by size (regular files only)?
    pub fn too_large(&self, size: u64) -> bool {
        self.larger_than.is_some_and(|limit| size > limit)
    }

    /// If `dir` holds one of the marker files, the names to keep (just the markers).
    pub fn marker_in(&self, dir: &Path, names: &[std::ffi::OsString]) -> Option<Vec<Vec<u8>>> {
        let mut keep = Vec::new();
        for (file, header) in &self.markers {
            if !names.iter().any(|n| n.as_bytes() == file.as_slice()) {
                continue;
            }
            let matches = match header {
                None => true,
                Some(h) => {
                    let mut buf = vec![0u8; h.len()];
                    std::fs::File::open(dir.join(std::ffi::OsStr::from_bytes(file)))
                        .and_then(|mut f| f.read_exact(&mut buf))
                        .is_ok()
                        && buf == *h
                }
            };
            if matches {
                keep.push(file.clone());
            }
        }
        (!keep.is_empty()).then_some(keep)
    }
}

/// Parses restic's size syntax: a number with an optional k/K, m/M, g/G or t/T suffix.
pub fn parse_size(s: &str) -> crate::Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        Some('t' | 'T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| {
        crate::Error::Invalid(format!("invalid size {s:?} (want e.g. 100, 10k, 5M, 2G)"))
    })?;
    n.checked_mul(mult)
        .ok_or_else(|| crate::Error::Invalid(format!("size {s:?} is too large")))
}

/// The patterns given (`--exclude`) followed by those of each file (`--exclude-file`).
pub fn patterns_with_files(
    given: &[String],
    files: &[std::path::PathBuf],
) -> crate::Result<Vec<String>> {
    let mut v = given.to_vec();
    for f in files {
        v.extend(read_pattern_file(f)?);
    }
    Ok(v)
}

/// The patterns of an `--exclude-file` (or `--iexclude-file`): one a line, blank lines and
/// `#` comments skipped, surrounding spaces trimmed.
pub fn read_pattern_file(p: &Path) -> crate::Result<Vec<String>> {
    let s = std::fs::read_to_string(p)
        .map_err(|e| anyhow::anyhow!("reading exclude file {}: {e}", p.display()))?;
    Ok(s.lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("10k").unwrap(), 10240);
        assert_eq!(parse_size("2M").unwrap(), 2 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn case_insensitive_excludes() {
        let s = Selection::new(&SelectOptions {
            iexcludes: vec!["*.JPG".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(s.excluded_path(Path::new("/a/B.jpg")));
        assert!(s.excluded_path(Path::new("/a/b.JPG")));
        assert!(!s.excluded_path(Path::new("/a/b.png")));
    }

    #[test]
    fn markers_with_headers() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n# x",
        )
        .unwrap();
        let names = vec![std::ffi::OsString::from("CACHEDIR.TAG"), "data".into()];
        let s = Selection::new(&SelectOptions {
            exclude_if_present: vec![CACHEDIR_TAG.into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.marker_in(d.path(), &names),
            Some(vec![b"CACHEDIR.TAG".to_vec()])
        );
        let bad = Selection::new(&SelectOptions {
            exclude_if_present: vec!["CACHEDIR.TAG:nope".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(bad.marker_in(d.path(), &names), None);
    }

    #[test]
    fn pattern_files_skip_comments_and_blank_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let f = dir.path().join("ex");
        std::fs::write(&f, "# c\n\n  *.iso  \nfoo\n").expect("write");
        assert_eq!(
            read_pattern_file(&f).expect("read"),
            vec!["*.iso".to_string(), "foo".to_string()]
        );
        assert_eq!(
            patterns_with_files(&["a".to_string()], &[f.clone(), f.clone()]).expect("read"),
            ["a", "*.iso", "foo", "*.iso", "foo"]
        );
        let e = read_pattern_file(&dir.path().join("missing")).expect_err("missing");
        assert!(e.to_string().starts_with("reading exclude file "), "{e}");
    }
}

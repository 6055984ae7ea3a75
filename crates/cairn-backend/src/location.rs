//! Repository locations as restic writes them, and opening a backend for one.

use crate::{b2, local::LocalBackend, rclone, rest, retry, s3, sftp, Backend, Options};

/// Why a location could not be opened. Each variant keeps what it is about (the location or
/// the option) for programs, and a one-line message for people: the message is the whole
/// sentence and already names the location or option, so a caller adding its own context
/// does not repeat it.
// Non-exhaustive: a scheme cairn learns later may bring a way to fail that callers should
// not have to have matched already.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A scheme restic has and cairn does not (`swift:`, `azure:`, `gs:`).
    #[error(
        "repository location {location:?}: the {scheme} backend is not supported by cairn yet"
    )]
    UnsupportedScheme { location: String, scheme: String },
    /// The location does not parse (no host, no path, a bad bucket name, ...).
    #[error("{reason}")]
    BadLocation { location: String, reason: String },
    /// A `-o` option that is malformed, has a bad value, or clashes with another.
    #[error("{reason}")]
    BadOption { key: String, reason: String },
    /// A `-o` option that no part of this location reads: a typo should not quietly send a
    /// backup somewhere else or with other settings.
    #[error("option {key:?} is not known for this repository location")]
    UnknownOption { key: String },
    /// Credentials missing from the environment, or refused when signing in.
    #[error("{reason}")]
    Credentials { location: String, reason: String },
    /// The store could not be reached, or its helper program (ssh, rclone) not started.
    #[error("{reason}")]
    Connect { location: String, reason: String },
}

impl OpenError {
    pub(crate) fn bad_location(location: impl Into<String>, reason: impl Into<String>) -> Self {
        OpenError::BadLocation {
            location: location.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn bad_option(key: impl Into<String>, reason: impl Into<String>) -> Self {
        OpenError::BadOption {
            key: key.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn credentials(location: impl Into<String>, reason: impl Into<String>) -> Self {
        OpenError::Credentials {
            location: location.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn connect(location: impl Into<String>, reason: impl Into<String>) -> Self {
        OpenError::Connect {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// The schemes cairn opens; anything else is a local path, as in restic.
const REMOTE: [&str; 5] = ["rest:", "sftp:", "s3:", "b2:", "rclone:"];

/// restic's schemes that cairn refuses rather than mistaking for a local directory name.
const UNSUPPORTED: [&str; 3] = ["swift:", "azure:", "gs:"];

/// Is this a location on another machine (or behind a program), rather than a local path?
pub fn is_remote(location: &str) -> bool {
    REMOTE.iter().any(|s| location.starts_with(s))
}

/// Opens a backend for a repository location string, with no `-o` options.
pub fn open(location: &str) -> Result<Box<dyn Backend>, OpenError> {
    open_with(location, &Options::default())
}

/// Opens a backend for a repository location as restic writes them: a path or `local:PATH`,
/// `sftp:`, `rest:`, `s3:`, `b2:` or `rclone:`. Remote backends come wrapped in
/// [`retry::RetryBackend`], so a flaky network is retried with backoff rather than failing
/// the command at the first dropped connection. Every `-o` option must be read by the
/// backend opened ([`OpenError::UnknownOption`] otherwise).
pub fn open_with(location: &str, opts: &Options) -> Result<Box<dyn Backend>, OpenError> {
    let remote: Box<dyn Backend> = if let Some(path) = location.strip_prefix("local:") {
        return local_checked(path, opts);
    } else if let Some(url) = location.strip_prefix("rest:") {
        Box::new(rest::RestBackend::open(url, opts)?)
    } else if let Some(spec) = location.strip_prefix("sftp:") {
        Box::new(sftp::SftpBackend::open(spec, opts)?)
    } else if let Some(spec) = location.strip_prefix("s3:") {
        Box::new(s3::S3Backend::open(spec, opts)?)
    } else if let Some(spec) = location.strip_prefix("b2:") {
        b2::open(spec, opts)?
    } else if let Some(spec) = location.strip_prefix("rclone:") {
        Box::new(rclone::RcloneBackend::open(spec, opts)?)
    } else {
        if let Some(scheme) = UNSUPPORTED.iter().find(|s| location.starts_with(*s)) {
            return Err(OpenError::UnsupportedScheme {
                location: location.to_string(),
                scheme: scheme.trim_end_matches(':').to_string(),
            });
        }
        return local_checked(location, opts);
    };
    let retrying = retry::RetryBackend::new(remote, retry::Policy::from_options(opts)?);
    opts.check_all_read()?;
    Ok(Box::new(retrying))
}

fn local_checked(path: &str, opts: &Options) -> Result<Box<dyn Backend>, OpenError> {
    // restic's local backend takes `local.connections`; cairn's local writes need no limit.
    opts.get_usize("local.connections")?;
    opts.check_all_read()?;
    Ok(Box::new(LocalBackend::new(path)))
}

/// `%XX` escapes decoded, anything else (a lone `%`, bad hex) kept as it is; bytes that are not
/// UTF-8 afterwards become U+FFFD. Works on bytes, so no input can split a character.
pub(crate) fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `path.Clean`, which restic applies to the paths in sftp, s3 and b2 locations:
/// repeated slashes and `.` dropped, `..` resolved lexically, a trailing slash dropped, `.`
/// for nothing.
pub(crate) fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_escapes_decode_without_splitting_characters() {
        use super::percent_decode_lossy as d;
        assert_eq!(d("a%20b"), "a b");
        assert_eq!(d("%41%4a"), "AJ");
        assert_eq!(d("100%"), "100%");
        assert_eq!(d("%zz"), "%zz");
        // A multi-byte character right after '%' is kept, not sliced through.
        assert_eq!(d("%a\u{e9}x"), "%a\u{e9}x");
        assert_eq!(d("%\u{e9}"), "%\u{e9}");
    }

    #[test]
    fn paths_clean_as_go_does() {
        for (p, want) in [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("a/b", "a/b"),
            ("a//b/", "a/b"),
            ("./a", "a"),
            ("a/b/../c", "a/c"),
            ("a/./b/../c", "a/c"),
            ("../../x", "../../x"),
            ("/../x", "/x"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("//a//b/", "/a/b"),
            ("./a/./b", "a/b"),
        ] {
            assert_eq!(super::clean_path(p), want, "{p:?}");
        }
    }

    use super::*;

    #[test]
    fn schemes_cairn_lacks_are_refused_and_other_names_are_paths() {
        let e = open("swift:container:/p").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "repository location \"swift:container:/p\": the swift backend is not \
                 supported by cairn yet"
            )
        );
        assert!(!is_remote("swift:container:/p"));
        assert!(is_remote("sftp:host:/p"));
        let t = tempfile::tempdir().expect("temporary directory");
        let dir = t.path().join("not:a:scheme");
        let be = open(&dir.to_string_lossy()).expect("a local path");
        assert_eq!(be.location(), dir.to_string_lossy());
    }

    #[test]
    fn option_errors_name_the_option() {
        let o = Options::parse(&["local.conections=2"]).expect("parse");
        match open_with("/nonexistent", &o) {
            Err(OpenError::UnknownOption { key }) => assert_eq!(key, "local.conections"),
            other => panic!("{:?}", other.err()),
        }
        let o = Options::parse(&["local.connections=none"]).expect("parse");
        match open_with("/nonexistent", &o) {
            Err(OpenError::BadOption { key, reason }) => {
                assert_eq!(key, "local.connections");
                assert!(reason.contains("positive number"), "{reason}");
            }
            other => panic!("{:?}", other.err()),
        }
    }
}

//! Extended options (`-o key=value`), as restic takes them: each backend reads the keys under
//! its own prefix (`s3.region`, `sftp.command`, `rest.connections`, ...). A key that no
//! backend reads is an error rather than silently ignored: a typo in `-o` should not quietly
//! send a backup somewhere else or with other settings.

use crate::OpenError;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Every extended option some backend reads, with what it does (`cairn options` prints this
/// list; in debug builds reading a key missing here panics, so the list stays complete).
pub const KNOWN: &[(&str, &str)] = &[
    ("b2.connections", "set a limit for the number of concurrent connections (default: 5)"),
    ("b2.timeout", "how long a request may stall before it fails and is retried (default: 60s)"),
    ("local.connections", "set a limit for the number of concurrent operations (default: 2)"),
    ("rclone.args", "arguments for running rclone (default: serve restic --stdio --b2-hard-delete)"),
    ("rclone.connections", "set a limit for the number of concurrent connections (default: 5)"),
    ("rclone.program", "path to rclone (default: rclone)"),
    ("rclone.timeout", "set a timeout limit to wait for rclone to establish a connection (default: 1m)"),
    ("rest.connections", "set a limit for the number of concurrent connections (default: 5)"),
    ("rest.timeout", "how long a request may stall before it fails and is retried (default: 60s)"),
    ("retry.max-elapsed", "how long to keep retrying one failed operation, 0 for no retries (default: 15m)"),
    ("s3.bucket-lookup", "bucket lookup style: 'auto', 'dns', or 'path'"),
    ("s3.connections", "set a limit for the number of concurrent connections (default: 5)"),
    ("s3.layout", "use this backend layout (only 'default'; deprecated)"),
    ("s3.region", "set region"),
    ("s3.storage-class", "set S3 storage class (STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING or REDUCED_REDUNDANCY)"),
    ("s3.timeout", "how long a request may stall before it fails and is retried (default: 60s)"),
    ("sftp.args", "specify arguments for ssh"),
    ("sftp.command", "specify command to create sftp connection"),
    ("sftp.connections", "set a limit for the number of concurrent connections (default: 5)"),
    ("sftp.layout", "use this backend layout (only 'default'; deprecated)"),
];

#[derive(Debug, Default)]
pub struct Options {
    values: BTreeMap<String, String>,
    /// Settings of the HTTP backends that come from global flags.
    http: crate::http::Http,
    /// Keys some backend has asked for; the rest are reported as unknown.
    read: Mutex<Vec<String>>,
}

impl Clone for Options {
    fn clone(&self) -> Options {
        Options {
            values: self.values.clone(),
            http: self.http.clone(),
            read: Mutex::new(Vec::new()),
        }
    }
}

impl Options {
    /// Parses `key=value` strings; keys are case-insensitive, as in restic.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Options, OpenError> {
        let mut values = BTreeMap::new();
        for item in items {
            let item = item.as_ref();
            let (k, v) = item.split_once('=').ok_or_else(|| {
                OpenError::bad_option(item, format!("invalid option {item:?}: want key=value"))
            })?;
            let k = k.trim().to_ascii_lowercase();
            if k.is_empty() {
                return Err(OpenError::bad_option(
                    item,
                    format!("invalid option {item:?}: empty key"),
                ));
            }
            if values.insert(k.clone(), v.to_string()).is_some() {
                return Err(OpenError::bad_option(
                    &k,
                    format!("option {k:?} given more than once"),
                ));
            }
        }
        Ok(Options {
            values,
            http: Default::default(),
            read: Mutex::new(Vec::new()),
        })
    }

    /// The same options with these HTTP settings (user agent, stall timeout, TLS).
    pub fn with_http(mut self, http: crate::http::Http) -> Options {
        self.http = http;
        self
    }

    pub fn http(&self) -> &crate::http::Http {
        &self.http
    }

    /// The value of `key` (e.g. `s3.region`), marking it as known.
    pub fn get(&self, key: &str) -> Option<&str> {
        debug_assert!(
            cfg!(test) || KNOWN.iter().any(|(k, _)| *k == key),
            "option {key} is read but not listed in options::KNOWN"
        );
        self.read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.to_string());
        self.values.get(key).map(String::as_str)
    }

    /// A numeric option such as `s3.connections`.
    pub fn get_usize(&self, key: &str) -> Result<Option<usize>, OpenError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| {
                    OpenError::bad_option(
                        key,
                        format!("invalid option {key}={v:?}: want a positive number"),
                    )
                }),
        }
    }

    /// Fails on keys no backend asked for.
    pub fn check_all_read(&self) -> Result<(), OpenError> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        for k in self.values.keys() {
            if !read.iter().any(|r| r == k) {
                return Err(OpenError::UnknownOption { key: k.clone() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_get_and_unknown_keys() {
        let o = Options::parse(&["S3.Region=eu-west-1", "s3.connections=8"]).unwrap();
        assert_eq!(o.get("s3.region"), Some("eu-west-1"));
        assert!(o.check_all_read().is_err());
        assert_eq!(o.get_usize("s3.connections").unwrap(), Some(8));
        o.check_all_read().unwrap();
        assert!(Options::parse(&["novalue"]).is_err());
        assert!(Options::parse(&["a=1", "A=2"]).is_err());
        let o = Options::parse(&["x.connections=0"]).unwrap();
        assert!(o.get_usize("x.connections").is_err());
    }
}

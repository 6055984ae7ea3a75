//! Users from an htpasswd file, with the hashes rest-server 0.13 accepts: bcrypt (`$2a$`,
//! `$2b$`, `$2y$`, as `htpasswd -B` writes) and `{SHA}` (base64 of SHA-1, `htpasswd -s`).
//! Other kinds (apr1/MD5-crypt, crypt, plain text) never match, as in rest-server.
//!
//! The file is looked at again (size and modification time) at most once a second, and
//! reread when it changed or on SIGHUP; a file that fails to load keeps the old users.
//! A bcrypt check costs tens of milliseconds, and restic sends a request per file, so a
//! verified password is remembered for a minute — as a SHA-256 of `user:password`, never
//! in the clear.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const CACHE_FOR: Duration = Duration::from_secs(60);
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The parsed file: user name to stored hash.
pub fn parse(text: &str) -> HashMap<String, String> {
    let mut users = HashMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, rest)) = line.split_once(':') else {
            continue;
        };
        let hash = rest.split(':').next().unwrap_or("").trim();
        if !valid_user(user) {
            eprintln!(
                "Ignoring invalid username {user:?} in htpasswd: only letters, digits, '_', '-', '.' and '@' are allowed"
            );
            continue;
        }
        users.insert(user.to_string(), hash.to_string());
    }
    users
}

/// rest-server's rule for user names (letters, ASCII digits, `@._-`); it keeps private
/// repository folders, which are named after users, free of anything path-like.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_alphabetic() || c.is_ascii_digit() || matches!(c, '@' | '.' | '_' | '-'))
}

/// Does `password` match the stored `hash`?
pub fn matches(hash: &str, password: &str) -> bool {
    if let Some(b64) = hash.strip_prefix("{SHA}") {
        let digest = sha1::Sha1::digest(password.as_bytes());
        let want = base64::engine::general_purpose::STANDARD.encode(digest);
        return constant_time_eq(b64.as_bytes(), want.as_bytes());
    }
    if hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    false
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct State {
    users: HashMap<String, String>,
    stamp: Option<(u64, SystemTime)>,
    checked: Instant,
    cache: HashMap<String, ([u8; 32], Instant)>,
}

/// An htpasswd file kept up to date.
pub struct Htpasswd {
    path: PathBuf,
    state: Mutex<State>,
}

fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn verifier(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

impl Htpasswd {
    pub fn load(path: &Path) -> anyhow::Result<Htpasswd> {
        let text = std::fs::read_to_string(path)?;
        Ok(Htpasswd {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                users: parse(&text),
                stamp: stamp(path),
                checked: Instant::now(),
                cache: HashMap::new(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rereads the file (on SIGHUP, or when it changed).
    pub fn reload(&self) {
        // Stamped before reading: a change made while reading is seen by the next check.
        let seen = stamp(&self.path);
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let users = parse(&text);
                let mut st = self.lock();
                st.users = users;
                st.stamp = seen;
                st.cache.clear();
                eprintln!("Reloaded htpasswd file {}", self.path.display());
            }
            Err(e) => eprintln!(
                "Could not reload htpasswd file {}: {e}",
                self.path.display()
            ),
        }
    }

    fn reload_if_changed(&self) {
        let changed = {
            let mut st = self.lock();
            if st.checked.elapsed() < CHECK_EVERY {
                return;
            }
            st.checked = Instant::now();
            let now = stamp(&self.path);
            now.is_some() && now != st.stamp
        };
        if changed {
            self.reload();
        }
    }

    /// Checks a user's password. Blocking: a bcrypt comparison takes tens of milliseconds.
    pub fn validate(&self, user: &str, password: &str) -> bool {
        self.reload_if_changed();
        let v = verifier(user, password);
        let hash = {
            let mut st = self.lock();
            let Some(hash) = st.users.get(user).cloned() else {
                return false;
            };
            if let Some((cached, until)) = st.cache.get(user) {
                if *until > Instant::now() && constant_time_eq(cached, &v) {
                    st.cache
                        .insert(user.to_string(), (v, Instant::now() + CACHE_FOR));
                    return true;
                }
            }
            hash
        };
        if !matches(&hash, password) {
            eprintln!("Invalid htpasswd entry for {user}.");
            return false;
        }
        let mut st = self.lock();
        let now = Instant::now();
        st.cache.retain(|_, (_, until)| *until > now);
        st.cache.insert(user.to_string(), (v, now + CACHE_FOR));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_rest_server() {
        let u = parse(
            "# comment\n\nalice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n  bob:$2y$05$abc:extra\n\
             bad/name:{SHA}x\nnocolon\nj\u{fc}rgen@x.y_z-1:{SHA}y\n",
        );
        assert_eq!(u.len(), 3);
        assert_eq!(u["alice"], "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
        assert_eq!(u["bob"], "$2y$05$abc");
        assert!(u.contains_key("j\u{fc}rgen@x.y_z-1"));
        assert!(!valid_user(""));
        assert!(!valid_user("a b"));
        assert!(!valid_user("a/b"));
    }

    #[test]
    fn sha_hashes() {
        // {SHA} of "test", as `htpasswd -nbs u test` prints it.
        assert!(matches("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "test"));
        assert!(!matches("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "Test"));
        assert!(!matches("{SHA}", ""));
    }

    #[test]
    fn bcrypt_hashes() {
        let h = bcrypt::hash("s3cret", 4).unwrap();
        assert!(matches(&h, "s3cret"));
        assert!(!matches(&h, "s3cre"));
        // The $2y$ spelling (Apache's htpasswd -B) is the same algorithm.
        let y = h.replacen("$2b$", "$2y$", 1);
        assert!(matches(&y, "s3cret"));
    }

    #[test]
    fn other_hashes_never_match() {
        // apr1 and crypt, which go-htpasswd would take but rest-server 0.13 does not.
        assert!(!matches(
            "$apr1$9Cv/OMGj$ZomWQzuQbL.3TRCS81A1g/",
            "myPassword"
        ));
        assert!(!matches("rl5q1n6wjpmUk", "password"));
        assert!(!matches("password", "password"));
        assert!(!matches("", ""));
    }

    #[test]
    fn validates_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".htpasswd");
        std::fs::write(&p, "alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n").unwrap();
        let h = Htpasswd::load(&p).unwrap();
        assert!(h.validate("alice", "test"));
        assert!(h.validate("alice", "test"));
        assert!(!h.validate("alice", "nope"));
        assert!(!h.validate("bob", "test"));
        let bob = bcrypt::hash("pw", 4).unwrap();
        std::fs::write(&p, format!("bob:{bob}\n")).unwrap();
        h.reload();
        assert!(h.validate("bob", "pw"));
        assert!(!h.validate("alice", "test"));
    }
}

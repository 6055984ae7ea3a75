//! Retrying with exponential backoff, as a decorator around any remote backend.
//!
//! A dropped connection, a 500/503, a timeout or a server restart is retried until a time
//! budget runs out (15 minutes by default, as restic's); errors that another attempt cannot
//! fix (missing file, refused overwrite, permission denied, bad request) return at once.
//!
//! Two things make a retried operation safe rather than merely repeated:
//! - a failed `save` may have left part of the file on the server (not every server writes
//!   to a temporary name first), so it is removed before the next attempt, and a retry that
//!   finds the file already there accepts it only when its size is the size being saved;
//! - a whole-file `load` of a file named by its SHA-256 (everything but the config) is hashed
//!   and retried on mismatch, so a body cut short by the network is never taken for the file.

use crate::{
    Backend, BackendError, FileInfo, FileType, Handle, OpenError, Options, Result, Staged,
};
use sha2::{Digest, Sha256};
use std::io::ErrorKind;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Policy {
    /// First wait; each later one doubles, with jitter, up to `max_delay`.
    pub initial: Duration,
    pub max_delay: Duration,
    /// No new attempt starts after this much time since the first.
    pub max_elapsed: Duration,
    /// Report each retry on stderr (restic does the same).
    pub verbose: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            initial: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(15 * 60),
            verbose: true,
        }
    }
}

impl Policy {
    /// The default policy, with `-o retry.max-elapsed=DURATION` (cairn's own option: how long
    /// to keep retrying one operation, e.g. `30s`, `5m`, `0` for no retries).
    pub fn from_options(opts: &Options) -> std::result::Result<Policy, OpenError> {
        let mut p = Policy::default();
        if let Some(v) = opts.get("retry.max-elapsed") {
            p.max_elapsed = parse_duration(v).ok_or_else(|| {
                OpenError::bad_option(
                    "retry.max-elapsed",
                    format!("invalid option retry.max-elapsed={v:?}: want e.g. 30s or 5m"),
                )
            })?;
        }
        Ok(p)
    }
}

/// `30s`, `5m`, `1.5h`, `250ms`, or `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let n: f64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(n * unit))
}

/// Can another attempt succeed where this one failed?
pub fn is_transient(e: &BackendError) -> bool {
    match e {
        BackendError::NotFound(_) | BackendError::AlreadyExists(_) => false,
        BackendError::Io { err, .. } => !matches!(
            err.kind(),
            ErrorKind::PermissionDenied
                | ErrorKind::InvalidInput
                | ErrorKind::Unsupported
                | ErrorKind::StorageFull
                | ErrorKind::QuotaExceeded
        ),
    }
}

/// Set when the user asked the program to stop (Ctrl-C): no retry starts after that, and a
/// wait between attempts is cut short, so that an interrupted command ends in seconds rather
/// than after the retry budget.
static STOP: std::sync::OnceLock<&'static std::sync::atomic::AtomicBool> =
    std::sync::OnceLock::new();

/// Makes every retry loop give up once `flag` is set.
pub fn stop_retrying_when(flag: &'static std::sync::atomic::AtomicBool) {
    let _ = STOP.set(flag);
}

fn stopping() -> bool {
    STOP.get()
        .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
}

/// Sleeps for `d`, waking early when the program is stopping.
fn pause(d: Duration) {
    let end = Instant::now() + d;
    while !stopping() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// How long the first request to a server is retried.
const FIRST_CONTACT: Duration = Duration::from_secs(20);

pub struct RetryBackend<B> {
    inner: B,
    policy: Policy,
}

impl<B: Backend> RetryBackend<B> {
    pub fn new(inner: B, policy: Policy) -> RetryBackend<B> {
        RetryBackend { inner, policy }
    }

    /// Runs `op` until it succeeds, fails for good, or the time budget is spent.
    fn retry<T>(&self, what: &str, op: impl FnMut(u32) -> Result<T>) -> Result<T> {
        self.retry_within(self.policy.max_elapsed, what, op)
    }

    fn retry_within<T>(
        &self,
        budget: Duration,
        what: &str,
        mut op: impl FnMut(u32) -> Result<T>,
    ) -> Result<T> {
        let start = Instant::now();
        let mut delay = self.policy.initial;
        let mut attempt = 0u32;
        loop {
            let err = match op(attempt) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            attempt += 1;
            let wait = jitter(delay);
            if !is_transient(&err) || start.elapsed() + wait > budget || stopping() {
                if attempt > 1 {
                    return Err(gave_up(err, attempt, start.elapsed()));
                }
                return Err(err);
            }
            if self.policy.verbose {
                eprintln!(
                    "{what} failed, retrying in {:.1}s (attempt {}): {err}",
                    wait.as_secs_f64(),
                    attempt + 1
                );
            }
            pause(wait);
            if stopping() {
                return Err(gave_up(err, attempt, start.elapsed()));
            }
            delay = (delay * 2).min(self.policy.max_delay);
        }
    }
}

/// Adds how long was tried to the final error, keeping its kind.
fn gave_up(err: BackendError, attempts: u32, elapsed: Duration) -> BackendError {
    match err {
        BackendError::Io { handle, err } => BackendError::Io {
            handle,
            err: std::io::Error::new(
                err.kind(),
                format!(
                    "{err} (gave up after {attempts} attempts in {:.0}s)",
                    elapsed.as_secs_f64()
                ),
            ),
        },
        other => other,
    }
}

/// Between half and all of `d`, so that many clients do not retry in step.
fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    let f: f64 = rand::thread_rng().gen_range(0.5..=1.0);
    d.mul_f64(f)
}

/// Is this file named by the SHA-256 of its content?
fn content_addressed(h: &Handle) -> bool {
    h.kind != FileType::Config && h.name.len() == 64
}

fn hash_mismatch(h: &Handle, got: usize) -> BackendError {
    BackendError::Io {
        handle: h.to_string(),
        // ErrorKind::Other: a damaged transfer is worth another attempt; if the file itself
        // is damaged, the attempts run out and the error says so.
        err: std::io::Error::other(format!(
            "downloaded {got} bytes do not match the file's name (damaged in transit or on the server)"
        )),
    }
}

impl<B: Backend> RetryBackend<B> {
    /// A load, retried; a whole content-addressed file is also checked against its name.
    fn load_checked(
        &self,
        h: &Handle,
        offset: u64,
        length: u64,
        load: impl Fn() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let whole = offset == 0 && length == 0 && content_addressed(h);
        self.retry(&format!("loading {h}"), |_| {
            let data = load()?;
            if whole && hex::encode(Sha256::digest(&data)) != h.name {
                return Err(hash_mismatch(h, data.len()));
            }
            Ok(data)
        })
    }
}

impl<B: Backend> crate::Decorator for RetryBackend<B> {
    type Inner = B;
    fn inner(&self) -> &B {
        &self.inner
    }
    fn exists(&self) -> Result<bool> {
        // The first contact: a server that cannot be reached at all is more likely a wrong
        // address than a passing fault, so give up sooner than mid-run (restic waits 15 min).
        let budget = self.policy.max_elapsed.min(FIRST_CONTACT);
        self.retry_within(budget, "checking for the repository", |_| {
            self.inner.exists()
        })
    }
    fn create(&self) -> Result<()> {
        self.retry("creating the repository", |_| self.inner.create())
    }
    fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.retry(&format!("saving {h}"), |attempt| {
            if attempt > 0 {
                // The failed attempt may have stored the whole file, part of it, or nothing.
                match self.inner.stat(h) {
                    Ok(size) if size == data.len() as u64 && h.kind != FileType::Config => {
                        return Ok(())
                    }
                    Ok(_) => self.inner.remove(h)?,
                    Err(BackendError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            self.inner.save(h, data)
        })
    }
    fn load(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.load_checked(h, offset, length, || self.inner.load(h, offset, length))
    }
    fn load_cacheable(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.load_checked(h, offset, length, || {
            self.inner.load_cacheable(h, offset, length)
        })
    }
    fn load_capped(&self, h: &Handle, max: u64) -> Result<Vec<u8>> {
        self.retry(&format!("loading {h}"), |_| {
            let data = self.inner.load_capped(h, max)?;
            // A file cut at the cap cannot match its name; that it is too big is the caller's
            // error to report, not a passing fault to retry.
            if data.len() as u64 <= max
                && content_addressed(h)
                && hex::encode(Sha256::digest(&data)) != h.name
            {
                return Err(hash_mismatch(h, data.len()));
            }
            Ok(data)
        })
    }
    fn stat(&self, h: &Handle) -> Result<u64> {
        self.retry(&format!("stat {h}"), |_| self.inner.stat(h))
    }
    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        self.retry(&format!("listing {}", kind.dir()), |_| {
            self.inner.list(kind)
        })
    }
    fn remove(&self, h: &Handle) -> Result<()> {
        self.retry(&format!("removing {h}"), |_| self.inner.remove(h))
    }
    // A staged file is saved from its bytes so that each attempt can send it again (the
    // store's own save_staged may consume it).
    fn save_staged(&self, h: &Handle, staged: Staged) -> Result<()> {
        match staged {
            Staged::Memory(ref v) => Backend::save(self, h, v),
            ref file => Backend::save(self, h, &file.bytes()?),
        }
    }
    fn save_cacheable(&self, h: &Handle, staged: Staged) -> Result<()> {
        Backend::save_staged(self, h, staged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// A backend that fails the first `fail` calls of each operation in a chosen way. This is
    /// the one mock in the backend tests: it injects faults no real server produces on demand
    /// (a save that lands and then reports failure, a body that arrives damaged).
    struct Flaky {
        fail: AtomicU32,
        files: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
        land_then_fail: bool,
        damage: bool,
        calls: AtomicU32,
    }

    impl Flaky {
        fn new(fail: u32) -> Flaky {
            Flaky {
                fail: AtomicU32::new(fail),
                files: Mutex::new(Default::default()),
                land_then_fail: false,
                damage: false,
                calls: AtomicU32::new(0),
            }
        }
        fn failing(&self) -> bool {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }
        fn reset() -> BackendError {
            BackendError::Io {
                handle: "x".into(),
                err: std::io::Error::new(ErrorKind::ConnectionReset, "connection reset"),
            }
        }
    }

    impl Backend for Flaky {
        fn location(&self) -> String {
            "flaky".into()
        }
        fn create(&self) -> Result<()> {
            Ok(())
        }
        fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
            let mut files = self.files.lock().unwrap();
            if files.contains_key(&h.to_string()) {
                return Err(BackendError::AlreadyExists(h.to_string()));
            }
            if self.failing() {
                if self.land_then_fail {
                    files.insert(h.to_string(), data.to_vec());
                } else {
                    // Half a file under its final name.
                    files.insert(h.to_string(), data[..data.len() / 2].to_vec());
                }
                return Err(Flaky::reset());
            }
            files.insert(h.to_string(), data.to_vec());
            Ok(())
        }
        fn load(&self, h: &Handle, _o: u64, _l: u64) -> Result<Vec<u8>> {
            let mut d = self
                .files
                .lock()
                .unwrap()
                .get(&h.to_string())
                .cloned()
                .ok_or_else(|| BackendError::NotFound(h.to_string()))?;
            if self.failing() {
                if self.damage {
                    d.truncate(d.len() / 2);
                    return Ok(d);
                }
                return Err(Flaky::reset());
            }
            Ok(d)
        }
        fn stat(&self, h: &Handle) -> Result<u64> {
            self.files
                .lock()
                .unwrap()
                .get(&h.to_string())
                .map(|d| d.len() as u64)
                .ok_or_else(|| BackendError::NotFound(h.to_string()))
        }
        fn list(&self, _k: FileType) -> Result<Vec<FileInfo>> {
            if self.failing() {
                return Err(Flaky::reset());
            }
            Ok(vec![])
        }
        fn remove(&self, h: &Handle) -> Result<()> {
            self.files.lock().unwrap().remove(&h.to_string());
            Ok(())
        }
    }

    fn quick() -> Policy {
        Policy {
            initial: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_elapsed: Duration::from_secs(5),
            verbose: false,
        }
    }

    fn named(data: &[u8]) -> Handle {
        Handle::new(FileType::Data, hex::encode(Sha256::digest(data)))
    }

    #[test]
    fn half_written_save_is_removed_and_redone() {
        let b = RetryBackend::new(Flaky::new(2), quick());
        let data = vec![7u8; 1000];
        let h = named(&data);
        b.save(&h, &data).unwrap();
        assert_eq!(b.inner.files.lock().unwrap()[&h.to_string()], data);
    }

    #[test]
    fn save_that_landed_before_failing_is_accepted() {
        let mut f = Flaky::new(1);
        f.land_then_fail = true;
        let b = RetryBackend::new(f, quick());
        let data = vec![9u8; 10];
        b.save(&named(&data), &data).unwrap();
    }

    #[test]
    fn damaged_download_is_retried_not_returned() {
        let mut f = Flaky::new(3);
        f.damage = true;
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let h = named(&data);
        f.files.lock().unwrap().insert(h.to_string(), data.clone());
        let b = RetryBackend::new(f, quick());
        assert_eq!(b.load(&h, 0, 0).unwrap(), data);
        // A file that is damaged for good fails with a message saying so.
        let mut f = Flaky::new(u32::MAX);
        f.damage = true;
        f.files.lock().unwrap().insert(h.to_string(), data);
        let mut p = quick();
        p.max_elapsed = Duration::from_millis(50);
        let err = RetryBackend::new(f, p)
            .load(&h, 0, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("do not match") && err.contains("gave up"),
            "{err}"
        );
    }

    #[test]
    fn loads_and_saves_of_cacheable_files_are_retried_too() {
        // Without a cache in front (--no-cache), packs of trees come through these.
        let mut f = Flaky::new(2);
        f.damage = true;
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let h = named(&data);
        f.files.lock().unwrap().insert(h.to_string(), data.clone());
        let b = RetryBackend::new(f, quick());
        assert_eq!(b.load_cacheable(&h, 0, 0).unwrap(), data);
        let b = RetryBackend::new(Flaky::new(2), quick());
        let h = named(b"tree pack");
        b.save_cacheable(&h, Staged::Memory(b"tree pack".to_vec()))
            .unwrap();
        assert_eq!(b.inner.files.lock().unwrap()[&h.to_string()], b"tree pack");
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let b = RetryBackend::new(Flaky::new(0), quick());
        let h = Handle::new(FileType::Index, "ab".repeat(32));
        assert!(matches!(b.load(&h, 0, 0), Err(BackendError::NotFound(_))));
        assert_eq!(b.inner.calls.load(Ordering::SeqCst), 0);
        let data = b"x".to_vec();
        let h = named(&data);
        b.save(&h, &data).unwrap();
        assert!(matches!(
            b.save(&h, b"y"),
            Err(BackendError::AlreadyExists(_))
        ));
    }

    #[test]
    fn gives_up_when_the_budget_is_spent() {
        let mut p = quick();
        p.max_elapsed = Duration::from_millis(30);
        let b = RetryBackend::new(Flaky::new(u32::MAX), p);
        let t = Instant::now();
        let err = b.list(FileType::Snapshot).unwrap_err().to_string();
        assert!(err.contains("gave up after"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(b.inner.calls.load(Ordering::SeqCst) > 2);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("abc"), None);
    }
}

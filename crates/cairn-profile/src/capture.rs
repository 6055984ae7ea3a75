//! Seeing what a step writes to stderr while it runs inside this process.
//!
//! Steps run in-process (see `run::StepRunner`), so there is no child whose stderr could be
//! piped. Instead file descriptor 2 itself is pointed at a pipe for the step's duration: every
//! writer — `eprintln!`, progress threads, and child processes the step starts (password
//! commands, `stdin-from-command`, ssh, rclone) — writes into it unchanged. A thread copies
//! every byte on to the real stderr at once (the user sees the same bytes, in the same order)
//! and hands complete lines to a callback (`stream-error`) and keeps the last
//! [`KEEP_BYTES`] (`ERROR_STDERR`, the status file's `stderr`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How much of a step's stderr is kept: its end, where the error is. Environment variables
/// are capped by the kernel (128 KiB each), and two carry it (`ERROR_STDERR`, `RESTIC_STDERR`).
pub const KEEP_BYTES: usize = 64 << 10;

/// A line longer than this is cut for matching (its bytes are all passed through).
const MAX_LINE: usize = 64 << 10;

/// After the step, how long to wait for the last bytes: a process the step started and that
/// still runs keeps the pipe open; past this it is left to the copying thread alone.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Called with each complete line (no newline) and the real stderr (for processes the
/// callback starts: their output must not come back into the pipe).
pub type OnLine = Box<dyn FnMut(&str, &File) + Send>;

/// fd 2 redirected; [`StderrCapture::finish`] puts it back.
pub struct StderrCapture {
    /// The real stderr, duplicated before the redirection.
    saved: Arc<File>,
    kept: Arc<Mutex<Tail>>,
    /// Set by `finish`: lines after that are passed through but no longer matched.
    stopped: Arc<AtomicBool>,
    /// Set while the callback runs (a `stream-error` command): `finish` waits for it.
    busy: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
        if self.bytes.len() > KEEP_BYTES {
            let cut = self.bytes.len() - KEEP_BYTES;
            self.dropped += cut as u64;
            self.bytes.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let mut b = &self.bytes[..];
        if self.dropped > 0 {
            // Start at a line boundary rather than in the middle of one.
            if let Some(nl) = b.iter().position(|&c| c == b'\n') {
                b = &b[nl + 1..];
            }
        }
        String::from_utf8_lossy(b).into_owned()
    }
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl StderrCapture {
    /// Redirects fd 2. An error leaves fd 2 as it was (the step then runs uncaptured).
    /// Without a callback the bytes are only passed on and kept (no line splitting).
    pub fn start(mut on_line: Option<OnLine>) -> io::Result<StderrCapture> {
        let _ = io::stderr().flush();
        // With fd 2 closed the pipe would take its number: nothing to capture then.
        // SAFETY: F_GETFD only reads the descriptor's flags.
        cvt(unsafe { libc::fcntl(libc::STDERR_FILENO, libc::F_GETFD) })?;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_DUPFD_CLOEXEC duplicates fd 2 (if open) into a new descriptor we own.
        let saved = cvt(unsafe { libc::fcntl(libc::STDERR_FILENO, libc::F_DUPFD_CLOEXEC, 3) })?;
        // SAFETY: `saved` is a fresh descriptor owned by nobody else.
        let saved = Arc::new(File::from(unsafe { OwnedFd::from_raw_fd(saved) }));
        // SAFETY: dup2 onto fd 2; the new fd 2 is inherited by children (dup2 clears
        // close-on-exec), the write end's own descriptor is closed when `write_end` drops.
        cvt(unsafe { libc::dup2(write_end.as_raw_fd(), libc::STDERR_FILENO) })?;
        drop(write_end);

        let kept = Arc::new(Mutex::new(Tail::default()));
        let stopped = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let (out, kept2, stopped2, busy2) =
            (saved.clone(), kept.clone(), stopped.clone(), busy.clone());
        let thread = std::thread::Builder::new()
            .name("stderr-capture".into())
            .spawn(move || {
                let mut pipe = File::from(read_end);
                let mut buf = vec![0u8; 16 << 10];
                let mut line: Vec<u8> = Vec::new();
                let by_line = on_line.is_some();
                let mut emit = |line: &mut Vec<u8>| {
                    if let Some(f) = on_line
                        .as_mut()
                        .filter(|_| !stopped2.load(Ordering::SeqCst))
                    {
                        let l = String::from_utf8_lossy(line);
                        busy2.store(true, Ordering::SeqCst);
                        f(l.strip_suffix('\r').unwrap_or(&l), &out);
                        busy2.store(false, Ordering::SeqCst);
                    }
                    line.clear();
                };
                loop {
                    let n = match pipe.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let chunk = &buf[..n];
                    if let Ok(mut k) = kept2.lock() {
                        k.push(chunk);
                    }
                    if !by_line {
                        let _ = (&*out).write_all(chunk);
                        continue;
                    }
                    // Passed on piece by piece, each line before a command it triggers starts:
                    // a command's output then never lands inside a line the user reads. A
                    // line's start (a prompt) is passed on at once.
                    for part in chunk.split_inclusive(|&c| c == b'\n') {
                        let _ = (&*out).write_all(part);
                        let (body, ends) = match part.strip_suffix(b"\n") {
                            Some(b) => (b, true),
                            None => (part, false),
                        };
                        let room = MAX_LINE.saturating_sub(line.len());
                        line.extend_from_slice(&body[..body.len().min(room)]);
                        if ends {
                            emit(&mut line);
                        }
                    }
                }
                if !line.is_empty() {
                    emit(&mut line);
                }
                let _ = tx.send(());
            })?;
        Ok(StderrCapture {
            saved,
            kept,
            stopped,
            busy,
            done,
            thread: Some(thread),
        })
    }

    /// Puts fd 2 back and returns the end of what was written (lossy UTF-8). A
    /// `stream-error` command still running is waited for (in resticprofile the command is
    /// not over before they are); a process the step left behind holding the pipe is
    /// waited for at most [`DRAIN_WAIT`].
    pub fn finish(mut self) -> String {
        self.restore();
        let tick = Duration::from_millis(50);
        let mut idle = Duration::ZERO;
        loop {
            if self.done.recv_timeout(tick).is_ok() {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                break;
            }
            if !self.busy.load(Ordering::SeqCst) {
                idle += tick;
                if idle >= DRAIN_WAIT {
                    // The thread goes on copying until the last writer closes the pipe.
                    break;
                }
            }
        }
        self.stopped.store(true, Ordering::SeqCst);
        self.kept.lock().map(|k| k.text()).unwrap_or_default()
    }

    fn restore(&self) {
        let _ = io::stderr().flush();
        // SAFETY: dup2 of a descriptor this struct owns onto fd 2; the pipe's write end that
        // fd 2 was is closed by it, so the copying thread sees end-of-file once the processes
        // the step started are gone.
        unsafe { libc::dup2(self.saved.as_raw_fd(), libc::STDERR_FILENO) };
    }
}

impl Drop for StderrCapture {
    fn drop(&mut self) {
        // `finish` not called (a panic in the step): the real stderr comes back all the same.
        if self.thread.is_some() {
            self.restore();
            self.stopped.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes straight to fd 2 (the test harness captures `eprint!`, not the descriptor).
    fn write_fd2(s: &str) {
        // SAFETY: write(2) from a valid buffer of the given length.
        let n = unsafe { libc::write(libc::STDERR_FILENO, s.as_ptr().cast(), s.len()) };
        assert_eq!(n, s.len() as isize);
    }

    #[test]
    fn lines_reach_the_callback_whole_and_a_slow_callback_is_waited_for() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let cap = StderrCapture::start(Some(Box::new(move |line, _real| {
            // Other tests' hooks may write to fd 2 meanwhile: only this test's lines count.
            if line.contains("capture-test-") {
                if line.ends_with("slow") {
                    std::thread::sleep(DRAIN_WAIT + Duration::from_millis(500));
                }
                seen2.lock().unwrap().push(line.to_string());
            }
        })))
        .unwrap();
        write_fd2("capture-test-1\r\nhalf of capture-test-");
        write_fd2("2 slow\n");
        let text = cap.finish();
        assert_eq!(
            *seen.lock().unwrap(),
            ["capture-test-1", "half of capture-test-2 slow"],
            "a line cut across writes is one line; the slow callback ended before finish"
        );
        assert!(
            text.contains("capture-test-1\r\nhalf of capture-test-2 slow\n"),
            "{text:?}"
        );
    }

    #[test]
    fn the_kept_text_is_the_end_from_a_line_start() {
        let mut t = Tail::default();
        t.push(b"first line\n");
        t.push(&vec![b'x'; KEEP_BYTES]);
        t.push(b"\nlast\n");
        let text = t.text();
        assert_eq!(text, "last\n");
        let mut t = Tail::default();
        t.push(b"short\n");
        assert_eq!(t.text(), "short\n");
    }
}

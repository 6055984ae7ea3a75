//! SFTP, as restic does it: `sftp:user@host:/abs/path`, `sftp:host:relative/path`,
//! `sftp:alias:/path` (an `~/.ssh/config` Host), `sftp://user@host:port//abs/path` and
//! `sftp://user@host:port/rel/path`.
//!
//! cairn runs `ssh [-p port] [-l user] host -s sftp` (or the whole command line given with
//! `-o sftp.command="..."`, plus `-o sftp.args="..."` for ssh), so ~/.ssh/config, agents and
//! keys work as they do for restic, and speaks SFTP v3 over the child's stdin and stdout with
//! the `openssh-sftp-client` crate. That crate is async: the backend keeps a one-thread tokio
//! runtime and blocks on it, since the [`Backend`] trait is synchronous. One session carries
//! many requests at once, so `sftp.connections` (default 5) only sizes cairn's thread pools.
//!
//! The repository uses restic's default layout: `config`, `keys/`, `snapshots/`, `index/`,
//! `locks/`, and `data/00`..`data/ff` holding packs by the first two digits of their name.
//!
//! Saving writes a hidden temporary file beside the target (`.<id>-tmp-<host>-<pid>-<rand>`,
//! which listings skip), writes its pieces in parallel, fsyncs it when the server offers
//! `fsync@openssh.com`, and then links it into place: the client crate always renames with
//! `posix-rename@openssh.com` when the server has it, which would replace an existing file, so
//! cairn creates the final name with `hardlink@openssh.com` (what OpenSSH's own v3 rename does:
//! `link()`, which refuses an existing target, then `unlink()` of the old name) and removes the
//! temporary name. Without that extension it checks, then renames. The config alone may be
//! replaced, by a POSIX rename. A half-written file never appears under its final name.
//!
//! A session whose ssh has exited is reported with ssh's own last words on stderr, in one line,
//! and the next operation (the retry decorator's next attempt) starts a new ssh.

use crate::location::clean_path;
use crate::{Backend, BackendError, FileInfo, FileType, Handle, OpenError, Options, Result};
use futures_util::StreamExt;
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::metadata::Permissions;
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions};
use std::io::{self, ErrorKind};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes per read or write request: what OpenSSH's sftp-server accepts in one (256 KiB less
/// room for the header).
const CHUNK: usize = 255 * 1024;
/// Requests of one load or save in flight at once.
const PIPELINE: usize = 16;

/// A parsed location, as restic's `sftp.ParseConfig` makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftpLocation {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<String>,
    /// Cleaned (`path.Clean`); absolute when it starts with '/', else relative to the login
    /// directory.
    pub path: String,
}

/// Parses what follows `sftp:` in a location.
pub fn parse_location(spec: &str) -> std::result::Result<SftpLocation, String> {
    let whole = format!("sftp:{spec}");
    let (user, host, port, dir) = if let Some(rest) = spec.strip_prefix("//") {
        // sftp://[user@]host[:port]/dir, parsed as Go's net/url does.
        let rest = rest.split_once('#').map_or(rest, |(a, _)| a);
        let rest = rest.split_once('?').map_or(rest, |(a, _)| a);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => {
                let name = u.split_once(':').map_or(u, |(n, _)| n);
                (Some(percent_decode(name, &whole)?), h)
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)
            .ok_or_else(|| format!("invalid location {whole:?}: bad host or port"))?;
        if path.is_empty() {
            return Err(format!(
                "invalid location {whole:?}: no directory specified"
            ));
        }
        let path = percent_decode(path, &whole)?;
        (
            user,
            percent_decode(host, &whole)?,
            port,
            path[1..].to_string(),
        )
    } else {
        // sftp:[user@]host:dir
        let (userhost, dir) = spec.split_once(':').ok_or_else(|| {
            format!("invalid location {whole:?}: hostname or path not found (want sftp:[user@]host:path)")
        })?;
        let parts: Vec<&str> = userhost.splitn(3, '@').collect();
        let (user, host) = match parts.as_slice() {
            [a, b, c] => (Some(format!("{a}@{b}")), c.to_string()),
            [a, b] => (Some(a.to_string()), b.to_string()),
            _ => (None, userhost.to_string()),
        };
        (user, host, None, dir.to_string())
    };
    if host.is_empty() {
        return Err(format!("invalid location {whole:?}: no host"));
    }
    if host.starts_with('-') {
        return Err(format!(
            "invalid location {whole:?}: a host name cannot start with '-'"
        ));
    }
    let path = clean_path(&dir);
    if path.starts_with('~') {
        return Err(format!(
            "invalid location {whole:?}: the path starts with '~', which most SFTP servers do \
             not expand; use a relative path, which they take from the login directory"
        ));
    }
    Ok(SftpLocation {
        user: user.filter(|u| !u.is_empty()),
        host,
        port,
        path,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; an empty port counts as none (as in Go).
fn split_host_port(s: &str) -> Option<(&str, Option<String>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after {
            "" => (h, ""),
            p => (h, p.strip_prefix(':')?),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (s, ""),
        }
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, (!port.is_empty()).then(|| port.to_string())))
}

fn percent_decode(s: &str, whole: &str) -> std::result::Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let v = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid location {whole:?}: bad %-escape"))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("invalid location {whole:?}: not UTF-8"))
}

/// Splits a command line as a shell would for simple quoting: whitespace separates words,
/// '...' is literal, "..." allows \" \\ \$ \`, a backslash outside quotes escapes the next
/// character, and quoted and unquoted pieces of one word join.
pub fn split_command(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("single-quoted string not terminated".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("double-quoted string not terminated".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("double-quoted string not terminated".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(x) => {
                    in_word = true;
                    cur.push(x);
                }
                None => {
                    in_word = true;
                    cur.push('\\');
                }
            },
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("command string is empty".into());
    }
    Ok(out)
}

/// The program and arguments to run: `sftp.command` split, or
/// `ssh [-p port] [-l user] [sftp.args...] host -s sftp`.
pub fn ssh_command(
    loc: &SftpLocation,
    command: Option<&str>,
    args: Option<&str>,
) -> std::result::Result<Vec<String>, OpenError> {
    if let Some(c) = command.filter(|c| !c.trim().is_empty()) {
        if args.is_some_and(|a| !a.trim().is_empty()) {
            return Err(OpenError::bad_option(
                "sftp.args",
                "cannot specify both sftp.command and sftp.args options",
            ));
        }
        return split_command(c).map_err(|e| {
            OpenError::bad_option("sftp.command", format!("invalid option sftp.command: {e}"))
        });
    }
    let mut argv = vec!["ssh".to_string()];
    if let Some(p) = &loc.port {
        argv.extend(["-p".to_string(), p.clone()]);
    }
    if let Some(u) = &loc.user {
        argv.extend(["-l".to_string(), u.clone()]);
    }
    if let Some(a) = args.filter(|a| !a.trim().is_empty()) {
        argv.extend(split_command(a).map_err(|e| {
            OpenError::bad_option("sftp.args", format!("invalid option sftp.args: {e}"))
        })?);
    }
    argv.extend([loc.host.clone(), "-s".into(), "sftp".into()]);
    Ok(argv)
}

pub struct SftpBackend {
    location: String,
    root: String,
    argv: Vec<String>,
    connections: usize,
    /// The live session, if any; replaced when its ssh has exited. Dropped before `rt`.
    conn: Mutex<Option<Arc<Conn>>>,
    rt: tokio::runtime::Runtime,
}

impl SftpBackend {
    /// `spec` is the location after `sftp:`. Reads `sftp.command`, `sftp.args`,
    /// `sftp.connections` and `sftp.layout`, and starts the session (so that a wrong host or a
    /// refused key is reported at once).
    pub fn open(spec: &str, opts: &Options) -> std::result::Result<SftpBackend, OpenError> {
        let location = format!("sftp:{spec}");
        let loc = parse_location(spec).map_err(|e| OpenError::bad_location(&location, e))?;
        let argv = ssh_command(&loc, opts.get("sftp.command"), opts.get("sftp.args"))?;
        let connections = opts.get_usize("sftp.connections")?.unwrap_or(5);
        match opts.get("sftp.layout") {
            None | Some("" | "default" | "auto") => {}
            Some(other) => {
                return Err(OpenError::bad_option(
                    "sftp.layout",
                    format!(
                        "invalid option sftp.layout={other:?}: cairn knows only restic's \
                         default layout"
                    ),
                ))
            }
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cairn-sftp")
            .on_thread_start(block_sigpipe)
            .enable_all()
            .build()
            .map_err(|e| {
                OpenError::connect(&location, format!("sftp: cannot start a runtime: {e}"))
            })?;
        let be = SftpBackend {
            location,
            root: loc.path,
            argv,
            connections,
            conn: Mutex::new(None),
            rt,
        };
        let conn = be.connect().map_err(|(_, msg)| {
            OpenError::connect(&be.location, format!("{}: {msg}", be.location))
        })?;
        *be.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(conn));
        Ok(be)
    }

    /// The session, started anew if the last one ended.
    fn conn(&self) -> Result<Arc<Conn>> {
        let mut g = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.as_ref() {
            if !c.is_dead() {
                return Ok(Arc::clone(c));
            }
        }
        *g = None;
        let c = Arc::new(self.connect().map_err(|(kind, msg)| BackendError::Io {
            handle: self.location.clone(),
            err: io::Error::new(kind, msg),
        })?);
        *g = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Starts ssh and the SFTP session over its stdin and stdout.
    fn connect(&self) -> std::result::Result<Conn, (ErrorKind, String)> {
        let prog = &self.argv[0];
        let mut cmd = Command::new(prog);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so that Ctrl-C reaches cairn only and cairn can still remove
        // its lock over this session; it gets the terminal while it may ask for a password.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let fg = Foreground::prepare();
        let mut child = cmd.spawn().map_err(|e| {
            let kind = match e.kind() {
                ErrorKind::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::PermissionDenied,
            };
            (kind, format!("cannot start {prog:?}: {e}"))
        })?;
        fg.hand_over(child.id());
        let stderr = StderrLog::start(child.stderr.take());
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err((ErrorKind::Other, format!("{prog}: no pipes")));
        };
        let root = self.root.clone();
        let started = self.rt.block_on(async move {
            use std::os::fd::OwnedFd;
            use tokio::net::unix::pipe;
            let w = pipe::Sender::from_owned_fd(OwnedFd::from(stdin))?;
            let r = pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))?;
            let sftp = Sftp::new(w, r, SftpOptions::new()).await?;
            // restic's modes: private, unless the repository's config is group-readable.
            let group = match sftp.fs().symlink_metadata(join(&root, "config")).await {
                Ok(m) => m.permissions().is_some_and(|p| p.read_by_group()),
                Err(_) => false,
            };
            Ok::<_, SftpError>((sftp, group))
        });
        drop(fg);
        match started {
            Ok((sftp, group)) => Ok(Conn {
                fsync: sftp.support_fsync(),
                hardlink: sftp.support_hardlink(),
                posix_rename: sftp.support_posix_rename(),
                statvfs: sftp.support_statvfs(),
                file_mode: if group { 0o640 } else { 0o600 },
                dir_mode: if group { 0o750 } else { 0o700 },
                sftp: Some(sftp),
                prog: prog.clone(),
                child: Mutex::new(child),
                stderr,
                dead: AtomicBool::new(false),
            }),
            Err(e) => {
                let status = wait_exit(&mut child, Duration::from_secs(5));
                if status.is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                let said = stderr.text(Duration::from_secs(2));
                let kind = classify(&said);
                let msg = match status {
                    Some(st) => format!(
                        "{prog} exited ({}) before the SFTP session started: {}",
                        describe_status(st),
                        if said.is_empty() { e.to_string() } else { said }
                    ),
                    None if said.is_empty() => {
                        format!("cannot start the SFTP session over {prog}: {e}")
                    }
                    None => format!("cannot start the SFTP session over {prog}: {e} ({said})"),
                };
                Err((kind, msg))
            }
        }
    }

    fn path(&self, h: &Handle) -> String {
        file_path(&self.root, h)
    }

    /// Maps a failed request on `conn` about `what`.
    fn fail(&self, conn: &Conn, what: &str, e: SftpError) -> BackendError {
        let io = |kind: ErrorKind, msg: String| BackendError::Io {
            handle: what.to_string(),
            err: io::Error::new(kind, msg),
        };
        match e {
            SftpError::SftpError(kind, msg) => {
                let text = msg.get().0.to_string();
                match kind {
                    SftpErrorKind::NoSuchFile => BackendError::NotFound(what.to_string()),
                    SftpErrorKind::PermDenied => io(ErrorKind::PermissionDenied, text),
                    SftpErrorKind::OpUnsupported => io(ErrorKind::Unsupported, text),
                    _ => io(ErrorKind::Other, format!("server said: {text}")),
                }
            }
            SftpError::UnsupportedExtension(ext) => io(
                ErrorKind::Unsupported,
                format!("the server lacks the {ext} extension"),
            ),
            SftpError::IOError(err) if err.kind() == ErrorKind::UnexpectedEof && conn.alive() => {
                io(
                    ErrorKind::UnexpectedEof,
                    "short read: the file ended early".into(),
                )
            }
            other => {
                // The session is gone (ssh exited, or the stream broke): say why, and start a
                // new one next time.
                conn.dead.store(true, Ordering::SeqCst);
                let (kind, why) = conn.end_reason(&other);
                io(kind, why)
            }
        }
    }

    /// Runs a request future on the runtime.
    fn run<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(fut)
    }
}

impl Drop for SftpBackend {
    fn drop(&mut self) {
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(conn) = conn else { return };
        let Ok(mut conn) = Arc::try_unwrap(conn) else {
            return;
        };
        // Close the session politely: pending closes are sent, ssh sees the end of its input
        // and exits; a stuck one is killed.
        if let Some(sftp) = conn.sftp.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), sftp.close()).await
            });
        }
        let child = conn.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if wait_exit(child, Duration::from_secs(5)).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One ssh process and the SFTP session over it.
struct Conn {
    /// Always Some but while closing.
    sftp: Option<Sftp>,
    prog: String,
    child: Mutex<Child>,
    stderr: StderrLog,
    dead: AtomicBool,
    fsync: bool,
    hardlink: bool,
    posix_rename: bool,
    statvfs: bool,
    file_mode: u16,
    dir_mode: u16,
}

impl Conn {
    fn sftp(&self) -> std::result::Result<&Sftp, SftpError> {
        self.sftp
            .as_ref()
            .ok_or(SftpError::BackgroundTaskFailure(&"the session is closed"))
    }

    fn fs(&self) -> std::result::Result<openssh_sftp_client::fs::Fs, SftpError> {
        Ok(self.sftp()?.fs())
    }

    /// Has ssh not exited?
    fn alive(&self) -> bool {
        let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(c.try_wait(), Ok(None))
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst) || !self.alive()
    }

    /// Why the session ended, in one line, and whether another attempt can help.
    fn end_reason(&self, e: &SftpError) -> (ErrorKind, String) {
        let status = {
            let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
            wait_exit(&mut c, Duration::from_secs(2))
        };
        let said = self.stderr.text(Duration::from_millis(500));
        let what = match status {
            Some(st) => format!(
                "the SFTP session ended: {} exited ({})",
                self.prog,
                describe_status(st)
            ),
            None => format!("the SFTP session over {} failed ({e})", self.prog),
        };
        let kind = match classify(&said) {
            ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::ConnectionAborted,
        };
        if said.is_empty() {
            (kind, what)
        } else {
            (kind, format!("{what}: {said}"))
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// Waits up to `limit` for the child to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

fn describe_status(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => st.to_string(),
    }
}

/// Authentication and host-key failures cannot be retried away.
fn classify(said: &str) -> ErrorKind {
    let s = said.to_ascii_lowercase();
    if s.contains("permission denied")
        || s.contains("host key verification failed")
        || s.contains("too many authentication failures")
    {
        ErrorKind::PermissionDenied
    } else {
        ErrorKind::ConnectionAborted
    }
}

/// ssh's stderr, kept (the last lines) for error messages rather than mixed into cairn's
/// output.
struct StderrLog {
    state: Arc<(Mutex<StderrLines>, Condvar)>,
}

/// The lines so far, and whether the stream has ended.
type StderrLines = (Vec<String>, bool);

impl StderrLog {
    fn start(stderr: Option<std::process::ChildStderr>) -> StderrLog {
        let state = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
        let Some(stderr) = stderr else {
            return StderrLog { state };
        };
        let st = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("cairn-ssh-stderr".into())
            .spawn(move || {
                use std::io::BufRead;
                let mut r = io::BufReader::new(stderr);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf).trim().to_string();
                            let mut g = st.0.lock().unwrap_or_else(|e| e.into_inner());
                            if !line.is_empty() {
                                g.0.push(line);
                                if g.0.len() > 50 {
                                    g.0.remove(0);
                                }
                            }
                        }
                    }
                }
                st.0.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
                st.1.notify_all();
            });
        if spawned.is_err() {
            state.0.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        }
        StderrLog { state }
    }

    /// The last few meaningful lines in one line, after waiting up to `limit` for the end of
    /// the stream.
    fn text(&self, limit: Duration) -> String {
        let (m, cv) = &*self.state;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = cv
            .wait_timeout_while(g, limit, |s| !s.1)
            .unwrap_or_else(|e| e.into_inner());
        let lines: Vec<&String> =
            g.0.iter()
                .filter(|l| !l.starts_with("Warning: Permanently added"))
                .collect();
        let tail = &lines[lines.len().saturating_sub(5)..];
        tail.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// While ssh starts, it owns the terminal (to ask for a password or passphrase), as restic
/// arranges it; cairn takes the terminal back once the session is up. Only when cairn has the
/// terminal to give.
struct Foreground {
    tty: Option<std::fs::File>,
    prev: libc::pid_t,
    old_ttin: libc::sighandler_t,
    old_ttou: libc::sighandler_t,
}

impl Foreground {
    fn prepare() -> Foreground {
        let mut fg = Foreground {
            tty: None,
            prev: 0,
            old_ttin: libc::SIG_DFL,
            old_ttou: libc::SIG_DFL,
        };
        let Ok(tty) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
        else {
            return fg;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: plain calls on a valid descriptor; the signal dispositions are restored in
        // `drop`.
        unsafe {
            let prev = libc::getpgrp();
            if libc::tcgetpgrp(tty.as_raw_fd()) != prev {
                return fg; // in the background: nothing to hand over
            }
            fg.prev = prev;
            fg.old_ttin = libc::signal(libc::SIGTTIN, libc::SIG_IGN);
            fg.old_ttou = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        }
        fg.tty = Some(tty);
        fg
    }

    fn hand_over(&self, pid: u32) {
        if let Some(tty) = &self.tty {
            use std::os::fd::AsRawFd;
            // SAFETY: the child leads its own process group (process_group(0)).
            unsafe { libc::tcsetpgrp(tty.as_raw_fd(), pid as libc::pid_t) };
        }
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Some(tty) = &self.tty {
            use std::os::fd::AsRawFd;
            // SAFETY: restoring the terminal's foreground group and the dispositions saved in
            // `prepare` (SIGTTOU is still ignored while tcsetpgrp runs).
            unsafe {
                libc::tcsetpgrp(tty.as_raw_fd(), self.prev);
                libc::signal(libc::SIGTTIN, self.old_ttin);
                libc::signal(libc::SIGTTOU, self.old_ttou);
            }
        }
    }
}

/// The runtime's threads write to ssh's stdin: a write after ssh exited must be an EPIPE error,
/// not a SIGPIPE that ends cairn (whose CLI restores the default disposition).
fn block_sigpipe() {
    // SAFETY: changes only the calling thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Where a file lives in restic's default layout.
fn file_path(root: &str, h: &Handle) -> String {
    match h.kind {
        FileType::Config => join(root, "config"),
        FileType::Data => join(
            root,
            &format!("data/{}/{}", h.name.get(..2).unwrap_or(&h.name), h.name),
        ),
        k => join(root, &format!("{}/{}", k.dir(), h.name)),
    }
}

fn join(root: &str, rest: &str) -> String {
    match root {
        "." => rest.to_string(),
        "/" => format!("/{rest}"),
        r => format!("{r}/{rest}"),
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid and its length is passed.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).replace(['-', '/'], "_")
}

fn is_hex_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_no_such_file(e: &SftpError) -> bool {
    matches!(e, SftpError::SftpError(SftpErrorKind::NoSuchFile, _))
}

async fn exists(conn: &Conn, path: &str) -> std::result::Result<bool, SftpError> {
    match conn.fs()?.symlink_metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if is_no_such_file(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn is_dir(conn: &Conn, path: &str) -> bool {
    match conn.fs() {
        Ok(mut fs) => fs
            .metadata(path)
            .await
            .ok()
            .and_then(|m| m.file_type())
            .is_some_and(|t| t.is_dir()),
        Err(_) => false,
    }
}

async fn mkdir(conn: &Conn, path: &str) -> std::result::Result<(), SftpError> {
    let mut fs = conn.fs()?;
    let made = fs
        .dir_builder()
        .permissions(Permissions::from(conn.dir_mode))
        .create(path)
        .await;
    match made {
        Ok(()) => Ok(()),
        Err(_) if is_dir(conn, path).await => Ok(()),
        Err(e) => Err(e),
    }
}

/// `mkdir -p`.
async fn mkdir_all(conn: &Conn, path: &str) -> std::result::Result<(), SftpError> {
    if mkdir(conn, path).await.is_ok() {
        return Ok(());
    }
    for (i, _) in path.match_indices('/') {
        if i > 0 {
            let _ = mkdir(conn, &path[..i]).await;
        }
    }
    mkdir(conn, path).await
}

/// Names and metadata of a directory's entries.
async fn read_dir(
    conn: &Conn,
    path: &str,
) -> std::result::Result<Vec<(String, openssh_sftp_client::metadata::MetaData)>, SftpError> {
    let dir = conn.fs()?.open_dir(path).await?;
    let entries = dir.read_dir();
    futures_util::pin_mut!(entries);
    let mut out = Vec::new();
    while let Some(e) = entries.next().await {
        let e = e?;
        let name = e.filename().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            out.push((name, e.metadata()));
        }
    }
    Ok(out)
}

/// The 64-hex-digit files in a directory, with sizes; a missing directory is empty.
async fn list_files(conn: &Conn, path: &str) -> std::result::Result<Vec<FileInfo>, SftpError> {
    let entries = match read_dir(conn, path).await {
        Ok(e) => e,
        Err(e) if is_no_such_file(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (name, meta) in entries {
        if !is_hex_name(&name) || meta.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        let size = match meta.len() {
            Some(s) => s,
            None => match conn.fs()?.symlink_metadata(join(path, &name)).await {
                Ok(m) => m.len().unwrap_or(0),
                Err(e) if is_no_such_file(&e) => continue,
                Err(e) => return Err(e),
            },
        };
        out.push(FileInfo { name, size });
    }
    Ok(out)
}

/// Writes `data` at offset 0, many requests in flight at once.
async fn write_pipelined(
    file: &openssh_sftp_client::file::File,
    data: &[u8],
) -> std::result::Result<(), SftpError> {
    use tokio::io::AsyncSeek;
    let writes = data.chunks(CHUNK).enumerate().map(|(i, chunk)| {
        let mut f = file.clone();
        async move {
            std::pin::Pin::new(&mut f).start_seek(io::SeekFrom::Start((i * CHUNK) as u64))?;
            f.write_all(chunk).await
        }
    });
    let mut results = futures_util::stream::iter(writes).buffer_unordered(PIPELINE);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}

/// Reads `len` bytes at `offset`, many requests in flight at once.
async fn read_pipelined(
    file: &openssh_sftp_client::file::File,
    offset: u64,
    len: u64,
) -> std::result::Result<Vec<u8>, SftpError> {
    use tokio::io::AsyncSeek;
    let chunks = len.div_ceil(CHUNK as u64);
    let reads = (0..chunks).map(|i| {
        let mut f = file.clone();
        let at = offset + i * CHUNK as u64;
        let n = (len - i * CHUNK as u64).min(CHUNK as u64) as usize;
        async move {
            std::pin::Pin::new(&mut f).start_seek(io::SeekFrom::Start(at))?;
            f.read_all(n, Default::default()).await
        }
    });
    let mut out = Vec::with_capacity(len as usize);
    let mut results = futures_util::stream::iter(reads).buffered(PIPELINE);
    while let Some(r) = results.next().await {
        out.extend_from_slice(&r?);
    }
    Ok(out)
}

/// How a save ended when it did not store the file.
enum SaveFail {
    Exists,
    Sftp(SftpError),
}

impl From<SftpError> for SaveFail {
    fn from(e: SftpError) -> SaveFail {
        SaveFail::Sftp(e)
    }
}

impl SftpBackend {
    async fn save_async(
        &self,
        conn: &Conn,
        h: &Handle,
        data: &[u8],
    ) -> std::result::Result<(), SaveFail> {
        let path = self.path(h);
        let dir = parent(&path).to_string();
        let tmp = join(
            &dir,
            &format!(
                ".{}-tmp-{}-{}-{:016x}",
                h.name.get(..16).unwrap_or(&h.name),
                hostname(),
                std::process::id(),
                rand::random::<u64>()
            ),
        );
        let replace = h.kind == FileType::Config;
        let sftp = conn.sftp()?;
        let mut opts = sftp.options();
        opts.write(true).create_new(true);
        let mut file = match opts.open(&tmp).await {
            Err(e) if is_no_such_file(&e) => {
                mkdir_all(conn, &dir).await?;
                opts.open(&tmp).await?
            }
            r => r?,
        };
        let written = async {
            file.set_permissions(Permissions::from(conn.file_mode))
                .await?;
            write_pipelined(&file, data).await?;
            if conn.fsync {
                file.sync_all().await?;
            }
            file.close().await
        }
        .await;
        let placed = match written {
            Ok(()) => self.publish(conn, &tmp, &path, replace).await,
            Err(e) => Err(SaveFail::Sftp(e)),
        };
        if placed.is_err() {
            if let Ok(mut fs) = conn.fs() {
                let _ = fs.remove_file(&tmp).await;
            }
        }
        placed
    }

    /// Gives the written temporary file its final name.
    async fn publish(
        &self,
        conn: &Conn,
        tmp: &str,
        path: &str,
        replace: bool,
    ) -> std::result::Result<(), SaveFail> {
        let mut fs = conn.fs()?;
        if replace {
            // The config: a POSIX rename (which the client uses when it can) replaces it
            // atomically; a plain one refuses, so then the old one goes first.
            if conn.posix_rename {
                return Ok(fs.rename(tmp, path).await?);
            }
            if fs.rename(tmp, path).await.is_ok() {
                return Ok(());
            }
            match fs.remove_file(path).await {
                Ok(()) => {}
                Err(e) if is_no_such_file(&e) => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(fs.rename(tmp, path).await?);
        }
        if conn.hardlink {
            match fs.hard_link(tmp, path).await {
                Ok(()) => {
                    // The file is stored; a temporary name left behind is only clutter.
                    let _ = fs.remove_file(tmp).await;
                    return Ok(());
                }
                Err(e) => {
                    if exists(conn, path).await? {
                        return Err(SaveFail::Exists);
                    }
                    // No hard links on this file system: fall back to renaming.
                    if !matches!(
                        e,
                        SftpError::SftpError(
                            SftpErrorKind::OpUnsupported
                                | SftpErrorKind::PermDenied
                                | SftpErrorKind::Failure,
                            _
                        )
                    ) {
                        return Err(e.into());
                    }
                }
            }
        }
        if conn.posix_rename && exists(conn, path).await? {
            return Err(SaveFail::Exists);
        }
        match fs.rename(tmp, path).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if exists(conn, path).await? {
                    Err(SaveFail::Exists)
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// A failed save with a generic failure on a full disk is "storage full" (permanent), as
    /// restic checks it.
    async fn out_of_space(&self, conn: &Conn, h: &Handle, size: usize) -> bool {
        if !conn.statvfs {
            return false;
        }
        let Ok(mut fs) = conn.fs() else { return false };
        let path = self.path(h);
        match fs.statvfs(parent(&path)).await {
            Ok(st) => st.favail == 0 || st.bavail.saturating_mul(st.frsize) < size as u64,
            Err(_) => false,
        }
    }
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn lists_after_write(&self) -> bool {
        // A directory listing on the server sees every completed rename or link.
        true
    }

    fn connections(&self) -> usize {
        self.connections
    }

    fn create(&self) -> Result<()> {
        let conn = self.conn()?;
        let root = self.root.clone();
        let r = self.run(async {
            mkdir_all(&conn, &root).await?;
            for kind in FileType::all_dirs() {
                mkdir(&conn, &join(&root, kind.dir())).await?;
            }
            let subdirs = (0..256).map(|i| {
                let p = join(&root, &format!("data/{i:02x}"));
                let conn = &conn;
                async move { mkdir(conn, &p).await }
            });
            let mut made = futures_util::stream::iter(subdirs).buffer_unordered(PIPELINE);
            while let Some(r) = made.next().await {
                r?;
            }
            Ok(())
        });
        r.map_err(|e| self.fail(&conn, &self.root, e))
    }

    fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let conn = self.conn()?;
        match self.run(self.save_async(&conn, h, data)) {
            Ok(()) => Ok(()),
            Err(SaveFail::Exists) => Err(BackendError::AlreadyExists(h.to_string())),
            Err(SaveFail::Sftp(e)) => {
                let generic = matches!(e, SftpError::SftpError(SftpErrorKind::Failure, _));
                if generic && self.run(self.out_of_space(&conn, h, data.len())) {
                    return Err(BackendError::Io {
                        handle: h.to_string(),
                        err: io::Error::new(
                            ErrorKind::StorageFull,
                            "no space left on the server's device",
                        ),
                    });
                }
                Err(self.fail(&conn, &h.to_string(), e))
            }
        }
    }

    fn load(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        let conn = self.conn()?;
        let path = self.path(h);
        let r = self.run(async {
            let mut file = conn.sftp()?.open(&path).await?;
            let len = if length > 0 {
                length
            } else {
                let size = file.metadata().await?.len().unwrap_or(0);
                size.saturating_sub(offset)
            };
            let data = read_pipelined(&file, offset, len).await;
            let _ = file.close().await;
            data
        });
        r.map_err(|e| self.fail(&conn, &h.to_string(), e))
    }

    fn load_capped(&self, h: &Handle, max: u64) -> Result<Vec<u8>> {
        let conn = self.conn()?;
        let path = self.path(h);
        let r = self.run(async {
            let mut file = conn.sftp()?.open(&path).await?;
            // The size the server reports decides how much is read, so it is capped too.
            let size = file.metadata().await?.len().unwrap_or(0);
            let data = read_pipelined(&file, 0, size.min(max.saturating_add(1))).await;
            let _ = file.close().await;
            data
        });
        r.map_err(|e| self.fail(&conn, &h.to_string(), e))
    }

    fn stat(&self, h: &Handle) -> Result<u64> {
        let conn = self.conn()?;
        let path = self.path(h);
        let r = self.run(async { conn.fs()?.symlink_metadata(&path).await });
        match r {
            Ok(m) => m.len().ok_or_else(|| BackendError::Io {
                handle: h.to_string(),
                err: io::Error::other("the server did not report a size"),
            }),
            Err(e) => Err(self.fail(&conn, &h.to_string(), e)),
        }
    }

    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        if kind == FileType::Config {
            return crate::backend::list_config(self.stat(&Handle::config()));
        }
        let conn = self.conn()?;
        let dir = join(&self.root, kind.dir());
        let r = self.run(async {
            if kind != FileType::Data {
                return list_files(&conn, &dir).await;
            }
            let entries = match read_dir(&conn, &dir).await {
                Ok(e) => e,
                Err(e) if is_no_such_file(&e) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let subdirs = entries
                .into_iter()
                .filter(|(name, meta)| match meta.file_type() {
                    Some(t) => t.is_dir(),
                    None => name.len() == 2,
                })
                .map(|(name, _)| {
                    let p = join(&dir, &name);
                    let conn = &conn;
                    async move { list_files(conn, &p).await }
                });
            let mut lists = futures_util::stream::iter(subdirs).buffer_unordered(PIPELINE);
            let mut out = Vec::new();
            while let Some(r) = lists.next().await {
                out.extend(r?);
            }
            Ok(out)
        });
        r.map_err(|e| self.fail(&conn, &format!("{}/", kind.dir()), e))
    }

    fn remove(&self, h: &Handle) -> Result<()> {
        let conn = self.conn()?;
        let path = self.path(h);
        match self.run(async { conn.fs()?.remove_file(&path).await }) {
            Ok(()) => Ok(()),
            Err(e) if is_no_such_file(&e) => Ok(()),
            Err(e) => Err(self.fail(&conn, &h.to_string(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(user: Option<&str>, host: &str, port: Option<&str>, path: &str) -> SftpLocation {
        SftpLocation {
            user: user.map(String::from),
            host: host.into(),
            port: port.map(String::from),
            path: path.into(),
        }
    }

    #[test]
    fn locations_parse_as_restic_parses_them() {
        // restic 0.14's internal/backend/sftp/config_test.go, less the "sftp:" prefix.
        let cases = [
            (
                "//user@host/dir/subdir",
                loc(Some("user"), "host", None, "dir/subdir"),
            ),
            ("//host/dir/subdir", loc(None, "host", None, "dir/subdir")),
            ("//host//dir/subdir", loc(None, "host", None, "/dir/subdir")),
            (
                "//host:10022//dir/subdir",
                loc(None, "host", Some("10022"), "/dir/subdir"),
            ),
            (
                "//user@host:10022//dir/subdir",
                loc(Some("user"), "host", Some("10022"), "/dir/subdir"),
            ),
            (
                "//user@host/dir/subdir/../other",
                loc(Some("user"), "host", None, "dir/other"),
            ),
            (
                "//user@host/dir///subdir",
                loc(Some("user"), "host", None, "dir/subdir"),
            ),
            ("//user@[::1]/dir", loc(Some("user"), "::1", None, "dir")),
            (
                "//user@[::1]:22/dir",
                loc(Some("user"), "::1", Some("22"), "dir"),
            ),
            (
                "user@host:/dir/subdir",
                loc(Some("user"), "host", None, "/dir/subdir"),
            ),
            (
                "user@domain@host:/dir/subdir",
                loc(Some("user@domain"), "host", None, "/dir/subdir"),
            ),
            (
                "host:../dir/subdir",
                loc(None, "host", None, "../dir/subdir"),
            ),
            (
                "user@host:dir/subdir:suffix",
                loc(Some("user"), "host", None, "dir/subdir:suffix"),
            ),
            (
                "user@host:dir/subdir/../other",
                loc(Some("user"), "host", None, "dir/other"),
            ),
            (
                "user@host:dir///subdir",
                loc(Some("user"), "host", None, "dir/subdir"),
            ),
            // An ssh config alias, and a relative path in the login directory.
            ("myalias:/srv/repo", loc(None, "myalias", None, "/srv/repo")),
            (
                "host:relative/path",
                loc(None, "host", None, "relative/path"),
            ),
            ("host:", loc(None, "host", None, ".")),
            ("//u%40x@host/a%20b", loc(Some("u@x"), "host", None, "a b")),
            ("//user:secret@host/d", loc(Some("user"), "host", None, "d")),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_location(spec).as_ref(), Ok(&want), "sftp:{spec}");
        }
        for bad in [
            "//host:dir",
            "//host",
            "hostonly",
            ":/path",
            "host:~/repo",
            "//host/~/repo",
            "-oProxyCommand=x:/p",
            "//h/%zz",
        ] {
            assert!(parse_location(bad).is_err(), "sftp:{bad} was accepted");
        }
    }

    #[test]
    fn commands_split_like_a_shell() {
        let ok = |s: &str, want: &[&str]| assert_eq!(split_command(s).unwrap(), want, "{s:?}");
        // restic's shell_split_test.go cases.
        ok("foo", &["foo"]);
        ok("'foo'", &["foo"]);
        ok("foo bar baz", &["foo", "bar", "baz"]);
        ok("foo 'bar' baz", &["foo", "bar", "baz"]);
        ok("'bar box' baz", &["bar box", "baz"]);
        ok(r#""bar 'box'" baz"#, &["bar 'box'", "baz"]);
        ok(r#"'bar "box"' baz"#, &[r#"bar "box""#, "baz"]);
        ok(r#"\"bar box baz"#, &[r#""bar"#, "box", "baz"]);
        ok(r#""bar/foo/x" "box baz""#, &["bar/foo/x", "box baz"]);
        // And a shell's joining of quoted pieces, escapes, empty words.
        ok(
            r#"ssh -F "/a b/c"d x\ y '' -s sftp"#,
            &["ssh", "-F", "/a b/cd", "x y", "", "-s", "sftp"],
        );
        ok("  a\t b  ", &["a", "b"]);
        for (bad, msg) in [
            ("foo'", "single-quoted string not terminated"),
            ("foo\"", "double-quoted string not terminated"),
            ("foo 'bar", "single-quoted string not terminated"),
            ("foo \"bar", "double-quoted string not terminated"),
            ("   ", "command string is empty"),
        ] {
            assert_eq!(split_command(bad).unwrap_err(), msg, "{bad:?}");
        }
    }

    #[test]
    fn ssh_command_lines() {
        let l = parse_location("//u@h:2222//srv/r").unwrap();
        assert_eq!(
            ssh_command(&l, None, None).unwrap(),
            ["ssh", "-p", "2222", "-l", "u", "h", "-s", "sftp"]
        );
        assert_eq!(
            ssh_command(&l, None, Some("-F '/x y/cfg' -i k")).unwrap(),
            ["ssh", "-p", "2222", "-l", "u", "-F", "/x y/cfg", "-i", "k", "h", "-s", "sftp"]
        );
        let l = parse_location("alias:/p").unwrap();
        assert_eq!(
            ssh_command(&l, None, None).unwrap(),
            ["ssh", "alias", "-s", "sftp"]
        );
        assert_eq!(
            ssh_command(&l, Some("ssh -F c alias -s sftp"), None).unwrap(),
            ["ssh", "-F", "c", "alias", "-s", "sftp"]
        );
        assert!(ssh_command(&l, Some("ssh x"), Some("-v")).is_err());
        assert!(ssh_command(&l, Some("ssh 'x"), None).is_err());
    }

    #[test]
    fn layout_paths() {
        let be_root = file_path;
        let id = "ab".repeat(32);
        assert_eq!(
            be_root("/srv/r", &Handle::new(FileType::Data, id.clone())),
            format!("/srv/r/data/ab/{id}")
        );
        assert_eq!(be_root(".", &Handle::config()), "config");
        assert_eq!(
            be_root("/", &Handle::new(FileType::Key, id.clone())),
            format!("/keys/{id}")
        );
        assert_eq!(parent("/srv/r/config"), "/srv/r");
        assert_eq!(parent("/config"), "/");
        assert_eq!(parent("config"), ".");
    }

    #[test]
    fn unknown_layouts_are_refused() {
        let o = Options::parse(&["sftp.layout=s3legacy"]).unwrap();
        let err = SftpBackend::open("host:/p", &o).err().unwrap();
        assert!(
            matches!(&err, OpenError::BadOption { key, .. } if key == "sftp.layout"),
            "{err}"
        );
        assert!(err.to_string().contains("sftp.layout"), "{err}");
    }
}

//! `rclone:remote:path`: any of rclone's 70-odd storage systems, through `rclone serve restic`.
//!
//! restic starts `rclone serve restic --stdio` and speaks HTTP/2 over the pipe. cairn starts
//! the same server but lets it listen on a random loopback port, guarded by a random user and
//! password generated for this process, and talks to it with the REST backend: the same
//! protocol without an HTTP/2 client in cairn. The server is started with
//! `PR_SET_PDEATHSIG`, so it dies with cairn even when cairn is killed.
//!
//! Options as restic's: `rclone.program` (default `rclone`), `rclone.args` (default
//! `serve restic --stdio --b2-hard-delete`; `--stdio` is replaced by the loopback listener),
//! `rclone.connections` (default 5), `rclone.timeout` (how long to wait for the server to
//! start, default 1m).

use crate::rest::RestBackend;
use crate::{OpenError, Options};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

pub struct RcloneBackend {
    rest: RestBackend,
    location: String,
    child: Mutex<Child>,
}

const DEFAULT_ARGS: &str = "serve restic --stdio --b2-hard-delete";

impl RcloneBackend {
    /// `spec` is the location after `rclone:` (`remote:path`).
    pub fn open(spec: &str, opts: &Options) -> std::result::Result<RcloneBackend, OpenError> {
        let location = format!("rclone:{spec}");
        if spec.is_empty() {
            return Err(OpenError::bad_location(
                location,
                "invalid rclone location: want rclone:remote:path",
            ));
        }
        let program = opts.get("rclone.program").unwrap_or("rclone").to_string();
        let args = opts.get("rclone.args").unwrap_or(DEFAULT_ARGS).to_string();
        let connections = opts.get_usize("rclone.connections")?.unwrap_or(5);
        let timeout = match opts.get("rclone.timeout") {
            Some(v) => crate::retry::parse_duration(v).ok_or_else(|| {
                OpenError::bad_option(
                    "rclone.timeout",
                    format!("invalid option rclone.timeout={v:?}"),
                )
            })?,
            None => Duration::from_secs(60),
        };
        let password = random_token();
        let argv = server_args(&args, &password, spec);
        let mut cmd = Command::new(&program);
        cmd.args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| {
            OpenError::connect(&location, format!("rclone: cannot start {program:?}: {e}"))
        })?;
        let url = match wait_for_url(&mut child, timeout) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(OpenError::connect(location, e));
            }
        };
        let with_auth = url.replacen("://", &format!("://cairn:{password}@"), 1);
        let rest = RestBackend::with_url_credentials(&with_auth)?.with_connections(connections);
        Ok(RcloneBackend {
            rest,
            location,
            child: Mutex::new(child),
        })
    }
}

/// The server's command line: restic's arguments with `--stdio` replaced by a loopback
/// listener with credentials, and the remote path last.
fn server_args(args: &str, password: &str, remote: &str) -> Vec<String> {
    let mut out = Vec::new();
    for a in args.split_whitespace() {
        if a == "--stdio" {
            out.extend(
                [
                    "--addr",
                    "127.0.0.1:0",
                    "--user",
                    "cairn",
                    "--pass",
                    password,
                ]
                .map(String::from),
            );
        } else {
            out.push(a.to_string());
        }
    }
    out.push(remote.to_string());
    out
}

/// Reads the server's log until it says where it listens; its later output is forwarded to
/// stderr when it reports an error.
fn wait_for_url(child: &mut Child, timeout: Duration) -> std::result::Result<String, String> {
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| "rclone: no stderr".to_string())?;
    let (tx, rx) = mpsc::channel::<std::result::Result<String, String>>();
    std::thread::Builder::new()
        .name("cairn-rclone-log".into())
        .spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut seen = Vec::new();
            let mut tx = Some(tx);
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(t) = &tx {
                    if let Some(url) = listening_url(&line) {
                        let _ = t.send(Ok(url));
                        tx = None;
                        continue;
                    }
                    seen.push(line);
                } else if line.contains("ERROR") {
                    eprintln!("rclone: {line}");
                }
            }
            if let Some(t) = tx {
                let tail = seen.iter().rev().take(3).rev().cloned().collect::<Vec<_>>();
                let _ = t.send(Err(format!(
                    "rclone exited before serving the repository: {}",
                    tail.join(" / ")
                )));
            }
        })
        .map_err(|e| format!("rclone: {e}"))?;
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(format!(
            "rclone did not start serving within {}s",
            timeout.as_secs()
        )),
    }
}

/// `... Serving restic REST API on http://127.0.0.1:36761/` → the URL.
fn listening_url(line: &str) -> Option<String> {
    let i = line.find("Serving restic REST API on ")?;
    let url = line[i + "Serving restic REST API on ".len()..]
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    url.starts_with("http").then(|| url.to_string())
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// Makes the server die with this process, so a killed backup leaves no rclone behind.
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

impl Drop for RcloneBackend {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The REST backend does the work; this one owns the server and names the location.
impl crate::Decorator for RcloneBackend {
    type Inner = RestBackend;
    fn inner(&self) -> &RestBackend {
        &self.rest
    }
    fn location(&self) -> String {
        self.location.clone()
    }
    // Unlike rest-server's directory, the store behind rclone (an object store, a cloud
    // drive) may not list a file the moment it is written.
    fn lists_after_write(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_replace_stdio_and_end_with_the_remote() {
        let a = server_args(DEFAULT_ARGS, "pw", "b2:bucket/path");
        assert_eq!(
            a,
            [
                "serve",
                "restic",
                "--addr",
                "127.0.0.1:0",
                "--user",
                "cairn",
                "--pass",
                "pw",
                "--b2-hard-delete",
                "b2:bucket/path"
            ]
        );
    }

    #[test]
    fn url_from_the_log_line() {
        let l = "2026/11/21 19:05:34 NOTICE: Local file system at /tmp/x: Serving restic REST API on http://127.0.0.1:36761/";
        assert_eq!(listening_url(l).as_deref(), Some("http://127.0.0.1:36761/"));
        assert_eq!(
            listening_url("NOTICE: Serving restic REST API on [http://127.0.0.1:1/]").as_deref(),
            Some("http://127.0.0.1:1/")
        );
        assert_eq!(listening_url("NOTICE: Config file not found"), None);
    }
}

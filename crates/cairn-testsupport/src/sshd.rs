//! A private OpenSSH server on a loopback port, for the SFTP backend's tests.
//!
//! `/usr/sbin/sshd -D -f CONFIG -E LOG` runs as the current user with a fresh host key, and
//! accepts one fresh client key only (no passwords). An ssh_config file beside it names the
//! server by a Host alias with the port, user and key, so both cairn and restic reach it as
//! `sftp:ALIAS:/path` given `ssh -F CONFIG` (see [`Sshd::command`]).

use crate::{free_port, missing, wait_for_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SSHD: &str = "/usr/sbin/sshd";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// The subsystem whose SFTP sessions end one second after they start (see
/// [`Sshd::short_lived_command`]).
const SHORT_LIVED: &str = "sftp-1s";

pub struct Sshd {
    child: Option<Child>,
    pub port: u16,
    /// The user the server runs as and the client logs in as.
    pub user: String,
    alias: String,
    tmp: tempfile::TempDir,
}

impl Sshd {
    /// A server on a free port, serving a new temporary directory (see [`Sshd::dir`]).
    pub fn start() -> Option<Sshd> {
        if !Path::new(SSHD).is_file() {
            return missing("sshd");
        }
        if which("ssh-keygen").is_none() {
            return missing("ssh-keygen");
        }
        if which("ssh").is_none() {
            return missing("ssh");
        }
        // sshd insists on its privilege separation directory, even when not privileged.
        let _ = std::fs::create_dir_all("/run/sshd");
        let tmp = tempfile::Builder::new()
            .prefix("cairn-sshd-")
            .tempdir()
            .expect("temp dir");
        let d = tmp.path();
        std::fs::create_dir(d.join("srv")).expect("served dir");
        keygen(&d.join("host_ed25519"));
        keygen(&d.join("client_ed25519"));
        let user = current_user();
        let port = free_port();
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/client_ed25519.pub\n\
             AuthenticationMethods publickey\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             AllowUsers {user}\n\
             UsePAM no\n\
             StrictModes no\n\
             PrintMotd no\n\
             LogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\n\
             Subsystem {SHORT_LIVED} /usr/bin/timeout 1 {SFTP_SERVER}\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("write sshd_config");
        let alias = format!("cairn-test-sshd-{port}");
        // `Host` also matches 127.0.0.1, so that `sftp://user@127.0.0.1:PORT//path` with
        // `ssh -F CONFIG` finds the key too.
        let client = format!(
            "Host {alias} 127.0.0.1\n\
             \x20 HostName 127.0.0.1\n\
             \x20 Port {port}\n\
             \x20 User {user}\n\
             \x20 IdentityFile {d}/client_ed25519\n\
             \x20 IdentitiesOnly yes\n\
             \x20 BatchMode yes\n\
             \x20 StrictHostKeyChecking no\n\
             \x20 UserKnownHostsFile /dev/null\n\
             \x20 LogLevel ERROR\n",
            d = d.display()
        );
        std::fs::write(d.join("ssh_config"), client).expect("write ssh_config");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let mut s = Sshd {
            child: Some(child),
            port,
            user,
            alias,
            tmp,
        };
        // sshd exits at once on a bad configuration: say why rather than wait for the port.
        std::thread::sleep(std::time::Duration::from_millis(50));
        if let Some(c) = s.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("sshd exited ({status}): {}", s.log());
            }
        }
        wait_for_port(port, "sshd");
        Some(s)
    }

    /// The Host alias in [`Sshd::config_path`].
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The ssh_config file that defines the alias (pass it with `ssh -F`).
    pub fn config_path(&self) -> PathBuf {
        self.tmp.path().join("ssh_config")
    }

    /// The client's private key.
    pub fn key_path(&self) -> PathBuf {
        self.tmp.path().join("client_ed25519")
    }

    /// The directory served: repositories go below it.
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("srv")
    }

    /// `sftp:ALIAS:/abs/path/NAME`, a repository `name` in [`Sshd::dir`]; it needs
    /// [`Sshd::command_option`] (or `sftp.args=-F CONFIG`) to be reachable.
    pub fn location(&self, name: &str) -> String {
        format!("sftp:{}:{}", self.alias, self.dir().join(name).display())
    }

    /// The ssh command line that reaches this server: `ssh -F CONFIG ALIAS -s sftp`.
    pub fn command(&self) -> String {
        format!(
            "ssh -F {} {} -s sftp",
            self.config_path().display(),
            self.alias
        )
    }

    /// `sftp.command=ssh -F CONFIG ALIAS -s sftp`, the value for `-o` (cairn and restic).
    pub fn command_option(&self) -> String {
        format!("sftp.command={}", self.command())
    }

    /// `ssh -F CONFIG ALIAS -s SUBSYSTEM`: an SFTP session that the server ends one second
    /// after it started, under whatever request is in flight. The second counts from the
    /// start of the SFTP server, after ssh has logged in, however long a busy machine took
    /// for that; `None` where OpenSSH's `sftp-server` program is not installed.
    pub fn short_lived_command(&self) -> Option<String> {
        Path::new(SFTP_SERVER).is_file().then(|| {
            format!(
                "ssh -F {} {} -s {SHORT_LIVED}",
                self.config_path().display(),
                self.alias
            )
        })
    }

    /// `sftp.args=-F CONFIG` for cairn (restic 0.14 has no `sftp.args`).
    pub fn args_option(&self) -> String {
        format!("sftp.args=-F {}", self.config_path().display())
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("sshd.log")).unwrap_or_default()
    }

    /// Stops the server (the directory stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM: sshd removes its pid file; sessions in progress end with their clients.
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "cairn-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn current_user() -> String {
    // SAFETY: getpwuid returns a pointer to static storage or null; the name is copied at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

//! Real servers for cairn's tests, started on loopback in a temporary directory and stopped
//! when dropped, plus a proxy that injects network faults between cairn and a server.
//!
//! Each `start()` returns `None` (after a loud message) when the server's program is not
//! installed, unless `CAIRN_REQUIRE_SERVERS=1` says it must be (as in CI), where it panics.

pub mod garage;
pub mod hostile;
pub mod proxy;
pub mod rclone;
pub mod sshd;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Does `prog arg` run and succeed?
pub fn tool_works(prog: impl AsRef<std::ffi::OsStr>, arg: &str) -> bool {
    Command::new(prog)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A message that stands out in test output.
pub fn loud(msg: &str) {
    use std::io::Write;
    let bar = "*".repeat(78);
    let _ = writeln!(std::io::stderr(), "\n{bar}\n*** {msg}\n{bar}");
}

/// Skips (None) or, under CAIRN_REQUIRE_SERVERS=1, fails because `what` is missing.
pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var("CAIRN_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("{what} is not installed, but CAIRN_REQUIRE_SERVERS=1");
    }
    loud(&format!(
        "SKIP: {what} not installed; these server tests prove nothing here"
    ));
    None
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// How long to wait for a server to come up: a busy machine only makes that slower, so this
/// is a bound on a hang, not a measure of speed.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Waits until something accepts connections on the port.
pub fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what} did not come up on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A program that `.ci/trixie-tools` unpacks from Debian's trixie suite: taken from `env_var`
/// when set, else from `default` when it runs. None (after a loud message) when it is absent,
/// unless `CAIRN_REQUIRE_SERVERS=1` or `CAIRN_REQUIRE_RESTIC=1` says it must be there.
fn trixie_tool(
    env_var: &str,
    default: &str,
    probe: &str,
    what: &str,
) -> Option<std::path::PathBuf> {
    let path = std::env::var_os(env_var)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(default));
    if tool_works(&path, probe) {
        return Some(path);
    }
    if std::env::var("CAIRN_REQUIRE_SERVERS").as_deref() == Ok("1")
        || std::env::var("CAIRN_REQUIRE_RESTIC").as_deref() == Ok("1")
    {
        panic!(
            "{what} is not at {} (run bash .ci/trixie-tools)",
            path.display()
        );
    }
    loud(&format!(
        "SKIP: {what} not installed (bash .ci/trixie-tools installs it); these tests prove nothing here"
    ));
    None
}

/// restic 0.18 (Debian trixie's package, beside bookworm's restic 0.14 on PATH).
pub fn restic_018() -> Option<std::path::PathBuf> {
    static FOUND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            trixie_tool(
                "CAIRN_RESTIC_018",
                "/opt/restic-0.18/usr/bin/restic",
                "version",
                "restic 0.18",
            )
        })
        .clone()
}

/// restic's rest-server 0.13 (Debian trixie's `restic-rest-server`).
pub fn rest_server() -> Option<std::path::PathBuf> {
    static FOUND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            trixie_tool(
                "CAIRN_REST_SERVER",
                "/opt/rest-server/usr/bin/restic-rest-server",
                "--version",
                "rest-server",
            )
        })
        .clone()
}

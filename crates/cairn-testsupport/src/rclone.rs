//! `rclone serve restic` (restic's REST protocol) on a loopback port.

use crate::{free_port, missing, tool_works, wait_for_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct RcloneRest {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl RcloneRest {
    /// A server over a new temporary directory.
    pub fn start() -> Option<RcloneRest> {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut s = RcloneRest::serve(&dir, free_port())?;
        s._tmp = Some(tmp);
        Some(s)
    }

    /// A server over `dir` on `port` (to restart one where it was).
    pub fn serve(dir: &Path, port: u16) -> Option<RcloneRest> {
        if !tool_works("rclone", "version") {
            return missing("rclone");
        }
        let child = Command::new("rclone")
            .args(["serve", "restic", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rclone serve restic");
        let s = RcloneRest {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
            _tmp: None,
        };
        wait_for_port(port, "rclone serve restic");
        Some(s)
    }

    /// The directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `rest:` location of a repository `name` on this server.
    pub fn location(&self, name: &str) -> String {
        format!("rest:http://127.0.0.1:{}/{name}/", self.port)
    }

    /// Stops the server (the directory stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port over the same directory.
    pub fn restart(&mut self) {
        self.stop();
        let fresh = RcloneRest::serve(&self.dir, self.port).expect("rclone restart");
        let mut fresh = fresh;
        self.child = fresh.child.take();
    }
}

impl Drop for RcloneRest {
    fn drop(&mut self) {
        self.stop();
    }
}

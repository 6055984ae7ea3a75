//! Garage, a real S3-compatible object store, as one node on loopback: sqlite metadata in a
//! temporary directory, a layout of one node, a bucket, and a key with read, write and owner
//! rights on it (allowed to create buckets too). Garage is a test tool only (AGPL), run as a
//! separate program, never linked into cairn.

use crate::{free_port, missing, wait_for_port};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Garage {
    child: Option<Child>,
    program: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    s3_port: u16,
    admin_port: u16,
    key_id: String,
    secret: String,
    bucket: String,
    _tmp: tempfile::TempDir,
}

/// The `garage` program: on PATH, or where `cargo install` puts it.
pub fn program() -> Option<PathBuf> {
    let works = |p: &Path| crate::tool_works(p, "--version");
    let on_path = PathBuf::from("garage");
    if works(&on_path) {
        return Some(on_path);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let p = home.join("bin/garage");
    works(&p).then_some(p)
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Garage {
    /// A fresh single-node Garage with bucket `cairn-test`, or None (after a loud message)
    /// when garage is not installed.
    pub fn start() -> Option<Garage> {
        let Some(program) = program() else {
            return missing("garage");
        };
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.join("garage.toml");
        let text = format!(
            "metadata_dir = \"{meta}\"\n\
             data_dir = \"{data}\"\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
             rpc_secret = \"{secret}\"\n\
             \n\
             [s3_api]\n\
             s3_region = \"garage\"\n\
             api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
             root_domain = \".s3.garage.localhost\"\n\
             \n\
             [admin]\n\
             api_bind_addr = \"127.0.0.1:{admin_port}\"\n",
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
            secret = random_hex(32),
        );
        std::fs::write(&config, text).expect("write garage.toml");
        let mut g = Garage {
            child: None,
            program,
            config,
            dir,
            s3_port,
            admin_port,
            // Garage's key ids are GK and 24 hex digits, its secrets 64 hex digits.
            key_id: format!("GK{}", random_hex(12)),
            secret: random_hex(32),
            bucket: "cairn-test".into(),
            _tmp: tmp,
        };
        g.spawn();
        let node = g.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap_or("").to_string();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.wait_healthy();
        let bucket = g.bucket.clone();
        g.cli(&["bucket", "create", &bucket]);
        let (id, secret) = (g.key_id.clone(), g.secret.clone());
        g.cli(&["key", "import", "-n", "cairn", "--yes", &id, &secret]);
        g.cli(&["key", "allow", "--create-bucket", &id]);
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", &id,
        ]);
        Some(g)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("garage.log"))
            .expect("garage log");
        let child = Command::new(&self.program)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start garage server");
        self.child = Some(child);
        wait_for_port(self.s3_port, "garage S3 API");
        wait_for_port(self.admin_port, "garage admin API");
    }

    /// Runs a `garage` admin command (retrying while the node is still starting).
    fn cli(&self, args: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let out = Command::new(&self.program)
                .arg("-c")
                .arg(&self.config)
                .args(args)
                .env_remove("GARAGE_RPC_HOST")
                .env_remove("GARAGE_RPC_SECRET")
                .stdin(Stdio::null())
                .output()
                .expect("run garage");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            if start.elapsed() > crate::PATIENCE {
                panic!(
                    "garage {}: {}\n{}\nserver log:\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the admin API's /health says the cluster is operational.
    fn wait_healthy(&self) {
        let start = Instant::now();
        loop {
            if http_status(self.admin_port, "/health") == Some(200) {
                return;
            }
            assert!(
                start.elapsed() < crate::PATIENCE,
                "garage did not become healthy; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("garage.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn port(&self) -> u16 {
        self.s3_port
    }

    /// The region Garage signs for.
    pub fn region(&self) -> &str {
        "garage"
    }

    pub fn access_key_id(&self) -> &str {
        &self.key_id
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3:http://127.0.0.1:PORT/BUCKET/prefix`.
    pub fn location(&self, prefix: &str) -> String {
        format!("s3:{}/{}/{prefix}", self.endpoint(), self.bucket)
    }

    /// The environment cairn and restic need for [`Garage::location`] (set every one).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_DEFAULT_REGION", "garage".into()),
            // Empty, so that a token in the caller's environment is not sent along.
            ("AWS_SESSION_TOKEN", String::new()),
        ]
    }

    /// Stops the server (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM first, so that the store shuts down as it would on a real host.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports over the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_healthy();
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The status of a plain HTTP GET on 127.0.0.1:port, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace().nth(1)?.parse().ok()
}

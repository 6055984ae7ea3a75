//! Options every command shares, and opening the repository they name.

use anyhow::Context;
use cairn_core::format::keyfile::KdfParams;
use cairn_core::packer::Compression;
use cairn_core::repository::Repository;
use clap::Args;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct GlobalOptions {
    /// Repository to back up to or restore from
    #[arg(short = 'r', long = "repo", env = "RESTIC_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// File to read the repository location from
    #[arg(long, env = "RESTIC_REPOSITORY_FILE", global = true)]
    pub repository_file: Option<PathBuf>,
    /// File to read the repository password from
    #[arg(short = 'p', long, env = "RESTIC_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Shell command to obtain the repository password from
    #[arg(long, env = "RESTIC_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Key ID of key to try decrypting first
    #[arg(long, env = "RESTIC_KEY_HINT", global = true)]
    pub key_hint: Option<String>,
    /// Set output mode to JSON for commands that support it
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not output comprehensive progress report
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Be verbose (specify multiple times or a level using --verbose=n)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Compression mode (only available for repository format version 2): auto, off, fastest, better, max
    #[arg(
        long,
        env = "RESTIC_COMPRESSION",
        default_value = "auto",
        global = true
    )]
    pub compression: String,
    /// Do not use a local cache (cairn keeps only resume logs of interrupted backups there)
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Set the cache directory
    #[arg(long, env = "RESTIC_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Do not lock the repository (cairn does not lock yet; accepted for compatibility)
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// Set extended option (key=value)
    #[arg(short = 'o', long = "option", global = true)]
    pub options: Vec<String>,
}

impl GlobalOptions {
    pub fn compression(&self) -> anyhow::Result<Compression> {
        Compression::parse(&self.compression)
    }

    pub fn repository(&self) -> anyhow::Result<String> {
        if let Some(r) = &self.repo {
            if !r.is_empty() {
                return Ok(r.clone());
            }
        }
        if let Some(f) = &self.repository_file {
            let s = std::fs::read_to_string(f)
                .with_context(|| format!("reading repository file {}", f.display()))?;
            let s = s.trim().to_string();
            if !s.is_empty() {
                return Ok(s);
            }
        }
        anyhow::bail!("Please specify repository location (-r or --repository-file)")
    }

    pub fn backend(&self) -> anyhow::Result<Arc<dyn cairn_backend::Backend>> {
        let loc = self.repository()?;
        let b = cairn_backend::open(&loc).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Arc::from(b))
    }

    /// The password from (in restic's order) a file, a command, the environment, or a prompt.
    pub fn password(&self, prompt: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(f) = &self.password_file {
            let s = std::fs::read(f)
                .with_context(|| format!("reading password file {}", f.display()))?;
            return Ok(first_line(&s));
        }
        if let Some(cmd) = &self.password_command {
            return run_password_command(cmd);
        }
        if let Some(pw) = std::env::var_os("RESTIC_PASSWORD") {
            use std::os::unix::ffi::OsStringExt;
            return Ok(pw.into_vec());
        }
        read_password(prompt)
    }

    /// Opens the repository with the password; maps errors to restic's exit codes.
    /// The local cache directory (restic's rules: --cache-dir, RESTIC_CACHE_DIR, then
    /// $XDG_CACHE_HOME or ~/.cache), or None with --no-cache.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        if let Some(d) = &self.cache_dir {
            return Some(d.clone());
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("cairn"))
    }

    pub fn open(&self) -> anyhow::Result<Repository> {
        let backend = self.backend()?;
        // Check existence before asking for a password, so a typo in -r fails fast.
        if !backend.exists().map_err(anyhow::Error::new)? {
            return Err(cairn_core::Error::RepoNotFound(backend.location()).into());
        }
        let pw = self.password("enter password for repository: ")?;
        Repository::open(backend, &pw, self.key_hint.as_deref())
    }

    pub fn open_with_index(&self) -> anyhow::Result<Repository> {
        let mut repo = self.open()?;
        repo.load_index()?;
        Ok(repo)
    }
}

fn first_line(b: &[u8]) -> Vec<u8> {
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let mut v = b[..end].to_vec();
    if v.last() == Some(&b'\r') {
        v.pop();
    }
    v
}

fn run_password_command(cmd: &str) -> anyhow::Result<Vec<u8>> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running password command {cmd:?}"))?;
    if !out.status.success() {
        anyhow::bail!("password command {cmd:?} failed: {}", out.status);
    }
    Ok(first_line(&out.stdout))
}

/// Reads a password from the terminal without echo, or a line from stdin when it is not a
/// terminal (as restic does, so `echo pw | cairn ...` works).
pub fn read_password(prompt: &str) -> anyhow::Result<Vec<u8>> {
    if std::io::stdin().is_terminal() {
        let pw = rpassword::prompt_password(prompt).context("reading password")?;
        return Ok(pw.into_bytes());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading password from stdin")?;
    if line.is_empty() {
        anyhow::bail!("an empty password is not allowed by default (no password given: use -p, --password-command or RESTIC_PASSWORD)");
    }
    Ok(first_line(line.as_bytes()))
}

/// A new password, asked twice on a terminal.
pub fn new_password(
    g: &GlobalOptions,
    file: Option<&PathBuf>,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    if let Some(f) = file {
        let s =
            std::fs::read(f).with_context(|| format!("reading password file {}", f.display()))?;
        return Ok(first_line(&s));
    }
    if std::io::stdin().is_terminal()
        && g.password_file.is_none()
        && g.password_command.is_none()
        && std::env::var_os("RESTIC_PASSWORD").is_none()
    {
        let a = rpassword::prompt_password(format!("enter password for {what}: "))?;
        let b = rpassword::prompt_password("enter password again: ")?;
        if a != b {
            anyhow::bail!("passwords do not match");
        }
        if a.is_empty() {
            anyhow::bail!("an empty password is not allowed");
        }
        return Ok(a.into_bytes());
    }
    let pw = g.password(&format!("enter password for {what}: "))?;
    if pw.is_empty() {
        anyhow::bail!("an empty password is not allowed");
    }
    Ok(pw)
}

/// scrypt parameters for new keys. `CAIRN_TEST_KDF=fast` makes tests quick; never use it for
/// real repositories.
pub fn kdf_params() -> KdfParams {
    if std::env::var("CAIRN_TEST_KDF").as_deref() == Ok("fast") {
        KdfParams {
            n: 1024,
            r: 8,
            p: 1,
        }
    } else {
        KdfParams::default()
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buffer is valid and its length is passed.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        return String::from_utf8_lossy(&buf[..end]).into_owned();
    }
    String::new()
}

pub fn username() -> String {
    std::env::var("USER").unwrap_or_else(|_| {
        cairn_core::archiver::metadata::NameCache::default().user(unsafe { libc::getuid() })
    })
}

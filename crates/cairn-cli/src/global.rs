//! Options every command shares, and opening the repository they name.

use anyhow::Context;
use cairn_core::format::keyfile::KdfParams;
use cairn_core::lock::RepoLock;
use cairn_core::packer::Compression;
use cairn_core::repository::{IndexedRepository, Repository};
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
    /// Do not use a local cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Set the cache directory
    #[arg(long, env = "RESTIC_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Do not lock the repository, this allows some operations on read-only repositories
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// Retry to lock the repository if it is already locked, takes a value like 5m or 2h
    /// (default: no retries)
    #[arg(long, global = true, value_name = "DURATION")]
    pub retry_lock: Option<String>,
    /// Set extended option (key=value)
    #[arg(short = 'o', long = "option", global = true)]
    pub options: Vec<String>,
    /// Use an empty password for the repository, must be passed to every command (insecure)
    #[arg(long, global = true)]
    pub insecure_no_password: bool,
    /// File to load root certificates from (default: use the built-in Mozilla roots)
    #[arg(
        long,
        env = "RESTIC_CACERT",
        global = true,
        value_name = "file",
        value_delimiter = ','
    )]
    pub cacert: Vec<PathBuf>,
    /// Path to a file containing PEM encoded TLS client certificate and private key
    #[arg(
        long,
        env = "RESTIC_TLS_CLIENT_CERT",
        global = true,
        value_name = "file"
    )]
    pub tls_client_cert: Option<PathBuf>,
    /// Skip TLS certificate verification when connecting to the repository (insecure)
    #[arg(long, global = true)]
    pub insecure_tls: bool,
    /// Set a http user agent for outgoing http requests
    #[arg(long, global = true, value_name = "string")]
    pub http_user_agent: Option<String>,
    /// Duration after which to retry stuck requests: how long a request may go without a
    /// byte moving (default: 60s, or the backend's -o *.timeout)
    #[arg(long, global = true, value_name = "duration")]
    pub stuck_request_timeout: Option<String>,
    /// Limits uploads to a maximum rate in KiB/s (default: unlimited)
    #[arg(long, global = true, value_name = "rate")]
    pub limit_upload: Option<u64>,
    /// Limits downloads to a maximum rate in KiB/s (default: unlimited)
    #[arg(long, global = true, value_name = "rate")]
    pub limit_download: Option<u64>,
    /// Skip additional verification of data before upload
    #[arg(long, global = true)]
    pub no_extra_verify: bool,
    /// Auto remove old cache directories
    #[arg(long, global = true)]
    pub cleanup_cache: bool,
    /// Set target pack size in MiB, created pack files may be larger
    #[arg(long, env = "RESTIC_PACK_SIZE", global = true, value_name = "size")]
    pub pack_size: Option<u64>,
    /// Configuration file of profiles (resticprofile's format: TOML, YAML or JSON; default:
    /// profiles.* in the current directory, ~/.config/cairn, ~/.config/resticprofile, /etc/cairn, …)
    #[arg(
        long = "config",
        env = "CAIRN_CONFIG",
        global = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Run the command for this profile (or group) of the configuration file
    #[arg(
        short = 'P',
        long = "profile",
        visible_alias = "name",
        env = "CAIRN_PROFILE",
        global = true,
        value_name = "NAME"
    )]
    pub profile: Option<String>,
}

impl GlobalOptions {
    pub fn compression(&self) -> anyhow::Result<Compression> {
        Ok(Compression::parse(&self.compression)?)
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

    /// User agent, stall timeout and TLS for the HTTP backends, from the flags.
    pub fn http(&self) -> anyhow::Result<cairn_backend::http::Http> {
        use cairn_backend::http::{tls_config, Http, TlsOptions};
        let stuck_timeout = match &self.stuck_request_timeout {
            Some(d) => Some(
                crate::output::parse_duration(d)
                    .with_context(|| format!("invalid --stuck-request-timeout {d:?}"))?,
            )
            .filter(|d| !d.is_zero()),
            None => None,
        };
        let tls = tls_config(&TlsOptions {
            ca_certs: self.cacert.clone(),
            client_cert: self.tls_client_cert.clone(),
            insecure: self.insecure_tls,
        })?;
        Ok(Http {
            user_agent: self.http_user_agent.clone(),
            stuck_timeout,
            tls,
        })
    }

    pub fn backend(&self) -> anyhow::Result<Arc<dyn cairn_backend::Backend>> {
        let b = open_backend(&self.repository()?, &self.options, self.http()?)?;
        if self.limit_upload.is_none() && self.limit_download.is_none() {
            return Ok(b);
        }
        Ok(Arc::new(cairn_backend::limit::Limited::new(
            b,
            self.limit_upload.filter(|r| *r > 0),
            self.limit_download.filter(|r| *r > 0),
        )))
    }

    /// The password from (in restic's order) a file, a command, the environment, or a prompt.
    /// An empty password needs `--insecure-no-password` (restic 0.18), which in turn must not
    /// come with another source of a password.
    pub fn password(&self, prompt: &str) -> anyhow::Result<Vec<u8>> {
        if self.insecure_no_password {
            if self.password_file.is_some()
                || self.password_command.is_some()
                || std::env::var_os("RESTIC_PASSWORD").is_some_and(|p| !p.is_empty())
            {
                anyhow::bail!(
                    "--insecure-no-password must not be specified together with providing a password via a cli option or environment variable"
                );
            }
            return Ok(Vec::new());
        }
        let pw = self.password_from_sources(prompt)?;
        if pw.is_empty() {
            anyhow::bail!(EMPTY_PASSWORD);
        }
        Ok(pw)
    }

    fn password_from_sources(&self, prompt: &str) -> anyhow::Result<Vec<u8>> {
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

    /// Opens the repository and takes a shared lock on it (none with `--no-lock`), held until
    /// [`release_locks`].
    pub fn open(&self) -> anyhow::Result<Repository> {
        let repo = self.open_unlocked()?;
        self.hold_lock(&repo, LockMode::Shared)?;
        Ok(repo)
    }

    /// Opens the repository with an exclusive lock, for commands that delete or rewrite.
    pub fn open_exclusive(&self) -> anyhow::Result<Repository> {
        let repo = self.open_unlocked()?;
        self.hold_lock(&repo, LockMode::Exclusive)?;
        Ok(repo)
    }

    /// Opens the repository without locking it (`unlock`, listing locks).
    pub fn open_unlocked(&self) -> anyhow::Result<Repository> {
        let backend = self.backend()?;
        // Check existence before asking for a password, so a typo in -r fails fast.
        if !backend.exists().map_err(anyhow::Error::new)? {
            return Err(cairn_core::Error::NoRepository {
                location: backend.location(),
            }
            .into());
        }
        let pw = self.password("enter password for repository: ")?;
        let remote = cairn_backend::is_remote(&backend.location());
        let mut repo = Repository::open(backend, &pw, self.key_hint.as_deref())?;
        if let Some(mib) = self.pack_size {
            repo.set_pack_size_mib(mib)?;
        }
        repo.set_extra_verify(!self.no_extra_verify);
        // Remote repositories keep their metadata in a local cache; a local repository is
        // as fast to read as a cache would be.
        if remote {
            if let Some(base) = self.cache_dir() {
                if let Err(e) = repo.use_cache(&base) {
                    eprintln!(
                        "warning: cannot use the cache {}: {e} (continuing without it)",
                        base.display()
                    );
                }
            }
        }
        Ok(repo)
    }

    fn hold_lock(&self, repo: &Repository, mode: LockMode) -> anyhow::Result<()> {
        if let Some(l) = self.lock(repo, mode)? {
            HELD_LOCKS.lock().unwrap_or_else(|e| e.into_inner()).push(l);
        }
        Ok(())
    }

    /// Locks the repository as a command needs it. Shared locks are skipped with `--no-lock`
    /// (for read-only commands, as restic); exclusive ones never are.
    pub fn lock(&self, repo: &Repository, mode: LockMode) -> anyhow::Result<Option<RepoLock>> {
        let exclusive = match mode {
            LockMode::Shared if self.no_lock => return Ok(None),
            LockMode::Shared => false,
            LockMode::Exclusive => true,
        };
        let retry = match &self.retry_lock {
            Some(d) => crate::output::parse_duration(d)
                .with_context(|| format!("invalid --retry-lock {d:?}"))?,
            None => std::time::Duration::ZERO,
        };
        let lock = RepoLock::acquire(
            repo,
            exclusive,
            retry,
            &crate::printer::printer(self, crate::printer::During::Lock, false),
        )
        .context("unable to create lock in backend")?;
        Ok(Some(lock))
    }

    pub fn open_with_index(&self) -> anyhow::Result<IndexedRepository> {
        Ok(self.open()?.load_index()?)
    }
}

/// Opens the storage at a location with `-o` options (the one place the CLI names a backend).
pub fn open_backend(
    location: &str,
    options: &[String],
    http: cairn_backend::http::Http,
) -> anyhow::Result<Arc<dyn cairn_backend::Backend>> {
    let opts = cairn_backend::Options::parse(options)?.with_http(http);
    let b = cairn_backend::open_with(location, &opts)?;
    Ok(Arc::from(b))
}

/// Locks this process holds; released by [`release_locks`] before it exits (exit() runs no
/// destructors).
static HELD_LOCKS: std::sync::Mutex<Vec<RepoLock>> = std::sync::Mutex::new(Vec::new());

/// Removes every lock this process holds.
pub fn release_locks() {
    let locks = std::mem::take(&mut *HELD_LOCKS.lock().unwrap_or_else(|e| e.into_inner()));
    for l in locks {
        if let Err(e) = l.release() {
            eprintln!("error while unlocking: {e:#}");
        }
    }
}

/// How a command locks the repository.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LockMode {
    /// Alongside backups and other readers (skipped with `--no-lock`).
    Shared,
    /// Alone: nothing else may run (forget, prune, repairs).
    Exclusive,
}

pub(crate) fn first_line(b: &[u8]) -> Vec<u8> {
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let mut v = b[..end].to_vec();
    if v.last() == Some(&b'\r') {
        v.pop();
    }
    v
}

pub(crate) fn run_password_command(cmd: &str) -> anyhow::Result<Vec<u8>> {
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
/// restic 0.18's refusal of an empty password.
pub const EMPTY_PASSWORD: &str = "an empty password is not allowed by default. Pass the flag `--insecure-no-password` to cairn to disable this check";

/// The password for a new key: from `file`, else a prompt (twice) on a terminal, else the
/// usual sources. `insecure` (`--insecure-no-password`, `--new-insecure-no-password`) makes it
/// empty on purpose.
pub fn new_password(
    g: &GlobalOptions,
    file: Option<&PathBuf>,
    insecure: bool,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    if insecure {
        if file.is_some() {
            anyhow::bail!("--new-insecure-no-password must not be specified together with --new-password-file");
        }
        return Ok(Vec::new());
    }
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
            anyhow::bail!(EMPTY_PASSWORD);
        }
        return Ok(a.into_bytes());
    }
    let pw = g.password(&format!("enter password for {what}: "))?;
    if pw.is_empty() {
        anyhow::bail!(EMPTY_PASSWORD);
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

pub use cairn_core::util::host::{hostname, username};

//! `cairn serve`: rest-server 0.13's command line in front of cairn-serve, so that a
//! rest-server installation switches by changing the program's name.

use crate::global::GlobalOptions;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory
    #[arg(long, default_value_os_t = std::env::temp_dir().join("restic"))]
    path: PathBuf,
    /// Listen address (":PORT", "HOST:PORT" or "unix:PATH")
    #[arg(long, default_value = ":8000")]
    listen: String,
    /// Enable append only mode
    #[arg(long)]
    append_only: bool,
    /// Users can only access their private repo
    #[arg(long)]
    private_repos: bool,
    /// Location of .htpasswd file (default: "<data directory>/.htpasswd")
    #[arg(long)]
    htpasswd_file: Option<PathBuf>,
    /// Disable .htpasswd authentication
    #[arg(long)]
    no_auth: bool,
    /// Turn on TLS support
    #[arg(long)]
    tls: bool,
    /// TLS certificate path (default: "<data directory>/public_key")
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// TLS key path (default: "<data directory>/private_key")
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// The maximum size of the repository in bytes
    #[arg(long, default_value_t = 0)]
    max_size: u64,
    /// Enable Prometheus metrics
    #[arg(long)]
    prometheus: bool,
    /// Disable auth for Prometheus /metrics endpoint
    #[arg(long)]
    prometheus_no_auth: bool,
    /// Do not verify the integrity of uploaded data
    #[arg(long)]
    no_verify_upload: bool,
    /// Write HTTP requests in the combined log format to the specified filename ("-" for stdout)
    #[arg(long, value_name = "FILENAME")]
    log: Option<String>,
    /// Output debug messages
    #[arg(long)]
    debug: bool,
    /// Close a connection on which nothing moved for this many seconds while the server
    /// waited on the client (idle keep-alive, stalled upload or download)
    #[arg(long, value_name = "SECONDS", default_value_t = cairn_serve::DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    idle_timeout: f64,
    /// Seconds a client has to send a request's headers (and finish a TLS handshake)
    #[arg(long, value_name = "SECONDS", default_value_t = cairn_serve::DEFAULT_HEADER_TIMEOUT.as_secs_f64())]
    header_timeout: f64,
    /// Serve at most this many connections at once; further clients wait until one ends
    /// (cairn's own: rest-server has no limit)
    #[arg(long, value_name = "N", default_value_t = cairn_serve::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

fn seconds(flag: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--{flag} must be a positive number of seconds"))
}

pub fn run(a: Args, _g: &GlobalOptions) -> anyhow::Result<i32> {
    if a.max_connections == 0 {
        anyhow::bail!("--max-connections must be at least 1");
    }
    if !a.tls && (a.tls_cert.is_some() || a.tls_key.is_some()) {
        anyhow::bail!("--tls-cert and --tls-key require --tls");
    }
    let tls = a.tls.then(|| {
        (
            a.tls_cert
                .clone()
                .unwrap_or_else(|| a.path.join("public_key")),
            a.tls_key
                .clone()
                .unwrap_or_else(|| a.path.join("private_key")),
        )
    });
    let htpasswd = (!a.no_auth).then(|| {
        a.htpasswd_file
            .clone()
            .unwrap_or_else(|| a.path.join(".htpasswd"))
    });
    let cfg = cairn_serve::Config {
        path: a.path,
        listen: a.listen,
        htpasswd,
        tls,
        append_only: a.append_only,
        private_repos: a.private_repos,
        prometheus: a.prometheus,
        prometheus_no_auth: a.prometheus_no_auth,
        max_size: (a.max_size > 0).then_some(a.max_size),
        verify_upload: !a.no_verify_upload,
        log: a.log,
        debug: a.debug,
        idle_timeout: seconds("idle-timeout", a.idle_timeout)?,
        header_timeout: seconds("header-timeout", a.header_timeout)?,
        max_connections: a.max_connections,
    };
    cairn_serve::run(cfg)?;
    Ok(crate::exit::OK)
}

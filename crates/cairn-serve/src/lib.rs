//! `cairn serve`: restic's REST backend protocol (v1 and v2) over HTTP/1.1, with
//! rest-server 0.13's behaviour — repositories and sub-repositories below one data
//! directory, htpasswd users, private repositories, append-only mode, a size limit,
//! upload verification, Prometheus metrics and an access log.
//!
//! The pieces: [`path`] turns untrusted request paths into a repository folder and a file;
//! [`store`] keeps files on disk in restic's layout (temporary file, fsync, link into place,
//! fsync of the directory); [`htpasswd`] checks passwords; `http` answers requests; `net`
//! listens and times out stalled connections.
//!
//! Timeouts: a client must send a complete request head within `header_timeout` of the
//! connection being ready for one (so it also bounds idle keep-alive), and a connection on which no byte moves in either direction for `idle_timeout`
//! while the server waits on it is closed — an idle keep-alive connection, an upload that
//! stalls, or a download the client stopped reading. A TLS handshake must finish within
//! `header_timeout`.

mod http;
mod metrics;
mod net;
mod range;

pub mod htpasswd;
pub mod path;
pub mod store;

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything `cairn serve` is told on its command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory: repositories live here and in folders below it.
    pub path: PathBuf,
    /// `:PORT`, `HOST:PORT` or `unix:PATH`.
    pub listen: String,
    /// The htpasswd file; `None` turns authentication off (`--no-auth`).
    pub htpasswd: Option<PathBuf>,
    /// Certificate chain and private key (PEM) for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub append_only: bool,
    pub private_repos: bool,
    pub prometheus: bool,
    pub prometheus_no_auth: bool,
    /// Limit on the bytes below `path`, in bytes.
    pub max_size: Option<u64>,
    /// Check each uploaded file's SHA-256 against its name.
    pub verify_upload: bool,
    /// Access log in the combined format: a file, or `-` for stdout.
    pub log: Option<String>,
    pub debug: bool,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen queue until one ends.
    pub max_connections: usize,
}

/// hyper's header timer also runs while a keep-alive connection waits for its next request,
/// so it is the idle limit between requests too: longer than the 90 s Go's HTTP client (and
/// so restic) keeps an idle connection, so that the client, not the server, closes it and
/// never sends a request into a connection the server just closed.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(100);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// restic opens 5 connections to a REST server by default, so this serves some fifty
/// clients backing up at once, and bounds what they can hold: about three file descriptors
/// and up to ~1 MiB of buffers per connection (an upload's two write batches and hyper's
/// read buffer), so at most ~800 descriptors and ~256 MiB.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Descriptors a connection can hold at once: its socket, the file being uploaded or
/// downloaded, and a directory opened for fsync.
const FDS_PER_CONNECTION: u64 = 3;
/// Descriptors for everything else: listener, runtime, signals, htpasswd, log, stdio.
const FDS_SPARE: u64 = 64;

/// State shared by all connections.
pub(crate) struct Server {
    cfg: Config,
    htpasswd: Option<Arc<htpasswd::Htpasswd>>,
    quota: Option<store::Quota>,
    metrics: metrics::Metrics,
    log: Option<Mutex<Box<dyn Write + Send>>>,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .thread_name("cairn-serve")
        .build()?;
    let r = rt.block_on(serve(cfg));
    // In-flight requests are dropped with the runtime; their temporary files with them.
    rt.shutdown_timeout(Duration::from_secs(2));
    r
}

/// The connection cap that fits the open-file limit. The soft limit is raised to the hard
/// one first, as Go's runtime does for rest-server; if even that is too low for `wanted`
/// connections, fewer are served and the log says so.
fn connection_cap(wanted: usize) -> usize {
    let wanted = wanted.max(1);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return wanted;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    let fits = lim.rlim_cur.saturating_sub(FDS_SPARE) / FDS_PER_CONNECTION;
    let fits = usize::try_from(fits).unwrap_or(usize::MAX).max(1);
    if fits < wanted {
        eprintln!(
            "open-file limit {} allows only {fits} connections at once, not {wanted}",
            lim.rlim_cur
        );
        return fits;
    }
    wanted
}

fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read TLS certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not fit")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    eprintln!("Data directory: {}", cfg.path.display());
    let htpasswd = match &cfg.htpasswd {
        None => {
            eprintln!("Authentication disabled");
            None
        }
        Some(p) => {
            eprintln!("Authentication enabled");
            let h = htpasswd::Htpasswd::load(p).map_err(|e| {
                anyhow::anyhow!(
                    "cannot load {} (use --no-auth to disable): {e}",
                    p.display()
                )
            })?;
            eprintln!("Loaded htpasswd file {}", p.display());
            Some(Arc::new(h))
        }
    };
    let quota = match cfg.max_size {
        Some(max) if max > 0 => {
            eprintln!("Initializing quota (can take a while)...");
            let q = store::Quota::new(&cfg.path, max)
                .with_context(|| format!("cannot measure {}", cfg.path.display()))?;
            eprintln!(
                "Quota initialized, currently using {:.2} GiB",
                q.used() as f64 / (1u64 << 30) as f64
            );
            Some(q)
        }
        _ => None,
    };
    if cfg.private_repos {
        eprintln!("Private repositories enabled");
    } else {
        eprintln!("Private repositories disabled");
    }
    let tls = match &cfg.tls {
        Some((cert, key)) => {
            eprintln!(
                "TLS enabled, private key {}, pubkey {}",
                key.display(),
                cert.display()
            );
            Some(load_tls(cert, key)?)
        }
        None => None,
    };
    let log: Option<Box<dyn Write + Send>> = match cfg.log.as_deref() {
        None => None,
        Some("-") => Some(Box::new(std::io::stdout())),
        Some(f) => Some(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(f)
                .with_context(|| format!("cannot open log file {f}"))?,
        )),
    };
    // Handlers first: a SIGHUP sent as soon as the port answers must reload the users, not
    // end the process by the default action.
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let max_connections = connection_cap(cfg.max_connections);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let listener = net::Listener::bind(&cfg.listen)
        .await
        .with_context(|| format!("unable to listen on {}", cfg.listen))?;
    eprintln!(
        "start server on {} (at most {max_connections} connections at once)",
        listener.describe()
    );

    let srv = Arc::new(Server {
        cfg,
        htpasswd,
        quota,
        metrics: metrics::Metrics::default(),
        log: log.map(Mutex::new),
    });

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if let Some(h) = srv.htpasswd.clone() {
                    tokio::task::spawn_blocking(move || h.reload());
                }
            }
            // No free slot, no accept: further clients wait in the kernel's listen queue
            // (which drops new SYNs when full) and cost this process nothing.
            (slot, conn) = async {
                let slot = slots.clone().acquire_owned().await;
                (slot, listener.accept().await)
            } => match conn {
                Ok((io, peer)) => {
                    let (srv, tls) = (srv.clone(), tls.clone());
                    tokio::spawn(async move {
                        connection(srv, io, peer, tls).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    eprintln!("shutdown cleanly");
    Ok(())
}

async fn connection(
    srv: Arc<Server>,
    io: Box<dyn net::Io>,
    peer: String,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let io = net::StallIo::new(io, srv.cfg.idle_timeout);
    match tls {
        None => serve_http(srv, io, peer).await,
        Some(acceptor) => {
            match tokio::time::timeout(srv.cfg.header_timeout, acceptor.accept(io)).await {
                Ok(Ok(stream)) => serve_http(srv, stream, peer).await,
                Ok(Err(e)) => {
                    if srv.cfg.debug {
                        eprintln!("TLS handshake with {peer} failed: {e}");
                    }
                }
                Err(_) => {
                    if srv.cfg.debug {
                        eprintln!("TLS handshake with {peer} timed out");
                    }
                }
            }
        }
    }
}

async fn serve_http<I>(srv: Arc<Server>, io: I, peer: String)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer: Arc<str> = peer.into();
    let s = srv.clone();
    let svc = hyper::service::service_fn(move |req| {
        let srv = s.clone();
        let peer = peer.clone();
        async move {
            let line = srv.log.as_ref().map(|_| request_line(&req));
            let (resp, user) = http::handle(srv.clone(), req).await;
            if let (Some(log), Some(line)) = (&srv.log, line) {
                write_log(log, &peer, &user, &line, &resp);
            }
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(srv.cfg.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        if srv.cfg.debug {
            eprintln!("connection: {e}");
        }
    }
}

/// The parts of a request the combined log format names.
struct RequestLine {
    line: String,
    referer: String,
    agent: String,
}

fn request_line<B>(req: &hyper::Request<B>) -> RequestLine {
    let h = |n: hyper::header::HeaderName| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    RequestLine {
        line: format!("{} {} {:?}", req.method(), req.uri(), req.version()),
        referer: h(hyper::header::REFERER),
        agent: h(hyper::header::USER_AGENT),
    }
}

fn write_log(
    log: &Mutex<Box<dyn Write + Send>>,
    peer: &str,
    user: &str,
    req: &RequestLine,
    resp: &hyper::Response<http::Body>,
) {
    let size = hyper::body::Body::size_hint(resp.body())
        .exact()
        .or_else(|| {
            resp.headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
        })
        .unwrap_or(0);
    let time = chrono::Local::now().format("%d/%b/%Y:%H:%M:%S %z");
    let user = if user.is_empty() { "-" } else { user };
    let line = format!(
        "{peer} - {user} [{time}] \"{}\" {} {size} \"{}\" \"{}\"\n",
        req.line.escape_debug(),
        resp.status().as_u16(),
        req.referer.escape_debug(),
        req.agent.escape_debug()
    );
    let mut w = log.lock().unwrap_or_else(|e| e.into_inner());
    let _ = w.write_all(line.as_bytes());
    let _ = w.flush();
}

//! restic's REST protocol (`rest:http(s)://[user:pass@]host:port/path/`), as served by
//! rest-server and `rclone serve restic`: one URL per file, `GET` with `Range` for partial
//! reads, `POST` to store, `HEAD` for sizes, JSON listings (protocol v2, with sizes).

use crate::{Backend, BackendError, FileInfo, FileType, Handle, OpenError, Result};
use std::time::Duration;

const V2: &str = "application/vnd.x.restic.rest.v2";

/// How long a connection may sit without a byte moving before the request is abandoned
/// (and retried): a stalled server must not hang a backup forever (`-o rest.timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP agent whose reads and writes time out after `idle` without progress (each read
/// or write call, not the whole transfer, so large packs on slow links are fine).
fn agent(base: ureq::AgentBuilder, idle: Duration) -> ureq::Agent {
    base.timeout_connect(Duration::from_secs(30).min(idle.max(Duration::from_secs(5))))
        .timeout_read(idle)
        .timeout_write(idle)
        .build()
}

pub struct RestBackend {
    connections: usize,
    /// Base URL without credentials, always ending in '/'.
    base: String,
    /// `Authorization` header value, if credentials were given.
    auth: Option<String>,
    agent: ureq::Agent,
}

impl RestBackend {
    /// The same backend allowing `n` requests at once.
    pub fn with_connections(mut self, n: usize) -> RestBackend {
        self.connections = n;
        self
    }

    /// `url` is the part after `rest:`; reads `rest.connections`.
    pub fn open(url: &str, opts: &crate::Options) -> std::result::Result<RestBackend, OpenError> {
        let mut b = RestBackend::new(url)?;
        if let Some(n) = opts.get_usize("rest.connections")? {
            b.connections = n;
        }
        let idle = match opts.get("rest.timeout") {
            Some(v) => crate::retry::parse_duration(v)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    OpenError::bad_option(
                        "rest.timeout",
                        format!("invalid option rest.timeout={v:?}: want e.g. 60s"),
                    )
                })?,
            None => opts.http().stuck_timeout.unwrap_or(IDLE_TIMEOUT),
        };
        b.agent = agent(opts.http().agent_builder(), idle);
        Ok(b)
    }

    /// `url` is the part after `rest:`. Credentials come from the URL, or from
    /// `RESTIC_REST_USERNAME` / `RESTIC_REST_PASSWORD` (which win, as in restic).
    pub fn new(url: &str) -> std::result::Result<RestBackend, OpenError> {
        RestBackend::build(url, true)
    }

    /// Credentials from the URL only, whatever the environment says (for servers cairn
    /// starts itself).
    pub fn with_url_credentials(url: &str) -> std::result::Result<RestBackend, OpenError> {
        RestBackend::build(url, false)
    }

    fn build(url: &str, env: bool) -> std::result::Result<RestBackend, OpenError> {
        let bad = |why: &str| {
            OpenError::bad_location(
                format!("rest:{url}"),
                format!("invalid REST URL {url:?}: {why}"),
            )
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("want http(s)://host:port/path/"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("scheme must be http or https"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let mut user = None;
        let mut pass = None;
        if let Some(u) = userinfo {
            let (a, b) = u.split_once(':').unwrap_or((u, ""));
            user = Some(crate::location::percent_decode_lossy(a));
            pass = Some(crate::location::percent_decode_lossy(b));
        }
        if let Ok(u) = std::env::var("RESTIC_REST_USERNAME") {
            if env && !u.is_empty() {
                user = Some(u);
            }
        }
        if let Ok(p) = std::env::var("RESTIC_REST_PASSWORD") {
            if env && !p.is_empty() {
                pass = Some(p);
            }
        }
        let auth = user.map(|u| {
            let token = base64_encode(format!("{u}:{}", pass.unwrap_or_default()).as_bytes());
            format!("Basic {token}")
        });
        let mut base = format!("{scheme}://{host}{path}");
        if !base.ends_with('/') {
            base.push('/');
        }
        let agent = agent(ureq::AgentBuilder::new(), IDLE_TIMEOUT);
        Ok(RestBackend {
            connections: 5,
            base,
            auth,
            agent,
        })
    }

    fn url(&self, h: &Handle) -> String {
        match h.kind {
            FileType::Config => format!("{}config", self.base),
            k => format!("{}{}/{}", self.base, k.dir(), h.name),
        }
    }

    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let r = self.agent.request(method, url);
        match &self.auth {
            Some(a) => r.set("Authorization", a),
            None => r,
        }
    }

    fn io_err(&self, what: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError::Io {
            handle: what.to_string(),
            err: std::io::Error::other(e.to_string()),
        }
    }

    /// Maps a failed request: 404 is "does not exist", anything else an I/O error that names
    /// the file and the server's answer.
    fn fail(&self, h: &Handle, e: ureq::Error) -> BackendError {
        self.fail_named(&h.to_string(), e)
    }

    fn fail_named(&self, what: &str, e: ureq::Error) -> BackendError {
        match e {
            ureq::Error::Status(404, _) => BackendError::NotFound(what.to_string()),
            ureq::Error::Status(code, resp) => BackendError::Io {
                handle: what.to_string(),
                err: std::io::Error::new(
                    status_kind(code),
                    format!("server answered {code} {}", resp.status_text()),
                ),
            },
            ureq::Error::Transport(t) => self.io_err(what, t),
        }
    }
}

impl Backend for RestBackend {
    fn location(&self) -> String {
        format!("rest:{}", self.base)
    }

    fn lists_after_write(&self) -> bool {
        true
    }

    fn connections(&self) -> usize {
        self.connections
    }

    fn create(&self) -> Result<()> {
        let url = format!("{}?create=true", self.base);
        self.request("POST", &url)
            .send_bytes(&[])
            .map(|_| ())
            .map_err(|e| self.fail_named(&self.location(), e))
    }

    fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
        // The protocol has no "create only": check first, as restic does not overwrite.
        if h.kind != FileType::Config {
            match self.stat(h) {
                Ok(_) => return Err(BackendError::AlreadyExists(h.to_string())),
                Err(BackendError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.request("POST", &self.url(h))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(data)
            .map(|_| ())
            .map_err(|e| self.fail(h, e))
    }

    fn load(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        let mut req = self.request("GET", &self.url(h));
        if offset > 0 || length > 0 {
            let range = if length > 0 {
                format!("bytes={}-{}", offset, offset + length - 1)
            } else {
                format!("bytes={offset}-")
            };
            req = req.set("Range", &range);
        }
        let resp = req.call().map_err(|e| self.fail(h, e))?;
        let partial = resp.status() == 206;
        crate::backend::read_ranged(&mut resp.into_reader(), partial, h, offset, length)
    }

    fn load_capped(&self, h: &Handle, max: u64) -> Result<Vec<u8>> {
        let resp = self
            .request("GET", &self.url(h))
            .call()
            .map_err(|e| self.fail(h, e))?;
        crate::backend::read_capped(&mut resp.into_reader(), h, max)
    }

    fn stat(&self, h: &Handle) -> Result<u64> {
        let resp = self
            .request("HEAD", &self.url(h))
            .call()
            .map_err(|e| self.fail(h, e))?;
        resp.header("Content-Length")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| self.io_err(&h.to_string(), "no Content-Length in answer"))
    }

    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        if kind == FileType::Config {
            return crate::backend::list_config(self.stat(&Handle::config()));
        }
        let url = format!("{}{}/", self.base, kind.dir());
        let what = format!("{}/", kind.dir());
        let resp = match self.request("GET", &url).set("Accept", V2).call() {
            Ok(r) => r,
            // A type folder that does not exist yet lists as empty.
            Err(ureq::Error::Status(404, _)) => return Ok(vec![]),
            Err(e) => return Err(self.fail_named(&what, e)),
        };
        let v2 = resp.content_type() == V2;
        let body = resp.into_string().map_err(|e| self.io_err(&what, e))?;
        if v2 {
            #[derive(serde::Deserialize)]
            struct Entry {
                name: String,
                size: u64,
            }
            let entries: Vec<Entry> =
                serde_json::from_str(&body).map_err(|e| self.io_err(&what, e))?;
            return Ok(entries
                .into_iter()
                .map(|e| FileInfo {
                    name: e.name,
                    size: e.size,
                })
                .collect());
        }
        // Protocol v1: names only; sizes by HEAD.
        let names: Vec<String> = serde_json::from_str(&body).map_err(|e| self.io_err(&what, e))?;
        names
            .into_iter()
            .map(|name| {
                let size = self.stat(&Handle::new(kind, name.clone()))?;
                Ok(FileInfo { name, size })
            })
            .collect()
    }

    fn remove(&self, h: &Handle) -> Result<()> {
        match self.request("DELETE", &self.url(h)).call() {
            Ok(_) | Err(ureq::Error::Status(404, _)) => Ok(()),
            Err(e) => Err(self.fail(h, e)),
        }
    }
}

/// Sorts HTTP errors into those another attempt may fix (5xx, 408, 429) and those it cannot.
pub(crate) fn status_kind(code: u16) -> std::io::ErrorKind {
    use std::io::ErrorKind;
    match code {
        401 | 403 => ErrorKind::PermissionDenied,
        408 | 429 => ErrorKind::TimedOut,
        507 => ErrorKind::StorageFull,
        400..=499 => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    }
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_credentials() {
        let b = RestBackend::new("http://u%40x:p%3Aw@127.0.0.1:8000/repo").unwrap();
        assert_eq!(b.base, "http://127.0.0.1:8000/repo/");
        assert_eq!(b.auth.as_deref(), Some("Basic dUB4OnA6dw=="));
        assert_eq!(
            b.url(&Handle::new(FileType::Data, "ab12")),
            "http://127.0.0.1:8000/repo/data/ab12"
        );
        assert_eq!(
            b.url(&Handle::config()),
            "http://127.0.0.1:8000/repo/config"
        );
        assert!(RestBackend::new("ftp://h/").is_err());
        assert!(RestBackend::new("127.0.0.1:8000/").is_err());
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
        assert_eq!(base64_encode(b"a"), "YQ==");
    }
}

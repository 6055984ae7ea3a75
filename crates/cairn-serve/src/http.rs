//! One request: authentication, routing, the append-only and private-repository rules, and
//! the answers rest-server 0.13 gives (status codes, headers, listing formats).

use crate::metrics::Op;
use crate::path::{self, PathError, Target};
use crate::range::{self, Piece, Ranges, Span};
use crate::store::{self, FinishError, Upload};
use crate::Server;
use bytes::Bytes;
use cairn_backend::FileType;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, io::Error>;

const V1: &str = "application/vnd.x.restic.rest.v1";
const V2: &str = "application/vnd.x.restic.rest.v2";
const OCTET_STREAM: &str = "application/octet-stream";

/// After refusing an upload early, up to this much of its body is still read and dropped,
/// so that the client sees the answer instead of a connection reset.
const LINGER_MAX: usize = 4 << 20;
/// Uploads are written in batches of about this much (memory per upload: two batches).
const WRITE_BATCH: usize = 256 << 10;
/// Downloads are read in chunks of this much, two chunks ahead of the client at most.
const READ_CHUNK: u64 = 256 << 10;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// An error answer as Go's http.Error writes it.
fn error(code: StatusCode) -> Response<Body> {
    let text = format!("{}\n", code.canonical_reason().unwrap_or(""));
    let mut r = Response::new(full(text));
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn unauthorized() -> Response<Body> {
    let mut r = error(StatusCode::UNAUTHORIZED);
    // rest-server sends none, but HTTP requires it and curl or a browser need it to ask.
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"restic\""),
    );
    r
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn ok() -> Response<Body> {
    Response::new(empty())
}

fn io_error(what: &str, e: io::Error) -> Response<Body> {
    if e.kind() == io::ErrorKind::NotFound {
        return error(StatusCode::NOT_FOUND);
    }
    if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) {
        eprintln!("ERROR: {what}: {e}");
        return error(StatusCode::INSUFFICIENT_STORAGE);
    }
    eprintln!("ERROR: {what}: {e}");
    error(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// Who is asking: `Some("")` without authentication, `Some(user)` for a valid password.
async fn authenticate(srv: &Server, req: &Parts) -> Option<String> {
    let Some(ht) = srv.htpasswd.clone() else {
        return Some(String::new());
    };
    let v = req.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let (user, pass) = String::from_utf8(raw)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    let u = user.clone();
    let valid = tokio::task::spawn_blocking(move || ht.validate(&u, &pass))
        .await
        .unwrap_or(false);
    valid.then_some(user)
}

/// Handles one request; also returns the user name for the access log.
pub async fn handle(srv: Arc<Server>, req: Request<Incoming>) -> (Response<Body>, String) {
    let (req, body) = req.into_parts();
    let mut body = Some(body);
    let r = handle_parts(&srv, &req, &mut body).await;
    if let Some(b) = body {
        linger(b);
    }
    r
}

/// Reads what is left of a request body (up to [`LINGER_MAX`]) in the background, after
/// the answer went out. Closing a socket with unread data makes the kernel reset the
/// connection, and the client may then lose the answer (a 507 or 403) it is owed.
fn linger(mut body: Incoming) {
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(Ok(f)) = body.frame().await {
            n += f.data_ref().map_or(0, |d| d.len());
            if n > LINGER_MAX {
                break;
            }
        }
    });
}

async fn handle_parts(
    srv: &Arc<Server>,
    req: &Parts,
    body: &mut Option<Incoming>,
) -> (Response<Body>, String) {
    if srv.cfg.debug {
        eprintln!("{} {}", req.method, req.uri);
    }
    if srv.cfg.prometheus && req.uri.path() == "/metrics" {
        let mut user = String::new();
        if !srv.cfg.prometheus_no_auth {
            match authenticate(srv, req).await {
                Some(u) if !srv.cfg.private_repos || srv.htpasswd.is_none() || u == "metrics" => {
                    user = u
                }
                _ => return (unauthorized(), user),
            }
        }
        let mut r = Response::new(full(srv.metrics.render()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return (r, user);
    }
    let Some(user) = authenticate(srv, req).await else {
        return (unauthorized(), String::new());
    };
    let r = route(srv, req, body, &user).await;
    (r, user)
}

/// Where a request's repository lies on disk, and its label for metrics.
struct Repo {
    dir: PathBuf,
    label: String,
    user: String,
}

async fn route(
    srv: &Arc<Server>,
    req: &Parts,
    body: &mut Option<Incoming>,
    user: &str,
) -> Response<Body> {
    let parsed = match path::parse(req.uri.path()) {
        Ok(p) => p,
        Err(PathError::BadRequest) => return error(StatusCode::BAD_REQUEST),
        Err(PathError::NotFound) => return error(StatusCode::NOT_FOUND),
    };
    // Private repositories: a user sees only folders under their own name (rest-server
    // answers 401 here, not 403).
    if srv.htpasswd.is_some()
        && srv.cfg.private_repos
        && parsed.folder.first().map(String::as_str) != Some(user)
    {
        return unauthorized();
    }
    let mut dir = srv.cfg.path.clone();
    for f in &parsed.folder {
        dir.push(f);
    }
    let repo = Repo {
        dir,
        label: parsed.folder.join("/"),
        user: user.to_string(),
    };
    let method = req.method.clone();
    match parsed.target {
        Target::Repo => match method {
            Method::POST => {
                if !path::wants_create(req.uri.query()) {
                    return error(StatusCode::BAD_REQUEST);
                }
                eprintln!("Creating repository directories in {}", repo.dir.display());
                let d = repo.dir.clone();
                match blocking(move || store::create(&d)).await {
                    Ok(()) => ok(),
                    Err(e) => io_error("create repository", e),
                }
            }
            _ => not_allowed("POST"),
        },
        Target::Config => {
            let p = repo.dir.join("config");
            match method {
                Method::HEAD => head(p).await,
                Method::GET => get(srv, req, p, &repo, None).await,
                Method::POST => match body.take() {
                    Some(b) => save(srv, b, p, &repo, None).await,
                    None => error(StatusCode::BAD_REQUEST),
                },
                Method::DELETE => delete(srv, p, &repo, None).await,
                _ => not_allowed("HEAD, GET, POST, DELETE"),
            }
        }
        Target::List(kind) => match method {
            Method::GET => list(req, &repo, kind).await,
            _ => not_allowed("GET"),
        },
        Target::File(kind, name) => {
            let p = store::file_path(&repo.dir, kind, &name);
            match method {
                Method::HEAD => head(p).await,
                Method::GET => get(srv, req, p, &repo, Some(kind)).await,
                Method::POST => match body.take() {
                    Some(b) => save(srv, b, p, &repo, Some((kind, name))).await,
                    None => error(StatusCode::BAD_REQUEST),
                },
                Method::DELETE => delete(srv, p, &repo, Some(kind)).await,
                _ => not_allowed("HEAD, GET, POST, DELETE"),
            }
        }
    }
}

async fn head(p: PathBuf) -> Response<Body> {
    match blocking(move || store::size(&p)).await {
        Ok(size) => {
            let mut r = ok();
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            r
        }
        Err(e) => io_error("stat", e),
    }
}

async fn list(req: &Parts, repo: &Repo, kind: FileType) -> Response<Body> {
    let d = repo.dir.clone();
    let files = match blocking(move || store::list(&d, kind)).await {
        Ok(f) => f,
        Err(e) => return io_error("list", e),
    };
    let v2 = req
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        == Some(V2);
    let body = if v2 {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            name: &'a str,
            size: u64,
        }
        let entries: Vec<Entry> = files
            .iter()
            .map(|(n, s)| Entry { name: n, size: *s })
            .collect();
        serde_json::to_vec(&entries)
    } else {
        serde_json::to_vec(&files.iter().map(|(n, _)| n).collect::<Vec<_>>())
    };
    let Ok(body) = body else {
        return error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut r = Response::new(full(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if v2 { V2 } else { V1 }),
    );
    r
}

async fn get(
    srv: &Arc<Server>,
    req: &Parts,
    p: PathBuf,
    repo: &Repo,
    kind: Option<FileType>,
) -> Response<Body> {
    let (file, size) = match blocking(move || store::open(&p)).await {
        Ok(x) => x,
        Err(e) => return io_error("open", e),
    };
    let ranges = range::parse(
        req.headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let whole = Span {
        start: 0,
        len: size,
    };
    let (status, pieces, multipart) = match ranges {
        Ranges::Whole => (StatusCode::OK, vec![Piece::File(whole)], None),
        Ranges::One(s) => (StatusCode::PARTIAL_CONTENT, vec![Piece::File(s)], None),
        Ranges::Many(spans) => {
            let b = range::boundary();
            let pieces = range::multipart(&spans, size, &b, OCTET_STREAM);
            (StatusCode::PARTIAL_CONTENT, pieces, Some(b))
        }
        Ranges::Invalid => return range_error("invalid range", None),
        Ranges::NoOverlap => return range_error("invalid range: failed to overlap", Some(size)),
    };
    let len = pieces.iter().map(Piece::len).sum();
    if let Some(kind) = kind {
        srv.metrics
            .record(&repo.user, &repo.label, kind.dir(), Op::Read, len);
    }
    let single = match pieces.as_slice() {
        [Piece::File(s)] if status == StatusCode::PARTIAL_CONTENT => Some(*s),
        _ => None,
    };
    let mut r = Response::new(file_body(file, pieces, len));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let ctype = match &multipart {
        Some(b) => HeaderValue::from_str(&format!("multipart/byteranges; boundary={b}")),
        None => Ok(HeaderValue::from_static(OCTET_STREAM)),
    };
    if let Ok(v) = ctype {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(s) = single {
        if let Ok(v) = HeaderValue::from_str(&range::content_range(s, size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    r
}

/// 416 as Go's ServeContent sends it: its message, and the file's size when no range
/// overlapped it.
fn range_error(msg: &str, size: Option<u64>) -> Response<Body> {
    let mut r = error(StatusCode::RANGE_NOT_SATISFIABLE);
    *r.body_mut() = full(format!("{msg}\n"));
    if let Some(size) = size {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    r
}

/// A response body read from a file a chunk at a time on the blocking pool; the channel
/// keeps at most two chunks ahead of a slow client.
struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    len: u64,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// The pieces of an answer (file ranges and, for multipart answers, the text between them),
/// read a chunk at a time on the blocking pool.
fn file_body(file: std::fs::File, pieces: Vec<Piece>, len: u64) -> Body {
    let (tx, rx) = mpsc::channel(2);
    let file = Arc::new(file);
    tokio::spawn(async move {
        for piece in pieces {
            let Span { start, len } = match piece {
                Piece::Text(t) => {
                    if tx.send(Ok(Bytes::from(t))).await.is_err() {
                        return;
                    }
                    continue;
                }
                Piece::File(s) => s,
            };
            let mut pos = start;
            let end = start + len;
            while pos < end {
                let n = READ_CHUNK.min(end - pos);
                let f = file.clone();
                let chunk = blocking(move || {
                    let mut buf = vec![0u8; n as usize];
                    f.read_exact_at(&mut buf, pos)?;
                    Ok(Bytes::from(buf))
                })
                .await;
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
                pos += n;
            }
        }
    });
    BoxBody::new(ChannelBody { rx, len })
}

/// Either an upload ready for more, or one busy writing a batch on the blocking pool.
enum Slot {
    Ready(Upload),
    Busy(tokio::task::JoinHandle<io::Result<Upload>>),
}

impl Slot {
    async fn ready(self) -> io::Result<Upload> {
        match self {
            Slot::Ready(u) => Ok(u),
            Slot::Busy(h) => h.await.unwrap_or_else(|e| Err(io::Error::other(e))),
        }
    }
}

/// Bytes reserved against `--max-size` for one upload, given back unless it is kept.
struct Reservation<'a> {
    quota: Option<&'a store::Quota>,
    bytes: u64,
}

impl Reservation<'_> {
    fn take(&mut self, n: u64) -> bool {
        match self.quota {
            Some(q) if !q.reserve(n) => false,
            _ => {
                self.bytes += n;
                true
            }
        }
    }

    fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(q) = self.quota {
            q.release(self.bytes);
        }
    }
}

/// `POST` of a file: streamed to a temporary file in batches (the next batch is received
/// while the previous one is written and hashed), checked against its name, then put in place.
async fn save(
    srv: &Arc<Server>,
    mut body: Incoming,
    dest: PathBuf,
    repo: &Repo,
    file: Option<(FileType, String)>,
) -> Response<Body> {
    let d = dest.clone();
    match blocking(move || match std::fs::symlink_metadata(&d) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(io::ErrorKind::NotFound.into()),
        Err(e) => Err(e),
    })
    .await
    {
        Ok(true) => {
            linger(body);
            return error(StatusCode::FORBIDDEN);
        }
        Ok(false) => {}
        Err(e) => {
            linger(body);
            return io_error("stat", e);
        }
    }
    let quota = srv.quota.as_ref();
    if let (Some(q), Some(n)) = (quota, body.size_hint().exact()) {
        if !q.fits(n) {
            if srv.cfg.debug {
                eprintln!(
                    "incoming file ({n} bytes) would exceed the maximum repository size ({} bytes)",
                    q.max()
                );
            }
            linger(body);
            return error(StatusCode::INSUFFICIENT_STORAGE);
        }
    }
    let mut reserved = Reservation { quota, bytes: 0 };
    let verify = srv.cfg.verify_upload && file.is_some();
    let d = dest.clone();
    let mut slot = match blocking(move || Upload::begin(&d, verify)).await {
        Ok(u) => Slot::Ready(u),
        Err(e) => {
            linger(body);
            return io_error("create temporary file", e);
        }
    };
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(f)) => f,
            // The client hung up, sent a broken body, or stalled past the timeout.
            Some(Err(e)) => {
                if srv.cfg.debug {
                    eprintln!("upload of {} failed: {e}", dest.display());
                }
                return error(StatusCode::BAD_REQUEST);
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !reserved.take(data.len() as u64) {
            linger(body);
            return error(StatusCode::INSUFFICIENT_STORAGE);
        }
        batch_len += data.len();
        batch.push(data);
        if batch_len >= WRITE_BATCH {
            let mut u = match slot.ready().await {
                Ok(u) => u,
                Err(e) => return io_error("write", e),
            };
            let chunks = std::mem::take(&mut batch);
            batch_len = 0;
            slot = Slot::Busy(tokio::task::spawn_blocking(move || {
                u.write(&chunks)?;
                Ok(u)
            }));
        }
    }
    let mut u = match slot.ready().await {
        Ok(u) => u,
        Err(e) => return io_error("write", e),
    };
    let name = file.as_ref().map(|(_, n)| n.clone());
    let done = tokio::task::spawn_blocking(move || {
        u.write(&batch)?;
        u.finish(name.as_deref())
    })
    .await
    .unwrap_or_else(|e| Err(FinishError::Io(io::Error::other(e))));
    match done {
        Ok(written) => {
            reserved.keep();
            if let Some((kind, _)) = file {
                srv.metrics
                    .record(&repo.user, &repo.label, kind.dir(), Op::Write, written);
            }
            ok()
        }
        Err(FinishError::HashMismatch) => {
            if srv.cfg.debug {
                eprintln!("{}: file content does not match hash", dest.display());
            }
            error(StatusCode::BAD_REQUEST)
        }
        Err(FinishError::Exists) => error(StatusCode::FORBIDDEN),
        Err(FinishError::Io(e)) => io_error("save", e),
    }
}

async fn delete(
    srv: &Arc<Server>,
    p: PathBuf,
    repo: &Repo,
    kind: Option<FileType>,
) -> Response<Body> {
    // Append-only: only locks may go (a client must be able to unlock).
    if srv.cfg.append_only && kind != Some(FileType::Lock) {
        return error(StatusCode::FORBIDDEN);
    }
    match blocking(move || store::remove(&p)).await {
        Ok(size) => {
            if let Some(q) = &srv.quota {
                q.release(size);
            }
            if let Some(kind) = kind {
                srv.metrics
                    .record(&repo.user, &repo.label, kind.dir(), Op::Delete, size);
            }
            ok()
        }
        Err(e) => io_error("remove", e),
    }
}

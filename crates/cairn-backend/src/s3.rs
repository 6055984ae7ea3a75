//! S3 and S3-compatible stores (`s3:https://host[:port]/bucket[/prefix]`, `s3:http://...`,
//! `s3:host/bucket[/prefix]`, `s3:s3.amazonaws.com/bucket/prefix`), with restic 0.14's
//! location syntax, settings and object layout, so that either program opens the other's
//! repositories.
//!
//! - Layout: restic's default layout under the prefix: `prefix/config`, `prefix/keys/ID`,
//!   `prefix/snapshots/ID`, `prefix/index/ID`, `prefix/locks/ID`, `prefix/data/xx/ID`
//!   (restic's old `s3legacy` layout is not supported).
//! - Credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`;
//!   when neither key variable is set, the profile `$AWS_PROFILE` (default `default`) of the
//!   shared credentials file (`$AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), as
//!   restic 0.18's S3 library reads it.
//! - Region: `-o s3.region`, else `AWS_DEFAULT_REGION`, else the region in an AWS endpoint's
//!   host name (`s3.eu-west-1.amazonaws.com`), else asked of the server with GetBucketLocation
//!   as minio-go (restic's S3 library) does, reading the region from the answer or from the
//!   error a wrongly scoped signature gets; `us-east-1` when none of these says.
//! - `-o s3.bucket-lookup=auto|dns|path`: `auto` (the default) uses virtual-host requests
//!   (`bucket.host/key`) only for Amazon, Google and Aliyun endpoints, as minio-go does, and
//!   path-style requests (`host/bucket/key`) for everything else, e.g. MinIO or Garage on an IP.
//! - `-o s3.connections=N` (default 5), `-o s3.storage-class=CLASS`, `-o s3.layout=default`, and
//!   cairn's own `-o s3.timeout=DURATION` (default 60s): how long a request may wait for the
//!   server to send or accept data before it fails (and is retried), so a stalled store is
//!   noticed. `0` waits forever.
//!
//! The protocol comes from `rusty-s3`, a sans-IO crate: it signs requests (SigV4, as presigned
//! URLs, valid for an hour) and parses ListObjectsV2 answers; the requests themselves go out over
//! the same blocking `ureq` agent as the REST backend. Each operation:
//! - save: HEAD first and refuse an existing object (S3 would silently replace it), then one
//!   PUT with Content-Length and Content-MD5, so that a body damaged on the way is refused by
//!   the store instead of stored. A pack is at most a few hundred MiB, well under the 5 GiB a
//!   single PUT may carry. (HEAD then PUT is not atomic: two writers of the same name race, but
//!   names are content hashes, so both write the same bytes.)
//! - load: GET with a Range header; stat: HEAD; remove: DELETE (a missing object is fine);
//! - list: ListObjectsV2 under the type's prefix, following continuation tokens, with sizes;
//! - create: HEAD the bucket and create it when it does not exist, as restic does.
//!
//! Errors are mapped for the retry decorator: a missing object is `NotFound`, a refused
//! overwrite `AlreadyExists`, 401/403 `PermissionDenied` (with the server's code and message),
//! other 4xx answers `InvalidInput`/`Unsupported` (permanent), and 5xx answers, timeouts and
//! dropped connections a plain I/O error (retried).

use crate::location::clean_path;
use crate::{Backend, BackendError, FileInfo, FileType, Handle, OpenError, Options, Result};
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::borrow::Cow;
use std::io::{ErrorKind, Read};
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

/// How long a signed request stays valid. It only has to outlive the start of the request.
const SIGNATURE_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_CONNECTIONS: usize = 5;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How requests name the bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketLookup {
    /// Virtual-host style for Amazon, Google and Aliyun endpoints, path style elsewhere.
    Auto,
    /// `bucket.host/key`.
    Dns,
    /// `host/bucket/key`.
    Path,
}

impl BucketLookup {
    fn parse(v: &str) -> std::result::Result<BucketLookup, OpenError> {
        match v.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(BucketLookup::Auto),
            "dns" => Ok(BucketLookup::Dns),
            "path" => Ok(BucketLookup::Path),
            _ => Err(OpenError::bad_option(
                "s3.bucket-lookup",
                format!(
                    "invalid option s3.bucket-lookup={v:?}: must be \"auto\", \"path\" or \
                     \"dns\""
                ),
            )),
        }
    }
}

/// A parsed `s3:` location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `host` or `host:port`.
    pub endpoint: String,
    /// Plain HTTP (only with an explicit `http://` URL).
    pub use_http: bool,
    pub bucket: String,
    /// Cleaned as Go's `path.Clean` does; empty for the bucket's root.
    pub prefix: String,
}

/// Parses the part of an `s3:` location after `s3:`, exactly as restic 0.14's
/// `s3.ParseConfig` does: `http(s)://host[:port]/bucket[/prefix]` (a URL; https unless
/// it says http), or `[//]host/bucket[/prefix]` (always https).
pub fn parse_location(spec: &str) -> std::result::Result<S3Location, String> {
    let bad = |why: &str| format!("invalid S3 location \"s3:{spec}\": {why}");
    let lower = spec.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let (scheme, rest) = spec.split_once("://").unwrap_or(("https", spec));
        // The authority ends at the first '/', '?' or '#'; a query or fragment is not part of
        // the path (Go's url.Parse drops them from Path too), and user info is ignored.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let mut path = &rest[end..];
        if let Some(i) = path.find(['?', '#']) {
            path = &path[..i];
        }
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if path.is_empty() {
            return Err(bad("bucket name not found"));
        }
        let path = crate::location::percent_decode_lossy(&path[1..]);
        let (bucket, prefix) = match path.split_once('/') {
            Some((b, p)) => (b.to_string(), p.to_string()),
            None => (path.clone(), String::new()),
        };
        return finish(
            host,
            &bucket,
            &prefix,
            scheme.eq_ignore_ascii_case("http"),
            &bad,
        );
    }
    let s = spec.strip_prefix("//").unwrap_or(spec);
    let mut parts = s.splitn(3, '/');
    let endpoint = parts.next().unwrap_or("");
    let Some(bucket) = parts.next() else {
        return Err(bad("host/region or bucket name not found"));
    };
    let prefix = parts.next().unwrap_or("");
    finish(endpoint, bucket, prefix, false, &bad)
}

fn finish(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    use_http: bool,
    bad: &dyn Fn(&str) -> String,
) -> std::result::Result<S3Location, String> {
    if endpoint.is_empty() {
        return Err(bad("no host"));
    }
    if bucket.is_empty() {
        return Err(bad("bucket name not found"));
    }
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        clean_path(prefix)
    };
    Ok(S3Location {
        endpoint: endpoint.to_string(),
        use_http,
        bucket: bucket.to_string(),
        // `path.Join(".", "config")` is `config`: a prefix of "." is the root.
        prefix: if prefix == "." { String::new() } else { prefix },
    })
}

/// Credentials for S3 requests.
#[derive(Clone)]
pub struct S3Credentials {
    pub key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl S3Credentials {
    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, or else from
    /// the shared credentials file's profile.
    /// The error is the whole message, for [`OpenError::Credentials`].
    pub fn from_env() -> std::result::Result<S3Credentials, String> {
        let missing = |why: &str| format!("unable to open S3 backend: {why}");
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let key_id = var("AWS_ACCESS_KEY_ID");
        let secret = var("AWS_SECRET_ACCESS_KEY");
        match (key_id, secret) {
            (Some(key_id), Some(secret)) => Ok(S3Credentials {
                key_id,
                secret,
                session_token: var("AWS_SESSION_TOKEN"),
            }),
            (None, None) => match shared_credentials()? {
                Some(c) => Ok(c),
                None => Err(missing(
                    "no credentials: set $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (and \
                     $AWS_SESSION_TOKEN for temporary credentials), or $AWS_PROFILE with a \
                     shared credentials file",
                )),
            },
            (None, Some(_)) => Err(missing("Key ID ($AWS_ACCESS_KEY_ID) is empty")),
            (Some(_), None) => Err(missing("Secret ($AWS_SECRET_ACCESS_KEY) is empty")),
        }
    }
}

/// The profile `$AWS_PROFILE` (or `default`) of the shared credentials file
/// (`$AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`); None when there is no such file
/// or profile. A profile without both keys is an error naming the file.
fn shared_credentials() -> std::result::Result<Option<S3Credentials>, String> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let Some(path) = var("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| var("HOME").map(|h| std::path::PathBuf::from(h).join(".aws/credentials")))
    else {
        return Ok(None);
    };
    let profile = std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".into());
    // A credentials file is a few lines; anything far larger is not one.
    const MAX: u64 = 1 << 20;
    let text = match std::fs::File::open(&path) {
        Ok(f) => {
            use std::io::Read;
            let mut s = String::new();
            f.take(MAX)
                .read_to_string(&mut s)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            s
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let Some(keys) = ini_section(&text, &profile) else {
        return Ok(None);
    };
    let get = |k: &str| keys.get(k).filter(|v| !v.is_empty()).cloned();
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(key_id), Some(secret)) => Ok(Some(S3Credentials {
            key_id,
            secret,
            session_token: get("aws_session_token"),
        })),
        _ => Err(format!(
            "unable to open S3 backend: profile {profile:?} in {} lacks aws_access_key_id or \
             aws_secret_access_key",
            path.display()
        )),
    }
}

/// The `key = value` pairs of one `[section]` of an INI file (comments `#` and `;`), or None
/// when the section is not there.
fn ini_section(text: &str, name: &str) -> Option<std::collections::HashMap<String, String>> {
    let mut found = None;
    let mut current: Option<bool> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(sec) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let mine = sec.trim() == name;
            if mine && found.is_none() {
                found = Some(std::collections::HashMap::new());
            }
            current = Some(mine);
            continue;
        }
        if current == Some(true) {
            if let (Some((k, v)), Some(map)) = (line.split_once('='), found.as_mut()) {
                map.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    found
}

/// Everything an [`S3Backend`] needs; [`S3Backend::open`] fills it from a location, the
/// environment and `-o s3.*` options, the B2 backend from its authorization.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// `scheme://host[:port]/`.
    pub endpoint: Url,
    pub bucket: String,
    pub prefix: String,
    /// None: find it out as minio-go does (see the module doc).
    pub region: Option<String>,
    pub lookup: BucketLookup,
    pub credentials: S3Credentials,
    pub connections: usize,
    /// Idle timeout of a request; None waits forever.
    pub timeout: Option<Duration>,
    pub storage_class: Option<String>,
    /// The location as the user wrote it, for messages.
    pub label: String,
    /// Added to access-denied errors (the B2 backend explains its keys there).
    pub denied_hint: Option<String>,
    /// User agent and TLS from the global flags.
    pub http: crate::http::Http,
}

impl S3Settings {
    /// Settings for a location (the part after `s3:`) with the given credentials, reading
    /// every `s3.*` option but taking the region from the environment only when `env_region`.
    pub fn from_location(
        spec: &str,
        opts: &Options,
        credentials: S3Credentials,
        env_region: bool,
    ) -> std::result::Result<S3Settings, OpenError> {
        let label = format!("s3:{spec}");
        let loc = parse_location(spec).map_err(|e| OpenError::bad_location(&label, e))?;
        let scheme = if loc.use_http { "http" } else { "https" };
        let endpoint = Url::parse(&format!("{scheme}://{}/", loc.endpoint)).map_err(|e| {
            OpenError::bad_location(
                &label,
                format!("invalid S3 location {label:?}: endpoint: {e}"),
            )
        })?;
        let mut region = None;
        if env_region {
            region = std::env::var("AWS_DEFAULT_REGION")
                .ok()
                .filter(|v| !v.is_empty());
        }
        if let Some(r) = opts.get("s3.region") {
            region = Some(r.to_string()).filter(|r| !r.is_empty());
        }
        if region.is_none() {
            region = endpoint.host_str().and_then(region_from_host);
        }
        let lookup = BucketLookup::parse(opts.get("s3.bucket-lookup").unwrap_or(""))?;
        let connections = opts
            .get_usize("s3.connections")?
            .unwrap_or(DEFAULT_CONNECTIONS);
        let timeout = parse_timeout(opts, "s3.timeout")?;
        let storage_class = opts
            .get("s3.storage-class")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        match opts.get("s3.layout") {
            None | Some("") | Some("default") => {}
            Some(l) => {
                return Err(OpenError::bad_option(
                    "s3.layout",
                    format!(
                        "invalid option s3.layout={l:?}: cairn supports only restic's \
                         \"default\" layout"
                    ),
                ))
            }
        }
        Ok(S3Settings {
            endpoint,
            bucket: loc.bucket,
            prefix: loc.prefix,
            region,
            lookup,
            credentials,
            connections,
            timeout,
            storage_class,
            label,
            denied_hint: None,
            http: opts.http().clone(),
        })
    }
}

/// Reads an idle-timeout option (`30s`, `5m`, `0` for none); 60s when not given.
pub(crate) fn parse_timeout(
    opts: &Options,
    key: &str,
) -> std::result::Result<Option<Duration>, OpenError> {
    match opts.get(key) {
        None => Ok(Some(opts.http().stuck_timeout.unwrap_or(DEFAULT_TIMEOUT))),
        Some(v) => match crate::retry::parse_duration(v) {
            Some(d) if d.is_zero() => Ok(None),
            Some(d) => Ok(Some(d)),
            None => Err(OpenError::bad_option(
                key,
                format!("invalid option {key}={v:?}: want e.g. 30s or 5m"),
            )),
        },
    }
}

pub struct S3Backend {
    settings: S3Settings,
    creds: Credentials,
    agent: ureq::Agent,
    /// The bucket with its region and URL style, settled at the first request (finding the
    /// region may take a request).
    bucket: OnceLock<Bucket>,
    /// Keys per listing page (the server's default, 1000, unless a test asks for less).
    page: Option<usize>,
}

/// A failed request, with what the server said.
enum Failure {
    Status {
        status: u16,
        /// The reason phrase, for answers without a body (HEAD).
        reason: String,
        code: String,
        message: String,
        region: Option<String>,
    },
    Transport(String, ErrorKind),
}

impl S3Backend {
    /// `spec` is the part after `s3:`; credentials and region come from the environment.
    pub fn open(spec: &str, opts: &Options) -> std::result::Result<S3Backend, OpenError> {
        let label = format!("s3:{spec}");
        // Parse the location first, so that a bad location is reported as such.
        parse_location(spec).map_err(|e| OpenError::bad_location(&label, e))?;
        let creds = S3Credentials::from_env().map_err(|e| OpenError::credentials(label, e))?;
        Ok(S3Backend::new(S3Settings::from_location(
            spec, opts, creds, true,
        )?))
    }

    /// `spec` is the part after `s3:`, with credentials given rather than read from the
    /// environment (and no region from the environment either).
    pub fn open_with_credentials(
        spec: &str,
        opts: &Options,
        credentials: S3Credentials,
    ) -> std::result::Result<S3Backend, OpenError> {
        Ok(S3Backend::new(S3Settings::from_location(
            spec,
            opts,
            credentials,
            false,
        )?))
    }

    pub fn new(settings: S3Settings) -> S3Backend {
        let mut b = settings
            .http
            .agent_builder()
            .timeout_connect(Duration::from_secs(30))
            // Presigned URLs are tied to their host: a redirect cannot be followed blindly,
            // and S3 redirects only to say that the bucket lives elsewhere.
            .redirects(0)
            .max_idle_connections_per_host(settings.connections.max(1));
        if let Some(t) = settings.timeout {
            b = b.timeout_read(t).timeout_write(t);
        }
        let c = &settings.credentials;
        let creds = match &c.session_token {
            Some(t) => Credentials::new_with_token(c.key_id.clone(), c.secret.clone(), t.clone()),
            None => Credentials::new(c.key_id.clone(), c.secret.clone()),
        };
        S3Backend {
            creds,
            agent: b.build(),
            bucket: OnceLock::new(),
            page: None,
            settings,
        }
    }

    /// Lists `n` keys per request (a test of continuation tokens; servers cap it at 1000).
    pub fn with_list_page(mut self, n: usize) -> S3Backend {
        self.page = Some(n.max(1));
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// The region requests are signed for (finding it out if need be).
    pub fn region(&self) -> Result<String> {
        Ok(self.bucket()?.region().to_string())
    }

    /// The object key of a file: restic's default layout under the prefix.
    pub fn key(&self, h: &Handle) -> String {
        object_key(&self.settings.prefix, h)
    }

    fn io(&self, what: &str, kind: ErrorKind, msg: impl std::fmt::Display) -> BackendError {
        BackendError::Io {
            handle: what.to_string(),
            err: std::io::Error::new(kind, msg.to_string()),
        }
    }

    /// The bucket to address, its region found out at the first call.
    fn bucket(&self) -> Result<Cow<'_, Bucket>> {
        if let Some(b) = self.bucket.get() {
            return Ok(Cow::Borrowed(b));
        }
        let (region, settled) = match &self.settings.region {
            Some(r) => (r.clone(), true),
            None => self.discover_region()?,
        };
        let b = self.make_bucket(&region)?;
        if !settled {
            // The bucket does not exist yet: ask again once it does.
            return Ok(Cow::Owned(b));
        }
        Ok(Cow::Borrowed(self.bucket.get_or_init(|| b)))
    }

    fn make_bucket(&self, region: &str) -> Result<Bucket> {
        let s = &self.settings;
        let mut endpoint = s.endpoint.clone();
        let host = endpoint.host_str().unwrap_or("").to_ascii_lowercase();
        // As minio-go: the global AWS endpoint is replaced by the bucket's regional one.
        if host == "s3.amazonaws.com" || host == "s3-external-1.amazonaws.com" {
            let regional = if region.starts_with("cn-") {
                format!("s3.{region}.amazonaws.com.cn")
            } else {
                format!("s3.{region}.amazonaws.com")
            };
            let _ = endpoint.set_host(Some(&regional));
        }
        let virtual_host = match s.lookup {
            BucketLookup::Path => false,
            BucketLookup::Dns => true,
            BucketLookup::Auto => {
                !(endpoint.scheme() == "https" && s.bucket.contains('.'))
                    && (is_amazon(&host)
                        || host == "storage.googleapis.com"
                        || host.ends_with("aliyuncs.com"))
            }
        };
        let style = if virtual_host {
            UrlStyle::VirtualHost
        } else {
            UrlStyle::Path
        };
        match Bucket::new(
            endpoint.clone(),
            style,
            s.bucket.clone(),
            region.to_string(),
        ) {
            Ok(b) => Ok(b),
            // A bucket name that cannot be a host name goes by path in auto mode.
            Err(_) if s.lookup == BucketLookup::Auto && virtual_host => Bucket::new(
                endpoint,
                UrlStyle::Path,
                s.bucket.clone(),
                region.to_string(),
            )
            .map_err(|e| self.io(&s.label, ErrorKind::InvalidInput, format!("{e:?}"))),
            Err(e) => Err(self.io(
                &s.label,
                ErrorKind::InvalidInput,
                format!(
                    "cannot address bucket {:?} ({style:?} style): {e:?}",
                    s.bucket
                ),
            )),
        }
    }

    /// Asks the server where the bucket is, as minio-go does: GetBucketLocation signed for
    /// us-east-1; a server in another region names its region in the error it answers.
    /// Returns the region and whether it is settled (not just a default for a missing bucket).
    fn discover_region(&self) -> Result<(String, bool)> {
        let probe = self.make_bucket("us-east-1")?;
        let mut action = ListObjectsV2::new(&probe, Some(&self.creds));
        action.query_mut().remove("list-type");
        action.query_mut().remove("encoding-type");
        action.query_mut().insert("location", "");
        let url = action.sign(SIGNATURE_TTL);
        let what = format!("{} (finding the bucket's region)", self.settings.label);
        match self.send("GET", &url, &[], None) {
            Ok(resp) => {
                let body = resp
                    .into_string()
                    .map_err(|e| self.io(&what, e.kind(), e))?;
                let r = xml_field(&body, "LocationConstraint").unwrap_or_default();
                Ok((normalize_region(&r), true))
            }
            Err(Failure::Status {
                status,
                code,
                region,
                ..
            }) => match code.as_str() {
                "AuthorizationHeaderMalformed" | "InvalidRegion" | "AccessDenied" => {
                    Ok((region.unwrap_or_else(|| "us-east-1".into()), true))
                }
                "NoSuchBucket" => Ok(("us-east-1".into(), false)),
                _ if status >= 500 => Err(self.io(
                    &what,
                    ErrorKind::Other,
                    format!("server answered {status} {code}"),
                )),
                // A store that does not implement it has one region, which it ignores.
                _ => Ok((region.unwrap_or_else(|| "us-east-1".into()), true)),
            },
            Err(Failure::Transport(msg, kind)) => Err(self.io(&what, kind, msg)),
        }
    }

    /// Sends a request; any answer but 2xx is a [`Failure`].
    fn send(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::result::Result<ureq::Response, Failure> {
        let mut req = self.agent.request_url(method, url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let res = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        match res {
            Ok(r) if (200..300).contains(&r.status()) => Ok(r),
            Ok(r) => Err(failure(r.status(), r)),
            Err(ureq::Error::Status(status, r)) => Err(failure(status, r)),
            Err(ureq::Error::Transport(t)) => {
                let kind = match t.kind() {
                    ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                        ErrorKind::InvalidInput
                    }
                    _ => ErrorKind::Other,
                };
                Err(Failure::Transport(t.to_string(), kind))
            }
        }
    }

    /// Maps a failure for the retry decorator (see the module doc).
    fn fail(&self, what: &str, f: Failure) -> BackendError {
        match f {
            Failure::Transport(msg, kind) => self.io(what, kind, msg),
            Failure::Status { status: 404, .. } => BackendError::NotFound(what.to_string()),
            Failure::Status {
                status,
                reason,
                code,
                message,
                region,
            } => {
                let said = if message.is_empty() && code.is_empty() {
                    reason
                } else if message.is_empty() {
                    code.clone()
                } else if code.is_empty() {
                    message.clone()
                } else {
                    format!("{code}: {message}")
                };
                let answer = if said.is_empty() {
                    format!("S3 server answered {status}")
                } else {
                    format!("S3 server answered {status} ({said})")
                };
                let kind = match (status, code.as_str()) {
                    // Worth another attempt: a body damaged or cut short on the way (the
                    // Content-MD5 check), a slow or busy server.
                    (
                        _,
                        "BadDigest" | "IncompleteBody" | "RequestTimeout" | "SlowDown"
                        | "InternalError" | "OperationAborted",
                    ) => ErrorKind::Other,
                    (401 | 403, _) => ErrorKind::PermissionDenied,
                    (405 | 501, _) => ErrorKind::Unsupported,
                    (507, _) => ErrorKind::StorageFull,
                    (300..=499, _) => ErrorKind::InvalidInput,
                    _ => ErrorKind::Other,
                };
                let mut msg = answer;
                if kind == ErrorKind::PermissionDenied {
                    match &self.settings.denied_hint {
                        Some(h) => msg.push_str(&format!("; {h}")),
                        None => msg.push_str(
                            "; check $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and the key's \
                             permissions on the bucket",
                        ),
                    }
                }
                if let Some(r) = region.filter(|_| {
                    matches!(
                        code.as_str(),
                        "AuthorizationHeaderMalformed" | "PermanentRedirect" | "InvalidRegion"
                    ) || (300..400).contains(&status)
                }) {
                    msg.push_str(&format!(
                        "; the bucket is in region {r:?}: set -o s3.region={r} or $AWS_DEFAULT_REGION"
                    ));
                }
                self.io(what, kind, msg)
            }
        }
    }

    fn check_name(&self, h: &Handle) -> Result<()> {
        let n = &h.name;
        if n.is_empty() || n == "." || n == ".." || n.contains('/') {
            return Err(self.io(&h.to_string(), ErrorKind::InvalidInput, "invalid file name"));
        }
        Ok(())
    }

    /// Lists every key under `dir` (ending in '/'), with sizes, following continuation tokens.
    fn list_keys(&self, dir: &str, delimiter: bool) -> Result<Vec<(String, u64)>> {
        let bucket = self.bucket()?;
        let what = dir.to_string();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = bucket.list_objects_v2(Some(&self.creds));
            action.with_prefix(dir);
            if delimiter {
                action.with_delimiter("/");
            }
            if let Some(n) = self.page {
                action.with_max_keys(n);
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(SIGNATURE_TTL);
            let resp = match self.send("GET", &url, &[], None) {
                Ok(r) => r,
                Err(Failure::Status { status: 404, .. }) => {
                    // No bucket yet: nothing in it.
                    return Ok(out);
                }
                Err(f) => return Err(self.fail(&what, f)),
            };
            let body = resp
                .into_string()
                .map_err(|e| self.io(&what, ErrorKind::Other, e))?;
            let page = ListObjectsV2::parse_response(&body).map_err(|e| {
                self.io(
                    &what,
                    ErrorKind::Other,
                    format!("cannot parse the listing: {e}"),
                )
            })?;
            for c in page.contents {
                out.push((c.key, c.size.unwrap_or(0)));
            }
            match page.next_continuation_token {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                Some(_) => {
                    return Err(self.io(
                        &what,
                        ErrorKind::Other,
                        "the server repeated a continuation token",
                    ))
                }
                None => return Ok(out),
            }
        }
    }
}

/// The object key of a file in restic's default layout under `prefix`.
pub fn object_key(prefix: &str, h: &Handle) -> String {
    let rel = match h.kind {
        FileType::Config => "config".to_string(),
        FileType::Data => {
            let sub = h.name.get(..2).unwrap_or(&h.name);
            format!("data/{sub}/{}", h.name)
        }
        k => format!("{}/{}", k.dir(), h.name),
    };
    if prefix.is_empty() {
        rel
    } else {
        format!("{prefix}/{rel}")
    }
}

/// Reads a failed answer: the status, and the code, message and region of an S3 error body
/// (or of the `x-amz-bucket-region` header).
fn failure(status: u16, resp: ureq::Response) -> Failure {
    let header_region = resp.header("x-amz-bucket-region").map(str::to_string);
    let reason = resp.status_text().to_string();
    let mut body = String::new();
    let _ = resp.into_reader().take(64 * 1024).read_to_string(&mut body);
    let code = xml_field(&body, "Code").unwrap_or_default();
    let message = xml_field(&body, "Message").unwrap_or_default();
    let region = xml_field(&body, "Region")
        .filter(|r| !r.is_empty())
        .or(header_region);
    Failure::Status {
        status,
        reason,
        code,
        message,
        region,
    }
}

/// The text of the first `<tag>` element in a small XML document (S3 error bodies and
/// GetBucketLocation answers are flat), with entities decoded. `<tag/>` is empty.
fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(i) = xml[from..].find(&open) {
        let start = from + i + open.len();
        let rest = &xml[start..];
        match rest.chars().next() {
            Some('>') | Some(' ') | Some('/') | Some('\t') | Some('\n') | Some('\r') => {}
            _ => {
                from = start;
                continue;
            }
        }
        let gt = rest.find('>')?;
        if rest[..gt].ends_with('/') {
            return Some(String::new());
        }
        let text = &rest[gt + 1..];
        let end = text.find(&format!("</{tag}>"))?;
        return Some(xml_unescape(text[..end].trim()));
    }
    None
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// GetBucketLocation's answer: empty is us-east-1, `EU` the old name of eu-west-1.
fn normalize_region(r: &str) -> String {
    match r {
        "" => "us-east-1".into(),
        "EU" => "eu-west-1".into(),
        r => r.to_string(),
    }
}

/// The region in an AWS S3 endpoint's host name, as minio-go's `GetRegionFromURL` reads it:
/// `s3.R.amazonaws.com`, `s3-R.amazonaws.com`, `s3.dualstack.R.amazonaws.com`,
/// `s3-fips.R.amazonaws.com`, `s3.R.amazonaws.com.cn`, ...
pub fn region_from_host(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    if host == "s3-external-1.amazonaws.com" || host == "s3.amazonaws.com" {
        return None;
    }
    if host.contains("elb") && (host.ends_with(".amazonaws.com") || host.ends_with(".com.cn")) {
        return None;
    }
    let middle = host
        .strip_suffix(".amazonaws.com.cn")
        .filter(|m| m.contains(".cn-") || m.starts_with("s3.cn-"))
        .or_else(|| host.strip_suffix(".amazonaws.com"))?;
    let region = [
        "s3-fips.dualstack.",
        "s3.dualstack.",
        "s3-fips.",
        "s3-",
        "s3.",
    ]
    .iter()
    .find_map(|p| middle.strip_prefix(p))?;
    if region.is_empty() || region.contains('.') {
        return None;
    }
    Some(region.to_string())
}

fn is_amazon(host: &str) -> bool {
    host == "s3.amazonaws.com"
        || host == "s3-external-1.amazonaws.com"
        || region_from_host(host).is_some()
}

fn content_md5(data: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.settings.label.clone()
    }

    fn lists_after_write(&self) -> bool {
        // S3 (since 2020) and the stores that imitate it list what was written.
        true
    }

    fn connections(&self) -> usize {
        self.settings.connections
    }

    fn create(&self) -> Result<()> {
        let what = self.settings.label.clone();
        let bucket = self.bucket()?;
        let url = bucket.head_bucket(Some(&self.creds)).sign(SIGNATURE_TTL);
        match self.send("HEAD", &url, &[], None) {
            Ok(_) => return Ok(()),
            // As restic: a key that may not look at the bucket may still write in it.
            Err(Failure::Status {
                status: 401 | 403, ..
            }) => return Ok(()),
            Err(Failure::Status { status: 404, .. }) => {}
            Err(f) => return Err(self.fail(&what, f)),
        }
        let action = bucket.create_bucket(&self.creds);
        let body = action.body();
        let url = action.sign(SIGNATURE_TTL);
        match self.send("PUT", &url, &[], Some(body.as_bytes())) {
            Ok(_) => Ok(()),
            Err(Failure::Status { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            Err(f) => Err(self.fail(&format!("{what} (creating bucket)"), f)),
        }
    }

    fn save(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.check_name(h)?;
        // S3 replaces an existing object without a word: look first.
        if h.kind != FileType::Config {
            match self.stat(h) {
                Ok(_) => return Err(BackendError::AlreadyExists(h.to_string())),
                Err(BackendError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let bucket = self.bucket()?;
        let key = self.key(h);
        let md5 = content_md5(data);
        let mut action = bucket.put_object(Some(&self.creds), &key);
        action.headers_mut().insert("content-md5", md5.clone());
        if let Some(c) = &self.settings.storage_class {
            action
                .headers_mut()
                .insert("x-amz-storage-class", c.clone());
        }
        let url = action.sign(SIGNATURE_TTL);
        let mut headers = vec![
            ("Content-MD5", md5.as_str()),
            ("Content-Type", "application/octet-stream"),
        ];
        if let Some(c) = &self.settings.storage_class {
            headers.push(("x-amz-storage-class", c.as_str()));
        }
        match self.send("PUT", &url, &headers, Some(data)) {
            Ok(_) => Ok(()),
            // No bucket: a configuration error, not something to retry.
            Err(Failure::Status { status: 404, .. }) => Err(self.io(
                &h.to_string(),
                ErrorKind::InvalidInput,
                format!(
                    "bucket {:?} does not exist (init creates it)",
                    self.settings.bucket
                ),
            )),
            Err(f) => Err(self.fail(&h.to_string(), f)),
        }
    }

    fn load(&self, h: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.check_name(h)?;
        let bucket = self.bucket()?;
        let key = self.key(h);
        let url = bucket
            .get_object(Some(&self.creds), &key)
            .sign(SIGNATURE_TTL);
        let range;
        let mut headers = Vec::new();
        if offset > 0 || length > 0 {
            range = if length > 0 {
                format!("bytes={}-{}", offset, offset + length - 1)
            } else {
                format!("bytes={offset}-")
            };
            headers.push(("Range", range.as_str()));
        }
        let resp = self
            .send("GET", &url, &headers, None)
            .map_err(|f| self.fail(&h.to_string(), f))?;
        let partial = resp.status() == 206;
        crate::backend::read_ranged(&mut resp.into_reader(), partial, h, offset, length)
    }

    fn load_capped(&self, h: &Handle, max: u64) -> Result<Vec<u8>> {
        self.check_name(h)?;
        let bucket = self.bucket()?;
        let url = bucket
            .get_object(Some(&self.creds), &self.key(h))
            .sign(SIGNATURE_TTL);
        let resp = self
            .send("GET", &url, &[], None)
            .map_err(|f| self.fail(&h.to_string(), f))?;
        crate::backend::read_capped(&mut resp.into_reader(), h, max)
    }

    fn stat(&self, h: &Handle) -> Result<u64> {
        self.check_name(h)?;
        let bucket = self.bucket()?;
        let key = self.key(h);
        let url = bucket
            .head_object(Some(&self.creds), &key)
            .sign(SIGNATURE_TTL);
        let resp = self
            .send("HEAD", &url, &[], None)
            .map_err(|f| self.fail(&h.to_string(), f))?;
        resp.header("Content-Length")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                self.io(
                    &h.to_string(),
                    ErrorKind::Other,
                    "no Content-Length in answer",
                )
            })
    }

    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        if kind == FileType::Config {
            return crate::backend::list_config(self.stat(&Handle::config()));
        }
        let dir = match self.settings.prefix.as_str() {
            "" => format!("{}/", kind.dir()),
            p => format!("{p}/{}/", kind.dir()),
        };
        // Data lives one level down (data/xx/ID); the other types directly in their folder.
        let recursive = kind == FileType::Data;
        let keys = self.list_keys(&dir, !recursive)?;
        Ok(keys
            .into_iter()
            .filter_map(|(key, size)| {
                let rest = key.strip_prefix(&dir)?;
                if rest.is_empty() || rest.ends_with('/') {
                    return None;
                }
                let name = rest.rsplit('/').next().unwrap_or(rest);
                Some(FileInfo {
                    name: name.to_string(),
                    size,
                })
            })
            .collect())
    }

    fn remove(&self, h: &Handle) -> Result<()> {
        self.check_name(h)?;
        let bucket = self.bucket()?;
        let key = self.key(h);
        let url = bucket
            .delete_object(Some(&self.creds), &key)
            .sign(SIGNATURE_TTL);
        match self.send("DELETE", &url, &[], None) {
            Ok(_) | Err(Failure::Status { status: 404, .. }) => Ok(()),
            Err(f) => Err(self.fail(&h.to_string(), f)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_profiles_are_read_by_section() {
        let text = "# c\n[default]\naws_access_key_id = A\n\n[work]\n; x\nAWS_ACCESS_KEY_ID=B\naws_secret_access_key = s=2\n[other]\naws_access_key_id = C\n";
        assert_eq!(
            ini_section(text, "default").unwrap()["aws_access_key_id"],
            "A"
        );
        let w = ini_section(text, "work").unwrap();
        assert_eq!(
            (
                w["aws_access_key_id"].as_str(),
                w["aws_secret_access_key"].as_str()
            ),
            ("B", "s=2")
        );
        assert!(ini_section(text, "none").is_none());
    }

    fn loc(endpoint: &str, http: bool, bucket: &str, prefix: &str) -> S3Location {
        S3Location {
            endpoint: endpoint.into(),
            use_http: http,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn locations_parse_as_restic_parses_them() {
        // The cases of restic 0.14's internal/backend/s3/config_test.go, and a few more.
        let cases = [
            (
                "s3.amazonaws.com/bucketname",
                loc("s3.amazonaws.com", false, "bucketname", ""),
            ),
            (
                "s3.amazonaws.com/bucketname/",
                loc("s3.amazonaws.com", false, "bucketname", ""),
            ),
            (
                "s3.amazonaws.com/bucketname/prefix/directory",
                loc("s3.amazonaws.com", false, "bucketname", "prefix/directory"),
            ),
            (
                "s3.amazonaws.com/bucketname/prefix/directory/",
                loc("s3.amazonaws.com", false, "bucketname", "prefix/directory"),
            ),
            (
                "//s3.amazonaws.com/bucketname/prefix",
                loc("s3.amazonaws.com", false, "bucketname", "prefix"),
            ),
            (
                "https://hostname:9999/foobar",
                loc("hostname:9999", false, "foobar", ""),
            ),
            (
                "https://hostname:9999/foobar/",
                loc("hostname:9999", false, "foobar", ""),
            ),
            (
                "http://hostname:9999/foobar",
                loc("hostname:9999", true, "foobar", ""),
            ),
            (
                "http://hostname:9999/foobar/prefix/directory",
                loc("hostname:9999", true, "foobar", "prefix/directory"),
            ),
            (
                "http://127.0.0.1:3900/bucket/a//b/../c/",
                loc("127.0.0.1:3900", true, "bucket", "a/c"),
            ),
            ("http://u:p@host/b/p?x=1", loc("host", true, "b", "p")),
            ("eu-west-1/bucket/p", loc("eu-west-1", false, "bucket", "p")),
            ("host/bucket/.", loc("host", false, "bucket", "")),
            ("host/b/%41", loc("host", false, "b", "%41")),
            ("http://host/b/%41", loc("host", true, "b", "A")),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_location(spec).unwrap(), want, "{spec}");
        }
        for bad in [
            "https://hostname:9999",
            "https://hostname:9999/",
            "hostname",
            "hostname/",
            "",
            "/bucket",
        ] {
            assert!(parse_location(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn object_keys_follow_restics_default_layout() {
        let id = "ab".repeat(32);
        assert_eq!(object_key("", &Handle::config()), "config");
        assert_eq!(object_key("p/q", &Handle::config()), "p/q/config");
        assert_eq!(
            object_key("p", &Handle::new(FileType::Data, id.clone())),
            format!("p/data/ab/{id}")
        );
        assert_eq!(
            object_key("p", &Handle::new(FileType::Key, "k1")),
            "p/keys/k1"
        );
        assert_eq!(
            object_key("", &Handle::new(FileType::Snapshot, "s")),
            "snapshots/s"
        );
        assert_eq!(
            object_key("", &Handle::new(FileType::Index, "i")),
            "index/i"
        );
        assert_eq!(object_key("", &Handle::new(FileType::Lock, "l")), "locks/l");
    }

    #[test]
    fn regions_from_aws_host_names() {
        for (h, r) in [
            ("s3.amazonaws.com", None),
            ("s3-external-1.amazonaws.com", None),
            ("s3.eu-west-1.amazonaws.com", Some("eu-west-1")),
            ("s3-us-west-2.amazonaws.com", Some("us-west-2")),
            ("s3.dualstack.ap-south-1.amazonaws.com", Some("ap-south-1")),
            ("s3-fips.us-east-2.amazonaws.com", Some("us-east-2")),
            ("s3.cn-north-1.amazonaws.com.cn", Some("cn-north-1")),
            ("minio.example.com", None),
            ("127.0.0.1", None),
        ] {
            assert_eq!(region_from_host(h).as_deref(), r, "{h}");
        }
    }

    fn settings(spec: &str, opts: &[&str]) -> std::result::Result<S3Settings, OpenError> {
        let o = Options::parse(opts).unwrap();
        let creds = S3Credentials {
            key_id: "id".into(),
            secret: "secret".into(),
            session_token: None,
        };
        let s = S3Settings::from_location(spec, &o, creds, false)?;
        o.check_all_read()?;
        Ok(s)
    }

    #[test]
    fn options_are_read_and_checked() {
        let s = settings(
            "http://127.0.0.1:9000/b/p",
            &[
                "s3.region=garage",
                "s3.bucket-lookup=PATH",
                "s3.connections=9",
                "s3.timeout=5s",
                "s3.storage-class=STANDARD_IA",
                "s3.layout=default",
            ],
        )
        .unwrap();
        assert_eq!(s.region.as_deref(), Some("garage"));
        assert_eq!(s.lookup, BucketLookup::Path);
        assert_eq!(s.connections, 9);
        assert_eq!(s.timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.storage_class.as_deref(), Some("STANDARD_IA"));
        let s = settings("s3.eu-central-1.amazonaws.com/b", &[]).unwrap();
        assert_eq!(s.region.as_deref(), Some("eu-central-1"));
        assert_eq!(s.connections, 5);
        assert_eq!(s.timeout, Some(Duration::from_secs(60)));
        assert_eq!(
            s.endpoint.as_str(),
            "https://s3.eu-central-1.amazonaws.com/"
        );
        assert_eq!(settings("h/b", &["s3.timeout=0"]).unwrap().timeout, None);
        assert!(settings("h/b", &["s3.bucket-lookup=x"]).is_err());
        assert!(settings("h/b", &["s3.timeout=soon"]).is_err());
        assert!(settings("h/b", &["s3.layout=s3legacy"]).is_err());
        assert!(settings("h/b", &["s3.unknown=1"]).is_err());
    }

    #[test]
    fn bucket_lookup_auto_is_minio_gos() {
        let url = |spec: &str, opts: &[&str]| {
            let b = S3Backend::new(settings(spec, opts).unwrap());
            b.make_bucket("eu-west-1")
                .unwrap()
                .object_url("config")
                .to_string()
        };
        assert_eq!(
            url("s3.amazonaws.com/bucket/p", &[]),
            "https://bucket.s3.eu-west-1.amazonaws.com/config"
        );
        assert_eq!(
            url("s3.amazonaws.com/my.bucket/p", &[]),
            "https://s3.eu-west-1.amazonaws.com/my.bucket/config"
        );
        assert_eq!(
            url("http://127.0.0.1:3900/bucket", &[]),
            "http://127.0.0.1:3900/bucket/config"
        );
        assert_eq!(
            url("minio.example.com/bucket", &[]),
            "https://minio.example.com/bucket/config"
        );
        assert_eq!(
            url("minio.example.com/bucket", &["s3.bucket-lookup=dns"]),
            "https://bucket.minio.example.com/config"
        );
        assert_eq!(
            url("s3.amazonaws.com/bucket", &["s3.bucket-lookup=path"]),
            "https://s3.eu-west-1.amazonaws.com/bucket/config"
        );
        assert_eq!(
            url("storage.googleapis.com/bucket", &[]),
            "https://bucket.storage.googleapis.com/config"
        );
        // An IP address cannot take a bucket name in front of it.
        let b =
            S3Backend::new(settings("http://127.0.0.1:1/b", &["s3.bucket-lookup=dns"]).unwrap());
        assert!(b.make_bucket("r").is_err());
    }

    #[test]
    fn error_bodies_and_locations() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AuthorizationHeaderMalformed</Code><Message>bad scope &amp; more</Message>
<Region>garage</Region><RequestId>x</RequestId></Error>"#;
        assert_eq!(
            xml_field(body, "Code").as_deref(),
            Some("AuthorizationHeaderMalformed")
        );
        assert_eq!(
            xml_field(body, "Message").as_deref(),
            Some("bad scope & more")
        );
        assert_eq!(xml_field(body, "Region").as_deref(), Some("garage"));
        assert_eq!(xml_field(body, "RequestId").as_deref(), Some("x"));
        assert_eq!(xml_field(body, "Nope"), None);
        let loc = r#"<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-2</LocationConstraint>"#;
        assert_eq!(
            xml_field(loc, "LocationConstraint").as_deref(),
            Some("eu-west-2")
        );
        let empty = r#"<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert_eq!(xml_field(empty, "LocationConstraint").as_deref(), Some(""));
        assert_eq!(normalize_region(""), "us-east-1");
        assert_eq!(normalize_region("EU"), "eu-west-1");
        assert_eq!(normalize_region("garage"), "garage");
    }

    #[test]
    fn content_md5_is_base64_of_the_digest() {
        // RFC 1321's test vector for "abc": 900150983cd24fb0d6963f7d28e17f72.
        assert_eq!(content_md5(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }
}

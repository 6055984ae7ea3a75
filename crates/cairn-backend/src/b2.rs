//! Backblaze B2 (`b2:bucket:prefix`, `b2:bucket`), through B2's S3-compatible API.
//!
//! restic talks to B2 with B2's native API; cairn signs in with the native
//! `b2_authorize_account` (API v3, Basic auth with `B2_ACCOUNT_ID`/`B2_ACCOUNT_KEY`), reads the
//! account's S3 endpoint (`apiInfo.storageApi.s3ApiUrl`, `https://s3.<region>.backblazeb2.com`)
//! and the key's restrictions from the answer, and then drives an [`S3Backend`] at that
//! endpoint with the same key id and key as S3 credentials, the region taken from the
//! endpoint's host name and path-style requests. The object names are the same either way
//! (B2's file names are the S3 keys), so restic's B2 repositories and cairn's are the same
//! files: `prefix/config`, `prefix/keys/ID`, `prefix/data/xx/ID`, ...
//!
//! Settings as restic: `B2_ACCOUNT_ID` (an application key id, or the account id for the
//! master key), `B2_ACCOUNT_KEY`, `-o b2.connections=N` (default 5), and cairn's own
//! `-o b2.timeout=DURATION` (as `s3.timeout`). `CAIRN_B2_AUTHORIZE_URL` replaces the
//! authorize URL (for tests).
//!
//! What the tests exercise, and what they cannot: no B2 endpoint is reachable from the test
//! machines. Unit tests cover location parsing (restic's rules, bucket name checks included),
//! the parsing of authorize answers in both shapes B2 has used for v3 (restrictions directly
//! in `storageApi`, or under `storageApi.allowed`), the bucket and prefix restriction checks
//! and the region derivation. An integration test (tests/s3.rs) answers `b2_authorize_account`
//! from a loopback responder, checks the Basic credentials it was sent, and points `s3ApiUrl`
//! at a real Garage server, then runs the whole conformance suite through `b2:bucket:prefix`
//! (with the region found by asking the server, since a loopback URL names none). Not
//! exercised: Backblaze's own servers — their TLS, their exact S3 dialect (B2 documents path
//! and virtual-host requests, SigV4, Content-MD5, ListObjectsV2; cairn uses only those), and
//! whether a given key has the capabilities the S3 API needs (listFiles, readFiles,
//! writeFiles, deleteFiles): B2 refuses with 403, which is reported with a hint.

use crate::s3::{BucketLookup, S3Backend, S3Credentials, S3Settings};
use crate::{Backend, OpenError, Options};
use std::time::Duration;

const AUTHORIZE_URL: &str = "https://api.backblazeb2.com/b2api/v3/b2_authorize_account";

/// A parsed `b2:` location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct B2Location {
    pub bucket: String,
    pub prefix: String,
}

/// Parses the part after `b2:` as restic 0.14 does: `bucket[:prefix]`, the bucket name
/// checked against B2's rules, the prefix cleaned and made relative.
pub fn parse_location(spec: &str) -> Result<B2Location, String> {
    let bad = |why: &str| format!("invalid B2 location \"b2:{spec}\": {why}");
    let (bucket, prefix) = match spec.split_once(':') {
        Some((b, p)) => (b, Some(p)),
        None => (spec, None),
    };
    if bucket.is_empty() {
        return Err(bad("bucket name not found"));
    }
    if bucket.len() < 6 {
        return Err(bad("bucket name is too short"));
    }
    if bucket.len() > 50 {
        return Err(bad("bucket name is too long"));
    }
    if !bucket
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    {
        return Err(bad(
            "bucket name contains invalid characters, allowed are: a-z, 0-9, dash (-)",
        ));
    }
    let mut prefix = match prefix {
        Some(p) if !p.is_empty() => crate::location::clean_path(p),
        _ => String::new(),
    };
    if let Some(p) = prefix.strip_prefix('/') {
        prefix = p.to_string();
    }
    if prefix == "." {
        prefix.clear();
    }
    Ok(B2Location {
        bucket: bucket.to_string(),
        prefix,
    })
}

/// What `b2_authorize_account` tells cairn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub account_id: String,
    pub s3_api_url: String,
    /// Buckets the key is restricted to (None: any bucket).
    pub allowed_buckets: Option<Vec<String>>,
    /// File name prefix the key is restricted to.
    pub name_prefix: Option<String>,
}

/// Reads an authorize answer (API v3). B2 has put the key's restrictions either directly
/// in `storageApi` (`bucketName`, `namePrefix`) or under `storageApi.allowed`
/// (`buckets: [{id, name}]`, `namePrefix`); both are read.
pub fn parse_authorization(body: &str) -> Result<Authorization, String> {
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| format!("b2_authorize_account: cannot parse the answer: {e}"))?;
    let storage = &v["apiInfo"]["storageApi"];
    let s3_api_url = storage["s3ApiUrl"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("b2_authorize_account: the answer has no apiInfo.storageApi.s3ApiUrl")?
        .to_string();
    let mut allowed_buckets: Option<Vec<String>> = None;
    if let Some(name) = storage["bucketName"].as_str() {
        allowed_buckets = Some(vec![name.to_string()]);
    }
    if let Some(list) = storage["allowed"]["buckets"].as_array() {
        let names: Vec<String> = list
            .iter()
            .filter_map(|b| b["name"].as_str().map(str::to_string))
            .collect();
        if !names.is_empty() {
            allowed_buckets = Some(names);
        }
    }
    let name_prefix = storage["allowed"]["namePrefix"]
        .as_str()
        .or_else(|| storage["namePrefix"].as_str())
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    Ok(Authorization {
        account_id: v["accountId"].as_str().unwrap_or("").to_string(),
        s3_api_url,
        allowed_buckets,
        name_prefix,
    })
}

/// Refuses a location the key may not use, with a message saying why.
pub fn check_allowed(auth: &Authorization, loc: &B2Location) -> Result<(), String> {
    if let Some(buckets) = &auth.allowed_buckets {
        if !buckets.iter().any(|b| b == &loc.bucket) {
            return Err(format!(
                "b2: the application key in $B2_ACCOUNT_ID may only use bucket {}, not {:?}",
                buckets.join(", "),
                loc.bucket
            ));
        }
    }
    if let Some(np) = &auth.name_prefix {
        let p = match loc.prefix.as_str() {
            "" => String::new(),
            p => format!("{p}/"),
        };
        if !p.starts_with(np.as_str()) {
            return Err(format!(
                "b2: the application key in $B2_ACCOUNT_ID may only use file names starting \
                 with {np:?}, but the repository is at {:?}",
                loc.prefix
            ));
        }
    }
    Ok(())
}

/// The region in a B2 S3 endpoint (`https://s3.us-west-004.backblazeb2.com`).
pub fn region_from_s3_url(url: &str) -> Option<String> {
    let host = url::Url::parse(url).ok()?.host_str()?.to_ascii_lowercase();
    let region = host.strip_prefix("s3.")?.strip_suffix(".backblazeb2.com")?;
    (!region.is_empty() && !region.contains('.')).then(|| region.to_string())
}

/// Signs in with the native API and returns what it says. `location` (`b2:...`) is for the
/// error.
pub fn authorize(
    location: &str,
    url: &str,
    key_id: &str,
    key: &str,
    timeout: Option<Duration>,
    http: &crate::http::Http,
) -> Result<Authorization, OpenError> {
    let unreachable = |why: String| OpenError::connect(location, why);
    use base64::Engine;
    let mut b = http
        .agent_builder()
        .timeout_connect(Duration::from_secs(30));
    if let Some(t) = timeout {
        b = b.timeout_read(t);
    }
    let agent = b.build();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{key_id}:{key}"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let res = agent
            .get(url)
            .set("Authorization", &format!("Basic {token}"))
            .call();
        let transient = match res {
            Ok(resp) => {
                let body = resp
                    .into_string()
                    .map_err(|e| unreachable(format!("b2_authorize_account: {e}")))?;
                return parse_authorization(&body).map_err(unreachable);
            }
            Err(ureq::Error::Status(code, resp)) => {
                let body = resp.into_string().unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let said = match (v["code"].as_str(), v["message"].as_str()) {
                    (Some(c), Some(m)) if !m.is_empty() => format!("{c}: {m}"),
                    (Some(c), _) => c.to_string(),
                    _ => String::new(),
                };
                if code == 401 || code == 403 {
                    return Err(OpenError::credentials(
                        location,
                        format!(
                            "b2: $B2_ACCOUNT_ID / $B2_ACCOUNT_KEY were refused by \
                         b2_authorize_account ({code} {said})"
                        ),
                    ));
                }
                if code < 500 && code != 429 {
                    return Err(unreachable(format!(
                        "b2_authorize_account: server answered {code} {said}"
                    )));
                }
                format!("server answered {code} {said}")
            }
            Err(ureq::Error::Transport(t)) => t.to_string(),
        };
        if attempt >= 3 {
            return Err(unreachable(format!(
                "b2_authorize_account at {url}: {transient} (after {attempt} attempts)"
            )));
        }
        std::thread::sleep(Duration::from_secs(attempt));
    }
}

/// Opens `b2:<spec>`: signs in, then returns the S3 backend for the account's endpoint.
pub fn open(spec: &str, opts: &Options) -> std::result::Result<Box<dyn Backend>, OpenError> {
    let location = format!("b2:{spec}");
    let loc = parse_location(spec).map_err(|e| OpenError::bad_location(&location, e))?;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let missing =
        |why: &str| OpenError::credentials(&location, format!("unable to open B2 backend: {why}"));
    let key_id =
        var("B2_ACCOUNT_ID").ok_or_else(|| missing("Account ID ($B2_ACCOUNT_ID) is empty"))?;
    let key = var("B2_ACCOUNT_KEY").ok_or_else(|| missing("Key ($B2_ACCOUNT_KEY) is empty"))?;
    let url = var("CAIRN_B2_AUTHORIZE_URL").unwrap_or_else(|| AUTHORIZE_URL.to_string());
    Ok(Box::new(open_with(spec, &loc, opts, &url, &key_id, &key)?))
}

/// Opens a parsed location with explicit credentials and authorize URL.
pub fn open_with(
    spec: &str,
    loc: &B2Location,
    opts: &Options,
    authorize_url: &str,
    key_id: &str,
    key: &str,
) -> std::result::Result<S3Backend, OpenError> {
    let location = format!("b2:{spec}");
    let connections = opts.get_usize("b2.connections")?.unwrap_or(5);
    let timeout = crate::s3::parse_timeout(opts, "b2.timeout")?;
    let auth = authorize(&location, authorize_url, key_id, key, timeout, opts.http())?;
    // A key limited to other buckets or names cannot serve this location.
    check_allowed(&auth, loc).map_err(|e| OpenError::credentials(&location, e))?;
    let endpoint = url::Url::parse(&auth.s3_api_url).map_err(|e| {
        OpenError::connect(
            &location,
            format!("b2: invalid s3ApiUrl {:?}: {e}", auth.s3_api_url),
        )
    })?;
    let mut hint = "check the key's capabilities (listFiles, readFiles, writeFiles, \
                    deleteFiles) and bucket restriction"
        .to_string();
    if key_id == auth.account_id {
        hint.push_str(
            "; $B2_ACCOUNT_ID is the account id: B2's S3 API may need an application key \
             id instead",
        );
    }
    Ok(S3Backend::new(S3Settings {
        region: region_from_s3_url(&auth.s3_api_url),
        endpoint,
        bucket: loc.bucket.clone(),
        prefix: loc.prefix.clone(),
        lookup: BucketLookup::Path,
        credentials: S3Credentials {
            key_id: key_id.to_string(),
            secret: key.to_string(),
            session_token: None,
        },
        connections,
        timeout,
        storage_class: None,
        label: location,
        denied_hint: Some(hint),
        http: opts.http().clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_as_restic_parses_them() {
        let l = |b: &str, p: &str| B2Location {
            bucket: b.into(),
            prefix: p.into(),
        };
        assert_eq!(parse_location("bucketname").unwrap(), l("bucketname", ""));
        assert_eq!(parse_location("bucketname:").unwrap(), l("bucketname", ""));
        assert_eq!(
            parse_location("bucketname:/prefix/directory/").unwrap(),
            l("bucketname", "prefix/directory")
        );
        assert_eq!(
            parse_location("bucket-1:a//b/../c").unwrap(),
            l("bucket-1", "a/c")
        );
        assert_eq!(
            parse_location("Bucket-name:p:q").unwrap(),
            l("Bucket-name", "p:q")
        );
        for bad in [
            "",
            ":prefix",
            "short",
            "bucket_name",
            "bucket.name",
            &"x".repeat(51),
        ] {
            assert!(parse_location(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn authorize_answers_in_both_v3_shapes() {
        let flat = r#"{"accountId":"1e9c00bc1a31","apiInfo":{"storageApi":{
            "absoluteMinimumPartSize":5000000,"apiUrl":"https://api004.backblazeb2.com",
            "bucketId":"71deb9","bucketName":"rsvp-backup","capabilities":["listFiles"],
            "downloadUrl":"https://f004.backblazeb2.com","infoType":"storageApi",
            "namePrefix":null,"recommendedPartSize":100000000,
            "s3ApiUrl":"https://s3.us-west-004.backblazeb2.com"}},
            "applicationKeyExpirationTimestamp":null,"authorizationToken":"t"}"#;
        let a = parse_authorization(flat).unwrap();
        assert_eq!(a.account_id, "1e9c00bc1a31");
        assert_eq!(a.s3_api_url, "https://s3.us-west-004.backblazeb2.com");
        assert_eq!(a.allowed_buckets, Some(vec!["rsvp-backup".to_string()]));
        assert_eq!(a.name_prefix, None);
        let nested = r#"{"accountId":"acc","authorizationToken":"t","apiInfo":{"storageApi":{
            "s3ApiUrl":"https://s3.eu-central-003.backblazeb2.com",
            "allowed":{"buckets":[{"id":"b1","name":"backups-1"},{"id":"b2","name":"other-2"}],
            "capabilities":["readFiles"],"namePrefix":"hosts/"}}}}"#;
        let a = parse_authorization(nested).unwrap();
        assert_eq!(
            a.allowed_buckets,
            Some(vec!["backups-1".to_string(), "other-2".to_string()])
        );
        assert_eq!(a.name_prefix.as_deref(), Some("hosts/"));
        let open = r#"{"accountId":"a","apiInfo":{"storageApi":{"s3ApiUrl":"http://127.0.0.1:9/",
            "allowed":{"buckets":null,"namePrefix":null}}}}"#;
        let a = parse_authorization(open).unwrap();
        assert_eq!(a.allowed_buckets, None);
        assert_eq!(a.name_prefix, None);
        assert!(parse_authorization(r#"{"apiInfo":{"storageApi":{}}}"#)
            .unwrap_err()
            .contains("s3ApiUrl"));
        assert!(parse_authorization("<html>").is_err());

        // Restrictions.
        let a = parse_authorization(nested).unwrap();
        let loc = |b: &str, p: &str| B2Location {
            bucket: b.into(),
            prefix: p.into(),
        };
        check_allowed(&a, &loc("backups-1", "hosts/h1")).unwrap();
        check_allowed(&a, &loc("other-2", "hosts")).unwrap();
        assert!(check_allowed(&a, &loc("backups-9", "hosts/h1"))
            .unwrap_err()
            .contains("backups-1"));
        assert!(check_allowed(&a, &loc("backups-1", "elsewhere"))
            .unwrap_err()
            .contains("hosts/"));
    }

    #[test]
    fn regions_from_b2_endpoints() {
        assert_eq!(
            region_from_s3_url("https://s3.us-west-004.backblazeb2.com").as_deref(),
            Some("us-west-004")
        );
        assert_eq!(
            region_from_s3_url("https://s3.eu-central-003.backblazeb2.com/").as_deref(),
            Some("eu-central-003")
        );
        assert_eq!(region_from_s3_url("http://127.0.0.1:3900"), None);
        assert_eq!(region_from_s3_url("not a url"), None);
    }

    #[test]
    fn bad_locations_fail_before_signing_in() {
        let err = match open("bad", &Options::default()) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        };
        assert!(matches!(err, OpenError::BadLocation { .. }), "{err}");
        assert!(err.to_string().contains("too short"), "{err}");
    }
}

//! The S3 and B2 backends against a real Garage server started on loopback for each test
//! (and stopped after it): the conformance suite through `s3:` and through `b2:` (with a tiny
//! loopback responder standing in for Backblaze's b2_authorize_account), listings across
//! pages, bucket creation, region discovery and how refused credentials are reported.

mod suite;

use cairn_backend::s3::{S3Backend, S3Credentials};
use cairn_backend::{Backend, BackendError, FileType, Handle, Options};
use cairn_testsupport::garage::Garage;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use suite::conformance;

fn creds(g: &Garage) -> S3Credentials {
    S3Credentials {
        key_id: g.access_key_id().into(),
        secret: g.secret_access_key().into(),
        session_token: None,
    }
}

/// An S3 backend on the Garage server with explicit credentials (no process environment).
fn s3(g: &Garage, prefix: &str, opts: &[&str]) -> S3Backend {
    let loc = g.location(prefix);
    let spec = loc.strip_prefix("s3:").unwrap();
    let o = Options::parse(opts).unwrap();
    let b = S3Backend::open_with_credentials(spec, &o, creds(g)).expect("open s3 backend");
    o.check_all_read().unwrap();
    b
}

#[test]
fn s3_backend_conforms_against_garage() {
    let Some(g) = Garage::start() else {
        return;
    };
    let be = s3(&g, "repo", &["s3.region=garage"]);
    conformance(&be);
    // restic's layout, object by object: the config, and data one level down.
    assert_eq!(be.key(&Handle::config()), "repo/config");
    let other = s3(&g, "repo/deeper", &["s3.region=garage"]);
    assert!(!other.exists().unwrap());
    assert!(other.list(FileType::Snapshot).unwrap().is_empty());
    // A listing of the parent repository does not see the nested one's files, nor the
    // other way round.
    other.save(&Handle::config(), b"nested").unwrap();
    assert_eq!(be.load(&Handle::config(), 0, 0).unwrap(), b"config bytes");
}

#[test]
fn region_is_found_by_asking_the_server() {
    // No region given: as minio-go, cairn asks GetBucketLocation signed for us-east-1, and
    // Garage names its region ("garage") in the error it answers.
    let Some(g) = Garage::start() else {
        return;
    };
    let be = s3(&g, "found", &[]);
    assert_eq!(be.region().unwrap(), "garage");
    be.create().unwrap();
    be.save(&Handle::config(), b"c").unwrap();
    assert!(be.exists().unwrap());
}

#[test]
fn create_makes_a_missing_bucket_as_restic_does() {
    let Some(g) = Garage::start() else {
        return;
    };
    let spec = format!("{}/fresh-bucket/p", g.endpoint());
    let o = Options::parse(&["s3.region=garage"]).unwrap();
    let be = S3Backend::open_with_credentials(&spec, &o, creds(&g)).unwrap();
    assert!(!be.exists().unwrap(), "no bucket, no repository");
    assert!(be.list(FileType::Key).unwrap().is_empty());
    // Saving into a bucket that does not exist is a permanent error naming the bucket.
    match be.save(&Handle::new(FileType::Key, "k"), b"x") {
        Err(BackendError::Io { err, .. }) => {
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("fresh-bucket"), "{err}");
        }
        other => panic!("save into a missing bucket gave {other:?}"),
    }
    be.create().unwrap();
    be.create().unwrap();
    be.save(&Handle::new(FileType::Key, "k"), b"x").unwrap();
    assert_eq!(be.list(FileType::Key).unwrap().len(), 1);
}

#[test]
fn listings_follow_continuation_tokens() {
    let Some(g) = Garage::start() else {
        return;
    };
    let be = Arc::new(s3(&g, "many", &["s3.region=garage"]));
    be.create().unwrap();
    // More than the 1000 keys a page holds, saved by a few threads.
    let n = 1010usize;
    let next = Arc::new(Mutex::new(0usize));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let be = be.clone();
            let next = next.clone();
            std::thread::spawn(move || loop {
                let i = {
                    let mut n2 = next.lock().unwrap();
                    *n2 += 1;
                    *n2 - 1
                };
                if i >= n {
                    return;
                }
                let name = format!("{i:064x}");
                be.save(&Handle::new(FileType::Snapshot, name), &vec![1u8; i % 7])
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let check = |list: Vec<cairn_backend::FileInfo>| {
        let mut list = list;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(list.len(), n);
        for (i, f) in list.iter().enumerate() {
            assert_eq!(f.name, format!("{i:064x}"));
            assert_eq!(f.size, (i % 7) as u64);
        }
    };
    // The server's own page size (1000 keys), then small pages.
    check(be.list(FileType::Snapshot).unwrap());
    let small = s3(&g, "many", &["s3.region=garage"]).with_list_page(97);
    check(small.list(FileType::Snapshot).unwrap());
    // Data files are one level down and listed across pages too.
    for i in 0..25u32 {
        let name = format!("{:02x}{}", i, "0".repeat(62));
        small
            .save(&Handle::new(FileType::Data, name), &i.to_le_bytes())
            .unwrap();
    }
    let small = s3(&g, "many", &["s3.region=garage"]).with_list_page(4);
    let data = small.list(FileType::Data).unwrap();
    assert_eq!(data.len(), 25);
    assert!(data.iter().all(|f| f.size == 4 && f.name.len() == 64));
}

#[test]
fn a_wrong_secret_is_a_clear_permission_error() {
    let Some(g) = Garage::start() else {
        return;
    };
    let loc = g.location("repo");
    let spec = loc.strip_prefix("s3:").unwrap();
    let wrong = S3Credentials {
        key_id: g.access_key_id().into(),
        secret: "0".repeat(64),
        session_token: None,
    };
    let o = Options::parse(&["s3.region=garage"]).unwrap();
    let be = S3Backend::open_with_credentials(spec, &o, wrong).unwrap();
    for err in [
        be.exists().unwrap_err(),
        be.save(&Handle::config(), b"x").unwrap_err(),
        be.list(FileType::Snapshot).unwrap_err(),
    ] {
        match &err {
            BackendError::Io { err: e, .. } => {
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
            }
            other => panic!("wrong secret gave {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("403") && msg.contains("AWS_SECRET_ACCESS_KEY"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
    // Through the retry decorator it fails at once rather than retrying for minutes.
    let started = std::time::Instant::now();
    let be = cairn_backend::retry::RetryBackend::new(
        S3Backend::open_with_credentials(
            spec,
            &o,
            S3Credentials {
                key_id: "GK000000000000000000000000".into(),
                secret: "0".repeat(64),
                session_token: None,
            },
        )
        .unwrap(),
        cairn_backend::retry::Policy::default(),
    );
    assert!(be.exists().is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// One process-wide lock for the tests that set environment variables.
static ENV: Mutex<()> = Mutex::new(());

#[test]
fn credentials_and_region_from_the_environment() {
    let Some(g) = Garage::start() else {
        return;
    };
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    // The only test in this binary that touches the environment; the others pass
    // credentials explicitly, so none of them reads it while it changes.
    for (k, v) in g.env() {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_SESSION_TOKEN");
    let be = cairn_backend::open(&g.location("from-env")).expect("open with env credentials");
    assert_eq!(be.location(), g.location("from-env"));
    be.create().unwrap();
    be.save(&Handle::config(), b"env").unwrap();
    assert!(be.exists().unwrap());
    // `-o` options are checked: a typo is refused, a known key accepted.
    let o = Options::parse(&["s3.conections=3"]).unwrap();
    let err = cairn_backend::open_with(&g.location("from-env"), &o)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("s3.conections"), "{err}");
    let o = Options::parse(&["s3.connections=3", "s3.timeout=10s"]).unwrap();
    let be = cairn_backend::open_with(&g.location("from-env"), &o).unwrap();
    assert_eq!(be.connections(), 3);
    // Missing credentials: one line naming the variables.
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    let err = cairn_backend::open(&g.location("x"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    let err = cairn_backend::open(&g.location("x"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("AWS_ACCESS_KEY_ID") && err.contains("AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    std::env::remove_var("AWS_DEFAULT_REGION");
}

/// A loopback stand-in for Backblaze's b2_authorize_account: answers with `s3ApiUrl`
/// pointing at the Garage server, after checking the Basic credentials it was sent.
struct FakeB2 {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeB2 {
    fn start(s3_url: String, key_id: String, key: String, allowed: Option<&str>) -> FakeB2 {
        use base64::Engine;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{key_id}:{key}"))
        );
        let allowed = allowed
            .map(|b| {
                format!(r#","allowed":{{"buckets":[{{"id":"x","name":"{b}"}}],"namePrefix":null}}"#)
            })
            .unwrap_or_default();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut auth = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = v.trim().to_string();
                        }
                    }
                }
                seen2.lock().unwrap().push(request_line.trim().to_string());
                let (status, body) = if !request_line
                    .starts_with("GET /b2api/v3/b2_authorize_account ")
                {
                    (
                        "404 Not Found",
                        r#"{"status":404,"code":"not_found","message":""}"#.to_string(),
                    )
                } else if auth != want {
                    (
                        "401 Unauthorized",
                        r#"{"status":401,"code":"unauthorized","message":"bad key"}"#.to_string(),
                    )
                } else {
                    (
                        "200 OK",
                        format!(
                            r#"{{"accountId":"acct","authorizationToken":"tok","apiInfo":{{"storageApi":{{"apiUrl":"http://127.0.0.1:1","downloadUrl":"http://127.0.0.1:1","s3ApiUrl":"{s3_url}","infoType":"storageApi"{allowed}}}}}}}"#
                        ),
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeB2 { port, seen }
    }

    fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/b2api/v3/b2_authorize_account",
            self.port
        )
    }
}

#[test]
fn b2_backend_conforms_through_garages_s3_api() {
    let Some(g) = Garage::start() else {
        return;
    };
    let fake = FakeB2::start(
        g.endpoint(),
        g.access_key_id().into(),
        g.secret_access_key().into(),
        Some(g.bucket()),
    );
    let spec = format!("{}:b2repo/sub", g.bucket());
    let loc = cairn_backend::b2::parse_location(&spec).unwrap();
    let o = Options::parse(&["b2.connections=3"]).unwrap();
    let be = cairn_backend::b2::open_with(
        &spec,
        &loc,
        &o,
        &fake.url(),
        g.access_key_id(),
        g.secret_access_key(),
    )
    .expect("open b2 backend");
    o.check_all_read().unwrap();
    assert_eq!(be.location(), format!("b2:{spec}"));
    assert_eq!(be.connections(), 3);
    conformance(&be);
    // The files are where restic's B2 backend puts them: the same names as over S3.
    let via_s3 = s3(&g, "b2repo/sub", &["s3.region=garage"]);
    assert_eq!(
        via_s3.load(&Handle::config(), 0, 0).unwrap(),
        b"config bytes"
    );
    assert_eq!(via_s3.list(FileType::Snapshot).unwrap().len(), 5);
    assert!(fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .all(|l| l.starts_with("GET /b2api/v3/b2_authorize_account ")));

    // A refused key, and a key restricted to another bucket, are one-line errors.
    let err = cairn_backend::b2::open_with(&spec, &loc, &o, &fake.url(), "wrong", "key")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("B2_ACCOUNT_ID") && err.contains("401"),
        "{err}"
    );
    let other = cairn_backend::b2::parse_location("other-bucket:p").unwrap();
    let err = cairn_backend::b2::open_with(
        "other-bucket:p",
        &other,
        &o,
        &fake.url(),
        g.access_key_id(),
        g.secret_access_key(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(g.bucket()) && err.contains("other-bucket"),
        "{err}"
    );
}

#[test]
fn b2_location_through_open_with_the_environment() {
    let Some(g) = Garage::start() else {
        return;
    };
    let fake = FakeB2::start(
        g.endpoint(),
        g.access_key_id().into(),
        g.secret_access_key().into(),
        None,
    );
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("CAIRN_B2_AUTHORIZE_URL", fake.url());
    std::env::set_var("B2_ACCOUNT_ID", g.access_key_id());
    std::env::set_var("B2_ACCOUNT_KEY", g.secret_access_key());
    let loc = format!("b2:{}:viaenv", g.bucket());
    let be = cairn_backend::open(&loc).expect("open b2: location");
    be.create().unwrap();
    be.save(&Handle::config(), b"b2").unwrap();
    assert!(be.exists().unwrap());
    std::env::remove_var("B2_ACCOUNT_KEY");
    let err = cairn_backend::open(&loc).err().unwrap().to_string();
    assert!(err.contains("B2_ACCOUNT_KEY"), "{err}");
    std::env::remove_var("B2_ACCOUNT_ID");
    std::env::remove_var("CAIRN_B2_AUTHORIZE_URL");
}

#[test]
fn a_stalled_server_is_noticed_after_the_idle_timeout() {
    // Accepts connections and never answers: -o s3.timeout bounds the wait, and the error is
    // one the retry decorator retries (the server may come back).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let held2 = held.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            held2.lock().unwrap().push(s);
        }
    });
    let o = Options::parse(&["s3.region=garage", "s3.timeout=1s"]).unwrap();
    let be = S3Backend::open_with_credentials(
        &format!("http://127.0.0.1:{port}/bucket/p"),
        &o,
        S3Credentials {
            key_id: "k".into(),
            secret: "s".into(),
            session_token: None,
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = be.stat(&Handle::config()).unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(10),
        "{took:?}"
    );
    assert!(cairn_backend::retry::is_transient(&err), "{err}");
}

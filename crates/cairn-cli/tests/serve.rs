//! `cairn serve` with real clients: restic 0.14, restic 0.18 and cairn back up through it,
//! check and restore; append-only mode stops `forget --prune`; htpasswd users (bcrypt and
//! {SHA}) and private repositories; TLS with a self-signed certificate; and raw HTTP for
//! what no honest client sends (path traversal, wrong hashes, oversized and stalled uploads).

mod common;

use common::{compare_dirs, make_corpus, restored, CompareOptions, Run, TempDir, Tool};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `cairn serve` on a free loopback port, stopped when dropped.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(path: &Path, args: &[&str]) -> Serve {
        let port = cairn_testsupport::free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(common::cairn_bin())
            .arg("serve")
            .arg("--path")
            .arg(path)
            .arg("--listen")
            .arg(&listen)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn serve");
        cairn_testsupport::wait_for_port(port, "cairn serve");
        Serve { child, port }
    }

    /// `rest:http://[USERINFO@]127.0.0.1:PORT/REPO/`
    fn url(&self, userinfo: Option<&str>, repo: &str) -> PathBuf {
        let ui = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        PathBuf::from(format!("rest:http://{ui}127.0.0.1:{}/{repo}", self.port))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn restic_018(repo: &Path, password: &str) -> Option<Tool> {
    let prog = cairn_testsupport::restic_018()?;
    Some(Tool {
        prog,
        repo: repo.to_path_buf(),
        password: password.into(),
        is_restic: true,
        no_lock: false,
    })
}

/// An answer to a raw request: status code, header block (lowercased) and body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Sends `req` as is (the caller writes the request line and headers; a `Connection: close`
/// is added) and reads the whole answer.
fn raw(port: u16, req: &[u8]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let text = String::from_utf8_lossy(req);
    let mut out = Vec::new();
    if let Some((head, body)) = text.split_once("\r\n\r\n") {
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let skip = head.len() + 4;
        out.extend_from_slice(&req[skip..]);
        let _ = body;
    } else {
        out.extend_from_slice(req);
    }
    s.write_all(&out).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_answer(&buf)
}

fn parse_answer(buf: &[u8]) -> Answer {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = buf.get(split + 4..).unwrap_or(&[]).to_vec();
    Answer { status, head, body }
}

fn get(port: u16, path: &str, headers: &str) -> Answer {
    raw(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes(),
    )
}

fn post(port: u16, path: &str, body: &[u8]) -> Answer {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    raw(port, &r)
}

fn sha256_hex(b: &[u8]) -> String {
    // The same SHA-256 restic names files by; sha256sum avoids a dev-dependency.
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// Every file below `dir`, relative, sorted, with its size.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, md.len()));
            }
        }
    }
    out.sort();
    out
}

fn bcrypt_line(user: &str, pass: &str) -> String {
    // htpasswd -B writes $2y$; the algorithm is the same, and cost 5 keeps the test quick.
    let h = bcrypt::hash(pass, 5).unwrap().replacen("$2b$", "$2y$", 1);
    format!("{user}:{h}\n")
}

fn sha_line(user: &str, pass: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf %s '{pass}' | openssl dgst -sha1 -binary | openssl base64 -A"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl for a {{SHA}} hash");
    format!(
        "{user}:{{SHA}}{}\n",
        String::from_utf8_lossy(&out.stdout).trim()
    )
}

fn small_corpus(t: &TempDir) -> PathBuf {
    let src = t.join("src");
    make_corpus(&src, 6, 12);
    src
}

/// init, backup, check --read-data, restore and compare, with one client.
fn round_trip(tool: &Tool, src: &Path, out: &Path, what: &str) {
    tool.run(&["init"]).ok();
    tool.run(&["backup", src.to_str().unwrap()]).ok();
    tool.run(&["check", "--read-data"]).ok();
    tool.run(&["restore", "latest", "--target", out.to_str().unwrap()])
        .ok();
    let diffs = compare_dirs(src, &restored(out, src), CompareOptions::default());
    // restic 0.14 cannot store a symlink target that is not UTF-8 (nothing to do with
    // the server).
    let excused = tool.is_restic && common::only_symlinks_differ(&diffs);
    assert!(
        diffs.is_empty() || excused,
        "{what}: restore differs: {diffs:?}"
    );
}

#[test]
fn restic_014_018_and_cairn_back_up_through_it() {
    require_restic!();
    let t = TempDir::new("serve-clients");
    let src = small_corpus(&t);
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut ht = bcrypt_line("alice", "wonder land");
    ht.push_str(&sha_line("bob", "builder"));
    std::fs::write(data.join(".htpasswd"), ht).unwrap();
    let s = Serve::start(&data, &[]);

    // restic 0.14 as alice (bcrypt), at the top of a sub-repository.
    let r14 = Tool::restic(&s.url(Some("alice:wonder%20land"), "r14/"), "pw14");
    round_trip(&r14, &src, &t.join("out14"), "restic 0.14");

    // cairn as bob ({SHA}), two folders deep.
    let c = Tool::cairn(&s.url(Some("bob:builder"), "bob/cairn/"), "pwc");
    round_trip(&c, &src, &t.join("outc"), "cairn");

    // restic 0.18 with credentials from the environment, at the top level.
    if let Some(r18) = restic_018(&s.url(None, ""), "pw18") {
        let env = [
            ("RESTIC_REST_USERNAME", "bob"),
            ("RESTIC_REST_PASSWORD", "builder"),
        ];
        let out = t.join("out18");
        for args in [
            vec!["init"],
            vec!["backup", src.to_str().unwrap()],
            vec!["check", "--read-data"],
            vec!["restore", "latest", "--target", out.to_str().unwrap()],
        ] {
            r18.run_env(None, &env, &args).ok();
        }
        let diffs = compare_dirs(&src, &restored(&out, &src), CompareOptions::default());
        assert!(diffs.is_empty(), "restic 0.18: restore differs: {diffs:?}");
        // cairn reads what restic 0.18 wrote, through the server.
        let c18 = Tool::cairn(&s.url(Some("bob:builder"), ""), "pw18");
        c18.run(&["check", "--read-data"]).ok();
    }

    // The files are in restic's layout on disk, with nothing left over.
    assert!(data.join("r14/config").is_file());
    assert!(data.join("bob/cairn/keys").is_dir());
    let left: Vec<_> = listing(&data)
        .into_iter()
        .filter(|(p, _)| p.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // A wrong password and no password are both 401 with a challenge.
    let bad = Tool::restic(&s.url(Some("alice:wrong"), "r14/"), "pw14");
    assert_ne!(bad.run(&["snapshots"]).code, Some(0));
    let a = get(s.port, "/r14/config", "");
    assert_eq!(a.status, 401);
    assert!(a.head.contains("www-authenticate: basic"), "{}", a.head);
}

#[test]
fn append_only_refuses_forget_prune_and_deletes_nothing() {
    let t = TempDir::new("serve-append");
    let src = small_corpus(&t);
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut clients: Vec<(&str, Tool)> = Vec::new();
    {
        let s = Serve::start(&data, &["--no-auth"]);
        clients.push(("cairn", Tool::cairn(&s.url(None, "c/"), "pw")));
        if let Some(r) = restic_018(&s.url(None, "r/"), "pw") {
            clients.push(("restic 0.18", r));
        }
        for (_, tool) in &clients {
            tool.run(&["init"]).ok();
            tool.run(&["backup", src.to_str().unwrap()]).ok();
            std::fs::write(src.join("new-file"), b"second snapshot").unwrap();
            tool.run(&["backup", src.to_str().unwrap()]).ok();
            std::fs::remove_file(src.join("new-file")).unwrap();
        }
    }
    let port;
    {
        let s = Serve::start(&data, &["--no-auth", "--append-only"]);
        port = s.port;
        for (name, tool) in &clients {
            let tool = Tool {
                repo: s.url(
                    None,
                    tool.repo.to_str().unwrap().rsplit('/').nth(1).unwrap(),
                ),
                ..tool.clone()
            };
            let before = listing(&data);
            let r = tool.run(&["forget", "--keep-last", "1", "--prune"]);
            assert_ne!(
                r.code,
                Some(0),
                "{name}: forget --prune succeeded in append-only mode"
            );
            // Nothing but lock files may go or change (restic 0.18's prune stores its
            // repacked packs and new index before it tries to delete and is refused).
            let after = listing(&data);
            let gone: Vec<_> = before
                .iter()
                .filter(|f| !f.0.contains("locks/") && !after.contains(f))
                .collect();
            assert!(
                gone.is_empty(),
                "{name}: files deleted or changed: {gone:?}"
            );
            assert_eq!(tool.snapshot_ids().len(), 2, "{name}");
            // A third snapshot can still be added.
            tool.run(&["backup", src.to_str().unwrap()]).ok();
            assert_eq!(tool.snapshot_ids().len(), 3, "{name}");
        }
        // Raw: deleting a key or the config is forbidden, a lock is not.
        let key = std::fs::read_dir(data.join("c/keys"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .file_name();
        let key = key.to_str().unwrap();
        let del = |p: &str| {
            raw(
                port,
                format!("DELETE {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            )
            .status
        };
        assert_eq!(del(&format!("/c/keys/{key}")), 403);
        assert_eq!(del("/c/config"), 403);
        assert_eq!(del(&format!("/c/locks/{}", "ab".repeat(32))), 200);
        assert!(data.join("c/keys").join(key).exists());
    }
    // Without --append-only the same prune works.
    let s = Serve::start(&data, &["--no-auth"]);
    for (name, tool) in &clients {
        let tool = Tool {
            repo: s.url(
                None,
                tool.repo.to_str().unwrap().rsplit('/').nth(1).unwrap(),
            ),
            ..tool.clone()
        };
        tool.run(&["forget", "--keep-last", "1", "--prune"]).ok();
        assert_eq!(tool.snapshot_ids().len(), 1, "{name}");
        tool.run(&["check"]).ok();
    }
}

#[test]
fn private_repositories_keep_users_apart() {
    let t = TempDir::new("serve-private");
    let src = small_corpus(&t);
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let ht = t.join("users");
    let mut text = bcrypt_line("alice", "a-pass");
    text.push_str(&sha_line("bob", "b-pass"));
    std::fs::write(&ht, text).unwrap();
    let s = Serve::start(
        &data,
        &[
            "--private-repos",
            "--htpasswd-file",
            ht.to_str().unwrap(),
            "--prometheus",
        ],
    );
    let alice = Tool::cairn(&s.url(Some("alice:a-pass"), "alice/laptop/"), "pw");
    alice.run(&["init"]).ok();
    alice.run(&["backup", src.to_str().unwrap()]).ok();

    // bob can neither read nor write below /alice/.
    let bob_in_alice = Tool::cairn(&s.url(Some("bob:b-pass"), "alice/laptop/"), "pw");
    assert_ne!(bob_in_alice.run(&["snapshots"]).code, Some(0));
    let bob_new = Tool::cairn(&s.url(Some("bob:b-pass"), "alice/other/"), "pw");
    assert_ne!(bob_new.run(&["init"]).code, Some(0));
    assert!(!data.join("alice/other").exists());
    let basic = |u: &str| {
        use std::process::Command;
        let o = Command::new("base64")
            .arg("-w0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut o = o;
        o.stdin.take().unwrap().write_all(u.as_bytes()).unwrap();
        format!(
            "Authorization: Basic {}\r\n",
            String::from_utf8(o.wait_with_output().unwrap().stdout).unwrap()
        )
    };
    assert_eq!(
        get(s.port, "/alice/laptop/config", &basic("bob:b-pass")).status,
        401
    );
    assert_eq!(
        get(s.port, "/alice/laptop/keys/", &basic("bob:b-pass")).status,
        401
    );
    assert_eq!(
        get(s.port, "/alice/laptop/config", &basic("alice:a-pass")).status,
        200
    );
    assert_eq!(get(s.port, "/config", &basic("alice:a-pass")).status, 401);
    // A user named like a folder of someone else's cannot get there by encoding either.
    assert_eq!(
        get(
            s.port,
            "/bob/..%2falice/laptop/config",
            &basic("bob:b-pass")
        )
        .status,
        400
    );
    // bob's own repository works.
    let bob = Tool::cairn(&s.url(Some("bob:b-pass"), "bob/"), "pw");
    bob.run(&["init"]).ok();
    bob.run(&["snapshots"]).ok();
    // With private repositories, only the user "metrics" may read /metrics.
    assert_eq!(get(s.port, "/metrics", &basic("alice:a-pass")).status, 401);

    // The htpasswd file is reread when it changes: bob is gone, even with his password
    // still remembered from a moment ago.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&ht, bcrypt_line("alice", "a-pass")).unwrap();
    let start = Instant::now();
    while get(s.port, "/bob/config", &basic("bob:b-pass")).status != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "htpasswd not reloaded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        get(s.port, "/alice/laptop/config", &basic("alice:a-pass")).status,
        200
    );
}

#[test]
fn tls_with_a_self_signed_certificate() {
    let Some(restic18) = cairn_testsupport::restic_018() else {
        return;
    };
    let t = TempDir::new("serve-tls");
    let src = small_corpus(&t);
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let (cert, key) = (t.join("cert.pem"), t.join("key.pem"));
    let r = common::run_cmd(
        "openssl".as_ref(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]
        .map(std::ffi::OsStr::new),
        &[],
        None,
    );
    r.ok();
    let s = Serve::start(
        &data,
        &[
            "--no-auth",
            "--tls",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let repo = PathBuf::from(format!("rest:https://127.0.0.1:{}/tls/", s.port));
    let tool = Tool {
        prog: restic18,
        repo,
        password: "pw".into(),
        is_restic: true,
        no_lock: false,
    };
    let ca = cert.to_str().unwrap();
    tool.run(&["--cacert", ca, "init"]).ok();
    tool.run(&["--cacert", ca, "backup", src.to_str().unwrap()])
        .ok();
    tool.run(&["--cacert", ca, "check", "--read-data"]).ok();
    // A second client: curl, which refuses the server unless it trusts the certificate
    // (restic would retry that for 15 minutes).
    let url = format!("https://127.0.0.1:{}/tls/keys/", s.port);
    let untrusted = common::run_cmd(
        "curl".as_ref(),
        &["-sS", &url].map(std::ffi::OsStr::new),
        &[],
        None,
    );
    assert_ne!(untrusted.code, Some(0));
    let c: Run = common::run_cmd(
        "curl".as_ref(),
        &[
            "-sS",
            "--cacert",
            ca,
            "-H",
            "Accept: application/vnd.x.restic.rest.v2",
            &url,
        ]
        .map(std::ffi::OsStr::new),
        &[],
        None,
    )
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    // cairn as the client: refused without the certificate (one clear error, no 15-minute
    // retry), reading restic's backup with it.
    let cairn = Tool::cairn(&tool.repo, "pw");
    let err = cairn
        .run(&["-o", "retry.max-elapsed=0", "snapshots"])
        .expect_code(1)
        .stderr_str();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    cairn.run(&["--cacert", ca, "check", "--read-data"]).ok();
    // Plain HTTP on the TLS port gets nothing useful.
    let a = get(s.port, "/tls/config", "");
    assert_ne!(a.status, 200);
}

#[test]
fn hostile_requests_are_refused() {
    let t = TempDir::new("serve-hostile");
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(t.join("secret"), b"TOP SECRET").unwrap();
    std::fs::write(data.join(".htpasswd"), b"nobody:{SHA}x\n").unwrap();
    let s = Serve::start(
        &data,
        &[
            "--no-auth",
            "--max-size",
            "100000",
            "--log",
            t.join("access.log").to_str().unwrap(),
        ],
    );
    let p = s.port;
    assert_eq!(post(p, "/?create=true", b"").status, 200);
    assert_eq!(post(p, "/", b"").status, 400);
    assert_eq!(post(p, "/config", b"cfg").status, 200);
    assert_eq!(post(p, "/config", b"cfg2").status, 403);

    // Traversal in every spelling: never 2xx, never the secret.
    for path in [
        "/../secret",
        "/../../etc/passwd",
        "/data/../config",
        "/data/../../secret",
        "/%2e%2e/secret",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/data%2f..%2f..%2fsecret",
        "/..%2fsecret",
        "/..%5csecret",
        "/a\\..\\..\\secret",
        "/%00/config",
        "//etc/passwd",
        "/etc/passwd",
        "/.htpasswd",
        "/data/.htpasswd",
        "/keys/../../secret",
        "/a/b/c/config",
        &format!("/data/{}", "A".repeat(64)),
        &format!("/data/{}", "a".repeat(63)),
        &format!("/data/{}", "a".repeat(65)),
        "/data/zz",
        "/config%00",
        "/nonsense/",
    ] {
        for method in ["GET", "HEAD", "DELETE"] {
            let a = raw(
                p,
                format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            );
            assert!(
                (400..500).contains(&a.status),
                "{method} {path}: {} {}",
                a.status,
                a.head
            );
            assert!(!String::from_utf8_lossy(&a.body).contains("SECRET"));
        }
        let a = post(p, path, b"x");
        assert!((400..500).contains(&a.status), "POST {path}: {}", a.status);
    }
    assert!(t.join("secret").exists());
    assert!(data.join(".htpasswd").exists());
    // Garbage instead of HTTP.
    let a = raw(p, b"\x00\x01GARBAGE\r\n\r\n");
    assert!(a.status == 0 || (400..500).contains(&a.status));
    let a = raw(
        p,
        b"GET /config HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    );
    assert!(a.status == 0 || (400..500).contains(&a.status));

    // Uploads: the name must be the content's SHA-256.
    let body = b"some key file".to_vec();
    let id = sha256_hex(&body);
    let wrong = sha256_hex(b"something else");
    assert_eq!(post(p, &format!("/keys/{wrong}"), &body).status, 400);
    assert_eq!(get(p, &format!("/keys/{wrong}"), "").status, 404);
    assert_eq!(post(p, &format!("/keys/{id}"), &body).status, 200);
    assert_eq!(post(p, &format!("/keys/{id}"), &body).status, 403);
    let a = get(p, &format!("/keys/{id}"), "");
    assert_eq!((a.status, a.body.as_slice()), (200, body.as_slice()));
    let a = get(p, &format!("/keys/{id}"), "Range: bytes=5-7\r\n");
    assert_eq!(a.status, 206);
    assert_eq!(a.body, b"key");
    assert!(a
        .head
        .contains(&format!("content-range: bytes 5-7/{}", body.len())));
    assert_eq!(
        get(p, &format!("/keys/{id}"), "Range: bytes=99-\r\n").status,
        416
    );
    let a = raw(
        p,
        format!("HEAD /keys/{id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    assert!(
        a.head.contains(&format!("content-length: {}", body.len())),
        "{}",
        a.head
    );

    // Listings, v1 and v2.
    let a = get(p, "/keys/", "");
    assert!(a
        .head
        .contains("content-type: application/vnd.x.restic.rest.v1"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&a.body).unwrap(),
        serde_json::json!([id])
    );
    let a = get(p, "/keys/", "Accept: application/vnd.x.restic.rest.v2\r\n");
    assert!(a
        .head
        .contains("content-type: application/vnd.x.restic.rest.v2"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&a.body).unwrap(),
        serde_json::json!([{"name": id, "size": body.len()}])
    );
    let a = raw(
        p,
        b"PUT /config HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(a.status, 405);
    assert!(a.head.contains("allow: head, get, post, delete"));

    // --max-size: a body that would not fit is refused, declared or not, and not kept.
    let big = vec![7u8; 150_000];
    let big_id = sha256_hex(&big);
    assert_eq!(post(p, &format!("/data/{big_id}"), &big).status, 507);
    let mut chunked =
        format!("POST /data/{big_id} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for c in big.chunks(10_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        chunked.extend_from_slice(c);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(p, &chunked).status, 507);
    assert_eq!(get(p, &format!("/data/{big_id}"), "").status, 404);
    let left: Vec<_> = listing(&data)
        .into_iter()
        .filter(|(n, _)| n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Something small still fits.
    let small = vec![1u8; 1000];
    assert_eq!(
        post(p, &format!("/data/{}", sha256_hex(&small)), &small).status,
        200
    );

    let log = std::fs::read_to_string(t.join("access.log")).unwrap();
    assert!(
        log.contains(&format!("\"POST /keys/{id} HTTP/1.1\" 200 0")),
        "{log}"
    );
}

#[test]
fn stalled_and_idle_connections_time_out() {
    let t = TempDir::new("serve-stall");
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let s = Serve::start(
        &data,
        &[
            "--no-auth",
            "--idle-timeout",
            "1",
            "--header-timeout",
            "2",
            "--prometheus",
            "--prometheus-no-auth",
        ],
    );
    assert_eq!(post(s.port, "/?create=true", b"").status, 200);
    let id = "ab".repeat(32);

    // An upload that stops after 10 of 1000 bytes.
    let start = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(
        format!("POST /data/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
            .as_bytes(),
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "stalled upload held for {took:?}"
    );
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // Nothing of it is visible or left behind.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(s.port, &format!("/data/{id}"), "").status, 404);
    let files = listing(&data);
    assert!(
        files
            .iter()
            .all(|(n, _)| n == "config" || !n.starts_with("data")),
        "{files:?}"
    );

    // A connection that says nothing, and one that dribbles its headers.
    for first in [&b""[..], b"GET /config HTTP/1.1\r\n"] {
        let start = Instant::now();
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(first).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        assert!(start.elapsed() < Duration::from_secs(15));
    }
    // The server is still fine, and counted nothing for the failed upload.
    let m = get(s.port, "/metrics", "");
    assert_eq!(m.status, 200);
    assert!(!String::from_utf8_lossy(&m.body).contains("type=\"data\""));
    let ok = b"fine".to_vec();
    let ok_id = sha256_hex(&ok);
    assert_eq!(post(s.port, &format!("/data/{ok_id}"), &ok).status, 200);
    let m = get(s.port, "/metrics", "");
    assert!(String::from_utf8_lossy(&m.body)
        .contains("rest_server_blob_write_bytes_total{repo=\"\",type=\"data\",user=\"\"} 4"));
}

/// An `Authorization` header line for a raw request.
fn basic_auth(user_pass: &str) -> String {
    use base64::Engine;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// How many sockets `pid` has open (its listener, connections and the runtime's own).
fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .map(|l| l.to_string_lossy().starts_with("socket:"))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn htpasswd_is_reread_on_sighup() {
    let t = TempDir::new("serve-sighup");
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let ht = t.join("users");
    // {SHA} lines of one length for bob and eve: the file's size stays the same when one
    // replaces the other.
    let alice = sha_line("alice", "a-pass");
    let bob = sha_line("bob", "b-pass");
    let eve = sha_line("eve", "e-pass");
    assert_eq!(bob.len(), eve.len());
    std::fs::write(&ht, format!("{alice}{bob}")).unwrap();
    let s = Serve::start(&data, &["--htpasswd-file", ht.to_str().unwrap()]);
    let alice_repo = Tool::cairn(&s.url(Some("alice:a-pass"), "shared/"), "pw");
    alice_repo.run(&["init"]).ok();
    let status = |who: &str| get(s.port, "/shared/config", &basic_auth(who)).status;
    assert_eq!(status("bob:b-pass"), 200);
    assert_eq!(status("eve:e-pass"), 401);

    // eve replaces bob, and the file keeps its size and modification time, so only the
    // signal can tell the server: polling compares exactly those two.
    let before = std::fs::metadata(&ht).unwrap();
    std::fs::write(&ht, format!("{alice}{eve}")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&ht)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    assert_eq!(std::fs::metadata(&ht).unwrap().len(), before.len());
    // Longer than the server's once-a-second look at the file.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        status("eve:e-pass"),
        401,
        "reloaded without a signal or a visible change"
    );
    assert_eq!(status("bob:b-pass"), 200);

    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGHUP) },
        0
    );
    let start = Instant::now();
    while status("eve:e-pass") != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "htpasswd not reread on SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // bob is gone, although his password was remembered a moment ago; alice stays, and
    // the server is still running (SIGHUP did not end it).
    assert_eq!(status("bob:b-pass"), 401);
    assert_eq!(status("alice:a-pass"), 200);
    let eve_repo = Tool::cairn(&s.url(Some("eve:e-pass"), "shared/"), "pw");
    eve_repo.run(&["snapshots"]).ok();
}

#[test]
fn connections_beyond_the_cap_wait_their_turn() {
    let t = TempDir::new("serve-maxconn");
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let s = Serve::start(
        &data,
        &[
            "--no-auth",
            "--max-connections",
            "2",
            "--header-timeout",
            "60",
            "--idle-timeout",
            "60",
        ],
    );
    assert_eq!(post(s.port, "/?create=true", b"").status, 200);
    assert_eq!(post(s.port, "/config", b"a config").status, 200);
    let pid = s.child.id();
    // The probe and the requests above are closed on the server's side too by now.
    let baseline = settled_sockets(pid);

    // Two connections that say nothing take both slots, and twenty more queue behind them.
    let hogs: Vec<TcpStream> = (0..22)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).unwrap())
        .collect();
    // A real request behind them gets no answer while the slots are taken...
    let mut waiting = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    waiting
        .write_all(b"GET /config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut first = [0u8; 1];
    let early = waiting.read(&mut first);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "answered beyond the cap: {early:?}"
    );
    // ...and the server holds no more than two of the 23 connections.
    let held = sockets_of(pid).saturating_sub(baseline);
    assert!(held <= 2, "server holds {held} connections with a cap of 2");

    // Once the clients hang up, the waiting request is answered (the queued hogs are
    // accepted, found closed and dropped in turn).
    drop(hogs);
    waiting
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = waiting.read_to_end(&mut buf);
    let answer = parse_answer(&buf);
    assert_eq!(answer.status, 200, "{}", answer.head);

    // And a normal client works as before; every slot is given back when it is done.
    let repo = Tool::cairn(&s.url(None, "other/"), "pw");
    let src = small_corpus(&t);
    repo.run(&["init"]).ok();
    repo.run(&["backup", src.to_str().unwrap()]).ok();
    repo.run(&["check"]).ok();
    assert_eq!(settled_sockets(pid), baseline);
}

/// [`sockets_of`] once it stopped changing (connections the clients closed are closed by
/// the server a moment later).
fn settled_sockets(pid: u32) -> usize {
    let mut last = sockets_of(pid);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = sockets_of(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[test]
fn ranges_are_answered_as_rest_server_answers_them() {
    let Some(rest_server) = cairn_testsupport::rest_server() else {
        return;
    };
    let t = TempDir::new("serve-ranges");
    let data = t.join("data");
    std::fs::create_dir(&data).unwrap();
    let s = Serve::start(&data, &["--no-auth"]);
    assert_eq!(post(s.port, "/?create=true", b"").status, 200);
    // Binary bytes, so that Go's content sniffing also says application/octet-stream.
    let content: Vec<u8> = (0..100u32).map(|i| (i * 7 + 1) as u8).collect();
    let id = sha256_hex(&content);
    assert_eq!(post(s.port, &format!("/data/{id}"), &content).status, 200);

    // rest-server on the same data directory, to compare answers with.
    let port = cairn_testsupport::free_port();
    let mut rs = Command::new(rest_server)
        .arg("--path")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-auth"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rest-server");
    cairn_testsupport::wait_for_port(port, "rest-server");

    let path = format!("/data/{id}");
    for range in [
        "bytes=0-9,20-29",
        "bytes=0-9, 20-29",
        "bytes=-5,0-0",
        "bytes=50-,10-19",
        "bytes=0-9,,20-29",
        "bytes=0-9,200-300",
        "bytes=0-99,0-99",
        "bytes=200-300,400-",
        "bytes=95-200",
        "bytes=0-9,5-2",
        "items=0-9",
    ] {
        let header = format!("Range: {range}\r\n");
        let ours = get(s.port, &path, &header);
        let theirs = get(port, &path, &header);
        let what = format!(
            "{range}\n--- cairn ---\n{}\n--- rest-server ---\n{}",
            ours.head, theirs.head
        );
        assert_eq!(ours.status, theirs.status, "{what}");
        for name in ["content-range", "content-length", "accept-ranges"] {
            assert_eq!(
                header_value(&ours.head, name),
                header_value(&theirs.head, name),
                "{name}: {what}"
            );
        }
        let ctype = |a: &Answer| header_value(&a.head, "content-type");
        let (ours_ct, theirs_ct) = (ctype(&ours), ctype(&theirs));
        match theirs_ct
            .as_deref()
            .and_then(|c| c.strip_prefix("multipart/byteranges; boundary="))
        {
            Some(their_boundary) => {
                // Boundaries are random: compare the bodies with each put back to one name.
                let our_boundary = ours_ct
                    .as_deref()
                    .and_then(|c| c.strip_prefix("multipart/byteranges; boundary="))
                    .unwrap_or_else(|| panic!("not multipart: {what}"));
                assert_eq!(our_boundary.len(), their_boundary.len());
                let norm =
                    |body: &[u8], b: &str| String::from_utf8_lossy(body).replace(b, "BOUNDARY");
                assert_eq!(
                    norm(&ours.body, our_boundary),
                    norm(&theirs.body, their_boundary),
                    "{what}"
                );
            }
            None => {
                assert_eq!(ours_ct, theirs_ct, "{what}");
                assert_eq!(ours.body, theirs.body, "{what}");
            }
        }
        // The bytes themselves, independently of either server.
        if ours.status == 206 && ours_ct.as_deref() == Some("application/octet-stream") {
            let cr = header_value(&ours.head, "content-range").unwrap();
            let (a, b) = cr
                .trim_start_matches("bytes ")
                .split_once('/')
                .unwrap()
                .0
                .split_once('-')
                .unwrap();
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(ours.body, content[a..=b], "{what}");
        }
    }
    let _ = rs.kill();
    let _ = rs.wait();
}

/// A header's value from a lowercased header block.
fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        (n.trim() == name).then(|| v.trim().to_string())
    })
}

//! The conformance suite against the local backend, and against the REST backend talking to a
//! real `rclone serve restic` started on loopback for the test (and stopped after it).

mod suite;

use cairn_backend::LocalBackend;
use cairn_testsupport::rclone::RcloneRest;
use std::net::TcpListener;
use suite::conformance;

#[test]
fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LocalBackend::new(dir.path().join("repo")));
}

#[test]
fn rest_backend_conforms_against_rclone() {
    let Some(server) = RcloneRest::start() else {
        return;
    };
    let url = format!("rest:http://127.0.0.1:{}/repo/", server.port);
    let be = cairn_backend::open(&url).expect("open rest backend");
    conformance(be.as_ref());
    // A repository root that does not exist yet has no config.
    let other =
        cairn_backend::open(&format!("rest:http://127.0.0.1:{}/other/", server.port)).unwrap();
    assert!(!other.exists().unwrap());
}

#[test]
fn rest_backend_reports_a_server_that_is_gone() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = cairn_backend::Options::parse(&["retry.max-elapsed=2s"]).unwrap();
    let be = cairn_backend::open_with(&format!("rest:http://127.0.0.1:{port}/"), &opts).unwrap();
    let t = std::time::Instant::now();
    let err = be.exists().expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(msg.contains("config"), "{msg}");
    // Retried, within the budget, and the error says so.
    assert!(msg.contains("gave up after"), "{msg}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn rclone_backend_conforms() {
    // rclone's own backend: cairn starts `rclone serve restic` itself, here over a local path.
    if !cairn_testsupport::tool_works("rclone", "version") {
        let _: Option<()> = cairn_testsupport::missing("rclone");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let loc = format!("rclone:{}", dir.path().join("repo").display());
    let be = cairn_backend::open(&loc).expect("open rclone backend");
    assert_eq!(be.location(), loc);
    conformance(be.as_ref());
    // The files are where rclone was told to put them, in restic's layout.
    assert!(dir.path().join("repo/config").is_file());
    assert!(dir.path().join("repo/snapshots").is_dir());
}

#[test]
fn rclone_backend_reports_a_bad_remote_in_one_line() {
    if !cairn_testsupport::tool_works("rclone", "version") {
        let _: Option<()> = cairn_testsupport::missing("rclone");
        return;
    }
    let err = match cairn_backend::open("rclone:no-such-remote-xyz:path") {
        Ok(_) => panic!("an unknown rclone remote was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("rclone"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let err = match cairn_backend::open_with(
        "rclone:/tmp",
        &cairn_backend::Options::parse(&["rclone.program=/nonexistent/rclone"]).unwrap(),
    ) {
        Ok(_) => panic!("a missing rclone program was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot start"), "{err}");
}

#[test]
fn unknown_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = cairn_backend::Options::parse(&["s3.regoin=x"]).unwrap();
    let err = match cairn_backend::open_with(dir.path().to_str().unwrap(), &opts) {
        Ok(_) => panic!("a misspelt option was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("s3.regoin"), "{err}");
}

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
    let be = cairn_backend::open(&format!("rest:http://127.0.0.1:{port}/")).unwrap();
    let err = be.exists().expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(msg.contains("config"), "{msg}");
}

//! restic 0.18's HTTP flags against a real rest-server 0.13 on loopback with TLS:
//! `--cacert`, `--insecure-tls`, `--tls-client-cert` (accepted), `--http-user-agent` (seen in
//! the server's access log) and `--stuck-request-timeout` (parsed and applied).

mod common;

use common::{TempDir, Tool};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct RestServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, made with openssl.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success(), "openssl req failed");
    (cert, key)
}

fn start_tls(dir: &Path, cert: &Path, key: &Path) -> Option<RestServer> {
    let prog = cairn_testsupport::rest_server()?;
    let port = cairn_testsupport::free_port();
    let log = dir.join("access.log");
    let child = Command::new(prog)
        .arg("--path")
        .arg(dir.join("data"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--no-auth",
            "--tls",
        ])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rest-server");
    cairn_testsupport::wait_for_port(port, "rest-server");
    Some(RestServer { child, port, log })
}

#[test]
fn tls_roots_insecure_mode_and_user_agent() {
    let t = TempDir::new("http-options");
    let (cert, key) = self_signed(t.path());
    let Some(server) = start_tls(t.path(), &cert, &key) else {
        return;
    };
    let url = format!("rest:https://127.0.0.1:{}/repo", server.port);
    let cairn = Tool::cairn(Path::new(&url), "pw");
    let cacert = cert.to_str().unwrap();
    // An unknown certificate is refused, clearly, and nothing is created.
    let err = cairn.run(&["init"]).expect_code(1).stderr_str();
    assert!(
        err.to_lowercase().contains("certificate"),
        "no word of the certificate: {err}"
    );
    cairn.run(&["--cacert", cacert, "init"]).ok();
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"over TLS\n").unwrap();
    cairn
        .run(&[
            "--cacert",
            cacert,
            "--http-user-agent",
            "cairn-test-agent/1.0",
            "--stuck-request-timeout",
            "30s",
            "backup",
            "-q",
            src.to_str().unwrap(),
        ])
        .ok();
    // --insecure-tls trusts whatever answers; RESTIC_CACERT is the flag's variable.
    let listed = cairn
        .run(&["--insecure-tls", "snapshots", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().map(|a| a.len()), Some(1));
    cairn
        .run_env(
            None,
            &[("RESTIC_CACERT", cacert)],
            &["check", "--read-data"],
        )
        .ok();
    // A client certificate (this server asks for none) is loaded and presented if asked.
    let both = t.join("client.pem");
    std::fs::write(
        &both,
        [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat(),
    )
    .unwrap();
    cairn
        .run(&[
            "--cacert",
            cacert,
            "--tls-client-cert",
            both.to_str().unwrap(),
            "snapshots",
        ])
        .ok();
    // A file without a key is refused before anything is sent.
    let err = cairn
        .run(&["--cacert", cacert, "--tls-client-cert", cacert, "snapshots"])
        .expect_code(1)
        .stderr_str();
    assert!(err.contains("--tls-client-cert"), "{err}");
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(
        log.contains("cairn-test-agent/1.0"),
        "the user agent is not in rest-server's log:\n{log}"
    );
    cairn
        .run(&["--stuck-request-timeout", "soon", "snapshots"])
        .expect_code(1);
}

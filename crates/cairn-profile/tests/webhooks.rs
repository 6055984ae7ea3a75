//! send-* webhooks against HTTP receivers on loopback started here: what arrives, retries
//! of a failing receiver, and a receiver that hangs (bounded time, a warning, no error).

use cairn_profile::notify::{send, When};
use cairn_profile::outcome::RunOutcome;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver answering the given statuses in turn (then 200), recording each request.
fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((n, v)) = h.trim_end().split_once(':') {
                    headers.push((n.trim().to_string(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            log.lock().unwrap().push(Request {
                method,
                target,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let status = statuses.next().unwrap_or(200);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (addr, seen)
}

/// A receiver that accepts connections and never answers.
fn hanging() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    addr
}

fn failed() -> RunOutcome {
    RunOutcome {
        profile: "home".into(),
        command: "backup".into(),
        success: false,
        exit_code: 10,
        error: Some("repository does not exist & more".into()),
        stderr: Some("Fatal: repository does not exist\n".into()),
        command_line: Some("cairn backup /src".into()),
        ..Default::default()
    }
}

#[test]
fn send_after_arrives_with_method_headers_and_body() {
    let (addr, seen) = receiver(vec![]);
    let section = json!({
        "send-after": [{
            "url": format!("{addr}/ping/$PROFILE_NAME?cmd=${{PROFILE_COMMAND}}"),
            "method": "POST",
            "headers": [{"name": "Content-Type", "value": "text/plain"}, {"name": "X-Token", "value": "s3cret"}],
            "body": "profile $PROFILE_NAME ran ${PROFILE_COMMAND}, costs $$5"
        }],
        "send-before": {"url": format!("{addr}/start"), "method": "HEAD"}
    });
    let ok = RunOutcome {
        profile: "home".into(),
        command: "backup".into(),
        success: true,
        ..Default::default()
    };
    assert!(send(When::Before, "home", "backup", &section, &json!({}), None).is_empty());
    assert!(send(
        When::After,
        "home",
        "backup",
        &section,
        &json!({}),
        Some(&ok)
    )
    .is_empty());
    // Nothing configured for these: nothing sent, no warning.
    assert!(send(
        When::AfterFail,
        "home",
        "backup",
        &section,
        &json!({}),
        Some(&ok)
    )
    .is_empty());
    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].method, "HEAD");
    assert_eq!(reqs[0].target, "/start");
    assert!(reqs[0].header("user-agent").unwrap().starts_with("cairn/"));
    let r = &reqs[1];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/ping/home?cmd=backup");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-token"), Some("s3cret"));
    assert_eq!(r.body, "profile home ran backup, costs $5");
}

#[test]
fn send_after_fail_carries_the_error_in_url_body_and_template() {
    let (addr, seen) = receiver(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let tmpl = dir.path().join("body.json");
    std::fs::write(
        &tmpl,
        "{\"profile\": \"{{ .ProfileName }}\", \"command\": \"{{.ProfileCommand}}\", \"code\": \"{{ .Error.ExitCode }}\",\n \"message\": \"{{- .Error.Message -}}\", \"line\": \"{{ .Error.CommandLine }}\"}",
    )
    .unwrap();
    let section = json!({
        "send-after-fail": [
            {"url": format!("{addr}/fail?e=$ERROR&code=$ERROR_EXIT_CODE"), "method": "POST", "body": "${ERROR}\n\n${ERROR_STDERR}"},
            {"url": format!("{addr}/tmpl"), "method": "POST", "body-template": tmpl.to_str().unwrap()}
        ],
        "send-finally": {"url": format!("{addr}/finally?c=$ERROR_COMMANDLINE")}
    });
    let o = failed();
    assert!(send(
        When::AfterFail,
        "home",
        "backup",
        &section,
        &json!({}),
        Some(&o)
    )
    .is_empty());
    assert!(send(
        When::Finally,
        "home",
        "backup",
        &section,
        &json!({}),
        Some(&o)
    )
    .is_empty());
    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        reqs[0].target,
        "/fail?e=repository+does+not+exist+%26+more&code=10"
    );
    assert_eq!(
        reqs[0].body,
        "repository does not exist & more\n\nFatal: repository does not exist\n"
    );
    let v: serde_json::Value = serde_json::from_str(&reqs[1].body).unwrap();
    assert_eq!(v["profile"], "home");
    assert_eq!(v["command"], "backup");
    assert_eq!(v["code"], "10");
    assert_eq!(v["message"], "repository does not exist & more");
    assert_eq!(v["line"], "cairn backup /src");
    assert_eq!(reqs[2].target, "/finally?c=cairn+backup+%2Fsrc");
}

#[test]
fn failing_receiver_is_retried_then_delivered() {
    let (addr, seen) = receiver(vec![503, 500]);
    let section = json!({"send-after": {"url": format!("{addr}/x")}});
    let t = Instant::now();
    let w = send(
        When::After,
        "p",
        "backup",
        &section,
        &json!({"send-timeout": "10s"}),
        None,
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn client_errors_are_not_retried_and_only_warn() {
    let (addr, seen) = receiver(vec![404, 404, 404]);
    let section = json!({"send-after": {"url": format!("{addr}/gone")}});
    let w = send(
        When::After,
        "p",
        "backup",
        &section,
        &json!({"send-timeout": "5s"}),
        None,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("404") && w[0].contains("send-after"), "{w:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn hanging_receiver_is_bounded_by_send_timeout() {
    let addr = hanging();
    let section = json!({"send-after-fail": [{"url": format!("{addr}/hang")}, {"url": format!("{addr}/hang2")}]});
    let t = Instant::now();
    let w = send(
        When::AfterFail,
        "p",
        "backup",
        &section,
        &json!({"send-timeout": "2s"}),
        Some(&failed()),
    );
    let took = t.elapsed();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(
        took < Duration::from_secs(7),
        "each hook is bounded by send-timeout: {took:?}"
    );
}

#[test]
fn unreachable_receiver_and_bad_templates_only_warn() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let section = json!({"send-finally": {"url": format!("http://127.0.0.1:{port}/")}});
    let t = Instant::now();
    let w = send(
        When::Finally,
        "p",
        "backup",
        &section,
        &json!({"send-timeout": "2s"}),
        None,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(t.elapsed() < Duration::from_secs(4));
    let dir = tempfile::tempdir().unwrap();
    let tmpl = dir.path().join("t");
    std::fs::write(&tmpl, "{{ if .Error }}x{{ end }}").unwrap();
    let section = json!({"send-after": {"url": "http://127.0.0.1:1/", "body-template": tmpl.to_str().unwrap()}});
    let w = send(When::After, "p", "backup", &section, &json!({}), None);
    assert!(w[0].contains("unsupported template action"), "{w:?}");
    let w = send(
        When::After,
        "p",
        "backup",
        &json!({"send-after": {"method": "GET"}}),
        &json!({}),
        None,
    );
    assert!(w[0].contains("without a url"), "{w:?}");
}

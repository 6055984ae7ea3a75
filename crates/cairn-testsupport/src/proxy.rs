//! An HTTP/1.1 proxy on loopback that injects the faults a real network and a real server
//! produce, between cairn (or restic) and a real server: error statuses, connections reset
//! before, during or after a transfer, and stalls.
//!
//! Each client connection carries one request: the proxy reads its head and body, decides
//! on a fault, and otherwise forwards it on a fresh upstream connection with
//! `Connection: close`, streaming the answer back (with `Connection: close` added, so the
//! client does not reuse a connection the proxy is about to close).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (500, 503, ...) without forwarding.
    Status(u16),
    /// Reset the connection as soon as the request head has arrived.
    ResetBeforeForward,
    /// Forward the request, then reset after part of the answer.
    ResetMidResponse,
    /// Reset in the middle of an upload body (requests with bodies only; others pass).
    ResetMidUpload,
    /// Hold the connection without answering for this long, then drop it.
    Stall(Duration),
}

#[derive(Default)]
struct Plan {
    /// Faults to pick from, and the chance (per mille) of a request getting one.
    faults: Vec<Fault>,
    per_mille: u32,
    /// Requests whose method and path contain this string only (empty: all).
    only: String,
    /// The next this many requests (that `only` admits) get a 503 whatever the rate, so a
    /// test that must see a retry does not depend on the dice.
    certain: u32,
    /// Request lines seen ("GET /repo/index/ab... HTTP/1.1").
    log: Vec<String>,
}

pub struct FaultProxy {
    pub port: u16,
    plan: Arc<Mutex<Plan>>,
    injected: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream`, passing everything.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let injected = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, i, f, s) = (
            plan.clone(),
            injected.clone(),
            forwarded.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (p, i, f) = (p.clone(), i.clone(), f.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &p, &i, &f);
                });
            }
        });
        FaultProxy {
            port,
            plan,
            injected,
            forwarded,
            stop,
        }
    }

    /// From now on, each request gets one of `faults` with probability `rate` (0..=1).
    pub fn inject(&self, faults: &[Fault], rate: f64) {
        let mut p = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        p.faults = faults.to_vec();
        p.per_mille = (rate * 1000.0).round() as u32;
    }

    /// The next `n` requests get a 503 for sure (then faults follow `inject`'s rate again).
    pub fn fail_next(&self, n: u32) {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).certain = n;
    }

    /// Limits faults to requests whose "METHOD path" contains `s` (e.g. "POST", "/data/").
    pub fn only_for(&self, s: &str) {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).only = s.to_string();
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        self.inject(&[], 0.0);
    }

    /// The request lines seen so far ("METHOD /path HTTP/1.1"), and forgets them.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.plan.lock().unwrap_or_else(|e| e.into_inner()).log)
    }

    /// How many faults were injected, and how many requests forwarded untouched.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.injected.load(Ordering::SeqCst),
            self.forwarded.load(Ordering::SeqCst),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Closes with RST rather than FIN, as a crashed peer or a middlebox does.
fn reset(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn choose(plan: &Mutex<Plan>, request_line: &str, has_body: bool) -> Option<Fault> {
    use rand::Rng;
    let mut p = plan.lock().unwrap_or_else(|e| e.into_inner());
    p.log.push(request_line.to_string());
    if !request_line.contains(p.only.as_str()) {
        return None;
    }
    if p.certain > 0 {
        p.certain -= 1;
        return Some(Fault::Status(503));
    }
    if p.faults.is_empty() {
        return None;
    }
    let mut rng = rand::thread_rng();
    if rng.gen_range(0..1000) >= p.per_mille {
        return None;
    }
    let f = p.faults[rng.gen_range(0..p.faults.len())];
    if f == Fault::ResetMidUpload && !has_body {
        return None;
    }
    Some(f)
}

fn serve(
    mut client: TcpStream,
    upstream: u16,
    plan: &Mutex<Plan>,
    injected: &AtomicU64,
    forwarded: &AtomicU64,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    // The request head.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Ok(());
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let request_line = text.lines().next().unwrap_or("").to_string();
    let mut body_len = 0usize;
    let mut lines: Vec<String> = Vec::new();
    for l in text.split("\r\n").skip(1) {
        if l.is_empty() {
            continue;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            body_len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        lines.push(l.to_string());
    }
    let fault = choose(plan, &request_line, body_len > 0);
    match fault {
        Some(Fault::Status(code)) => {
            injected.fetch_add(1, Ordering::SeqCst);
            let _ = drain(&mut client, body_len);
            let msg = format!(
                "HTTP/1.1 {code} Injected Fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            client.write_all(msg.as_bytes())?;
            return Ok(());
        }
        Some(Fault::ResetBeforeForward) => {
            injected.fetch_add(1, Ordering::SeqCst);
            reset(&client);
            return Ok(());
        }
        Some(Fault::ResetMidUpload) => {
            injected.fetch_add(1, Ordering::SeqCst);
            let _ = drain(&mut client, body_len / 2);
            reset(&client);
            return Ok(());
        }
        Some(Fault::Stall(d)) => {
            injected.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(d);
            reset(&client);
            return Ok(());
        }
        Some(Fault::ResetMidResponse) | None => {}
    }
    let mut body = vec![0u8; body_len];
    client.read_exact(&mut body)?;
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut out = format!("{request_line}\r\n");
    for l in &lines {
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    // The answer: its head gets `Connection: close`; the rest streams until upstream closes.
    let mut resp_head = Vec::new();
    while !resp_head.ends_with(b"\r\n\r\n") {
        if up.read(&mut byte)? == 0 {
            break;
        }
        resp_head.push(byte[0]);
    }
    let rh = String::from_utf8_lossy(&resp_head).into_owned();
    let mut new_head = String::new();
    for l in rh.split("\r\n") {
        if l.is_empty() || l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        new_head.push_str(l);
        new_head.push_str("\r\n");
    }
    new_head.push_str("Connection: close\r\n\r\n");
    client.write_all(new_head.as_bytes())?;
    let cut = if fault == Some(Fault::ResetMidResponse) {
        use rand::Rng;
        injected.fetch_add(1, Ordering::SeqCst);
        Some(rand::thread_rng().gen_range(0..4096usize))
    } else {
        forwarded.fetch_add(1, Ordering::SeqCst);
        None
    };
    let mut sent = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = up.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(c) = cut {
            if sent + n > c {
                client.write_all(&buf[..c - sent])?;
                client.flush()?;
                reset(&client);
                return Ok(());
            }
        }
        client.write_all(&buf[..n])?;
        sent += n;
    }
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

fn drain(s: &mut TcpStream, mut n: usize) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let k = s.read(&mut buf[..n.min(64 * 1024)])?;
        if k == 0 {
            break;
        }
        n -= k;
    }
    Ok(())
}

//! Listening sockets (TCP, `unix:PATH`, or one handed over by systemd) and the stall
//! timeout every connection is wrapped in.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A connection of any kind.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// `:PORT` (every interface, like Go), `HOST:PORT`, or `unix:PATH`; a socket passed by
    /// systemd socket activation (LISTEN_PID/LISTEN_FDS) wins over all of them.
    pub async fn bind(addr: &str) -> io::Result<Listener> {
        if let Some(l) = from_systemd()? {
            eprintln!("systemd socket activation mode");
            return Ok(l);
        }
        if let Some(path) = addr.strip_prefix("unix:") {
            return Ok(Listener::Unix(tokio::net::UnixListener::bind(path)?));
        }
        if let Some(port) = addr.strip_prefix(':') {
            // [::] takes IPv4 too where IPv6 exists; 0.0.0.0 where it does not.
            return match tokio::net::TcpListener::bind(format!("[::]:{port}")).await {
                Ok(l) => Ok(Listener::Tcp(l)),
                Err(_) => Ok(Listener::Tcp(
                    tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await?,
                )),
            };
        }
        Ok(Listener::Tcp(tokio::net::TcpListener::bind(addr).await?))
    }

    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "unix socket".into()),
        }
    }

    /// The next connection and the client's address (for the access log).
    pub async fn accept(&self) -> io::Result<(Box<dyn Io>, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                // Replies are small and answered at once; don't let Nagle hold them back.
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), peer.ip().to_string()))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                Ok((Box::new(s), "@".into()))
            }
        }
    }
}

fn from_systemd() -> io::Result<Option<Listener>> {
    use std::os::fd::FromRawFd;
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok());
    match (pid_ok, fds) {
        (true, Some(1)) => {}
        (true, Some(n)) if n > 1 => {
            return Err(io::Error::other(format!(
                "got {n} listeners from systemd, expected one"
            )))
        }
        _ => return Ok(None),
    }
    const FD: i32 = 3;
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: addr and len describe a buffer large enough for any socket address.
    if unsafe {
        libc::getsockname(
            FD,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: systemd passed fd 3 to this process (LISTEN_PID matched) for us to own.
    if i32::from(addr.ss_family) == libc::AF_UNIX {
        let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(FD) };
        l.set_nonblocking(true)?;
        Ok(Some(Listener::Unix(tokio::net::UnixListener::from_std(l)?)))
    } else {
        let l = unsafe { std::net::TcpListener::from_raw_fd(FD) };
        l.set_nonblocking(true)?;
        Ok(Some(Listener::Tcp(tokio::net::TcpListener::from_std(l)?)))
    }
}

/// A connection that fails with `TimedOut` once no byte has moved in either direction for
/// `limit` while a read or write waits: an idle keep-alive connection, a client that stops
/// sending a body half-way, or one that stops reading a response. Progress either way counts,
/// because hyper keeps a read pending (to notice a hang-up) while it streams a download.
pub struct StallIo<T> {
    inner: T,
    limit: Duration,
    last: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl<T> StallIo<T> {
    pub fn new(inner: T, limit: Duration) -> StallIo<T> {
        let now = Instant::now();
        StallIo {
            inner,
            limit,
            last: now,
            sleep: Box::pin(tokio::time::sleep_until(now + limit)),
        }
    }

    fn moved(&mut self) {
        self.last = Instant::now();
    }

    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.last + self.limit;
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx).is_ready()
    }

    fn after<R>(&mut self, cx: &mut Context<'_>, p: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match p {
            Poll::Ready(r) => {
                self.moved();
                Poll::Ready(r)
            }
            Poll::Pending if self.stalled(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection stalled",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.after(cx, p)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after(cx, p)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after(cx, p)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_flush(cx);
        self.after(cx, p)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let p = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.after(cx, p)
    }
}

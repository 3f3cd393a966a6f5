//! Accepted connections: at most `max_connections` are served as usual
//! (keep-alive); each holds its permit until it closes. One more is still
//! accepted, but every request on it is answered 503 `overloaded` with
//! `Retry-After` and `Connection: close` (probes are answered and closed):
//! the client is told to come back instead of waiting in the kernel's
//! backlog, and the memory held by open connections stays bounded. Every
//! accepted socket gets `TCP_NODELAY` (small answers are not held back by
//! Nagle's algorithm).
//!
//! A keep-alive connection with no request in flight and no bytes either
//! way for `idle_timeout` (`ALLOT_IDLE_TIMEOUT_SECS`) is closed: idle
//! clients, and clients that never finish a request's head, cannot hold
//! the connection limit. Hyper has no idle timer of its own under
//! `axum::serve`; the connection's reads end (end of file) when it expires,
//! which hyper takes as the client's close. A request in flight keeps its
//! connection open however long it takes (the shed middleware marks it,
//! `Admission::busy`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_024;

/// Seconds an idle keep-alive connection is kept by default: longer than
/// the usual client pools keep theirs (so they close first), short enough
/// that idle ones free the connection limit within a minute.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;

/// A TCP listener that counts its open connections.
pub struct Limited {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    idle_timeout: Option<Duration>,
}

impl Limited {
    /// `idle_timeout`: `None` keeps idle connections open.
    pub fn new(
        inner: TcpListener,
        max_connections: usize,
        idle_timeout: Option<Duration>,
    ) -> Limited {
        Limited {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            idle_timeout,
        }
    }
}

/// An accepted connection; `permit` is `None` beyond the limit.
pub struct Conn {
    stream: TcpStream,
    permit: Option<OwnedSemaphorePermit>,
    /// Requests in flight on this connection.
    requests: Arc<AtomicUsize>,
    idle: Option<IdleTimer>,
}

/// When a connection has been idle too long.
struct IdleTimer {
    timeout: Duration,
    /// The last byte read or written.
    last_io: Instant,
    /// Fires at the earliest moment the connection could be idle long
    /// enough; moved only when it fires (not on every read or write).
    check: Pin<Box<Sleep>>,
}

impl IdleTimer {
    fn new(timeout: Duration) -> IdleTimer {
        IdleTimer {
            timeout,
            last_io: Instant::now(),
            check: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Ready once nothing was read or written for `timeout` while no
    /// request was in flight.
    fn poll_expired(&mut self, requests: &AtomicUsize, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            ready!(self.check.as_mut().poll(cx));
            let now = Instant::now();
            let next = if requests.load(Ordering::Acquire) > 0 {
                now + self.timeout
            } else if now >= self.last_io + self.timeout {
                return Poll::Ready(());
            } else {
                self.last_io + self.timeout
            };
            self.check.as_mut().reset(next);
        }
    }
}

impl Listener for Limited {
    type Io = Conn;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Conn, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let permit = self.permits.clone().try_acquire_owned().ok();
        if permit.is_none() {
            metrics::counter!("allot_connections_over_limit_total").increment(1);
        }
        let conn = Conn {
            stream,
            permit,
            requests: Arc::new(AtomicUsize::new(0)),
            idle: self.idle_timeout.map(IdleTimer::new),
        };
        (conn, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// What a request learns of its connection (`ConnectInfo<Admission>`).
#[derive(Debug, Clone)]
pub struct Admission {
    /// The connection came beyond `max_connections`: answer and close.
    pub over_limit: bool,
    requests: Arc<AtomicUsize>,
}

impl Admission {
    /// Marks a request in flight on the connection until dropped: the
    /// connection is not idle meanwhile.
    pub fn busy(&self) -> Busy {
        self.requests.fetch_add(1, Ordering::AcqRel);
        Busy(self.requests.clone())
    }
}

/// A request in flight on its connection (`Admission::busy`).
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connected<IncomingStream<'_, Limited>> for Admission {
    fn connect_info(stream: IncomingStream<'_, Limited>) -> Self {
        Admission {
            over_limit: stream.io().permit.is_none(),
            requests: stream.io().requests.clone(),
        }
    }
}

impl Conn {
    fn touch(&mut self) {
        if let Some(idle) = &mut self.idle {
            idle.last_io = Instant::now();
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let filled = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => {}
            ready => {
                if buf.filled().len() > filled {
                    this.touch();
                }
                return ready;
            }
        }
        if let Some(idle) = &mut this.idle {
            if idle.poll_expired(&this.requests, cx).is_ready() {
                // End of file: hyper closes the connection as the client's.
                metrics::counter!("allot_connections_idle_closed_total").increment(1);
                return Poll::Ready(Ok(()));
            }
        }
        Poll::Pending
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

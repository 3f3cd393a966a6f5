//! Accepted connections: at most `max_connections` are served as usual
//! (keep-alive); each holds its permit until it closes. One more is still
//! accepted, but every request on it is answered 503 `overloaded` with
//! `Retry-After` and `Connection: close` (probes are answered and closed):
//! the client is told to come back instead of waiting in the kernel's
//! backlog, and the memory held by open connections stays bounded. Every
//! accepted socket gets `TCP_NODELAY` (small answers are not held back by
//! Nagle's algorithm).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_024;

/// A TCP listener that counts its open connections.
pub struct Limited {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl Limited {
    pub fn new(inner: TcpListener, max_connections: usize) -> Limited {
        Limited {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

/// An accepted connection; `permit` is `None` beyond the limit.
pub struct Conn {
    stream: TcpStream,
    permit: Option<OwnedSemaphorePermit>,
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
        (Conn { stream, permit }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// What a request learns of its connection (`ConnectInfo<Admission>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The connection came beyond `max_connections`: answer and close.
    pub over_limit: bool,
}

impl Connected<IncomingStream<'_, Limited>> for Admission {
    fn connect_info(stream: IncomingStream<'_, Limited>) -> Self {
        Admission {
            over_limit: stream.io().permit.is_none(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
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

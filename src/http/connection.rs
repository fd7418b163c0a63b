//! Per-connection time limits, enforced on the socket itself so that they
//! hold for HTTP/1, HTTP/2, TLS and hyper's protocol detection alike (which
//! reads the first bytes with no timeout of its own): a client gets
//! `read_header_timeout` to send a request, `write_timeout` from then until
//! its response is sent, and `idle_timeout` between requests. Past the
//! deadline every read or write fails, hyper closes the connection and drops
//! the response body, so a slow reader pins no memory.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The limits of every connection, from the `--web.*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    /// Scrapes in flight at once; 0: no limit.
    pub max_requests: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(60),
            max_requests: 40,
        }
    }
}

/// One connection's deadline, moved on by its requests.
#[derive(Debug)]
pub struct Clock {
    limits: HttpLimits,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Requests whose response is not yet sent (more than one with HTTP/2).
    active: usize,
    /// Waiting between requests, before a byte of the next one arrived.
    idle: bool,
    deadline: Instant,
}

impl Clock {
    /// A new connection: its first request must arrive within the header
    /// timeout (the TLS handshake included).
    pub fn new(limits: HttpLimits) -> Arc<Clock> {
        Arc::new(Clock {
            limits,
            state: Mutex::new(State {
                active: 0,
                idle: false,
                deadline: Instant::now() + limits.read_header_timeout,
            }),
        })
    }

    /// A request was read; the connection now has until the write timeout to
    /// send its response. The guard marks the response sent when dropped.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.active += 1;
        state.idle = false;
        if state.active == 1 {
            state.deadline = Instant::now() + self.limits.write_timeout;
        }
        RequestGuard(self.clone())
    }

    fn request_finished(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.active = state.active.saturating_sub(1);
        if state.active == 0 {
            state.idle = true;
            state.deadline = Instant::now() + self.limits.idle_timeout;
        }
    }

    /// The first bytes after an idle wait start the header timeout.
    fn bytes_read(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.idle && state.active == 0 {
            state.idle = false;
            state.deadline = Instant::now() + self.limits.read_header_timeout;
        }
    }

    fn deadline(&self) -> Instant {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).deadline
    }
}

/// Held by a response body; dropped when hyper is done with it.
#[derive(Debug)]
pub struct RequestGuard(Arc<Clock>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A socket whose reads and writes fail once the connection's deadline has
/// passed.
pub struct Limited<S> {
    inner: S,
    clock: Arc<Clock>,
    timer: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
}

impl<S> Limited<S> {
    pub fn new(inner: S, clock: Arc<Clock>) -> Self {
        let deadline = clock.deadline();
        Limited {
            inner,
            clock,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            armed_for: Some(deadline),
        }
    }

    /// Called when the socket is not ready: wakes the task at the deadline,
    /// and fails the operation once it has passed. The deadline may have
    /// moved since the timer was armed, so a fired timer is checked again.
    fn wait_or_expire<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            let deadline = self.clock.deadline();
            if Instant::now() >= deadline {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection deadline passed",
                )));
            }
            if self.armed_for != Some(deadline) {
                self.timer.as_mut().reset(deadline);
                self.armed_for = Some(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.clock.deadline()
    }
}

fn timed_out<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "connection deadline passed",
    )))
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.expired() {
            return timed_out();
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.clock.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.wait_or_expire(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.expired() {
            return timed_out();
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.wait_or_expire(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.expired() {
            return timed_out();
        }
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.wait_or_expire(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.wait_or_expire(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.wait_or_expire(cx),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Awaits `op` and checks that it failed with a timeout after `expected`.
    async fn times_out_after<T: std::fmt::Debug>(op: impl std::future::Future<Output = io::Result<T>>, expected: u64) {
        let started = Instant::now();
        let err = op.await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(expected));
    }

    fn limits() -> HttpLimits {
        HttpLimits {
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(100),
            write_timeout: Duration::from_secs(30),
            max_requests: 40,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_cut_off_at_the_header_timeout() {
        let (server, _client) = tokio::io::duplex(64);
        let mut limited = Limited::new(server, Clock::new(limits()));
        times_out_after(limited.read(&mut [0u8; 8]), 10).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_is_cut_off_at_the_write_timeout() {
        let (server, _client) = tokio::io::duplex(16);
        let clock = Clock::new(limits());
        let mut limited = Limited::new(server, clock.clone());
        let _request = clock.request_started();
        times_out_after(limited.write_all(&[0u8; 1024]), 30).await;
    }

    #[tokio::test(start_paused = true)]
    async fn idle_then_header_timeouts_follow_the_requests() {
        let (server, mut client) = tokio::io::duplex(64);
        let clock = Clock::new(limits());
        let mut limited = Limited::new(server, clock.clone());
        drop(clock.request_started());
        // Idle: longer than the header timeout is fine.
        tokio::time::sleep(Duration::from_secs(50)).await;
        client.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(limited.read(&mut buf).await.unwrap(), 3);
        // The first bytes of the next request: now the header timeout runs.
        times_out_after(limited.read(&mut buf), 10).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_at_the_idle_timeout() {
        let (server, _client) = tokio::io::duplex(64);
        let clock = Clock::new(limits());
        let mut limited = Limited::new(server, clock.clone());
        drop(clock.request_started());
        times_out_after(limited.read(&mut [0u8; 8]), 100).await;
    }
}

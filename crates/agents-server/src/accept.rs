//! The gRPC port's accept loop: connections with Nagle's algorithm off, that can be cut off at
//! the end of a shutdown's grace period, and a pause when the process runs out of file
//! descriptors or memory.
//!
//! tonic runs each connection as a task of its own, which outlives the server future: when the
//! grace period ended, dropping that future left the calls still in flight running (and their
//! events going nowhere once the event pipeline closed). Each connection here fails its reads
//! and writes once `cut_off` fires, so hyper closes it and its calls are dropped.
//!
//! tonic's server skips a failed accept and asks for the next connection at once. When the
//! process is at its open-file limit (a connection flood, a descriptor leak), `accept` fails
//! at once every time, so the loop would spin a core and leave the listen queue to grow until
//! some descriptor is freed. Pausing between tries is what hyper's and axum's own loops do; the
//! connections wait in the kernel's listen queue meanwhile.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How long accepting pauses after the process ran out of descriptors or memory.
const OUT_OF_RESOURCES_PAUSE: Duration = Duration::from_millis(250);

/// Accepted connections with Nagle's algorithm off. A gRPC response leaves as several small
/// writes (headers, message, trailers); with Nagle on, the later ones wait for the client's
/// delayed ACK, which added ~40 ms to every call on a connection that was not busy (measured
/// with `bench/compare.sh` at 50 req/s: client-side p50 43.6 ms for 0.7 ms of server work).
pub(crate) fn incoming(
    listener: TcpListener,
    cut_off: CancellationToken,
) -> impl tokio_stream::Stream<Item = io::Result<Closable>> {
    let listener = std::sync::Arc::new(listener);
    accepting(move || {
        let listener = std::sync::Arc::clone(&listener);
        let cut_off = cut_off.clone();
        async move {
            let (stream, _) = listener.accept().await?;
            if let Err(error) = stream.set_nodelay(true) {
                // Still a working connection, only a slower one.
                tracing::debug!(%error, "cannot turn Nagle's algorithm off on an accepted connection");
            }
            Ok(Closable::new(stream, cut_off))
        }
    })
}

/// An accepted connection whose reads and writes fail once its `cut_off` token fires.
pub(crate) struct Closable {
    stream: TcpStream,
    cut_off: Pin<Box<WaitForCancellationFutureOwned>>,
    closed: bool,
}

impl Closable {
    fn new(stream: TcpStream, cut_off: CancellationToken) -> Self {
        Self {
            stream,
            // A child token: each connection waits on its own, not on one shared waiter list
            // that every read and write of every connection would lock.
            cut_off: Box::pin(cut_off.child_token().cancelled_owned()),
            closed: false,
        }
    }

    /// Whether the connection was cut off; registers the task to be woken when it is.
    fn cut_off(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.closed && self.cut_off.as_mut().poll(cx).is_ready() {
            self.closed = true;
        }
        self.closed
    }
}

fn cut_off_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "cut off: the shutdown grace period ended",
    )
}

impl AsyncRead for Closable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut_off(cx) {
            return Poll::Ready(Err(cut_off_error()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Closable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut_off(cx) {
            return Poll::Ready(Err(cut_off_error()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut_off(cx) {
            return Poll::Ready(Err(cut_off_error()));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Closable {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// The results of `accept`, except that running out of descriptors or memory pauses it for
/// [`OUT_OF_RESOURCES_PAUSE`] (logged once per episode) instead of failing. Other errors
/// (a connection reset before it was accepted) pass through for the server to skip.
fn accepting<T, F, Fut>(accept: F) -> impl tokio_stream::Stream<Item = io::Result<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    futures_util::stream::unfold((accept, false), |(mut accept, mut exhausted)| async move {
        loop {
            match accept().await {
                Err(error) if out_of_resources(&error) => {
                    if !exhausted {
                        tracing::warn!(
                            %error,
                            pause = ?OUT_OF_RESOURCES_PAUSE,
                            "cannot accept connections: the process is out of file descriptors or memory; pausing accepts (raise the open-file limit, `ulimit -n` or LimitNOFILE)"
                        );
                    }
                    exhausted = true;
                    tokio::time::sleep(OUT_OF_RESOURCES_PAUSE).await;
                }
                result => {
                    let accepted = result.is_ok();
                    if exhausted && accepted {
                        tracing::info!("accepting connections again");
                    }
                    return Some((result, (accept, exhausted && !accepted)));
                }
            }
        }
    })
}

/// EMFILE, ENFILE (descriptors), ENOBUFS, ENOMEM (memory): failures every accept would meet
/// until something is freed.
fn out_of_resources(error: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    matches!(
        error.raw_os_error(),
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use tokio_stream::StreamExt as _;

    use super::*;

    /// An accept that answers from a script and counts its calls.
    fn scripted(
        script: Vec<io::Result<u32>>,
    ) -> (
        impl FnMut() -> std::future::Ready<io::Result<u32>>,
        Arc<Mutex<usize>>,
    ) {
        let calls = Arc::new(Mutex::new(0));
        let counted = Arc::clone(&calls);
        let mut script: VecDeque<_> = script.into();
        let accept = move || {
            *counted.lock().unwrap() += 1;
            std::future::ready(script.pop_front().unwrap_or(Ok(0)))
        };
        (accept, calls)
    }

    /// At the open-file limit every accept fails at once: without the pause the loop asked
    /// again immediately, spinning a core. The clock is paused, so the waits are exact.
    #[tokio::test(start_paused = true)]
    async fn running_out_of_descriptors_pauses_accepting_instead_of_spinning() {
        let emfile = || Err(io::Error::from_raw_os_error(24));
        let (accept, calls) = scripted(vec![emfile(), emfile(), emfile(), Ok(7)]);
        let started = tokio::time::Instant::now();
        let stream = accepting(accept);
        tokio::pin!(stream);
        assert_eq!(stream.next().await.unwrap().unwrap(), 7);
        assert_eq!(started.elapsed(), OUT_OF_RESOURCES_PAUSE * 3);
        assert_eq!(*calls.lock().unwrap(), 4);
    }

    #[tokio::test]
    async fn accepted_connections_have_nagle_off_and_fail_once_cut_off() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut_off = CancellationToken::new();
        let mut accepted = std::pin::pin!(incoming(listener, cut_off.clone()));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut stream = accepted.next().await.unwrap().unwrap();
        assert!(stream.stream.nodelay().unwrap());
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0; 4];
        stream.read_exact(&mut buf).await.unwrap();
        // A read waiting for data the client never sends ends when the connection is cut off.
        let waiting = tokio::spawn(async move {
            let mut buf = [0; 4];
            stream.read(&mut buf).await.map(drop)
        });
        cut_off.cancel();
        let read = waiting.await.unwrap().unwrap_err();
        assert_eq!(read.kind(), io::ErrorKind::ConnectionAborted);
    }

    /// A connection that failed on its own is the server's to skip, at once.
    #[tokio::test(start_paused = true)]
    async fn other_accept_errors_pass_through_at_once() {
        let reset = || Err(io::Error::from(io::ErrorKind::ConnectionAborted));
        let (accept, calls) = scripted(vec![reset(), Ok(3)]);
        let started = tokio::time::Instant::now();
        let stream = accepting(accept);
        tokio::pin!(stream);
        assert!(stream.next().await.unwrap().is_err());
        assert_eq!(stream.next().await.unwrap().unwrap(), 3);
        assert_eq!(
            (started.elapsed(), *calls.lock().unwrap()),
            (Duration::ZERO, 2)
        );
    }
}

//! A TCP proxy for fault injection in end-to-end tests: pass traffic through, add latency,
//! refuse new connections, black-hole them, or cut the ones open. It counts every connection
//! attempt, which is how the tests prove that no storm reached the server.
//!
//! Only ever points at a server on this machine; faults are injected here, never by stopping
//! the shared server.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Forward, delaying every chunk.
    Latency(Duration),
    /// Accept new connections and close them at once (the server is down).
    Refuse,
    /// Accept new connections and never answer (a dead load balancer, a black-holed route).
    BlackHole,
}

struct Inner {
    mode: Mutex<Mode>,
    attempts: AtomicU64,
    /// Forwarding tasks and black-holed sockets, dropped by `cut_existing`.
    open: Mutex<Vec<JoinHandle<()>>>,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (an ephemeral port) in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        assert!(
            upstream.ip().is_loopback(),
            "the proxy only targets this machine"
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            mode: Mutex::new(Mode::Pass),
            attempts: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
        });
        let accept_inner = Arc::clone(&inner);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accept_inner.attempts.fetch_add(1, Ordering::SeqCst);
                let mode = *accept_inner.mode.lock();
                let task = match mode {
                    Mode::Refuse => {
                        drop(client);
                        continue;
                    }
                    Mode::BlackHole => tokio::spawn(async move {
                        // Hold the socket open and never answer.
                        let _client = client;
                        std::future::pending::<()>().await;
                    }),
                    Mode::Pass | Mode::Latency(_) => {
                        let inner = Arc::clone(&accept_inner);
                        tokio::spawn(async move {
                            if let Ok(server) = TcpStream::connect(upstream).await {
                                forward(client, server, inner).await;
                            }
                        })
                    }
                };
                let mut open = accept_inner.open.lock();
                open.retain(|t| !t.is_finished());
                open.push(task);
            }
        });
        Ok(FaultProxy {
            addr,
            inner,
            accept,
        })
    }

    /// The port clients should connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes what happens to new traffic (and, for latency, to existing traffic).
    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock() = mode;
    }

    /// Connection attempts seen so far.
    pub fn attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// Closes every connection open through the proxy (both sides see a reset or EOF).
    pub fn cut_existing(&self) {
        for t in self.inner.open.lock().drain(..) {
            t.abort();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_existing();
    }
}

async fn forward(client: TcpStream, server: TcpStream, inner: Arc<Inner>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up_inner = Arc::clone(&inner);
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            delay(&up_inner).await;
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            delay(&inner).await;
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

async fn delay(inner: &Inner) {
    let mode = *inner.mode.lock();
    if let Mode::Latency(d) = mode {
        tokio::time::sleep(d).await;
    }
}

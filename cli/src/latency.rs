//! A delaying TCP proxy on loopback for the bench's latency table: every response's first
//! byte waits `delay` (S3's time to first byte, which a local server does not have). With
//! latency L, a loop with C requests in flight can do at most C / L requests per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Runs until the process ends, on a thread of its own (the bench's own thread blocks on
/// its children). Returns the proxy's `http://127.0.0.1:PORT`.
pub fn start(upstream: &str, delay: Duration) -> Result<String> {
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the proxy")?;
    listener.set_nonblocking(true)?;
    let address = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the proxy");
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("a tokio listener");
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, delay).await;
                    }
                });
            }
        });
    });
    Ok(address)
}

/// Copies both ways; the first server bytes after each client request wait `delay`.
async fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let awaiting = Arc::new(AtomicBool::new(false));
    let requests = {
        let awaiting = awaiting.clone();
        async move {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                let n = client_read.read(&mut buffer).await?;
                if n == 0 {
                    return server_write.shutdown().await;
                }
                awaiting.store(true, Ordering::Release);
                server_write.write_all(&buffer[..n]).await?;
            }
        }
    };
    let responses = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = server_read.read(&mut buffer).await?;
            if n == 0 {
                return client_write.shutdown().await;
            }
            if awaiting.swap(false, Ordering::AcqRel) {
                tokio::time::sleep(delay).await;
            }
            client_write.write_all(&buffer[..n]).await?;
        }
    };
    let _: (std::io::Result<()>, std::io::Result<()>) = futures::join!(requests, responses);
}

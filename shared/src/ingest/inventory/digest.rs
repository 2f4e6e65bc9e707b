//! A data file's MD5 (the manifest's `MD5checksum`, of the stored bytes), computed while the
//! bytes stream through to the decompressor, so a file is read once.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use md5::Digest as _;
use tokio::io::{AsyncRead, ReadBuf};

use super::InventoryError;

/// What passed through a [`Hashing`] reader so far.
#[derive(Default)]
struct State {
    md5: md5::Md5,
    bytes: u64,
}

/// The digest of the bytes a [`Hashing`] reader passed on; read it once the reader is done.
#[derive(Clone, Default)]
pub struct Digest(Arc<Mutex<State>>);

impl Digest {
    /// Checks the bytes read against the manifest's entry for `file`.
    pub fn check(&self, file: &str, expected_md5: &str, size: u64) -> Result<(), InventoryError> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let actual = crate::ingest::item::hex(&state.md5.clone().finalize());
        if state.bytes == size && actual.eq_ignore_ascii_case(expected_md5.trim()) {
            return Ok(());
        }
        Err(InventoryError::DataChecksum {
            file: file.to_owned(),
            actual,
            bytes: state.bytes,
            expected: crate::ingest::typing::error::cap(expected_md5, 64),
            size,
        })
    }
}

/// Checks a file read whole (a Parquet data file) against its manifest entry.
pub fn check_bytes(
    file: &str,
    bytes: &[u8],
    expected_md5: &str,
    size: u64,
) -> Result<(), InventoryError> {
    let digest = Digest::default();
    {
        let mut state = digest.0.lock().unwrap_or_else(|p| p.into_inner());
        state.md5.update(bytes);
        state.bytes = bytes.len() as u64;
    }
    digest.check(file, expected_md5, size)
}

/// Passes `inner`'s bytes on unchanged, adding them to its [`Digest`].
pub struct Hashing<R> {
    inner: R,
    digest: Digest,
}

impl<R> Hashing<R> {
    pub fn new(inner: R) -> (Self, Digest) {
        let digest = Digest::default();
        let reader = Self {
            inner,
            digest: digest.clone(),
        };
        (reader, digest)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let fresh = &buf.filled()[before..];
            let mut state = self.digest.0.lock().unwrap_or_else(|p| p.into_inner());
            state.md5.update(fresh);
            state.bytes += fresh.len() as u64;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_digest_covers_every_byte_read_and_its_count() {
        let (mut reader, digest) = Hashing::new(&b"abc"[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(
            digest.check("f", "900150983cd24fb0d6963f7d28e17f72", 3),
            Ok(())
        );
        let short = digest
            .check("f", "900150983cd24fb0d6963f7d28e17f72", 4)
            .unwrap_err();
        assert!(short.to_string().contains("of 3 bytes"), "{short}");
        assert!(digest.check("f", "00", 3).is_err());
    }
}

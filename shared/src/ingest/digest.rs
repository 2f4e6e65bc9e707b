//! A stored object's MD5, computed while its bytes stream through to the decompressor, so a
//! file is read once: an S3 Inventory data file against its manifest's `MD5checksum` (hex),
//! a DynamoDB export data file against its manifest's `md5Checksum` (base64).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use md5::Digest as _;
use tokio::io::{AsyncRead, ReadBuf};

/// What passed through a [`Hashing`] reader so far.
#[derive(Default)]
struct State {
    md5: md5::Md5,
    bytes: u64,
}

/// The digest of the bytes a [`Hashing`] reader passed on; read it once the reader is done.
#[derive(Clone, Default)]
pub struct Digest(Arc<Mutex<State>>);

/// Bytes that are not the ones a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Their MD5, in hex.
    pub actual: String,
    /// How many there were.
    pub bytes: u64,
}

/// Whether `md5` is the one `expected` writes, in hex (any case) or base64.
pub fn md5_matches(md5: &[u8], expected: &str) -> bool {
    let expected = expected.trim();
    expected.eq_ignore_ascii_case(&crate::ingest::item::hex(md5))
        || expected == crate::ingest::typing::binary::encode_base64(md5)
}

impl Digest {
    /// Checks the bytes read against a manifest's MD5 (hex or base64) and size.
    pub fn verify(&self, expected_md5: &str, size: u64) -> Result<(), Mismatch> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let md5 = state.md5.clone().finalize();
        if state.bytes == size && md5_matches(&md5, expected_md5) {
            return Ok(());
        }
        Err(Mismatch {
            actual: crate::ingest::item::hex(&md5),
            bytes: state.bytes,
        })
    }
}

/// Checks bytes read whole (a Parquet data file) against a manifest's MD5 and size.
pub fn verify_bytes(bytes: &[u8], expected_md5: &str, size: u64) -> Result<(), Mismatch> {
    let digest = Digest::default();
    {
        let mut state = digest.0.lock().unwrap_or_else(|p| p.into_inner());
        state.md5.update(bytes);
        state.bytes = bytes.len() as u64;
    }
    digest.verify(expected_md5, size)
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
        assert_eq!(digest.verify("900150983cd24fb0d6963f7d28e17f72", 3), Ok(()));
        assert_eq!(
            digest.verify("kAFQmDzST7DWlj99KOF/cg==", 3),
            Ok(()),
            "base64"
        );
        let short = digest
            .verify("900150983cd24fb0d6963f7d28e17f72", 4)
            .unwrap_err();
        assert_eq!(short.bytes, 3);
        assert!(digest.verify("00", 3).is_err());
        assert!(
            digest.verify("kAFQmDzST7DWlj99KOF/cG==", 3).is_err(),
            "base64 is case-sensitive"
        );
    }
}

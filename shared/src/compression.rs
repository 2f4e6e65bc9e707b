//! Compressed objects (`.csv.gz`, `.csv.zst`): decoded as a stream while they download, never
//! held whole. They cannot be split into byte ranges (a range of a compressed stream does not
//! decode on its own), so each is read by one worker, and the decoded size is capped: a
//! small object that inflates without end is rejected, not followed.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};

/// Default cap on the decoded bytes of one compressed object.
pub const DEFAULT_MAX_DECODED_BYTES: u64 = 8 << 30;

/// How an object's bytes are stored, from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Gzip,
    Zstd,
}

impl Encoding {
    pub fn of_key(key: &str) -> Self {
        let lower = key.to_ascii_lowercase();
        if lower.ends_with(".gz") {
            Self::Gzip
        } else if lower.ends_with(".zst") {
            Self::Zstd
        } else {
            Self::Plain
        }
    }

    pub fn is_compressed(self) -> bool {
        self != Self::Plain
    }
}

/// Any body, as one reader type.
pub type BoxedRead = Pin<Box<dyn AsyncBufRead + Send>>;

/// The decoded bytes of `body`, capped at `max_decoded` for compressed encodings. Corrupt
/// data and the cap both surface as `InvalidData` read errors: permanent, not retryable.
pub fn decoded<R: AsyncBufRead + Send + 'static>(
    body: R,
    encoding: Encoding,
    max_decoded: u64,
) -> BoxedRead {
    let capped = |inner: Pin<Box<dyn AsyncRead + Send>>| -> BoxedRead {
        Box::pin(BufReader::new(Capped {
            inner,
            left: max_decoded,
            cap: max_decoded,
        }))
    };
    match encoding {
        Encoding::Plain => Box::pin(body),
        Encoding::Gzip => {
            let mut decoder = GzipDecoder::new(body);
            decoder.multiple_members(true); // concatenated gzip files are one stream
            capped(Box::pin(decoder))
        }
        Encoding::Zstd => capped(Box::pin(ZstdDecoder::new(body))),
    }
}

/// Fails the read once more than `cap` bytes came out.
struct Capped {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    left: u64,
    cap: u64,
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match this.inner.as_mut().poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = (buf.filled().len() - before) as u64;
                match this.left.checked_sub(read) {
                    Some(left) => {
                        this.left = left;
                        Poll::Ready(Ok(()))
                    }
                    None => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("decoded size exceeds the cap of {} bytes", this.cap),
                    ))),
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzipEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    }

    async fn zstd(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZstdEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    }

    async fn read_all(mut reader: BoxedRead) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[test]
    fn encodings_come_from_the_key() {
        assert_eq!(Encoding::of_key("a/b.csv"), Encoding::Plain);
        assert_eq!(Encoding::of_key("a/b.csv.gz"), Encoding::Gzip);
        assert_eq!(Encoding::of_key("a/b.CSV.ZST"), Encoding::Zstd);
    }

    #[tokio::test]
    async fn gzip_and_zstd_decode_and_concatenated_gzip_members_too() {
        let text = b"a,b\n1,2\n".repeat(1000);
        let gz = gzip(&text).await;
        let out = read_all(decoded(
            std::io::Cursor::new(gz.clone()),
            Encoding::Gzip,
            u64::MAX,
        ));
        assert_eq!(out.await.unwrap(), text);
        let zs = zstd(&text).await;
        let out = read_all(decoded(std::io::Cursor::new(zs), Encoding::Zstd, u64::MAX));
        assert_eq!(out.await.unwrap(), text);
        let twice = [gz.clone(), gz].concat();
        let out = read_all(decoded(
            std::io::Cursor::new(twice),
            Encoding::Gzip,
            u64::MAX,
        ));
        assert_eq!(out.await.unwrap().len(), text.len() * 2);
    }

    #[tokio::test]
    async fn the_cap_and_corrupt_data_are_invalid_data() {
        let bomb = gzip(&vec![b'x'; 1 << 20]).await;
        assert!(bomb.len() < 10_000);
        let err = read_all(decoded(std::io::Cursor::new(bomb), Encoding::Gzip, 1000))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("cap of 1000 bytes"), "{err}");
        let mut corrupt = gzip(b"a,b\n1,2\n").await;
        corrupt.truncate(corrupt.len() / 2);
        corrupt.extend_from_slice(b"garbage!");
        let err = read_all(decoded(
            std::io::Cursor::new(corrupt),
            Encoding::Gzip,
            u64::MAX,
        ))
        .await
        .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ),
            "{err:?}"
        );
    }
}

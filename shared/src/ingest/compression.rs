//! Compressed objects (`.csv.gz`, `.csv.zst`): decoded as a stream while they download, never
//! held whole. They cannot be split into byte ranges (a range of a compressed stream does not
//! decode on its own), so each is read by one worker, and the decoded size is capped: a
//! small object that inflates without end is rejected, not followed.
//!
//! Every member of a gzip object and every frame of a zstd object is decoded, and a stream cut
//! inside a member or frame is an error (the object is rejected). A zstd object cut exactly
//! between two frames cannot be told from a shorter valid one: zstd has no end-of-stream mark.

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

/// A failure of the download itself (retryable), as opposed to data that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("reading the object body failed: {0}")]
pub struct BodyError(#[source] std::io::Error);

/// Whether a read error came from the download rather than from decoding.
pub fn is_body_error(error: &std::io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<BodyError>())
}

/// Tags the body's own errors, so that a decoder's errors (corrupt data, the size cap:
/// permanent) can be told apart from the download's (retryable), whatever their kind.
struct TagBodyErrors(BoxedRead);

fn tag(error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), BodyError(error))
}

impl AsyncRead for TagBodyErrors {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.0.as_mut().poll_read(cx, buf).map_err(tag)
    }
}

impl AsyncBufRead for TagBodyErrors {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        self.get_mut().0.as_mut().poll_fill_buf(cx).map_err(tag)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        self.0.as_mut().consume(amt)
    }
}

/// The decoded bytes of `body`, capped at `max_decoded` for compressed encodings. Errors of
/// `body` itself come out tagged ([`is_body_error`]); any other read error of a compressed
/// object (corrupt data, the cap) is permanent.
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
    let body = TagBodyErrors(Box::pin(body));
    match encoding {
        Encoding::Plain => Box::pin(body),
        Encoding::Gzip => {
            let mut decoder = GzipDecoder::new(body);
            decoder.multiple_members(true); // concatenated gzip files are one stream
            capped(Box::pin(decoder))
        }
        Encoding::Zstd => {
            let mut decoder = ZstdDecoder::new(body);
            // Concatenated frames (appended files, pzstd, seekable zstd) are one stream: without
            // this the decoder ends at the first frame and the rest is lost without an error.
            decoder.multiple_members(true);
            capped(Box::pin(decoder))
        }
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

/// Compressed bytes for the tests of every layer (one fixture, not a copy per test file).
#[cfg(test)]
pub(crate) mod testing {
    use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
    use tokio::io::AsyncWriteExt;

    pub async fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzipEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    }

    pub async fn zstd(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZstdEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{gzip, zstd};
    use super::*;
    use tokio::io::AsyncReadExt;

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

    async fn compress(encoding: Encoding, bytes: &[u8]) -> Vec<u8> {
        match encoding {
            Encoding::Gzip => gzip(bytes).await,
            Encoding::Zstd => zstd(bytes).await,
            Encoding::Plain => bytes.to_vec(),
        }
    }

    #[tokio::test]
    async fn every_zstd_frame_and_gzip_member_is_decoded_even_when_one_ends_mid_row() {
        // The first frame ends inside a row: the row is whole only if both frames are read.
        let parts: [&[u8]; 3] = [
            b"timestamp,temp,humidity,measure_point\n2022-01-01 00:00:00 UTC,1,2,A\n2022-01-0",
            b"1 00:00:01 UTC,1,2,B\n",
            b"2022-01-01 00:00:02 UTC,1,2,C\n",
        ];
        let whole = parts.concat();
        for encoding in [Encoding::Zstd, Encoding::Gzip] {
            let mut stored = Vec::new();
            for part in parts {
                stored.extend(compress(encoding, part).await);
            }
            let out = read_all(decoded(std::io::Cursor::new(stored), encoding, u64::MAX));
            assert_eq!(out.await.unwrap(), whole, "{encoding:?}");
        }
    }

    #[tokio::test]
    async fn a_stream_cut_anywhere_inside_a_frame_or_member_is_an_error() {
        // Cut at every byte: either the read fails, or the cut fell exactly between two
        // frames (members) and what came out is exactly the frames before it.
        let parts: [&[u8]; 2] = [b"a,b\n1,2\n3,", b"4\n5,6\n"];
        for encoding in [Encoding::Zstd, Encoding::Gzip] {
            let frames = [
                compress(encoding, parts[0]).await,
                compress(encoding, parts[1]).await,
            ];
            let stored = frames.concat();
            for cut in 1..stored.len() {
                let out = read_all(decoded(
                    std::io::Cursor::new(stored[..cut].to_vec()),
                    encoding,
                    u64::MAX,
                ))
                .await;
                match out {
                    Err(error) => assert!(!is_body_error(&error), "{encoding:?} at {cut}"),
                    Ok(bytes) => assert!(
                        cut == frames[0].len() && bytes == parts[0],
                        "{encoding:?} cut at {cut} of {} decoded {} bytes without an error",
                        stored.len(),
                        bytes.len()
                    ),
                }
            }
        }
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
        assert!(!is_body_error(&err), "{err:?}");
        // A flipped bit inside gzip data (its CRC catches any), and a cut zstd stream.
        let text = b"timestamp,temp\n".repeat(500);
        let mut flipped = gzip(&text).await;
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        let mut cut = zstd(&text).await;
        cut.truncate(cut.len() - 3);
        for (bytes, encoding) in [(flipped, Encoding::Gzip), (cut, Encoding::Zstd)] {
            let err = read_all(decoded(std::io::Cursor::new(bytes), encoding, u64::MAX))
                .await
                .unwrap_err();
            assert!(!is_body_error(&err), "{encoding:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn errors_of_the_download_are_tagged_as_such() {
        let failing = tokio_test_reader();
        let err = read_all(decoded(failing, Encoding::Gzip, u64::MAX))
            .await
            .unwrap_err();
        assert!(is_body_error(&err), "{err:?}");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    }

    /// A body that fails like a dropped connection.
    fn tokio_test_reader() -> impl AsyncBufRead + Send + 'static {
        struct Failing;
        impl AsyncRead for Failing {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
            }
        }
        BufReader::new(Failing)
    }
}

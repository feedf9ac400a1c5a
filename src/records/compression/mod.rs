//! Compression codecs for record batches.
//!
//! Each codec sits behind its cargo feature (`gzip`, `snappy`, `lz4`, `zstd`).
//! A build without a codec still recognises it on the wire and reports
//! [`RecordsError::CodecNotEnabled`] instead of failing to compile or
//! misreading data.
//!
//! Every decompressor is bounded: it stops with
//! [`RecordsError::DecompressedTooLarge`] as soon as the output would pass the
//! caller's limit, and it never reserves memory from a size claimed by the
//! input beyond that limit.

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
mod lz4;
#[cfg(feature = "lz4")]
mod lz4_block;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(feature = "lz4")]
mod xxh32;
#[cfg(feature = "zstd")]
mod zstd;

use bytes::{Bytes, BytesMut};

use super::RecordsError;

/// The default bound on decompressed bytes per batch: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// A compression codec, as numbered in the low three bits of batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// Snappy (id 2); written with the xerial framing the Java client uses.
    Snappy,
    /// LZ4 frame format (id 3).
    Lz4,
    /// Zstandard (id 4); only valid in message format v2.
    Zstd,
}

impl Compression {
    /// The codec for a wire id (the attribute bits 0-2).
    pub fn from_id(id: u8) -> Result<Self, RecordsError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordsError::UnknownCompression(other)),
        }
    }

    /// The codec's wire id.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Whether this build can compress and decompress with the codec.
    pub fn is_enabled(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }
}

/// Compresses `input` with `codec`, appending the result to `out`.
///
/// `level` is the codec's level (`None` for its Kafka default: gzip 6,
/// zstd 3); snappy and lz4 have no levels and ignore it. With
/// [`Compression::None`] the input is appended unchanged.
pub fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), RecordsError> {
    let _ = (level, &input, &out);
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => gzip::compress(level, input, out),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::compress(input, out),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => lz4::compress(input, out),
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::compress(level, input, out),
        #[allow(unreachable_patterns)]
        other => Err(RecordsError::CodecNotEnabled(other)),
    }
}

/// Decompresses `input`, failing with [`RecordsError::DecompressedTooLarge`]
/// if the output would exceed `limit` bytes.
///
/// With [`Compression::None`] the input is returned as is (still subject to
/// the limit).
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Bytes, RecordsError> {
    let out = match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(RecordsError::DecompressedTooLarge { limit });
            }
            input.to_vec()
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => gzip::decompress(input, limit)?,
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::decompress(input, limit)?,
        #[cfg(feature = "lz4")]
        Compression::Lz4 => lz4::decompress(input, limit)?,
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::decompress(input, limit)?,
        #[allow(unreachable_patterns)]
        other => {
            let _ = limit;
            return Err(RecordsError::CodecNotEnabled(other));
        }
    };
    // Records handed out are slices of this buffer and keep all of it
    // alive: give back the growth slack so it holds only the content.
    let mut out = out;
    out.shrink_to_fit();
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a repeating sentence with a counter.
        let mut v = Vec::with_capacity(len);
        let mut i = 0u32;
        while v.len() < len {
            v.extend_from_slice(format!("record {i} of the sample payload; ").as_bytes());
            i += 1;
        }
        v.truncate(len);
        v
    }

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn ids_round_trip_and_unknown_ids_fail() {
        for c in ALL {
            assert_eq!(Compression::from_id(c.id()).unwrap(), c);
        }
        for id in 5..8 {
            assert_eq!(
                Compression::from_id(id),
                Err(RecordsError::UnknownCompression(id))
            );
        }
    }

    #[test]
    fn every_enabled_codec_round_trips() {
        for c in ALL.into_iter().filter(|c| c.is_enabled()) {
            for len in [0usize, 1, 100, 70_000, 300_000] {
                let data = sample(len);
                let mut out = BytesMut::new();
                compress(c, None, &data, &mut out).unwrap();
                let back = decompress(c, &out, DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap();
                assert_eq!(&back[..], &data[..], "{c:?} len {len}");
                if len == 300_000 && c != Compression::None {
                    assert!(out.len() < len / 2, "{c:?} did not compress");
                }
            }
        }
    }

    #[test]
    fn decompression_is_bounded_for_every_codec() {
        let data = vec![0u8; 1_000_000];
        for c in ALL.into_iter().filter(|c| c.is_enabled()) {
            let mut out = BytesMut::new();
            compress(c, None, &data, &mut out).unwrap();
            assert_eq!(
                decompress(c, &out, 999_999),
                Err(RecordsError::DecompressedTooLarge { limit: 999_999 }),
                "{c:?}"
            );
            assert_eq!(decompress(c, &out, 1_000_000).unwrap().len(), 1_000_000);
        }
    }

    #[test]
    fn disabled_codecs_report_a_typed_error() {
        for c in ALL.into_iter().filter(|c| !c.is_enabled()) {
            let mut out = BytesMut::new();
            assert_eq!(
                compress(c, None, b"x", &mut out),
                Err(RecordsError::CodecNotEnabled(c))
            );
            assert_eq!(
                decompress(c, b"x", 10),
                Err(RecordsError::CodecNotEnabled(c))
            );
        }
    }
}

//! The error type of the records layer.

use crate::protocol::{DecodeError, EncodeError};

use super::compression::Compression;

/// Why record bytes could not be decoded, or a batch could not be built.
///
/// Decoding never panics: any input either decodes or ends in one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// A primitive could not be read (input ended early, bad varint, ...).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A value could not be written in the wire format.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The checksum stored in a batch or message does not match its contents.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The checksum carried on the wire.
        stored: u32,
        /// The checksum of the bytes actually received.
        computed: u32,
    },
    /// The magic byte names a message format this library does not know.
    #[error("unsupported message format magic {0}")]
    UnsupportedMagic(i8),
    /// The compression bits name no known codec.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    /// The codec is known but this build left its cargo feature out.
    #[error("{0:?} compression is not enabled in this build (cargo feature missing)")]
    CodecNotEnabled(Compression),
    /// The codec is not allowed in this message format (zstd in magic 0/1).
    #[error("{codec:?} compression cannot be used with message format magic {magic}")]
    CodecNotAllowed {
        /// The codec that was found.
        codec: Compression,
        /// The message format version.
        magic: i8,
    },
    /// Decompressing would produce more bytes than the configured limit.
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
    /// The codec rejected its input or failed to compress.
    #[error("{codec:?} codec error: {message}")]
    Codec {
        /// The codec involved.
        codec: Compression,
        /// What the codec reported.
        message: String,
    },
    /// The bytes are structurally invalid (impossible sizes, leftover bytes, ...).
    #[error("corrupt records: {0}")]
    Corrupt(String),
    /// A batch being built cannot take the value (offset delta overflow, too large, ...).
    #[error("cannot build batch: {0}")]
    Build(String),
}

impl RecordsError {
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        RecordsError::Corrupt(message.into())
    }

    #[cfg_attr(
        not(any(
            feature = "gzip",
            feature = "snappy",
            feature = "lz4",
            feature = "zstd"
        )),
        allow(dead_code)
    )]
    pub(crate) fn codec(codec: Compression, err: impl std::fmt::Display) -> Self {
        RecordsError::Codec {
            codec,
            message: err.to_string(),
        }
    }
}

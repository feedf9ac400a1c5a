//! Zstandard through the `zstd` crate, decoded with its streaming decoder so
//! the output (and the window the decoder may allocate) stays bounded.

use bytes::BytesMut;

use super::{read_bounded, Compression};
use crate::records::RecordsError;

const CODEC: Compression = Compression::Zstd;

/// Kafka's default zstd level.
const DEFAULT_LEVEL: i32 = 3;

pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), RecordsError> {
    let level = level.unwrap_or(DEFAULT_LEVEL);
    if !zstd::compression_level_range().contains(&level) {
        return Err(RecordsError::Build(format!("invalid zstd level {level}")));
    }
    let compressed =
        zstd::bulk::compress(input, level).map_err(|e| RecordsError::codec(CODEC, e))?;
    out.extend_from_slice(&compressed);
    Ok(())
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let mut dec = zstd::stream::read::Decoder::with_buffer(input)
        .map_err(|e| RecordsError::codec(CODEC, e))?;
    // Refuse windows larger than the output could ever need, but never below
    // the 8 MiB every decoder is expected to support.
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    dec.window_log_max(needed.clamp(23, 30))
        .map_err(|e| RecordsError::codec(CODEC, e))?;
    read_bounded(dec, CODEC, input.len(), limit)
}

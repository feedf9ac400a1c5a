//! Zstandard through the `zstd` crate, decoded with its streaming decoder so
//! the output (and the window the decoder may allocate) stays bounded.

use std::cell::RefCell;

use bytes::BytesMut;

use super::{read_bounded, Compression};
use crate::records::RecordsError;

const CODEC: Compression = Compression::Zstd;

/// Kafka's default zstd level.
const DEFAULT_LEVEL: i32 = 3;

thread_local! {
    /// One compression context per thread, reused across batches: creating a
    /// zstd context costs more than compressing a small batch.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

/// Compresses `input` straight into `out` (no intermediate buffer): `out`
/// grows by the codec's worst-case bound, the frame is written in place and
/// `out` is cut back to what was written.
pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), RecordsError> {
    let level = level.unwrap_or(DEFAULT_LEVEL);
    if !zstd::compression_level_range().contains(&level) {
        return Err(RecordsError::Build(format!("invalid zstd level {level}")));
    }
    let start = out.len();
    out.resize(start + zstd::zstd_safe::compress_bound(input.len()), 0);
    let written = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = match &mut *cell {
            Some((cached, compressor)) if *cached == level => compressor,
            slot => {
                let compressor = zstd::bulk::Compressor::new(level)
                    .map_err(|e| RecordsError::codec(CODEC, e))?;
                &mut slot.insert((level, compressor)).1
            }
        };
        compressor
            .compress_to_buffer(input, &mut out[start..])
            .map_err(|e| RecordsError::codec(CODEC, e))
    });
    match written {
        Ok(written) => {
            out.truncate(start + written);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
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

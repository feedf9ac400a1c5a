//! gzip through `flate2` (pure-Rust backend).

use std::io::Write;

use bytes::{BufMut, BytesMut};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{read_bounded, Compression};
use crate::records::RecordsError;

const CODEC: Compression = Compression::Gzip;

pub(super) fn compress(
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), RecordsError> {
    let level = match level {
        None | Some(-1) => flate2::Compression::default(),
        Some(l @ 0..=9) => flate2::Compression::new(l.unsigned_abs()),
        Some(l) => return Err(RecordsError::Build(format!("invalid gzip level {l}"))),
    };
    let mut enc = GzEncoder::new(out.writer(), level);
    enc.write_all(input)
        .and_then(|()| enc.try_finish())
        .map_err(|e| RecordsError::codec(CODEC, e))
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    // Java's GZIPInputStream reads concatenated members; so does this.
    read_bounded(MultiGzDecoder::new(input), CODEC, input.len(), limit)
}

//! LZ4 frame format through `lz4_flex`.
//!
//! Kafka (message format v1 and later) uses the standard LZ4 frame. The Java
//! client writes 64 KiB independent blocks with neither block nor content
//! checksums; this module writes exactly that, so Java, librdkafka and any
//! standard LZ4 frame reader accept the output. Decoding accepts any standard
//! frame (checksums are verified when present).
//!
//! Memory: the output is bounded by the caller's limit. Independently of it,
//! the decoder's working buffers are sized from the frame's declared maximum
//! block size, which the format caps at 4 MiB (about 8 MiB of buffers for
//! linked blocks); that fixed, format-imposed cost is the only allocation not
//! scaled to the limit.
//!
//! Not supported: the broken header checksum that Kafka 0.8/0.9 wrote in
//! magic 0 LZ4 messages (the Java client only tolerates it for magic 0); such
//! frames fail with a codec error.

use std::io::Write;

use bytes::{BufMut, BytesMut};
use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{read_bounded, Compression};
use crate::records::RecordsError;

const CODEC: Compression = Compression::Lz4;

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), RecordsError> {
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent)
        .block_checksums(false)
        .content_checksum(false);
    let mut enc = FrameEncoder::with_frame_info(info, out.writer());
    enc.write_all(input)
        .map_err(|e| RecordsError::codec(CODEC, e))?;
    enc.finish().map_err(|e| RecordsError::codec(CODEC, e))?;
    Ok(())
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    read_bounded(FrameDecoder::new(input), CODEC, input.len(), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_matches_what_the_java_client_writes() {
        // Magic 0x184D2204 (little endian), FLG 0x60 (version 01, independent
        // blocks, no checksums, no content size), BD 0x40 (64 KiB blocks),
        // then the header checksum byte, (xxh32(FLG BD) >> 8) & 0xff = 0x82.
        let mut out = BytesMut::new();
        compress(b"hello hello hello hello", &mut out).unwrap();
        assert_eq!(&out[..7], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
        // The frame ends with the zero end mark and no content checksum.
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 0]);
    }

    #[test]
    fn corrupt_frames_fail_cleanly() {
        let mut out = BytesMut::new();
        compress(&[7u8; 10_000], &mut out).unwrap();
        let mut bad = out.to_vec();
        bad[6] ^= 0xff; // header checksum
        assert!(decompress(&bad, 1 << 20).is_err());
        assert!(decompress(&out[..out.len() - 6], 1 << 20).is_err());
    }
}

//! Snappy through `snap`.
//!
//! The Java client wraps snappy in the xerial `snappy-java` stream framing: an
//! 8-byte magic (`0x82 "SNAPPY" 0x00`), a big-endian `i32` version and an
//! `i32` minimum compatible version, then any number of chunks, each a
//! big-endian `i32` length followed by one raw snappy block. librdkafka and
//! some other clients write a single raw snappy block instead. Decoding accepts
//! both; encoding writes the xerial framing, which every client reads.

use bytes::{BufMut, BytesMut};
use snap::raw::{decompress_len, max_compress_len, Decoder, Encoder};

use super::Compression;
use crate::records::RecordsError;

const CODEC: Compression = Compression::Snappy;

/// The xerial stream magic.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic plus the two version fields.
const XERIAL_HEADER_LEN: usize = 16;
/// The version numbers snappy-java writes.
const XERIAL_VERSION: i32 = 1;
const XERIAL_COMPATIBLE_VERSION: i32 = 1;
/// snappy-java's default chunk size.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), RecordsError> {
    out.reserve(XERIAL_HEADER_LEN + max_compress_len(XERIAL_BLOCK_SIZE.min(input.len())) + 4);
    out.put_slice(&XERIAL_MAGIC);
    out.put_i32(XERIAL_VERSION);
    out.put_i32(XERIAL_COMPATIBLE_VERSION);
    let mut enc = Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
        let max = max_compress_len(chunk.len());
        let len_at = out.len();
        out.put_i32(0);
        let start = out.len();
        out.resize(start + max, 0);
        let written = enc
            .compress(chunk, &mut out[start..])
            .map_err(|e| RecordsError::codec(CODEC, e))?;
        out.truncate(start + written);
        let len =
            i32::try_from(written).map_err(|_| RecordsError::codec(CODEC, "block too large"))?;
        out[len_at..start].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let mut dec = Decoder::new();
    if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
        let chunks = || XerialChunks {
            rest: &input[XERIAL_HEADER_LEN..],
        };
        // First pass: every chunk's framing and claimed size, each claim
        // checked against what its block can hold and their sum against the
        // limit, so the output is allocated once, at its exact size (not
        // grown by doubling, chunk after chunk).
        let mut total: usize = 0;
        for block in chunks() {
            total = total
                .checked_add(checked_claim(block?, limit, limit)?)
                .filter(|&t| t <= limit)
                .ok_or(RecordsError::DecompressedTooLarge { limit })?;
        }
        let mut out = Vec::with_capacity(total);
        for block in chunks() {
            decompress_block(&mut dec, block?, &mut out, limit)?;
        }
        Ok(out)
    } else {
        let mut out = Vec::new();
        decompress_block(&mut dec, input, &mut out, limit)?;
        Ok(out)
    }
}

/// The blocks of a xerial stream (after its header), each framed by a
/// big-endian i32 length.
struct XerialChunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for XerialChunks<'a> {
    type Item = Result<&'a [u8], RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((len_bytes, tail)) = self.rest.split_first_chunk::<4>() else {
            self.rest = &[];
            return Some(Err(RecordsError::codec(
                CODEC,
                "truncated xerial chunk length",
            )));
        };
        let Ok(len) = usize::try_from(i32::from_be_bytes(*len_bytes)) else {
            self.rest = &[];
            return Some(Err(RecordsError::codec(
                CODEC,
                "negative xerial chunk length",
            )));
        };
        if len > tail.len() {
            self.rest = &[];
            return Some(Err(RecordsError::codec(CODEC, "truncated xerial chunk")));
        }
        let (block, after) = tail.split_at(len);
        self.rest = after;
        Some(Ok(block))
    }
}

/// The most one byte of a snappy block can expand to: the densest element
/// is a 3-byte copy (tag plus a 2-byte offset) of 64 bytes, 21.3x.
const MAX_EXPANSION: usize = 22;

/// The decompressed size a raw block claims, refused when over `room` (what
/// is left of the decompression `limit`) or more than the block could
/// expand to.
fn checked_claim(block: &[u8], room: usize, limit: usize) -> Result<usize, RecordsError> {
    let claimed = decompress_len(block).map_err(|e| RecordsError::codec(CODEC, e))?;
    if claimed > room {
        return Err(RecordsError::DecompressedTooLarge { limit });
    }
    if claimed > block.len().saturating_mul(MAX_EXPANSION) {
        return Err(RecordsError::codec(
            CODEC,
            format!(
                "block of {} bytes claims {claimed} bytes, more than it can hold",
                block.len()
            ),
        ));
    }
    Ok(claimed)
}

/// Appends one raw snappy block to `out`, checking the length the block
/// claims against `limit` and against what the block's size could possibly
/// hold before reserving anything.
fn decompress_block(
    dec: &mut Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), RecordsError> {
    let claimed = checked_claim(block, limit.saturating_sub(out.len()), limit)?;
    let start = out.len();
    let end = start
        .checked_add(claimed)
        .filter(|&end| end <= limit)
        .ok_or(RecordsError::DecompressedTooLarge { limit })?;
    out.resize(end, 0);
    let written = dec
        .decompress(block, &mut out[start..])
        .map_err(|e| RecordsError::codec(CODEC, e))?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_snappy_blocks_decode() {
        let data = b"raw snappy as librdkafka writes it, raw snappy, raw snappy".repeat(20);
        let raw = Encoder::new().compress_vec(&data).unwrap();
        assert_ne!(raw[..8], XERIAL_MAGIC);
        assert_eq!(decompress(&raw, 1 << 20).unwrap(), data);
    }

    #[test]
    fn a_xerial_stream_of_many_chunks_decodes_into_one_exact_allocation() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
            .collect();
        let mut stream = BytesMut::new();
        compress(&data, &mut stream).unwrap();
        let out = decompress(&stream, 1 << 20).unwrap();
        assert_eq!(out, data);
        // Sized once from the chunks' claims, not grown chunk by chunk.
        assert_eq!(out.capacity(), data.len());
        assert!(matches!(
            decompress(&stream, data.len() - 1),
            Err(RecordsError::DecompressedTooLarge { limit }) if limit == data.len() - 1
        ));
    }

    #[test]
    fn hand_built_xerial_stream_decodes() {
        // Two chunks, built by hand from the framing description.
        let a = b"first chunk first chunk first chunk".to_vec();
        let b = b"second chunk".to_vec();
        let mut stream = Vec::new();
        stream.extend_from_slice(&[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0]);
        stream.extend_from_slice(&1i32.to_be_bytes());
        stream.extend_from_slice(&1i32.to_be_bytes());
        for chunk in [&a, &b] {
            let c = Encoder::new().compress_vec(chunk).unwrap();
            stream.extend_from_slice(&(c.len() as i32).to_be_bytes());
            stream.extend_from_slice(&c);
        }
        let mut expected = a.clone();
        expected.extend_from_slice(&b);
        assert_eq!(decompress(&stream, 1 << 20).unwrap(), expected);
        // A chunk cut short is an error, not a panic or a silent truncation.
        assert!(decompress(&stream[..stream.len() - 2], 1 << 20).is_err());
    }

    #[test]
    fn encoder_writes_xerial_framing_in_32k_chunks() {
        let data = vec![3u8; 70_000];
        let mut out = BytesMut::new();
        compress(&data, &mut out).unwrap();
        assert_eq!(out[..8], XERIAL_MAGIC);
        assert_eq!(out[8..16], [0, 0, 0, 1, 0, 0, 0, 1]);
        // 70 000 bytes => chunks of 32768, 32768 and 4464 bytes.
        let mut rest = &out[16..];
        let mut sizes = Vec::new();
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            sizes.push(decompress_len(&rest[4..4 + len]).unwrap());
            rest = &rest[4 + len..];
        }
        assert_eq!(sizes, vec![32768, 32768, 4464]);
    }

    #[test]
    fn the_densest_blocks_are_within_the_expansion_bound() {
        // Long runs compress to 3-byte 64-byte copies: the worst real ratio.
        for len in [1usize, 64, 1000, 65_536, 1 << 20] {
            let data = vec![b'z'; len];
            let block = Encoder::new().compress_vec(&data).unwrap();
            assert!(
                len <= block.len() * MAX_EXPANSION,
                "{len} from {}",
                block.len()
            );
            assert_eq!(decompress(&block, 1 << 21).unwrap(), data);
        }
    }

    #[test]
    fn claimed_length_over_the_limit_is_refused_before_allocating() {
        // A raw block whose varint preamble claims 4 GiB - 1.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert_eq!(
            decompress(&bomb, 1 << 20),
            Err(RecordsError::DecompressedTooLarge { limit: 1 << 20 })
        );
    }
}

//! LZ4 frame format, framed here; blocks compressed by our own block
//! compressor (`lz4_block`) and decoded with `lz4_flex`.
//!
//! Kafka (message format v1 and later) uses the standard LZ4 frame. The Java
//! client writes 64 KiB independent blocks with neither block nor content
//! checksums; the encoder writes exactly that, so Java, librdkafka and any
//! standard LZ4 frame reader accept the output. Decoding accepts any
//! standard frame (linked or independent blocks; block, content and header
//! checksums are verified when present; concatenated and skippable frames).
//!
//! Memory: decoding first walks the frame and the sequences of every block,
//! without copying anything, to learn the exact decompressed size (checking
//! every match offset on the way); it then allocates the output once, at
//! that size, and decompresses each block straight into it. Nothing is sized
//! from a size the frame merely declares (block maximum, content size), and
//! no per-batch working buffers are needed.
//!
//! Not supported: the broken header checksum that Kafka 0.8/0.9 wrote in
//! magic 0 LZ4 messages (the Java client only tolerates it for magic 0); such
//! frames fail with a codec error. Dictionary ids are refused.

use bytes::{BufMut, BytesMut};
use lz4_flex::block;

use super::lz4_block::{max_compressed_len, BlockCompressor, MAX_BLOCK_LEN};
use super::Compression;
use crate::records::RecordsError;

const CODEC: Compression = Compression::Lz4;

const MAGIC: u32 = 0x184D_2204;
/// Skippable frames: magic 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// The block size the encoder writes (Java's default).
const BLOCK_SIZE: usize = MAX_BLOCK_LEN;
/// How far back a match in a linked block may reach.
const WINDOW: usize = 64 * 1024;

const FLG_INDEPENDENT: u8 = 0x20;
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
const FLG_DICT_ID: u8 = 0x01;

fn err(message: impl std::fmt::Display) -> RecordsError {
    RecordsError::codec(CODEC, message)
}

pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> Result<(), RecordsError> {
    let flg = 0x40 | FLG_INDEPENDENT;
    let bd = 0x40; // 64 KiB blocks
    let blocks = input.len().div_ceil(BLOCK_SIZE);
    out.reserve(7 + blocks * (4 + max_compressed_len(0)) + max_compressed_len(input.len()) + 4);
    out.put_u32_le(MAGIC);
    out.put_u8(flg);
    out.put_u8(bd);
    out.put_u8(header_checksum(&[flg, bd]));
    let mut compressor = BlockCompressor::new();
    // Each block is compressed into this scratch space, which stays in the
    // cache from block to block, and only its compressed bytes are copied
    // out: the output is written once, and never zeroed to the block's
    // worst-case size first (that zeroing was 2.5% of a producer's CPU on
    // lz4 batches; BENCHMARKS.md, "LZ4 scratch block").
    let mut scratch = vec![0u8; max_compressed_len(BLOCK_SIZE.min(input.len()))];
    for chunk in input.chunks(BLOCK_SIZE) {
        let written = compressor.compress(chunk, &mut scratch);
        if written < chunk.len() {
            out.put_u32_le(written as u32);
            out.put_slice(&scratch[..written]);
        } else {
            // Incompressible: store the chunk as is (high bit set).
            out.put_u32_le(chunk.len() as u32 | 0x8000_0000);
            out.put_slice(chunk);
        }
    }
    out.put_u32_le(0); // end mark
    Ok(())
}

fn header_checksum(descriptor: &[u8]) -> u8 {
    (super::xxh32::xxh32(descriptor, 0) >> 8) as u8
}

/// A frame's header fields that matter for decoding.
struct FrameHeader {
    independent: bool,
    block_checksum: bool,
    content_checksum: bool,
    content_size: Option<u64>,
    block_max: usize,
}

/// Reads a frame header at the start of `input`; returns it and its length.
fn read_header(input: &[u8]) -> Result<(FrameHeader, usize), RecordsError> {
    if input.len() < 7 {
        return Err(err("truncated frame header"));
    }
    let flg = input[4];
    let bd = input[5];
    if flg >> 6 != 1 {
        return Err(err(format!("unsupported frame version {}", flg >> 6)));
    }
    if flg & 0x02 != 0 || bd & 0x8F != 0 {
        return Err(err("reserved frame header bits set"));
    }
    if flg & FLG_DICT_ID != 0 {
        return Err(err("frames with a dictionary id are not supported"));
    }
    let block_max = match (bd >> 4) & 0x07 {
        4 => 64 * 1024,
        5 => 256 * 1024,
        6 => 1024 * 1024,
        7 => 4 * 1024 * 1024,
        other => return Err(err(format!("invalid block maximum size id {other}"))),
    };
    let mut len = 6;
    let content_size = if flg & FLG_CONTENT_SIZE != 0 {
        let bytes = input
            .get(6..14)
            .ok_or_else(|| err("truncated frame header"))?;
        len = 14;
        Some(u64::from_le_bytes(bytes.try_into().map_err(err)?))
    } else {
        None
    };
    let hc = *input
        .get(len)
        .ok_or_else(|| err("truncated frame header"))?;
    if hc != header_checksum(&input[4..len]) {
        return Err(err("frame header checksum mismatch"));
    }
    Ok((
        FrameHeader {
            independent: flg & FLG_INDEPENDENT != 0,
            block_checksum: flg & FLG_BLOCK_CHECKSUM != 0,
            content_checksum: flg & FLG_CONTENT_CHECKSUM != 0,
            content_size,
            block_max,
        },
        len + 1,
    ))
}

fn read_u32_le(input: &[u8], at: usize) -> Result<u32, RecordsError> {
    input
        .get(at..at.saturating_add(4))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| err("truncated frame"))
}

/// One block of a frame, as found by [`walk`].
struct BlockRef<'a> {
    data: &'a [u8],
    compressed: bool,
    /// Whether earlier output of the same frame may be referenced.
    linked: bool,
    /// Where this block's frame started in the output.
    frame_start: usize,
}

/// What [`walk`] reports, in order.
enum Event<'a> {
    /// A block; the callback returns its decoded length.
    Block(BlockRef<'a>),
    /// The end of a frame that started at `frame_start` in the output, with
    /// its stored content checksum if it has one.
    FrameEnd {
        frame_start: usize,
        content_checksum: Option<u32>,
    },
}

/// Walks every frame of `input`, checking framing and the checksums of the
/// compressed data, and reports each block and frame end to `on_event`.
fn walk<'a>(
    input: &'a [u8],
    mut on_event: impl FnMut(Event<'a>) -> Result<usize, RecordsError>,
) -> Result<(), RecordsError> {
    let mut rest = input;
    let mut produced = 0usize;
    if rest.is_empty() {
        return Err(err("empty input"));
    }
    while !rest.is_empty() {
        let magic = read_u32_le(rest, 0)?;
        if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let size = read_u32_le(rest, 4)? as usize;
            let end = size
                .checked_add(8)
                .filter(|&end| end <= rest.len())
                .ok_or_else(|| err("truncated skippable frame"))?;
            rest = &rest[end..];
            continue;
        }
        if magic != MAGIC {
            return Err(err(format!("bad frame magic {magic:#010x}")));
        }
        let (header, header_len) = read_header(rest)?;
        let frame_start = produced;
        let mut at = header_len;
        loop {
            let word = read_u32_le(rest, at)?;
            at += 4;
            if word == 0 {
                break;
            }
            let size = (word & 0x7FFF_FFFF) as usize;
            if size > header.block_max {
                return Err(err(format!(
                    "block of {size} bytes in a frame of {}-byte blocks",
                    header.block_max
                )));
            }
            let data = rest
                .get(at..at + size)
                .ok_or_else(|| err("truncated block"))?;
            at += size;
            if header.block_checksum {
                let stored = read_u32_le(rest, at)?;
                at += 4;
                if stored != super::xxh32::xxh32(data, 0) {
                    return Err(err("block checksum mismatch"));
                }
            }
            produced += on_event(Event::Block(BlockRef {
                data,
                compressed: word & 0x8000_0000 == 0,
                linked: !header.independent,
                frame_start,
            }))?;
        }
        let content_checksum = if header.content_checksum {
            let stored = read_u32_le(rest, at)?;
            at += 4;
            Some(stored)
        } else {
            None
        };
        if let Some(size) = header.content_size {
            if u64::try_from(produced - frame_start).ok() != Some(size) {
                return Err(err("content size mismatch"));
            }
        }
        on_event(Event::FrameEnd {
            frame_start,
            content_checksum,
        })?;
        rest = &rest[at..];
    }
    Ok(())
}

/// The number of bytes a compressed block decodes to, found by walking its
/// sequences; every match offset is checked against the bytes available
/// (`history` from earlier blocks plus this block's output so far).
fn block_output_len(block: &[u8], history: usize, max: usize) -> Result<usize, RecordsError> {
    let truncated = || err("truncated block sequence");
    let mut at = 0usize;
    let mut out = 0usize;
    let read_extra = |at: &mut usize, mut len: usize| -> Result<usize, RecordsError> {
        loop {
            let byte = *block.get(*at).ok_or_else(truncated)?;
            *at += 1;
            len += usize::from(byte);
            if byte != 255 {
                return Ok(len);
            }
        }
    };
    loop {
        let token = *block.get(at).ok_or_else(truncated)?;
        at += 1;
        let mut literals = usize::from(token >> 4);
        if literals == 15 {
            literals = read_extra(&mut at, literals)?;
        }
        at = at
            .checked_add(literals)
            .filter(|&end| end <= block.len())
            .ok_or_else(truncated)?;
        out += literals;
        if at == block.len() {
            break;
        }
        let offset = usize::from(u16::from_le_bytes([
            *block.get(at).ok_or_else(truncated)?,
            *block.get(at + 1).ok_or_else(truncated)?,
        ]));
        at += 2;
        if offset == 0 || offset > out + history {
            return Err(err(format!(
                "match offset {offset} reaches before the data"
            )));
        }
        let mut match_len = usize::from(token & 0x0F);
        if match_len == 15 {
            match_len = read_extra(&mut at, match_len)?;
        }
        out += match_len + 4;
        if out > max {
            return Err(err(format!(
                "block decodes to more than its {max}-byte maximum"
            )));
        }
    }
    if out > max {
        return Err(err(format!(
            "block decodes to more than its {max}-byte maximum"
        )));
    }
    Ok(out)
}

pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    // Pass 1: sizes only, nothing copied or allocated.
    let mut total = 0usize;
    walk(input, |event| {
        let Event::Block(block) = event else {
            return Ok(0);
        };
        let len = if block.compressed {
            let history = if block.linked {
                (total - block.frame_start).min(WINDOW)
            } else {
                0
            };
            block_output_len(block.data, history, usize::MAX)?
        } else {
            block.data.len()
        };
        total = total
            .checked_add(len)
            .filter(|&t| t <= limit)
            .ok_or(RecordsError::DecompressedTooLarge { limit })?;
        Ok(len)
    })?;
    // Pass 2: one allocation of exactly the output, blocks decoded into it.
    let mut out = vec![0u8; total];
    let mut pos = 0usize;
    walk(input, |event| match event {
        Event::Block(block) if block.compressed => {
            let (before, after) = out.split_at_mut(pos);
            let written = if block.linked {
                let dict = &before[block.frame_start.max(pos.saturating_sub(WINDOW))..];
                block::decompress_into_with_dict(block.data, after, dict)
            } else {
                block::decompress_into(block.data, after)
            }
            .map_err(err)?;
            pos += written;
            Ok(written)
        }
        Event::Block(block) => {
            out.get_mut(pos..pos + block.data.len())
                .ok_or_else(|| err("block sizes changed between passes"))?
                .copy_from_slice(block.data);
            pos += block.data.len();
            Ok(block.data.len())
        }
        Event::FrameEnd {
            frame_start,
            content_checksum: Some(stored),
        } if stored != super::xxh32::xxh32(&out[frame_start..pos], 0) => {
            Err(err("content checksum mismatch"))
        }
        Event::FrameEnd { .. } => Ok(0),
    })?;
    if pos != total {
        return Err(err(
            "blocks decoded to other sizes than their sequences say",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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

    /// Frames written by lz4_flex's own frame encoder in every mode decode
    /// here: linked and independent blocks, checksums, content size, every
    /// block size, incompressible data.
    #[test]
    fn frames_of_every_kind_decode() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let mut data = Vec::new();
        let mut state = 1u32;
        for i in 0..300_000u32 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.push(if i % 3 == 0 {
                (state >> 16) as u8
            } else {
                b'a' + (i % 7) as u8
            });
        }
        for mode in [BlockMode::Linked, BlockMode::Independent] {
            for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max4MB] {
                for checksums in [false, true] {
                    let info = FrameInfo::new()
                        .block_mode(mode)
                        .block_size(size)
                        .block_checksums(checksums)
                        .content_checksum(checksums)
                        .content_size(checksums.then_some(data.len() as u64));
                    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
                    enc.write_all(&data).unwrap();
                    let frame = enc.finish().unwrap();
                    let back = decompress(&frame, 1 << 20).unwrap();
                    assert!(back == data, "{mode:?} {size:?} {checksums}");
                    assert_eq!(back.capacity(), data.len());
                    // Two frames back to back decode as one stream.
                    let mut two = frame.clone();
                    two.extend_from_slice(&frame);
                    assert_eq!(decompress(&two, 1 << 20).unwrap().len(), 2 * data.len());
                    // Corrupt content is caught by the checksums when present.
                    if checksums {
                        let mut bad = frame.clone();
                        let at = bad.len() / 2;
                        bad[at] ^= 0x01;
                        assert!(decompress(&bad, 1 << 20).is_err());
                    }
                }
            }
        }
        // Incompressible data round trips through stored blocks.
        let mut out = BytesMut::new();
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        compress(&noise, &mut out).unwrap();
        assert_eq!(decompress(&out, 1 << 20).unwrap(), noise);
        let mut reader = lz4_flex::frame::FrameDecoder::new(&out[..]);
        let mut via_flex = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut via_flex).unwrap();
        assert_eq!(via_flex, noise);
    }

    /// Our frames decode with our decoder and with `lz4_flex`'s, at every
    /// size around the 64 KiB block boundaries, compressible or not.
    #[test]
    fn frames_round_trip_through_both_decoders_around_block_boundaries() {
        let mut rng = super::super::lz4_block::tests::Rng(0x0123_4567_89ab_cdef);
        let mut next = move || rng.next();
        let text: Vec<u8> = (0..400_000u64)
            .flat_map(|i| {
                let r = next();
                if r % 3 == 0 {
                    r.to_le_bytes().to_vec()
                } else {
                    format!("record {} of {} ", i % 1000, r % 7).into_bytes()
                }
            })
            .collect();
        let noise: Vec<u8> = (0..300_000).map(|_| next() as u8).collect();
        for data in [&text, &noise] {
            for len in [
                0,
                1,
                12,
                13,
                BLOCK_SIZE - 1,
                BLOCK_SIZE,
                BLOCK_SIZE + 1,
                BLOCK_SIZE + 13,
                2 * BLOCK_SIZE,
                2 * BLOCK_SIZE + 5,
                300_000,
            ] {
                let input = &data[..len];
                let mut out = BytesMut::from(&b"prefix"[..]);
                compress(input, &mut out).unwrap();
                assert_eq!(&out[..6], b"prefix");
                let frame = &out[6..];
                assert_eq!(decompress(frame, 1 << 20).unwrap(), input, "len {len}");
                let mut via_flex = Vec::new();
                std::io::Read::read_to_end(
                    &mut lz4_flex::frame::FrameDecoder::new(frame),
                    &mut via_flex,
                )
                .unwrap();
                assert_eq!(via_flex, input, "len {len} through lz4_flex");
                if data == &text && len > 1000 {
                    assert!(frame.len() < len * 3 / 4, "len {len}: {}", frame.len());
                }
                if data == &noise {
                    // Stored blocks: 4 bytes of framing per block, no more.
                    let blocks = len.div_ceil(BLOCK_SIZE);
                    assert_eq!(frame.len(), 7 + 4 * blocks + len + 4, "len {len}");
                }
            }
        }
    }

    #[test]
    fn match_offsets_before_the_data_are_refused() {
        // One literal 'a', then a match at offset 2 (only 1 byte exists).
        let block = [0x10, b'a', 0x02, 0x00, 0x00];
        assert!(block_output_len(&block, 0, usize::MAX).is_err());
        assert_eq!(
            block_output_len(&block, 1, usize::MAX).unwrap(),
            1 + 4 + 1 - 1
        );
    }
}

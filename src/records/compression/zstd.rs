//! Zstandard through the `zstd` crate.
//!
//! Decoding never lets the C library size a buffer from a claim in the
//! input. Frames are decoded in one shot, straight into a buffer this module
//! allocates (zstd then needs no window buffer of its own: the output is the
//! window), with one decoding context per thread. What the frame can really
//! produce is read from its block headers first, and from its declared
//! content size when it has one:
//! - frames that declare their content size (this crate's encoder, most
//!   one-shot encoders) decode into a buffer of that size;
//! - frames that do not (the Java client's and other streaming encoders) are
//!   bounded only by their block maximum, 128 KiB per compressed block, far
//!   more than a small batch holds. When that bound is at most one block,
//!   they decode into a buffer kept per thread and are copied out at their
//!   exact size, so a fetch of many small batches costs each batch only its
//!   content;
//! - larger undeclared frames start at no more than a small multiple of the
//!   input, and the buffer doubles while the output does not fit, up to the
//!   caller's limit.
//!
//! The crate is built with its `with-rust-allocator` feature, so what the C
//! library does allocate (its contexts) goes through Rust's allocator, where
//! allocation tests see it.

use std::cell::RefCell;

use bytes::BytesMut;

use super::Compression;
use crate::records::RecordsError;

const CODEC: Compression = Compression::Zstd;

/// Kafka's default zstd level.
const DEFAULT_LEVEL: i32 = 3;

/// Largest window a frame may declare: 128 MiB, zstd's own default decoder
/// limit (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`), which the Java client (zstd-jni)
/// and librdkafka keep too. Decoding never allocates the window itself.
pub(crate) const MAX_WINDOW_LOG: u32 = 27;

/// The largest output of one block.
const MAX_BLOCK_SIZE: u64 = 128 * 1024;

thread_local! {
    /// One compression context per thread, reused across batches: creating a
    /// zstd context costs more than compressing a small batch.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// One decompression context per thread, for the same reason.
    static DECOMPRESSOR: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { RefCell::new(None) };
    /// Where frames that do not declare their size, and can produce at most
    /// [`SCRATCH_MAX`] bytes, are decoded before being copied out at their
    /// exact size; it grows to at most [`SCRATCH_MAX`] and is kept.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The largest output decoded through the per-thread [`SCRATCH`] buffer:
/// one block's worth, all a frame of a small batch can be bounded by when
/// it does not declare its content size.
const SCRATCH_MAX: u64 = MAX_BLOCK_SIZE;

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

/// Decompresses every frame of `input` into one vector of at most `limit`
/// bytes (see the module documentation for how memory is bounded).
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, RecordsError> {
    let bound = output_bound(input)?;
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    let ceiling = bound.most.min(limit_u64);
    // What a frame that fills every byte up to `ceiling` and wants more is.
    let overflow = || {
        if ceiling == limit_u64 && bound.most > limit_u64 {
            RecordsError::DecompressedTooLarge { limit }
        } else {
            RecordsError::codec(CODEC, "frame produces more than it declares")
        }
    };
    let failed = |code| RecordsError::codec(CODEC, zstd::zstd_safe::get_error_name(code));
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dctx = match &mut *cell {
            Some(dctx) => dctx,
            slot => slot.insert(
                zstd::zstd_safe::DCtx::try_create()
                    .ok_or_else(|| RecordsError::codec(CODEC, "cannot create a context"))?,
            ),
        };
        if !bound.declared && ceiling <= SCRATCH_MAX {
            return SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                scratch.clear();
                scratch.reserve(ceiling as usize);
                match dctx.decompress(&mut *scratch, input) {
                    // The buffer may be larger than this frame's ceiling.
                    Ok(written) if written as u64 > ceiling => Err(overflow()),
                    Ok(_) => Ok(scratch.to_vec()),
                    Err(code) if is_dst_too_small(code) => Err(overflow()),
                    Err(code) => Err(failed(code)),
                }
            });
        }
        // Trust the frame's own bound up to a few times the input; past that,
        // let the output earn its buffer by doubling.
        let start = (input.len() as u64)
            .saturating_mul(4)
            .saturating_add(256 * 1024);
        let mut capacity = ceiling.min(start) as usize;
        loop {
            let mut out = Vec::with_capacity(capacity);
            match dctx.decompress(&mut out, input) {
                Ok(_) => return Ok(out),
                Err(code) if is_dst_too_small(code) => {
                    if capacity as u64 >= ceiling {
                        return Err(overflow());
                    }
                    drop(out);
                    capacity = ceiling.min((capacity as u64).saturating_mul(2).max(1)) as usize;
                }
                Err(code) => return Err(failed(code)),
            }
        }
    })
}

fn is_dst_too_small(code: usize) -> bool {
    let too_small = zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall as usize;
    code == 0usize.wrapping_sub(too_small)
}

fn corrupt(what: &str) -> RecordsError {
    RecordsError::codec(CODEC, what)
}

/// What a sequence of zstd frames can decompress to, from [`output_bound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputBound {
    /// The most the frames can produce.
    pub(crate) most: u64,
    /// Whether every frame declares its content size, so that `most` is
    /// what they say they produce rather than a bound from block maximums.
    pub(crate) declared: bool,
}

/// The most `input` (a sequence of zstd frames) can decompress to, read
/// from the frame and block headers without decoding: raw and RLE blocks
/// state their output size, a compressed block produces at most its
/// frame's block maximum, and a frame's declared content size caps the sum.
/// Fails on malformed headers and on windows beyond [`MAX_WINDOW_LOG`].
pub(crate) fn output_bound(input: &[u8]) -> Result<OutputBound, RecordsError> {
    let mut pos = 0usize;
    let mut total = 0u64;
    let mut declared = true;
    if input.is_empty() {
        return Err(corrupt("empty input"));
    }
    while pos < input.len() {
        let magic = le(input, pos, 4).ok_or_else(|| corrupt("truncated frame magic"))?;
        pos += 4;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            // Skippable frame: a 4-byte size, then that many bytes.
            let size = le(input, pos, 4).ok_or_else(|| corrupt("truncated skippable frame"))?;
            pos = pos
                .checked_add(4 + size as usize)
                .filter(|&end| end <= input.len())
                .ok_or_else(|| corrupt("truncated skippable frame"))?;
            continue;
        }
        if magic != 0xFD2F_B528 {
            return Err(corrupt("unknown frame magic"));
        }
        let descriptor = *input
            .get(pos)
            .ok_or_else(|| corrupt("truncated frame header"))?;
        pos += 1;
        if descriptor & 0x08 != 0 {
            return Err(corrupt("reserved frame header bit set"));
        }
        let single_segment = descriptor & 0x20 != 0;
        let has_checksum = descriptor & 0x04 != 0;
        let window = if single_segment {
            None
        } else {
            let byte = *input
                .get(pos)
                .ok_or_else(|| corrupt("truncated frame header"))?;
            pos += 1;
            let log = 10 + u32::from(byte >> 3);
            if log > MAX_WINDOW_LOG {
                return Err(RecordsError::codec(
                    CODEC,
                    format!(
                        "frame declares a 2^{log}-byte window, above the 2^{MAX_WINDOW_LOG} limit"
                    ),
                ));
            }
            let base = 1u64 << log;
            Some(base + (base / 8) * u64::from(byte & 7))
        };
        pos += [0, 1, 2, 4][usize::from(descriptor & 3)]; // dictionary id
        let content_size = match (descriptor >> 6, single_segment) {
            (0, false) => None,
            (0, true) => Some(le(input, pos, 1).map(|v| (v, 1))),
            (1, _) => Some(le(input, pos, 2).map(|v| (v + 256, 2))),
            (2, _) => Some(le(input, pos, 4).map(|v| (v, 4))),
            _ => Some(le(input, pos, 8).map(|v| (v, 8))),
        };
        let content_size = match content_size {
            None => None,
            Some(None) => return Err(corrupt("truncated frame header")),
            Some(Some((value, width))) => {
                pos += width;
                Some(value)
            }
        };
        let window = match (window, content_size) {
            (Some(window), _) => window,
            (None, Some(size)) => size,
            (None, None) => return Err(corrupt("single-segment frame without a content size")),
        };
        let block_max = window.min(MAX_BLOCK_SIZE);
        let mut frame_bound = 0u64;
        loop {
            let header = le(input, pos, 3).ok_or_else(|| corrupt("truncated block header"))?;
            pos += 3;
            let size = header >> 3;
            let (consumed, produced) = match (header >> 1) & 3 {
                0 => (size, size),
                1 => (1, size),
                2 => (size, block_max),
                _ => return Err(corrupt("reserved block type")),
            };
            if produced > block_max {
                return Err(corrupt("block larger than the frame allows"));
            }
            pos = pos
                .checked_add(consumed as usize)
                .filter(|&end| end <= input.len())
                .ok_or_else(|| corrupt("truncated block"))?;
            frame_bound += produced;
            if header & 1 != 0 {
                break;
            }
        }
        if has_checksum {
            pos += 4;
            if pos > input.len() {
                return Err(corrupt("truncated frame checksum"));
            }
        }
        declared &= content_size.is_some();
        total = total.saturating_add(content_size.map_or(frame_bound, |s| s.min(frame_bound)));
    }
    Ok(OutputBound {
        most: total,
        declared,
    })
}

/// A little-endian integer of `width` bytes at `pos`, if the input holds it.
fn le(input: &[u8], pos: usize, width: usize) -> Option<u64> {
    let bytes = input.get(pos..pos.checked_add(width)?)?;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0, |acc, &b| acc << 8 | u64::from(b)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame with no content size and a raw last block holding `content`,
    /// declaring the window `descriptor` encodes.
    fn raw_frame(descriptor: u8, content: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, descriptor];
        let header = ((content.len() as u32) << 3) | 1; // raw, last
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(content);
        frame
    }

    fn streamed(data: &[u8]) -> Vec<u8> {
        // The streaming encoder does not know the size up front: no content
        // size in the frame, as the Java client writes them.
        zstd::stream::encode_all(data, 3).unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i * 31 % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn bound_covers_the_output() {
        for len in [0usize, 1, 1000, 200_000, 1_000_000] {
            let data = sample(len);
            let mut with_size = BytesMut::new();
            compress(None, &data, &mut with_size).unwrap();
            for frame in [with_size.to_vec(), streamed(&data)] {
                let bound = output_bound(&frame).unwrap().most;
                assert!(bound >= len as u64, "len {len}: bound {bound}");
                // Streaming encoders may cut blocks short of 128 KiB, each
                // counted at the full block size.
                assert!(
                    bound <= 2 * len as u64 + MAX_BLOCK_SIZE,
                    "len {len}: bound {bound}"
                );
                assert_eq!(decompress(&frame, 1 << 30).unwrap(), data);
            }
        }
    }

    #[test]
    fn concatenated_and_skippable_frames_decode() {
        let mut input = streamed(b"hello ");
        input.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        input.extend_from_slice(&raw_frame(0, b"world"));
        assert_eq!(
            output_bound(&input).unwrap(),
            OutputBound {
                most: 11,
                declared: false
            }
        );
        assert_eq!(decompress(&input, 100).unwrap(), b"hello world");
    }

    #[test]
    fn small_undeclared_frames_decode_at_their_exact_size() {
        // A small batch as the Java client writes it: bounded only by the
        // 128 KiB block maximum, since no content size is declared.
        let data = sample(1100);
        let frame = streamed(&data);
        let bound = output_bound(&frame).unwrap();
        assert!(!bound.declared);
        assert_eq!(bound.most, MAX_BLOCK_SIZE);
        let out = decompress(&frame, 1 << 20).unwrap();
        assert_eq!(out, data);
        assert_eq!(out.capacity(), data.len());
        // The per-thread buffer, grown by an earlier frame, does not let a
        // later one pass its own limit.
        let big = streamed(&sample(100_000));
        assert_eq!(decompress(&big, 1 << 20).unwrap().len(), 100_000);
        assert_eq!(
            decompress(&frame, 1099),
            Err(RecordsError::DecompressedTooLarge { limit: 1099 })
        );
        assert_eq!(decompress(&frame, 1100).unwrap(), data);
        // Frames that declare their size are decoded straight into a buffer
        // of that size.
        let mut declared = BytesMut::new();
        compress(None, &data, &mut declared).unwrap();
        assert!(output_bound(&declared).unwrap().declared);
        assert_eq!(
            decompress(&declared, 1 << 20).unwrap().capacity(),
            data.len()
        );
    }

    #[test]
    fn highly_compressible_frames_grow_their_buffer_up_to_the_limit() {
        let zeros = vec![0u8; 5_000_000];
        let frame = streamed(&zeros);
        assert!(frame.len() < 1000);
        assert_eq!(decompress(&frame, 5_000_000).unwrap(), zeros);
        assert_eq!(
            decompress(&frame, 4_999_999),
            Err(RecordsError::DecompressedTooLarge { limit: 4_999_999 })
        );
    }

    #[test]
    fn windows_beyond_the_limit_are_refused_before_decoding() {
        // Window log 27 (128 MiB) for one byte: fine, and no window is allocated.
        let frame = raw_frame(17 << 3, b"a");
        assert_eq!(decompress(&frame, 1 << 20).unwrap(), b"a");
        // Window log 28 and the largest a descriptor can say (2^41).
        for descriptor in [18 << 3, 0xff] {
            let err = decompress(&raw_frame(descriptor, b"a"), 1 << 20).unwrap_err();
            assert!(
                matches!(&err, RecordsError::Codec { message, .. } if message.contains("window")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_errors() {
        let good = streamed(b"some content");
        for cut in 0..good.len() {
            assert!(decompress(&good[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        let mut reserved = good.clone();
        reserved[4] |= 0x08;
        assert!(output_bound(&reserved).is_err());
        // A raw block longer than a 1 KiB window allows.
        let big = raw_frame(0, &[7u8; 2048]);
        assert!(output_bound(&big).is_err());
        // A content size the blocks cannot reach is refused, not trusted.
        // (Descriptor 0xa0: single segment, a 4-byte content size.)
        let mut lying = vec![0x28, 0xb5, 0x2f, 0xfd, 0xa0];
        lying.extend_from_slice(&(1u32 << 20).to_le_bytes());
        lying.extend_from_slice(&[0x09, 0, 0, b'a']);
        assert!(decompress(&lying, 1 << 21).is_err());
    }
}

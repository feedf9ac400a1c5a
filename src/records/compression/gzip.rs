//! gzip through `flate2` (pure-Rust backend).
//!
//! Decoding reads the gzip member framing (RFC 1952) here and inflates each
//! member's deflate data with one `flate2` inflater per thread, reset
//! between members: a fetch of many small gzip batches does not set up
//! (and allocate) an inflater, its window and a read buffer per batch. The
//! output starts at the size the last member's trailer states, when that is
//! no more than a few times the input (a trailer is a claim, so a larger one
//! is not trusted), and grows as the output really arrives, up to the
//! caller's limit. Concatenated members decode as one stream, as Java's
//! `GZIPInputStream` reads them; every member's CRC-32 and length are
//! checked.

use std::cell::RefCell;
use std::io::Write;

use bytes::{BufMut, BytesMut};
use flate2::write::GzEncoder;
use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::Compression;
use crate::records::RecordsError;

const CODEC: Compression = Compression::Gzip;

/// ID1, ID2 and CM (deflate), the only method gzip defines.
const MAGIC: [u8; 3] = [0x1f, 0x8b, 8];
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;
/// The fixed part of a member header, and its trailer (CRC-32, ISIZE).
const HEADER_LEN: usize = 10;
const TRAILER_LEN: usize = 8;
/// The output is sized from a trailer's length only up to this many times
/// the input, plus [`TRUSTED_SLACK`] bytes.
const TRUSTED_RATIO: usize = 4;
const TRUSTED_SLACK: usize = 1024;

thread_local! {
    /// One raw-deflate inflater per thread, reset for every member.
    static INFLATER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

fn corrupt(what: impl std::fmt::Display) -> RecordsError {
    RecordsError::codec(CODEC, what)
}

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
    if input.is_empty() {
        return Err(corrupt("empty input"));
    }
    let mut out = Vec::with_capacity(initial_capacity(input, limit));
    INFLATER.with(|cell| {
        let mut cell = cell.borrow_mut();
        let inflater = cell.get_or_insert_with(|| Decompress::new(false));
        let mut rest = input;
        while !rest.is_empty() {
            let deflate_at = member_header_len(rest)?;
            let member_start = out.len();
            inflater.reset(false);
            let used = inflate(inflater, &rest[deflate_at..], &mut out, limit)?;
            let trailer_at = deflate_at + used;
            let trailer = rest
                .get(trailer_at..trailer_at + TRAILER_LEN)
                .ok_or_else(|| corrupt("truncated member trailer"))?;
            let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            let stored_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
            let mut crc = Crc::new();
            crc.update(&out[member_start..]);
            if crc.sum() != stored_crc {
                return Err(corrupt("CRC-32 mismatch"));
            }
            // ISIZE is the length modulo 2^32.
            if crc.amount() != stored_len {
                return Err(corrupt("length mismatch"));
            }
            rest = &rest[trailer_at + TRAILER_LEN..];
        }
        Ok(())
    })?;
    Ok(out)
}

/// What to reserve before inflating: the length the last member's trailer
/// states (exact for a single member), if the input could plausibly hold it.
fn initial_capacity(input: &[u8], limit: usize) -> usize {
    let trusted = input
        .len()
        .saturating_mul(TRUSTED_RATIO)
        .saturating_add(TRUSTED_SLACK)
        .min(limit);
    match input.len().checked_sub(4).map(|at| &input[at..]) {
        Some(&[a, b, c, d]) => usize::try_from(u32::from_le_bytes([a, b, c, d]))
            .map_or(trusted, |stated| stated.min(trusted)),
        _ => 0,
    }
}

/// Checks a member header at the start of `member` and returns its length.
fn member_header_len(member: &[u8]) -> Result<usize, RecordsError> {
    let truncated = || corrupt("truncated member header");
    let fixed = member.get(..HEADER_LEN).ok_or_else(truncated)?;
    if fixed[..3] != MAGIC {
        return Err(corrupt("not a gzip member"));
    }
    let flags = fixed[3];
    if flags & FRESERVED != 0 {
        return Err(corrupt("reserved header flags set"));
    }
    let mut at = HEADER_LEN;
    if flags & FEXTRA != 0 {
        let len = member.get(at..at + 2).ok_or_else(truncated)?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let text = member.get(at..).ok_or_else(truncated)?;
            let end = text.iter().position(|&b| b == 0).ok_or_else(truncated)?;
            at += end + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = member.get(at..at + 2).ok_or_else(truncated)?;
        let mut crc = Crc::new();
        crc.update(&member[..at]);
        if crc.sum() as u16 != u16::from_le_bytes([stored[0], stored[1]]) {
            return Err(corrupt("header CRC mismatch"));
        }
        at += 2;
    }
    if at > member.len() {
        return Err(truncated());
    }
    Ok(at)
}

/// Inflates one raw deflate stream from the start of `data`, appending to
/// `out` (never past `limit` bytes); returns the bytes of `data` it used.
fn inflate(
    inflater: &mut Decompress,
    data: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<usize, RecordsError> {
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                // Exactly at the limit is fine; one byte more is not.
                return if out.len() == limit && at_stream_end(inflater, data)? {
                    Ok(inflater.total_in() as usize)
                } else {
                    Err(RecordsError::DecompressedTooLarge { limit })
                };
            } else {
                // Grow with what has really arrived, never past the limit.
                let grow = out.len().max(1024).min(limit - out.len());
                out.reserve_exact(grow);
            }
        }
        let used = inflater.total_in() as usize;
        let produced = out.len();
        let status = inflater
            .decompress_vec(&data[used..], out, FlushDecompress::Finish)
            .map_err(|e| corrupt(format!("invalid deflate data: {e}")))?;
        if out.len() > limit {
            return Err(RecordsError::DecompressedTooLarge { limit });
        }
        match status {
            Status::StreamEnd => return Ok(inflater.total_in() as usize),
            _ if out.len() == out.capacity() => {}
            _ if inflater.total_in() as usize == used && out.len() == produced => {
                return Err(corrupt("truncated deflate data"));
            }
            _ => {}
        }
    }
}

/// With the output at the limit: whether the stream ends without producing
/// another byte (probed into a one-byte buffer).
fn at_stream_end(inflater: &mut Decompress, data: &[u8]) -> Result<bool, RecordsError> {
    let mut probe = [0u8; 1];
    let used = inflater.total_in() as usize;
    let before = inflater.total_out();
    let status = inflater
        .decompress(&data[used..], &mut probe, FlushDecompress::Finish)
        .map_err(|e| corrupt(format!("invalid deflate data: {e}")))?;
    Ok(status == Status::StreamEnd && inflater.total_out() == before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(None, data, &mut out).unwrap();
        out.to_vec()
    }

    /// What flate2's own multi-member reader makes of `input`.
    fn via_flate2(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        flate2::bufread::MultiGzDecoder::new(input)
            .read_to_end(&mut out)
            .ok()
            .map(|_| out)
    }

    fn text(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut i = 0u32;
        while v.len() < len {
            v.extend_from_slice(format!("{{\"id\":{i},\"name\":\"n{}\"}} ", i % 13).as_bytes());
            i += 1;
        }
        v.truncate(len);
        v
    }

    #[test]
    fn a_small_member_decodes_into_a_buffer_of_its_exact_size() {
        let data = text(1100);
        let out = decompress(&gzip(&data), 1 << 20).unwrap();
        assert_eq!(out, data);
        assert_eq!(out.capacity(), data.len());
    }

    #[test]
    fn a_trailer_claiming_more_than_the_input_can_hold_is_not_trusted() {
        let data = text(1100);
        let mut member = gzip(&data);
        let at = member.len() - 4;
        member[at..].copy_from_slice(&(64u32 << 20).to_le_bytes());
        assert!(initial_capacity(&member, 1 << 30) <= TRUSTED_RATIO * member.len() + 1024);
        // Decoded, then refused for the length mismatch.
        assert!(matches!(
            decompress(&member, 1 << 30),
            Err(RecordsError::Codec { message, .. }) if message.contains("length")
        ));
    }

    #[test]
    fn concatenated_members_and_optional_header_fields_decode() {
        let first = text(5000);
        let second = b"second member".to_vec();
        let mut named = flate2::GzBuilder::new()
            .filename("batch.json")
            .comment("written by a test")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), flate2::Compression::fast());
        named.write_all(&second).unwrap();
        let named = named.finish().unwrap();
        // A header CRC (FHCRC), built by hand: the flag, then the low 16 bits
        // of the CRC-32 of the header before it.
        let mut hcrc = gzip(b"third");
        hcrc[3] |= FHCRC;
        let mut crc = Crc::new();
        crc.update(&hcrc[..HEADER_LEN]);
        let crc16 = (crc.sum() as u16).to_le_bytes();
        hcrc.splice(HEADER_LEN..HEADER_LEN, crc16);
        let mut stream = gzip(&first);
        stream.extend_from_slice(&named);
        stream.extend_from_slice(&hcrc);
        let mut expected = first.clone();
        expected.extend_from_slice(&second);
        expected.extend_from_slice(b"third");
        assert_eq!(via_flate2(&stream).as_deref(), Some(&expected[..]));
        assert_eq!(decompress(&stream, 1 << 20).unwrap(), expected);
        // A wrong header CRC is refused.
        let at = stream.len() - hcrc.len() + HEADER_LEN;
        stream[at] ^= 1;
        assert!(decompress(&stream, 1 << 20).is_err());
    }

    #[test]
    fn damaged_input_fails_wherever_flate2_fails() {
        let data = text(3000);
        let mut two = gzip(&data);
        two.extend_from_slice(&gzip(b"tail"));
        for cut in 0..two.len() {
            let input = &two[..cut];
            assert_eq!(
                decompress(input, 1 << 20).ok(),
                via_flate2(input).filter(|_| cut > 0),
                "cut at {cut}"
            );
        }
        for at in 0..two.len() {
            for bit in [0x01, 0x80] {
                let mut bad = two.clone();
                bad[at] ^= bit;
                let ours = decompress(&bad, 1 << 20).ok();
                assert_eq!(ours, via_flate2(&bad), "bit {bit:#x} at {at}");
            }
        }
        // Bytes after the last member that do not start one are an error.
        let mut trailing = gzip(&data);
        trailing.extend_from_slice(&[0, 0, 0, 0]);
        assert!(decompress(&trailing, 1 << 20).is_err());
        assert!(decompress(&[], 1 << 20).is_err());
    }

    #[test]
    fn output_grows_up_to_the_limit_and_no_further() {
        let zeros = vec![0u8; 300_000];
        let member = gzip(&zeros);
        assert!(initial_capacity(&member, 1 << 30) < 300_000);
        assert_eq!(decompress(&member, 300_000).unwrap(), zeros);
        assert_eq!(
            decompress(&member, 299_999),
            Err(RecordsError::DecompressedTooLarge { limit: 299_999 })
        );
        assert_eq!(
            decompress(&member, 0),
            Err(RecordsError::DecompressedTooLarge { limit: 0 })
        );
        let empty = gzip(b"");
        assert_eq!(decompress(&empty, 0).unwrap(), b"");
    }
}

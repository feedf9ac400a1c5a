//! Kafka's primitive wire types: fixed-width big-endian integers, zig-zag and
//! unsigned varints, classic and compact strings/bytes/arrays, UUIDs and tagged
//! field framing.
//!
//! Every reader takes `&mut Bytes` and advances it; every reader checks the
//! remaining length before touching a byte, so hostile input yields a
//! [`DecodeError`] rather than a panic. Readers never allocate more than the
//! input could justify: lengths read off the wire are checked against the bytes
//! that are actually left before anything is reserved.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeError};

/// Fails with [`DecodeError::UnexpectedEof`] unless `buf` holds at least `needed` bytes.
#[inline]
pub fn ensure_remaining(buf: &Bytes, needed: usize) -> Result<(), DecodeError> {
    if buf.remaining() < needed {
        Err(DecodeError::UnexpectedEof {
            needed,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

macro_rules! fixed_readers {
    ($($name:ident => $ty:ty, $get:ident, $size:expr;)*) => {$(
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        #[inline]
        pub fn $name(buf: &mut Bytes) -> Result<$ty, DecodeError> {
            ensure_remaining(buf, $size)?;
            Ok(buf.$get())
        }
    )*};
}

fixed_readers! {
    read_i8 => i8, get_i8, 1;
    read_u8 => u8, get_u8, 1;
    read_i16 => i16, get_i16, 2;
    read_u16 => u16, get_u16, 2;
    read_i32 => i32, get_i32, 4;
    read_u32 => u32, get_u32, 4;
    read_i64 => i64, get_i64, 8;
    read_f64 => f64, get_f64, 8;
}

/// Reads a boolean: any non-zero byte is `true`, as the Java client reads it.
#[inline]
pub fn read_bool(buf: &mut Bytes) -> Result<bool, DecodeError> {
    Ok(read_u8(buf)? != 0)
}

/// Reads a 16-byte UUID.
#[inline]
pub fn read_uuid(buf: &mut Bytes) -> Result<Uuid, DecodeError> {
    ensure_remaining(buf, 16)?;
    let mut raw = [0u8; 16];
    buf.copy_to_slice(&mut raw);
    Ok(Uuid(raw))
}

/// Reads an unsigned LEB128 varint of at most 32 bits (5 bytes).
#[inline]
pub fn read_unsigned_varint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let byte = read_u8(buf)?;
        if i == 4 && byte > 0x0f {
            return Err(DecodeError::VarintOverflow);
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow)
}

/// Reads an unsigned LEB128 varint of at most 64 bits (10 bytes).
#[inline]
pub fn read_unsigned_varlong(buf: &mut Bytes) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = read_u8(buf)?;
        if i == 9 && byte > 0x01 {
            return Err(DecodeError::VarintOverflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow)
}

/// Reads a zig-zag encoded signed 32-bit varint.
#[inline]
pub fn read_varint(buf: &mut Bytes) -> Result<i32, DecodeError> {
    let raw = read_unsigned_varint(buf)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag encoded signed 64-bit varint.
#[inline]
pub fn read_varlong(buf: &mut Bytes) -> Result<i64, DecodeError> {
    let raw = read_unsigned_varlong(buf)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Takes `len` bytes off the front of `buf` without copying.
#[inline]
pub fn read_slice(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    ensure_remaining(buf, len)?;
    Ok(buf.split_to(len))
}

/// Reads a length prefix: `i16`/`i32` for classic encodings, unsigned varint
/// minus one for compact ones. Returns `None` for the null marker (-1).
#[inline]
fn read_length(buf: &mut Bytes, compact: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        i64::from(read_unsigned_varint(buf)?) - 1
    } else if wide {
        i64::from(read_i32(buf)?)
    } else {
        i64::from(read_i16(buf)?)
    };
    match len {
        -1 => Ok(None),
        n if n < -1 => Err(DecodeError::InvalidLength(n)),
        n => Ok(Some(n as usize)),
    }
}

/// Reads a possibly-null string (`STRING`/`NULLABLE_STRING` or their compact forms).
pub fn read_nullable_string(buf: &mut Bytes, compact: bool) -> Result<Option<String>, DecodeError> {
    match read_length(buf, compact, false)? {
        None => Ok(None),
        Some(len) => {
            let raw = read_slice(buf, len)?;
            match std::str::from_utf8(&raw) {
                Ok(s) => Ok(Some(s.to_owned())),
                Err(_) => Err(DecodeError::InvalidUtf8),
            }
        }
    }
}

/// Reads a non-null string; a null marker is an error.
pub fn read_string(buf: &mut Bytes, compact: bool) -> Result<String, DecodeError> {
    read_nullable_string(buf, compact)?.ok_or(DecodeError::UnexpectedNull)
}

/// Reads possibly-null bytes (`BYTES`/`NULLABLE_BYTES` or compact forms), zero-copy.
pub fn read_nullable_bytes(buf: &mut Bytes, compact: bool) -> Result<Option<Bytes>, DecodeError> {
    match read_length(buf, compact, true)? {
        None => Ok(None),
        Some(len) => read_slice(buf, len).map(Some),
    }
}

/// Reads non-null bytes; a null marker is an error.
pub fn read_bytes(buf: &mut Bytes, compact: bool) -> Result<Bytes, DecodeError> {
    read_nullable_bytes(buf, compact)?.ok_or(DecodeError::UnexpectedNull)
}

/// Reads an array length; `None` for a null array.
///
/// The count is only trusted as far as the input can back it: each element
/// needs at least `min_element_size` bytes, so a count that the remaining
/// input cannot possibly hold is rejected before anything is allocated.
pub fn read_array_len(
    buf: &mut Bytes,
    compact: bool,
    min_element_size: usize,
) -> Result<Option<usize>, DecodeError> {
    let len = read_length(buf, compact, true)?;
    if let Some(n) = len {
        if n.saturating_mul(min_element_size) > buf.remaining() {
            return Err(DecodeError::UnexpectedEof {
                needed: n.saturating_mul(min_element_size),
                remaining: buf.remaining(),
            });
        }
    }
    Ok(len)
}

/// A capacity hint for a vector of `count` elements that is safe against
/// hostile counts: never more than the remaining input could hold.
#[inline]
pub fn safe_capacity(count: usize, remaining: usize) -> usize {
    count.min(remaining)
}

/// Reads a possibly-null array, decoding each element with `read_element`.
///
/// `min_element_size` is the fewest bytes one element can take; the count is
/// checked against the remaining input before any element is decoded, and the
/// vector never reserves more than the input could fill.
pub fn read_array<T>(
    buf: &mut Bytes,
    compact: bool,
    min_element_size: usize,
    mut read_element: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let min_element_size = min_element_size.max(1);
    let Some(count) = read_array_len(buf, compact, min_element_size)? else {
        return Ok(None);
    };
    let mut items = Vec::with_capacity(safe_capacity(count, buf.remaining() / min_element_size));
    for _ in 0..count {
        items.push(read_element(buf)?);
    }
    Ok(Some(items))
}

/// Writes one tagged field that was preserved undecoded.
pub fn put_unknown_tagged_field(
    buf: &mut BytesMut,
    field: &UnknownTaggedField,
) -> Result<(), EncodeError> {
    put_unsigned_varint(buf, field.tag);
    let len =
        u32::try_from(field.data.len()).map_err(|_| EncodeError::TooLarge(field.data.len()))?;
    put_unsigned_varint(buf, len);
    buf.put_slice(&field.data);
    Ok(())
}

/// Writes an unsigned LEB128 varint.
#[inline]
pub fn put_unsigned_varint(buf: &mut impl BufMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes an unsigned LEB128 varint of up to 64 bits.
#[inline]
pub fn put_unsigned_varlong(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes a zig-zag encoded signed 32-bit varint.
#[inline]
pub fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_unsigned_varint(buf, ((value << 1) ^ (value >> 31)) as u32);
}

/// Writes a zig-zag encoded signed 64-bit varint.
#[inline]
pub fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_unsigned_varlong(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// Number of bytes [`put_unsigned_varint`] writes for `value`.
#[inline]
pub const fn unsigned_varint_len(value: u32) -> usize {
    match value {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// Number of bytes [`put_varint`] writes for `value`.
#[inline]
pub const fn varint_len(value: i32) -> usize {
    unsigned_varint_len(((value << 1) ^ (value >> 31)) as u32)
}

/// Number of bytes [`put_varlong`] writes for `value`.
#[inline]
pub const fn varlong_len(value: i64) -> usize {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Writes a length prefix for a string, bytes or array; `None` writes null.
fn put_length(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
    wide: bool,
) -> Result<(), EncodeError> {
    match (len, compact) {
        (None, true) => put_unsigned_varint(buf, 0),
        (None, false) if wide => buf.put_i32(-1),
        (None, false) => buf.put_i16(-1),
        (Some(n), true) => {
            let n = u32::try_from(n)
                .ok()
                .and_then(|n| n.checked_add(1))
                .ok_or(EncodeError::TooLarge(n))?;
            put_unsigned_varint(buf, n)
        }
        (Some(n), false) if wide => {
            buf.put_i32(i32::try_from(n).map_err(|_| EncodeError::TooLarge(n))?)
        }
        (Some(n), false) => buf.put_i16(i16::try_from(n).map_err(|_| EncodeError::TooLarge(n))?),
    }
    Ok(())
}

/// Writes a possibly-null string.
pub fn put_nullable_string(
    buf: &mut BytesMut,
    value: Option<&str>,
    compact: bool,
) -> Result<(), EncodeError> {
    put_length(buf, value.map(str::len), compact, false)?;
    if let Some(s) = value {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes possibly-null bytes.
pub fn put_nullable_bytes(
    buf: &mut BytesMut,
    value: Option<&[u8]>,
    compact: bool,
) -> Result<(), EncodeError> {
    put_length(buf, value.map(<[u8]>::len), compact, true)?;
    if let Some(b) = value {
        buf.put_slice(b);
    }
    Ok(())
}

/// Writes an array length prefix; `None` writes a null array.
pub fn put_array_len(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
) -> Result<(), EncodeError> {
    put_length(buf, len, compact, true)
}

/// Writes a UUID.
#[inline]
pub fn put_uuid(buf: &mut BytesMut, value: &Uuid) {
    buf.put_slice(&value.0);
}

/// A 128-bit UUID as Kafka sends it (topic ids, directory ids, ...).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "no id".
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// Builds a UUID from its most and least significant halves, as Java's `java.util.UUID` holds it.
    pub fn from_u64_pair(most: u64, least: u64) -> Self {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&most.to_be_bytes());
        raw[8..].copy_from_slice(&least.to_be_bytes());
        Uuid(raw)
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A tagged field this library's spec does not know, kept so that it is
/// re-encoded unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownTaggedField {
    /// The field's tag.
    pub tag: u32,
    /// The field's raw bytes.
    pub data: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0i32, 1, -1, 63, -64, 64, i32::MAX, i32::MIN, 300, -300] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(read_varint(&mut b.freeze()).unwrap(), v);
        }
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_len(v));
            assert_eq!(read_varlong(&mut b.freeze()).unwrap(), v);
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(
            read_unsigned_varint(&mut b),
            Err(DecodeError::VarintOverflow)
        ));
        let mut b = Bytes::from_static(&[0x80]);
        assert!(matches!(
            read_unsigned_varint(&mut b),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }

    #[test]
    fn hostile_array_counts_do_not_allocate() {
        let mut b = BytesMut::new();
        b.put_i32(i32::MAX);
        let mut b = b.freeze();
        assert!(read_array_len(&mut b, false, 4).is_err());
    }
}

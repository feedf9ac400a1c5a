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

/// Reads an unsigned LEB128 varint of at most 32 bits from `data` at `*pos`
/// and moves `*pos` past it: the in-place twin of [`read_unsigned_varint`]
/// for parsers that walk one buffer with a cursor (no `Bytes` bookkeeping per
/// field). One-byte values, the common case, take a single branch; two-byte
/// values one more.
#[inline(always)]
pub fn unsigned_varint_at(data: &[u8], pos: &mut usize) -> Result<u32, DecodeError> {
    // Five bytes at most, the last holding the top 4 bits: the value fits.
    leb128_at(data, pos, 5, 0x0f).map(|value| value as u32)
}

/// Reads an unsigned LEB128 varint of at most 64 bits from `data` at `*pos`
/// and moves `*pos` past it (see [`unsigned_varint_at`]).
#[inline(always)]
pub fn unsigned_varlong_at(data: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    leb128_at(data, pos, 10, 0x01)
}

/// An unsigned LEB128 value of at most `max_len` bytes whose last byte may
/// be at most `last_max`.
#[inline(always)]
fn leb128_at(
    data: &[u8],
    pos: &mut usize,
    max_len: usize,
    last_max: u8,
) -> Result<u64, DecodeError> {
    let start = *pos;
    if let Some(&byte) = data.get(start) {
        if byte < 0x80 {
            *pos = start + 1;
            return Ok(u64::from(byte));
        }
        // Two bytes (128 to 16,383: record lengths, values of 64 bytes to
        // 8 KiB, most timestamp and offset deltas) take one more branch.
        // `max_len` is at least 5, so a second byte is never the last.
        if let Some(&second) = data.get(start + 1) {
            if second < 0x80 {
                *pos = start + 2;
                return Ok(u64::from(byte & 0x7f) | u64::from(second) << 7);
            }
        }
    }
    let mut value: u64 = 0;
    for i in 0..max_len {
        let byte = byte_at(data, start, i)?;
        if i == max_len - 1 && byte > last_max {
            return Err(DecodeError::VarintOverflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow)
}

/// The `i`-th byte of a varint starting at `start`, or the end-of-input error.
#[inline]
fn byte_at(data: &[u8], start: usize, i: usize) -> Result<u8, DecodeError> {
    data.get(start + i)
        .copied()
        .ok_or_else(|| DecodeError::UnexpectedEof {
            needed: i + 1,
            remaining: data.len().saturating_sub(start),
        })
}

/// Reads a zig-zag encoded signed 32-bit varint at `*pos` (see [`unsigned_varint_at`]).
#[inline(always)]
pub fn varint_at(data: &[u8], pos: &mut usize) -> Result<i32, DecodeError> {
    let raw = unsigned_varint_at(data, pos)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag encoded signed 64-bit varint at `*pos` (see [`unsigned_varint_at`]).
#[inline(always)]
pub fn varlong_at(data: &[u8], pos: &mut usize) -> Result<i64, DecodeError> {
    let raw = unsigned_varlong_at(data, pos)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
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
        // Java's generated readers reject longer strings in either encoding.
        Some(len) if len > MAX_STRING_LEN => Err(DecodeError::InvalidLength(len as i64)),
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

/// Reads an array's element count and a vector capacity that is safe
/// against hostile counts, or `None` for a null array. The generated decoders
/// loop over the count themselves (no closure per array field), so this is the
/// non-generic half of [`read_array`].
pub fn read_array_count(
    buf: &mut Bytes,
    compact: bool,
    min_element_size: usize,
) -> Result<Option<(usize, usize)>, DecodeError> {
    let min_element_size = min_element_size.max(1);
    let Some(count) = read_array_len(buf, compact, min_element_size)? else {
        return Ok(None);
    };
    Ok(Some((
        count,
        safe_capacity(count, buf.remaining() / min_element_size),
    )))
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
    if let Some(len) = value.map(str::len).filter(|&len| len > MAX_STRING_LEN) {
        return Err(EncodeError::StringTooLong(len));
    }
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
        if !super::splice::offer(buf.len(), b) {
            buf.put_slice(b);
        }
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

/// The longest string Java's generated readers and writers accept
/// (`0x7fff` bytes), in the classic and the compact encoding alike.
pub const MAX_STRING_LEN: usize = 0x7fff;

/// Passes a possibly-null value through, failing when it is null in a
/// version where `message.field` is not nullable.
#[inline]
pub fn check_null<T>(
    value: Option<T>,
    nullable: bool,
    message: &'static str,
    field: &'static str,
    version: i16,
) -> Result<Option<T>, EncodeError> {
    if value.is_none() && !nullable {
        return Err(EncodeError::NullNotAllowed {
            message,
            field,
            version,
        });
    }
    Ok(value)
}

/// Writes a possibly-null array: its length prefix, then each element with `put_element`.
#[inline]
pub fn put_array<T>(
    buf: &mut BytesMut,
    value: Option<&[T]>,
    compact: bool,
    mut put_element: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    put_array_len(buf, value.map(<[T]>::len), compact)?;
    for element in value.unwrap_or_default() {
        put_element(buf, element)?;
    }
    Ok(())
}

/// Writes the presence marker of a nullable struct, as Java does: only in
/// versions where the field is nullable (`nullable_now`), as an `i8` (1 or -1)
/// in the regular part of a message and as an unsigned varint (1 or 0) in a
/// tagged field. Fails when the struct is absent where it cannot be null.
#[inline]
pub fn put_struct_presence(
    buf: &mut BytesMut,
    present: bool,
    nullable_now: bool,
    tagged: bool,
    message: &'static str,
    field: &'static str,
    version: i16,
) -> Result<(), EncodeError> {
    if nullable_now {
        match (tagged, present) {
            (true, true) => put_unsigned_varint(buf, 1),
            (true, false) => put_unsigned_varint(buf, 0),
            (false, true) => buf.put_i8(1),
            (false, false) => buf.put_i8(-1),
        }
        Ok(())
    } else if present {
        Ok(())
    } else {
        Err(EncodeError::NullNotAllowed {
            message,
            field,
            version,
        })
    }
}

/// Reads the presence marker of a nullable struct (see [`put_struct_presence`]):
/// nothing in versions where it is not nullable. Returns whether the struct follows.
#[inline]
pub fn read_struct_presence(
    buf: &mut Bytes,
    nullable_now: bool,
    tagged: bool,
) -> Result<bool, DecodeError> {
    if !nullable_now {
        Ok(true)
    } else if tagged {
        Ok(read_unsigned_varint(buf)? > 0)
    } else {
        Ok(read_i8(buf)? >= 0)
    }
}

/// Fails with [`DecodeError::UnexpectedNull`] when a value read as possibly
/// null is null in a version where it is not nullable.
#[inline]
pub fn check_decoded_null<T>(value: Option<T>, nullable: bool) -> Result<Option<T>, DecodeError> {
    if value.is_none() && !nullable {
        return Err(DecodeError::UnexpectedNull);
    }
    Ok(value)
}

/// Bytes a string, bytes or array length prefix plus `len` bytes of content take
/// (`wide`: an `i32` classic prefix rather than `i16`).
#[inline]
pub fn prefixed_len(len: Option<usize>, compact: bool, wide: bool) -> usize {
    match (len, compact) {
        (None, true) => 1,
        (Some(n), true) => unsigned_varint_len(u32::try_from(n + 1).unwrap_or(u32::MAX)) + n,
        (n, false) => n.unwrap_or(0) + if wide { 4 } else { 2 },
    }
}

/// Bytes a possibly-null array takes: its length prefix plus each element's length.
#[inline]
pub fn array_len<T>(
    value: Option<&[T]>,
    compact: bool,
    element_len: impl Fn(&T) -> usize,
) -> usize {
    let prefix = if compact {
        unsigned_varint_len(value.map_or(0, |v| u32::try_from(v.len() + 1).unwrap_or(u32::MAX)))
    } else {
        4
    };
    prefix + value.map_or(0, |v| v.iter().map(element_len).sum())
}

/// Bytes an array's length prefix takes (`None`: a null array).
#[inline]
pub fn array_prefix_len(len: Option<usize>, compact: bool) -> usize {
    match (len, compact) {
        (None, true) => 1,
        (Some(n), true) => unsigned_varint_len(u32::try_from(n + 1).unwrap_or(u32::MAX)),
        (_, false) => 4,
    }
}

/// Bytes a possibly-null array of `len` fixed-size elements of `element_size`
/// bytes takes, prefix included.
#[inline]
pub fn fixed_array_len(len: Option<usize>, compact: bool, element_size: usize) -> usize {
    array_prefix_len(len, compact) + len.unwrap_or(0) * element_size
}

/// Fails when tagged fields are set on a struct written in a version that has
/// none (Java: "Tagged fields were set, but version ... does not support them").
#[inline]
pub fn no_tagged_fields(
    unknown: &[UnknownTaggedField],
    message: &'static str,
    version: i16,
) -> Result<(), EncodeError> {
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(EncodeError::TaggedFieldsSet { message, version })
    }
}

/// Unknown tagged fields in tag order (equal tags keep their order). Allocates
/// only when there are some.
fn unknown_in_tag_order(unknown: &[UnknownTaggedField]) -> Vec<&UnknownTaggedField> {
    let mut refs: Vec<&UnknownTaggedField> = unknown.iter().collect();
    if !unknown.windows(2).all(|w| w[0].tag <= w[1].tag) {
        refs.sort_by_key(|u| u.tag);
    }
    refs
}

/// Writes the tagged-field section of a struct with no known tagged fields.
#[inline]
pub fn put_unknown_tagged_fields(
    buf: &mut BytesMut,
    unknown: &[UnknownTaggedField],
) -> Result<(), EncodeError> {
    if unknown.is_empty() {
        buf.put_u8(0);
        return Ok(());
    }
    put_tagged_fields(buf, unknown, &[], |_, _| Ok(()))
}

/// Writes a tagged-field section: the count, then every field in tag order.
///
/// `known` lists the struct's known tags in tag order, each with whether it is
/// written (set to a non-default value); `put_known` writes a known field's
/// value. A raw entry in `unknown` that repeats a written known tag is skipped.
pub fn put_tagged_fields(
    buf: &mut BytesMut,
    unknown: &[UnknownTaggedField],
    known: &[(u32, bool)],
    mut put_known: impl FnMut(&mut BytesMut, u32) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let written = |tag: u32| known.iter().any(|&(t, w)| w && t == tag);
    let unknown = unknown_in_tag_order(unknown);
    let mut raw = unknown.iter().filter(|u| !written(u.tag)).peekable();
    let count = known.iter().filter(|k| k.1).count() + raw.clone().count();
    put_unsigned_varint(
        buf,
        u32::try_from(count).map_err(|_| EncodeError::TooLarge(count))?,
    );
    for &(tag, _) in known.iter().filter(|k| k.1) {
        while let Some(u) = raw.next_if(|u| u.tag < tag) {
            put_unknown_tagged_field(buf, u)?;
        }
        put_unsigned_varint(buf, tag);
        // The value's length comes first: write the value, then move it up by
        // the width of its length varint (tagged values are small).
        let at = buf.len();
        put_known(buf, tag)?;
        let len = buf.len() - at;
        let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLarge(len))?;
        let width = unsigned_varint_len(len32);
        buf.put_bytes(0, width);
        buf.copy_within(at..at + len, at + width);
        let mut prefix = &mut buf[at..at + width];
        put_unsigned_varint(&mut prefix, len32);
    }
    for u in raw {
        put_unknown_tagged_field(buf, u)?;
    }
    Ok(())
}

/// Bytes a tagged-field section takes (see [`put_tagged_fields`]); `known`
/// holds the encoded length of each known tag that is written.
pub fn tagged_fields_len(unknown: &[UnknownTaggedField], known: &[(u32, Option<usize>)]) -> usize {
    let written = |tag: u32| known.iter().any(|&(t, w)| w.is_some() && t == tag);
    let field_len = |tag: u32, len: usize| {
        unsigned_varint_len(tag) + unsigned_varint_len(u32::try_from(len).unwrap_or(u32::MAX)) + len
    };
    let mut count = 0usize;
    let mut total = 0usize;
    for &(tag, len) in known {
        if let Some(len) = len {
            count += 1;
            total += field_len(tag, len);
        }
    }
    for u in unknown.iter().filter(|u| !written(u.tag)) {
        count += 1;
        total += field_len(u.tag, u.data.len());
    }
    unsigned_varint_len(u32::try_from(count).unwrap_or(u32::MAX)) + total
}

/// Reads one tagged field: its tag and its raw value (zero-copy).
#[inline]
pub fn read_tagged_field(buf: &mut Bytes) -> Result<(u32, Bytes), DecodeError> {
    let tag = read_unsigned_varint(buf)?;
    let size = read_unsigned_varint(buf)? as usize;
    Ok((tag, read_slice(buf, size)?))
}

/// Reads a tagged-field section, keeping every field raw.
pub fn read_unknown_tagged_fields(
    buf: &mut Bytes,
    into: &mut Vec<UnknownTaggedField>,
) -> Result<(), DecodeError> {
    let count = read_unsigned_varint(buf)?;
    for _ in 0..count {
        let (tag, data) = read_tagged_field(buf)?;
        into.push(UnknownTaggedField { tag, data });
    }
    Ok(())
}

/// Decodes a known tagged field's value, which must fill its raw bytes exactly.
#[inline]
pub fn decode_tagged_value<T>(
    mut data: Bytes,
    read: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let value = read(&mut data)?;
    if !data.is_empty() {
        return Err(DecodeError::TrailingBytes(data.len()));
    }
    Ok(value)
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

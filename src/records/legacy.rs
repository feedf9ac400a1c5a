//! Legacy message sets (magic 0 and 1), read only.
//!
//! Each entry is `offset i64, messageSize i32` followed by a message:
//!
//! ```text
//! crc u32 (CRC-32 IEEE of everything after it) | magic i8 | attributes i8
//! timestamp i64 (magic 1 only) | key bytes (i32 length, -1 = null)
//! value bytes (i32 length, -1 = null)
//! ```
//!
//! A compressed message is a wrapper whose value is a compressed message set.
//! With magic 1 the inner offsets are relative: the wrapper carries the
//! absolute offset of the last inner message. With magic 0 they are absolute.

use bytes::{Buf, Bytes};

use crate::protocol::primitives::{
    read_i32, read_i64, read_i8, read_nullable_bytes, read_slice, read_u32,
};

use super::batch;
use super::compression::{self, Compression};
use super::{DecodeOptions, Record, RecordsError, TimestampType};

/// The magic byte of message format v0.
pub const MAGIC_V0: i8 = 0;
/// The magic byte of message format v1.
pub const MAGIC_V1: i8 = 1;

/// Smallest v0 message (crc, magic, attributes, two null lengths).
pub(crate) const MIN_MESSAGE_V0: usize = 4 + 1 + 1 + 4 + 4;
/// Smallest v1 message (v0 plus the timestamp).
pub(crate) const MIN_MESSAGE_V1: usize = MIN_MESSAGE_V0 + 8;

const COMPRESSION_MASK: i8 = 0x07;
const TIMESTAMP_TYPE_FLAG: i8 = 0x08;

/// One top-level entry of a legacy message set: a plain message, or a
/// compressed wrapper holding several.
///
/// A wrapper is decompressed when the entry is decoded (bounded by the
/// decode options' limit) and its framing checked: sizes, no nested
/// compression, strictly increasing inner offsets. The inner messages
/// themselves are parsed (and their CRCs checked) only as
/// [`records`](Self::records) yields them, so a wrapper never costs more
/// memory than its decompressed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyBatch {
    /// The entry's offset (for a wrapper, the last inner offset).
    pub offset: i64,
    /// 0 or 1.
    pub magic: i8,
    /// Raw attributes of the (wrapper) message.
    pub attributes: i8,
    /// The stored CRC-32 of the (wrapper) message.
    pub crc: u32,
    content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    /// An uncompressed message.
    Single(Record),
    /// A wrapper's decompressed inner message set, already framed-checked.
    Wrapped(InnerSet),
}

/// What is needed to turn a wrapper's inner messages into records lazily.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InnerSet {
    data: Bytes,
    count: usize,
    first_offset: i64,
    /// Added to every inner offset (0 for magic 0, whose offsets are absolute).
    offset_base: i64,
    /// The wrapper's timestamp when it imposes log append time (magic 1).
    wrapper_time: Option<i64>,
    verify_crc: bool,
}

impl LegacyBatch {
    /// The codec of the entry (inner messages of a wrapper are uncompressed).
    pub fn compression(&self) -> Result<Compression, RecordsError> {
        Compression::from_id((self.attributes & COMPRESSION_MASK) as u8)
    }

    /// Offset of the first message.
    pub fn base_offset(&self) -> i64 {
        match &self.content {
            Content::Single(record) => record.offset,
            Content::Wrapped(inner) => inner.first_offset,
        }
    }

    /// Offset of the last message.
    pub fn last_offset(&self) -> i64 {
        self.offset
    }

    /// Number of messages in the entry.
    pub fn record_count(&self) -> usize {
        match &self.content {
            Content::Single(_) => 1,
            Content::Wrapped(inner) => inner.count,
        }
    }

    /// The messages as records with absolute offsets, parsed as they are read.
    pub fn records(&self) -> LegacyRecords {
        match &self.content {
            Content::Single(record) => LegacyRecords {
                single: Some(record.clone()),
                inner: None,
                failed: false,
            },
            Content::Wrapped(inner) => LegacyRecords {
                single: None,
                inner: Some(inner.clone()),
                failed: false,
            },
        }
    }

    /// Decodes one entry (`offset`, `size`, message) that must span all of `entry`.
    pub fn decode(mut entry: Bytes, options: &DecodeOptions) -> Result<Self, RecordsError> {
        let offset = read_i64(&mut entry)?;
        let size = read_i32(&mut entry)?;
        if usize::try_from(size).ok() != Some(entry.remaining()) {
            return Err(RecordsError::corrupt(format!(
                "message size {size} but {} bytes given",
                entry.remaining()
            )));
        }
        let message = Message::decode(entry, options.verify_crc)?;
        let codec = Compression::from_id((message.attributes & COMPRESSION_MASK) as u8)?;
        let (magic, attributes, crc) = (message.magic, message.attributes, message.crc);
        let content = match codec {
            Compression::None => Content::Single(message.into_record(offset, None)),
            Compression::Zstd => {
                return Err(RecordsError::CodecNotAllowed {
                    codec,
                    magic: message.magic,
                })
            }
            _ => Content::Wrapped(message.unwrap_inner(offset, codec, options)?),
        };
        Ok(LegacyBatch {
            offset,
            magic,
            attributes,
            crc,
            content,
        })
    }
}

/// Iterator over the records of a [`LegacyBatch`]. After an error it yields
/// nothing more.
#[derive(Debug, Clone)]
pub struct LegacyRecords {
    single: Option<Record>,
    inner: Option<InnerSet>,
    failed: bool,
}

impl LegacyRecords {
    fn next_inner(inner: &mut InnerSet) -> Result<Record, RecordsError> {
        // The framing was checked when the wrapper was decoded.
        let inner_offset = read_i64(&mut inner.data)?;
        let size = read_i32(&mut inner.data)?;
        let size = usize::try_from(size)
            .map_err(|_| RecordsError::corrupt(format!("negative message size {size}")))?;
        let message = Message::decode(read_slice(&mut inner.data, size)?, inner.verify_crc)?;
        let offset = inner
            .offset_base
            .checked_add(inner_offset)
            .ok_or_else(|| RecordsError::corrupt("inner message offset overflows"))?;
        inner.count = inner.count.saturating_sub(1);
        Ok(message.into_record(offset, inner.wrapper_time))
    }
}

impl Iterator for LegacyRecords {
    type Item = Result<Record, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some(record) = self.single.take() {
            return Some(Ok(record));
        }
        let inner = self.inner.as_mut()?;
        if !inner.data.has_remaining() {
            return None;
        }
        let result = Self::next_inner(inner);
        self.failed = result.is_err();
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.single.is_some()) + self.inner.as_ref().map_or(0, |i| i.count);
        (0, Some(n))
    }
}

/// A single decoded legacy message.
struct Message {
    crc: u32,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

impl Message {
    fn decode(mut buf: Bytes, verify_crc: bool) -> Result<Self, RecordsError> {
        let crc = read_u32(&mut buf)?;
        if verify_crc {
            let computed = crc32_ieee(&buf);
            if computed != crc {
                return Err(RecordsError::CrcMismatch {
                    stored: crc,
                    computed,
                });
            }
        }
        let magic = read_i8(&mut buf)?;
        let attributes = read_i8(&mut buf)?;
        let timestamp = match magic {
            MAGIC_V0 => super::batch::NO_TIMESTAMP,
            MAGIC_V1 => read_i64(&mut buf)?,
            other => return Err(RecordsError::UnsupportedMagic(other)),
        };
        let key = read_nullable_bytes(&mut buf, false)?;
        let value = read_nullable_bytes(&mut buf, false)?;
        if buf.has_remaining() {
            return Err(RecordsError::corrupt(format!(
                "{} bytes left after a legacy message",
                buf.remaining()
            )));
        }
        Ok(Message {
            crc,
            magic,
            attributes,
            timestamp,
            key,
            value,
        })
    }

    fn timestamp_type(&self) -> TimestampType {
        match (self.magic, self.attributes & TIMESTAMP_TYPE_FLAG != 0) {
            (MAGIC_V0, _) => TimestampType::NoTimestamp,
            (_, true) => TimestampType::LogAppendTime,
            (_, false) => TimestampType::CreateTime,
        }
    }

    /// The record for this message; a v1 wrapper with log append time
    /// imposes its timestamp on the inner messages.
    fn into_record(self, offset: i64, wrapper_time: Option<i64>) -> Record {
        let (timestamp, timestamp_type) = match wrapper_time {
            Some(t) => (t, TimestampType::LogAppendTime),
            None => (self.timestamp, self.timestamp_type()),
        };
        Record {
            offset,
            timestamp,
            timestamp_type,
            key: self.key,
            value: self.value,
            headers: Vec::new(),
        }
    }

    /// Decompresses a wrapper's value and checks the framing of the inner
    /// message set without parsing (or allocating for) its messages.
    fn unwrap_inner(
        &self,
        wrapper_offset: i64,
        codec: Compression,
        options: &DecodeOptions,
    ) -> Result<InnerSet, RecordsError> {
        let value = self
            .value
            .as_ref()
            .ok_or_else(|| RecordsError::corrupt("compressed wrapper message without a value"))?;
        let data = compression::decompress(codec, value, options.max_decompressed_bytes)?;
        let mut scan = &data[..];
        let mut count = 0usize;
        let mut first_inner = None;
        let mut last_inner: Option<i64> = None;
        while !scan.is_empty() {
            if scan.len() < batch::LOG_OVERHEAD {
                return Err(RecordsError::corrupt("truncated inner message header"));
            }
            let inner_offset = (&scan[..8]).get_i64();
            let size = (&scan[8..12]).get_i32();
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s >= MIN_MESSAGE_V0)
                .ok_or_else(|| {
                    RecordsError::corrupt(format!("invalid inner message size {size}"))
                })?;
            let end = size
                .checked_add(batch::LOG_OVERHEAD)
                .filter(|&end| end <= scan.len())
                .ok_or_else(|| RecordsError::corrupt("truncated inner message"))?;
            // crc u32, magic i8, then the attributes.
            let inner_attributes = scan[batch::LOG_OVERHEAD + 5] as i8;
            if inner_attributes & COMPRESSION_MASK != 0 {
                return Err(RecordsError::corrupt(
                    "compressed message nested in a wrapper",
                ));
            }
            if last_inner.is_some_and(|last| inner_offset <= last) {
                return Err(RecordsError::corrupt(format!(
                    "inner message offset {inner_offset} does not increase (previous {})",
                    last_inner.unwrap_or_default()
                )));
            }
            first_inner.get_or_insert(inner_offset);
            last_inner = Some(inner_offset);
            count += 1;
            scan = &scan[end..];
        }
        let (Some(first_inner), Some(last_inner)) = (first_inner, last_inner) else {
            return Err(RecordsError::corrupt("compressed wrapper with no messages"));
        };
        let offset_base = if self.magic == MAGIC_V0 {
            0
        } else {
            wrapper_offset
                .checked_sub(last_inner)
                .ok_or_else(|| RecordsError::corrupt("inner message offset overflows"))?
        };
        let first_offset = offset_base
            .checked_add(first_inner)
            .ok_or_else(|| RecordsError::corrupt("inner message offset overflows"))?;
        let wrapper_time = (self.magic == MAGIC_V1
            && self.timestamp_type() == TimestampType::LogAppendTime)
            .then_some(self.timestamp);
        Ok(InnerSet {
            data,
            count,
            first_offset,
            offset_base,
            wrapper_time,
            verify_crc: options.verify_crc,
        })
    }
}

/// Reflected CRC-32 (IEEE 802.3, polynomial 0xEDB88320) lookup table.
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE), the checksum of legacy messages.
pub fn crc32_ieee(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        CRC32_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

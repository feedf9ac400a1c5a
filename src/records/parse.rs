//! The one reader of v2 records: a cursor over a batch's (uncompressed)
//! records section that checks each record and returns its fields as
//! positions in the section. The owned iterator ([`RecordIter`]) and the
//! borrowed one ([`RecordRefs`]) both build on it, so they accept and refuse
//! exactly the same inputs.
//!
//! [`RecordIter`]: super::RecordIter
//! [`RecordRefs`]: super::RecordRefs

use crate::protocol::primitives::{varint_at, varlong_at};
use crate::protocol::DecodeError;

use super::{RecordsError, TimestampType};

/// A byte range `start..end` of a records section (`Copy`, unlike `Range`).
pub(crate) type Span = (usize, usize);

/// One checked record: every field lies inside the record, the headers
/// section parses as `header_count` headers that end exactly at the record's
/// end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Span>,
    pub value: Option<Span>,
    /// The headers, still encoded (after the header count).
    pub headers: Span,
    pub header_count: usize,
}

/// Where the next record of a batch starts, and what every record of the
/// batch shares.
#[derive(Debug, Clone)]
pub(crate) struct RecordCursor {
    /// Where the next record starts in the section.
    pos: usize,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    pub timestamp_type: TimestampType,
    done: bool,
}

impl RecordCursor {
    pub fn new(
        records_count: u32,
        base_offset: i64,
        base_timestamp: i64,
        max_timestamp: i64,
        timestamp_type: TimestampType,
    ) -> Self {
        RecordCursor {
            pos: 0,
            remaining: records_count,
            base_offset,
            base_timestamp,
            max_timestamp,
            timestamp_type,
            done: false,
        }
    }

    /// Records declared and not read yet.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Whether nothing more can come: every record read (and the trailing
    /// check made), or an error met.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next record of `section`; `None` after the last one (or after an
    /// error). Bytes left after the declared records are an error.
    #[inline]
    pub fn next_raw(&mut self, section: &[u8]) -> Option<Result<RawRecord, RecordsError>> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            let left = section.len().saturating_sub(self.pos);
            if left > 0 {
                return Some(Err(RecordsError::corrupt(format!(
                    "{left} bytes left after the declared records"
                ))));
            }
            return None;
        }
        self.remaining -= 1;
        let result = self.read(section);
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }

    #[inline(always)]
    fn read(&mut self, section: &[u8]) -> Result<RawRecord, RecordsError> {
        let mut pos = self.pos;
        let len = varint_at(section, &mut pos)?;
        let len = usize::try_from(len)
            .map_err(|_| RecordsError::corrupt(format!("negative record length {len}")))?;
        let end = match pos.checked_add(len) {
            Some(end) if end <= section.len() => end,
            _ => return Err(eof(len, section.len() - pos)),
        };
        // Every field must lie inside the record's declared length.
        let record = &section[..end];
        if pos == end {
            return Err(eof(1, 0));
        }
        pos += 1; // attributes: unused in v2 records
        let timestamp_delta = varlong_at(record, &mut pos)?;
        let offset_delta = varint_at(record, &mut pos)?;
        let key = nullable_span(record, &mut pos)?;
        let value = nullable_span(record, &mut pos)?;
        let header_count = varint_at(record, &mut pos)?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| RecordsError::corrupt(format!("negative header count {header_count}")))?;
        let headers = (pos, end);
        for _ in 0..header_count {
            header_at(record, &mut pos)?;
        }
        if pos != end {
            return Err(RecordsError::corrupt(format!(
                "record declares {len} bytes but its fields take {}",
                len - (end - pos)
            )));
        }
        let offset = self
            .base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or_else(|| RecordsError::corrupt("record offset overflows"))?;
        let timestamp = match self.timestamp_type {
            TimestampType::LogAppendTime => self.max_timestamp,
            _ => self
                .base_timestamp
                .checked_add(timestamp_delta)
                .ok_or_else(|| RecordsError::corrupt("record timestamp overflows"))?,
        };
        self.pos = end;
        Ok(RawRecord {
            offset,
            timestamp,
            key,
            value,
            headers,
            header_count,
        })
    }
}

/// Reads one header at `*pos` of `record` (the record's bytes, ending where
/// it ends): a key (never null) and a nullable value.
#[inline(always)]
pub(crate) fn header_at(
    record: &[u8],
    pos: &mut usize,
) -> Result<(Span, Option<Span>), RecordsError> {
    let key_len = varint_at(record, pos)?;
    let key = match usize::try_from(key_len) {
        Ok(key_len) if key_len <= record.len() - *pos => {
            let start = *pos;
            *pos += key_len;
            (start, *pos)
        }
        Ok(key_len) => return Err(eof(key_len, record.len() - *pos)),
        Err(_) => {
            return Err(RecordsError::corrupt(format!(
                "invalid header key length {key_len}"
            )))
        }
    };
    let value = nullable_span(record, pos)?;
    Ok((key, value))
}

/// The error for a field that runs past the end of its record.
#[cold]
pub(crate) fn eof(needed: usize, remaining: usize) -> RecordsError {
    DecodeError::UnexpectedEof { needed, remaining }.into()
}

/// Reads a varint length (-1 = null) at `*pos` in `record` and returns the
/// span of the bytes it prefixes, moving `*pos` past them.
#[inline(always)]
fn nullable_span(record: &[u8], pos: &mut usize) -> Result<Option<Span>, RecordsError> {
    match varint_at(record, pos)? {
        -1 => Ok(None),
        len => {
            let len = usize::try_from(len)
                .map_err(|_| RecordsError::corrupt(format!("invalid length {len}")))?;
            if len > record.len() - *pos {
                return Err(eof(len, record.len() - *pos));
            }
            let start = *pos;
            *pos += len;
            Ok(Some((start, *pos)))
        }
    }
}

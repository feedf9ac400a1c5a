//! Borrowed records: [`RecordRef`], a record read in place whose key, value
//! and headers are `&[u8]` slices of the batch's bytes, and [`RecordRefs`],
//! the iterator that yields them.
//!
//! Reading a record this way costs no allocation and no reference count:
//! the owned [`Record`] takes a `Bytes` handle (an atomic increment, and a
//! decrement when dropped) for its key, its value and each header. Take
//! owned `Bytes` from a [`RecordRef`] only for the parts you keep
//! ([`key_bytes`](RecordRef::key_bytes), [`to_record`](RecordRef::to_record)):
//! they share the batch's buffer, nothing is copied.

use bytes::Bytes;

use super::parse::{header_at, RawRecord, RecordCursor, Span};
use super::{Header, Record, RecordsError, TimestampType};

/// What a [`RecordRef`]'s slices point into, to hand out owned `Bytes`.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// A v2 batch's records section (decompressed if the batch was).
    Section(&'a Bytes),
    /// A record already owned (a legacy message).
    Owned(&'a Record),
}

/// One record read in place: key, value and headers are slices of the
/// batch's bytes (of its decompressed records when the batch is compressed).
///
/// Yielded by [`RecordRefs`] (from [`RecordIter::refs`](super::RecordIter::refs))
/// and by [`FetchedRecords::next_ref`](super::FetchedRecords::next_ref). The
/// record was checked when it was read (every length in bounds, the headers
/// well formed), so nothing here can fail.
///
/// ```
/// use ferrokafka::records::{BatchReader, Batch, Compression, RecordBatchBuilder};
///
/// let mut builder = RecordBatchBuilder::new(Compression::None);
/// builder.append(1_700_000_000_000, Some(b"k"), Some(b"hello"), &[("trace", Some(&b"t1"[..]))])?;
/// let batch = BatchReader::new(builder.finish()?).next().unwrap()?;
/// let Batch::V2(batch) = batch else { unreachable!() };
/// let records = batch.records()?; // owns the (decompressed) bytes
/// for record in records.refs() {
///     let record = record?;
///     assert_eq!(record.offset(), 0);
///     assert_eq!(record.key(), Some(&b"k"[..]));
///     assert_eq!(record.value(), Some(&b"hello"[..]));
///     let header = record.headers().next().unwrap();
///     assert_eq!((header.key, header.value), (&b"trace"[..], Some(&b"t1"[..])));
///     // Owned handles only for what is kept: no copy, they share the batch.
///     let kept: bytes::Bytes = record.value_bytes().unwrap();
///     assert_eq!(kept, "hello");
/// }
/// # Ok::<(), ferrokafka::records::RecordsError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    offset: i64,
    timestamp: i64,
    timestamp_type: TimestampType,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    /// The encoded headers (after the count), checked.
    headers: &'a [u8],
    header_count: usize,
    source: Source<'a>,
}

impl<'a> RecordRef<'a> {
    /// A record of `section` read by the cursor.
    #[inline(always)]
    pub(crate) fn from_raw(
        section: &'a Bytes,
        raw: &RawRecord,
        timestamp_type: TimestampType,
    ) -> Self {
        let slice = |(start, end): Span| section.get(start..end).unwrap_or_default();
        RecordRef {
            offset: raw.offset,
            timestamp: raw.timestamp,
            timestamp_type,
            key: raw.key.map(slice),
            value: raw.value.map(slice),
            headers: slice(raw.headers),
            header_count: raw.header_count,
            source: Source::Section(section),
        }
    }

    /// A view of a record already owned (a legacy message).
    pub(crate) fn of_record(record: &'a Record) -> Self {
        RecordRef {
            offset: record.offset,
            timestamp: record.timestamp,
            timestamp_type: record.timestamp_type,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &[],
            header_count: 0,
            source: Source::Owned(record),
        }
    }

    /// The record's absolute offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Milliseconds since the epoch (-1 when the record has none).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// How the timestamp was assigned.
    pub fn timestamp_type(&self) -> TimestampType {
        self.timestamp_type
    }

    /// The key; `None` is a null key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value; `None` is a null value (a tombstone).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// How many headers the record has.
    pub fn header_count(&self) -> usize {
        match self.source {
            Source::Section(_) => self.header_count,
            Source::Owned(record) => record.headers.len(),
        }
    }

    /// The headers in wire order (duplicate keys kept), parsed as they are
    /// read.
    pub fn headers(&self) -> BorrowedHeaders<'a> {
        match self.source {
            Source::Section(_) => BorrowedHeaders {
                inner: HeadersInner::Encoded {
                    data: self.headers,
                    pos: 0,
                    left: self.header_count,
                },
            },
            Source::Owned(record) => BorrowedHeaders {
                inner: HeadersInner::Owned(record.headers.iter()),
            },
        }
    }

    /// The key as [`Bytes`] sharing the batch's buffer (no copy).
    pub fn key_bytes(&self) -> Option<Bytes> {
        match self.source {
            Source::Section(section) => self.key.map(|key| section.slice_ref(key)),
            Source::Owned(record) => record.key.clone(),
        }
    }

    /// The value as [`Bytes`] sharing the batch's buffer (no copy).
    pub fn value_bytes(&self) -> Option<Bytes> {
        match self.source {
            Source::Section(section) => self.value.map(|value| section.slice_ref(value)),
            Source::Owned(record) => record.value.clone(),
        }
    }

    /// The owned [`Record`]: key, value and headers share the batch's
    /// buffer (no copy; one reference count each).
    pub fn to_record(&self) -> Record {
        match self.source {
            Source::Section(section) => Record {
                offset: self.offset,
                timestamp: self.timestamp,
                timestamp_type: self.timestamp_type,
                key: self.key_bytes(),
                value: self.value_bytes(),
                headers: self
                    .headers()
                    .map(|h| Header {
                        key: section.slice_ref(h.key),
                        value: h.value.map(|v| section.slice_ref(v)),
                    })
                    .collect(),
            },
            Source::Owned(record) => record.clone(),
        }
    }
}

/// One header of a [`RecordRef`]: its key's bytes (UTF-8 by convention, not
/// checked) and its value (`None` is null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BorrowedHeader<'a> {
    /// The header key's bytes.
    pub key: &'a [u8],
    /// The header value; `None` is a null value.
    pub value: Option<&'a [u8]>,
}

impl<'a> BorrowedHeader<'a> {
    /// The key as text; fails if the key is not valid UTF-8.
    pub fn key_str(&self) -> Result<&'a str, std::str::Utf8Error> {
        std::str::from_utf8(self.key)
    }
}

/// Iterator over a [`RecordRef`]'s headers, parsed as they are read.
#[derive(Debug, Clone)]
pub struct BorrowedHeaders<'a> {
    inner: HeadersInner<'a>,
}

#[derive(Debug, Clone)]
enum HeadersInner<'a> {
    Encoded {
        data: &'a [u8],
        pos: usize,
        left: usize,
    },
    Owned(std::slice::Iter<'a, Header>),
}

impl<'a> Iterator for BorrowedHeaders<'a> {
    type Item = BorrowedHeader<'a>;

    #[inline]
    fn next(&mut self) -> Option<BorrowedHeader<'a>> {
        match &mut self.inner {
            HeadersInner::Encoded { data, pos, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // Checked when the record was read: cannot fail; if it
                // did, the headers end here.
                let Ok((key, value)) = header_at(data, pos) else {
                    *left = 0;
                    return None;
                };
                let slice = |(start, end): Span| data.get(start..end).unwrap_or_default();
                Some(BorrowedHeader {
                    key: slice(key),
                    value: value.map(slice),
                })
            }
            HeadersInner::Owned(headers) => headers.next().map(|h| BorrowedHeader {
                key: &h.key,
                value: h.value.as_deref(),
            }),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match &self.inner {
            HeadersInner::Encoded { left, .. } => *left,
            HeadersInner::Owned(headers) => headers.len(),
        };
        (left, Some(left))
    }
}

impl ExactSizeIterator for BorrowedHeaders<'_> {}

/// Iterator over the records of one v2 batch as [`RecordRef`]s: zero-copy,
/// no allocation and no reference count per record.
///
/// Made by [`RecordIter::refs`](super::RecordIter::refs), which owns the
/// bytes it borrows. It checks every record exactly as the owned iterator
/// does and, after the first error, yields nothing more.
#[derive(Debug, Clone)]
pub struct RecordRefs<'a> {
    section: &'a Bytes,
    cursor: RecordCursor,
}

impl<'a> RecordRefs<'a> {
    pub(crate) fn new(section: &'a Bytes, cursor: RecordCursor) -> Self {
        RecordRefs { section, cursor }
    }

    /// Records the batch declares that have not been yielded yet.
    pub fn remaining_records(&self) -> usize {
        self.cursor.remaining() as usize
    }
}

impl<'a> Iterator for RecordRefs<'a> {
    type Item = Result<RecordRef<'a>, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.cursor.next_raw(self.section)?;
        let timestamp_type = self.cursor.timestamp_type;
        Some(raw.map(|raw| RecordRef::from_raw(self.section, &raw, timestamp_type)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.cursor.is_done() {
            (0, Some(0))
        } else {
            // One more item may be the trailing-bytes error.
            (0, Some(self.cursor.remaining() as usize + 1))
        }
    }
}

//! Record batches: turning a protocol `records` field (raw bytes) into
//! batches and records, and building batches to produce.
//!
//! * [`RecordBatchBuilder`] encodes a message format v2 batch in place.
//! * [`BatchReader`] walks a `records` blob batch by batch, whatever the
//!   magic (legacy v0/v1 message sets and v2 batches may be mixed), and stops
//!   cleanly at a truncated final batch, as brokers send in fetch responses.
//! * [`RecordStream`] flattens that into one stream of data [`Record`]s.
//! * [`RecordRef`] is a record read in place (key, value and headers as
//!   `&[u8]` slices, no allocation or reference count per record), from
//!   [`RecordIter::refs`] or [`FetchedRecords::next_ref`]; [`Record`] is the
//!   owned form, with `Bytes` handles sharing the batch.
//! * [`FetchedRecords`] is what a consumer needs for one partition of a
//!   Fetch response: records from the fetch position on, aborted
//!   transactions dropped (read_committed), and the next position, moved
//!   past control and empty batches too.
//! * [`CompressionRatioEstimator`] and [`restamp_producer_state`] serve the
//!   producer (batches filled to `batch.size` after compression; retries
//!   re-sequenced without recompressing).
//! * [`compression`] holds the codecs; [`control`] the control records.
//!
//! Every decoder returns either a value or a [`RecordsError`] for any input;
//! none panics, and none allocates from a size claimed by the input beyond
//! what the input (or the decompression limit) can back.

pub mod batch;
mod borrowed;
pub mod compression;
pub mod control;
mod error;
pub mod fetch;
pub mod legacy;
mod parse;
mod ratio;

use bytes::{Buf, Bytes};

pub use batch::{
    restamp_producer_state, restamped, HeaderRef, ProducerState, RecordBatch, RecordBatchBuilder,
    RecordBatchHeader, RecordIter, SealedBatch, COMPRESSION_RATE_ESTIMATION_FACTOR,
    RECORD_BATCH_OVERHEAD,
};
pub use borrowed::{BorrowedHeader, BorrowedHeaders, RecordRef, RecordRefs};
pub use compression::{Compression, DEFAULT_MAX_DECOMPRESSED_BYTES};
pub use control::{ControlRecord, ControlRecordType, EndTransactionMarker};
pub use error::RecordsError;
pub use fetch::{AbortedTransaction, AbortedTransactions, FetchedRecords};
pub use legacy::{LegacyBatch, LegacyRecords};
pub use ratio::{CompressionRatio, CompressionRatioEstimator};

/// How a record's timestamp was assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Magic 0 messages carry no timestamp.
    NoTimestamp,
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when appending to the log.
    LogAppendTime,
}

/// A record header: a key (UTF-8 by convention) and an optional value.
///
/// The key is kept as the bytes on the wire (a zero-copy slice of the batch,
/// like the value), so decoding allocates nothing per header; read it as text
/// with [`key_str`](Self::key_str). Invalid UTF-8 is not an error when
/// decoding (the Java client decodes it leniently too).
///
/// ```
/// use ferrokafka::records::Header;
///
/// let header = Header::new("trace-id", Some(bytes::Bytes::from_static(b"abc")));
/// assert_eq!(header.key_str(), Ok("trace-id"));
/// assert_eq!(&header.key[..], b"trace-id");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header key's bytes.
    pub key: Bytes,
    /// The header value; `None` is a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header from a key (`&'static str`, `String`, `Bytes`, ...) and a value.
    pub fn new(key: impl Into<Bytes>, value: Option<Bytes>) -> Self {
        Header {
            key: key.into(),
            value,
        }
    }

    /// The key as text; fails if the key is not valid UTF-8.
    pub fn key_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }
}

/// A record as consumers see it, whichever message format it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch (-1 when there is none).
    pub timestamp: i64,
    /// How the timestamp was assigned.
    pub timestamp_type: TimestampType,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in wire order (duplicate keys are kept). Always empty for legacy messages.
    pub headers: Vec<Header>,
}

/// Options for decoding records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Upper bound on the decompressed size of one batch (or legacy wrapper).
    pub max_decompressed_bytes: usize,
    /// Whether to verify CRCs (on by default; the Java consumer's `check.crcs`).
    pub verify_crc: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            verify_crc: true,
        }
    }
}

/// One entry of a `records` blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// A message format v2 batch.
    V2(RecordBatch),
    /// A legacy (magic 0 or 1) message or compressed wrapper.
    Legacy(LegacyBatch),
}

impl Batch {
    /// The message format version.
    pub fn magic(&self) -> i8 {
        match self {
            Batch::V2(b) => b.header().magic,
            Batch::Legacy(b) => b.magic,
        }
    }

    /// Offset of the first record (for v2, the base offset).
    pub fn base_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.header().base_offset,
            Batch::Legacy(b) => b.base_offset(),
        }
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.header().last_offset(),
            Batch::Legacy(b) => b.last_offset(),
        }
    }

    /// The offset following this batch: where the next fetch continues.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Whether this is a v2 control batch.
    pub fn is_control(&self) -> bool {
        matches!(self, Batch::V2(b) if b.header().is_control())
    }

    /// Whether this is a v2 transactional batch.
    pub fn is_transactional(&self) -> bool {
        matches!(self, Batch::V2(b) if b.header().is_transactional())
    }

    /// The producer id (-1 for legacy entries).
    pub fn producer_id(&self) -> i64 {
        match self {
            Batch::V2(b) => b.header().producer_id,
            Batch::Legacy(_) => batch::NO_PRODUCER_ID,
        }
    }

    /// The records of the batch (for v2, decompressing if needed).
    pub fn records(&self) -> Result<BatchRecords, RecordsError> {
        Ok(match self {
            Batch::V2(b) => BatchRecords::V2(b.records()?),
            Batch::Legacy(b) => BatchRecords::Legacy(b.records()),
        })
    }
}

/// Iterator over the records of a [`Batch`] (owns what it reads: `Bytes`).
#[derive(Debug, Clone)]
pub enum BatchRecords {
    /// Records of a v2 batch, parsed as they are read.
    V2(RecordIter),
    /// Records of a legacy entry, parsed as they are read.
    Legacy(LegacyRecords),
}

impl Iterator for BatchRecords {
    type Item = Result<Record, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            BatchRecords::V2(it) => it.next(),
            BatchRecords::Legacy(it) => it.next(),
        }
    }
}

/// Walks a `records` blob batch by batch.
///
/// A blob may mix legacy message sets and v2 batches. If the blob ends with a
/// partial batch (brokers cut fetch responses at a byte limit), iteration
/// stops without an error and [`truncated`](Self::truncated) reports it.
/// After an error the reader yields nothing more.
#[derive(Debug, Clone)]
pub struct BatchReader {
    data: Bytes,
    options: DecodeOptions,
    truncated_bytes: usize,
    failed: bool,
}

impl BatchReader {
    /// A reader with default [`DecodeOptions`].
    pub fn new(records: Bytes) -> Self {
        Self::with_options(records, DecodeOptions::default())
    }

    /// A reader with explicit options.
    pub fn with_options(records: Bytes, options: DecodeOptions) -> Self {
        BatchReader {
            data: records,
            options,
            truncated_bytes: 0,
            failed: false,
        }
    }

    /// Whether iteration stopped at a partial trailing batch.
    pub fn truncated(&self) -> bool {
        self.truncated_bytes > 0
    }

    /// Size of the partial trailing batch that was skipped (0 if none).
    pub fn truncated_bytes(&self) -> usize {
        self.truncated_bytes
    }

    fn read_batch(&mut self) -> Result<Option<Batch>, RecordsError> {
        const MAGIC_OFFSET: usize = 16;
        if self.data.len() <= MAGIC_OFFSET {
            self.truncated_bytes = self.data.len();
            self.data.clear();
            return Ok(None);
        }
        let length = (&self.data[8..12]).get_i32();
        let magic = self.data[MAGIC_OFFSET] as i8;
        let min = match magic {
            legacy::MAGIC_V0 => legacy::MIN_MESSAGE_V0,
            legacy::MAGIC_V1 => legacy::MIN_MESSAGE_V1,
            batch::MAGIC_V2 => batch::RECORD_BATCH_OVERHEAD - batch::LOG_OVERHEAD,
            other => return Err(RecordsError::UnsupportedMagic(other)),
        };
        let total = usize::try_from(length)
            .ok()
            .filter(|&l| l >= min)
            .and_then(|l| l.checked_add(batch::LOG_OVERHEAD))
            .ok_or_else(|| {
                RecordsError::corrupt(format!("invalid size {length} for magic {magic}"))
            })?;
        if self.data.len() < total {
            self.truncated_bytes = self.data.len();
            self.data.clear();
            return Ok(None);
        }
        let entry = self.data.split_to(total);
        Ok(Some(if magic == batch::MAGIC_V2 {
            Batch::V2(RecordBatch::decode(entry, &self.options)?)
        } else {
            Batch::Legacy(LegacyBatch::decode(entry, &self.options)?)
        }))
    }
}

impl Iterator for BatchReader {
    type Item = Result<Batch, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        match self.read_batch() {
            Ok(batch) => batch.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// All data records of a `records` blob as one stream, legacy and v2 alike.
///
/// Control batches are skipped. Transaction-aware consumers (read committed)
/// need batch-level information and should use [`BatchReader`] instead.
/// After an error the stream yields nothing more.
#[derive(Debug)]
pub struct RecordStream {
    reader: BatchReader,
    current: Option<BatchRecords>,
    failed: bool,
}

impl RecordStream {
    /// A stream with default [`DecodeOptions`].
    pub fn new(records: Bytes) -> Self {
        Self::with_options(records, DecodeOptions::default())
    }

    /// A stream with explicit options.
    pub fn with_options(records: Bytes, options: DecodeOptions) -> Self {
        RecordStream {
            reader: BatchReader::with_options(records, options),
            current: None,
            failed: false,
        }
    }

    /// Whether the blob ended with a partial batch (known once the stream is exhausted).
    pub fn truncated(&self) -> bool {
        self.reader.truncated()
    }

    #[inline]
    fn advance(&mut self) -> Option<Result<Record, RecordsError>> {
        loop {
            let next = self.current.as_mut().and_then(Iterator::next);
            if next.is_some() {
                return next;
            }
            self.current = match self.reader.next()? {
                Err(e) => return Some(Err(e)),
                Ok(Batch::V2(b)) if b.header().is_control() => None,
                Ok(b) => match b.records() {
                    Ok(it) => Some(it),
                    Err(e) => return Some(Err(e)),
                },
            };
        }
    }
}

impl Iterator for RecordStream {
    type Item = Result<Record, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.advance();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

#[cfg(test)]
mod tests;

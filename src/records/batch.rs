//! Message format v2 record batches (magic 2): the in-place builder and the
//! zero-copy decoder.
//!
//! Layout of a batch (all integers big endian):
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 (=2)
//! crc u32 (CRC-32C of everything from attributes to the end)
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32
//! records (compressed as one block when the codec bits are set)
//! ```
//!
//! and of each record:
//!
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint (-1 = null) key | valueLength varint (-1 = null) value
//! headerCount varint, then per header: keyLength varint, key (UTF-8),
//! valueLength varint (-1 = null), value
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::protocol::primitives::{
    ensure_remaining, put_varint, put_varlong, read_i16, read_i32, read_i64, read_i8, read_slice,
    read_u32, read_varint, read_varlong, varint_len, varlong_len,
};

use super::compression::{self, Compression};
use super::control::ControlRecord;
use super::{DecodeOptions, Header, Record, RecordsError, TimestampType};

/// The magic byte of message format v2.
pub const MAGIC_V2: i8 = 2;

/// Size of the fixed batch header that precedes the records.
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// Bytes before `batchLength` ends: baseOffset and batchLength.
pub(crate) const LOG_OVERHEAD: usize = 12;

const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const DELETE_HORIZON_FLAG: i16 = 0x40;

/// The "no producer" value of producer id, epoch and base sequence.
pub const NO_PRODUCER_ID: i64 = -1;
/// The "no producer" value of the producer epoch.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// The "no sequence" value of the base sequence.
pub const NO_SEQUENCE: i32 = -1;
/// The "unknown" partition leader epoch.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// The "no timestamp" value.
pub const NO_TIMESTAMP: i64 = -1;

/// The fixed header of a v2 record batch, as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    /// Offset of the first record (the batch's offsets are relative to it).
    pub base_offset: i64,
    /// Bytes after the `batch_length` field, i.e. total size minus 12.
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Always 2 here.
    pub magic: i8,
    /// The stored CRC-32C.
    pub crc: u32,
    /// Raw attribute bits; see the accessor methods.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon when that flag is set).
    pub base_timestamp: i64,
    /// Largest record timestamp (or the log append time).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records the batch declares.
    pub records_count: i32,
}

impl RecordBatchHeader {
    /// Reads the header from the first [`RECORD_BATCH_OVERHEAD`] bytes.
    fn read(buf: &mut Bytes) -> Result<Self, RecordsError> {
        Ok(RecordBatchHeader {
            base_offset: read_i64(buf)?,
            batch_length: read_i32(buf)?,
            partition_leader_epoch: read_i32(buf)?,
            magic: read_i8(buf)?,
            crc: read_u32(buf)?,
            attributes: read_i16(buf)?,
            last_offset_delta: read_i32(buf)?,
            base_timestamp: read_i64(buf)?,
            max_timestamp: read_i64(buf)?,
            producer_id: read_i64(buf)?,
            producer_epoch: read_i16(buf)?,
            base_sequence: read_i32(buf)?,
            records_count: read_i32(buf)?,
        })
    }

    /// The codec of the records section.
    pub fn compression(&self) -> Result<Compression, RecordsError> {
        Compression::from_id((self.attributes & COMPRESSION_MASK) as u8)
    }

    /// Whether timestamps are producer-assigned or broker-assigned.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// Whether the batch holds control records (transaction markers, ...).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Whether `base_timestamp` holds the delete horizon set by log compaction.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_FLAG != 0
    }

    /// Offset of the last record (saturating on absurd values).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset following this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
}

/// One decoded v2 batch: its header and its (possibly compressed) records.
///
/// Decoding checks the framing and the CRC; the records themselves are parsed
/// lazily by [`RecordBatch::records`], so a consumer can skip a batch (for
/// example an aborted transaction) without decompressing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: RecordBatchHeader,
    records: Bytes,
    max_decompressed_bytes: usize,
}

impl RecordBatch {
    /// Decodes exactly one v2 batch from `bytes` (no bytes may follow it).
    pub fn decode(mut bytes: Bytes, options: &DecodeOptions) -> Result<Self, RecordsError> {
        let whole = bytes.clone();
        let header = RecordBatchHeader::read(&mut bytes)?;
        if header.magic != MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic(header.magic));
        }
        let declared = usize::try_from(header.batch_length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|&l| l >= RECORD_BATCH_OVERHEAD)
            .ok_or_else(|| {
                RecordsError::corrupt(format!("invalid batch length {}", header.batch_length))
            })?;
        if declared != whole.len() {
            return Err(RecordsError::corrupt(format!(
                "batch length says {declared} bytes, {} given",
                whole.len()
            )));
        }
        if options.verify_crc {
            let computed = crc32c::crc32c(&whole[ATTRIBUTES_OFFSET..]);
            if computed != header.crc {
                return Err(RecordsError::CrcMismatch {
                    stored: header.crc,
                    computed,
                });
            }
        }
        header.compression()?;
        if header.records_count < 0 {
            return Err(RecordsError::corrupt(format!(
                "negative record count {}",
                header.records_count
            )));
        }
        Ok(RecordBatch {
            header,
            records: bytes,
            max_decompressed_bytes: options.max_decompressed_bytes,
        })
    }

    /// The batch header.
    pub fn header(&self) -> &RecordBatchHeader {
        &self.header
    }

    /// The records section as it is on the wire (compressed if the batch is).
    pub fn raw_records(&self) -> &Bytes {
        &self.records
    }

    /// An iterator over the records, decompressing the section first if needed
    /// (bounded by the decode options' `max_decompressed_bytes`).
    ///
    /// Uncompressed keys, values and header values are slices of the input.
    pub fn records(&self) -> Result<RecordIter, RecordsError> {
        let data = match self.header.compression()? {
            Compression::None => self.records.clone(),
            codec => compression::decompress(codec, &self.records, self.max_decompressed_bytes)?,
        };
        Ok(RecordIter {
            data,
            remaining: self.header.records_count.max(0).unsigned_abs(),
            base_offset: self.header.base_offset,
            base_timestamp: self.header.base_timestamp,
            max_timestamp: self.header.max_timestamp,
            timestamp_type: self.header.timestamp_type(),
            done: false,
        })
    }

    /// For a control batch, the control record it carries (the first record);
    /// `None` for an ordinary batch.
    pub fn control_record(&self) -> Result<Option<ControlRecord>, RecordsError> {
        if !self.header.is_control() {
            return Ok(None);
        }
        match self.records()?.next() {
            Some(record) => ControlRecord::parse(&record?).map(Some),
            None => Err(RecordsError::corrupt("control batch without records")),
        }
    }
}

/// Iterator over the records of one v2 batch.
///
/// Allocates nothing per record unless the record has headers. After the
/// first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct RecordIter {
    data: Bytes,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    timestamp_type: TimestampType,
    done: bool,
}

impl RecordIter {
    /// Records the batch declares that have not been yielded yet.
    pub fn remaining_records(&self) -> usize {
        self.remaining as usize
    }

    fn read_record(&mut self) -> Result<Record, RecordsError> {
        let len = read_varint(&mut self.data)?;
        let len = usize::try_from(len)
            .map_err(|_| RecordsError::corrupt(format!("negative record length {len}")))?;
        // Parse the record straight from the batch (no sub-slice per record),
        // then check that it used exactly its declared length.
        if self.data.remaining() < len {
            return Err(crate::protocol::DecodeError::UnexpectedEof {
                needed: len,
                remaining: self.data.remaining(),
            }
            .into());
        }
        let end = self.data.remaining() - len;
        let body = &mut self.data;
        let _attributes = read_i8(body)?;
        let timestamp_delta = read_varlong(body)?;
        let offset_delta = read_varint(body)?;
        let key = read_varint_bytes(body)?;
        let value = read_varint_bytes(body)?;
        let header_count = read_varint(body)?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| RecordsError::corrupt(format!("negative header count {header_count}")))?;
        let mut headers = Vec::new();
        if header_count > 0 {
            // Each header takes at least two bytes: never reserve more than that allows.
            headers.reserve(header_count.min(body.remaining().saturating_sub(end) / 2));
            for _ in 0..header_count {
                let key_len = read_varint(body)?;
                let key_len = usize::try_from(key_len).map_err(|_| {
                    RecordsError::corrupt(format!("invalid header key length {key_len}"))
                })?;
                ensure_remaining(body, key_len)?;
                let key = std::str::from_utf8(&body[..key_len])
                    .map_err(|_| crate::protocol::DecodeError::InvalidUtf8)?
                    .to_owned();
                body.advance(key_len);
                let value = read_varint_bytes(body)?;
                headers.push(Header { key, value });
            }
        }
        if body.remaining() != end {
            return Err(RecordsError::corrupt(format!(
                "record declares {len} bytes but its fields take {}",
                len as i64 + end as i64 - body.remaining() as i64
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
        Ok(Record {
            offset,
            timestamp,
            timestamp_type: self.timestamp_type,
            key,
            value,
            headers,
        })
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            if self.data.has_remaining() {
                return Some(Err(RecordsError::corrupt(format!(
                    "{} bytes left after the declared records",
                    self.data.remaining()
                ))));
            }
            return None;
        }
        self.remaining -= 1;
        let result = self.read_record();
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            // One more item may be the trailing-bytes error.
            (0, Some(self.remaining as usize + 1))
        }
    }
}

/// Reads varint-length-prefixed bytes where -1 means null, zero-copy.
fn read_varint_bytes(buf: &mut Bytes) -> Result<Option<Bytes>, RecordsError> {
    match read_varint(buf)? {
        -1 => Ok(None),
        len => {
            let len = usize::try_from(len)
                .map_err(|_| RecordsError::corrupt(format!("invalid length {len}")))?;
            Ok(Some(read_slice(buf, len)?))
        }
    }
}

/// Builds one v2 batch in place.
///
/// Records are encoded straight into a single buffer as they are appended;
/// [`finish`](Self::finish) then compresses the records section if a codec is
/// set, writes the header and the CRC. Nothing is allocated per record.
///
/// ```
/// use ferrokafka::records::{Compression, RecordBatchBuilder, BatchReader};
///
/// let mut builder = RecordBatchBuilder::new(Compression::None);
/// builder.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[("h", Some(&b"v"[..]))])?;
/// let bytes = builder.finish()?;
/// let batches: Vec<_> = BatchReader::new(bytes).collect::<Result<_, _>>()?;
/// assert_eq!(batches.len(), 1);
/// # Ok::<(), ferrokafka::records::RecordsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    buf: BytesMut,
    compression: Compression,
    compression_level: Option<i32>,
    base_offset: i64,
    partition_leader_epoch: i32,
    log_append_time: bool,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

/// A borrowed record header for [`RecordBatchBuilder::append`]: key and value.
pub type HeaderRef<'a> = (&'a str, Option<&'a [u8]>);

impl RecordBatchBuilder {
    /// A builder for a batch compressed with `compression`, base offset 0 and
    /// no producer id.
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 1024)
    }

    /// Like [`new`](Self::new), reserving room for `capacity` bytes of records.
    pub fn with_capacity(compression: Compression, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD.saturating_add(capacity));
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        RecordBatchBuilder {
            buf,
            compression,
            compression_level: None,
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            log_append_time: false,
            transactional: false,
            control: false,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            count: 0,
            last_offset_delta: -1,
            base_timestamp: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
        }
    }

    /// Sets the codec level (`None` = the codec's Kafka default).
    pub fn set_compression_level(&mut self, level: Option<i32>) -> &mut Self {
        self.compression_level = level;
        self
    }

    /// Sets the base offset (producers send 0; the broker assigns offsets).
    pub fn set_base_offset(&mut self, base_offset: i64) -> &mut Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch.
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) -> &mut Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the timestamp type written in the attributes.
    /// [`TimestampType::NoTimestamp`] does not exist in v2 and writes create time.
    pub fn set_timestamp_type(&mut self, timestamp_type: TimestampType) -> &mut Self {
        self.log_append_time = timestamp_type == TimestampType::LogAppendTime;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn set_transactional(&mut self, transactional: bool) -> &mut Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch.
    pub fn set_control(&mut self, control: bool) -> &mut Self {
        self.control = control;
        self
    }

    /// Sets the producer id.
    pub fn set_producer_id(&mut self, producer_id: i64) -> &mut Self {
        self.producer_id = producer_id;
        self
    }

    /// Sets the producer epoch.
    pub fn set_producer_epoch(&mut self, producer_epoch: i16) -> &mut Self {
        self.producer_epoch = producer_epoch;
        self
    }

    /// Sets the sequence number of the first record.
    pub fn set_base_sequence(&mut self, base_sequence: i32) -> &mut Self {
        self.base_sequence = base_sequence;
        self
    }

    /// The codec the batch will be compressed with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Records appended so far.
    pub fn record_count(&self) -> usize {
        self.count.unsigned_abs() as usize
    }

    /// Whether no record was appended yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The size of the batch if it were finished now without compression
    /// (header included). With a codec the finished batch is normally
    /// smaller; incompressible data can exceed this by the codec's framing
    /// overhead (tens of bytes).
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the records section would grow by if this record were appended
    /// next (before compression).
    pub fn size_of_next(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) -> Result<usize, RecordsError> {
        let (ts_delta, offset_delta) = self.next_deltas(timestamp, None)?;
        let body = body_len(ts_delta, offset_delta, key, value, headers.iter().copied())?;
        Ok(varint_len(body) + body.unsigned_abs() as usize)
    }

    /// Appends a record at the next offset; returns its offset delta.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) -> Result<i32, RecordsError> {
        self.append_inner(None, timestamp, key, value, headers.iter().copied())
    }

    /// Appends a record at an explicit offset delta, which must be larger than
    /// the previous record's (gaps are allowed, as in compacted batches).
    pub fn append_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) -> Result<i32, RecordsError> {
        self.append_inner(
            Some(offset_delta),
            timestamp,
            key,
            value,
            headers.iter().copied(),
        )
    }

    /// Appends an owned record. Its offset must lie after the previous
    /// record's; the offset delta is `record.offset - base_offset`.
    pub fn append_record(&mut self, record: &Record) -> Result<i32, RecordsError> {
        let delta = record
            .offset
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .ok_or_else(|| {
                RecordsError::Build(format!(
                    "offset {} is not within an i32 of base offset {}",
                    record.offset, self.base_offset
                ))
            })?;
        self.append_inner(
            Some(delta),
            record.timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            record
                .headers
                .iter()
                .map(|h| (h.key.as_str(), h.value.as_deref())),
        )
    }

    /// Appends every record (see [`append_record`](Self::append_record)) and
    /// finishes the batch.
    pub fn encode_records(mut self, records: &[Record]) -> Result<Bytes, RecordsError> {
        for record in records {
            self.append_record(record)?;
        }
        self.finish()
    }

    fn next_deltas(
        &self,
        timestamp: i64,
        offset_delta: Option<i32>,
    ) -> Result<(i64, i32), RecordsError> {
        let offset_delta = match offset_delta {
            Some(d) if d > self.last_offset_delta => d,
            Some(d) => {
                return Err(RecordsError::Build(format!(
                    "offset delta {d} does not follow {}",
                    self.last_offset_delta
                )))
            }
            None => self
                .last_offset_delta
                .checked_add(1)
                .ok_or_else(|| RecordsError::Build("batch is full (offset delta)".into()))?,
        };
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let ts_delta = timestamp
            .checked_sub(base)
            .ok_or_else(|| RecordsError::Build(format!("timestamp {timestamp} out of range")))?;
        Ok((ts_delta, offset_delta))
    }

    fn append_inner<'h, I>(
        &mut self,
        offset_delta: Option<i32>,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: I,
    ) -> Result<i32, RecordsError>
    where
        I: Iterator<Item = HeaderRef<'h>> + Clone,
    {
        let (ts_delta, offset_delta) = self.next_deltas(timestamp, offset_delta)?;
        let body = body_len(ts_delta, offset_delta, key, value, headers.clone())?;
        let count = self
            .count
            .checked_add(1)
            .ok_or_else(|| RecordsError::Build("too many records".into()))?;
        let total = varint_len(body) + body.unsigned_abs() as usize;
        let buf = &mut self.buf;
        buf.reserve(total);
        put_varint(buf, body);
        buf.put_i8(0);
        put_varlong(buf, ts_delta);
        put_varint(buf, offset_delta);
        put_varint_bytes(buf, key);
        put_varint_bytes(buf, value);
        // body_len already checked the count and every length fits an i32.
        put_varint(buf, headers.clone().count() as i32);
        for (hkey, hvalue) in headers {
            put_varint(buf, hkey.len() as i32);
            buf.put_slice(hkey.as_bytes());
            put_varint_bytes(buf, hvalue);
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.count = count;
        self.last_offset_delta = offset_delta;
        Ok(offset_delta)
    }

    /// Writes the header, compresses the records if a codec is set and
    /// returns the finished batch.
    pub fn finish(self) -> Result<Bytes, RecordsError> {
        let mut buf = match self.compression {
            Compression::None => self.buf,
            codec => {
                let section = &self.buf[RECORD_BATCH_OVERHEAD..];
                let mut out =
                    BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + section.len() / 2 + 64);
                out.put_bytes(0, RECORD_BATCH_OVERHEAD);
                compression::compress(codec, self.compression_level, section, &mut out)?;
                out
            }
        };
        let batch_length = buf
            .len()
            .checked_sub(LOG_OVERHEAD)
            .and_then(|l| i32::try_from(l).ok())
            .ok_or(crate::protocol::EncodeError::TooLarge(buf.len()))?;
        let mut attributes = i16::from(self.compression.id());
        if self.log_append_time {
            attributes |= TIMESTAMP_TYPE_FLAG;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_FLAG;
        }
        if self.control {
            attributes |= CONTROL_FLAG;
        }
        let last_offset_delta = self.last_offset_delta.max(0);
        {
            let mut header: &mut [u8] = &mut buf[..RECORD_BATCH_OVERHEAD];
            header.put_i64(self.base_offset);
            header.put_i32(batch_length);
            header.put_i32(self.partition_leader_epoch);
            header.put_i8(MAGIC_V2);
            header.put_u32(0); // CRC, patched below
            header.put_i16(attributes);
            header.put_i32(last_offset_delta);
            header.put_i64(self.base_timestamp);
            header.put_i64(self.max_timestamp);
            header.put_i64(self.producer_id);
            header.put_i16(self.producer_epoch);
            header.put_i32(self.base_sequence);
            header.put_i32(self.count);
        }
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..]);
        buf[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        Ok(buf.freeze())
    }
}

/// Length of a record's body (everything after its length varint).
fn body_len<'h>(
    ts_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = HeaderRef<'h>>,
) -> Result<i32, RecordsError> {
    let add = |len: usize, n: usize| len.checked_add(n).ok_or_else(too_large);
    let mut len = 1 + varlong_len(ts_delta) + varint_len(offset_delta);
    len = add(len, varint_bytes_len(key)?)?;
    len = add(len, varint_bytes_len(value)?)?;
    let mut count: usize = 0;
    for (hkey, hvalue) in headers {
        count += 1;
        len = add(len, varint_bytes_len(Some(hkey.as_bytes()))?)?;
        len = add(len, varint_bytes_len(hvalue)?)?;
    }
    let count = i32::try_from(count).map_err(|_| too_large())?;
    len = add(len, varint_len(count))?;
    i32::try_from(len).map_err(|_| too_large())
}

fn too_large() -> RecordsError {
    RecordsError::Build("record is too large for the v2 format".into())
}

fn varint_bytes_len(value: Option<&[u8]>) -> Result<usize, RecordsError> {
    match value {
        None => Ok(varint_len(-1)),
        Some(v) => {
            let n = i32::try_from(v.len()).map_err(|_| too_large())?;
            Ok(varint_len(n) + v.len())
        }
    }
}

fn put_varint_bytes(buf: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => put_varint(buf, -1),
        Some(v) => {
            // Callers validated the length with `varint_bytes_len`.
            put_varint(buf, v.len() as i32);
            buf.put_slice(v);
        }
    }
}

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

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::primitives::{
    put_varint, put_varlong, read_i16, read_i32, read_i64, read_i8, read_u32, varint_len,
    varlong_len,
};

use super::borrowed::RecordRefs;
use super::compression::{self, Compression};
use super::control::ControlRecord;
use super::parse::{header_at, RawRecord, RecordCursor};
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
            cursor: RecordCursor::new(
                self.header.records_count.max(0).unsigned_abs(),
                self.header.base_offset,
                self.header.base_timestamp,
                self.header.max_timestamp,
                self.header.timestamp_type(),
            ),
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

/// Iterator over the records of one v2 batch, as owned [`Record`]s.
///
/// Allocates nothing per record unless the record has headers. Fields are
/// read in place with a cursor over the records section; keys, values and
/// headers are zero-copy `Bytes` slices of it (one reference count each).
/// [`refs`](Self::refs) reads the same records as borrowed
/// [`RecordRef`](super::RecordRef)s,
/// without those reference counts. After the first error it yields nothing
/// more.
#[derive(Debug, Clone)]
pub struct RecordIter {
    /// The records section (decompressed).
    pub(crate) data: Bytes,
    pub(crate) cursor: RecordCursor,
}

impl RecordIter {
    /// Records the batch declares that have not been yielded yet.
    pub fn remaining_records(&self) -> usize {
        self.cursor.remaining() as usize
    }

    /// The records not yielded yet, as borrowed [`RecordRef`](super::RecordRef)s: keys, values
    /// and headers are `&[u8]` slices of the bytes this iterator owns (the
    /// decompressed records when the batch is compressed). No allocation and
    /// no reference count per record; take owned `Bytes` only for what you
    /// keep ([`RecordRef::value_bytes`](super::RecordRef::value_bytes)).
    ///
    /// ```
    /// use ferrokafka::records::{Batch, BatchReader, Compression, RecordBatchBuilder};
    ///
    /// let mut builder = RecordBatchBuilder::new(Compression::Lz4);
    /// for i in 0..3i64 {
    ///     builder.append(1_700_000_000_000 + i, None, Some(b"value"), &[])?;
    /// }
    /// let Some(Ok(Batch::V2(batch))) = BatchReader::new(builder.finish()?).next() else {
    ///     panic!("one v2 batch")
    /// };
    /// let records = batch.records()?; // decompresses once
    /// let mut total = 0;
    /// for record in records.refs() {
    ///     total += record?.value().map_or(0, <[u8]>::len);
    /// }
    /// assert_eq!(total, 15);
    /// # Ok::<(), ferrokafka::records::RecordsError>(())
    /// ```
    pub fn refs(&self) -> RecordRefs<'_> {
        RecordRefs::new(&self.data, self.cursor.clone())
    }

    /// The owned record of `raw`, a record this iterator's cursor read.
    #[inline]
    pub(crate) fn to_owned_record(&self, raw: &RawRecord) -> Result<Record, RecordsError> {
        let data = &self.data;
        let mut headers = Vec::new();
        if raw.header_count > 0 {
            let (start, end) = raw.headers;
            let encoded = data.get(..end).unwrap_or_default();
            let mut pos = start;
            // Checked by the cursor; each header takes at least two bytes.
            headers.reserve(raw.header_count.min((end - start) / 2));
            for _ in 0..raw.header_count {
                let (key, value) = header_at(encoded, &mut pos)?;
                headers.push(Header {
                    key: data.slice(key.0..key.1),
                    value: value.map(|(a, b)| data.slice(a..b)),
                });
            }
        }
        Ok(Record {
            offset: raw.offset,
            timestamp: raw.timestamp,
            timestamp_type: self.cursor.timestamp_type,
            key: raw.key.map(|(a, b)| data.slice(a..b)),
            value: raw.value.map(|(a, b)| data.slice(a..b)),
            headers,
        })
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.cursor.next_raw(&self.data)?;
        Some(raw.and_then(|raw| self.to_owned_record(&raw)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.refs().size_hint()
    }
}

/// Java's safety margin on an estimated compression ratio
/// (`COMPRESSION_RATE_ESTIMATION_FACTOR`): a batch is judged full when its
/// records times the ratio times this factor reach the size limit.
pub const COMPRESSION_RATE_ESTIMATION_FACTOR: f32 = 1.05;

/// Builds v2 batches in place, and can be reused batch after batch.
///
/// Records are encoded straight into a single buffer as they are appended.
/// [`seal`](Self::seal) compresses the records section (into a second buffer
/// the builder keeps), writes the header and the CRC, hands the batch out and
/// leaves the builder empty, ready for the next batch with its buffers and
/// settings kept. [`finish`](Self::finish) does the same for a builder used
/// once. Nothing is allocated per record.
///
/// For a producer, [`has_room_for`](Self::has_room_for) tells whether a
/// record still fits under `batch.size`, estimating the compressed size with
/// a ratio learned from earlier batches (see [`CompressionRatioEstimator`]).
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
///
/// A producer's loop: fill up to `batch.size` (16 KiB), seal, learn the
/// ratio, start again with the same builder.
///
/// ```
/// use ferrokafka::records::{
///     BatchReader, Compression, CompressionRatioEstimator, RecordBatchBuilder,
/// };
///
/// let mut ratios = CompressionRatioEstimator::default();
/// let mut builder = RecordBatchBuilder::new(Compression::Lz4);
/// let value = b"a fairly compressible value, a fairly compressible value".repeat(2);
/// let mut sealed = Vec::new();
/// for i in 0..2_000i64 {
///     builder.set_estimated_compression_ratio(ratios.estimate("orders", Compression::Lz4));
///     if !builder.has_room_for(16 * 1024, i, None, Some(&value), &[])? {
///         let batch = builder.seal()?;
///         ratios.update("orders", Compression::Lz4, batch.compression_ratio);
///         sealed.push(batch);
///     }
///     builder.append(i, None, Some(&value), &[])?;
/// }
/// sealed.push(builder.seal()?);
/// assert!(sealed.iter().all(|b| b.bytes.len() <= 16 * 1024));
/// let records: usize = sealed.iter().map(|b| b.record_count).sum();
/// assert_eq!(records, 2_000);
/// # Ok::<(), ferrokafka::records::RecordsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    /// The header placeholder followed by the uncompressed records.
    buf: BytesMut,
    /// Where compressed batches are written; kept between batches.
    compressed: BytesMut,
    compression: Compression,
    compression_level: Option<i32>,
    estimated_ratio: f32,
    /// With a codec, the estimated compressed size of the records in `buf`
    /// ([`estimate_compressed`](Self::estimate_compressed)), kept up to
    /// date by every change to `buf` or the ratio: a producer asks for it
    /// twice per record (does the next record fit, is the batch full), and
    /// the floating-point estimate was 3% of its CPU on lz4 batches.
    estimated_records_len: usize,
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

/// How far ahead of the write position [`warm_ahead`] touches the buffer.
const WARM_AHEAD: usize = 4096;

/// Touches the next [`WARM_AHEAD`] bytes of `buf`'s spare capacity (one
/// byte written per cache line, without changing the buffer's length) each time an append of `len` bytes crosses into a
/// new `WARM_AHEAD` chunk, and the first two chunks when the batch starts.
///
/// Why: a batch buffer is cold memory (a pooled buffer last written a
/// whole request round trip ago), and the producer follows every append
/// with locked atomics (the partition lock, the delivery handle), each of
/// which waits until the append's stores have reached the cache. Missing
/// lines one record at a time cost a memory round trip per record (the
/// largest single cost of producing small records in profiles); touched a
/// chunk ahead, 64 independent misses overlap and the appends that follow
/// hit the cache. Writes rather than loads: a load would first map a fresh
/// page to the shared zero page (a second page fault at the append), and
/// would get a line that the socket writer's core still shares, which the
/// append must then take from it.
#[inline]
fn warm_ahead(buf: &mut BytesMut, len: usize) {
    let start = buf.len();
    let end = start + len;
    if start / WARM_AHEAD == end / WARM_AHEAD && start != RECORD_BATCH_OVERHEAD {
        return;
    }
    let from = if start == RECORD_BATCH_OVERHEAD {
        0
    } else {
        (end / WARM_AHEAD + 1) * WARM_AHEAD - start
    };
    let spare = buf.spare_capacity_mut();
    let to = ((end / WARM_AHEAD + 2) * WARM_AHEAD - start).min(spare.len());
    for at in (from..to).step_by(64) {
        spare[at] = std::mem::MaybeUninit::new(0);
        std::hint::black_box(&mut spare[at]);
    }
}

/// A batch handed out by [`RecordBatchBuilder::seal`].
#[derive(Debug, Clone, PartialEq)]
pub struct SealedBatch {
    /// The encoded batch, header and CRC included, ready to send.
    pub bytes: Bytes,
    /// Records in the batch.
    pub record_count: usize,
    /// Size of the records section before compression.
    pub uncompressed_records_len: usize,
    /// Compressed records section / uncompressed records section (1.0
    /// without a codec): feed it to [`CompressionRatioEstimator::update`].
    pub compression_ratio: f32,
}

impl RecordBatchBuilder {
    /// A builder for a batch compressed with `compression`, base offset 0 and
    /// no producer id.
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 1024)
    }

    /// Like [`new`](Self::new), reserving room for `capacity` bytes of records.
    pub fn with_capacity(compression: Compression, capacity: usize) -> Self {
        Self::with_buffer(
            compression,
            BytesMut::with_capacity(RECORD_BATCH_OVERHEAD.saturating_add(capacity)),
        )
    }

    /// Like [`new`](Self::new), encoding the records into `buffer` (its
    /// contents are discarded, its capacity kept): a producer passes a
    /// buffer from an earlier batch, so that no fresh memory is allocated,
    /// page-faulted and grown batch after batch. See
    /// [`into_buffer`](Self::into_buffer) and
    /// [`set_output_buffer`](Self::set_output_buffer).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ferrokafka::records::{Compression, RecordBatchBuilder};
    ///
    /// let mut builder = RecordBatchBuilder::with_buffer(Compression::Lz4, BytesMut::with_capacity(64 * 1024));
    /// builder.set_output_buffer(BytesMut::with_capacity(64 * 1024));
    /// builder.append(1_700_000_000_000, None, Some(b"value"), &[])?;
    /// let sealed = builder.seal()?;
    /// // The records buffer, free again once the batch is compressed.
    /// let records = builder.into_buffer();
    /// assert!(records.capacity() >= 64 * 1024);
    /// # Ok::<(), ferrokafka::records::RecordsError>(())
    /// ```
    pub fn with_buffer(compression: Compression, mut buffer: BytesMut) -> Self {
        buffer.clear();
        buffer.put_bytes(0, RECORD_BATCH_OVERHEAD);
        let buf = buffer;
        RecordBatchBuilder {
            buf,
            compressed: BytesMut::new(),
            compression,
            compression_level: None,
            estimated_ratio: 1.0,
            estimated_records_len: 0,
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

    /// Gives the builder the buffer its next compressed batch is written
    /// into (its contents are discarded; it grows if too small). Without a
    /// codec it is not used: the records buffer is the batch.
    pub fn set_output_buffer(&mut self, mut buffer: BytesMut) -> &mut Self {
        buffer.clear();
        self.compressed = buffer;
        self
    }

    /// The records buffer, emptied, for another builder
    /// ([`with_buffer`](Self::with_buffer)), when a codec is set: sealing
    /// compressed the records out of it, so no sealed batch uses it.
    /// Without a codec a sealed batch *is* that buffer's memory, so nothing
    /// is handed back (an empty buffer): recycle the sealed batch's bytes
    /// once it is done with instead.
    pub fn into_buffer(self) -> BytesMut {
        if self.compression == Compression::None {
            return BytesMut::new();
        }
        let mut buf = self.buf;
        buf.clear();
        buf
    }

    /// Sets the codec level (`None` = the codec's Kafka default).
    pub fn set_compression_level(&mut self, level: Option<i32>) -> &mut Self {
        self.compression_level = level;
        self
    }

    /// Sets the compression ratio (compressed / uncompressed) the size
    /// estimates assume, usually [`CompressionRatioEstimator::estimate`].
    /// Ignored without a codec. Starts at 1.0, as in the Java client.
    pub fn set_estimated_compression_ratio(&mut self, ratio: f32) -> &mut Self {
        if ratio.is_finite() && ratio > 0.0 {
            self.estimated_ratio = ratio;
            self.refresh_estimate();
        }
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

    /// The estimated size of the batch if it were sealed now: the header plus
    /// the records section times the estimated compression ratio times
    /// [`COMPRESSION_RATE_ESTIMATION_FACTOR`] (Java's
    /// `MemoryRecordsBuilder.estimatedBytesWritten`). Without a codec this
    /// is exact.
    pub fn estimated_size_in_bytes(&self) -> usize {
        if self.compression == Compression::None {
            self.buf.len()
        } else {
            RECORD_BATCH_OVERHEAD.saturating_add(self.estimated_records_len)
        }
    }

    /// Brings `estimated_records_len` up to date with `buf` and the ratio
    /// (nothing to keep without a codec: the size is exact).
    fn refresh_estimate(&mut self) {
        if self.compression != Compression::None {
            self.estimated_records_len =
                self.estimate_compressed(self.buf.len() - RECORD_BATCH_OVERHEAD);
        }
    }

    fn estimate_compressed(&self, uncompressed: usize) -> usize {
        if self.compression == Compression::None {
            return uncompressed;
        }
        // Through i64, whose conversions to and from f64 are one instruction
        // each on x86-64 (usize's take a dozen); buffer lengths are below
        // 2^63, so the value is the same.
        let estimate = uncompressed as i64 as f64
            * f64::from(self.estimated_ratio)
            * f64::from(COMPRESSION_RATE_ESTIMATION_FACTOR);
        // Rounded up without `f64::ceil`, which is a libm call on baseline
        // x86-64. `as` saturates, so a huge ratio gives a huge estimate, not
        // an overflow (nor, where usize is 32 bits, a wrapped one).
        let truncated = estimate as i64;
        let rounded_up = if (truncated as f64) < estimate {
            truncated.saturating_add(1)
        } else {
            truncated
        };
        usize::try_from(rounded_up).unwrap_or(usize::MAX)
    }

    /// The estimated size of the sealed batch (as
    /// [`estimated_size_in_bytes`](Self::estimated_size_in_bytes)) if this
    /// record were appended next.
    pub fn estimated_size_after(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) -> Result<usize, RecordsError> {
        let next = self.size_of_next(timestamp, key, value, headers)?;
        let records = self.buf.len() - RECORD_BATCH_OVERHEAD;
        Ok(RECORD_BATCH_OVERHEAD + self.estimate_compressed(records.saturating_add(next)))
    }

    /// Whether this record fits in a batch limited to `batch_size` bytes
    /// (`batch.size`), by the estimate of
    /// [`estimated_size_after`](Self::estimated_size_after). An empty
    /// builder always has room: a record larger than `batch.size` gets a
    /// batch of its own, as in the Java client.
    pub fn has_room_for(
        &self,
        batch_size: usize,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) -> Result<bool, RecordsError> {
        if self.is_empty() {
            return Ok(true);
        }
        Ok(self.estimated_size_after(timestamp, key, value, headers)? <= batch_size)
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
        let body = body_len(ts_delta, offset_delta, key, value, str_headers(headers))?;
        Ok(varint_len(body) + body.unsigned_abs() as usize)
    }

    /// Appends a record at the next offset; returns its offset delta.
    ///
    /// `timestamp` is in milliseconds since the epoch, or -1 (no timestamp);
    /// other negative values are refused, as by the Java client.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) -> Result<i32, RecordsError> {
        self.append_inner(None, timestamp, key, value, str_headers(headers))
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
            str_headers(headers),
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
                .map(|h| (&h.key[..], h.value.as_deref())),
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
        if timestamp < NO_TIMESTAMP {
            return Err(RecordsError::Build(format!(
                "invalid negative timestamp {timestamp}"
            )));
        }
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
        I: Iterator<Item = RawHeaderRef<'h>> + Clone,
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
        warm_ahead(buf, total);
        // The small fields around the key (and a small key itself) are
        // gathered on the stack and copied in one go: the buffer's bounds are
        // checked per copy, not per varint byte, and a record costs two
        // copies (this and its value) instead of four.
        const FIELDS_MAX: usize = RECORD_PREFIX_MAX + SMALL_KEY_MAX + VALUE_LEN_MAX;
        let mut fields = [0u8; FIELDS_MAX];
        let mut cursor = &mut fields[..];
        put_varint(&mut cursor, body);
        cursor.put_i8(0);
        put_varlong(&mut cursor, ts_delta);
        put_varint(&mut cursor, offset_delta);
        put_varint_len_prefix(&mut cursor, key);
        match key {
            Some(key) if key.len() <= SMALL_KEY_MAX => cursor.put_slice(key),
            Some(key) => {
                let written = FIELDS_MAX - cursor.len();
                buf.put_slice(&fields[..written]);
                buf.put_slice(key);
                cursor = &mut fields[..];
            }
            None => {}
        }
        put_varint_len_prefix(&mut cursor, value);
        let written = FIELDS_MAX - cursor.len();
        buf.put_slice(&fields[..written]);
        if let Some(value) = value {
            buf.put_slice(value);
        }
        // body_len already checked the count and every length fits an i32.
        put_varint(buf, headers.clone().count() as i32);
        for (hkey, hvalue) in headers {
            put_varint_bytes(buf, Some(hkey));
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
        self.refresh_estimate();
        Ok(offset_delta)
    }

    /// Forgets the records appended so far, keeping the buffers (no memory
    /// is freed) and every setting (codec, producer fields, ...).
    pub fn reset(&mut self) {
        self.buf.truncate(RECORD_BATCH_OVERHEAD);
        self.refresh_estimate();
        self.count = 0;
        self.last_offset_delta = -1;
        self.base_timestamp = NO_TIMESTAMP;
        self.max_timestamp = NO_TIMESTAMP;
    }

    /// Seals the batch: compresses the records if a codec is set (into a
    /// buffer the builder keeps for the next batch), writes the header and
    /// the CRC, and returns it. The builder is then empty, as after
    /// [`reset`](Self::reset), with its settings kept.
    ///
    /// An empty batch is refused ([`RecordsError::Build`]); brokers and the
    /// Java client refuse them too. On an error the records are kept.
    pub fn seal(&mut self) -> Result<SealedBatch, RecordsError> {
        if self.count == 0 {
            return Err(RecordsError::Build(
                "a record batch needs at least one record".into(),
            ));
        }
        let uncompressed_records_len = self.buf.len() - RECORD_BATCH_OVERHEAD;
        let out = match self.compression {
            Compression::None => {
                self.write_header_into_buf()?;
                // The staged bytes are the batch. Appends to the next batch
                // reclaim this allocation if the batch was dropped by then.
                let out = self.buf.split();
                self.buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
                out
            }
            codec => {
                let mut out = std::mem::take(&mut self.compressed);
                out.clear();
                out.reserve(RECORD_BATCH_OVERHEAD + uncompressed_records_len / 2 + 64);
                out.put_bytes(0, RECORD_BATCH_OVERHEAD);
                let section = &self.buf[RECORD_BATCH_OVERHEAD..];
                let written =
                    compression::compress(codec, self.compression_level, section, &mut out)
                        .and_then(|()| self.write_header(&mut out));
                self.compressed = out;
                written?;
                self.buf.truncate(RECORD_BATCH_OVERHEAD);
                self.refresh_estimate();
                self.compressed.split()
            }
        };
        let compression_ratio = if self.compression == Compression::None {
            1.0
        } else {
            (out.len() - RECORD_BATCH_OVERHEAD) as f32 / uncompressed_records_len as f32
        };
        let record_count = self.record_count();
        self.count = 0;
        self.last_offset_delta = -1;
        self.base_timestamp = NO_TIMESTAMP;
        self.max_timestamp = NO_TIMESTAMP;
        Ok(SealedBatch {
            bytes: out.freeze(),
            record_count,
            uncompressed_records_len,
            compression_ratio,
        })
    }

    /// Writes the header, compresses the records if a codec is set and
    /// returns the finished batch. An empty batch is refused (see
    /// [`seal`](Self::seal)).
    pub fn finish(mut self) -> Result<Bytes, RecordsError> {
        self.seal().map(|sealed| sealed.bytes)
    }

    fn write_header_into_buf(&mut self) -> Result<(), RecordsError> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.write_header(&mut buf);
        self.buf = buf;
        result
    }

    fn write_header(&self, buf: &mut BytesMut) -> Result<(), RecordsError> {
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
        Ok(())
    }
}

/// Producer fields written into a sealed batch by [`restamp_producer_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerState {
    /// Producer id (-1 for none).
    pub producer_id: i64,
    /// Producer epoch (-1 for none).
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record (-1 for none).
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
}

const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;

/// Rewrites the producer id, epoch, base sequence and transactional flag of
/// a sealed v2 batch, then its CRC (computed from byte 21, the attributes,
/// to the end). The records section is not touched, so a compressed batch
/// is not recompressed: this is how an idempotent producer re-sequences a
/// batch for a retry after an epoch bump (KIP-360).
///
/// Fails with [`RecordsError::Corrupt`] if `batch` is not one whole v2 batch.
///
/// ```
/// use ferrokafka::records::{restamp_producer_state, BatchReader, Compression, ProducerState, RecordBatchBuilder};
///
/// let mut builder = RecordBatchBuilder::new(Compression::Zstd);
/// builder.append(1_700_000_000_000, None, Some(b"payload"), &[])?;
/// let sealed = builder.seal()?;
/// let mut bytes = bytes::BytesMut::from(&sealed.bytes[..]);
/// let state = ProducerState { producer_id: 4000, producer_epoch: 2, base_sequence: 17, transactional: true };
/// restamp_producer_state(&mut bytes, state)?;
/// let batch = BatchReader::new(bytes.freeze()).next().unwrap()?; // the CRC checks out
/// assert_eq!(batch.producer_id(), 4000);
/// assert!(batch.is_transactional());
/// # Ok::<(), ferrokafka::records::RecordsError>(())
/// ```
pub fn restamp_producer_state(batch: &mut [u8], state: ProducerState) -> Result<(), RecordsError> {
    if batch.len() < RECORD_BATCH_OVERHEAD || batch[16] as i8 != MAGIC_V2 {
        return Err(RecordsError::corrupt("not a v2 record batch"));
    }
    let declared = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
    if usize::try_from(declared)
        .ok()
        .and_then(|l| l.checked_add(LOG_OVERHEAD))
        != Some(batch.len())
    {
        return Err(RecordsError::corrupt(format!(
            "batch length says {declared} + 12 bytes, {} given",
            batch.len()
        )));
    }
    let mut attributes =
        i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]);
    if state.transactional {
        attributes |= TRANSACTIONAL_FLAG;
    } else {
        attributes &= !TRANSACTIONAL_FLAG;
    }
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[PRODUCER_ID_OFFSET..PRODUCER_EPOCH_OFFSET]
        .copy_from_slice(&state.producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_OFFSET..BASE_SEQUENCE_OFFSET]
        .copy_from_slice(&state.producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
        .copy_from_slice(&state.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// [`restamp_producer_state`] on a shared batch: rewrites it in place when
/// `batch` is its buffer's only handle (say, once the request that carried
/// it is gone), and on a copy otherwise.
pub fn restamped(batch: Bytes, state: ProducerState) -> Result<Bytes, RecordsError> {
    let mut bytes = batch
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    restamp_producer_state(&mut bytes, state)?;
    Ok(bytes.freeze())
}

/// A header with its key as raw bytes (the builder's internal form).
type RawHeaderRef<'a> = (&'a [u8], Option<&'a [u8]>);

fn str_headers<'a>(
    headers: &'a [HeaderRef<'a>],
) -> impl Iterator<Item = RawHeaderRef<'a>> + Clone + 'a {
    headers.iter().map(|&(k, v)| (k.as_bytes(), v))
}

/// Length of a record's body (everything after its length varint).
fn body_len<'h>(
    ts_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = RawHeaderRef<'h>>,
) -> Result<i32, RecordsError> {
    let add = |len: usize, n: usize| len.checked_add(n).ok_or_else(too_large);
    let mut len = 1 + varlong_len(ts_delta) + varint_len(offset_delta);
    len = add(len, varint_bytes_len(key)?)?;
    len = add(len, varint_bytes_len(value)?)?;
    let mut count: usize = 0;
    for (hkey, hvalue) in headers {
        count += 1;
        len = add(len, varint_bytes_len(Some(hkey))?)?;
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

/// Keys up to this size are copied with the record's small fields.
const SMALL_KEY_MAX: usize = 64;

/// The most bytes a record's fields before its key take: length (varint),
/// attributes, timestamp delta (varlong), offset delta and key length
/// (varints).
const RECORD_PREFIX_MAX: usize = 5 + 1 + 10 + 5 + 5;

/// The most bytes the value's length (a varint) takes.
const VALUE_LEN_MAX: usize = 5;

/// Writes the length varint of a nullable byte string (-1 for null).
fn put_varint_len_prefix(buf: &mut impl BufMut, value: Option<&[u8]>) {
    // Callers validated the length with `varint_bytes_len`.
    put_varint(buf, value.map_or(-1, |v| v.len() as i32));
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

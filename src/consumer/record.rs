//! Records as the application sees them: [`Records`] (one poll's worth,
//! iterated as borrowed [`RecordView`]s without a per-record allocation) and
//! the owned [`ConsumerRecord`] of the stream.
//!
//! Fetched v2 batches are checked once when they arrive (framing, CRC, every
//! record's fields and lengths), so iteration here re-reads them in place
//! with no error path.

use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::primitives::{varint_at, varlong_at};
use crate::records::{Header, Record, RecordsError, TimestampType};

use super::TopicPartition;

/// What a v2 batch's records share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    pub base_offset: i64,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub timestamp_type: TimestampType,
    pub leader_epoch: i32,
}

impl BatchMeta {
    pub fn of(header: &crate::records::RecordBatchHeader) -> Self {
        BatchMeta {
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
            timestamp_type: header.timestamp_type(),
            leader_epoch: header.partition_leader_epoch,
        }
    }
}

/// Records of one partition ready for the application, in offset order.
#[derive(Debug, Clone)]
pub(crate) enum ChunkData {
    /// `count` records of a v2 batch, back to back in `data` (uncompressed).
    V2 {
        meta: BatchMeta,
        data: Bytes,
        count: usize,
    },
    /// Legacy (magic 0/1) records, already parsed.
    Legacy {
        records: Arc<[Record]>,
        start: usize,
    },
    /// No records: batches that were skipped (control records, aborted
    /// transactions) only move the position.
    Skip,
}

/// A piece of buffered fetched data.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub partition: TopicPartition,
    /// The partition's seek generation when fetched; stale chunks are dropped.
    pub generation: u64,
    pub data: ChunkData,
    /// The position once this chunk is consumed.
    pub next_offset: i64,
    /// The leader epoch of the last record (for the position).
    pub leader_epoch: Option<i32>,
    /// Fetched bytes this chunk accounts for in the buffer budget.
    pub wire_bytes: usize,
}

impl Chunk {
    /// Records in the chunk.
    pub fn len(&self) -> usize {
        match &self.data {
            ChunkData::V2 { count, .. } => *count,
            ChunkData::Legacy { records, start } => records.len() - start,
            ChunkData::Skip => 0,
        }
    }

    /// Splits off the first `n` records (0 < n < len) into a chunk of their
    /// own; `self` keeps the rest.
    pub fn split_front(&mut self, n: usize) -> Chunk {
        debug_assert!(n > 0 && n < self.len());
        let (front_data, next) = match &mut self.data {
            ChunkData::V2 { meta, data, count } => {
                let mut pos = 0;
                for _ in 0..n {
                    pos = skip_record(data, pos);
                }
                let next = meta.base_offset + i64::from(offset_delta_at(data, pos));
                let front = ChunkData::V2 {
                    meta: *meta,
                    data: data.split_to(pos),
                    count: n,
                };
                *count -= n;
                (front, next)
            }
            ChunkData::Legacy { records, start } => {
                let front = ChunkData::Legacy {
                    records: Arc::from(&records[*start..*start + n]),
                    start: 0,
                };
                *start += n;
                let next = records[*start].offset;
                (front, next)
            }
            ChunkData::Skip => unreachable!("a skip chunk has no records to split"),
        };
        let wire = self.wire_bytes * n / (n + self.len());
        self.wire_bytes -= wire;
        Chunk {
            partition: self.partition.clone(),
            generation: self.generation,
            data: front_data,
            next_offset: next,
            leader_epoch: self.leader_epoch,
            wire_bytes: wire,
        }
    }
}

// ------------------------------------------------------------ in-place reading

// The protocol layer's cursor readers, as options: any malformed field
// makes the record invalid.
#[inline(always)]
fn varlong(data: &[u8], pos: &mut usize) -> Option<i64> {
    varlong_at(data, pos).ok()
}

#[inline(always)]
fn varint(data: &[u8], pos: &mut usize) -> Option<i32> {
    varint_at(data, pos).ok()
}

/// Reads a varint length (-1 = null) and returns the range it covers.
#[inline(always)]
fn nullable(data: &[u8], pos: &mut usize, end: usize) -> Option<Option<(usize, usize)>> {
    match varint(data, pos)? {
        -1 => Some(None),
        len => {
            let len = usize::try_from(len).ok()?;
            let start = *pos;
            let stop = start.checked_add(len).filter(|&s| s <= end)?;
            *pos = stop;
            Some(Some((start, stop)))
        }
    }
}

/// One record's fields as byte ranges of its batch data.
#[derive(Debug, Clone, Copy)]
struct RawRecord {
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
    headers: (usize, usize),
    header_count: usize,
    end: usize,
}

#[inline(always)]
fn parse_record(data: &[u8], mut pos: usize) -> Option<RawRecord> {
    let len = usize::try_from(varint(data, &mut pos)?).ok()?;
    let end = pos.checked_add(len).filter(|&e| e <= data.len())?;
    pos += 1; // attributes
    if pos > end {
        return None;
    }
    let timestamp_delta = varlong(data, &mut pos)?;
    let offset_delta = varint(data, &mut pos)?;
    let key = nullable(data, &mut pos, end)?;
    let value = nullable(data, &mut pos, end)?;
    let header_count = usize::try_from(varint(data, &mut pos)?).ok()?;
    let headers = (pos, end);
    if pos > end {
        return None;
    }
    Some(RawRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
        header_count,
        end,
    })
}

/// The position after the record at `pos` (data already validated).
fn skip_record(data: &[u8], mut pos: usize) -> usize {
    let len = varint(data, &mut pos).unwrap_or(0);
    pos + len.max(0) as usize
}

/// The offset delta of the record at `pos` (data already validated).
fn offset_delta_at(data: &[u8], pos: usize) -> i32 {
    parse_record(data, pos).map_or(0, |r| r.offset_delta)
}

/// Checks `count` records of a v2 batch's (uncompressed) records section:
/// every length and field in bounds, header keys UTF-8, nothing left over.
/// Returns the byte position of the first record whose offset is at least
/// `from_offset` and how many records start there.
pub(crate) fn validate_records(
    data: &[u8],
    count: usize,
    base_offset: i64,
    from_offset: i64,
) -> Result<(usize, usize), RecordsError> {
    let corrupt = |what: &str| RecordsError::corrupt(what.to_owned());
    let mut pos = 0;
    let mut start = None;
    for index in 0..count {
        let record = parse_record(data, pos).ok_or_else(|| corrupt("malformed record"))?;
        let mut h = record.headers.0;
        for _ in 0..record.header_count {
            let key = nullable(data, &mut h, record.end)
                .flatten()
                .ok_or_else(|| corrupt("malformed header key"))?;
            std::str::from_utf8(&data[key.0..key.1])
                .map_err(|_| corrupt("header key not UTF-8"))?;
            nullable(data, &mut h, record.end).ok_or_else(|| corrupt("malformed header value"))?;
        }
        if h != record.end {
            return Err(corrupt("record length disagrees with its fields"));
        }
        if start.is_none() && base_offset + i64::from(record.offset_delta) >= from_offset {
            start = Some((pos, count - index));
        }
        pos = record.end;
    }
    if pos != data.len() {
        return Err(corrupt("bytes left after the declared records"));
    }
    Ok(start.unwrap_or((data.len(), 0)))
}

// ------------------------------------------------------------------ Records

/// The records one [`Consumer::poll`](super::Consumer::poll) returned.
///
/// Holds the fetched batches themselves; [`Records::iter`] reads each record
/// in place as a [`RecordView`] (keys, values and headers are slices of the
/// fetched data, nothing is allocated per record).
///
/// ```no_run
/// # async fn demo(consumer: &ferrokafka::consumer::Consumer) -> ferrokafka::consumer::Result<()> {
/// let batch = consumer.poll(1000, std::time::Duration::from_secs(1)).await?;
/// for record in batch.iter() {
///     println!("{}@{}: {:?}", record.partition(), record.offset(), record.value());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub(crate) chunks: Vec<Chunk>,
    pub(crate) count: usize,
    pub(crate) bytes: usize,
}

impl Records {
    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records in fetch order (offset order within a partition).
    pub fn iter(&self) -> RecordsIter<'_> {
        RecordsIter {
            chunks: &self.chunks,
            chunk: 0,
            pos: 0,
            left: self.chunks.first().map_or(0, Chunk::len),
        }
    }

    /// The partitions that have records in this batch.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        let mut out: Vec<TopicPartition> = Vec::new();
        for c in &self.chunks {
            if c.len() > 0 && !out.contains(&c.partition) {
                out.push(c.partition.clone());
            }
        }
        out
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = RecordView<'a>;
    type IntoIter = RecordsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the records of a [`Records`] batch.
#[derive(Debug, Clone)]
pub struct RecordsIter<'a> {
    chunks: &'a [Chunk],
    chunk: usize,
    pos: usize,
    left: usize,
}

impl<'a> Iterator for RecordsIter<'a> {
    type Item = RecordView<'a>;

    #[inline]
    fn next(&mut self) -> Option<RecordView<'a>> {
        loop {
            let chunk = self.chunks.get(self.chunk)?;
            if self.left == 0 {
                self.chunk += 1;
                self.pos = 0;
                self.left = self.chunks.get(self.chunk).map_or(0, Chunk::len);
                continue;
            }
            self.left -= 1;
            match &chunk.data {
                ChunkData::V2 { meta, data, .. } => {
                    let Some(raw) = parse_record(data, self.pos) else {
                        // Validated on arrival: cannot happen; end the chunk.
                        self.left = 0;
                        continue;
                    };
                    self.pos = raw.end;
                    let timestamp = match meta.timestamp_type {
                        TimestampType::LogAppendTime => meta.max_timestamp,
                        _ => meta.base_timestamp.wrapping_add(raw.timestamp_delta),
                    };
                    return Some(RecordView {
                        partition: &chunk.partition,
                        offset: meta.base_offset + i64::from(raw.offset_delta),
                        timestamp,
                        timestamp_type: meta.timestamp_type,
                        leader_epoch: meta.leader_epoch,
                        body: Body::V2 {
                            data,
                            key: raw.key,
                            value: raw.value,
                            headers: raw.headers,
                            header_count: raw.header_count,
                        },
                    });
                }
                ChunkData::Legacy { records, start } => {
                    let record = &records[*start + self.pos];
                    self.pos += 1;
                    return Some(RecordView {
                        partition: &chunk.partition,
                        offset: record.offset,
                        timestamp: record.timestamp,
                        timestamp_type: record.timestamp_type,
                        leader_epoch: -1,
                        body: Body::Legacy(record),
                    });
                }
                ChunkData::Skip => self.left = 0,
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Body<'a> {
    V2 {
        data: &'a Bytes,
        key: Option<(usize, usize)>,
        value: Option<(usize, usize)>,
        headers: (usize, usize),
        header_count: usize,
    },
    Legacy(&'a Record),
}

/// One record of a [`Records`] batch, read in place.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    partition: &'a TopicPartition,
    offset: i64,
    timestamp: i64,
    timestamp_type: TimestampType,
    leader_epoch: i32,
    body: Body<'a>,
}

impl<'a> RecordView<'a> {
    /// The topic.
    pub fn topic(&self) -> &'a str {
        self.partition.topic()
    }
    /// The partition index.
    pub fn partition(&self) -> i32 {
        self.partition.partition()
    }
    /// The topic and partition.
    pub fn topic_partition(&self) -> &'a TopicPartition {
        self.partition
    }
    /// The record's offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }
    /// Milliseconds since the epoch (-1 when the record has none).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    /// Who set the timestamp.
    pub fn timestamp_type(&self) -> TimestampType {
        self.timestamp_type
    }
    /// The epoch of the leader that appended the record (`None` for legacy records).
    pub fn leader_epoch(&self) -> Option<i32> {
        (self.leader_epoch >= 0).then_some(self.leader_epoch)
    }
    /// The key, `None` when null.
    pub fn key(&self) -> Option<&'a [u8]> {
        match self.body {
            Body::V2 { data, key, .. } => key.map(|(a, b)| &data[a..b]),
            Body::Legacy(r) => r.key.as_deref(),
        }
    }
    /// The value, `None` when null (a tombstone).
    pub fn value(&self) -> Option<&'a [u8]> {
        match self.body {
            Body::V2 { data, value, .. } => value.map(|(a, b)| &data[a..b]),
            Body::Legacy(r) => r.value.as_deref(),
        }
    }
    /// The key as [`Bytes`] sharing the fetched buffer (no copy).
    pub fn key_bytes(&self) -> Option<Bytes> {
        match self.body {
            Body::V2 { data, key, .. } => key.map(|(a, b)| data.slice(a..b)),
            Body::Legacy(r) => r.key.clone(),
        }
    }
    /// The value as [`Bytes`] sharing the fetched buffer (no copy).
    pub fn value_bytes(&self) -> Option<Bytes> {
        match self.body {
            Body::V2 { data, value, .. } => value.map(|(a, b)| data.slice(a..b)),
            Body::Legacy(r) => r.value.clone(),
        }
    }
    /// The headers in wire order (duplicate keys kept).
    pub fn headers(&self) -> HeadersIter<'a> {
        match self.body {
            Body::V2 {
                data,
                headers,
                header_count,
                ..
            } => HeadersIter {
                data: Some(data),
                pos: headers.0,
                end: headers.1,
                left: header_count,
            },
            Body::Legacy(_) => HeadersIter {
                data: None,
                pos: 0,
                end: 0,
                left: 0,
            },
        }
    }
    /// An owned copy of the record (values share the fetched buffer).
    pub fn to_record(&self) -> ConsumerRecord {
        ConsumerRecord {
            topic: self.partition.topic.clone(),
            partition: self.partition(),
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            leader_epoch: self.leader_epoch(),
            key: self.key_bytes(),
            value: self.value_bytes(),
            headers: self
                .headers()
                .map(|h| Header {
                    key: h.key_bytes(),
                    value: h.value_bytes(),
                })
                .collect(),
        }
    }
}

/// Iterator over a record's headers.
#[derive(Debug, Clone)]
pub struct HeadersIter<'a> {
    data: Option<&'a Bytes>,
    pos: usize,
    end: usize,
    left: usize,
}

/// One header of a [`RecordView`].
#[derive(Debug, Clone, Copy)]
pub struct HeaderView<'a> {
    data: &'a Bytes,
    key: (usize, usize),
    value: Option<(usize, usize)>,
}

impl<'a> HeaderView<'a> {
    /// The header key.
    pub fn key(&self) -> &'a str {
        // Checked to be UTF-8 when the batch arrived.
        std::str::from_utf8(&self.data[self.key.0..self.key.1]).unwrap_or_default()
    }
    /// The header key as [`Bytes`] sharing the fetched buffer.
    pub fn key_bytes(&self) -> Bytes {
        self.data.slice(self.key.0..self.key.1)
    }
    /// The header value, `None` when null.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value.map(|(a, b)| &self.data[a..b])
    }
    /// The header value as [`Bytes`] sharing the fetched buffer.
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.value.map(|(a, b)| self.data.slice(a..b))
    }
}

impl<'a> Iterator for HeadersIter<'a> {
    type Item = HeaderView<'a>;
    fn next(&mut self) -> Option<HeaderView<'a>> {
        let data = self.data?;
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = nullable(data, &mut self.pos, self.end).flatten()?;
        let value = nullable(data, &mut self.pos, self.end)?;
        Some(HeaderView { data, key, value })
    }
}

/// An owned record, as the [`Consumer::stream`](super::Consumer::stream) yields.
///
/// Key, value and header values share the fetched buffer when the batch was
/// not compressed (and the decompressed buffer otherwise): no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition index.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Milliseconds since the epoch (-1 when none).
    pub timestamp: i64,
    /// Who set the timestamp.
    pub timestamp_type: TimestampType,
    /// The epoch of the leader that appended it, when known.
    pub leader_epoch: Option<i32>,
    /// The key (`None` = null).
    pub key: Option<Bytes>,
    /// The value (`None` = null).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<Header>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Compression, RecordBatch, RecordBatchBuilder};

    fn batch(n: usize) -> RecordBatch {
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.set_base_offset(100);
        for i in 0..n {
            let key = format!("k{i}");
            let headers: Vec<(&str, Option<&[u8]>)> = if i % 2 == 0 {
                vec![("h", Some(b"x".as_slice())), ("h", None)]
            } else {
                vec![]
            };
            b.append(
                1000 + i as i64,
                Some(key.as_bytes()),
                (i != 3).then_some(b"v".as_slice()),
                &headers,
            )
            .unwrap();
        }
        RecordBatch::decode(b.finish().unwrap(), &Default::default()).unwrap()
    }

    fn chunk_of(b: &RecordBatch, from: i64) -> Chunk {
        let h = b.header();
        let data = b.raw_records().clone();
        let (start, count) =
            validate_records(&data, h.records_count as usize, h.base_offset, from).unwrap();
        Chunk {
            partition: TopicPartition::new("t", 0),
            generation: 0,
            data: ChunkData::V2 {
                meta: BatchMeta::of(h),
                data: data.slice(start..),
                count,
            },
            next_offset: h.next_offset(),
            leader_epoch: None,
            wire_bytes: 100,
        }
    }

    #[test]
    fn views_match_the_record_decoder_and_split_keeps_order() {
        let b = batch(7);
        let expected: Vec<Record> = b.records().unwrap().map(Result::unwrap).collect();
        let mut chunk = chunk_of(&b, 0);
        let front = chunk.split_front(3);
        assert_eq!((front.len(), chunk.len(), front.next_offset), (3, 4, 103));
        let records = Records {
            count: 7,
            bytes: 0,
            chunks: vec![front, chunk],
        };
        let got: Vec<ConsumerRecord> = records.iter().map(|r| r.to_record()).collect();
        assert_eq!(got.len(), 7);
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(
                (g.offset, g.timestamp, &g.key, &g.value, &g.headers),
                (e.offset, e.timestamp, &e.key, &e.value, &e.headers)
            );
        }
    }

    #[test]
    fn records_below_the_fetch_offset_are_skipped() {
        let b = batch(5);
        let chunk = chunk_of(&b, 102);
        assert_eq!(chunk.len(), 3);
        let records = Records {
            count: 3,
            bytes: 0,
            chunks: vec![chunk],
        };
        let offsets: Vec<i64> = records.iter().map(|r| r.offset()).collect();
        assert_eq!(offsets, [102, 103, 104]);
    }

    #[test]
    fn malformed_records_are_rejected_not_panicked_on() {
        let b = batch(3);
        let data = b.raw_records().clone();
        for cut in 0..data.len() {
            assert!(validate_records(&data[..cut], 3, 0, 0).is_err());
        }
        let mut bad = data.to_vec();
        bad[0] = 0x7f; // a huge record length
        assert!(validate_records(&bad, 3, 0, 0).is_err());
        assert!(validate_records(&data, 2, 0, 0).is_err());
    }
}

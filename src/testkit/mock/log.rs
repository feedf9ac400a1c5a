//! One partition's replicated log as the mock keeps it: batches stored as
//! produced (offsets and leader epoch rewritten), the leader-epoch history,
//! idempotent producer state, open transactions and the aborted-transaction
//! index that read_committed fetches need.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::protocol::ErrorCode;
use crate::records::batch::{NO_PRODUCER_ID, NO_SEQUENCE};
use crate::records::{Compression, ControlRecord};
use crate::records::{DecodeOptions, Record, RecordBatch, RecordBatchBuilder, RecordsError};

/// How many recent batches per producer the duplicate check remembers, as Kafka does.
const PRODUCER_BATCH_CACHE: usize = 5;

/// A batch in the log: the wire bytes with the broker's offsets written in.
#[derive(Debug, Clone)]
pub(super) struct StoredBatch {
    pub(super) base_offset: i64,
    pub(super) last_offset: i64,
    pub(super) max_timestamp: i64,
    pub(super) leader_epoch: i32,
    pub(super) bytes: Bytes,
}

/// What a producer last wrote to this partition.
#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    /// The offset of the last record it wrote here: once the log start
    /// passes it, the broker forgets the producer (retention, DeleteRecords).
    last_offset: i64,
    /// `(first sequence, last sequence, base offset)` of the latest batches.
    recent: VecDeque<(i32, i32, i64)>,
}

/// An aborted transaction, as listed in fetch responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AbortedTxn {
    pub(super) producer_id: i64,
    pub(super) first_offset: i64,
    /// Offset of the abort marker.
    pub(super) last_offset: i64,
}

/// The result of appending a produce request's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Appended {
    pub(super) base_offset: i64,
    pub(super) log_append_time: i64,
}

/// One partition: its replicas, leader and log.
#[derive(Debug, Clone)]
pub(super) struct PartitionLog {
    pub(super) replicas: Vec<i32>,
    /// `-1` when no replica is alive.
    pub(super) leader: i32,
    pub(super) leader_epoch: i32,
    pub(super) log_start: i64,
    pub(super) batches: Vec<StoredBatch>,
    /// `(epoch, start offset)`, ascending.
    epochs: Vec<(i32, i64)>,
    producers: HashMap<i64, ProducerEntry>,
    /// Producer id to the first offset of its open transaction here.
    open_txns: BTreeMap<i64, i64>,
    pub(super) aborted: Vec<AbortedTxn>,
}

impl PartitionLog {
    pub(super) fn new(replicas: Vec<i32>) -> PartitionLog {
        let leader = replicas.first().copied().unwrap_or(-1);
        PartitionLog {
            replicas,
            leader,
            leader_epoch: 0,
            log_start: 0,
            batches: Vec::new(),
            epochs: vec![(0, 0)],
            producers: HashMap::new(),
            open_txns: BTreeMap::new(),
            aborted: Vec::new(),
        }
    }

    /// The log end offset; every replica is always in sync, so also the high watermark.
    pub(super) fn high_watermark(&self) -> i64 {
        self.batches
            .last()
            .map_or(self.log_start, |b| b.last_offset + 1)
    }

    /// The last stable offset: the first offset of the oldest open transaction.
    pub(super) fn last_stable_offset(&self) -> i64 {
        self.open_txns
            .values()
            .copied()
            .min()
            .unwrap_or_else(|| self.high_watermark())
    }

    /// Makes `leader` the leader in a new epoch that starts at the log end.
    pub(super) fn set_leader(&mut self, leader: i32) {
        self.leader = leader;
        self.leader_epoch += 1;
        let start = self.high_watermark();
        self.epochs.retain(|&(_, s)| s < start);
        self.epochs.push((self.leader_epoch, start));
    }

    /// Checks a client's `current_leader_epoch` (-1 = not given) as Kafka does.
    pub(super) fn check_epoch(&self, current_leader_epoch: i32) -> ErrorCode {
        if current_leader_epoch < 0 || current_leader_epoch == self.leader_epoch {
            ErrorCode::None
        } else if current_leader_epoch < self.leader_epoch {
            ErrorCode::FencedLeaderEpoch
        } else {
            ErrorCode::UnknownLeaderEpoch
        }
    }

    /// OffsetForLeaderEpoch: the largest epoch `<= epoch` and where it ends,
    /// or `(-1, -1)` when the log holds nothing that old.
    pub(super) fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let Some(index) = self.epochs.iter().rposition(|&(e, _)| e <= epoch) else {
            return (-1, -1);
        };
        let found = self.epochs[index].0;
        let end = self
            .epochs
            .get(index + 1)
            .map_or_else(|| self.high_watermark(), |&(_, start)| start);
        (found, end)
    }

    /// The epoch of the batch holding `offset` (the current epoch past the end).
    pub(super) fn epoch_at(&self, offset: i64) -> i32 {
        self.epochs
            .iter()
            .rev()
            .find(|&&(_, start)| start <= offset)
            .map_or(self.leader_epoch, |&(e, _)| e)
    }

    /// Appends the batches of one produce request as the leader would.
    pub(super) fn append(
        &mut self,
        records: &Bytes,
        in_transaction: impl Fn(i64) -> bool,
    ) -> Result<Appended, ErrorCode> {
        let batches = split_batches(records).map_err(|_| ErrorCode::CorruptMessage)?;
        if batches.is_empty() {
            return Err(ErrorCode::CorruptMessage);
        }
        // Validate everything first: a request is all or nothing.
        let first = batches[0].header();
        let idempotent = first.producer_id != NO_PRODUCER_ID;
        if batches
            .iter()
            .any(|b| b.header().producer_id != first.producer_id || b.header().is_control())
        {
            return Err(ErrorCode::InvalidRecord);
        }
        if first.is_transactional() && !in_transaction(first.producer_id) {
            return Err(ErrorCode::InvalidTxnState);
        }
        if idempotent && first.base_sequence != NO_SEQUENCE {
            match self.check_sequence(&batches) {
                Ok(()) => {}
                Err(Ok(duplicate_base)) => {
                    return Ok(Appended {
                        base_offset: duplicate_base,
                        log_append_time: -1,
                    })
                }
                Err(Err(code)) => return Err(code),
            }
        }
        let base_offset = self.high_watermark();
        let mut next = base_offset;
        for batch in &batches {
            let header = *batch.header();
            let count = i64::from(header.last_offset_delta) + 1;
            let stored = self.store(batch, next);
            next += count;
            if idempotent {
                let entry = self.producers.entry(header.producer_id).or_default();
                if entry.epoch != header.producer_epoch {
                    entry.recent.clear();
                }
                entry.epoch = header.producer_epoch;
                entry.last_offset = stored + i64::from(header.last_offset_delta);
                let last_seq = header.base_sequence.wrapping_add(header.last_offset_delta);
                entry
                    .recent
                    .push_back((header.base_sequence, last_seq, stored));
                while entry.recent.len() > PRODUCER_BATCH_CACHE {
                    entry.recent.pop_front();
                }
            }
            if header.is_transactional() {
                self.open_txns.entry(header.producer_id).or_insert(stored);
            }
        }
        Ok(Appended {
            base_offset,
            log_append_time: -1,
        })
    }

    /// `Ok` to append, `Err(Ok(base))` for a duplicate of a cached batch
    /// (answered with its original offset), `Err(Err(code))` to refuse.
    fn check_sequence(&self, batches: &[RecordBatch]) -> Result<(), Result<i64, ErrorCode>> {
        let first = batches[0].header();
        let Some(entry) = self.producers.get(&first.producer_id) else {
            return if first.base_sequence == 0 {
                Ok(())
            } else {
                Err(Err(ErrorCode::OutOfOrderSequenceNumber))
            };
        };
        if first.producer_epoch < entry.epoch {
            return Err(Err(if first.is_transactional() {
                ErrorCode::ProducerFenced
            } else {
                ErrorCode::InvalidProducerEpoch
            }));
        }
        if first.producer_epoch > entry.epoch {
            return if first.base_sequence == 0 {
                Ok(())
            } else {
                Err(Err(ErrorCode::OutOfOrderSequenceNumber))
            };
        }
        let last_seq = first.base_sequence.wrapping_add(first.last_offset_delta);
        if let Some(&(_, _, base)) = entry
            .recent
            .iter()
            .find(|&&(f, l, _)| f == first.base_sequence && l == last_seq)
        {
            return Err(Ok(base));
        }
        let expected = entry
            .recent
            .back()
            .map_or(0, |&(_, l, _)| if l == i32::MAX { 0 } else { l + 1 });
        if first.base_sequence == expected {
            Ok(())
        } else {
            Err(Err(ErrorCode::OutOfOrderSequenceNumber))
        }
    }

    fn store(&mut self, batch: &RecordBatch, base_offset: i64) -> i64 {
        let header = batch.header();
        let mut bytes = BytesMut::with_capacity(header.batch_length as usize + 12);
        bytes.extend_from_slice(&base_offset.to_be_bytes());
        bytes.extend_from_slice(&header.batch_length.to_be_bytes());
        // The partition leader epoch is not covered by the CRC.
        bytes.extend_from_slice(&self.leader_epoch.to_be_bytes());
        bytes.extend_from_slice(&batch_tail(batch));
        self.batches.push(StoredBatch {
            base_offset,
            last_offset: base_offset + i64::from(header.last_offset_delta),
            max_timestamp: header.max_timestamp,
            leader_epoch: self.leader_epoch,
            bytes: bytes.freeze(),
        });
        base_offset
    }

    /// Writes a commit or abort marker for `producer_id` and closes its
    /// transaction here. Returns the marker's offset.
    pub(super) fn write_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        timestamp: i64,
    ) -> i64 {
        let offset = self.high_watermark();
        let marker = ControlRecord::end_transaction(commit, 0);
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .set_base_offset(offset)
            .set_partition_leader_epoch(self.leader_epoch)
            .set_control(true)
            .set_transactional(true)
            .set_producer_id(producer_id)
            .set_producer_epoch(producer_epoch);
        let key = marker.encode_key();
        let value = marker.value.clone().unwrap_or_default();
        let bytes = builder
            .append(timestamp, Some(&key), Some(&value), &[])
            .and_then(|_| builder.finish())
            .expect("a control record always encodes");
        self.batches.push(StoredBatch {
            base_offset: offset,
            last_offset: offset,
            max_timestamp: timestamp,
            leader_epoch: self.leader_epoch,
            bytes,
        });
        if let Some(first_offset) = self.open_txns.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: offset,
                });
            }
        }
        offset
    }

    /// Moves the log start offset forward to `offset` (at most the log end),
    /// as DeleteRecords or retention would: batches wholly before it are
    /// dropped, and so is the state of every producer whose last record was
    /// before it, as Kafka's broker forgets such producers. Returns the new
    /// log start offset.
    pub(super) fn delete_records(&mut self, offset: i64) -> i64 {
        // Never past the log end, so an emptied log keeps its next offset.
        let start = offset.clamp(self.log_start, self.high_watermark());
        self.log_start = start;
        self.batches.retain(|b| b.last_offset >= start);
        self.producers.retain(|_, p| p.last_offset >= start);
        self.log_start
    }

    /// Drops every batch from the one holding `offset` on (KIP-320 tests),
    /// starting a new leader epoch at the new end.
    pub(super) fn truncate(&mut self, offset: i64) {
        let offset = offset.max(self.log_start);
        self.batches.retain(|b| b.last_offset < offset);
        let end = self.high_watermark();
        self.epochs.retain(|&(_, start)| start <= end);
        self.open_txns.retain(|_, first| *first < end);
        self.aborted.retain(|a| a.last_offset < end);
        self.producers.clear();
        self.set_leader(self.leader);
    }

    /// The first batch holding an offset at or after `offset`.
    pub(super) fn batch_index_for(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last_offset < offset)
    }

    /// The first offset whose timestamp is at least `timestamp`, with its epoch.
    pub(super) fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64, i32)> {
        for batch in &self.batches {
            if batch.max_timestamp < timestamp {
                continue;
            }
            for record in decode_records(&batch.bytes).into_iter().flatten() {
                if record.timestamp >= timestamp && record.offset >= self.log_start {
                    return Some((record.timestamp, record.offset, batch.leader_epoch));
                }
            }
        }
        None
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub(super) fn max_timestamp_offset(&self) -> Option<(i64, i64, i32)> {
        let batch = self
            .batches
            .iter()
            .filter(|b| !is_control(&b.bytes))
            .max_by_key(|b| b.max_timestamp)?;
        decode_records(&batch.bytes)
            .into_iter()
            .flatten()
            .find(|r| r.timestamp == batch.max_timestamp)
            .map(|r| (r.timestamp, r.offset, batch.leader_epoch))
    }

    /// Every data record in the log, in offset order.
    pub(super) fn records(&self) -> Vec<Record> {
        self.batches
            .iter()
            .filter(|b| !is_control(&b.bytes))
            .flat_map(|b| decode_records(&b.bytes).into_iter().flatten())
            .filter(|r| r.offset >= self.log_start)
            .collect()
    }
}

/// Everything after the partition leader epoch: magic, CRC and the CRC'd part.
fn batch_tail(batch: &RecordBatch) -> Bytes {
    let header = batch.header();
    let mut out = BytesMut::with_capacity(header.batch_length as usize);
    out.extend_from_slice(&header.magic.to_be_bytes());
    out.extend_from_slice(&header.crc.to_be_bytes());
    out.extend_from_slice(&header.attributes.to_be_bytes());
    out.extend_from_slice(&header.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&header.base_timestamp.to_be_bytes());
    out.extend_from_slice(&header.max_timestamp.to_be_bytes());
    out.extend_from_slice(&header.producer_id.to_be_bytes());
    out.extend_from_slice(&header.producer_epoch.to_be_bytes());
    out.extend_from_slice(&header.base_sequence.to_be_bytes());
    out.extend_from_slice(&header.records_count.to_be_bytes());
    out.extend_from_slice(batch.raw_records());
    out.freeze()
}

/// Splits a produce request's records into v2 batches, checking each CRC.
fn split_batches(records: &Bytes) -> Result<Vec<RecordBatch>, RecordsError> {
    let options = DecodeOptions::default();
    let mut rest = records.clone();
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err(RecordsError::corrupt("truncated batch"));
        }
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(12))
            .filter(|&t| t <= rest.len())
            .ok_or_else(|| RecordsError::corrupt("bad batch length"))?;
        let batch = RecordBatch::decode(rest.split_to(total), &options)?;
        out.push(batch);
    }
    Ok(out)
}

fn is_control(bytes: &Bytes) -> bool {
    // attributes live at offset 21; the control flag is bit 5.
    bytes.len() > 22 && bytes[22] & 0x20 != 0
}

fn decode_records(bytes: &Bytes) -> Option<Vec<Record>> {
    let batch = RecordBatch::decode(bytes.clone(), &DecodeOptions::default()).ok()?;
    batch.records().ok()?.collect::<Result<Vec<_>, _>>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        builder
            .set_producer_id(producer)
            .set_producer_epoch(epoch)
            .set_base_sequence(seq);
        for i in 0..n {
            builder
                .append(1000 + i as i64, None, Some(b"v"), &[])
                .unwrap();
        }
        builder.finish().unwrap()
    }

    #[test]
    fn offsets_are_assigned_and_sequences_checked() {
        let mut log = PartitionLog::new(vec![1]);
        let yes = |_| true;
        assert_eq!(
            log.append(&batch(-1, -1, -1, 3), yes).unwrap().base_offset,
            0
        );
        assert_eq!(log.append(&batch(7, 0, 0, 2), yes).unwrap().base_offset, 3);
        // The same batch again: answered with its first offset, not appended.
        assert_eq!(log.append(&batch(7, 0, 0, 2), yes).unwrap().base_offset, 3);
        assert_eq!(
            log.append(&batch(7, 0, 5, 1), yes),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(log.append(&batch(7, 0, 2, 1), yes).unwrap().base_offset, 5);
        assert_eq!(log.high_watermark(), 6);
        let offsets: Vec<i64> = log.records().iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(
            log.append(&batch(8, 0, 3, 1), yes),
            Err(ErrorCode::OutOfOrderSequenceNumber)
        );
        // A new epoch starts again at sequence 0; an older one is fenced.
        assert_eq!(log.append(&batch(7, 1, 0, 1), yes).unwrap().base_offset, 6);
        assert_eq!(
            log.append(&batch(7, 0, 3, 1), yes),
            Err(ErrorCode::InvalidProducerEpoch)
        );
    }

    #[test]
    fn epochs_truncation_and_markers() {
        let mut log = PartitionLog::new(vec![1, 2]);
        log.append(&batch(-1, -1, -1, 2), |_| true).unwrap();
        log.set_leader(2);
        log.append(&batch(-1, -1, -1, 2), |_| true).unwrap();
        assert_eq!(log.end_offset_for_epoch(0), (0, 2));
        assert_eq!(log.end_offset_for_epoch(1), (1, 4));
        assert_eq!(log.check_epoch(0), ErrorCode::FencedLeaderEpoch);
        assert_eq!(log.check_epoch(5), ErrorCode::UnknownLeaderEpoch);
        log.truncate(3);
        assert_eq!(log.high_watermark(), 2);
        assert_eq!(log.leader_epoch, 2);
        assert_eq!(log.end_offset_for_epoch(1), (0, 2));
        let offset = log.write_marker(9, 0, false, 5);
        assert_eq!(offset, 2);
        assert!(log.aborted.is_empty());
    }
}

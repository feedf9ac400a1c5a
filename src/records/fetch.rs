//! What a consumer does with one partition's `records` from a Fetch
//! response: walk its batches lazily, hand out data records zero-copy, skip
//! what lies below the fetch position, drop aborted transactions
//! (read_committed), never hand out control records, and move the position
//! past every batch it has walked, including control batches and batches
//! that compaction left empty.
//!
//! The rules follow the Java consumer's `CompletedFetch`: a batch wholly
//! below the position is skipped without decompressing it; after each record
//! the position is the record's offset + 1; after each batch it is at least
//! the batch's next offset (`last_offset + 1`).

use std::collections::HashSet;

use bytes::Bytes;

use super::borrowed::RecordRef;
use super::control::ControlRecordType;
use super::parse::RawRecord;
use super::{
    batch::NO_PARTITION_LEADER_EPOCH, Batch, BatchReader, BatchRecords, DecodeOptions, Record,
    RecordsError,
};

/// One entry of a Fetch response's `AbortedTransactions` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTransaction {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// The offset of the transaction's first batch.
    pub first_offset: i64,
}

impl AbortedTransaction {
    /// An entry from its two fields.
    pub fn new(producer_id: i64, first_offset: i64) -> Self {
        AbortedTransaction {
            producer_id,
            first_offset,
        }
    }
}

/// Decides, batch by batch and in log order, which batches belong to aborted
/// transactions (read_committed), from the Fetch response's
/// `AbortedTransactions` list and the abort markers met on the way.
///
/// A transactional batch is aborted when its producer has an aborted
/// transaction that started at or before the batch's last offset and whose
/// abort marker has not been passed yet. [`FetchedRecords`] applies it; use
/// it directly when walking batches with [`BatchReader`].
///
/// ```
/// use ferrokafka::records::{AbortedTransaction, AbortedTransactions};
///
/// let filter = AbortedTransactions::new([AbortedTransaction::new(7, 100)]);
/// assert_eq!(filter.pending(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct AbortedTransactions {
    /// Sorted by first offset, descending: the next to activate is last.
    upcoming: Vec<AbortedTransaction>,
    /// Producers inside an aborted transaction at the current position.
    active: HashSet<i64>,
}

impl AbortedTransactions {
    /// A filter for the given list (any order).
    pub fn new(list: impl IntoIterator<Item = AbortedTransaction>) -> Self {
        let mut upcoming: Vec<_> = list.into_iter().collect();
        upcoming.sort_unstable_by_key(|a| std::cmp::Reverse(a.first_offset));
        AbortedTransactions {
            upcoming,
            active: HashSet::new(),
        }
    }

    /// Aborted transactions not reached yet.
    pub fn pending(&self) -> usize {
        self.upcoming.len()
    }

    /// Looks at the next batch in log order: returns `true` if its records
    /// must be dropped (a transactional batch of an aborted transaction).
    /// An abort marker (a control batch) ends its producer's aborted
    /// transaction; control batches themselves are never data, so callers
    /// skip them whatever this returns.
    pub fn is_aborted(&mut self, batch: &Batch) -> Result<bool, RecordsError> {
        let producer_id = batch.producer_id();
        if producer_id < 0 {
            return Ok(false);
        }
        let last_offset = batch.last_offset();
        while let Some(next) = self.upcoming.last() {
            if next.first_offset > last_offset {
                break;
            }
            self.active.insert(next.producer_id);
            self.upcoming.pop();
        }
        if batch.is_control() {
            if is_abort_marker(batch)? {
                self.active.remove(&producer_id);
            }
            return Ok(false);
        }
        Ok(batch.is_transactional() && self.active.contains(&producer_id))
    }
}

/// Whether a control batch's first record is an abort marker (an empty
/// control batch, left by compaction, is not).
fn is_abort_marker(batch: &Batch) -> Result<bool, RecordsError> {
    let Batch::V2(v2) = batch else {
        return Ok(false);
    };
    match v2.records()?.next() {
        None => Ok(false),
        Some(record) => {
            let key = record?.key.unwrap_or_default();
            // Key: version i16, type i16. Java reads only the type.
            if key.len() < 4 {
                return Err(RecordsError::corrupt("control record key too short"));
            }
            let kind = i16::from_be_bytes([key[2], key[3]]);
            Ok(ControlRecordType::from_id(kind) == ControlRecordType::Abort)
        }
    }
}

/// The data records of one partition's fetched `records`, in order, with
/// the consumer position kept up to date.
///
/// Batches are read lazily: a batch is decompressed only when its first
/// record is needed; uncompressed keys, values and headers are slices of the
/// fetched bytes. [`next_offset`](Self::next_offset) is the position to
/// fetch from next: it moves past each record handed out and past each
/// batch walked (control batches, aborted batches, batches that compaction
/// emptied), so a consumer never fetches the same batch forever.
///
/// ```
/// use ferrokafka::records::{
///     AbortedTransaction, Compression, ControlRecord, FetchedRecords, RecordBatchBuilder,
/// };
///
/// // A fetch holding: offsets 0-1 committed-less plain records, offsets 2-3
/// // an aborted transaction of producer 9, its abort marker at 4, and 5.
/// let mut blob = Vec::new();
/// let mut plain = RecordBatchBuilder::new(Compression::Lz4);
/// plain.append(1, None, Some(b"a"), &[])?;
/// plain.append(1, None, Some(b"b"), &[])?;
/// blob.extend_from_slice(&plain.finish()?);
/// let mut txn = RecordBatchBuilder::new(Compression::None);
/// txn.set_base_offset(2).set_producer_id(9).set_producer_epoch(0).set_transactional(true);
/// txn.append(1, None, Some(b"aborted"), &[])?;
/// txn.append(1, None, Some(b"aborted"), &[])?;
/// blob.extend_from_slice(&txn.finish()?);
/// let marker = ControlRecord::end_transaction(false, 0);
/// let mut control = RecordBatchBuilder::new(Compression::None);
/// control.set_base_offset(4).set_producer_id(9).set_producer_epoch(0);
/// control.set_transactional(true).set_control(true);
/// control.append(1, Some(&marker.encode_key()), marker.value.as_deref(), &[])?;
/// blob.extend_from_slice(&control.finish()?);
/// let mut last = RecordBatchBuilder::new(Compression::None);
/// last.set_base_offset(5);
/// last.append(1, None, Some(b"c"), &[])?;
/// blob.extend_from_slice(&last.finish()?);
///
/// // Fetched from offset 1, read_committed.
/// let mut records = FetchedRecords::new(bytes::Bytes::from(blob), 1)
///     .read_committed([AbortedTransaction::new(9, 2)]);
/// let values: Vec<_> = records.by_ref().map(|r| r.map(|r| r.value.unwrap())).collect::<Result<_, _>>()?;
/// assert_eq!(values, ["b", "c"]);
/// assert_eq!(records.next_offset(), 6);
/// # Ok::<(), ferrokafka::records::RecordsError>(())
/// ```
#[derive(Debug)]
pub struct FetchedRecords {
    reader: BatchReader,
    current: Option<BatchRecords>,
    /// End of the current batch: where the position goes once it is done.
    current_next_offset: i64,
    current_leader_epoch: i32,
    next_offset: i64,
    aborted: Option<AbortedTransactions>,
    /// The legacy record `next_ref` hands out (legacy batches yield owned records).
    legacy: Option<Record>,
    failed: bool,
}

impl FetchedRecords {
    /// Records of `records` (a partition's `records` field), starting at
    /// the fetch position `fetch_offset` (records below it are skipped),
    /// read_uncommitted, with default [`DecodeOptions`].
    pub fn new(records: Bytes, fetch_offset: i64) -> Self {
        Self::with_options(records, fetch_offset, DecodeOptions::default())
    }

    /// Like [`new`](Self::new), with explicit decode options.
    pub fn with_options(records: Bytes, fetch_offset: i64, options: DecodeOptions) -> Self {
        FetchedRecords {
            reader: BatchReader::with_options(records, options),
            current: None,
            current_next_offset: fetch_offset,
            current_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            next_offset: fetch_offset,
            aborted: None,
            legacy: None,
            failed: false,
        }
    }

    /// Switches to read_committed: records of the transactions listed (the
    /// partition's `AbortedTransactions` from the Fetch response) are
    /// dropped. Set it before reading the first record.
    pub fn read_committed(mut self, aborted: impl IntoIterator<Item = AbortedTransaction>) -> Self {
        self.aborted = Some(AbortedTransactions::new(aborted));
        self
    }

    /// The position after everything walked so far: the offset to fetch
    /// from next. Past the end, it is past the last whole batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The partition leader epoch of the batch the last record came from
    /// (`None` if unknown, as for legacy message sets).
    pub fn current_leader_epoch(&self) -> Option<i32> {
        (self.current_leader_epoch != NO_PARTITION_LEADER_EPOCH)
            .then_some(self.current_leader_epoch)
    }

    /// Whether the fetched bytes ended with a partial batch (brokers cut
    /// responses at a size limit). Known once the iterator is exhausted.
    pub fn truncated(&self) -> bool {
        self.reader.truncated()
    }

    /// Opens the next batch worth reading; `Ok(false)` at the end.
    fn open_next_batch(&mut self) -> Result<bool, RecordsError> {
        loop {
            let Some(batch) = self.reader.next().transpose()? else {
                return Ok(false);
            };
            let batch_next = batch.next_offset();
            let skip = match &mut self.aborted {
                Some(aborted) => aborted.is_aborted(&batch)?,
                None => false,
            };
            // Control batches carry no data; batches wholly below the
            // position need no decompressing.
            if skip || batch.is_control() || batch_next <= self.next_offset {
                self.next_offset = self.next_offset.max(batch_next);
                continue;
            }
            self.current_leader_epoch = match &batch {
                Batch::V2(b) => b.header().partition_leader_epoch,
                Batch::Legacy(_) => NO_PARTITION_LEADER_EPOCH,
            };
            self.current = Some(batch.records()?);
            self.current_next_offset = batch_next;
            return Ok(true);
        }
    }

    /// Moves to the next record to hand out (at or past the position),
    /// moving the position past it. A legacy record is left in
    /// `self.legacy`; a v2 record is read by the current batch's cursor.
    #[inline]
    fn advance_raw(&mut self) -> Result<Option<Found>, RecordsError> {
        loop {
            if let Some(current) = &mut self.current {
                let next = match current {
                    BatchRecords::V2(it) => it
                        .cursor
                        .next_raw(&it.data)
                        .map(|raw| raw.map(|raw| (raw.offset, Found::V2(raw)))),
                    BatchRecords::Legacy(it) => it.next().map(|record| {
                        record.map(|record| {
                            let offset = record.offset;
                            self.legacy = Some(record);
                            (offset, Found::Legacy)
                        })
                    }),
                };
                match next {
                    Some(found) => {
                        let (offset, found) = found?;
                        if offset < self.next_offset {
                            continue;
                        }
                        self.next_offset = offset.saturating_add(1);
                        return Ok(Some(found));
                    }
                    None => {
                        self.current = None;
                        self.next_offset = self.next_offset.max(self.current_next_offset);
                    }
                }
            }
            if !self.open_next_batch()? {
                return Ok(None);
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.current = None;
        self.legacy = None;
    }

    /// The next record as a borrowed [`RecordRef`]: the lending twin of
    /// [`next`](Iterator::next), with the same position rules, without the
    /// owned [`Record`]'s `Bytes` handles (no reference count, no
    /// allocation per record). The record borrows this `FetchedRecords`, so
    /// it lives until the next call; take owned `Bytes` for what you keep.
    ///
    /// ```
    /// use ferrokafka::records::{Compression, FetchedRecords, RecordBatchBuilder};
    ///
    /// let mut builder = RecordBatchBuilder::new(Compression::Lz4);
    /// for value in [&b"a"[..], b"bb", b"ccc"] {
    ///     builder.append(1_700_000_000_000, None, Some(value), &[])?;
    /// }
    /// // Fetched from offset 1: offset 0 is skipped.
    /// let mut fetched = FetchedRecords::new(builder.finish()?, 1);
    /// let mut kept = Vec::new();
    /// while let Some(record) = fetched.next_ref() {
    ///     let record = record?;
    ///     if record.value() == Some(&b"ccc"[..]) {
    ///         kept.push(record.value_bytes()); // shares the batch, no copy
    ///     }
    /// }
    /// assert_eq!(kept.len(), 1);
    /// assert_eq!(fetched.next_offset(), 3);
    /// # Ok::<(), ferrokafka::records::RecordsError>(())
    /// ```
    #[inline]
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'_>, RecordsError>> {
        if self.failed {
            return None;
        }
        match self.advance_raw() {
            Ok(Some(Found::V2(raw))) => match &self.current {
                Some(BatchRecords::V2(it)) => Some(Ok(RecordRef::from_raw(
                    &it.data,
                    &raw,
                    it.cursor.timestamp_type,
                ))),
                _ => None,
            },
            Ok(Some(Found::Legacy)) => self.legacy.as_ref().map(|r| Ok(RecordRef::of_record(r))),
            Ok(None) => None,
            Err(e) => {
                self.fail();
                Some(Err(e))
            }
        }
    }
}

/// What [`FetchedRecords::advance_raw`] found.
enum Found {
    /// A v2 record of the current batch.
    V2(RawRecord),
    /// A legacy record, left in `FetchedRecords::legacy`.
    Legacy,
}

impl Iterator for FetchedRecords {
    type Item = Result<Record, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.advance_raw() {
            Ok(Some(Found::V2(raw))) => match &self.current {
                Some(BatchRecords::V2(it)) => it.to_owned_record(&raw),
                _ => return None,
            },
            Ok(Some(Found::Legacy)) => Ok(self.legacy.take()?),
            Ok(None) => return None,
            Err(e) => Err(e),
        };
        if item.is_err() {
            self.fail();
        }
        Some(item)
    }
}

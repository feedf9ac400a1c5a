//! What is sent ([`ProducerRecord`]), what comes back ([`RecordMetadata`]),
//! and the handle that connects the two ([`DeliveryHandle`]).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::records::Header;

use super::error::{ProducerError, Result};

/// A record to produce.
///
/// The key and value are any byte containers (`K`, `V`: [`AsRef<[u8]>`]):
/// [`Bytes`] by default, or borrowed slices. [`Producer::send`] copies them
/// into the batch before it returns, so a borrowed key or value needs to live
/// only until `send` returns: an application that serializes into a reused
/// buffer sends it without allocating per record.
///
/// ```
/// use bytes::Bytes;
/// use ferrokafka::producer::ProducerRecord;
///
/// let record = ProducerRecord::new("events", Bytes::from_static(b"payload"))
///     .with_key(Bytes::from_static(b"user-1"))
///     .with_header("trace", Some(Bytes::from_static(b"abc")))
///     .with_partition(2)
///     .with_timestamp(1_700_000_000_000);
/// assert_eq!(record.topic, "events");
///
/// // Borrowed: nothing is allocated for the key or the value.
/// let mut buffer = Vec::new();
/// buffer.extend_from_slice(b"{\"id\": 7}");
/// let record = ProducerRecord::borrowed("events", &buffer).with_key(b"user-7");
/// assert_eq!(record.value, Some(&buffer[..]));
///
/// // Any other byte containers, owned here.
/// let record = ProducerRecord::with_parts("events".into(), Some(String::from("user-8")), Some(vec![1u8, 2]));
/// assert_eq!(record.key.as_deref(), Some("user-8"));
/// ```
///
/// [`Producer::send`]: super::Producer::send
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord<K = Bytes, V = Bytes> {
    /// The topic (a `&'static str` is not copied).
    pub topic: Cow<'static, str>,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key; `None` is a null key.
    pub key: Option<K>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<V>,
    /// Headers, in order; duplicate keys are kept.
    pub headers: Vec<Header>,
    /// Create time in ms since the epoch; `None` stamps the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value, no key, no headers.
    pub fn new(topic: impl Into<Cow<'static, str>>, value: impl Into<Bytes>) -> Self {
        ProducerRecord::with_parts(topic.into(), None, Some(value.into()))
    }

    /// A record with a null value (a tombstone) for `key`.
    pub fn tombstone(topic: impl Into<Cow<'static, str>>, key: impl Into<Bytes>) -> Self {
        ProducerRecord::with_parts(topic.into(), Some(key.into()), None)
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl<'a> ProducerRecord<&'a [u8], &'a [u8]> {
    /// A record whose value (and key, if set) are borrowed: `send` copies
    /// them into the batch, so they need to live only until `send` returns.
    pub fn borrowed(topic: impl Into<Cow<'static, str>>, value: &'a [u8]) -> Self {
        ProducerRecord::with_parts(topic.into(), None, Some(value))
    }

    /// A borrowed record with a null value (a tombstone) for `key`.
    pub fn borrowed_tombstone(topic: impl Into<Cow<'static, str>>, key: &'a [u8]) -> Self {
        ProducerRecord::with_parts(topic.into(), Some(key), None)
    }

    /// Sets the borrowed key.
    pub fn with_key(mut self, key: &'a (impl AsRef<[u8]> + ?Sized)) -> Self {
        self.key = Some(key.as_ref());
        self
    }
}

impl<K, V> ProducerRecord<K, V> {
    /// A record of any key and value types; the other fields unset.
    pub fn with_parts(topic: Cow<'static, str>, key: Option<K>, value: Option<V>) -> Self {
        ProducerRecord {
            topic,
            partition: None,
            key,
            value,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets an explicit partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Appends a header (duplicate keys are allowed).
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(Header::new(key.into(), value));
        self
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> ProducerRecord<K, V> {
    /// The record with its key and value as byte slices: what the producer
    /// works on, whatever `K` and `V` are.
    pub(crate) fn view(&self) -> RecordView<'_> {
        RecordView {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_ref().map(AsRef::as_ref),
            value: self.value.as_ref().map(AsRef::as_ref),
            headers: &self.headers,
            timestamp: self.timestamp,
        }
    }
}

/// A [`ProducerRecord`] seen through byte slices: `send`'s code is compiled
/// once, not once per key and value type.
#[derive(Debug)]
pub(crate) struct RecordView<'r> {
    pub topic: &'r str,
    pub partition: Option<i32>,
    pub key: Option<&'r [u8]>,
    pub value: Option<&'r [u8]>,
    pub headers: &'r [Header],
    pub timestamp: Option<i64>,
}

impl RecordView<'_> {
    /// Bytes this record takes in a batch, as counted against
    /// `buffer.memory` and `max.request.size` (an upper bound).
    pub(crate) fn size_estimate(&self) -> usize {
        const RECORD_OVERHEAD: usize = 21; // length, attributes, deltas, lengths
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + 10)
            .sum();
        RECORD_OVERHEAD
            + self.key.map_or(0, <[u8]>::len)
            + self.value.map_or(0, <[u8]>::len)
            + headers
    }
}

/// Why [`Producer::try_send`](super::Producer::try_send) did not enqueue a
/// record.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError<K = Bytes, V = Bytes> {
    /// `send` would have waited: `buffer.memory` is full, or the topic's
    /// metadata is not known yet. The record is handed back untouched.
    #[error(
        "the record cannot be enqueued without waiting (buffer.memory full or metadata unknown)"
    )]
    WouldBlock(ProducerRecord<K, V>),
    /// `send` would have failed with this error.
    #[error(transparent)]
    Failed(#[from] ProducerError),
}

/// Where an acknowledged record landed.
///
/// It shares its batch's topic with every other record of the batch (no
/// copy, and no reference count touched per record): read it with
/// [`topic`](Self::topic).
#[derive(Clone)]
pub struct RecordMetadata {
    /// The batch's completion, which names the topic.
    batch: Arc<BatchCompletion>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when unknown (`acks=0`, or a duplicate the
    /// broker had already written without saying where).
    pub offset: i64,
    /// The record's timestamp: its create time, or the broker's log append
    /// time when the topic uses that.
    pub timestamp: i64,
}

impl RecordMetadata {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.batch.topic
    }

    fn fields(&self) -> (&str, i32, i64, i64) {
        (self.topic(), self.partition, self.offset, self.timestamp)
    }
}

impl std::fmt::Debug for RecordMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordMetadata")
            .field("topic", &self.topic())
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl PartialEq for RecordMetadata {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for RecordMetadata {}

impl std::hash::Hash for RecordMetadata {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

/// A batch's acknowledgement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchAck {
    pub base_offset: i64,
    /// The log append time when the topic uses it, else -1.
    pub log_append_time: i64,
}

/// The outcome shared by every record of one batch: set once, waking every
/// waiting [`DeliveryHandle`]. One allocation per batch, none per record.
pub(crate) struct BatchCompletion {
    pub topic: Arc<str>,
    pub partition: i32,
    outcome: OnceLock<Result<BatchAck>>,
    wakers: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for BatchCompletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchCompletion")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("outcome", &self.outcome.get())
            .finish()
    }
}

impl BatchCompletion {
    pub fn new(topic: Arc<str>, partition: i32) -> Arc<Self> {
        Arc::new(BatchCompletion {
            topic,
            partition,
            outcome: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// The outcome, if known: the acknowledgement copied, an error cloned.
    #[inline]
    fn outcome(&self) -> Option<Result<BatchAck>> {
        self.outcome
            .get()
            .map(|outcome| outcome.as_ref().copied().map_err(Clone::clone))
    }

    /// Sets the outcome (the first one wins) and wakes every waiter.
    pub fn complete(&self, outcome: Result<BatchAck>) {
        if self.outcome.set(outcome).is_err() {
            return;
        }
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in wakers {
            w.wake();
        }
    }
}

/// The pending acknowledgement of one record: `.await` it for the record's
/// [`RecordMetadata`] or the typed error that ended its delivery.
///
/// Handles are independent: drop the ones you do not need (the record is
/// still delivered), await the others in any order. A handle never hangs:
/// every record ends acknowledged, failed (at the latest after
/// `delivery.timeout.ms`), or failed with [`ProducerError::DroppedOnClose`].
#[derive(Debug)]
pub struct DeliveryHandle {
    // 24 bytes: an application may hold hundreds of thousands of handles.
    /// The batch's completion; moved into the [`RecordMetadata`] when the
    /// handle resolves to it (`None` after that).
    completion: Option<Arc<BatchCompletion>>,
    timestamp: i64,
    offset_delta: i32,
    /// Where this handle's waker is in the completion's list
    /// (`NO_WAKER_SLOT` before the first pending poll).
    waker_slot: u32,
}

const NO_WAKER_SLOT: u32 = u32::MAX;

/// The panic message of a handle used after it resolved (its completion
/// then belongs to the [`RecordMetadata`]).
const RESOLVED: &str = "DeliveryHandle used after it resolved";

impl DeliveryHandle {
    pub(crate) fn new(completion: Arc<BatchCompletion>, offset_delta: i32, timestamp: i64) -> Self {
        DeliveryHandle {
            completion: Some(completion),
            timestamp,
            offset_delta,
            waker_slot: NO_WAKER_SLOT,
        }
    }

    /// The batch's completion.
    ///
    /// # Panics
    /// After the handle resolved: its [`RecordMetadata`] then holds it.
    fn completion(&self) -> &Arc<BatchCompletion> {
        self.completion.as_ref().expect(RESOLVED)
    }

    /// The topic the record was appended for.
    ///
    /// # Panics
    /// If the handle was polled to completion (`.await` consumes it, so only
    /// a hand-written poll loop can get here).
    pub fn topic(&self) -> &str {
        &self.completion().topic
    }

    /// The partition the record was appended to.
    ///
    /// # Panics
    /// As [`topic`](Self::topic).
    pub fn partition(&self) -> i32 {
        self.completion().partition
    }

    /// The outcome if it is already known.
    ///
    /// # Panics
    /// As [`topic`](Self::topic).
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        let completion = self.completion();
        let outcome = completion.outcome()?;
        Some(outcome.map(|ack| self.metadata(completion.clone(), ack)))
    }

    /// The record's metadata from its batch's acknowledgement; `batch`
    /// moves into it.
    #[inline]
    fn metadata(&self, batch: Arc<BatchCompletion>, ack: BatchAck) -> RecordMetadata {
        RecordMetadata {
            partition: batch.partition,
            offset: if ack.base_offset < 0 {
                -1
            } else {
                ack.base_offset + i64::from(self.offset_delta)
            },
            timestamp: if ack.log_append_time >= 0 {
                ack.log_append_time
            } else {
                self.timestamp
            },
            batch,
        }
    }

    /// Resolves the handle if its batch has an outcome: the completion
    /// moves into the metadata, so resolving touches no reference count.
    #[inline]
    fn try_resolve(&mut self) -> Option<Result<RecordMetadata>> {
        let outcome = self.completion().outcome()?;
        let batch = self.completion.take().expect(RESOLVED);
        Some(outcome.map(|ack| self.metadata(batch, ack)))
    }
}

impl Future for DeliveryHandle {
    type Output = Result<RecordMetadata, ProducerError>;

    // Inlined into the caller's crate: most polls find the batch already
    // acknowledged (one load); the waker registration stays out of line.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.try_resolve() {
            Some(result) => Poll::Ready(result),
            None => this.wait(cx),
        }
    }
}

impl DeliveryHandle {
    /// `poll` for a batch not acknowledged yet: registers the task's waker
    /// (once per handle; replaced only if the task changes).
    #[inline(never)]
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<Result<RecordMetadata, ProducerError>> {
        let completion = self.completion.as_ref().expect(RESOLVED);
        let mut wakers = completion.wakers.lock().unwrap_or_else(|p| p.into_inner());
        // Re-check under the lock: `complete` sets the outcome before taking it.
        if completion.outcome.get().is_some() {
            drop(wakers);
            return Poll::Ready(self.try_resolve().expect("the outcome is set"));
        }
        match wakers.get_mut(self.waker_slot as usize) {
            Some(waker) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
            }
            None => {
                // A batch has at most i32::MAX records, so a slot fits a
                // u32 below NO_WAKER_SLOT.
                self.waker_slot = u32::try_from(wakers.len()).unwrap_or(NO_WAKER_SLOT);
                wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handles_share_one_completion_and_wake_when_it_is_set() {
        let completion = BatchCompletion::new("t".into(), 3);
        let a = DeliveryHandle::new(completion.clone(), 0, 10);
        let b = DeliveryHandle::new(completion.clone(), 4, 11);
        let waiting = tokio::spawn(async move { (a.await, b.await) });
        tokio::task::yield_now().await;
        completion.complete(Ok(BatchAck {
            base_offset: 100,
            log_append_time: -1,
        }));
        let (a, b) = waiting.await.unwrap();
        assert_eq!(a.unwrap().offset, 100);
        let b = b.unwrap();
        assert_eq!((b.offset, b.timestamp, b.partition), (104, 11, 3));
        let c = DeliveryHandle::new(completion.clone(), 1, 0);
        assert_eq!(c.try_result().unwrap().unwrap().offset, 101);
    }

    /// A resolved handle's completion moves into its metadata: the batch's
    /// reference count is where it was before the handle resolved, minus
    /// the handle, plus the metadata (no clone of the topic), and the
    /// metadata names the batch's topic and compares by value.
    #[test]
    fn metadata_takes_over_the_handles_share_of_the_batch() {
        let completion = BatchCompletion::new("events".into(), 2);
        let handle = DeliveryHandle::new(completion.clone(), 3, 42);
        let mut pinned = std::pin::pin!(handle);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(pinned.as_mut().poll(&mut cx).is_pending());
        completion.complete(Ok(BatchAck {
            base_offset: 7,
            log_append_time: -1,
        }));
        assert_eq!(Arc::strong_count(&completion), 2);
        let Poll::Ready(Ok(metadata)) = pinned.as_mut().poll(&mut cx) else {
            panic!("the batch is acknowledged");
        };
        assert_eq!(Arc::strong_count(&completion), 2, "moved, not cloned");
        assert_eq!(
            (
                metadata.topic(),
                metadata.partition,
                metadata.offset,
                metadata.timestamp
            ),
            ("events", 2, 10, 42)
        );
        let same = DeliveryHandle::new(completion.clone(), 3, 42).try_result();
        assert_eq!(same.unwrap().unwrap(), metadata);
        let other = DeliveryHandle::new(completion.clone(), 4, 42).try_result();
        assert_ne!(other.unwrap().unwrap(), metadata);
        drop(metadata);
        assert_eq!(Arc::strong_count(&completion), 1);
    }

    #[test]
    #[should_panic(expected = "DeliveryHandle used after it resolved")]
    fn a_resolved_handle_has_no_topic_left() {
        let completion = BatchCompletion::new("t".into(), 0);
        completion.complete(Err(ProducerError::Closed));
        let mut handle = DeliveryHandle::new(completion, 0, 0);
        let waker = std::task::Waker::noop();
        let poll = Pin::new(&mut handle).poll(&mut Context::from_waker(waker));
        assert!(matches!(poll, Poll::Ready(Err(ProducerError::Closed))));
        handle.topic();
    }

    #[test]
    fn a_handle_is_three_words() {
        assert_eq!(std::mem::size_of::<DeliveryHandle>(), 24);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_handle() {
        let completion = BatchCompletion::new("t".into(), 0);
        let h = DeliveryHandle::new(completion.clone(), 0, 0);
        completion.complete(Err(ProducerError::Closed));
        completion.complete(Ok(BatchAck {
            base_offset: 1,
            log_append_time: -1,
        }));
        assert!(matches!(h.await, Err(ProducerError::Closed)));
    }
}

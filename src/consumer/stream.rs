//! [`RecordStream`]: the consumer's records as a `futures_core::Stream`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::error::Result;
use super::record::{ConsumerRecord, Records};

pub(crate) type PollFuture = Pin<Box<dyn Future<Output = Result<Records>> + Send>>;
/// Starts the next poll of the consumer behind the stream.
pub(crate) type PollFn = Box<dyn Fn() -> PollFuture + Send + Sync>;

/// The records of a [`Consumer`](super::Consumer), one by one, as owned
/// [`ConsumerRecord`]s (values share the fetched buffers). Fetched in batches
/// of `max.poll.records`; ends when the consumer is closed or dropped.
///
/// ```no_run
/// # async fn demo(consumer: ferrokafka::consumer::Consumer) {
/// use futures_util::StreamExt;
/// let mut records = consumer.stream();
/// while let Some(record) = records.next().await {
///     let record = record.expect("consume");
///     println!("{}@{}", record.partition, record.offset);
/// }
/// # }
/// ```
pub struct RecordStream {
    next_poll: PollFn,
    ready: VecDeque<ConsumerRecord>,
    pending: Option<PollFuture>,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl RecordStream {
    pub(crate) fn new(next_poll: PollFn) -> Self {
        RecordStream {
            next_poll,
            ready: VecDeque::new(),
            pending: None,
        }
    }
}

impl Stream for RecordStream {
    type Item = Result<ConsumerRecord>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(record)));
            }
            if self.pending.is_none() {
                self.pending = Some((self.next_poll)());
            }
            let pending = self.pending.as_mut().expect("set above");
            match pending.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    self.pending = None;
                    match result {
                        Ok(records) => {
                            let owned: VecDeque<ConsumerRecord> =
                                records.iter().map(|r| r.to_record()).collect();
                            self.ready = owned;
                        }
                        Err(super::ConsumerError::Closed) => return Poll::Ready(None),
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
            }
        }
    }
}

//! [`CommitHandle`]: the answer to [`Consumer::commit_async`](super::Consumer::commit_async).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

use super::error::{ConsumerError, Result};

/// The outcome of an asynchronous commit: await it for the coordinator's
/// answer (as Java's `OffsetCommitCallback` would get it), or drop it and
/// let the commit finish in the background, where a failure is logged.
///
/// ```no_run
/// # async fn demo(consumer: ferrokafka::consumer::Consumer) -> ferrokafka::consumer::Result<()> {
/// use std::time::Duration;
/// let batch = consumer.poll(500, Duration::from_secs(1)).await?;
/// // ... process the batch ...
/// let pending = consumer.commit_async(); // the next poll need not wait for it
/// # drop(batch);
/// // Later, or never:
/// if let Err(e) = pending.await {
///     eprintln!("commit failed (retriable: {}): {e}", e.is_retriable());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CommitHandle {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Decided without a request (nothing to commit, or no group).
    Done(Option<Result<()>>),
    /// The commit task.
    Running(JoinHandle<Result<()>>),
}

impl CommitHandle {
    pub(super) fn done(result: Result<()>) -> CommitHandle {
        CommitHandle {
            state: State::Done(Some(result)),
        }
    }

    pub(super) fn running(task: JoinHandle<Result<()>>) -> CommitHandle {
        CommitHandle {
            state: State::Running(task),
        }
    }
}

impl Future for CommitHandle {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &mut self.get_mut().state {
            State::Done(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            State::Running(task) => Pin::new(task).poll(cx).map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(ConsumerError::IllegalState(format!(
                        "the commit task did not finish: {e}"
                    )))
                })
            }),
        }
    }
}

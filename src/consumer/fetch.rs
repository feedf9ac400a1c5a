//! One fetch round trip to one broker: building the request (with the
//! broker's fetch session), decoding the answer into buffered chunks
//! (CRC, decompression, read_committed filtering, checking every record)
//! outside the lock, then applying it under the lock in one go.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::Instrument;

use crate::network::Error as NetworkError;
use crate::network::{ConnectionRole, RequestOptions};
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use crate::protocol::messages::fetch_response::AbortedTransaction as WireAbortedTransaction;
use crate::protocol::messages::{FetchRequest, FetchResponse};
use crate::protocol::{ApiKey, ErrorCode, Uuid};
use crate::records::compression::{self, Compression};
use crate::records::{
    AbortedTransaction, AbortedTransactions, Batch, BatchReader, DecodeOptions, RecordsError,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
};

use super::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use super::error::ConsumerError;
use super::metrics::Counters;
use super::record::{validate_records, BatchMeta, Chunk, ChunkData};
use super::session::{FetchSession, PartitionFetch, SessionRequest};
use super::state::{Shared, State};
use super::{group_by_topic, Offset, TopicPartition};

/// The highest Fetch version used. From v13 (KIP-516) topics are named by
/// id, which needs every fetched topic's id from the metadata; without them
/// the fetch stays at [`MAX_FETCH_VERSION_BY_NAME`].
const MAX_FETCH_VERSION: i16 = 17;

/// The highest Fetch version that names topics by name.
const MAX_FETCH_VERSION_BY_NAME: i16 = 12;

/// The longest pause between fetches to a broker that answers empty fetches
/// at once instead of holding them for `fetch.max.wait.ms` (capped by
/// `fetch.max.wait.ms` itself).
///
/// Kafka brokers hold a fetch until `fetch.min.bytes` arrive or
/// `fetch.max.wait.ms` passes, so a consumer at the end of the log sends a
/// few requests a second. Some brokers answer at once with nothing; fetching
/// again immediately turns an idle consumer into a busy loop (tens of
/// thousands of requests a minute, a core of CPU on both sides). Neither the
/// Java client nor librdkafka guards against it (librdkafka backs off only
/// after errors). Here, after an empty answer that came back in under half
/// the wait asked for, the next fetch to that broker waits 1 ms, doubling
/// with each such answer in a row, up to this cap; any data or error ends
/// the pacing. A broker that does hold fetches never triggers it, and
/// against one that does not, new records wait at most the cap.
pub(crate) const EMPTY_ANSWER_BACKOFF_CAP: Duration = Duration::from_millis(100);

/// A partition going into a fetch.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub partition: TopicPartition,
    pub generation: u64,
    pub fetch: PartitionFetch,
}

/// What a fetch brought for one partition, decoded.
#[derive(Debug)]
struct Decoded {
    chunks: Vec<Chunk>,
    next_offset: Option<i64>,
    leader_epoch: Option<i32>,
    error: Option<(i64, RecordsError)>,
    wire_bytes: usize,
}

/// One partition's answer.
#[derive(Debug)]
struct PartitionResult {
    partition: TopicPartition,
    generation: u64,
    fetch_offset: i64,
    code: ErrorCode,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    diverging: Option<(i32, i64)>,
    decoded: Option<Decoded>,
}

fn build_request(
    config: &ConsumerConfig,
    plan: &SessionRequest,
    max_bytes: i32,
    version: i16,
) -> FetchRequest {
    let id_of = |topic: &str| plan.topic_ids.get(topic).copied().unwrap_or(Uuid::ZERO);
    let by_id = version >= 13;
    let topics = group_by_topic(plan.send.iter().map(|(tp, f)| {
        let partition = FetchPartition::default()
            .with_partition(tp.partition())
            .with_current_leader_epoch(f.current_leader_epoch)
            .with_fetch_offset(f.fetch_offset)
            .with_last_fetched_epoch(f.last_fetched_epoch)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(f.max_bytes);
        (tp, partition)
    }))
    .into_iter()
    .map(|(topic, partitions)| {
        let entry = FetchTopic::default().with_partitions(partitions);
        if by_id {
            entry.with_topic_id(id_of(&topic))
        } else {
            entry.with_topic(topic)
        }
    })
    .collect();
    let forgotten_ids: HashMap<&str, Uuid> = plan
        .forgotten
        .iter()
        .map(|(tp, id)| (tp.topic(), *id))
        .collect();
    let forgotten = group_by_topic(plan.forgotten.iter().map(|(tp, _)| (tp, tp.partition())))
        .into_iter()
        .map(|(topic, partitions)| {
            let entry = ForgottenTopic::default().with_partitions(partitions);
            if by_id {
                entry.with_topic_id(
                    forgotten_ids
                        .get(topic.as_str())
                        .copied()
                        .unwrap_or_default(),
                )
            } else {
                entry.with_topic(topic)
            }
        })
        .collect();
    let mut request = FetchRequest::default()
        .with_replica_id(-1)
        .with_max_wait_ms(config.fetch_max_wait.as_millis() as i32)
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(max_bytes)
        .with_isolation_level(config.isolation_level.wire())
        .with_session_id(plan.session_id)
        .with_session_epoch(plan.epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten);
    if version >= 11 {
        request = request.with_rack_id(config.client_rack.clone());
    }
    request
}

/// The version to fetch with and, for v13+, the id of every fetched topic
/// (from the metadata snapshot). Topic ids are used only when the broker
/// serves v13+ and every fetched topic has one; otherwise v12 at most, by name.
fn choose_version(
    negotiated: Option<i16>,
    targets: &[Target],
    id_of: impl Fn(&str) -> Option<Uuid>,
) -> (i16, HashMap<String, Uuid>) {
    let version = negotiated.unwrap_or(4).min(MAX_FETCH_VERSION);
    if version < 13 {
        return (version, HashMap::new());
    }
    let mut ids = HashMap::new();
    for t in targets {
        let topic = t.partition.topic();
        if ids.contains_key(topic) {
            continue;
        }
        match id_of(topic).filter(|id| *id != Uuid::ZERO) {
            Some(id) => {
                ids.insert(topic.to_owned(), id);
            }
            None => return (MAX_FETCH_VERSION_BY_NAME, HashMap::new()),
        }
    }
    (version, ids)
}

/// The pause before the next fetch to a broker after an answer: `None` to
/// fetch again as soon as there is room. See [`EMPTY_ANSWER_BACKOFF_CAP`].
fn pace_after_answer(
    config: &ConsumerConfig,
    session: &mut FetchSession,
    empty: bool,
    elapsed: Duration,
) -> Option<Duration> {
    let wait = config.fetch_max_wait;
    let quick_and_empty =
        empty && config.fetch_min_bytes > 0 && !wait.is_zero() && elapsed < wait / 2;
    if !quick_and_empty {
        session.quick_empty_answers = 0;
        return None;
    }
    let streak = session.quick_empty_answers.min(16);
    session.quick_empty_answers = session.quick_empty_answers.saturating_add(1);
    let cap = EMPTY_ANSWER_BACKOFF_CAP.min(wait);
    Some(Duration::from_millis(1u64 << streak).min(cap))
}

/// Runs one fetch against broker `node` and applies its answer.
pub(crate) async fn fetch_from(
    shared: Arc<Shared>,
    node: i32,
    mut session: FetchSession,
    targets: Vec<Target>,
    max_bytes: i32,
) {
    let span = tracing::debug_span!("kafka_fetch", node, partitions = targets.len());
    async move {
        let started = Instant::now();
        let outcome = round_trip(&shared, node, &mut session, &targets, max_bytes).await;
        let elapsed = started.elapsed();
        shared.counters.record_latency(elapsed);
        let results = match outcome {
            Ok(Answer::SessionError) => {
                // Answered by a full fetch right away.
                session.quick_empty_answers = 0;
                let mut state = shared.lock();
                finish(&mut state, node, session, &targets);
                drop(state);
                shared.wake.notify_one();
                return;
            }
            Ok(Answer::Partitions(results)) => results,
            Err(e) => {
                tracing::debug!(error = %e, "fetch failed");
                Counters::add(&shared.counters.fetch_errors, 1);
                session.reset();
                let mut state = shared.lock();
                finish(&mut state, node, session, &targets);
                state
                    .backoff
                    .insert(node, Instant::now() + shared.cluster.config().retry_backoff);
                state.metadata_wanted = true;
                drop(state);
                shared.wake.notify_one();
                return;
            }
        };
        let empty = results.iter().all(|r| {
            r.code == ErrorCode::None && r.decoded.as_ref().map_or(true, |d| d.chunks.is_empty())
        });
        let pause = pace_after_answer(&shared.config, &mut session, empty, elapsed);
        let mut state = shared.lock();
        finish(&mut state, node, session, &targets);
        if let Some(pause) = pause {
            tracing::trace!(
                pause_us = pause.as_micros() as u64,
                "empty answer came early; pacing the next fetch"
            );
            state.backoff.insert(node, Instant::now() + pause);
        }
        let mut refresh = false;
        for result in results {
            refresh |= apply(&shared.config, &mut state, result);
        }
        state.metadata_wanted |= refresh;
        shared.counters.record_buffered(state.buffered_bytes);
        drop(state);
        shared.data_ready.notify_waiters();
        shared.wake.notify_one();
    }
    .instrument(span)
    .await
}

/// Marks the fetch done: the broker and the partitions can be fetched again.
fn finish(state: &mut State, node: i32, session: FetchSession, targets: &[Target]) {
    state.fetching.remove(&node);
    state.sessions.insert(node, session);
    for t in targets {
        if let Some(p) = state.partitions.get_mut(&t.partition) {
            p.in_flight = false;
        }
    }
}

/// What a fetch round trip brought.
enum Answer {
    /// Each answered partition's result.
    Partitions(Vec<PartitionResult>),
    /// The fetch session was gone or out of step: fetch again, in full.
    SessionError,
}

async fn round_trip(
    shared: &Shared,
    node: i32,
    session: &mut FetchSession,
    targets: &[Target],
    max_bytes: i32,
) -> Result<Answer, NetworkError> {
    let config = &shared.config;
    let conn = shared
        .cluster
        .broker_connection_for(node, ConnectionRole::Fetch)
        .await?;
    let snapshot = shared.cluster.snapshot();
    let (version, topic_ids) =
        choose_version(conn.negotiated_version(ApiKey::Fetch), targets, |topic| {
            snapshot.topic(topic).map(|t| t.topic_id())
        });
    drop(snapshot);
    if version < 7 {
        session.reset();
    }
    let wanted: HashMap<TopicPartition, PartitionFetch> = targets
        .iter()
        .map(|t| (t.partition.clone(), t.fetch))
        .collect();
    let plan = session.request(wanted, topic_ids);
    let request = build_request(config, &plan, max_bytes, version);
    // For v13+ answers, which name topics by id.
    let names_by_id: HashMap<Uuid, String> = plan
        .topic_ids
        .iter()
        .map(|(name, id)| (*id, name.clone()))
        .collect();
    Counters::add(&shared.counters.fetch_requests, 1);
    if plan.by_topic_id() {
        Counters::add(&shared.counters.fetches_by_topic_id, 1);
    }
    if !plan.full {
        Counters::add(&shared.counters.incremental_fetches, 1);
    }
    tracing::trace!(
        version,
        session_id = plan.session_id,
        epoch = plan.epoch,
        listed = plan.send.len(),
        forgotten = plan.forgotten.len(),
        "sending fetch"
    );
    let timeout = shared.cluster.config().request_timeout + config.fetch_max_wait;
    let options = RequestOptions::role(ConnectionRole::Fetch)
        .with_timeout(timeout)
        .with_version(version);
    let response: FetchResponse = conn.send_with(&request, options).await?;
    let top = ErrorCode::from_code(response.error_code);
    if session.on_response(plan, top, response.session_id) {
        Counters::add(&shared.counters.fetch_session_resets, 1);
    }
    if top != ErrorCode::None {
        let session_error = matches!(
            top,
            ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch
        );
        // A session error is answered by a full fetch right away.
        return if session_error {
            Ok(Answer::SessionError)
        } else {
            Err(NetworkError::Broker {
                api: ApiKey::Fetch,
                code: top,
                message: None,
            })
        };
    }
    let by_partition: HashMap<(&str, i32), &Target> = targets
        .iter()
        .map(|t| ((t.partition.topic(), t.partition.partition()), t))
        .collect();
    let mut results = Vec::new();
    for topic in response.responses {
        let name = if version >= 13 {
            match names_by_id.get(&topic.topic_id) {
                Some(name) => name.as_str(),
                None => continue,
            }
        } else {
            topic.topic.as_str()
        };
        for data in topic.partitions {
            let Some(target) = by_partition.get(&(name, data.partition_index)) else {
                continue;
            };
            let code = ErrorCode::from_code(data.error_code);
            let records = data.records.unwrap_or_default();
            Counters::add(&shared.counters.bytes_fetched, records.len() as u64);
            let decoded = (code == ErrorCode::None).then(|| {
                decode_partition(
                    config,
                    target,
                    records,
                    data.aborted_transactions.as_deref().unwrap_or(&[]),
                )
            });
            results.push(PartitionResult {
                partition: target.partition.clone(),
                generation: target.generation,
                fetch_offset: target.fetch.fetch_offset,
                code,
                high_watermark: data.high_watermark,
                last_stable_offset: data.last_stable_offset,
                log_start_offset: data.log_start_offset,
                diverging: (data.diverging_epoch.epoch >= 0)
                    .then_some((data.diverging_epoch.epoch, data.diverging_epoch.end_offset)),
                decoded,
            });
        }
    }
    Ok(Answer::Partitions(results))
}

/// Decodes one partition's records into chunks, starting at the fetch
/// offset, dropping control batches and (read_committed) aborted ones.
fn decode_partition(
    config: &ConsumerConfig,
    target: &Target,
    records: Bytes,
    aborted: &[WireAbortedTransaction],
) -> Decoded {
    let fetch_offset = target.fetch.fetch_offset;
    let read_committed = config.isolation_level == IsolationLevel::ReadCommitted;
    let options = DecodeOptions {
        max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        verify_crc: config.check_crcs,
    };
    let mut aborted = AbortedTransactions::new(
        aborted
            .iter()
            .map(|a| AbortedTransaction::new(a.producer_id, a.first_offset)),
    );
    let mut out = Decoded {
        chunks: Vec::new(),
        next_offset: None,
        leader_epoch: None,
        error: None,
        wire_bytes: records.len(),
    };
    let mut cursor = fetch_offset;
    let chunk = |data: ChunkData, next_offset: i64, epoch: Option<i32>, wire: usize| Chunk {
        partition: target.partition.clone(),
        generation: target.generation,
        data,
        next_offset,
        leader_epoch: epoch,
        wire_bytes: wire,
    };
    let push_skip = |chunks: &mut Vec<Chunk>, next: i64, wire: usize| match chunks.last_mut() {
        Some(Chunk {
            data: ChunkData::Skip,
            next_offset,
            wire_bytes,
            ..
        }) => {
            *next_offset = next;
            *wire_bytes += wire;
        }
        _ => chunks.push(chunk(ChunkData::Skip, next, None, wire)),
    };
    for batch in BatchReader::with_options(records, options) {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                out.error = Some((cursor, e));
                break;
            }
        };
        let next = batch.next_offset();
        if next <= cursor {
            continue;
        }
        // read_committed: whether the batch belongs to an aborted transaction
        // (the filter also passes abort markers to close transactions).
        let aborted_batch = read_committed && aborted.is_aborted(&batch).unwrap_or(false);
        match batch {
            Batch::V2(b) => {
                let h = *b.header();
                let wire = b.raw_records().len() + crate::records::batch::RECORD_BATCH_OVERHEAD;
                let epoch = (h.partition_leader_epoch >= 0).then_some(h.partition_leader_epoch);
                if h.is_control() || aborted_batch {
                    push_skip(&mut out.chunks, next, wire);
                } else {
                    let data = match h.compression() {
                        Ok(Compression::None) => Ok(b.raw_records().clone()),
                        Ok(codec) => compression::decompress(
                            codec,
                            b.raw_records(),
                            options.max_decompressed_bytes,
                        ),
                        Err(e) => Err(e),
                    };
                    let checked = data.and_then(|data| {
                        let count = h.records_count as usize;
                        validate_records(&data, count, h.base_offset, cursor)
                            .map(|(start, count)| (data.slice(start..), count))
                    });
                    match checked {
                        Ok((_, 0)) => push_skip(&mut out.chunks, next, wire),
                        Ok((data, count)) => out.chunks.push(chunk(
                            ChunkData::V2 {
                                meta: BatchMeta::of(&h),
                                data,
                                count,
                            },
                            next,
                            epoch,
                            wire,
                        )),
                        Err(e) => {
                            out.error = Some((cursor, e));
                            break;
                        }
                    }
                }
                if epoch.is_some() {
                    out.leader_epoch = epoch;
                }
            }
            Batch::Legacy(legacy) => {
                let wire: usize = 0;
                let records: Result<Vec<_>, RecordsError> = legacy
                    .records()
                    .filter(|r| r.as_ref().map_or(true, |r| r.offset >= cursor))
                    .collect();
                match records {
                    Ok(records) if records.is_empty() => push_skip(&mut out.chunks, next, wire),
                    Ok(records) => out.chunks.push(chunk(
                        ChunkData::Legacy {
                            records: records.into(),
                            start: 0,
                        },
                        next,
                        None,
                        wire,
                    )),
                    Err(e) => {
                        out.error = Some((cursor, e));
                        break;
                    }
                }
            }
        }
        cursor = next;
        out.next_offset = Some(next);
    }
    // Account the fetched bytes on the chunks (legacy entries got none above).
    let accounted: usize = out.chunks.iter().map(|c| c.wire_bytes).sum();
    if let Some(last) = out.chunks.last_mut() {
        last.wire_bytes += out.wire_bytes.saturating_sub(accounted);
    }
    out.wire_bytes = out.chunks.iter().map(|c| c.wire_bytes).sum();
    out
}

/// Applies one partition's result; returns whether metadata should be refreshed.
fn apply(config: &ConsumerConfig, state: &mut State, result: PartitionResult) -> bool {
    let tp = &result.partition;
    let Some(p) = state.partitions.get_mut(tp) else {
        return false;
    };
    if p.generation != result.generation || p.fetch_offset != result.fetch_offset {
        return false; // seeked meanwhile: the data is stale
    }
    if result.high_watermark >= 0 {
        p.high_watermark = result.high_watermark;
    }
    if result.last_stable_offset >= 0 {
        p.last_stable_offset = result.last_stable_offset;
    }
    if result.log_start_offset >= 0 {
        p.log_start_offset = result.log_start_offset;
    }
    match result.code {
        ErrorCode::None => {}
        ErrorCode::OffsetOutOfRange => {
            // Only when nothing is buffered ahead of the fetch offset.
            if p.position == Some(result.fetch_offset) {
                tracing::debug!(partition = %tp, offset = result.fetch_offset, "offset out of range");
                let reset = match config.auto_offset_reset {
                    AutoOffsetReset::Earliest => Some(Offset::Beginning),
                    AutoOffsetReset::Latest => Some(Offset::End),
                    AutoOffsetReset::None => None,
                };
                match reset {
                    Some(offset) => {
                        state.seek(tp, offset);
                    }
                    None => {
                        p.failed = true;
                        state.errors.push_back(ConsumerError::OffsetOutOfRange {
                            partition: tp.clone(),
                            offset: result.fetch_offset,
                        });
                    }
                }
            }
            return false;
        }
        code if code.is_retriable() => {
            tracing::debug!(partition = %tp, %code, "partition fetch error; refreshing metadata");
            return true;
        }
        code => {
            p.failed = true;
            state.errors.push_back(ConsumerError::Partition {
                partition: tp.clone(),
                code,
            });
            return false;
        }
    }
    if let Some((epoch, end_offset)) = result.diverging {
        // KIP-320: the log diverged from what we fetched: truncation.
        let position = p.position.unwrap_or(result.fetch_offset);
        tracing::info!(partition = %tp, epoch, end_offset, position, "log truncation detected");
        truncated(config, state, tp, position, end_offset);
        return false;
    }
    let Some(decoded) = result.decoded else {
        return false;
    };
    if let Some(next) = decoded.next_offset {
        p.fetch_offset = next;
    }
    if decoded.leader_epoch.is_some() {
        p.fetch_epoch = decoded.leader_epoch;
    }
    p.buffered_bytes += decoded.wire_bytes;
    if let Some((offset, source)) = decoded.error {
        if decoded.chunks.is_empty() {
            p.failed = true;
            state.errors.push_back(ConsumerError::CorruptRecords {
                partition: tp.clone(),
                offset,
                source,
            });
        }
        // Otherwise the good part is delivered; the next fetch meets the
        // bad batch again first and reports it then.
    }
    state.buffered_bytes += decoded.wire_bytes;
    state.buffer.extend(decoded.chunks);
    false
}

/// Handles a log truncated below the position (from a diverging epoch or an
/// OffsetForLeaderEpoch answer).
pub(crate) fn truncated(
    config: &ConsumerConfig,
    state: &mut State,
    tp: &TopicPartition,
    position: i64,
    end_offset: i64,
) {
    if end_offset >= position {
        if let Some(p) = state.partitions.get_mut(tp) {
            p.awaiting_validation = false;
        }
        return;
    }
    if config.auto_offset_reset == AutoOffsetReset::None {
        state.seek(tp, Offset::At(position));
        if let Some(p) = state.partitions.get_mut(tp) {
            p.failed = true;
        }
        state.errors.push_back(ConsumerError::LogTruncation {
            partition: tp.clone(),
            offset: position,
            divergent_offset: end_offset,
        });
    } else {
        state.seek(tp, Offset::At(end_offset.max(0)));
    }
}

//! Reading: Fetch (KIP-227 sessions, byte limits, long polls woken by
//! produce, read_committed with the LSO and aborted transactions), ListOffsets
//! and OffsetForLeaderEpoch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use crate::protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::offset_for_leader_epoch_response as ofler;
use crate::protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use crate::protocol::{ErrorCode, Uuid};

use super::state::{Shared, State};

/// `isolation_level` of read_committed.
const READ_COMMITTED: i8 = 1;

/// One partition of a fetch session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionPartition {
    topic_id: Uuid,
    fetch_offset: i64,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    max_bytes: i32,
    /// `(high watermark, last stable offset, log start)` last sent.
    last_sent: Option<(i64, i64, i64)>,
}

/// A KIP-227 fetch session held by one broker.
#[derive(Debug, Clone, Default)]
pub(super) struct FetchSession {
    partitions: BTreeMap<(String, i32), SessionPartition>,
    next_epoch: i32,
}

/// What to read from one partition in this fetch.
#[derive(Debug, Clone)]
struct Wanted {
    topic: String,
    partition: i32,
    part: SessionPartition,
    /// `Some` when the topic id is unknown.
    error: Option<ErrorCode>,
}

/// The session a request belongs to, as far as the answer is concerned.
enum SessionUse {
    /// No session: answer every partition asked for.
    None,
    /// A new (or reset) session: answer every partition and send its id.
    Full(i32),
    /// An incremental fetch: only partitions with something new.
    Incremental(i32),
}

pub(super) async fn fetch(
    shared: &Arc<Shared>,
    node_id: i32,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    let (session, wanted) = match open_session(shared, node_id, &request, version) {
        Ok(opened) => opened,
        Err(code) => return session_error(&request, version, code),
    };
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + wait;
    let committed = version >= 4 && request.isolation_level == READ_COMMITTED;
    let max_bytes = if version >= 3 {
        request.max_bytes
    } else {
        i32::MAX
    };
    let recheck = || deadline.saturating_duration_since(Instant::now());
    shared
        .wait_for(&shared.data_arrived, recheck, |state| {
            let (topics, bytes, errors) =
                read_partitions(state, node_id, &wanted, committed, max_bytes, version);
            let done = request.min_bytes <= 0
                || bytes >= i64::from(request.min_bytes)
                || errors
                || Instant::now() >= deadline;
            done.then(|| finish(state, node_id, &session, topics, version))
        })
        .await
}

/// The answer to a fetch whose session cannot be used.
fn session_error(request: &FetchRequest, version: i16, code: ErrorCode) -> FetchResponse {
    FetchResponse::default()
        .with_error_code(code.code())
        .with_session_id(if version >= 7 {
            request.session_id.max(0)
        } else {
            0
        })
}

/// The answer to a fetch in which every partition fails with `code` (an
/// injected fault). As for any fetch a broker processes, the session moves
/// to its next epoch, and every partition of the session carries the error,
/// not only those the (incremental) request lists.
pub(super) fn failed_fetch(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &FetchRequest,
    version: i16,
    code: ErrorCode,
) -> FetchResponse {
    let (session, wanted) = match open_session(shared, node_id, request, version) {
        Ok(opened) => opened,
        Err(session_code) => return session_error(request, version, session_code),
    };
    let mut state = shared.lock();
    let parts = wanted
        .into_iter()
        .map(|w| {
            let data = failed_partition(&state, &w, version, code);
            (w, data)
        })
        .collect();
    finish(&mut state, node_id, &session, parts, version)
}

/// A partition's answer failing with `code`; NOT_LEADER_OR_FOLLOWER names
/// the current leader (v12+), as Kafka does.
fn failed_partition(state: &State, w: &Wanted, version: i16, code: ErrorCode) -> PartitionData {
    let mut data = PartitionData::default()
        .with_partition_index(w.partition)
        .with_error_code(code.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(Bytes::new()));
    if version >= 12 && code == ErrorCode::NotLeaderOrFollower {
        if let Some(log) = state.partition(&w.topic, w.partition) {
            data = data.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(log.leader)
                    .with_leader_epoch(log.leader_epoch),
            );
        }
    }
    data
}

/// Resolves the request against the broker's fetch sessions.
fn open_session(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &FetchRequest,
    version: i16,
) -> Result<(SessionUse, Vec<Wanted>), ErrorCode> {
    let mut state = shared.lock();
    let mut asked = BTreeMap::new();
    let mut unknown = Vec::new();
    for topic in &request.topics {
        let name = if version >= 13 {
            state.topic_name_by_id(topic.topic_id)
        } else {
            Some(topic.topic.clone())
        };
        for p in &topic.partitions {
            let part = SessionPartition {
                topic_id: topic.topic_id,
                fetch_offset: p.fetch_offset,
                current_leader_epoch: if version >= 9 {
                    p.current_leader_epoch
                } else {
                    -1
                },
                last_fetched_epoch: if version >= 12 {
                    p.last_fetched_epoch
                } else {
                    -1
                },
                max_bytes: p.partition_max_bytes,
                last_sent: None,
            };
            match &name {
                Some(name) => {
                    asked.insert((name.clone(), p.partition), part);
                }
                None => unknown.push(Wanted {
                    topic: String::new(),
                    partition: p.partition,
                    part,
                    error: Some(ErrorCode::UnknownTopicId),
                }),
            }
        }
    }
    let forgotten: Vec<(String, i32)> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let name = if version >= 13 {
                state.topic_name_by_id(t.topic_id).unwrap_or_default()
            } else {
                t.topic.clone()
            };
            t.partitions.iter().map(move |&p| (name.clone(), p))
        })
        .collect();
    let into_wanted = |map: &BTreeMap<(String, i32), SessionPartition>| -> Vec<Wanted> {
        map.iter()
            .map(|((topic, partition), part)| Wanted {
                topic: topic.clone(),
                partition: *partition,
                part: part.clone(),
                error: None,
            })
            .collect()
    };
    let (id, epoch) = (request.session_id, request.session_epoch);
    if version < 7 || (id == 0 && epoch == -1) {
        let mut wanted = into_wanted(&asked);
        wanted.extend(unknown);
        return Ok((SessionUse::None, wanted));
    }
    if epoch == -1 {
        state.fetch_sessions.remove(&(node_id, id));
        let mut wanted = into_wanted(&asked);
        wanted.extend(unknown);
        return Ok((SessionUse::None, wanted));
    }
    if epoch == 0 {
        if id != 0 {
            state.fetch_sessions.remove(&(node_id, id));
        }
        let new_id = state.next_session_id;
        state.next_session_id = state.next_session_id.checked_add(1).unwrap_or(1);
        let mut wanted = into_wanted(&asked);
        wanted.extend(unknown);
        state.fetch_sessions.insert(
            (node_id, new_id),
            FetchSession {
                partitions: asked,
                next_epoch: 1,
            },
        );
        return Ok((SessionUse::Full(new_id), wanted));
    }
    if id == 0 {
        return Err(ErrorCode::InvalidFetchSessionEpoch);
    }
    let session = state
        .fetch_sessions
        .get_mut(&(node_id, id))
        .ok_or(ErrorCode::FetchSessionIdNotFound)?;
    if session.next_epoch != epoch {
        return Err(ErrorCode::InvalidFetchSessionEpoch);
    }
    session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
    for key in forgotten {
        session.partitions.remove(&key);
    }
    for (key, mut part) in asked {
        if let Some(old) = session.partitions.get(&key) {
            part.last_sent = old.last_sent;
        }
        session.partitions.insert(key, part);
    }
    let mut wanted = into_wanted(&session.partitions);
    wanted.extend(unknown);
    Ok((SessionUse::Incremental(id), wanted))
}

/// One pass over the partitions: the answer, the bytes of records in it,
/// and whether any partition has an error (which ends a long poll).
fn read_partitions(
    state: &State,
    node_id: i32,
    wanted: &[Wanted],
    committed: bool,
    max_bytes: i32,
    version: i16,
) -> (Vec<(Wanted, PartitionData)>, i64, bool) {
    let mut remaining = i64::from(max_bytes.max(0));
    let mut total = 0i64;
    let mut errors = false;
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let data = PartitionData::default().with_partition_index(w.partition);
        let fail = |code: ErrorCode| failed_partition(state, w, version, code);
        if let Some(code) = w.error {
            errors = true;
            out.push((w.clone(), fail(code)));
            continue;
        }
        let log = match state.led_partition(node_id, &w.topic, w.partition) {
            Ok(log) => log,
            Err(code) => {
                errors = true;
                out.push((w.clone(), fail(code)));
                continue;
            }
        };
        let epoch_error = log.check_epoch(w.part.current_leader_epoch);
        if epoch_error != ErrorCode::None {
            errors = true;
            out.push((w.clone(), fail(epoch_error)));
            continue;
        }
        let hw = log.high_watermark();
        let lso = log.last_stable_offset();
        let data = data
            .with_high_watermark(hw)
            .with_last_stable_offset(lso)
            .with_log_start_offset(log.log_start);
        let offset = w.part.fetch_offset;
        if w.part.last_fetched_epoch >= 0 {
            let (epoch, end) = log.end_offset_for_epoch(w.part.last_fetched_epoch);
            if epoch != w.part.last_fetched_epoch || end < offset {
                out.push((
                    w.clone(),
                    data.with_diverging_epoch(
                        EpochEndOffset::default()
                            .with_epoch(epoch)
                            .with_end_offset(end),
                    )
                    .with_records(Some(Bytes::new())),
                ));
                continue;
            }
        }
        if offset < log.log_start || offset > hw {
            errors = true;
            out.push((
                w.clone(),
                data.with_error_code(ErrorCode::OffsetOutOfRange.code())
                    .with_records(Some(Bytes::new())),
            ));
            continue;
        }
        let limit = if committed { lso } else { hw };
        let mut records = BytesMut::new();
        let mut partition_left = i64::from(w.part.max_bytes.max(0));
        let mut upper = offset;
        for batch in &log.batches[log.batch_index_for(offset)..] {
            if batch.base_offset >= limit {
                break;
            }
            let size = batch.bytes.len() as i64;
            // KIP-74: the first batch goes out even when it exceeds the limits.
            let first = total == 0 && records.is_empty();
            if !first && (size > partition_left || size > remaining) {
                break;
            }
            records.extend_from_slice(&batch.bytes);
            partition_left -= size;
            remaining -= size;
            total += size;
            upper = batch.last_offset + 1;
        }
        let aborted = committed.then(|| {
            log.aborted
                .iter()
                .filter(|a| a.last_offset >= offset && a.first_offset < upper)
                .map(|a| {
                    AbortedTransaction::default()
                        .with_producer_id(a.producer_id)
                        .with_first_offset(a.first_offset)
                })
                .collect()
        });
        let data = data
            .with_aborted_transactions(aborted)
            .with_records(Some(records.freeze()));
        out.push((w.clone(), data));
    }
    (out, total, errors)
}

/// Builds the response; an incremental answer leaves out partitions with
/// nothing new, and the session remembers what it sent.
fn finish(
    state: &mut State,
    node_id: i32,
    session: &SessionUse,
    parts: Vec<(Wanted, PartitionData)>,
    version: i16,
) -> FetchResponse {
    let session_id = match session {
        SessionUse::None => 0,
        SessionUse::Full(id) | SessionUse::Incremental(id) => *id,
    };
    let incremental = matches!(session, SessionUse::Incremental(_));
    let mut by_topic: Vec<FetchableTopicResponse> = Vec::new();
    for (w, data) in parts {
        let sent = (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
        );
        if session_id != 0 {
            if let Some(p) = state
                .fetch_sessions
                .get_mut(&(node_id, session_id))
                .and_then(|s| s.partitions.get_mut(&(w.topic.clone(), w.partition)))
            {
                let changed = p.last_sent != Some(sent);
                p.last_sent = Some(sent);
                let has_records = data.records.as_ref().is_some_and(|r| !r.is_empty());
                if incremental && !changed && !has_records && data.error_code == 0 {
                    continue;
                }
            }
        }
        let key_matches = |t: &FetchableTopicResponse| {
            if version >= 13 {
                t.topic_id == w.part.topic_id
            } else {
                t.topic == w.topic
            }
        };
        match by_topic.iter_mut().find(|t| key_matches(t)) {
            Some(t) => t.partitions.push(data),
            None => {
                let mut topic = FetchableTopicResponse::default().with_partitions(vec![data]);
                if version >= 13 {
                    topic = topic.with_topic_id(w.part.topic_id);
                } else {
                    topic = topic.with_topic(w.topic.clone());
                }
                by_topic.push(topic);
            }
        }
    }
    let mut response = FetchResponse::default().with_responses(by_topic);
    if version >= 7 {
        response = response.with_session_id(session_id);
    }
    response
}

pub(super) fn list_offsets(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let state = shared.lock();
    let committed = version >= 2 && request.isolation_level == READ_COMMITTED;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let found = state
                        .led_partition(node_id, &t.name, p.partition_index)
                        .and_then(|log| {
                            let epoch = if version >= 4 {
                                p.current_leader_epoch
                            } else {
                                -1
                            };
                            match log.check_epoch(epoch) {
                                ErrorCode::None => Ok(log),
                                code => Err(code),
                            }
                        })
                        .map(|log| match p.timestamp {
                            -2 | -4 => (-1, log.log_start, log.epoch_at(log.log_start)),
                            -1 => {
                                let end = if committed {
                                    log.last_stable_offset()
                                } else {
                                    log.high_watermark()
                                };
                                (-1, end, log.leader_epoch)
                            }
                            -3 => log.max_timestamp_offset().unwrap_or((-1, -1, -1)),
                            ts if ts >= 0 => log.offset_for_timestamp(ts).unwrap_or((-1, -1, -1)),
                            _ => (-1, -1, -1),
                        });
                    match found {
                        Ok((timestamp, offset, epoch)) => {
                            let response = response.with_timestamp(timestamp).with_offset(offset);
                            if version >= 4 {
                                response.with_leader_epoch(epoch)
                            } else {
                                response
                            }
                        }
                        Err(code) => response
                            .with_error_code(code.code())
                            .with_timestamp(-1)
                            .with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub(super) fn offset_for_leader_epoch(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let state = shared.lock();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let result = ofler::EpochEndOffset::default().with_partition(p.partition);
                    let found = state
                        .led_partition(node_id, &t.topic, p.partition)
                        .and_then(|log| match log.check_epoch(p.current_leader_epoch) {
                            ErrorCode::None => Ok(log.end_offset_for_epoch(p.leader_epoch)),
                            code => Err(code),
                        });
                    match found {
                        Ok((epoch, end)) => result.with_leader_epoch(epoch).with_end_offset(end),
                        Err(code) => result
                            .with_error_code(code.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1),
                    }
                })
                .collect();
            ofler::OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

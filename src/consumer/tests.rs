//! Consumer tests against an in-process fake cluster (`network::testing`):
//! fetch sessions and their errors, read_committed filtering, offset resets,
//! leader moves, truncation and the buffer budget, which the local brokers
//! cannot all show.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::network::testing::{spawn_tcp, with_api_versions, Reply};
use crate::network::ClientConfig;
use crate::protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset as LeaderEpochEndOffset, OffsetForLeaderTopicResult,
};
use crate::protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsResponse, MetadataResponse,
    OffsetForLeaderEpochResponse,
};
use crate::protocol::{ErrorCode, RequestKind, ResponseKind};
use crate::records::{Compression, ControlRecord, RecordBatchBuilder};

use super::*;

const TOPIC: &str = "t";

#[derive(Default)]
struct Log {
    /// (base offset, next offset, encoded batch)
    batches: Vec<(i64, i64, Bytes)>,
    aborted: Vec<(i64, i64)>,
    leader: i32,
    epoch: i32,
}

impl Log {
    fn end(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.1)
    }
}

#[derive(Debug, Clone)]
struct FetchSeen {
    node: i32,
    session_id: i32,
    epoch: i32,
    listed: Vec<(i32, i64)>,
}

#[derive(Default)]
struct Fake {
    addrs: BTreeMap<i32, String>,
    logs: Vec<Log>,
    /// Per node: (session id, expected epoch, partition -> fetch offset).
    sessions: HashMap<i32, (i32, i32, BTreeMap<i32, i64>)>,
    next_session: i32,
    fetches: Vec<FetchSeen>,
    inject_top_error: VecDeque<ErrorCode>,
    batches_per_fetch: usize,
    /// OffsetForLeaderEpoch answer (end offset), when set.
    epoch_end_offset: Option<i64>,
    validations: usize,
    /// Keeps no fetch sessions and answers partitions in request order.
    sessionless: bool,
    /// Ends a partition's records with the part of the next batch that fits
    /// its byte limit, as Kafka cuts responses.
    cut_batches: bool,
}

type Shared = Arc<Mutex<Fake>>;

fn lock(fake: &Shared) -> std::sync::MutexGuard<'_, Fake> {
    fake.lock().unwrap()
}

fn batch(base: i64, values: &[&str], pid: i64, transactional: bool) -> (i64, i64, Bytes) {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.set_base_offset(base).set_partition_leader_epoch(0);
    if pid >= 0 {
        b.set_producer_id(pid)
            .set_producer_epoch(0)
            .set_base_sequence(0);
    }
    b.set_transactional(transactional);
    for v in values {
        b.append(1_000, None, Some(v.as_bytes()), &[]).unwrap();
    }
    (base, base + values.len() as i64, b.finish().unwrap())
}

fn marker(base: i64, pid: i64, commit: bool) -> (i64, i64, Bytes) {
    let control = ControlRecord::end_transaction(commit, 0);
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.set_base_offset(base)
        .set_producer_id(pid)
        .set_producer_epoch(0)
        .set_transactional(true)
        .set_control(true);
    b.append(
        1_000,
        Some(&control.encode_key()),
        control.value.as_deref(),
        &[],
    )
    .unwrap();
    (base, base + 1, b.finish().unwrap())
}

fn metadata(fake: &Fake) -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(
            fake.addrs
                .iter()
                .map(|(id, addr)| {
                    let (host, port) = addr.rsplit_once(':').unwrap();
                    MetadataResponseBroker::default()
                        .with_node_id(*id)
                        .with_host(host.to_owned())
                        .with_port(port.parse().unwrap())
                })
                .collect(),
        )
        .with_controller_id(1)
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TOPIC.to_owned()))
            .with_partitions(
                fake.logs
                    .iter()
                    .enumerate()
                    .map(|(i, log)| {
                        MetadataResponsePartition::default()
                            .with_partition_index(i as i32)
                            .with_leader_id(log.leader)
                            .with_leader_epoch(log.epoch)
                            .with_replica_nodes(vec![log.leader])
                            .with_isr_nodes(vec![log.leader])
                    })
                    .collect(),
            )])
}

fn fetch(fake: &mut Fake, node: i32, request: FetchRequest) -> FetchResponse {
    fake.fetches.push(FetchSeen {
        node,
        session_id: request.session_id,
        epoch: request.session_epoch,
        listed: request
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset)))
            .collect(),
    });
    if let Some(code) = fake.inject_top_error.pop_front() {
        fake.sessions.remove(&node);
        return FetchResponse::default().with_error_code(code.code());
    }
    let listed: Vec<(i32, i64)> = fake.fetches.last().unwrap().listed.clone();
    let (session_id, wanted): (i32, Vec<(i32, i64)>) = if fake.sessionless {
        (0, listed)
    } else if request.session_id == 0 {
        let wanted: BTreeMap<i32, i64> = listed.into_iter().collect();
        fake.next_session += 1;
        let id = fake.next_session;
        fake.sessions.insert(node, (id, 1, wanted.clone()));
        (id, wanted.into_iter().collect())
    } else {
        let Some((id, expected, parts)) = fake.sessions.get_mut(&node) else {
            return FetchResponse::default()
                .with_error_code(ErrorCode::FetchSessionIdNotFound.code());
        };
        if *id != request.session_id {
            return FetchResponse::default()
                .with_error_code(ErrorCode::FetchSessionIdNotFound.code());
        }
        if *expected != request.session_epoch {
            return FetchResponse::default()
                .with_error_code(ErrorCode::InvalidFetchSessionEpoch.code());
        }
        *expected += 1;
        for (p, o) in listed {
            parts.insert(p, o);
        }
        for t in &request.forgotten_topics_data {
            for p in &t.partitions {
                parts.remove(p);
            }
        }
        (*id, parts.clone().into_iter().collect())
    };
    let read_committed = request.isolation_level == 1;
    let mut room = request.max_bytes.max(0) as usize;
    let partition_max = request
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.partition_max_bytes)
        .max()
        .unwrap_or(i32::MAX) as usize;
    let mut first = true;
    let partitions = wanted
        .iter()
        .map(|&(p, offset)| {
            let log = &fake.logs[p as usize];
            let mut data = PartitionData::default()
                .with_partition_index(p)
                .with_high_watermark(log.end())
                .with_last_stable_offset(log.end())
                .with_log_start_offset(0);
            if log.leader != node {
                return data.with_error_code(ErrorCode::NotLeaderOrFollower.code());
            }
            if offset > log.end() {
                return data.with_error_code(ErrorCode::OffsetOutOfRange.code());
            }
            let mut records = Vec::new();
            let mut size = 0;
            for (_, _, bytes) in log.batches.iter().filter(|b| b.1 > offset) {
                let limit = partition_max.min(room);
                let fits = size + bytes.len() <= limit;
                if records.len() >= fake.batches_per_fetch.max(1) {
                    break;
                }
                if !(fits || first) {
                    if fake.cut_batches && limit > size {
                        let cut = (limit - size).min(bytes.len() - 1);
                        records.push(bytes.slice(..cut));
                        size += cut;
                    }
                    break;
                }
                first = false;
                size += bytes.len();
                records.push(bytes.clone());
            }
            room = room.saturating_sub(size);
            let blob: Vec<u8> = records.iter().flat_map(|b| b.iter().copied()).collect();
            if read_committed {
                data = data.with_aborted_transactions(Some(
                    log.aborted
                        .iter()
                        .map(|&(pid, first)| {
                            AbortedTransaction::default()
                                .with_producer_id(pid)
                                .with_first_offset(first)
                        })
                        .collect(),
                ));
            }
            data.with_records(Some(Bytes::from(blob)))
                .with_diverging_epoch(EpochEndOffset::default().with_epoch(-1).with_end_offset(-1))
        })
        .collect();
    FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TOPIC.to_owned())
            .with_partitions(partitions)])
}

fn handle(fake: &Shared, node: i32, body: RequestKind) -> ResponseKind {
    let mut f = lock(fake);
    match body {
        RequestKind::Metadata(_) => ResponseKind::Metadata(metadata(&f)),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch(&mut f, node, r)),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(
            ListOffsetsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        ListOffsetsTopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        let end = f.logs[p.partition_index as usize].end();
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p.partition_index)
                                            .with_offset(if p.timestamp == -1 { end } else { 0 })
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::OffsetForLeaderEpoch(r) => {
            f.validations += 1;
            let answer = f.epoch_end_offset;
            ResponseKind::OffsetForLeaderEpoch(
                OffsetForLeaderEpochResponse::default().with_topics(
                    r.topics
                        .iter()
                        .map(|t| {
                            OffsetForLeaderTopicResult::default()
                                .with_topic(t.topic.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            let end = answer.unwrap_or_else(|| {
                                                f.logs[p.partition as usize].end()
                                            });
                                            LeaderEpochEndOffset::default()
                                                .with_partition(p.partition)
                                                .with_leader_epoch(p.leader_epoch)
                                                .with_end_offset(end)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        other => panic!("fake cluster got an unexpected {:?}", other.api_key()),
    }
}

/// Starts `nodes` fake brokers sharing one cluster state.
async fn fake_cluster(nodes: i32, logs: Vec<Log>) -> (Shared, String) {
    let fake: Shared = Arc::new(Mutex::new(Fake {
        logs,
        batches_per_fetch: 3,
        ..Fake::default()
    }));
    for node in 1..=nodes {
        let f = fake.clone();
        let addr = spawn_tcp(with_api_versions(move |header, body| {
            Reply::now(handle(&f, node, body), header)
        }))
        .await;
        lock(&fake).addrs.insert(node, addr);
    }
    let bootstrap = lock(&fake).addrs[&1].clone();
    (fake, bootstrap)
}

async fn consumer(bootstrap: &str, config: ConsumerConfigBuilder) -> Consumer {
    let client = ClientConfig::builder()
        .bootstrap_servers([bootstrap])
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    Consumer::new(
        client,
        config
            .fetch_max_wait(Duration::from_millis(20))
            .build()
            .unwrap(),
    )
    .await
    .unwrap()
}

/// Polls until `n` records came (or panics after a while).
async fn consume(consumer: &Consumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        assert!(tokio::time::Instant::now() < deadline, "got only {out:?}");
        let batch = consumer.poll(7, Duration::from_millis(200)).await.unwrap();
        for r in batch.iter() {
            out.push((
                r.partition(),
                r.offset(),
                String::from_utf8(r.value().unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

fn numbered_log(leader: i32, batches: i64, per_batch: i64) -> Log {
    let mut log = Log {
        leader,
        ..Log::default()
    };
    for b in 0..batches {
        let values: Vec<String> = (0..per_batch)
            .map(|i| format!("v{}", b * per_batch + i))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        log.batches.push(batch(b * per_batch, &refs, -1, false));
    }
    log
}

fn assert_each_once(records: &[(i32, i64, String)], partitions: i32, per_partition: i64) {
    for p in 0..partitions {
        let offsets: Vec<i64> = records.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert_eq!(
            offsets,
            (0..per_partition).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    for r in records {
        assert_eq!(r.2, format!("v{}", r.1));
    }
}

#[tokio::test]
async fn fetch_sessions_go_incremental_and_recover_from_session_errors() {
    let (fake, bootstrap) =
        fake_cluster(1, vec![numbered_log(1, 20, 2), numbered_log(1, 20, 2)]).await;
    let consumer = consumer(
        &bootstrap,
        ConsumerConfig::builder().auto_offset_reset(AutoOffsetReset::Earliest),
    )
    .await;
    consumer
        .assign([TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1)])
        .unwrap();
    let mut records = consume(&consumer, 20).await;
    {
        let mut f = lock(&fake);
        f.inject_top_error
            .push_back(ErrorCode::InvalidFetchSessionEpoch);
        f.inject_top_error
            .push_back(ErrorCode::FetchSessionIdNotFound);
    }
    records.extend(consume(&consumer, 80 - records.len()).await);
    assert_each_once(&records, 2, 40);

    let f = lock(&fake);
    let first = &f.fetches[0];
    assert_eq!(
        (first.session_id, first.epoch),
        (0, 0),
        "the first fetch is a full one"
    );
    let incremental: Vec<&FetchSeen> = f.fetches.iter().filter(|s| s.session_id != 0).collect();
    assert!(
        incremental.len() >= 3,
        "incremental fetches follow: {:?}",
        f.fetches
    );
    assert!(incremental.iter().all(|s| s.epoch >= 1));
    // After each injected error the next request is a full one opening a new session.
    let full = f.fetches.iter().filter(|s| s.session_id == 0).count();
    assert!(
        full >= 3,
        "full fetches after the session errors: {:?}",
        f.fetches
    );
    assert!(
        f.fetches.iter().any(|s| s.session_id >= 2),
        "a second session was opened"
    );
    drop(f);
    let m = consumer.metrics();
    assert_eq!(m.fetch_session_resets, 2);
    assert!(m.incremental_fetches >= 3);
    assert_eq!(m.records_consumed, 80);
}

#[tokio::test]
async fn read_committed_drops_aborted_transactions_and_never_returns_control_records() {
    let log = || Log {
        leader: 1,
        batches: vec![
            batch(0, &["a0", "a1"], -1, false),
            batch(2, &["c2", "c3"], 10, true),
            batch(4, &["x4", "x5"], 11, true),
            marker(6, 10, true),
            marker(7, 11, false),
            batch(8, &["x8"], 11, true),
            marker(9, 11, false),
            batch(10, &["a10"], -1, false),
        ],
        aborted: vec![(11, 4), (11, 8)],
        ..Log::default()
    };
    for (isolation, expected) in [
        (IsolationLevel::ReadCommitted, vec![0, 1, 2, 3, 10]),
        (
            IsolationLevel::ReadUncommitted,
            vec![0, 1, 2, 3, 4, 5, 8, 10],
        ),
    ] {
        let (_fake, bootstrap) = fake_cluster(1, vec![log()]).await;
        let config = ConsumerConfig::builder()
            .isolation_level(isolation)
            .auto_offset_reset(AutoOffsetReset::Earliest);
        let consumer = consumer(&bootstrap, config).await;
        let tp = TopicPartition::new(TOPIC, 0);
        consumer.assign([tp.clone()]).unwrap();
        let got = consume(&consumer, expected.len()).await;
        let offsets: Vec<i64> = got.iter().map(|r| r.1).collect();
        assert_eq!(offsets, expected, "{isolation:?}");
        // The position moves past the trailing markers too.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let extra = consumer
            .poll(100, Duration::from_millis(100))
            .await
            .unwrap();
        assert!(extra.is_empty());
        assert_eq!(consumer.position(&tp).unwrap(), Some(11));
    }
}

#[tokio::test]
async fn offset_out_of_range_resets_or_reports_a_typed_error() {
    let (_fake, bootstrap) = fake_cluster(1, vec![numbered_log(1, 2, 2)]).await;
    let tp = TopicPartition::new(TOPIC, 0);
    let strict = consumer(
        &bootstrap,
        ConsumerConfig::builder().auto_offset_reset(AutoOffsetReset::None),
    )
    .await;
    strict.assign([tp.clone()]).unwrap();
    let err = strict.poll(10, Duration::from_secs(1)).await.unwrap_err();
    assert!(
        matches!(err, ConsumerError::NoOffsetForPartition(ref p) if p == &tp),
        "{err}"
    );
    strict.seek(&tp, Offset::At(1000)).unwrap();
    let err = strict.poll(10, Duration::from_secs(5)).await.unwrap_err();
    assert!(
        matches!(err, ConsumerError::OffsetOutOfRange { offset: 1000, .. }),
        "{err}"
    );
    strict.seek(&tp, Offset::At(1)).unwrap();
    let got = consume(&strict, 3).await;
    assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [1, 2, 3]);

    let lenient = consumer(
        &bootstrap,
        ConsumerConfig::builder().auto_offset_reset(AutoOffsetReset::Earliest),
    )
    .await;
    lenient.assign([tp.clone()]).unwrap();
    lenient.seek(&tp, Offset::At(1000)).unwrap();
    let got = consume(&lenient, 4).await;
    assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [0, 1, 2, 3]);
}

#[tokio::test]
async fn a_leader_move_resumes_at_the_same_offset_after_validating_it() {
    let (fake, bootstrap) = fake_cluster(2, vec![numbered_log(1, 30, 2)]).await;
    let consumer = consumer(
        &bootstrap,
        ConsumerConfig::builder().auto_offset_reset(AutoOffsetReset::Earliest),
    )
    .await;
    consumer.assign([TopicPartition::new(TOPIC, 0)]).unwrap();
    let mut records = consume(&consumer, 10).await;
    {
        let mut f = lock(&fake);
        f.logs[0].leader = 2;
        f.logs[0].epoch = 1;
    }
    records.extend(consume(&consumer, 60 - records.len()).await);
    assert_each_once(&records, 1, 60);
    let f = lock(&fake);
    assert!(
        f.fetches.iter().any(|s| s.node == 2),
        "fetched from the new leader"
    );
    assert!(
        f.validations >= 1,
        "the position was validated with OffsetForLeaderEpoch"
    );
}

#[tokio::test]
async fn truncation_found_by_offset_for_leader_epoch_resets_or_is_reported() {
    for policy in [AutoOffsetReset::Earliest, AutoOffsetReset::None] {
        let (fake, bootstrap) = fake_cluster(2, vec![numbered_log(1, 10, 2)]).await;
        let consumer = consumer(
            &bootstrap,
            ConsumerConfig::builder().auto_offset_reset(policy),
        )
        .await;
        let tp = TopicPartition::new(TOPIC, 0);
        consumer.assign([tp.clone()]).unwrap();
        consumer.seek(&tp, Offset::At(0)).unwrap();
        consume(&consumer, 20).await;
        assert_eq!(consumer.position(&tp).unwrap(), Some(20));
        // The new leader's log ends at 12: offsets 12..20 were lost.
        {
            let mut f = lock(&fake);
            f.logs[0].leader = 2;
            f.logs[0].epoch = 1;
            f.logs[0].batches.truncate(6);
            f.epoch_end_offset = Some(12);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        if policy == AutoOffsetReset::None {
            let err = loop {
                assert!(tokio::time::Instant::now() < deadline);
                match consumer.poll(10, Duration::from_millis(50)).await {
                    Err(e) => break e,
                    Ok(r) => assert!(r.is_empty()),
                }
            };
            assert!(
                matches!(
                    err,
                    ConsumerError::LogTruncation {
                        offset: 20,
                        divergent_offset: 12,
                        ..
                    }
                ),
                "{err}"
            );
        } else {
            while consumer.position(&tp).unwrap() != Some(12) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "position {:?}",
                    consumer.position(&tp)
                );
                let _ = consumer.poll(10, Duration::from_millis(50)).await;
            }
        }
        assert!(lock(&fake).validations >= 1);
    }
}

#[tokio::test]
async fn buffered_bytes_stay_under_the_budget_for_a_slow_application() {
    let (_fake, bootstrap) =
        fake_cluster(1, vec![numbered_log(1, 200, 50), numbered_log(1, 200, 50)]).await;
    let budget = 8 * 1024;
    let config = ConsumerConfig::builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_buffer_bytes(budget)
        .max_partition_fetch_bytes(1024);
    let consumer = consumer(&bootstrap, config).await;
    consumer
        .assign([TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1)])
        .unwrap();
    let mut seen = 0;
    let mut largest_batch = 0;
    while seen < 20_000 {
        let batch = consumer.poll(500, Duration::from_secs(5)).await.unwrap();
        seen += batch.len();
        largest_batch = largest_batch.max(batch.bytes);
        let m = consumer.metrics();
        assert!(
            m.buffered_bytes <= budget + 1024,
            "{} buffered",
            m.buffered_bytes
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let m = consumer.metrics();
    // Only a first batch larger than the room left may go past the budget.
    assert!(
        m.max_buffered_bytes <= budget + 1024,
        "max {} buffered",
        m.max_buffered_bytes
    );
    assert!(m.max_buffered_bytes > 0 && largest_batch > 0);
    assert_eq!(m.partitions.len(), 2);
}

#[tokio::test]
async fn pause_resume_and_assignment_changes_while_fetching() {
    let (_fake, bootstrap) =
        fake_cluster(1, vec![numbered_log(1, 20, 2), numbered_log(1, 20, 2)]).await;
    let consumer = consumer(
        &bootstrap,
        ConsumerConfig::builder().auto_offset_reset(AutoOffsetReset::Earliest),
    )
    .await;
    let (p0, p1) = (TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1));
    consumer.assign([p0.clone(), p1.clone()]).unwrap();
    consumer.pause([&p1]).unwrap();
    assert_eq!(consumer.paused(), vec![p1.clone()]);
    let got = consume(&consumer, 40).await;
    assert!(
        got.iter().all(|r| r.0 == 0),
        "nothing from the paused partition"
    );
    assert_eq!(consumer.position(&p1).unwrap(), Some(0));
    consumer.resume([&p1]).unwrap();
    let got = consume(&consumer, 10).await;
    assert!(got.iter().all(|r| r.0 == 1));
    assert_eq!(got[0].1, 0);
    // Drop p0, add it back at offset 5, seek p1 back to 3.
    consumer.assign([p1.clone()]).unwrap();
    assert_eq!(consumer.assignment(), vec![p1.clone()]);
    assert!(matches!(
        consumer.position(&p0),
        Err(ConsumerError::NotAssigned(_))
    ));
    consumer.assign_partitions([p0.clone()]).unwrap();
    consumer.seek(&p0, Offset::At(5)).unwrap();
    consumer.seek(&p1, Offset::At(3)).unwrap();
    let got = consume(&consumer, 35 + 37).await;
    let first = |p: i32| got.iter().find(|r| r.0 == p).map(|r| r.1);
    assert_eq!((first(0), first(1)), (Some(5), Some(3)));
    assert_eq!(got.len(), 72);
    consumer.seek(&p0, Offset::End).unwrap();
    assert_eq!(
        consumer
            .resolved_position(&p0, Duration::from_secs(5))
            .await
            .unwrap(),
        Some(40)
    );
}

#[tokio::test]
async fn the_stream_yields_owned_records_in_order() {
    use futures_util::StreamExt;
    let (_fake, bootstrap) = fake_cluster(1, vec![numbered_log(1, 5, 3)]).await;
    let consumer = consumer(
        &bootstrap,
        ConsumerConfig::builder()
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .max_poll_records(4),
    )
    .await;
    consumer.assign([TopicPartition::new(TOPIC, 0)]).unwrap();
    let records: Vec<ConsumerRecord> = consumer
        .stream()
        .take(15)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..15).collect::<Vec<_>>()
    );
    assert_eq!(records[7].value.as_deref(), Some(b"v7".as_slice()));
    assert_eq!(&*records[7].topic, TOPIC);
    assert_eq!(records[7].leader_epoch, Some(0));
}

#[tokio::test]
async fn a_seek_while_an_offset_lookup_runs_is_not_lost() {
    let (_fake, bootstrap) = fake_cluster(1, vec![numbered_log(1, 5, 2)]).await;
    let consumer = consumer(
        &bootstrap,
        ConsumerConfig::builder().auto_offset_reset(AutoOffsetReset::Earliest),
    )
    .await;
    let tp = TopicPartition::new(TOPIC, 0);
    // The reset to the beginning starts a lookup; the seek overtakes it,
    // and a later seek to the beginning must start its own.
    consumer.assign([tp.clone()]).unwrap();
    tokio::task::yield_now().await;
    consumer.seek(&tp, Offset::At(6)).unwrap();
    assert_eq!(consume(&consumer, 2).await[0].1, 6);
    consumer.seek(&tp, Offset::Beginning).unwrap();
    assert_eq!(
        consumer
            .resolved_position(&tp, Duration::from_secs(5))
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(consume(&consumer, 10).await[0].1, 0);
}

/// The fake brokers answer every fetch at once, with nothing at the end of
/// the log, instead of holding it for `fetch.max.wait.ms` (as Tansu and
/// noida-db do). An idle consumer must not turn that into a busy loop, and
/// new records must still come.
#[tokio::test]
async fn an_idle_consumer_paces_fetches_to_a_broker_that_answers_empty_at_once() {
    let (fake, bootstrap) = fake_cluster(1, vec![numbered_log(1, 2, 2)]).await;
    let client = ClientConfig::builder()
        .bootstrap_servers([bootstrap.as_str()])
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let config = ConsumerConfig::builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_max_wait(Duration::from_millis(500))
        .build()
        .unwrap();
    let consumer = Consumer::new(client, config).await.unwrap();
    consumer.assign([TopicPartition::new(TOPIC, 0)]).unwrap();
    assert_each_once(&consume(&consumer, 4).await, 1, 4);
    let before = consumer.metrics().fetch_requests;
    let idle = Duration::from_secs(2);
    let polled = consumer.poll(10, idle).await.unwrap();
    assert_eq!(polled.len(), 0);
    let idle_fetches = consumer.metrics().fetch_requests - before;
    // Paced: 1, 2, 4, ... ms up to 100 ms between fetches, so about 25 in
    // 2 s; without pacing, thousands.
    assert!(
        idle_fetches <= 60,
        "{idle_fetches} fetches in {idle:?} with nothing to read"
    );
    assert!(idle_fetches >= 3, "{idle_fetches} fetches: still polling?");
    // A record written now still arrives.
    let next = lock(&fake).logs[0].end();
    let appended = batch(next, &["v4"], -1, false);
    lock(&fake).logs[0].batches.push(appended);
    let more = consume(&consumer, 1).await;
    assert_eq!(more, vec![(0, 4, "v4".to_owned())]);
}

#[tokio::test]
async fn a_batch_cut_at_the_response_limit_is_not_an_error() {
    let log = numbered_log(1, 30, 10);
    let batch_len = log.batches[0].2.len();
    let (fake, bootstrap) = fake_cluster(1, vec![log]).await;
    {
        let mut f = lock(&fake);
        f.cut_batches = true;
        f.batches_per_fetch = 100;
    }
    // Two and a half batches fit: every answer ends with a partial batch.
    let limit = 2 * batch_len + batch_len / 2;
    let config = ConsumerConfig::builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .max_partition_fetch_bytes(limit as i32);
    let consumer = consumer(&bootstrap, config).await;
    consumer.assign([TopicPartition::new(TOPIC, 0)]).unwrap();
    let records = consume(&consumer, 300).await;
    assert_each_once(&records, 1, 300);
    let m = consumer.metrics();
    assert_eq!(m.fetch_errors, 0);
    assert!(
        m.fetch_requests >= 15,
        "two batches a fetch: {}",
        m.fetch_requests
    );
}

#[tokio::test]
async fn batches_larger_than_every_byte_limit_still_make_progress() {
    let log = numbered_log(1, 10, 20);
    let batch_len = log.batches[0].2.len();
    let (_fake, bootstrap) = fake_cluster(1, vec![log]).await;
    let limit = (batch_len / 4) as i32;
    let config = ConsumerConfig::builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .max_partition_fetch_bytes(limit)
        .fetch_max_bytes(limit);
    let consumer = consumer(&bootstrap, config).await;
    consumer.assign([TopicPartition::new(TOPIC, 0)]).unwrap();
    let records = consume(&consumer, 200).await;
    assert_each_once(&records, 1, 200);
    assert_eq!(consumer.metrics().fetch_errors, 0);
}

#[tokio::test]
async fn partitions_take_turns_when_the_response_limit_binds() {
    let logs = vec![
        numbered_log(1, 50, 10),
        numbered_log(1, 50, 10),
        numbered_log(1, 50, 10),
    ];
    let batch_len = logs[0].batches[0].2.len();
    let (fake, bootstrap) = fake_cluster(1, logs).await;
    {
        let mut f = lock(&fake);
        f.sessionless = true;
        f.batches_per_fetch = 100;
    }
    // Each answer holds one batch: the first listed partition's.
    let config = ConsumerConfig::builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_max_bytes(batch_len as i32);
    let consumer = consumer(&bootstrap, config).await;
    consumer
        .assign((0..3).map(|p| TopicPartition::new(TOPIC, p)))
        .unwrap();
    let first = consume(&consumer, 30).await;
    let mut partitions: Vec<i32> = first[..30].iter().map(|r| r.0).collect();
    partitions.dedup();
    partitions.sort();
    partitions.dedup();
    assert_eq!(
        partitions,
        [0, 1, 2],
        "the first three answers serve every partition, not the first one listed three times"
    );
    let rest = consume(&consumer, 1500 - first.len()).await;
    let mut all = first;
    all.extend(rest);
    all.sort();
    assert_each_once(&all, 3, 500);
}

//! Consumer groups with ferrokafka's own members (issue 10): against the
//! in-process mock cluster (`testkit::mock`) for joins, rebalances, every
//! coordinator error the member must handle, coordinator moves, static
//! membership, session and poll timeouts and commits; and a smoke test on a
//! real broker (Tansu).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka::consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, ConsumerConfigBuilder, ConsumerError,
    ListenerFuture, MemberState, OffsetAndMetadata, RebalanceListener, Strategy, TopicPartition,
};
use ferrokafka::network::ClientConfig;
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::protocol::{ApiKey, ErrorCode};
use ferrokafka::testkit::mock::{Fault, GroupState, MockCluster};

fn client(bootstrap: &str) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .retry_backoff(Duration::from_millis(50))
        .retry_backoff_max(Duration::from_millis(300))
        .request_timeout(Duration::from_secs(10))
        .default_api_timeout(Duration::from_secs(15))
        .metadata_max_age(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// Short timeouts so that every test runs in seconds.
fn group_config(group: &str) -> ConsumerConfigBuilder {
    ConsumerConfig::builder()
        .group_id(group)
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(300))
        .max_poll_interval(Duration::from_secs(20))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_max_wait(Duration::from_millis(100))
}

async fn member(bootstrap: &str, config: ConsumerConfigBuilder) -> Consumer {
    Consumer::new(client(bootstrap), config.build().unwrap())
        .await
        .unwrap()
}

/// Makes every produced value unique.
static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn produce(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize) {
    let producer = Producer::new(
        client(bootstrap),
        ProducerConfig::builder().build().unwrap(),
    )
    .await
    .unwrap();
    let mut handles = Vec::new();
    for p in 0..partitions {
        for n in 0..per_partition {
            let seq = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let record =
                ProducerRecord::new(topic.to_owned(), Bytes::from(format!("{p}-{n}-{seq}")))
                    .with_partition(p);
            handles.push(producer.send(record).await.unwrap());
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    producer.close(Duration::from_secs(5)).await.unwrap();
}

/// Polls every member until `done` holds for their assignments (or panics
/// after `limit`); returns the records each consumed meanwhile.
async fn poll_until(
    members: &[&Consumer],
    limit: Duration,
    mut done: impl FnMut(&[Vec<TopicPartition>]) -> bool,
) -> Vec<Vec<String>> {
    let start = Instant::now();
    let mut consumed = vec![Vec::new(); members.len()];
    loop {
        for (i, m) in members.iter().enumerate() {
            let batch = m.poll(500, Duration::from_millis(50)).await.unwrap();
            for r in batch.iter() {
                consumed[i].push(String::from_utf8(r.value().unwrap().to_vec()).unwrap());
            }
        }
        let assignments: Vec<Vec<TopicPartition>> =
            members.iter().map(|m| m.assignment()).collect();
        if done(&assignments) {
            return consumed;
        }
        assert!(
            start.elapsed() < limit,
            "condition not reached in {limit:?}; assignments {assignments:?}, states {:?}",
            members.iter().map(|m| m.group_state()).collect::<Vec<_>>()
        );
    }
}

/// Every partition of `topic` owned by exactly one member.
fn owned_once(assignments: &[Vec<TopicPartition>], topic: &str, partitions: i32) -> bool {
    let mut all: Vec<&TopicPartition> = assignments.iter().flatten().collect();
    all.sort();
    let expected: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    all.len() == expected.len() && all.iter().zip(&expected).all(|(a, b)| *a == b)
}

/// Whether every member is in the same generation.
fn one_generation(members: &[&Consumer]) -> bool {
    let generations: BTreeSet<Option<i32>> = members
        .iter()
        .map(|m| m.group_state().map(|s| s.generation))
        .collect();
    generations.len() == 1
}

/// Records the rebalance callbacks a member saw, in order.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

/// A callback's name and its partitions.
type Event = (&'static str, Vec<TopicPartition>);

impl Recorder {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
    fn kinds(&self) -> Vec<&'static str> {
        self.events().into_iter().map(|(k, _)| k).collect()
    }
    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    fn push(&self, kind: &'static str, partitions: &[TopicPartition]) {
        self.0.lock().unwrap().push((kind, partitions.to_vec()));
    }
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.push("revoked", partitions);
        Box::pin(async {})
    }
    fn on_partitions_assigned<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.push("assigned", partitions);
        Box::pin(async {})
    }
    fn on_partitions_lost<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.push("lost", partitions);
        Box::pin(async {})
    }
}

fn tps(topic: &str, partitions: impl IntoIterator<Item = i32>) -> Vec<TopicPartition> {
    partitions
        .into_iter()
        .map(|p| TopicPartition::new(topic, p))
        .collect()
}

/// One broker, topic `t` with `partitions` partitions holding `per_partition`
/// records each.
async fn mock_with_topic(partitions: i32, per_partition: usize) -> (MockCluster, String) {
    let mock = MockCluster::start(1).unwrap();
    mock.create_topic("t", partitions, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    if per_partition > 0 {
        produce(&bootstrap, "t", partitions, per_partition).await;
    }
    (mock, bootstrap)
}

/// A single subscribed member, polled until it owns all `partitions` of `t`;
/// also returns what it consumed meanwhile.
async fn stable_member(
    bootstrap: &str,
    config: ConsumerConfigBuilder,
    partitions: i32,
) -> (Consumer, Recorder, Vec<String>) {
    let consumer = member(bootstrap, config).await;
    let recorder = Recorder::default();
    consumer.set_rebalance_listener(recorder.clone());
    consumer.subscribe(["t"]).unwrap();
    let consumed = poll_until(&[&consumer], Duration::from_secs(15), |a| {
        owned_once(a, "t", partitions)
    })
    .await;
    (consumer, recorder, consumed.into_iter().flatten().collect())
}

/// Polls for about `time`, returning what was consumed.
async fn poll_for(consumer: &Consumer, time: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < time {
        let batch = consumer.poll(500, Duration::from_millis(50)).await.unwrap();
        out.extend(
            batch
                .iter()
                .map(|r| String::from_utf8(r.value().unwrap().to_vec()).unwrap()),
        );
    }
    out
}

/// `b` leaves (committing what it consumed, 20 records of 4 partitions
/// with `a`), 5 more records per partition arrive, and `a` alone takes
/// everything over: all 40 records are consumed, none twice, so `a`
/// resumed `b`'s partitions where `b` committed. `settle` is how long `a`
/// keeps polling after the 40th record, to catch a repeat.
async fn the_survivor_reads_every_record_once(
    a: &Consumer,
    b: &Consumer,
    (bootstrap, topic): (&str, &str),
    mut consumed: Vec<String>,
    limit: Duration,
    settle: Duration,
) {
    b.close().await;
    produce(bootstrap, topic, 4, 5).await;
    let start = Instant::now();
    while consumed.len() < 40 {
        consumed.extend(poll_for(a, Duration::from_millis(200)).await);
        assert!(start.elapsed() < limit, "consumed {}", consumed.len());
    }
    consumed.extend(poll_for(a, settle).await);
    let unique: BTreeSet<&String> = consumed.iter().collect();
    assert_eq!(unique.len(), 40, "every record consumed");
    assert_eq!(
        consumed.len(),
        40,
        "none twice: the survivor resumed b's partitions at b's commits"
    );
}

fn range() -> Vec<Strategy> {
    vec![Strategy::Range]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions_and_the_survivor_resumes_from_commits() {
    let (mock, bootstrap) = mock_with_topic(4, 5).await;
    let a = member(
        &bootstrap,
        group_config("g1").partition_assignment_strategy(range()),
    )
    .await;
    let b = member(
        &bootstrap,
        group_config("g1").partition_assignment_strategy(range()),
    )
    .await;
    a.subscribe(["t"]).unwrap();
    b.subscribe(["t"]).unwrap();
    let mut consumed: Vec<String> = Vec::new();
    let mut seen = poll_until(&[&a, &b], Duration::from_secs(20), |asg| {
        owned_once(asg, "t", 4) && asg.iter().all(|x| x.len() == 2)
    })
    .await;
    let (sa, sb) = (a.group_state().unwrap(), b.group_state().unwrap());
    assert_eq!(sa.state, MemberState::Stable);
    assert_eq!(sa.protocol.as_deref(), Some("range"));
    assert_eq!(sa.generation, sb.generation);
    assert_ne!(sa.member_id, sb.member_id);
    assert!(sa.is_leader != sb.is_leader, "one leader: {sa:?} {sb:?}");
    // KIP-394: the first JoinGroup of each member got MEMBER_ID_REQUIRED.
    assert!(mock.request_count(1, ApiKey::JoinGroup) >= 4);
    while seen.iter().map(Vec::len).sum::<usize>() < 20 {
        let more = poll_until(&[&a, &b], Duration::from_secs(10), |_| true).await;
        for (s, m) in seen.iter_mut().zip(more) {
            s.extend(m);
        }
    }
    consumed.extend(seen.into_iter().flatten());
    the_survivor_reads_every_record_once(
        &a,
        &b,
        (&bootstrap, "t"),
        consumed,
        Duration::from_secs(20),
        Duration::from_millis(300),
    )
    .await;
    assert!(owned_once(&[a.assignment()], "t", 4));
    a.close().await;
    let group = mock.group("g1").unwrap();
    assert!(
        group.members.is_empty(),
        "both left with LeaveGroup: {group:?}"
    );
    for p in 0..4 {
        assert_eq!(
            mock.committed_offset("g1", "t", p),
            Some(10),
            "partition {p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_errors_on_join_and_sync_are_retried_and_the_coordinator_rediscovered() {
    let (mock, bootstrap) = mock_with_topic(2, 0).await;
    mock.inject(Fault::error(ApiKey::JoinGroup, ErrorCode::NotCoordinator).times(1));
    mock.inject(Fault::error(ApiKey::JoinGroup, ErrorCode::CoordinatorNotAvailable).times(1));
    mock.inject(Fault::error(ApiKey::JoinGroup, ErrorCode::CoordinatorLoadInProgress).times(1));
    mock.inject(Fault::error(ApiKey::SyncGroup, ErrorCode::RebalanceInProgress).times(1));
    // A slow SyncGroup: polls during the join must not ask for another one.
    mock.inject(Fault::latency(ApiKey::SyncGroup, Duration::from_secs(1)).times(1));
    let finds_before = mock.request_count(1, ApiKey::FindCoordinator);
    let (consumer, recorder, _) = stable_member(&bootstrap, group_config("g-errors"), 2).await;
    assert!(
        mock.pending_faults().is_empty(),
        "{:?}",
        mock.pending_faults()
    );
    assert!(
        mock.request_count(1, ApiKey::FindCoordinator) >= finds_before + 3,
        "NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE made the member look the coordinator up again"
    );
    poll_for(&consumer, Duration::from_millis(700)).await;
    assert_eq!(recorder.kinds(), ["assigned"], "one rebalance only");
    assert_eq!(consumer.group_state().unwrap().state, MemberState::Stable);
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_rebalance_in_progress_rejoins_and_illegal_generation_loses_the_partitions() {
    let (mock, bootstrap) = mock_with_topic(2, 0).await;
    let config = group_config("g-hb").partition_assignment_strategy(range());
    let (consumer, recorder, _) = stable_member(&bootstrap, config, 2).await;
    let first = consumer.group_state().unwrap();

    // REBALANCE_IN_PROGRESS: an ordinary rejoin; eager revocation first.
    recorder.clear();
    mock.inject(Fault::error(ApiKey::Heartbeat, ErrorCode::RebalanceInProgress).times(1));
    poll_until(&[&consumer], Duration::from_secs(10), |_| {
        recorder.kinds() == ["revoked", "assigned"]
    })
    .await;
    let second = consumer.group_state().unwrap();
    assert_eq!(second.member_id, first.member_id);
    assert!(
        second.generation > first.generation,
        "{first:?} -> {second:?}"
    );

    // ILLEGAL_GENERATION: the partitions are lost (no revoked callback, no
    // commit), the member rejoins with its member id.
    recorder.clear();
    mock.inject(Fault::error(ApiKey::Heartbeat, ErrorCode::IllegalGeneration).times(1));
    poll_until(&[&consumer], Duration::from_secs(10), |_| {
        recorder.kinds() == ["lost", "assigned"]
    })
    .await;
    assert_eq!(recorder.events()[0].1, tps("t", 0..2));
    let third = consumer.group_state().unwrap();
    assert_eq!(third.member_id, first.member_id);

    // UNKNOWN_MEMBER_ID: lost too, and the member joins under a new id.
    recorder.clear();
    mock.inject(Fault::error(ApiKey::Heartbeat, ErrorCode::UnknownMemberId).times(1));
    poll_until(&[&consumer], Duration::from_secs(15), |_| {
        recorder.kinds() == ["lost", "assigned"]
    })
    .await;
    let fourth = consumer.group_state().unwrap();
    assert_ne!(fourth.member_id, first.member_id);
    assert_eq!(fourth.state, MemberState::Stable);
    consumer.close().await;
}

/// Issue 11: the group coordinator moves in the middle of a rebalance, on a
/// 3-broker mock. First while the coordinator holds the JoinGroups (a second
/// member joined; the first has not rejoined yet), then while the SyncGroups
/// are on their way (a third member joined; the syncs are delayed at the old
/// coordinator). The old coordinator answers NOT_COORDINATOR, also to the
/// join it holds; the members find the new one and the rebalance completes
/// there: one generation, every partition owned once, every record read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_move_mid_rebalance_completes_the_rebalance() {
    let mock = MockCluster::start(3).unwrap();
    mock.create_topic("t", 4, 3).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let group = "g-moving";
    let config = || group_config(group).partition_assignment_strategy(range());
    let next_broker = |node: i32| node % 3 + 1;
    produce(&bootstrap, "t", 4, 5).await;
    let (a, _, mut consumed) = stable_member(&bootstrap, config(), 4).await;
    let first = mock.group(group).unwrap().generation;

    // 1. Move while the group prepares the rebalance b's join started.
    let b = member(&bootstrap, config()).await;
    b.subscribe(["t"]).unwrap();
    let old = mock.group_coordinator(group);
    let new = next_broker(old);
    let mut moved = false;
    let members = [&a, &b];
    let seen = poll_until(&members, Duration::from_secs(20), |assignments| {
        if !moved
            && mock
                .group(group)
                .is_some_and(|g| g.state == GroupState::PreparingRebalance)
        {
            mock.move_group_coordinator(group, new).unwrap();
            moved = true;
        }
        moved
            && owned_once(assignments, "t", 4)
            && assignments.iter().all(|x| x.len() == 2)
            && one_generation(&members)
    })
    .await;
    consumed.extend(seen.into_iter().flatten());
    let second = mock.group(group).unwrap();
    assert_eq!(
        (second.state, second.members.len()),
        (GroupState::Stable, 2)
    );
    assert!(second.generation > first, "{first} -> {second:?}");
    assert_eq!(a.group_state().unwrap().generation, second.generation);
    assert!(
        mock.request_count(new, ApiKey::JoinGroup) >= 2
            && mock.request_count(new, ApiKey::SyncGroup) >= 2,
        "both members joined and synced at the new coordinator"
    );

    // 2. Move while the SyncGroups of c's rebalance are delayed at the coordinator.
    produce(&bootstrap, "t", 4, 5).await;
    let old = new;
    let new = next_broker(old);
    let syncs = mock.request_count(old, ApiKey::SyncGroup);
    mock.inject(
        Fault::latency(ApiKey::SyncGroup, Duration::from_millis(800))
            .on_broker(old)
            .times(3),
    );
    let c = member(&bootstrap, config()).await;
    c.subscribe(["t"]).unwrap();
    let mut moved = false;
    let members = [&a, &b, &c];
    let seen = poll_until(&members, Duration::from_secs(20), |assignments| {
        if !moved && mock.request_count(old, ApiKey::SyncGroup) > syncs {
            let state = mock.group(group).unwrap().state;
            assert_eq!(
                state,
                GroupState::CompletingRebalance,
                "a SyncGroup is held"
            );
            mock.move_group_coordinator(group, new).unwrap();
            moved = true;
        }
        let mut sizes: Vec<usize> = assignments.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        moved && owned_once(assignments, "t", 4) && sizes == [1, 1, 2] && one_generation(&members)
    })
    .await;
    consumed.extend(seen.into_iter().flatten());
    mock.clear_faults();
    let third = mock.group(group).unwrap();
    assert_eq!((third.state, third.members.len()), (GroupState::Stable, 3));
    assert!(
        third.generation > second.generation,
        "{second:?} -> {third:?}"
    );
    assert!(
        mock.request_count(new, ApiKey::SyncGroup) >= 3,
        "every member synced at the new coordinator"
    );

    // Every record of both rounds reached a member.
    let start = Instant::now();
    while consumed.iter().collect::<BTreeSet<_>>().len() < 40 {
        for m in members {
            consumed.extend(poll_for(m, Duration::from_millis(100)).await);
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "read {} distinct records of 40",
            consumed.iter().collect::<BTreeSet<_>>().len()
        );
    }
    for m in members {
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_follows_a_coordinator_move_without_a_rebalance() {
    let mock = MockCluster::start(2).unwrap();
    mock.create_topic("t", 2, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    produce(&bootstrap, "t", 2, 3).await;
    let (consumer, recorder, _) = stable_member(
        &bootstrap,
        group_config("g-move").enable_auto_commit(false),
        2,
    )
    .await;
    let before = consumer.group_state().unwrap();
    let old = mock.group_coordinator("g-move");
    let new = if old == 1 { 2 } else { 1 };
    mock.move_group_coordinator("g-move", new).unwrap();
    let heartbeats = mock.request_count(new, ApiKey::Heartbeat);
    let start = Instant::now();
    while mock.request_count(new, ApiKey::Heartbeat) < heartbeats + 2 {
        poll_for(&consumer, Duration::from_millis(100)).await;
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no heartbeat reached the new coordinator"
        );
    }
    let after = consumer.group_state().unwrap();
    assert_eq!(
        (after.generation, after.member_id.clone()),
        (before.generation, before.member_id)
    );
    assert_eq!(recorder.kinds(), ["assigned"], "no rebalance");
    consumer
        .commit_offsets([(TopicPartition::new("t", 1), OffsetAndMetadata::new(2))])
        .await
        .unwrap();
    assert_eq!(mock.committed_offset("g-move", "t", 1), Some(2));
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_gets_its_partitions_back_without_a_rebalance_and_fences_the_old_one(
) {
    let (mock, bootstrap) = mock_with_topic(4, 0).await;
    let config = |id: &str| {
        group_config("g-static")
            .partition_assignment_strategy(range())
            .group_instance_id(id)
    };
    let s1 = member(&bootstrap, config("s1")).await;
    let s2 = member(&bootstrap, config("s2")).await;
    let r1 = Recorder::default();
    s1.set_rebalance_listener(r1.clone());
    s1.subscribe(["t"]).unwrap();
    s2.subscribe(["t"]).unwrap();
    poll_until(&[&s1, &s2], Duration::from_secs(20), |a| {
        owned_once(a, "t", 4) && a.iter().all(|x| x.len() == 2)
    })
    .await;
    let leader_is_s1 = s1.group_state().unwrap().is_leader;
    let (stay, restart) = if leader_is_s1 { (&s1, &s2) } else { (&s2, &s1) };
    let restart_id = if leader_is_s1 { "s2" } else { "s1" };
    let owned = restart.assignment();
    let generation = stay.group_state().unwrap().generation;
    r1.clear();

    // The restarted process joins with the same group.instance.id while
    // the old one still runs (a stuck process): no rebalance, same partitions.
    let again = member(&bootstrap, config(restart_id)).await;
    again.subscribe(["t"]).unwrap();
    poll_until(&[&again, stay], Duration::from_secs(15), |a| a[0] == owned).await;
    assert_eq!(again.group_state().unwrap().generation, generation);
    assert_eq!(stay.group_state().unwrap().generation, generation);
    assert_eq!(mock.group("g-static").unwrap().generation, generation);
    if leader_is_s1 {
        assert!(
            r1.kinds().is_empty(),
            "the other member saw no rebalance: {:?}",
            r1.events()
        );
    }
    // The old process is fenced: its next poll reports FENCED_INSTANCE_ID.
    let start = Instant::now();
    let fenced = loop {
        match restart.poll(10, Duration::from_millis(100)).await {
            Err(e) => break e,
            Ok(_) => assert!(start.elapsed() < Duration::from_secs(10), "never fenced"),
        }
    };
    assert!(
        matches!(fenced, ConsumerError::FencedInstanceId(_)),
        "{fenced}"
    );
    // A static member's close sends no LeaveGroup.
    again.close().await;
    assert_eq!(mock.group("g-static").unwrap().members.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_reports_the_partitions_lost_and_the_member_rejoins() {
    let (mock, bootstrap) = mock_with_topic(2, 0).await;
    let config = group_config("g-session")
        .session_timeout(Duration::from_millis(1200))
        .heartbeat_interval(Duration::from_millis(200))
        .max_poll_interval(Duration::from_secs(4));
    let (consumer, recorder, _) = stable_member(&bootstrap, config, 2).await;
    let before = consumer.group_state().unwrap();
    // Every heartbeat is cut off until the coordinator expires the session.
    mock.inject(Fault::drop_connection(ApiKey::Heartbeat).times(1_000));
    let start = Instant::now();
    while mock
        .group("g-session")
        .unwrap()
        .members
        .contains(&before.member_id)
    {
        poll_for(&consumer, Duration::from_millis(100)).await;
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "session never expired"
        );
    }
    mock.clear_faults();
    poll_until(&[&consumer], Duration::from_secs(15), |_| {
        recorder.kinds() == ["assigned", "lost", "assigned"]
    })
    .await;
    assert_eq!(recorder.events()[1].1, tps("t", 0..2));
    assert_ne!(consumer.group_state().unwrap().member_id, before.member_id);
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_but_heartbeats_keep_a_slow_one_in() {
    let (mock, bootstrap) = mock_with_topic(2, 0).await;
    // Blocking longer than the session (1.2 s) but within max.poll.interval (4 s):
    // the background heartbeats keep the member in, with no rebalance.
    let config = group_config("g-poll")
        .session_timeout(Duration::from_millis(1200))
        .heartbeat_interval(Duration::from_millis(200))
        .max_poll_interval(Duration::from_secs(4));
    let (consumer, recorder, _) = stable_member(&bootstrap, config, 2).await;
    let before = consumer.group_state().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    poll_for(&consumer, Duration::from_millis(300)).await;
    let after = consumer.group_state().unwrap();
    assert_eq!(
        (after.generation, &after.member_id),
        (before.generation, &before.member_id)
    );
    assert_eq!(recorder.kinds(), ["assigned"]);
    assert_eq!(
        mock.group("g-poll").unwrap().members,
        vec![before.member_id.clone()]
    );
    // Waiting inside one poll for longer than max.poll.interval is polling.
    let empty = consumer
        .poll(10, Duration::from_millis(4500))
        .await
        .unwrap();
    assert!(empty.is_empty());
    assert_eq!(
        consumer.group_state().unwrap().generation,
        before.generation
    );
    assert_eq!(
        mock.group("g-poll").unwrap().members,
        vec![before.member_id.clone()]
    );

    // Blocking past max.poll.interval: the member leaves (LeaveGroup), and
    // its next poll reports the partitions lost and joins again.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert!(
        mock.group("g-poll").unwrap().members.is_empty(),
        "the member left when max.poll.interval.ms passed: {:?}",
        mock.group("g-poll")
    );
    assert!(mock.request_count(1, ApiKey::LeaveGroup) >= 1);
    poll_until(&[&consumer], Duration::from_secs(10), |_| {
        recorder.kinds() == ["assigned", "lost", "assigned"]
    })
    .await;
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_on_close_and_manual_commit_roundtrip() {
    let (mock, bootstrap) = mock_with_topic(2, 5).await;
    // Auto-commit with a long interval: only the close commits.
    let config = group_config("g-commit").auto_commit_interval(Duration::from_secs(600));
    let (consumer, _, mut consumed) = stable_member(&bootstrap, config, 2).await;
    let start = Instant::now();
    while consumed.len() < 10 {
        consumed.extend(poll_for(&consumer, Duration::from_millis(100)).await);
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(mock.committed_offset("g-commit", "t", 0), None);
    consumer.close().await;
    assert_eq!(mock.committed_offset("g-commit", "t", 0), Some(5));
    assert_eq!(mock.committed_offset("g-commit", "t", 1), Some(5));

    // Manual commits: explicit offsets with metadata, then positions.
    let config = group_config("g-commit").enable_auto_commit(false);
    let (consumer, _, _) = stable_member(&bootstrap, config, 2).await;
    let tp0 = TopicPartition::new("t", 0);
    let tp1 = TopicPartition::new("t", 1);
    let committed = consumer
        .committed(&[tp0.clone(), tp1.clone()])
        .await
        .unwrap();
    assert_eq!(committed[&tp0].as_ref().map(|o| o.offset), Some(5));
    consumer
        .commit_offsets([(
            tp0.clone(),
            OffsetAndMetadata::new(3).with_metadata("checkpoint"),
        )])
        .await
        .unwrap();
    let committed = consumer
        .committed(std::slice::from_ref(&tp0))
        .await
        .unwrap();
    let got = committed[&tp0].clone().unwrap();
    assert_eq!((got.offset, got.metadata.as_str()), (3, "checkpoint"));
    produce(&bootstrap, "t", 2, 2).await;
    let start = Instant::now();
    let mut n = 0;
    while n < 4 {
        n += poll_for(&consumer, Duration::from_millis(100)).await.len();
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    consumer.commit().await.unwrap();
    assert_eq!(mock.committed_offset("g-commit", "t", 0), Some(7));
    assert_eq!(mock.committed_offset("g-commit", "t", 1), Some(7));
    let metadata = consumer.group_metadata().unwrap();
    assert_eq!(metadata.group_id, "g-commit");
    assert_eq!(
        metadata.generation_id,
        consumer.group_state().unwrap().generation
    );
    assert!(!metadata.member_id.is_empty());
    consumer.close().await;
    // Without auto-commit, close commits nothing more.
    assert_eq!(mock.committed_offset("g-commit", "t", 0), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_revokes_only_the_partitions_that_move() {
    let (_mock, bootstrap) = mock_with_topic(4, 0).await;
    let config =
        || group_config("g-coop").partition_assignment_strategy(vec![Strategy::CooperativeSticky]);
    let (a, ra, _) = stable_member(&bootstrap, config(), 4).await;
    assert_eq!(
        a.group_state().unwrap().protocol.as_deref(),
        Some("cooperative-sticky")
    );
    ra.clear();
    let b = member(&bootstrap, config()).await;
    let rb = Recorder::default();
    b.set_rebalance_listener(rb.clone());
    b.subscribe(["t"]).unwrap();
    poll_until(&[&a, &b], Duration::from_secs(20), |asg| {
        owned_once(asg, "t", 4) && asg.iter().all(|x| x.len() == 2)
    })
    .await;
    // a revoked just the two partitions that moved (never all four), and
    // got nothing new; b got them in the follow-up rebalance.
    let events = ra.events();
    let revoked: Vec<TopicPartition> = events
        .iter()
        .filter(|(k, _)| *k == "revoked")
        .flat_map(|(_, p)| p.clone())
        .collect();
    assert_eq!(revoked.len(), 2, "{events:?}");
    assert!(revoked.iter().all(|tp| b.assignment().contains(tp)));
    assert!(
        events.iter().all(|(k, p)| *k != "assigned" || p.is_empty()),
        "{events:?}"
    );
    assert!(events.iter().all(|(k, _)| *k != "lost"));
    let b_assigned: Vec<TopicPartition> = rb
        .events()
        .into_iter()
        .filter(|(k, _)| *k == "assigned")
        .flat_map(|(_, p)| p)
        .collect();
    assert_eq!(b_assigned, b.assignment());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscription_picks_up_topics_created_later() {
    let mock = MockCluster::start(1).unwrap();
    mock.create_topic("orders-eu", 1, 1).unwrap();
    mock.create_topic("payments", 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let consumer = member(&bootstrap, group_config("g-pattern")).await;
    consumer.subscribe_pattern("orders-.*").unwrap();
    poll_until(&[&consumer], Duration::from_secs(10), |a| {
        a[0] == vec![TopicPartition::new("orders-eu", 0)]
    })
    .await;
    mock.create_topic("orders-us", 2, 1).unwrap();
    poll_until(&[&consumer], Duration::from_secs(15), |a| a[0].len() == 3).await;
    assert_eq!(consumer.subscription(), ["orders-eu", "orders-us"]);
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_and_assign_exclude_each_other_and_need_a_group_id() {
    let (_mock, bootstrap) = mock_with_topic(1, 0).await;
    let no_group = member(&bootstrap, ConsumerConfig::builder()).await;
    assert!(matches!(
        no_group.subscribe(["t"]),
        Err(ConsumerError::NoGroupId)
    ));
    assert!(matches!(
        no_group.commit().await,
        Err(ConsumerError::NoGroupId)
    ));
    assert!(matches!(
        no_group.commit_async().await,
        Err(ConsumerError::NoGroupId)
    ));
    assert!(no_group.group_metadata().is_none());

    let consumer = member(&bootstrap, group_config("g-x")).await;
    consumer.assign(tps("t", [0])).unwrap();
    assert!(matches!(
        consumer.subscribe(["t"]),
        Err(ConsumerError::IllegalState(_))
    ));
    consumer.assign([]).unwrap();
    consumer.subscribe(["t"]).unwrap();
    assert!(matches!(
        consumer.assign(tps("t", [0])),
        Err(ConsumerError::IllegalState(_))
    ));
    assert!(matches!(
        consumer.subscribe_pattern("("),
        Err(ConsumerError::InvalidPattern(_))
    ));
    poll_until(&[&consumer], Duration::from_secs(10), |a| a[0].len() == 1).await;
    consumer.unsubscribe().await.unwrap();
    assert!(consumer.assignment().is_empty());
    assert!(consumer.subscription().is_empty());
    consumer.assign(tps("t", [0])).unwrap();
    consumer.close().await;
}

/// Tansu smoke test: two ferrokafka members share a group on a real broker,
/// every partition is owned once, every record is consumed, and when one
/// member leaves the other resumes its partitions at its commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_two_members_share_a_group_and_resume_commits() {
    use ferrokafka::admin::{Admin, CreateTopicsOptions, NewTopic};
    use ferrokafka::testkit::{BrokerKind, TestCluster};

    let broker = TestCluster::from_env_or_start(BrokerKind::Tansu).unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = format!("group-smoke-{}", std::process::id());
    let group = format!("group-smoke-{}", std::process::id());
    let admin = Admin::connect(client(&bootstrap)).await.unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 4, 1)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    created[&topic].as_ref().unwrap();
    produce(&bootstrap, &topic, 4, 5).await;

    let config = || group_config(&group).partition_assignment_strategy(range());
    let a = member(&bootstrap, config()).await;
    let b = member(&bootstrap, config()).await;
    a.subscribe([topic.as_str()]).unwrap();
    b.subscribe([topic.as_str()]).unwrap();
    let mut seen = poll_until(&[&a, &b], Duration::from_secs(60), |asg| {
        owned_once(asg, &topic, 4) && asg.iter().all(|x| x.len() == 2)
    })
    .await;
    let start = Instant::now();
    while seen.iter().map(Vec::len).sum::<usize>() < 20 {
        let more = poll_until(&[&a, &b], Duration::from_secs(30), |_| true).await;
        for (s, m) in seen.iter_mut().zip(more) {
            s.extend(m);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "consumed {seen:?}"
        );
    }
    let consumed: Vec<String> = seen.into_iter().flatten().collect();
    assert!(owned_once(&[a.assignment(), b.assignment()], &topic, 4));
    the_survivor_reads_every_record_once(
        &a,
        &b,
        (&bootstrap, &topic),
        consumed,
        Duration::from_secs(60),
        Duration::from_millis(500),
    )
    .await;
    a.commit().await.unwrap();
    let partitions = tps(&topic, 0..4);
    let committed = a.committed(&partitions).await.unwrap();
    for tp in &partitions {
        assert_eq!(committed[tp].as_ref().map(|o| o.offset), Some(10), "{tp}");
    }
    a.close().await;
}

/// Commits the consumed positions when partitions are revoked.
struct CommitOnRevoke(Recorder);

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            consumer
                .commit()
                .await
                .expect("commit in the revoked callback");
            self.0.push("revoked", partitions);
        })
    }
    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.0.on_partitions_assigned(consumer, partitions)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revoked_callback_can_commit_and_commit_async_lands() {
    let (mock, bootstrap) = mock_with_topic(2, 5).await;
    let config = || {
        group_config("g-revoke")
            .enable_auto_commit(false)
            .partition_assignment_strategy(range())
    };
    let a = member(&bootstrap, config()).await;
    let recorder = Recorder::default();
    a.set_rebalance_listener(CommitOnRevoke(recorder.clone()));
    a.subscribe(["t"]).unwrap();
    let mut consumed = 0;
    let start = Instant::now();
    while consumed < 10 {
        consumed += poll_for(&a, Duration::from_millis(100)).await.len();
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(mock.committed_offset("g-revoke", "t", 0), None);
    // A second member joins: the eager rebalance revokes everything from a,
    // whose callback commits its positions first.
    let b = member(&bootstrap, config()).await;
    b.subscribe(["t"]).unwrap();
    poll_until(&[&a, &b], Duration::from_secs(15), |asg| {
        owned_once(asg, "t", 2) && asg.iter().all(|x| x.len() == 1)
    })
    .await;
    assert!(
        recorder.kinds().contains(&"revoked"),
        "{:?}",
        recorder.events()
    );
    assert_eq!(mock.committed_offset("g-revoke", "t", 0), Some(5));
    assert_eq!(mock.committed_offset("g-revoke", "t", 1), Some(5));
    // commit_async: awaited for its answer, or dropped and landing anyway.
    produce(&bootstrap, "t", 2, 1).await;
    let mut got = 0;
    let start = Instant::now();
    while got < 2 {
        got += poll_for(&a, Duration::from_millis(50)).await.len();
        got += poll_for(&b, Duration::from_millis(50)).await.len();
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    // One awaited (the coordinator's answer), one dropped (it lands anyway).
    a.commit_async().await.unwrap();
    assert_eq!(
        mock.committed_offset("g-revoke", "t", 0)
            .max(mock.committed_offset("g-revoke", "t", 1)),
        Some(6)
    );
    drop(b.commit_async());
    let start = Instant::now();
    while mock.committed_offset("g-revoke", "t", 0) != Some(6)
        || mock.committed_offset("g-revoke", "t", 1) != Some(6)
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "commit_async never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manually_assigned_consumer_with_a_group_id_commits_as_a_simple_consumer() {
    let (mock, bootstrap) = mock_with_topic(2, 4).await;
    let consumer = member(&bootstrap, group_config("g-simple")).await;
    consumer.assign(tps("t", 0..2)).unwrap();
    let mut n = 0;
    let start = Instant::now();
    while n < 8 {
        n += poll_for(&consumer, Duration::from_millis(100)).await.len();
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    // No membership: commits go with generation -1 and no member id.
    assert_eq!(consumer.group_state().unwrap().generation, -1);
    consumer.close().await;
    assert_eq!(mock.committed_offset("g-simple", "t", 0), Some(4));
    assert_eq!(mock.committed_offset("g-simple", "t", 1), Some(4));
    let again = member(&bootstrap, group_config("g-simple")).await;
    let committed = again.committed(&tps("t", 0..2)).await.unwrap();
    assert!(committed
        .values()
        .all(|c| c.as_ref().map(|o| o.offset) == Some(4)));
}

/// Offset fetches, commits and heartbeats use the member's own connection:
/// they are answered while the coordinator holds the member's JoinGroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_not_queued_behind_a_join_the_coordinator_holds() {
    let (_mock, bootstrap) = mock_with_topic(2, 0).await;
    let config = || group_config("g-held").partition_assignment_strategy(range());
    let a = member(&bootstrap, config()).await;
    let b = member(&bootstrap, config()).await;
    a.subscribe(["t"]).unwrap();
    b.subscribe(["t"]).unwrap();
    poll_until(&[&a, &b], Duration::from_secs(15), |asg| {
        owned_once(asg, "t", 2) && asg.iter().all(|x| x.len() == 1)
    })
    .await;
    // a changes its subscription and rejoins; the coordinator holds its
    // JoinGroup until b rejoins, and b's application is busy (no poll).
    a.subscribe(["t", "t-later"]).unwrap();
    let start = Instant::now();
    while a.group_state().unwrap().state != MemberState::PreparingRebalance {
        a.poll(10, Duration::from_millis(50)).await.unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a never rejoined"
        );
    }
    let tp = TopicPartition::new("t", 0);
    let answered = tokio::time::timeout(
        Duration::from_secs(3),
        a.committed(std::slice::from_ref(&tp)),
    )
    .await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "OffsetFetch answered while the JoinGroup is held: {answered:?}"
    );
    assert_eq!(
        a.group_state().unwrap().state,
        MemberState::PreparingRebalance,
        "the join was still held"
    );
    poll_until(&[&a, &b], Duration::from_secs(15), |asg| {
        owned_once(asg, "t", 2) && asg.iter().all(|x| x.len() == 1)
    })
    .await;
    a.close().await;
    b.close().await;
}

/// The leader rebalances when a topic only another member subscribed to
/// gains partitions (Java's leader watches the whole group's subscription).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_rebalances_when_another_members_topic_grows() {
    let mock = MockCluster::start(1).unwrap();
    mock.create_topic("grow-a", 1, 1).unwrap();
    mock.create_topic("grow-b", 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let leader = member(&bootstrap, group_config("g-grow")).await;
    leader.subscribe(["grow-a"]).unwrap();
    poll_until(&[&leader], Duration::from_secs(10), |a| {
        a[0] == tps("grow-a", [0])
    })
    .await;
    let follower = member(&bootstrap, group_config("g-grow")).await;
    follower.subscribe(["grow-b"]).unwrap();
    poll_until(&[&leader, &follower], Duration::from_secs(15), |a| {
        a[0] == tps("grow-a", [0]) && a[1] == tps("grow-b", [0])
    })
    .await;
    assert_eq!(leader.group_state().map(|s| s.is_leader), Some(true));
    mock.add_partitions("grow-b", 3).unwrap();
    poll_until(&[&leader, &follower], Duration::from_secs(15), |a| {
        a[0] == tps("grow-a", [0]) && a[1] == tps("grow-b", [0, 1, 2])
    })
    .await;
    follower.close().await;
    leader.close().await;
}

/// A commit the member attempts while its JoinGroup is in flight (the
/// application commits on a timer, say) neither resets the member nor costs
/// the group one more rebalance, even when the coordinator answers such a
/// commit with ILLEGAL_GENERATION (as noida-db does around rebalances): the
/// commit is refused as retriable, and the join in flight completes the one
/// rebalance that was needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_during_a_rebalance_costs_no_extra_rebalance() {
    let (mock, bootstrap) = mock_with_topic(2, 0).await;
    let config = || group_config("g-commit-mid").partition_assignment_strategy(range());
    let a = member(&bootstrap, config()).await;
    let b = member(&bootstrap, config()).await;
    a.subscribe(["t"]).unwrap();
    b.subscribe(["t"]).unwrap();
    let split =
        |asg: &[Vec<TopicPartition>]| owned_once(asg, "t", 2) && asg.iter().all(|x| x.len() == 1);
    poll_until(&[&a, &b], Duration::from_secs(15), split).await;
    let before = a.group_state().unwrap().generation;
    assert_eq!(b.group_state().unwrap().generation, before);

    // a rejoins (its subscription changed); the coordinator holds its
    // JoinGroup until b, whose application is busy, rejoins too.
    a.subscribe(["t", "t-later"]).unwrap();
    let start = Instant::now();
    while a.group_state().unwrap().state != MemberState::PreparingRebalance {
        a.poll(10, Duration::from_millis(50)).await.unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a never rejoined"
        );
    }
    mock.inject(Fault::error(
        ApiKey::OffsetCommit,
        ErrorCode::IllegalGeneration,
    ));
    let refused = a
        .commit_offsets([(TopicPartition::new("t", 0), OffsetAndMetadata::new(0))])
        .await;
    assert!(
        matches!(&refused, Err(ConsumerError::RebalanceInProgress(_))),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().is_retriable());
    mock.clear_faults();
    let during = a.group_state().unwrap();
    assert_eq!(during.state, MemberState::PreparingRebalance, "{during:?}");
    assert_eq!(during.generation, before, "the member kept its generation");

    poll_until(&[&a, &b], Duration::from_secs(15), split).await;
    // Long enough for a pending rejoin to show (heartbeats every 300 ms).
    tokio::join!(
        poll_for(&a, Duration::from_secs(2)),
        poll_for(&b, Duration::from_secs(2))
    );
    let (after_a, after_b) = (a.group_state().unwrap(), b.group_state().unwrap());
    assert_eq!(
        (after_a.generation, after_b.generation),
        (before + 1, before + 1),
        "one rebalance, not more: {after_a:?} {after_b:?}"
    );
    assert_eq!(after_a.state, MemberState::Stable);
    a.commit().await.unwrap();
    a.close().await;
    b.close().await;
}
